package console

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// secWantHeaders are the headers every answer carries, over HTTP and
// HTTPS alike.
var secWantHeaders = map[string]string{
	"X-Content-Type-Options":     "nosniff",
	"Referrer-Policy":            "no-referrer",
	"X-Frame-Options":            "DENY",
	"Permissions-Policy":         "camera=(), microphone=(), geolocation=()",
	"Cross-Origin-Opener-Policy": "same-origin",
}

// secWantCSP are the directives the Content-Security-Policy must
// hold, each as written.
var secWantCSP = []string{
	"default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' blob: data:",
	"media-src 'self' blob:", "object-src 'none'", "base-uri 'none'", "form-action 'self'",
	"frame-ancestors 'none'",
}

// secCheckHeaders fails the test unless h has every security header;
// tls says whether HSTS must be there (over TLS) or must not.
func secCheckHeaders(t *testing.T, what string, h http.Header, host string, overTLS bool) {
	t.Helper()
	for k, v := range secWantHeaders {
		if got := h.Get(k); got != v {
			t.Errorf("%s: %s = %q, want %q", what, k, got, v)
		}
	}
	csp := h.Get("Content-Security-Policy")
	directives := map[string]bool{}
	for _, d := range strings.Split(csp, ";") {
		directives[strings.TrimSpace(d)] = true
	}
	for _, d := range secWantCSP {
		if !directives[d] {
			t.Errorf("%s: Content-Security-Policy %q lacks %q", what, csp, d)
		}
	}
	ws := "ws://" + host
	if overTLS {
		ws = "wss://" + host
	}
	if !directives["connect-src 'self' "+ws] {
		t.Errorf("%s: Content-Security-Policy %q does not allow connections to 'self' and %s", what, csp, ws)
	}
	if strings.Contains(csp, "unsafe-") {
		t.Errorf("%s: Content-Security-Policy %q allows something unsafe", what, csp)
	}
	hsts := h.Get("Strict-Transport-Security")
	switch {
	case overTLS && hsts != "max-age=31536000; includeSubDomains":
		t.Errorf("%s over TLS: Strict-Transport-Security = %q, want max-age=31536000; includeSubDomains", what, hsts)
	case !overTLS && hsts != "":
		t.Errorf("%s over plain HTTP: Strict-Transport-Security = %q, want none", what, hsts)
	}
}

// TestSecurityHeadersOnEveryAnswer asks the console for the app, an
// asset, JSON, metrics, a miss and a wrong method: every answer carries
// the security headers, the app's own Referrer-Policy included, and none
// has HSTS over plain HTTP.
func TestSecurityHeadersOnEveryAnswer(t *testing.T) {
	s := New(Config{Listen: "127.0.0.1:0"})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	host := strings.TrimPrefix(s.URL(), "http://")
	asset := ""
	for _, req := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/", 200},
		{"GET", "/public", 200},
		{"GET", "/healthz", 200},
		{"GET", "/metrics", 200},
		{"GET", "/nope", 404},
		{"POST", "/healthz", 405},
		{"GET", "/assets/", 404},
	} {
		r, _ := http.NewRequest(req.method, s.URL()+req.path, nil)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		body := secDrain(resp)
		if resp.StatusCode != req.status {
			t.Errorf("%s %s: %d, want %d", req.method, req.path, resp.StatusCode, req.status)
		}
		secCheckHeaders(t, req.method+" "+req.path, resp.Header, host, false)
		if req.path == "/" {
			if i := strings.Index(body, "/assets/index-"); i >= 0 {
				asset = body[i : i+strings.IndexByte(body[i:], '"')]
			}
		}
	}
	if asset == "" {
		t.Fatal("the app's index names no /assets/index-… script")
	}
	resp, err := http.Get(s.URL() + asset)
	if err != nil {
		t.Fatal(err)
	}
	secDrain(resp)
	secCheckHeaders(t, "GET "+asset, resp.Header, host, false)
}

// TestSecurityHeadersRefuseOddHosts keeps a Host header that is not a
// plain host[:port] out of the policy.
func TestSecurityHeadersRefuseOddHosts(t *testing.T) {
	h := securityHeaders(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Referrer-Policy", "unsafe-url") // a handler cannot weaken it
		w.WriteHeader(http.StatusNoContent)
	}))
	for host, want := range map[string]string{
		"cam.example.com:8443":      "connect-src 'self' ws://cam.example.com:8443",
		"[fd00::5]:8080":            "connect-src 'self' ws://[fd00::5]:8080",
		"evil; script-src *":        "connect-src 'self'",
		"a b":                       "connect-src 'self'",
		"x.example.com:80/path'":    "connect-src 'self'",
		"":                          "connect-src 'self'",
		strings.Repeat("a", 300):    "connect-src 'self'",
		"127.0.0.1:8080;report-uri": "connect-src 'self'",
	} {
		rec := &secRecorder{header: http.Header{}}
		r, _ := http.NewRequest("GET", "/", nil)
		r.Host = host
		h.ServeHTTP(rec, r)
		csp := rec.header.Get("Content-Security-Policy")
		if !strings.HasSuffix(csp, want) {
			t.Errorf("Host %q: policy %q, want it to end %q", host, csp, want)
		}
		if got := rec.header.Get("Referrer-Policy"); got != "no-referrer" {
			t.Errorf("Host %q: Referrer-Policy %q after the handler set its own, want no-referrer", host, got)
		}
	}
}

// secRecorder records an answer's header and status.
type secRecorder struct {
	header http.Header
	status int
}

func (w *secRecorder) Header() http.Header         { return w.header }
func (w *secRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (w *secRecorder) WriteHeader(code int)        { w.status = code }

// TestTLSModernOnly serves the console over TLS with a self-signed
// certificate: TLS 1.3 and TLS 1.2 with ECDHE and AES-GCM are served with
// HSTS; a TLS 1.1 client, a TLS 1.2 client offering only CBC suites, and
// one offering only the P-384 curve are refused.
func TestTLSModernOnly(t *testing.T) {
	certFile, keyFile, pool := secSelfSignedCert(t)
	s := New(Config{Listen: "127.0.0.1:0", TLSCert: certFile, TLSKey: keyFile})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !strings.HasPrefix(s.URL(), "https://") {
		t.Fatalf("URL %s, want https", s.URL())
	}
	host := strings.TrimPrefix(s.URL(), "https://")

	get := func(cfg *tls.Config) (*http.Response, error) {
		cfg.RootCAs = pool
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
		defer c.CloseIdleConnections()
		resp, err := c.Get(s.URL() + "/healthz")
		if err == nil {
			secDrain(resp)
		}
		return resp, err
	}
	for _, good := range []struct {
		name string
		cfg  *tls.Config
	}{
		{"TLS 1.3", &tls.Config{MinVersion: tls.VersionTLS13}},
		{"TLS 1.2 ECDHE AES-GCM over X25519", &tls.Config{MaxVersion: tls.VersionTLS12,
			CipherSuites:     []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
			CurvePreferences: []tls.CurveID{tls.X25519}}},
		{"TLS 1.2 ECDHE ChaCha20 over P-256", &tls.Config{MaxVersion: tls.VersionTLS12,
			CipherSuites:     []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256},
			CurvePreferences: []tls.CurveID{tls.CurveP256}}},
	} {
		resp, err := get(good.cfg)
		if err != nil {
			t.Errorf("%s: %v", good.name, err)
			continue
		}
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d", good.name, resp.StatusCode)
		}
		secCheckHeaders(t, good.name, resp.Header, host, true)
	}

	for _, bad := range []struct {
		name string
		cfg  *tls.Config
	}{
		{"TLS 1.1", &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}},
		{"TLS 1.2 with CBC suites only", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
			tls.TLS_RSA_WITH_AES_128_CBC_SHA, tls.TLS_RSA_WITH_AES_256_CBC_SHA}}},
		{"TLS 1.2 with RSA key exchange and GCM", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
			tls.TLS_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_AES_256_GCM_SHA384}}},
		{"TLS 1.2 over P-384 only", &tls.Config{MaxVersion: tls.VersionTLS12,
			CipherSuites:     []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
			CurvePreferences: []tls.CurveID{tls.CurveP384}}},
	} {
		if resp, err := get(bad.cfg); err == nil {
			t.Errorf("%s: served (%s), want the handshake refused", bad.name, resp.Status)
		} else {
			t.Logf("%s: refused: %v", bad.name, err)
		}
	}

	// the plain protocol on the TLS port gets nothing useful
	resp, err := http.Get("http://" + host + "/healthz")
	if err == nil {
		if resp.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP on the TLS port answered 200")
		}
		secDrain(resp)
	}
}

// secSelfSignedCert writes a self-signed ECDSA P-256 certificate for
// 127.0.0.1 and its key as PEM files, and returns them with a pool that
// trusts the certificate.
func secSelfSignedCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "flowwatch test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// secDrain reads and closes an answer's body and returns it.
func secDrain(resp *http.Response) string {
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
