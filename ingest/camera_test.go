package ingest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/bluenviron/gortsplib/v4/pkg/auth"
	"go.uber.org/goleak"

	"flowwatch/internal/event"
)

// stateLog records every state a camera reports.
type stateLog struct {
	mu     sync.Mutex
	states []event.CameraState
}

func (l *stateLog) add(st event.CameraState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.states = append(l.states, st)
}

// statuses returns the sequence of distinct statuses of stream.
func (l *stateLog) statuses(stream string) []event.CameraStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []event.CameraStatus
	for _, st := range l.states {
		if st.Stream == stream && (len(out) == 0 || out[len(out)-1] != st.Status) {
			out = append(out, st.Status)
		}
	}
	return out
}

// testCamera starts a camera with test timings (stall 1 s, backoff 50 ms
// to 1 s) and closes it at the end of the test.
func testCamera(t *testing.T, cfg CameraConfig) (*Camera, *stateLog, *syncBuffer) {
	t.Helper()
	states := &stateLog{}
	logger, logs := testLogger()
	if cfg.Name == "" {
		cfg.Name = strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	}
	if cfg.StallTimeout == 0 {
		cfg.StallTimeout = time.Second
	}
	if cfg.BackoffMin == 0 {
		cfg.BackoffMin = 50 * time.Millisecond
	}
	if cfg.BackoffMax == 0 {
		cfg.BackoffMax = time.Second
	}
	cfg.Logger = logger
	cfg.OnState = states.add
	cam, err := NewCamera(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := cam.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cam.Close)
	return cam, states, logs
}

// waitFor polls cond every 10 ms until it holds or timeout passes, and
// returns how long it took.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// flowing reports whether cam's main stream is live and has published
// more than frames access units.
func flowing(cam *Camera, frames uint64) bool {
	return cam.State().Status == event.CameraLive && cam.Main().Metrics().Counts().Frames > frames
}

// ptsRecorder reads a subscription until it ends and keeps every PTS.
type ptsRecorder struct {
	mu   sync.Mutex
	pts  []time.Duration
	gens map[uint64]bool
	done chan struct{}
}

func recordPTS(t *testing.T, st *Stream) *ptsRecorder {
	t.Helper()
	sub, err := st.Subscribe(SubscribeOptions{Name: "pts", QueueLen: 4096})
	if err != nil {
		t.Fatal(err)
	}
	r := &ptsRecorder{gens: map[uint64]bool{}, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for {
			au, err := sub.Next(context.Background())
			if err != nil {
				return
			}
			r.mu.Lock()
			r.pts = append(r.pts, au.PTS)
			r.gens[sub.Generation()] = true
			r.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		sub.Close()
		<-r.done
	})
	return r
}

func TestCameraRecoversFromServerRestarts(t *testing.T) {
	t.Parallel()
	clip := makeClip(t, CodecH264, 320, 240, 25, 10, 2)
	srv := newTestServer(t, testServerConfig{clip: clip})
	cam, states, _ := testCamera(t, CameraConfig{URL: srv.url("", ""), Transport: TransportTCP})
	rec := recordPTS(t, cam.Main())

	waitFor(t, 5*time.Second, "first live", func() bool { return flowing(cam, 5) })
	if st := cam.State(); st.Codec != "H264" || st.Width != 320 || st.Height != 240 {
		t.Errorf("live state %+v lacks codec and size", st)
	}

	const restarts = 10
	var worst time.Duration
	for i := 0; i < restarts; i++ {
		srv.stop()
		waitFor(t, 2*time.Second, "leave live after the server stopped", func() bool {
			return cam.State().Status != event.CameraLive
		})
		time.Sleep(time.Duration(100+40*i) * time.Millisecond)
		frames := cam.Main().Metrics().Counts().Frames
		srv.start()
		took := waitFor(t, 2*time.Second, fmt.Sprintf("live again after restart %d", i+1), func() bool {
			return flowing(cam, frames+2)
		})
		worst = max(worst, took)
	}
	t.Logf("slowest recovery after a server restart: %v", worst.Round(time.Millisecond))

	if c := cam.Main().Metrics().Counts(); c.Reconnects < restarts {
		t.Errorf("reconnects counter %d, want at least %d", c.Reconnects, restarts)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for i := 1; i < len(rec.pts); i++ {
		if rec.pts[i] <= rec.pts[i-1] {
			t.Fatalf("PTS went from %v to %v at access unit %d", rec.pts[i-1], rec.pts[i], i)
		}
	}
	if len(rec.gens) < restarts+1 {
		t.Errorf("subscriber saw %d generations, want %d", len(rec.gens), restarts+1)
	}
	got := states.statuses(StreamMain)
	if got[0] != event.CameraConnecting || got[1] != event.CameraLive {
		t.Errorf("state history starts %v", got[:2])
	}
}

func TestCameraStallReconnects(t *testing.T) {
	t.Parallel()
	clip := makeClip(t, CodecH264, 320, 240, 25, 10, 2)
	transports := []Transport{TransportTCP}
	if !testing.Short() {
		transports = append(transports, TransportUDP)
	}
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			srv := newTestServer(t, testServerConfig{clip: clip, udp: tr == TransportUDP})
			cam, states, logs := testCamera(t, CameraConfig{URL: srv.url("", ""), Transport: tr})
			waitFor(t, 5*time.Second, "first live", func() bool { return flowing(cam, 5) })
			conns := len(srv.connections())

			srv.setPaused(true)
			waitFor(t, 3*time.Second, "stall detected", func() bool {
				return cam.State().Status == event.CameraStalled
			})
			if st := cam.State(); !strings.Contains(st.LastError, "no media for 1s") {
				t.Errorf("stalled state's error %q", st.LastError)
			}
			// The stalled session is closed and a new one opened, which
			// stalls again while the server stays silent.
			waitFor(t, 3*time.Second, "reconnect after the stall", func() bool {
				return len(srv.connections()) > conns
			})
			frames := cam.Main().Metrics().Counts().Frames
			srv.setPaused(false)
			waitFor(t, 4*time.Second, "live after the media returned", func() bool { return flowing(cam, frames+2) })

			hist := fmt.Sprint(states.statuses(StreamMain))
			if !strings.Contains(hist, "live stalled connecting") || !strings.HasSuffix(hist, "live]") {
				t.Errorf("state history %s lacks live → stalled → connecting → … → live", hist)
			}
			if !strings.Contains(logs.String(), "status=stalled") {
				t.Errorf("no log line for the stall in:\n%s", logs)
			}
		})
	}
}

func TestCameraUnauthorizedSlowsRetries(t *testing.T) {
	clip := makeClip(t, CodecH264, 320, 240, 25, 10, 1)
	const user, pass, wrong = "viewer", "c0rrect-horse", "wr0ng-guess"
	for _, method := range []struct {
		name string
		m    auth.VerifyMethod
	}{{"basic", auth.VerifyMethodBasic}, {"digest", auth.VerifyMethodDigestMD5}} {
		t.Run(method.name, func(t *testing.T) {
			t.Parallel()
			srv := newTestServer(t, testServerConfig{clip: clip, user: user, pass: pass,
				methods: []auth.VerifyMethod{method.m}})
			cam, _, logs := testCamera(t, CameraConfig{URL: srv.url(user, wrong), Transport: TransportTCP})

			waitFor(t, 3*time.Second, "unauthorized", func() bool {
				return cam.State().Status == event.CameraUnauthorized
			})
			// Over 3.3 s a backoff from 50 ms would try about eight times;
			// an unauthorized camera tries once a second at most.
			time.Sleep(3300 * time.Millisecond)
			conns := srv.connections()
			if len(conns) < 3 || len(conns) > 5 {
				t.Errorf("%d attempts in about 3.5 s, want 3 to 5 (one per BackoffMax)", len(conns))
			}
			for i := 1; i < len(conns); i++ {
				if gap := conns[i].Sub(conns[i-1]); gap < 780*time.Millisecond {
					t.Errorf("attempt %d came %v after the previous, want about BackoffMax (1s)", i+1, gap)
				}
			}
			st := cam.State()
			if st.Status != event.CameraUnauthorized || !strings.Contains(st.LastError, "401") {
				t.Errorf("state %+v, want unauthorized with the 401", st)
			}
			if strings.Contains(st.LastError, wrong) || strings.Contains(logs.String(), wrong) {
				t.Errorf("password shown in the state or the logs:\n%s\n%s", st.LastError, logs)
			}

			right, _, _ := testCamera(t, CameraConfig{Name: "right-" + method.name, URL: srv.url("", ""),
				Username: user, Password: pass, Transport: TransportTCP})
			waitFor(t, 5*time.Second, "live with the right password", func() bool { return flowing(right, 3) })
		})
	}
}

func TestCameraCloseLeavesNothingBehind(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	clip := makeClip(t, CodecH264, 320, 240, 25, 10, 1)
	// Main and live come from servers of their own: gortsplib's server
	// races when two UDP readers from one address set up the same stream
	// at once.
	srv := newTestServer(t, testServerConfig{clip: clip, udp: true})
	srvLive := newTestServer(t, testServerConfig{clip: clip, udp: true})
	logger, _ := testLogger()
	cam, err := NewCamera(CameraConfig{
		Name:         "leak-check",
		URL:          srv.url("", ""),
		LiveURL:      srvLive.url("", ""),
		Transport:    TransportUDP,
		StallTimeout: time.Second,
		BackoffMin:   50 * time.Millisecond,
		BackoffMax:   time.Second,
		Logger:       logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	if cam.Live() == cam.Main() {
		t.Fatal("camera with a LiveURL shares one stream for main and live")
	}
	sub, _ := cam.Live().Subscribe(SubscribeOptions{Name: "viewer", Policy: DropUntilKeyframe, StartAtKeyframe: true})
	if err := cam.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "both streams live", func() bool {
		sts := cam.States()
		return len(sts) == 2 && sts[0].Status == event.CameraLive && sts[1].Status == event.CameraLive
	})
	exported := func() string {
		var buf bytes.Buffer
		metrics.WritePrometheus(&buf, false)
		return buf.String()
	}
	for _, want := range []string{
		`flowwatch_ingest_frames_total{camera="leak-check",stream="live"}`,
		`flowwatch_ingest_state{camera="leak-check",stream="main",state="live"} 1`,
		`flowwatch_ingest_state{camera="leak-check",stream="main",state="stalled"} 0`,
	} {
		if !strings.Contains(exported(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	cam.Close()
	cam.Close()
	for _, st := range cam.States() {
		if st.Status != event.CameraStopped {
			t.Errorf("%s state after Close: %s", st.Stream, st.Status)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		_, err := sub.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("live subscriber after Close: %v, want io.EOF once drained", err)
		}
	}
	if strings.Contains(exported(), `camera="leak-check"`) {
		t.Error("metrics of the removed camera are still exported")
	}
	if err := cam.Start(context.Background()); err == nil {
		t.Error("Start after Close succeeded")
	}
	srv.stop()
	srvLive.stop()
	goleak.VerifyNone(t, ignore)
}

func TestCameraConfig(t *testing.T) {
	cam, err := NewCamera(CameraConfig{Name: "gate", URL: "rtsp://127.0.0.1:1/x"})
	if err != nil {
		t.Fatal(err)
	}
	if c := cam.cfg; c.StallTimeout != DefaultStallTimeout || c.BackoffMin != DefaultBackoffMin ||
		c.BackoffMax != DefaultBackoffMax || c.Transport != TransportAuto || c.RequestTimeout != DefaultRequestTimeout {
		t.Errorf("defaults not filled in: %+v", c)
	}
	if st := cam.State(); st.Status != event.CameraStopped || st.Camera != "gate" || st.Stream != StreamMain {
		t.Errorf("state before Start %+v", st)
	}
	if cam.Live() != cam.Main() {
		t.Error("camera without a LiveURL has a separate live stream")
	}
	cam.Close()

	bad := []struct {
		cfg  CameraConfig
		want string
	}{
		{CameraConfig{URL: "rtsp://u:hunter22@h/x"}, "no name"},
		{CameraConfig{Name: "a", URL: "rtsp://u:hunter22@h/x", BackoffMin: time.Minute, BackoffMax: time.Second}, "backoff"},
		{CameraConfig{Name: "a", URL: "rtsp://h/x", LiveURL: "http://u:hunter22@h/y"}, `camera "a" live`},
		{CameraConfig{Name: "a", URL: "rtsp://h/x", Transport: "sctp"}, "sctp"},
	}
	for _, b := range bad {
		_, err := NewCamera(b.cfg)
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("NewCamera: %v, want an error about %s", err, b.want)
			continue
		}
		if strings.Contains(err.Error(), "hunter22") {
			t.Errorf("error %q shows the password", err)
		}
	}
}

func TestBackoff(t *testing.T) {
	top := backoff{min: 50 * time.Millisecond, max: time.Second, jitter: func() float64 { return 1 }}
	var got []time.Duration
	for range 7 {
		got = append(got, top.next())
	}
	if fmt.Sprint(got) != "[50ms 100ms 200ms 400ms 800ms 1s 1s]" {
		t.Errorf("delays without jitter %v", got)
	}
	top.reset()
	if d := top.next(); d != 50*time.Millisecond {
		t.Errorf("after reset %v, want 50ms", d)
	}

	low := backoff{min: 50 * time.Millisecond, max: time.Second, jitter: func() float64 { return 0 }}
	if d := low.next(); d != 40*time.Millisecond {
		t.Errorf("most jittered first delay %v, want 40ms", d)
	}
	if d := low.slowest(); d != 800*time.Millisecond {
		t.Errorf("most jittered slowest delay %v, want 800ms", d)
	}

	random := backoff{min: time.Second, max: time.Minute}
	for range 100 {
		if d := random.slowest(); d < 48*time.Second || d > time.Minute {
			t.Fatalf("slowest delay %v outside [48s, 1m]", d)
		}
	}
}
