package alerting

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"flowwatch/internal/netguard"
	"flowwatch/internal/store"
)

// DefaultWebhookTimeout bounds one webhook request, response included.
const DefaultWebhookTimeout = 10 * time.Second

// webhookBodyMax is the most of a response body read for an error message;
// webhookSnippetMax the most of it that goes into the message.
const (
	webhookBodyMax    = 64 << 10
	webhookSnippetMax = 512
)

// The headers of a webhook request besides Content-Type and
// Idempotency-Key.
const (
	WebhookDeliveryHeader  = "X-Flowwatch-Delivery"
	WebhookTimestampHeader = "X-Flowwatch-Timestamp"
	WebhookSignatureHeader = "X-Flowwatch-Signature"
)

// webhookNameRE is the rule config applies to webhook names.
var webhookNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// WebhookConfig configures a Webhook.
type WebhookConfig struct {
	// Name is the webhook's name and its outbox channel: 1 to 64
	// letters, digits, '-' or '_', starting with a letter or digit.
	Name string
	// URL is the http:// or https:// address each alert change is
	// POSTed to. It must not carry credentials; its path and query may
	// hold a token, so logs and errors show only its scheme and host.
	URL string
	// Secret, when set, signs each request: X-Flowwatch-Signature is
	// "sha256=" and the hex HMAC-SHA256 with Secret over
	// "<timestamp>.<body>". It never appears in errors or logs.
	Secret string
	// Timeout bounds one request. Default 10s.
	Timeout time.Duration
	// AllowLoopback lets the URL name a loopback host and the default
	// client connect to loopback addresses (config's
	// security.allow_loopback). Without it NewWebhook refuses a URL whose
	// host the SSRF guard refuses (internal/netguard), and the default
	// client refuses to connect to such an address, checking the address
	// the host name resolved to at each connection (DNS rebinding).
	AllowLoopback bool
	// Client sends the requests. Default: a client that does not follow
	// redirects (a redirect is a permanent failure), honours the
	// HTTP(S)_PROXY environment (a proxy, when set, is the address
	// dialled and checked) and dials only addresses the SSRF guard allows.
	Client *http.Client
}

// Webhook is a Notifier that POSTs each delivery's JSON payload to a URL.
// Its Name is the outbox channel.
type Webhook struct {
	name    string
	url     string
	safeURL string // scheme://host, for errors
	secret  []byte
	timeout time.Duration
	client  *http.Client
}

// NewWebhook checks cfg and returns its Webhook. Its errors never repeat
// the secret or the URL.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	if !webhookNameRE.MatchString(cfg.Name) {
		return nil, fmt.Errorf("alerting: webhook name must be 1 to 64 letters, digits, '-' or '_', starting with a letter or digit, got %q", cfg.Name)
	}
	if cfg.URL == "" {
		return nil, fmt.Errorf("alerting: webhook %q: no URL", cfg.Name)
	}
	u, err := url.Parse(cfg.URL)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "":
		// url.Parse's error repeats the URL: leave it out.
		return nil, fmt.Errorf("alerting: webhook %q: the URL must be an http:// or https:// URL with a host", cfg.Name)
	case u.User != nil:
		return nil, fmt.Errorf("alerting: webhook %q: the URL must not carry credentials: put the shared secret in secret", cfg.Name)
	case u.Fragment != "":
		return nil, fmt.Errorf("alerting: webhook %q: the URL must not have a #fragment", cfg.Name)
	}
	guard := netguard.Policy{AllowLoopback: cfg.AllowLoopback}
	if err := guard.CheckHost(u.Hostname()); err != nil {
		return nil, fmt.Errorf("alerting: webhook %q: the URL's host is not allowed: %w", cfg.Name, err)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("alerting: webhook %q: negative timeout %s", cfg.Name, cfg.Timeout)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultWebhookTimeout
	}
	client := cfg.Client
	if client == nil {
		client = &http.Client{
			Transport:     guardedTransport(guard),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	w := &Webhook{
		name:    cfg.Name,
		url:     u.String(),
		safeURL: u.Scheme + "://" + u.Host,
		timeout: cfg.Timeout,
		client:  client,
	}
	if cfg.Secret != "" {
		w.secret = []byte(cfg.Secret)
	}
	return w, nil
}

// guardedTransport is http.DefaultTransport's settings with a dialer that
// connects only to addresses guard allows, judged after name resolution.
func guardedTransport(guard netguard.Policy) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	d := guard.Dialer()
	d.Timeout, d.KeepAlive = 30*time.Second, 30*time.Second // as DefaultTransport's
	t.DialContext = d.DialContext
	return t
}

// Name returns the webhook's name, which is its outbox channel.
func (w *Webhook) Name() string { return w.name }

// String names the webhook without its secret or the URL's path.
func (w *Webhook) String() string { return fmt.Sprintf("webhook %q (%s)", w.name, w.safeURL) }

// Notify POSTs the delivery's payload. A 2xx answer is delivered; 408, 425,
// 429, 5xx and network errors are temporary (with a RetryAfterError when
// the answer has a Retry-After header); any other answer is Permanent, as
// are a payload that is not JSON and a connection the SSRF guard refused.
func (w *Webhook) Notify(ctx context.Context, d store.Delivery) error {
	if !json.Valid(d.Payload) {
		return Permanent(fmt.Errorf("webhook %q: delivery %d: the payload is not valid JSON", w.name, d.ID))
	}
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(d.Payload))
	if err != nil {
		return Permanent(fmt.Errorf("webhook %q: delivery %d: building the request for %s failed", w.name, d.ID, w.safeURL))
	}
	now := time.Now()
	ts := strconv.FormatInt(now.Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "flowwatch-webhook/1")
	req.Header.Set("Idempotency-Key", d.IdempotencyKey)
	req.Header.Set(WebhookDeliveryHeader, strconv.FormatInt(d.ID, 10))
	req.Header.Set(WebhookTimestampHeader, ts)
	if w.secret != nil {
		req.Header.Set(WebhookSignatureHeader, "sha256="+webhookSign(w.secret, ts, d.Payload))
	}

	resp, err := w.client.Do(req)
	if err != nil {
		// *url.Error repeats the URL, path and query included: keep
		// only what went wrong.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		err = fmt.Errorf("webhook %q: delivery %d: POST %s: %w", w.name, d.ID, w.safeURL, err)
		if errors.Is(err, netguard.ErrRefused) {
			// the host resolved to an address the SSRF guard
			// refuses: retrying will not help, an admin must look
			return Permanent(err)
		}
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, webhookBodyMax))

	code := resp.StatusCode
	if code >= 200 && code <= 299 {
		return nil
	}
	err = fmt.Errorf("webhook %q: delivery %d: POST %s: %s%s", w.name, d.ID, w.safeURL, webhookStatus(resp), webhookSnippet(body))
	switch {
	case code == http.StatusRequestTimeout, code == http.StatusTooEarly, code == http.StatusTooManyRequests, code >= 500:
		if after, ok := parseRetryAfter(resp.Header.Get("Retry-After"), now); ok {
			return RetryAfter(err, after)
		}
		return err
	default:
		return Permanent(err)
	}
}

// webhookStatus is the answer's status line, saying where a redirect led
// only by its host.
func webhookStatus(resp *http.Response) string {
	s := resp.Status
	if s == "" {
		s = strconv.Itoa(resp.StatusCode)
	}
	if resp.StatusCode >= 300 && resp.StatusCode <= 399 {
		s += " (redirects are not followed"
		if loc, err := resp.Location(); err == nil && loc.Host != "" {
			s += "; Location is on " + loc.Scheme + "://" + loc.Host
		}
		s += ")"
	}
	return s
}

// webhookSnippet is the start of a response body for an error message, on
// one line of valid UTF-8, or "" when the body is empty.
func webhookSnippet(body []byte) string {
	s := strings.ToValidUTF8(string(body), "�")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return ""
	}
	if len(s) > webhookSnippetMax {
		s = strings.ToValidUTF8(s[:webhookSnippetMax], "") + "…"
	}
	return ": " + s
}

// parseRetryAfter reads a Retry-After header: delay seconds, or an HTTP
// date. False when absent or unreadable.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		// Beyond any BackoffMax anyone sets; keeps the multiplication
		// from overflowing.
		const most = 365 * 24 * 3600
		return time.Duration(min(secs, most)) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// webhookSign is the hex HMAC-SHA256 with secret over "<timestamp>.<body>".
func webhookSign(secret []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// VerifySignature reports whether header, an X-Flowwatch-Signature value
// ("sha256=<hex>"), signs timestamp (the X-Flowwatch-Timestamp value) and
// body with secret. It compares in constant time and refuses an empty
// secret. Receivers should also refuse timestamps far from their clock.
func VerifySignature(secret string, timestamp string, body []byte, header string) bool {
	if secret == "" || timestamp == "" {
		return false
	}
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return hmac.Equal(got, m.Sum(nil))
}
