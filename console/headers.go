package console

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"regexp"
)

// contentSecurityPolicy is the Content-Security-Policy of every answer,
// written for the embedded browser app: its scripts and styles come only
// from its own /assets (no inline script or style, no eval); it shows
// pictures it fetched as blob: URLs (snapshots, heatmaps) and data: ones;
// it talks to the API with fetch and to /ws over a websocket of the same
// host (securityHeaders adds that host's ws:/wss: origin, which older
// browsers do not count as 'self'). WebRTC media (WHEP) is not a fetch and
// needs no source here; <video> plays its MediaStream, and media-src allows
// blob: besides. Nothing may frame the console, and forms post only to it.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' blob: data:; media-src 'self' blob:; object-src 'none'; base-uri 'none'; " +
	"form-action 'self'; frame-ancestors 'none'; connect-src 'self'"

// hstsValue is the Strict-Transport-Security of answers over TLS: browsers
// then use HTTPS only, for a year, on the console's host and its
// subdomains.
const hstsValue = "max-age=31536000; includeSubDomains"

// wsHostRE is a Host header safe to write into the policy as a websocket
// source: a host name or IPv4 address, or a bracketed IPv6 address, with
// an optional port. Anything else gets 'self' alone.
var wsHostRE = regexp.MustCompile(`^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$`)

// securityHeaders gives every answer of h the console's security headers:
// the Content-Security-Policy above, X-Content-Type-Options nosniff,
// Referrer-Policy no-referrer, X-Frame-Options DENY, a Permissions-Policy
// that turns off camera, microphone and geolocation, Cross-Origin-Opener-
// Policy same-origin, and Strict-Transport-Security on answers over TLS.
// They are set before h runs and set again when h writes its answer, so a
// handler cannot weaken them.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &securityWriter{ResponseWriter: w, r: r}
		sw.apply()
		h.ServeHTTP(sw, r)
	})
}

// securityWriter sets the security headers again just before the answer's
// header goes out.
type securityWriter struct {
	http.ResponseWriter
	r     *http.Request
	wrote bool
}

// apply sets the security headers on the answer.
func (s *securityWriter) apply() {
	h := s.ResponseWriter.Header()
	csp := contentSecurityPolicy
	if wsHostRE.MatchString(s.r.Host) {
		if s.r.TLS != nil {
			csp += " wss://" + s.r.Host
		} else {
			csp += " ws://" + s.r.Host
		}
	}
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if s.r.TLS != nil {
		h.Set("Strict-Transport-Security", hstsValue)
	} else {
		h.Del("Strict-Transport-Security")
	}
}

// WriteHeader sets the security headers again, then writes the header.
func (s *securityWriter) WriteHeader(code int) {
	if !s.wrote && code >= 200 { // 1xx answers come before the real one
		s.wrote = true
		s.apply()
	}
	s.ResponseWriter.WriteHeader(code)
}

// Write writes the header first when the handler did not.
func (s *securityWriter) Write(b []byte) (int, error) {
	if !s.wrote {
		s.WriteHeader(http.StatusOK)
	}
	return s.ResponseWriter.Write(b)
}

// Flush lets streaming answers through.
func (s *securityWriter) Flush() {
	if !s.wrote {
		s.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(s.ResponseWriter).Flush()
}

// Hijack lets the websocket take over the connection.
func (s *securityWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := s.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("console: the connection cannot be hijacked")
	}
	return hj.Hijack()
}

// Unwrap gives http.ResponseController the writer underneath.
func (s *securityWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// serverTLSConfig is the console's TLS: TLS 1.2 or later; for TLS 1.2 only
// forward-secret ECDHE key exchange with AEAD ciphers (AES-GCM,
// ChaCha20-Poly1305), no CBC, no RSA key exchange, no 3DES; key exchange
// over the hybrid post-quantum X25519MLKEM768, X25519 or P-256. TLS 1.3
// suites are all AEAD and not configurable.
func serverTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		CurvePreferences: []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256},
	}
}
