package console

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"flowwatch/ingest"
	"flowwatch/internal/store"
)

// whepClip holds the access units of a test clip made once per run: 3 s
// of ffmpeg's testsrc2 at 320x240, 15 fps, a keyframe every 15 frames, no
// B-frames (as cameras send).
var whepClip struct {
	once sync.Once
	aus  []*ingest.AccessUnit
	err  error
}

const whepClipFPS = 15

func whepClipAUs(t *testing.T) []*ingest.AccessUnit {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed:", err)
	}
	whepClip.once.Do(func() {
		dir, err := os.MkdirTemp("", "whep-clip")
		if err != nil {
			whepClip.err = err
			return
		}
		defer os.RemoveAll(dir)
		path := filepath.Join(dir, "clip.h264")
		out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=15",
			"-t", "3", "-c:v", "libx264", "-bf", "0", "-g", "15", "-pix_fmt", "yuv420p", "-f", "h264", path).CombinedOutput()
		if err != nil {
			whepClip.err = errors.New("ffmpeg: " + err.Error() + ": " + string(out))
			return
		}
		r, err := ingest.OpenAccessUnitFile(context.Background(), path)
		if err != nil {
			whepClip.err = err
			return
		}
		defer r.Close()
		for {
			au, err := r.Next(context.Background())
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				whepClip.err = err
				return
			}
			whepClip.aus = append(whepClip.aus, au)
		}
	})
	if whepClip.err != nil {
		t.Fatal(whepClip.err)
	}
	if len(whepClip.aus) < 40 || !whepClip.aus[0].Key {
		t.Fatalf("clip has %d access units (first key: %v), want 45 starting with a keyframe", len(whepClip.aus), len(whepClip.aus) > 0 && whepClip.aus[0].Key)
	}
	return whepClip.aus
}

// whepStreams is a LiveStreams of fixed streams.
type whepStreams map[string]*ingest.Stream

func (m whepStreams) LiveStream(camera string) (*ingest.Stream, bool) {
	s, ok := m[camera]
	return s, ok
}

// whepEnv is a WHEP endpoint with a real Auth on a SQLite file, served on
// loopback, and a camera "gate" whose stream plays the clip in real time.
// The stream "reconnects" (a new source session, from the clip's first
// keyframe) every restartEvery access units.
type whepEnv struct {
	t       *testing.T
	whep    *WHEP
	auth    *Auth
	db      *store.Store
	set     *metrics.Set
	stream  *ingest.Stream
	srv     *httptest.Server
	client  *http.Client
	token   string // viewer1's API token
	token2  string // viewer2's
	stop    context.CancelFunc
	fed     chan struct{}
	closing sync.Once
}

const whepRestartEvery = 30

func newWHEPEnv(t *testing.T, tune func(*WHEPConfig)) *whepEnv {
	t.Helper()
	aus := whepClipAUs(t)
	db, err := store.Open(filepath.Join(t.TempDir(), "flowwatch.db"))
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	auth, err := NewAuth(AuthConfig{Store: db, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	e := &whepEnv{t: t, db: db, auth: auth, set: metrics.NewSet(), fed: make(chan struct{})}
	ctx := context.Background()
	for _, u := range []string{"viewer1", "viewer2"} {
		if err := auth.CreateUser(ctx, u, RoleViewer, nil, ""); err != nil {
			t.Fatal(err)
		}
	}
	if e.token, err = auth.CreateAPIToken(ctx, "viewer1", "whep test"); err != nil {
		t.Fatal(err)
	}
	if e.token2, err = auth.CreateAPIToken(ctx, "viewer2", "whep test"); err != nil {
		t.Fatal(err)
	}

	e.stream = ingest.NewStream(ingest.StreamConfig{Name: "gate/main"})
	cfg := WHEPConfig{
		Streams:     whepStreams{"gate": e.stream},
		Logger:      quiet,
		Metrics:     e.set,
		ICELoopback: true,
		ipFilter:    func(ip net.IP) bool { return ip.IsLoopback() },
	}
	if tune != nil {
		tune(&cfg)
	}
	if e.whep, err = NewWHEP(cfg); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	e.whep.Register(mux, auth)
	e.srv = httptest.NewServer(mux)
	e.client = &http.Client{Transport: &http.Transport{}, Timeout: 20 * time.Second}

	fctx, stop := context.WithCancel(context.Background())
	e.stop = stop
	go e.feed(fctx, aus)
	t.Cleanup(e.close)
	return e
}

// feed publishes the clip in real time with PTS spaced 1/15 s, starting
// a new source session at the clip's start every whepRestartEvery access
// units.
func (e *whepEnv) feed(ctx context.Context, aus []*ingest.AccessUnit) {
	defer close(e.fed)
	tick := time.NewTicker(time.Second / whepClipFPS)
	defer tick.Stop()
	for n := 0; ; n++ {
		if n%whepRestartEvery == 0 {
			e.stream.Begin(ingest.CodecH264, nil)
		}
		au := *aus[n%whepRestartEvery]
		au.PTS = time.Duration(n) * time.Second / whepClipFPS
		au.Received = time.Now()
		e.stream.Publish(&au)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// close ends everything the env started; idempotent.
func (e *whepEnv) close() {
	e.closing.Do(func() {
		e.whep.Close()
		e.srv.Close()
		e.stop()
		<-e.fed
		e.stream.Close()
		e.client.CloseIdleConnections()
		e.db.Close()
	})
}

// whepAnswer is an HTTP answer, its body read.
type whepAnswer struct {
	code   int
	header http.Header
	body   string
}

// do sends a request with token (none when empty) as bearer.
func (e *whepEnv) do(method, path, contentType, body, token string) whepAnswer {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return whepAnswer{code: resp.StatusCode, header: resp.Header, body: string(b)}
}

// wantWHEPError checks a JSON error answer.
func wantWHEPError(t *testing.T, what string, a whepAnswer, code int, word string) {
	t.Helper()
	if a.code != code {
		t.Errorf("%s: %d %s, want %d", what, a.code, a.body, code)
		return
	}
	if a.header.Get("Content-Type") != "application/json" || !strings.Contains(a.body, `"error"`) || !strings.Contains(a.body, word) {
		t.Errorf("%s: %d answer %s %q is no JSON error saying %q", what, code, a.header.Get("Content-Type"), a.body, word)
	}
}

// whepViewer is a pion client watching one camera, counting what it
// receives.
type whepViewer struct {
	pc       *webrtc.PeerConnection
	location string
	answer   whepAnswer

	mu        sync.Mutex
	packets   int
	frames    int // packets with the marker bit
	firstNAL  int // NAL unit type of the first packet
	firstVCL  int // type of the first slice NAL unit (5: IDR, 1: other)
	stamps    []uint32
	readerEnd chan struct{}
}

// newWHEPClient makes a pion PeerConnection offering to receive video
// (and audio when withAudio), with ICE on loopback only, its offer
// complete with candidates.
func newWHEPClient(t *testing.T, video, audio bool) (*webrtc.PeerConnection, string) {
	t.Helper()
	pc := newWHEPPeer(t)
	return pc, whepClientOffer(t, pc, video, audio)
}

// newWHEPPeer makes a pion PeerConnection with the default codecs and
// ICE on loopback (UDP4, no mDNS) only.
func newWHEPPeer(tb testing.TB) *webrtc.PeerConnection {
	tb.Helper()
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		tb.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		tb.Fatal(err)
	}
	return pc
}

// whepClientOffer adds recvonly transceivers for video and/or audio to pc
// and returns its offer, set as local description, once ICE gathering is
// complete.
func whepClientOffer(tb testing.TB, pc *webrtc.PeerConnection, video, audio bool) string {
	tb.Helper()
	recv := webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}
	if video {
		if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, recv); err != nil {
			tb.Fatal(err)
		}
	}
	if audio {
		if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, recv); err != nil {
			tb.Fatal(err)
		}
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		tb.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		tb.Fatal(err)
	}
	select {
	case <-gathered:
	case <-time.After(5 * time.Second):
		tb.Fatal("client ICE gathering did not finish in 5 s")
	}
	return pc.LocalDescription().SDP
}

var whepLocation = regexp.MustCompile(`^/whep/gate/[0-9a-f]{32}$`)

// view opens a session on camera gate as token's user and checks the
// answer of the POST.
func (e *whepEnv) view(token string) *whepViewer {
	e.t.Helper()
	pc, offer := newWHEPClient(e.t, true, false)
	v := &whepViewer{pc: pc, firstNAL: -1, firstVCL: -1, readerEnd: make(chan struct{})}
	pc.OnTrack(func(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		defer close(v.readerEnd)
		for {
			pkt, _, err := track.ReadRTP()
			if err != nil {
				return
			}
			v.note(pkt.Payload, pkt.Marker, pkt.Timestamp)
		}
	})
	a := e.do("POST", "/whep/gate", "application/sdp", offer, token)
	v.answer = a
	if a.code != http.StatusCreated {
		pc.Close()
		e.t.Fatalf("POST offer: %d %s, want 201", a.code, a.body)
	}
	v.location = a.header.Get("Location")
	if !whepLocation.MatchString(v.location) {
		e.t.Errorf("Location %q, want /whep/gate/<32 hex digits>", v.location)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/sdp" {
		e.t.Errorf("answer Content-Type %q, want application/sdp", ct)
	}
	if !strings.Contains(a.body, "a=candidate:") || !strings.Contains(a.body, "H264/90000") || !strings.Contains(a.body, "a=sendonly") {
		e.t.Errorf("answer lacks candidates, H.264 or sendonly:\n%s", a.body)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: a.body}); err != nil {
		e.t.Fatalf("client refuses the answer: %v\n%s", err, a.body)
	}
	e.t.Cleanup(func() { v.pc.GracefulClose() })
	return v
}

// note records one received RTP packet.
func (v *whepViewer) note(payload []byte, marker bool, ts uint32) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.packets++
	if len(payload) == 0 {
		return
	}
	typ := int(payload[0] & 0x1f)
	if v.firstNAL < 0 {
		v.firstNAL = typ
	}
	if typ == 28 && len(payload) > 1 { // FU-A: the fragmented unit's type
		typ = int(payload[1] & 0x1f)
	}
	if v.firstVCL < 0 && (typ == 1 || typ == 5) {
		v.firstVCL = typ
	}
	if marker {
		v.frames++
		v.stamps = append(v.stamps, ts)
	}
}

// counts returns the packets and frames received so far.
func (v *whepViewer) counts() (packets, frames int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.packets, v.frames
}

// waitFrames waits until the viewer has received at least n frames.
func (v *whepViewer) waitFrames(t *testing.T, what string, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		p, f := v.counts()
		if f >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d packets, %d frames after %v, want %d frames (connection %s)", what, p, f, within, n, v.pc.ConnectionState())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWHEPRelaysCameraToViewers(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	e := newWHEPEnv(t, nil)
	time.Sleep(300 * time.Millisecond) // the stream caches a keyframe and some frames

	a := e.view(e.token)
	b := e.view(e.token2)
	a.waitFrames(t, "viewer a", 12, 10*time.Second)
	b.waitFrames(t, "viewer b", 12, 10*time.Second)
	if n := e.whep.Sessions(); n != 2 {
		t.Errorf("Sessions() = %d, want 2", n)
	}
	if n := e.stream.Subscribers(); n != 2 {
		t.Errorf("stream has %d subscribers, want 2 (one per viewer)", n)
	}
	for name, v := range map[string]*whepViewer{"a": a, "b": b} {
		v.mu.Lock()
		if v.firstNAL != 7 {
			t.Errorf("viewer %s: first packet carries NAL unit type %d, want 7 (SPS before the keyframe)", name, v.firstNAL)
		}
		if v.firstVCL != 5 {
			t.Errorf("viewer %s: first slice has NAL unit type %d, want 5 (IDR)", name, v.firstVCL)
		}
		// PTS 1/15 s apart are 6000 ticks of the 90 kHz clock.
		for i := 1; i < len(v.stamps); i++ {
			if d := v.stamps[i] - v.stamps[i-1]; d < 5999 || d > 6001 {
				t.Errorf("viewer %s: frames %d and %d are %d ticks apart, want 6000", name, i-1, i, d)
				break
			}
		}
		v.mu.Unlock()
	}

	// The camera reconnects (a new source session): the viewers go on.
	gen := e.stream.Generation()
	waitFor(t, "the stream's next source session", func() bool { return e.stream.Generation() > gen })
	_, fa := a.counts()
	a.waitFrames(t, "viewer a after the camera reconnected", fa+10, 5*time.Second)

	// Another viewer cannot end a's session; a can, once.
	wantWHEPError(t, "DELETE of another user's session", e.do("DELETE", a.location, "", "", e.token2), http.StatusNotFound, "no live view session")
	wantWHEPError(t, "DELETE without login", e.do("DELETE", a.location, "", "", ""), http.StatusUnauthorized, "login")
	if r := e.do("DELETE", a.location, "", "", e.token); r.code != http.StatusOK {
		t.Fatalf("DELETE %s: %d %s, want 200", a.location, r.code, r.body)
	}
	if n := e.whep.Sessions(); n != 1 {
		t.Errorf("Sessions() after DELETE = %d, want 1", n)
	}
	if n := e.stream.Subscribers(); n != 1 {
		t.Errorf("stream has %d subscribers after DELETE, want 1", n)
	}
	wantWHEPError(t, "second DELETE", e.do("DELETE", a.location, "", "", e.token), http.StatusNotFound, "no live view session")
	_, fb := b.counts()
	b.waitFrames(t, "viewer b after a left", fb+5, 5*time.Second)

	var sb strings.Builder
	e.set.WritePrometheus(&sb)
	for _, line := range []string{"flowwatch_whep_sessions 1\n", "flowwatch_whep_sessions_total 2\n", "flowwatch_whep_dropped_access_units_total "} {
		if !strings.Contains(sb.String(), line) {
			t.Errorf("metrics lack %q:\n%s", line, sb.String())
		}
	}

	// Close ends the rest; the endpoint then turns viewers away.
	e.whep.Close()
	if n := e.whep.Sessions(); n != 0 {
		t.Errorf("Sessions() after Close = %d, want 0", n)
	}
	if n := e.stream.Subscribers(); n != 0 {
		t.Errorf("stream has %d subscribers after Close, want 0", n)
	}
	late, offer := newWHEPClient(t, true, false)
	wantWHEPError(t, "offer after Close", e.do("POST", "/whep/gate", "application/sdp", offer, e.token), http.StatusServiceUnavailable, "limit")
	late.GracefulClose()

	for _, v := range []*whepViewer{a, b} {
		v.pc.GracefulClose()
		<-v.readerEnd
	}
	e.close()
	goleak.VerifyNone(t, ignore)
}

func TestWHEPRefusesBadRequests(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	e := newWHEPEnv(t, func(c *WHEPConfig) { c.MaxViewers = 1 })
	client, offer := newWHEPClient(t, true, false)
	defer client.GracefulClose()

	wantWHEPError(t, "unknown camera", e.do("POST", "/whep/nowhere", "application/sdp", offer, e.token), http.StatusNotFound, `no camera \"nowhere\"`)
	wantWHEPError(t, "no login", e.do("POST", "/whep/gate", "application/sdp", offer, ""), http.StatusUnauthorized, "login required")
	wantWHEPError(t, "JSON body", e.do("POST", "/whep/gate", "application/json", `{"sdp":1}`, e.token), http.StatusUnsupportedMediaType, "application/sdp")
	wantWHEPError(t, "no content type", e.do("POST", "/whep/gate", "", offer, e.token), http.StatusUnsupportedMediaType, "application/sdp")
	wantWHEPError(t, "garbage SDP", e.do("POST", "/whep/gate", "application/sdp", "v=0\r\nthis is no SDP\r\n", e.token), http.StatusBadRequest, "offer")
	wantWHEPError(t, "empty offer", e.do("POST", "/whep/gate", "application/sdp", "", e.token), http.StatusBadRequest, "empty offer")
	wantWHEPError(t, "huge offer", e.do("POST", "/whep/gate", "application/sdp", offer+strings.Repeat("a=x-pad:0123456789\r\n", 4000), e.token),
		http.StatusRequestEntityTooLarge, "65536 bytes")
	audio, audioOffer := newWHEPClient(t, false, true)
	defer audio.GracefulClose()
	wantWHEPError(t, "audio-only offer", e.do("POST", "/whep/gate", "application/sdp", audioOffer, e.token), http.StatusBadRequest, "H.264 video")
	if r := e.do("GET", "/whep/gate", "", "", e.token); r.code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d %s, want 405", r.code, r.body)
	}
	wantWHEPError(t, "PATCH", e.do("PATCH", "/whep/gate/0123", "application/trickle-ice-sdpfrag", "a=end-of-candidates\r\n", e.token), http.StatusMethodNotAllowed, "DELETE")
	wantWHEPError(t, "DELETE of no session", e.do("DELETE", "/whep/gate/0123", "", "", e.token), http.StatusNotFound, "no live view session")
	if r := e.do("OPTIONS", "/whep/gate", "", "", ""); r.code != http.StatusNoContent || r.header.Get("Accept-Post") != "application/sdp" {
		t.Errorf("OPTIONS: %d Accept-Post %q, want 204 application/sdp", r.code, r.header.Get("Accept-Post"))
	}
	if n := e.whep.Sessions(); n != 0 {
		t.Errorf("refused offers left %d sessions", n)
	}

	// One viewer is the limit: the next is turned away until it leaves.
	r := e.do("POST", "/whep/gate", "application/sdp", offer, e.token)
	if r.code != http.StatusCreated {
		t.Fatalf("first offer: %d %s, want 201", r.code, r.body)
	}
	other, offer2 := newWHEPClient(t, true, false)
	defer other.GracefulClose()
	over := e.do("POST", "/whep/gate", "application/sdp", offer2, e.token2)
	wantWHEPError(t, "offer over MaxViewers", over, http.StatusServiceUnavailable, "limit of 1 viewers")
	if over.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if r := e.do("DELETE", r.header.Get("Location"), "", "", e.token); r.code != http.StatusOK {
		t.Fatalf("DELETE: %d %s", r.code, r.body)
	}
	if r := e.do("POST", "/whep/gate", "application/sdp", offer2, e.token2); r.code != http.StatusCreated {
		t.Errorf("offer after the first viewer left: %d %s, want 201", r.code, r.body)
	}

	e.close()
	client.GracefulClose()
	audio.GracefulClose()
	other.GracefulClose()
	goleak.VerifyNone(t, ignore)
}

// TestWHEPViewsAreAudited checks that a live view leaves "video.view.start"
// when it opens and "video.view.end", with its span, when it ends: by the
// viewer's DELETE and by Close.
func TestWHEPViewsAreAudited(t *testing.T) {
	e := newWHEPEnv(t, nil)
	time.Sleep(300 * time.Millisecond) // the stream caches a keyframe
	a := e.view(e.token)
	b := e.view(e.token2)
	a.waitFrames(t, "viewer a", 5, 10*time.Second)
	if r := e.do("DELETE", a.location, "", "", e.token); r.code != http.StatusOK {
		t.Fatalf("DELETE: %d %s", r.code, r.body)
	}
	id := a.location[len(a.location)-32:]
	entries, err := e.db.AuditEntries(context.Background(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var start, end *store.AuditEntry
	for i := range entries {
		x := &entries[i]
		if x.Actor != "viewer1" || x.Target != "camera gate" || !strings.Contains(x.Detail, id[:8]) {
			continue
		}
		switch x.Action {
		case "video.view.start":
			start = x
		case "video.view.end":
			end = x
		}
	}
	if start == nil || end == nil {
		t.Fatalf("viewer1's view lacks its start (%v) or end (%v) entry: %+v", start != nil, end != nil, entries)
	}
	from := start.At.UTC().Format(time.RFC3339)
	if start.Role != RoleViewer || start.Remote != "127.0.0.1" || !strings.Contains(start.Detail, "from "+from) ||
		end.ID <= start.ID || !strings.Contains(end.Detail, "from "+from+" to "+end.At.UTC().Format(time.RFC3339)) ||
		!strings.Contains(end.Detail, errWHEPDeleted.Error()) {
		t.Errorf("entries:\n start %+v\n end   %+v", *start, *end)
	}

	// Close ends viewer2's view: it is audited too, before Close returns.
	e.whep.Close()
	ends, err := e.db.AuditEntries(context.Background(), store.AuditFilter{Actor: "viewer2", Action: "video.view.end"})
	if err != nil || len(ends) != 1 || !strings.Contains(ends[0].Detail, errWHEPClosing.Error()) {
		t.Errorf("viewer2's end after Close: %+v, %v", ends, err)
	}
	for _, v := range []*whepViewer{a, b} {
		v.pc.GracefulClose()
	}
}
