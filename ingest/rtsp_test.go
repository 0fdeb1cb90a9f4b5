package ingest

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"flowwatch/internal/netguard"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/auth"
	"github.com/pion/rtp"
)

// syncBuffer is a log destination safe for the goroutines of a source.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testLogger returns a logger writing text lines into a buffer.
func testLogger() (*slog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// runSource runs one session of src into st in the background; stop
// cancels it and returns Run's error.
func runSource(t *testing.T, src *RTSPSource, st *Stream) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, st) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// readAUs reads n access units from sub, failing after timeout.
func readAUs(t *testing.T, sub *Subscription, n int, timeout time.Duration) []*AccessUnit {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []*AccessUnit
	for len(out) < n {
		au, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("after %d of %d access units: %v", len(out), n, err)
		}
		out = append(out, au)
	}
	return out
}

// checkPlayback asserts what every subscriber starting at a keyframe must
// see: a keyframe first carrying the clip's parameter sets, keyframes
// carrying them again, valid NAL units only, increasing timestamps.
func checkPlayback(t *testing.T, clip *testClip, aus []*AccessUnit) {
	t.Helper()
	if !aus[0].Key {
		t.Fatal("first access unit is not a keyframe")
	}
	keys := 0
	for i, au := range aus {
		if au.Codec != clip.codec {
			t.Fatalf("access unit %d has codec %s, want %s", i, au.Codec, clip.codec)
		}
		for _, n := range au.NALUs {
			if err := checkNALU(clip.codec, n); err != nil {
				t.Fatalf("access unit %d: %v", i, err)
			}
		}
		if i > 0 && au.PTS <= aus[i-1].PTS {
			t.Fatalf("access unit %d PTS %v not after %v", i, au.PTS, aus[i-1].PTS)
		}
		if au.Key {
			keys++
			if !containsNALU(au.NALUs, clip.sps) || !containsNALU(au.NALUs, clip.pps) ||
				(clip.codec == CodecH265 && !containsNALU(au.NALUs, clip.vps)) {
				t.Fatalf("keyframe %d lacks its parameter sets", i)
			}
		}
	}
	if keys < 2 {
		t.Fatalf("%d keyframes in %d access units", keys, len(aus))
	}
}

func TestRTSPTransportsPlay(t *testing.T) {
	clip := makeClip(t, CodecH264, 320, 240, 25, 10, 2)
	cases := []struct {
		name      string
		transport Transport
		serverUDP bool
		want      gortsplib.Transport
	}{
		{"tcp", TransportTCP, true, gortsplib.TransportTCP},
		{"udp", TransportUDP, true, gortsplib.TransportUDP},
		{"auto picks udp", TransportAuto, true, gortsplib.TransportUDP},
		{"auto falls back to tcp", TransportAuto, false, gortsplib.TransportTCP},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newTestServer(t, testServerConfig{clip: clip, udp: tc.serverUDP})
			src, err := NewRTSPSource(RTSPConfig{URL: srv.url("", ""), Transport: tc.transport})
			if err != nil {
				t.Fatal(err)
			}
			st := NewStream(StreamConfig{Name: "cam/main"})
			sub, _ := st.Subscribe(SubscribeOptions{Name: "test", QueueLen: 256, StartAtKeyframe: true})
			stop := runSource(t, src, st)

			aus := readAUs(t, sub, 30, 10*time.Second)
			checkPlayback(t, clip, aus)
			if m := st.Media(); m.Codec != CodecH264 || m.Width != 320 || m.Height != 240 {
				t.Errorf("media %+v, want H264 320x240", m)
			}
			c := st.Metrics().Counts()
			if c.Packets < 30 || c.Bytes < uint64(c.Packets)*12 || c.Frames < 30 || c.RTPErrors != 0 || c.DecodeErrors != 0 {
				t.Errorf("counters %+v", c)
			}
			if err := stop(); !errors.Is(err, context.Canceled) {
				t.Errorf("Run after cancel returned %v, want context.Canceled", err)
			}
			if got := srv.setupTransports(); len(got) != 1 || got[0] != tc.want {
				t.Errorf("server saw SETUP with %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRTSPH265Plays(t *testing.T) {
	t.Parallel()
	clip := makeClip(t, CodecH265, 320, 240, 25, 10, 2)
	srv := newTestServer(t, testServerConfig{clip: clip})
	src, err := NewRTSPSource(RTSPConfig{URL: srv.url("", ""), Transport: TransportTCP})
	if err != nil {
		t.Fatal(err)
	}
	st := NewStream(StreamConfig{Name: "cam/main"})
	sub, _ := st.Subscribe(SubscribeOptions{Name: "test", QueueLen: 256, StartAtKeyframe: true})
	runSource(t, src, st)

	// libx265 writes VPS/SPS/PPS before the first keyframe only; the
	// stream must put them into every later one.
	aus := readAUs(t, sub, 30, 10*time.Second)
	checkPlayback(t, clip, aus)
	if m := st.Media(); m.Codec != CodecH265 || m.Width != 320 || m.Height != 240 || len(m.ParamSets) != 3 {
		t.Errorf("media %+v, want H265 320x240 with 3 parameter sets", m)
	}
}

func TestRTSPParameterSets(t *testing.T) {
	clip := makeClip(t, CodecH264, 320, 240, 25, 10, 2)
	cases := []struct {
		name string
		cfg  testServerConfig
	}{
		{"only in sdp", testServerConfig{clip: clip, stripParams: true}},
		{"only in band", testServerConfig{clip: clip, noSDPParams: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newTestServer(t, tc.cfg)
			src, err := NewRTSPSource(RTSPConfig{URL: srv.url("", ""), Transport: TransportTCP})
			if err != nil {
				t.Fatal(err)
			}
			st := NewStream(StreamConfig{Name: "cam/main"})
			sub, _ := st.Subscribe(SubscribeOptions{Name: "test", QueueLen: 256, StartAtKeyframe: true})
			runSource(t, src, st)
			checkPlayback(t, clip, readAUs(t, sub, 25, 10*time.Second))

			// A late subscriber's first access unit decodes on its own.
			late, _ := st.Subscribe(SubscribeOptions{Name: "late", StartAtKeyframe: true})
			first := readAUs(t, late, 1, 5*time.Second)[0]
			if !first.Key || !containsNALU(first.NALUs, clip.sps) || !containsNALU(first.NALUs, clip.pps) {
				t.Error("late subscriber's first access unit is not a keyframe with SPS and PPS")
			}
		})
	}
}

func TestRTSPAuthentication(t *testing.T) {
	clip := makeClip(t, CodecH264, 320, 240, 25, 10, 1)
	const user, pass = "viewer", "c0rrect-horse"
	cases := []struct {
		name   string
		method auth.VerifyMethod
	}{
		{"basic", auth.VerifyMethodBasic},
		{"digest", auth.VerifyMethodDigestMD5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newTestServer(t, testServerConfig{clip: clip, user: user, pass: pass,
				methods: []auth.VerifyMethod{tc.method}})

			for _, cfg := range []RTSPConfig{
				{URL: srv.url(user, pass)},
				{URL: srv.url("", ""), Username: user, Password: pass},
			} {
				cfg.Transport = TransportTCP
				src, err := NewRTSPSource(cfg)
				if err != nil {
					t.Fatal(err)
				}
				st := NewStream(StreamConfig{Name: "cam/main"})
				sub, _ := st.Subscribe(SubscribeOptions{Name: "test", StartAtKeyframe: true})
				stop := runSource(t, src, st)
				readAUs(t, sub, 5, 10*time.Second)
				stop()
			}

			const wrong = "wr0ng-password"
			for _, cfg := range []RTSPConfig{
				{URL: srv.url(user, wrong)},
				{URL: srv.url("", ""), Username: user, Password: wrong},
				{URL: srv.url("", "")},
			} {
				cfg.Transport = TransportTCP
				src, err := NewRTSPSource(cfg)
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(src.String(), wrong) {
					t.Errorf("source name %q shows the password", src.String())
				}
				st := NewStream(StreamConfig{Name: "cam/main"})
				err = src.Run(context.Background(), st)
				if !errors.Is(err, ErrUnauthorized) {
					t.Fatalf("Run with a wrong password: %v, want ErrUnauthorized", err)
				}
				if strings.Contains(err.Error(), wrong) {
					t.Errorf("error %q shows the password", err)
				}
				if st.Generation() != 0 {
					t.Error("refused session began the stream")
				}
			}
		})
	}
}

func TestRTSPGarbagePayloadsAreCounted(t *testing.T) {
	t.Parallel()
	clip := makeClip(t, CodecH264, 320, 240, 25, 10, 2)
	srv := newTestServer(t, testServerConfig{clip: clip})
	src, err := NewRTSPSource(RTSPConfig{URL: srv.url("", ""), Transport: TransportTCP})
	if err != nil {
		t.Fatal(err)
	}
	st := NewStream(StreamConfig{Name: "cam/main"})
	sub, _ := st.Subscribe(SubscribeOptions{Name: "test", QueueLen: 512, StartAtKeyframe: true})
	runSource(t, src, st)
	readAUs(t, sub, 10, 10*time.Second)
	before := st.Metrics().Counts()

	// Each garbage packet gets its own timestamp and a marker bit, as a
	// broken camera would send them.
	garbage := func(payload ...byte) *rtp.Packet {
		return &rtp.Packet{Header: rtp.Header{Marker: true}, Payload: payload}
	}
	srv.injectPackets(
		garbage(),                    // empty payload
		garbage(0x7c),                // FU-A without its header
		garbage(0x7c, 0x05, 1, 2, 3), // FU-A middle fragment, no start
		garbage(0x78, 0x00),          // STAP-A with a truncated size
		garbage(0x85, 0x88, 0x80),    // forbidden bit set
		garbage(0x1e, 0x01, 0x02),    // NAL unit type 30
		garbage(0x67, 0x42),          // truncated SPS
		&rtp.Packet{Header: rtp.Header{Marker: false}, Payload: []byte{0x7c, 0x85, 1, 2}}, // FU-A start
		nil,                       // a lost packet in the middle of the fragmented unit
		garbage(0x7c, 0x45, 3, 4), // FU-A end
	)
	// The stream carries on: 20 more pictures arrive, all of them valid.
	aus := readAUs(t, sub, 40, 10*time.Second)
	after := st.Metrics().Counts()
	for i, au := range aus {
		for _, n := range au.NALUs {
			if err := checkNALU(CodecH264, n); err != nil {
				t.Fatalf("access unit %d after garbage: %v", i, err)
			}
		}
		if au.Key && (!containsNALU(au.NALUs, clip.sps) || containsNALU(au.NALUs, []byte{0x67, 0x42})) {
			t.Fatalf("keyframe %d after garbage has the wrong SPS", i)
		}
	}
	if d := after.RTPErrors - before.RTPErrors; d < 5 {
		t.Errorf("rtp errors rose by %d, want at least 5 (empty, FU-A x3, STAP-A)", d)
	}
	if d := after.DecodeErrors - before.DecodeErrors; d != 3 {
		t.Errorf("decode errors rose by %d, want 3 (forbidden bit, type 30, truncated SPS)", d)
	}
	if d := after.RTPLost - before.RTPLost; d != 1 {
		t.Errorf("rtp lost rose by %d, want 1", d)
	}
	if m := st.Media(); m.Width != 320 || m.Height != 240 {
		t.Errorf("media after garbage %dx%d", m.Width, m.Height)
	}
}

func TestNewRTSPSourceRejectsBadConfig(t *testing.T) {
	cases := []struct {
		cfg  RTSPConfig
		want string
	}{
		{RTSPConfig{URL: "http://u:topsecret@h/x"}, "http"},
		{RTSPConfig{URL: "rtsp://u:topsecret@h/x", Transport: "quic"}, `transport "quic"`},
		{RTSPConfig{URL: "rtsp://u:topsecret@/x"}, "no host"},
		{RTSPConfig{URL: "rtsp://u:topsecret@h:99999999/x\x7f"}, "parse URL"},
	}
	for _, c := range cases {
		_, err := NewRTSPSource(c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewRTSPSource(%q): %v, want an error about %s", RedactURL(c.cfg.URL), err, c.want)
			continue
		}
		if strings.Contains(err.Error(), "topsecret") {
			t.Errorf("error %q shows the password", err)
		}
	}
}

func TestTicksToDuration(t *testing.T) {
	cases := []struct {
		ticks int64
		want  time.Duration
	}{
		{90000, time.Second},
		{45, 500 * time.Microsecond},
		{-90000, -time.Second},
		{90000 * 3600 * 48, 48 * time.Hour},
	}
	for _, c := range cases {
		if got := ticksToDuration(c.ticks, 90000); got != c.want {
			t.Errorf("ticksToDuration(%d) = %v, want %v", c.ticks, got, c.want)
		}
	}
}

// TestRTSPDialPassesTheGuard: a source given the SSRF guard's dialer
// refuses, before connecting, an address the guard refuses, and plays once
// the guard allows it.
func TestRTSPDialPassesTheGuard(t *testing.T) {
	clip := makeClip(t, CodecH264, 320, 240, 25, 10, 1)
	srv := newTestServer(t, testServerConfig{clip: clip})
	for _, allow := range []bool{false, true} {
		guard := netguard.Policy{AllowLoopback: allow}
		src, err := NewRTSPSource(RTSPConfig{URL: srv.url("", ""), Transport: TransportTCP, Dial: guard.Dialer().DialContext})
		if err != nil {
			t.Fatal(err)
		}
		st := NewStream(StreamConfig{Name: "cam/main"})
		if !allow {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := src.Run(ctx, st)
			cancel()
			if !errors.Is(err, netguard.ErrRefused) || st.Generation() != 0 {
				t.Fatalf("Run to loopback with loopback refused: %v (generation %d), want the guard's refusal", err, st.Generation())
			}
			continue
		}
		sub, _ := st.Subscribe(SubscribeOptions{Name: "test", StartAtKeyframe: true})
		stop := runSource(t, src, st)
		readAUs(t, sub, 3, 10*time.Second)
		stop()
	}
}
