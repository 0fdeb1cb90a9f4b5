package console

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"go.uber.org/goleak"

	"flowwatch/ingest"
	"flowwatch/internal/store"
)

// FuzzWHEPOffer posts arbitrary bodies as application/sdp to /whep/gate of
// a WHEP endpoint whose camera stream has begun (H.264) but sends nothing:
// pion's SDP parsing and the answer checks see every input. Every answer
// is a 201 with an SDP answer or a JSON 4xx error (whep.go answers 5xx
// only at its viewer limit, on shutdown and on a request that ended, none
// of which happens here); an accepted session is deleted again; after each
// input no session is open or pending and the sessions gauge reads 0;
// after the target no goroutine is left.
//
// The seeds are a real offer of a pion PeerConnection (video, and video
// with audio), an audio-only one, and truncated and garbled variants.
//
// The endpoint is built here rather than with newWHEPEnv, which takes a
// *testing.T (a fuzz target has only its *testing.F outside f.Fuzz) and
// needs ffmpeg for a clip the offers do not need.
func FuzzWHEPOffer(f *testing.F) {
	ignore := goleak.IgnoreCurrent()
	f.Cleanup(func() { goleak.VerifyNone(f, ignore) }) // runs last: after the endpoint's cleanups

	video := whepFuzzOffer(f, true, false)
	both := whepFuzzOffer(f, true, true)
	for _, s := range []string{
		video, both, whepFuzzOffer(f, false, true), "", "v=0\r\nthis is no SDP\r\n",
		strings.ReplaceAll(video, "\r\n", "\n"),
		strings.ReplaceAll(video, "m=video", "m=audio"),
		strings.ReplaceAll(video, "H264", "VP8"),
		strings.ReplaceAll(video, "packetization-mode=1", "packetization-mode=0"),
		strings.ReplaceAll(video, "a=recvonly", "a=sendonly"),
		strings.ReplaceAll(video, "a=recvonly", "a=inactive"),
		strings.ReplaceAll(video, "a=fingerprint:", "a=x-fingerprint:"),
		strings.ReplaceAll(video, "a=ice-ufrag:", "a=x-ice-ufrag:"),
		strings.ReplaceAll(video, "UDP/TLS/RTP/SAVPF", "RTP/AVP"),
		strings.Replace(video, "m=video 9", "m=video 0", 1),
	} {
		f.Add(s)
	}
	for _, n := range []int{1, 10, len(video) / 4, len(video) / 2, len(video) - 40, len(video) - 1} {
		if n > 0 && n < len(video) {
			f.Add(video[:n])
		}
	}
	if i := strings.Index(video, "m=video"); i > 0 {
		f.Add(video[:i])         // the session part only
		f.Add(video[i:])         // the media part only
		f.Add(video + video[i:]) // the media section twice
		f.Add(strings.Repeat("\r\n", 2) + video)
	}

	w, srv, token := newWHEPFuzzEndpoint(f)
	client := &http.Client{Timeout: 20 * time.Second}
	f.Cleanup(client.CloseIdleConnections)
	f.Fuzz(func(t *testing.T, offer string) {
		req, err := http.NewRequest("POST", srv.URL+"/whep/gate", strings.NewReader(offer))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/sdp")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		a := rawAnswer{code: resp.StatusCode, header: resp.Header, body: string(body)}
		checkAnswer(t, "POST /whep/gate", a)
		if a.code == http.StatusCreated {
			loc := a.header.Get("Location")
			if !whepLocation.MatchString(loc) || a.header.Get("Content-Type") != "application/sdp" || !strings.Contains(a.body, "H264/90000") {
				t.Fatalf("201 at %q (%s) is no H.264 answer:\n%s", loc, a.header.Get("Content-Type"), a.body)
			}
			del, err := http.NewRequest("DELETE", srv.URL+loc, nil)
			if err != nil {
				t.Fatal(err)
			}
			del.Header.Set("Authorization", "Bearer "+token)
			dr, err := client.Do(del)
			if err != nil {
				t.Fatal(err)
			}
			dr.Body.Close()
			if dr.StatusCode != http.StatusOK {
				t.Fatalf("DELETE %s: %d", loc, dr.StatusCode)
			}
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			w.mu.Lock()
			open, pending := len(w.sessions), w.pending
			w.mu.Unlock()
			if open == 0 && pending == 0 && w.gauge.Get() == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after a %d answer: %d sessions open, %d pending, gauge %g, want none", a.code, open, pending, w.gauge.Get())
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

// newWHEPFuzzEndpoint serves a WHEP endpoint for the camera "gate", whose
// stream has begun (H.264) without sending a picture, on loopback with a
// real Auth, and returns a viewer's API token. Everything ends with tb.
func newWHEPFuzzEndpoint(tb testing.TB) (*WHEP, *httptest.Server, string) {
	tb.Helper()
	db, err := store.Open(filepath.Join(tb.TempDir(), "flowwatch.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	argon := cheapArgon
	auth, err := NewAuth(AuthConfig{Store: db, Logger: quiet, argon: &argon})
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	if err := auth.CreateUser(ctx, "viewer", RoleViewer, nil, ""); err != nil {
		tb.Fatal(err)
	}
	token, err := auth.CreateAPIToken(ctx, "viewer", "whep fuzz")
	if err != nil {
		tb.Fatal(err)
	}
	stream := ingest.NewStream(ingest.StreamConfig{Name: "gate/main"})
	stream.Begin(ingest.CodecH264, nil)
	tb.Cleanup(stream.Close)
	w, err := NewWHEP(WHEPConfig{
		Streams:     whepStreams{"gate": stream},
		Logger:      quiet,
		Metrics:     metrics.NewSet(),
		ICELoopback: true,
		ipFilter:    func(ip net.IP) bool { return ip.IsLoopback() },
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(w.Close)
	mux := http.NewServeMux()
	w.Register(mux, auth)
	srv := httptest.NewServer(jsonMisses(mux))
	tb.Cleanup(srv.Close)
	return w, srv, token
}

// whepFuzzOffer returns the offer, candidates included, of a pion
// PeerConnection receiving video and/or audio on loopback, as
// newWHEPClient makes it; the connection is closed with tb.
func whepFuzzOffer(tb testing.TB, video, audio bool) string {
	tb.Helper()
	pc := newWHEPPeer(tb)
	tb.Cleanup(func() { _ = pc.GracefulClose() })
	return whepClientOffer(tb, pc, video, audio)
}
