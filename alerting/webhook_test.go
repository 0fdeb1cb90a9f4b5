package alerting

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"flowwatch/internal/netguard"
	"flowwatch/internal/store"
)

// webhookTestRequest is what a test receiver saw of one request.
type webhookTestRequest struct {
	header http.Header
	body   []byte
	at     time.Time
}

// webhookTestReceiver is a loopback webhook receiver that records requests
// and answers with reply.
type webhookTestReceiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	reqs  []webhookTestRequest
	reply func(n int, w http.ResponseWriter, r *http.Request) // n counts from 0
}

func newWebhookTestReceiver(t *testing.T, reply func(n int, w http.ResponseWriter, r *http.Request)) *webhookTestReceiver {
	t.Helper()
	rc := &webhookTestReceiver{reply: reply}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		n := len(rc.reqs)
		rc.reqs = append(rc.reqs, webhookTestRequest{header: r.Header.Clone(), body: body, at: time.Now()})
		rc.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body)) // reply may read it again
		if r.Method != http.MethodPost {
			http.Error(w, "want POST, got "+r.Method, http.StatusMethodNotAllowed)
			return
		}
		if rc.reply != nil {
			rc.reply(n, w, r)
		}
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *webhookTestReceiver) requests() []webhookTestRequest {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]webhookTestRequest(nil), rc.reqs...)
}

func newTestWebhook(t *testing.T, cfg WebhookConfig) *Webhook {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "hook"
	}
	cfg.AllowLoopback = true // the test receivers are on loopback
	w, err := NewWebhook(cfg)
	if err != nil {
		t.Fatalf("NewWebhook: %v", err)
	}
	return w
}

func webhookTestDelivery() store.Delivery {
	return store.Delivery{
		ID:             42,
		AlertID:        7,
		Seq:            3,
		Channel:        "hook",
		IdempotencyKey: "flowwatch-alert-7-3",
		Payload:        []byte(`{"kind":"raised","alert":{"id":7,"title":"广场"}}`),
		CreatedAt:      time.Now(),
		NextAttempt:    time.Now(),
	}
}

func TestWebhookSignsAndSetsHeaders(t *testing.T) {
	const secret = "s3cret-shared-key"
	rc := newWebhookTestReceiver(t, nil)
	w := newTestWebhook(t, WebhookConfig{URL: rc.srv.URL + "/hooks/alerts", Secret: secret})
	d := webhookTestDelivery()
	before := time.Now().Unix()
	if err := w.Notify(context.Background(), d); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	after := time.Now().Unix()
	reqs := rc.requests()
	if len(reqs) != 1 {
		t.Fatalf("receiver saw %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if string(r.body) != string(d.Payload) {
		t.Errorf("body %q, want the payload %q", r.body, d.Payload)
	}
	for h, want := range map[string]string{
		"Content-Type":         "application/json",
		"Idempotency-Key":      "flowwatch-alert-7-3",
		"X-Flowwatch-Delivery": "42",
	} {
		if got := r.header.Get(h); got != want {
			t.Errorf("header %s = %q, want %q", h, got, want)
		}
	}
	ts := r.header.Get("X-Flowwatch-Timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sec < before || sec > after {
		t.Errorf("X-Flowwatch-Timestamp %q, want unix seconds between %d and %d", ts, before, after)
	}
	sig := r.header.Get("X-Flowwatch-Signature")
	if !strings.HasPrefix(sig, "sha256=") || len(sig) != len("sha256=")+64 {
		t.Fatalf("X-Flowwatch-Signature %q, want sha256=<64 hex digits>", sig)
	}
	if !VerifySignature(secret, ts, r.body, sig) {
		t.Errorf("VerifySignature refuses the signature the webhook sent")
	}
	if VerifySignature("other-secret", ts, r.body, sig) {
		t.Errorf("VerifySignature accepts a signature made with another secret")
	}
	if VerifySignature(secret, strconv.FormatInt(sec+1, 10), r.body, sig) {
		t.Errorf("VerifySignature accepts the signature for another timestamp")
	}
	tampered := append([]byte(nil), r.body...)
	tampered[len(tampered)-2] = ']'
	if VerifySignature(secret, ts, tampered, sig) {
		t.Errorf("VerifySignature accepts a tampered body")
	}
	for _, h := range []string{"X-Flowwatch-Signature", "X-Flowwatch-Timestamp", "Idempotency-Key", "User-Agent", "Content-Type", "X-Flowwatch-Delivery"} {
		if strings.Contains(r.header.Get(h), secret) {
			t.Errorf("header %s carries the secret", h)
		}
	}
}

func TestWebhookWithoutSecretSendsNoSignature(t *testing.T) {
	rc := newWebhookTestReceiver(t, nil)
	w := newTestWebhook(t, WebhookConfig{URL: rc.srv.URL})
	if err := w.Notify(context.Background(), webhookTestDelivery()); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	r := rc.requests()[0]
	if sig, ok := r.header["X-Flowwatch-Signature"]; ok {
		t.Errorf("a webhook without a secret sent X-Flowwatch-Signature %q", sig)
	}
	if r.header.Get("X-Flowwatch-Timestamp") == "" || r.header.Get("Idempotency-Key") == "" {
		t.Errorf("timestamp and idempotency headers missing without a secret: %v", r.header)
	}
}

func TestWebhookClassifiesAnswers(t *testing.T) {
	cases := []struct {
		status     int
		retryAfter string
		body       string
		want       string // "ok", "retry", "permanent"
		after      time.Duration
	}{
		{status: 200, want: "ok"},
		{status: 202, want: "ok"},
		{status: 204, want: "ok"},
		{status: 408, want: "retry"},
		{status: 425, want: "retry"},
		{status: 429, want: "retry", retryAfter: "7", after: 7 * time.Second},
		{status: 500, want: "retry", body: "database on fire"},
		{status: 502, want: "retry"},
		{status: 503, want: "retry", retryAfter: "120", after: 120 * time.Second},
		{status: 503, want: "retry", retryAfter: "soon"}, // unreadable: plain backoff
		{status: 400, want: "permanent", body: "bad json"},
		{status: 401, want: "permanent"},
		{status: 403, want: "permanent"},
		{status: 404, want: "permanent"},
		{status: 410, want: "permanent"},
		{status: 422, want: "permanent", retryAfter: "5"}, // Retry-After does not make it temporary
		{status: 301, want: "permanent"},
	}
	for _, c := range cases {
		t.Run(strconv.Itoa(c.status)+"_"+c.retryAfter, func(t *testing.T) {
			rc := newWebhookTestReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
				if c.retryAfter != "" {
					w.Header().Set("Retry-After", c.retryAfter)
				}
				if c.status == 301 {
					w.Header().Set("Location", "https://user:pw@elsewhere.example/x?token=abc")
				}
				w.WriteHeader(c.status)
				io.WriteString(w, c.body)
			})
			wh := newTestWebhook(t, WebhookConfig{URL: rc.srv.URL})
			err := wh.Notify(context.Background(), webhookTestDelivery())
			switch c.want {
			case "ok":
				if err != nil {
					t.Fatalf("status %d: got %v, want delivered", c.status, err)
				}
				return
			case "retry":
				if err == nil || IsPermanent(err) {
					t.Fatalf("status %d: got %v, want a temporary error", c.status, err)
				}
			case "permanent":
				if err == nil || !IsPermanent(err) {
					t.Fatalf("status %d: got %v, want a permanent error", c.status, err)
				}
			}
			if !strings.Contains(err.Error(), strconv.Itoa(c.status)) || !strings.Contains(err.Error(), `"hook"`) {
				t.Errorf("error %q names neither the status nor the webhook", err)
			}
			if c.body != "" && !strings.Contains(err.Error(), c.body) {
				t.Errorf("error %q lacks the receiver's answer %q", err, c.body)
			}
			var ra *RetryAfterError
			gotAfter := errors.As(err, &ra)
			if c.after > 0 {
				if !gotAfter || ra.After != c.after {
					t.Errorf("status %d with Retry-After %q: got %v, want RetryAfterError of %s", c.status, c.retryAfter, err, c.after)
				}
			} else if gotAfter {
				t.Errorf("status %d with Retry-After %q: got RetryAfterError %s, want none", c.status, c.retryAfter, ra.After)
			}
			if strings.Contains(err.Error(), "pw") || strings.Contains(err.Error(), "token=abc") {
				t.Errorf("error %q repeats redirect credentials", err)
			}
		})
	}
}

func TestWebhookRetryAfterDate(t *testing.T) {
	now := time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)
	d, ok := parseRetryAfter(now.Add(90*time.Second).Format(http.TimeFormat), now)
	if !ok || d != 90*time.Second {
		t.Fatalf("Retry-After as an HTTP date 90s ahead: got %s, %v", d, ok)
	}
	d, ok = parseRetryAfter(now.Add(-time.Hour).Format(http.TimeFormat), now)
	if !ok || d != 0 {
		t.Fatalf("Retry-After as a past date: got %s, %v, want 0, true", d, ok)
	}
}

func FuzzWebhookRetryAfter(f *testing.F) {
	for _, s := range []string{"", "0", "7", " 120 ", "-1", "soon", "99999999999999999999", "Wed, 21 Oct 2015 07:28:00 GMT", "1.5"} {
		f.Add(s)
	}
	now := time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := parseRetryAfter(v, now)
		if d < 0 {
			t.Fatalf("parseRetryAfter(%q) = %s, negative", v, d)
		}
		if !ok && d != 0 {
			t.Fatalf("parseRetryAfter(%q) = %s, false: want 0 when unreadable", v, d)
		}
	})
}

func TestWebhookErrorsHideURLSecrets(t *testing.T) {
	const token = "tok-9f8e7d"
	rc := newWebhookTestReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	})
	w := newTestWebhook(t, WebhookConfig{URL: rc.srv.URL + "/bot/" + token + "?access_token=" + token, Secret: "hmac-key-xyz"})
	err := w.Notify(context.Background(), webhookTestDelivery())
	if err == nil {
		t.Fatal("a 500 answer gave no error")
	}
	if strings.Contains(err.Error(), token) || strings.Contains(err.Error(), "hmac-key-xyz") {
		t.Errorf("error %q repeats the URL's token or the secret", err)
	}
	if !strings.Contains(err.Error(), rc.srv.URL) {
		t.Errorf("error %q does not say which host failed (%s)", err, rc.srv.URL)
	}

	// A network failure: nothing listens on the port any more.
	ln, lerr := net.Listen("tcp", "127.0.0.1:0")
	if lerr != nil {
		t.Fatal(lerr)
	}
	addr := ln.Addr().String()
	ln.Close()
	w = newTestWebhook(t, WebhookConfig{URL: "http://" + addr + "/bot/" + token + "?access_token=" + token})
	err = w.Notify(context.Background(), webhookTestDelivery())
	if err == nil || IsPermanent(err) {
		t.Fatalf("connection refused: got %v, want a temporary error", err)
	}
	if strings.Contains(err.Error(), token) {
		t.Errorf("network error %q repeats the URL's token", err)
	}
}

func TestWebhookTimeoutIsTemporary(t *testing.T) {
	release := make(chan struct{})
	rc := newWebhookTestReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	w := newTestWebhook(t, WebhookConfig{URL: rc.srv.URL, Timeout: 50 * time.Millisecond})
	start := time.Now()
	err := w.Notify(context.Background(), webhookTestDelivery())
	if err == nil || IsPermanent(err) {
		t.Fatalf("a receiver that never answers: got %v, want a temporary error", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Notify took %s with a 50ms timeout", el)
	}
}

func TestWebhookReadsAtMost64KiBOfAnAnswer(t *testing.T) {
	wrote := make(chan int64, 1)
	rc := newWebhookTestReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		chunk := []byte(strings.Repeat("x", 1024) + "\n")
		var n int64
		// Write until the client stops reading (or 64 MiB).
		for n < 64<<20 {
			m, err := w.Write(chunk)
			n += int64(m)
			if err != nil {
				break
			}
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
		}
		wrote <- n
	})
	w := newTestWebhook(t, WebhookConfig{URL: rc.srv.URL})
	err := w.Notify(context.Background(), webhookTestDelivery())
	if err == nil || !IsPermanent(err) {
		t.Fatalf("400: got %v, want a permanent error", err)
	}
	if len(err.Error()) > 2048 {
		t.Errorf("error message is %d bytes; a receiver's answer must be cut short", len(err.Error()))
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error message spans lines: %q", err.Error()[:100])
	}
	if n := <-wrote; n >= 64<<20 {
		t.Errorf("the receiver could write %d bytes: the webhook read the whole answer", n)
	}
}

func TestWebhookRefusesPayloadThatIsNotJSON(t *testing.T) {
	rc := newWebhookTestReceiver(t, nil)
	w := newTestWebhook(t, WebhookConfig{URL: rc.srv.URL})
	d := webhookTestDelivery()
	d.Payload = []byte("{not json")
	if err := w.Notify(context.Background(), d); err == nil || !IsPermanent(err) {
		t.Fatalf("invalid JSON payload: got %v, want a permanent error", err)
	}
	if n := len(rc.requests()); n != 0 {
		t.Errorf("invalid JSON was sent %d times", n)
	}
}

func TestNewWebhookValidates(t *testing.T) {
	const secret = "very-secret-value"
	cases := []struct {
		name, cfgName, url, want string
	}{
		{"empty name", "", "http://127.0.0.1/x", "name"},
		{"bad name", "has space", "http://127.0.0.1/x", "name"},
		{"name too long", strings.Repeat("a", 65), "http://127.0.0.1/x", "name"},
		{"no url", "hook", "", "URL"},
		{"ftp", "hook", "ftp://example.com/" + secret, "http"},
		{"no host", "hook", "http:///path", "host"},
		{"relative", "hook", "/just/a/path", "http"},
		{"unparsable", "hook", "http://exa mple.com/%zz" + secret, "http"},
		{"userinfo", "hook", "https://admin:" + secret + "@example.com/x", "credentials"},
		{"user only", "hook", "https://" + secret + "@example.com/x", "credentials"},
		{"metadata", "hook", "http://169.254.169.254/latest/meta-data/?k=" + secret, "169.254.169.254 is a link-local address"},
		{"metadata name", "hook", "http://metadata.google.internal/" + secret, "cloud metadata"},
		{"loopback", "hook", "http://127.0.0.1:9/x?k=" + secret, "127.0.0.1 is a loopback address"},
		{"localhost", "hook", "http://localhost:9/x?k=" + secret, "loopback name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewWebhook(WebhookConfig{Name: c.cfgName, URL: c.url, Secret: secret})
			if err == nil {
				t.Fatalf("NewWebhook(%q, %q) accepted", c.cfgName, c.url)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not mention %q", err, c.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q repeats the secret or URL credentials", err)
			}
		})
	}
	if _, err := NewWebhook(WebhookConfig{Name: "hook", URL: "http://127.0.0.1/x", Timeout: -time.Second, AllowLoopback: true}); err == nil ||
		!strings.Contains(err.Error(), "timeout") {
		t.Errorf("a negative timeout: err = %v", err)
	}
	if _, err := NewWebhook(WebhookConfig{Name: "hook", URL: "http://127.0.0.1/x", AllowLoopback: true}); err != nil {
		t.Errorf("a loopback URL with the allowance was refused: %v", err)
	}
	if _, err := NewWebhook(WebhookConfig{Name: "hook", URL: "https://192.168.10.20/alerts"}); err != nil {
		t.Errorf("a receiver on a private network was refused: %v", err)
	}
	w, err := NewWebhook(WebhookConfig{Name: "ops-wecom_1", URL: "https://example.com/cgi-bin/webhook/send?key=" + secret, Secret: secret})
	if err != nil {
		t.Fatalf("a good config was refused: %v", err)
	}
	if w.Name() != "ops-wecom_1" {
		t.Errorf("Name() = %q, want the configured name", w.Name())
	}
	if s := w.String(); strings.Contains(s, secret) {
		t.Errorf("String() = %q repeats the secret or the URL's query", s)
	}
}

func TestWebhookVerifySignatureRefusesMalformed(t *testing.T) {
	secret, ts, body := "k", "1700000000", []byte(`{"a":1}`)
	good := "sha256=" + webhookSign([]byte(secret), ts, body)
	if !VerifySignature(secret, ts, body, good) {
		t.Fatal("VerifySignature refuses a good signature")
	}
	for _, h := range []string{
		"",
		strings.TrimPrefix(good, "sha256="), // no scheme
		"sha1=" + strings.TrimPrefix(good, "sha256="),
		good[:len(good)-2],       // short
		good + "00",              // long
		good[:len(good)-1] + "g", // not hex
		strings.ToUpper(good[:7]) + good[7:],
	} {
		if VerifySignature(secret, ts, body, h) {
			t.Errorf("VerifySignature accepts %q", h)
		}
	}
	if VerifySignature("", ts, body, "sha256="+webhookSign(nil, ts, body)) {
		t.Errorf("VerifySignature accepts an empty secret")
	}
}

// TestWebhookDialerRefusesLoopback shows the SSRF guard at connection
// time: a webhook whose URL passed the check (as a name that later
// resolves to loopback would, by DNS rebinding) reaches no loopback
// receiver without the allowance, and the failure is permanent; with the
// allowance the same receiver gets the delivery.
func TestWebhookDialerRefusesLoopback(t *testing.T) {
	rc := newWebhookTestReceiver(t, nil)
	_, port, _ := net.SplitHostPort(rc.srv.Listener.Addr().String())
	w, err := NewWebhook(WebhookConfig{Name: "hook", URL: "http://hooks.example.com/alerts"})
	if err != nil {
		t.Fatalf("NewWebhook: %v", err)
	}
	// the name now resolves to loopback
	w.url = "http://localhost:" + port + "/alerts"
	err = w.Notify(context.Background(), webhookTestDelivery())
	if err == nil {
		t.Fatal("the webhook delivered to a loopback receiver without the allowance")
	}
	if !errors.Is(err, netguard.ErrRefused) || !IsPermanent(err) || !strings.Contains(err.Error(), "is a loopback address") {
		t.Fatalf("Notify: %v, want a permanent refusal by the SSRF guard naming loopback", err)
	}
	if n := len(rc.requests()); n != 0 {
		t.Fatalf("the receiver saw %d requests", n)
	}
	t.Logf("refused: %v", err)

	allowed, err := NewWebhook(WebhookConfig{Name: "hook", URL: "http://localhost:" + port + "/alerts", AllowLoopback: true})
	if err != nil {
		t.Fatalf("NewWebhook with the allowance: %v", err)
	}
	if err := allowed.Notify(context.Background(), webhookTestDelivery()); err != nil {
		t.Fatalf("Notify with the allowance: %v", err)
	}
	if n := len(rc.requests()); n != 1 {
		t.Fatalf("the receiver saw %d requests, want 1", n)
	}
}
