package console

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"flowwatch/internal/config"
)

// TestRateLimiterBucket drives the token bucket on a fake clock: a burst,
// then the rate, each client on its own, and a wait that says how long.
func TestRateLimiterBucket(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := newRateLimiter(2, 5, func() time.Time { return now })
	for i := range 5 {
		if _, ok := l.allow("10.0.0.1"); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	wait, ok := l.allow("10.0.0.1")
	if ok {
		t.Fatal("the request after the burst was allowed")
	}
	if wait != 500*time.Millisecond {
		t.Errorf("wait %s, want 500ms at 2 a second", wait)
	}
	if _, ok := l.allow("10.0.0.2"); !ok {
		t.Error("another client was refused")
	}
	now = now.Add(500 * time.Millisecond)
	if _, ok := l.allow("10.0.0.1"); !ok {
		t.Error("refused after waiting as told")
	}
	if _, ok := l.allow("10.0.0.1"); ok {
		t.Error("two requests allowed for one token")
	}
	// a long rest fills the bucket only to the burst
	now = now.Add(time.Hour)
	n := 0
	for ; n < 100; n++ {
		if _, ok := l.allow("10.0.0.1"); !ok {
			break
		}
	}
	if n != 5 {
		t.Errorf("after an hour's rest %d requests allowed at once, want the burst of 5", n)
	}
}

// TestRateLimiterForgetsAndBounds fills the limiter with clients: those
// whose bucket is full again are forgotten, and past the bound new
// clients wait rather than grow memory without end.
func TestRateLimiterForgetsAndBounds(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := newRateLimiter(10, 10, func() time.Time { return now })
	for i := range rateLimitPruneAt {
		l.allow(fmt.Sprintf("c%d", i))
	}
	now = now.Add(2 * time.Second) // every bucket is full again after 1 s
	if _, ok := l.allow("late"); !ok {
		t.Fatal("a new client was refused")
	}
	if len(l.buckets) != 1 {
		t.Errorf("%d buckets kept, want only the new client's", len(l.buckets))
	}
	for i := range rateLimitMax {
		l.buckets[fmt.Sprintf("busy%d", i)] = tokenBucket{at: now}
	}
	if _, ok := l.allow("one-too-many"); ok {
		t.Error("a client past the bound was allowed")
	}
}

// rateLimitGet asks for path from the local address localIP, so that a
// test can be several clients over loopback.
func rateLimitGet(t *testing.T, base, path, localIP string) *http.Response {
	t.Helper()
	return requestFrom(t, localIP, "GET", base+path, nil, "")
}

// requestFrom sends one request from the loopback address localIP with the
// given headers and body.
func requestFrom(t *testing.T, localIP, method, url string, header http.Header, body string) *http.Response {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(localIP)}, Timeout: 5 * time.Second}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
	}}
	defer c.CloseIdleConnections()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s from %s: %v", method, url, localIP, err)
	}
	return resp
}

// TestRateLimitEveryRoute limits a client over every route, loopback
// included: past its burst it gets 429 with a JSON error, Retry-After and
// the security headers, while another client is served.
func TestRateLimitEveryRoute(t *testing.T) {
	s := New(Config{Listen: "127.0.0.1:0", RateLimitPerSecond: 0.5, RateLimitBurst: 4})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i, path := range []string{"/healthz", "/", "/metrics", "/nope"} {
		resp := rateLimitGet(t, s.URL(), path, "127.0.0.1")
		secDrain(resp)
		if resp.StatusCode == http.StatusTooManyRequests {
			t.Fatalf("request %d (%s) of the burst refused", i+1, path)
		}
	}
	for _, path := range []string{"/healthz", "/public", "/assets/x.js", "/api/v1/session"} {
		resp := rateLimitGet(t, s.URL(), path, "127.0.0.1")
		body := secDrain(resp)
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("GET %s past the burst: %d, want 429", path, resp.StatusCode)
		}
		var e struct {
			Error string `json:"error"`
		}
		if err := json.Unmarshal([]byte(body), &e); err != nil || !strings.Contains(e.Error, "too many requests") {
			t.Errorf("GET %s: body %q, want a JSON error", path, body)
		}
		if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || secs < 1 || secs > 2 {
			t.Errorf("GET %s: Retry-After %q, want 1 or 2 seconds at 0.5 a second", path, resp.Header.Get("Retry-After"))
		}
		if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s: the 429 lacks the security headers: %v", path, resp.Header)
		}
	}
	resp := rateLimitGet(t, s.URL(), "/healthz", "127.0.0.2")
	secDrain(resp)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("another client: %d, want 200", resp.StatusCode)
	}
}

// TestRateLimitFromSite takes the limits from the site's config when the
// server's own are not set.
func TestRateLimitFromSite(t *testing.T) {
	site, err := config.Parse("site.yaml", []byte("console:\n  rate_limit_per_second: 0.1\n  rate_limit_burst: 2\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{Listen: "127.0.0.1:0", Site: site})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	codes := []int{}
	for range 3 {
		resp := rateLimitGet(t, s.URL(), "/healthz", "127.0.0.1")
		secDrain(resp)
		codes = append(codes, resp.StatusCode)
	}
	if fmt.Sprint(codes) != "[200 200 429]" {
		t.Errorf("three requests at a burst of 2: %v, want [200 200 429]", codes)
	}
}

// TestBodyLimit bounds every request's body: one that says it is over the
// bound is refused at once with 413, one that does not say is cut off at
// the bound when read, and a route's own tighter bound still holds.
func TestBodyLimit(t *testing.T) {
	var read int64
	var readErr error
	h := limitBodies(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		read, readErr = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}), 1<<10)

	rec := &secRecorder{header: http.Header{}}
	r, _ := http.NewRequest("POST", "/x", strings.NewReader(strings.Repeat("a", 2<<10)))
	h.ServeHTTP(rec, r)
	if rec.status != http.StatusRequestEntityTooLarge {
		t.Errorf("a 2 KiB body with its length: %d, want 413", rec.status)
	}

	rec = &secRecorder{header: http.Header{}}
	r, _ = http.NewRequest("POST", "/x", io.NopCloser(strings.NewReader(strings.Repeat("a", 2<<10))))
	r.ContentLength = -1 // chunked: the length is not said
	h.ServeHTTP(rec, r)
	if read != 1<<10 || readErr == nil {
		t.Errorf("a 2 KiB chunked body: read %d bytes, err %v; want 1 KiB and an error", read, readErr)
	}

	rec = &secRecorder{header: http.Header{}}
	r, _ = http.NewRequest("POST", "/x", strings.NewReader("small"))
	h.ServeHTTP(rec, r)
	if read != 5 || readErr != nil {
		t.Errorf("a small body: read %d bytes, err %v", read, readErr)
	}

	// through the whole server: a body over MaxRequestBody on any route
	s := New(Config{Listen: "127.0.0.1:0"})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	resp, err := http.Post(s.URL()+"/healthz", "application/octet-stream", strings.NewReader(strings.Repeat("a", MaxRequestBody+1)))
	if err != nil {
		t.Fatal(err)
	}
	body := secDrain(resp)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, `"error"`) {
		t.Errorf("POST of %d bytes: %d %s, want 413 with a JSON error", MaxRequestBody+1, resp.StatusCode, body)
	}
}
