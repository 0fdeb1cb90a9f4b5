package console

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"testing"

	"flowwatch/internal/config"
	"flowwatch/internal/store"
)

func TestTrustedProxiesClient(t *testing.T) {
	var proxies trustedProxies
	for _, s := range []string{"10.0.0.0/24", "192.0.2.1", "2001:db8::/64"} {
		p, err := config.ParseProxy(s)
		if err != nil {
			t.Fatal(err)
		}
		proxies = append(proxies, p)
	}
	cases := []struct {
		remote string
		xff    []string
		want   string
	}{
		{"203.0.113.5", []string{"198.51.100.1"}, "203.0.113.5"},                   // not a proxy: header ignored
		{"10.0.0.7", nil, "10.0.0.7"},                                              // a proxy's own request
		{"10.0.0.7", []string{"198.51.100.1"}, "198.51.100.1"},                     // one proxy
		{"10.0.0.7", []string{"6.6.6.6, 198.51.100.1, 192.0.2.1"}, "198.51.100.1"}, // two proxies; the client's own claim is ignored
		{"10.0.0.7", []string{"6.6.6.6", "198.51.100.1"}, "198.51.100.1"},          // several header lines
		{"10.0.0.7", []string{"198.51.100.1:4711"}, "198.51.100.1"},                // with a port
		{"10.0.0.7", []string{"[2001:db8:1::9]:443"}, "2001:db8:1::9"},             // IPv6 with a port
		{"10.0.0.7", []string{"198.51.100.1, garbage"}, "10.0.0.7"},                // malformed: stop at the last proxy
		{"10.0.0.7", []string{"198.51.100.1, , 192.0.2.1"}, "198.51.100.1"},        // empty entries skipped
		{"::ffff:10.0.0.7", []string{"::ffff:198.51.100.1"}, "198.51.100.1"},       // mapped addresses
		{"2001:db8::1", []string{"fe80::1%eth0"}, "fe80::1"},                       // zones dropped
		{"10.0.0.7", []string{"10.0.0.8, 10.0.0.9"}, "10.0.0.8"},                   // every hop a proxy
	}
	for _, c := range cases {
		got := proxies.client(netip.MustParseAddr(c.remote), c.xff)
		if got.String() != c.want {
			t.Errorf("client(%s, %q) = %s, want %s", c.remote, c.xff, got, c.want)
		}
	}
}

func TestParseProxyRefusesWhatTrustsTooMuch(t *testing.T) {
	for _, s := range []string{"0.0.0.0/0", "::/0", "10.0.0.1/24", "proxy.example", "10.0.0.0/33", ""} {
		if p, err := config.ParseProxy(s); err == nil {
			t.Errorf("ParseProxy(%q) = %s, want an error", s, p)
		}
	}
	for s, want := range map[string]string{"10.0.0.1": "10.0.0.1/32", "10.0.0.0/8": "10.0.0.0/8", "::1": "::1/128", "::ffff:10.0.0.0/104": "10.0.0.0/8"} {
		if p, err := config.ParseProxy(s); err != nil || p.String() != want {
			t.Errorf("ParseProxy(%q) = %s, %v; want %s", s, p, err, want)
		}
	}
}

// TestTrustedProxiesNameTheClient runs a console behind a "proxy" on
// 127.0.0.1: the clients it forwards for get their own rate-limit buckets
// and appear in the audit log, while a client that is not a trusted proxy
// cannot pick its address with X-Forwarded-For.
func TestTrustedProxiesNameTheClient(t *testing.T) {
	sp := newSiteParts(t, "console:\n  trusted_proxies: [127.0.0.1]\n  rate_limit_per_second: 0.1\n  rate_limit_burst: 2\n")
	s := New(Config{Listen: "127.0.0.1:0", Auth: sp.auth, Store: sp.db, Site: sp.cfg, Logger: sp.log})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	get := func(from, xff string) int {
		h := http.Header{}
		if xff != "" {
			h.Set("X-Forwarded-For", xff)
		}
		resp := requestFrom(t, from, "GET", s.URL()+"/healthz", h, "")
		secDrain(resp)
		return resp.StatusCode
	}
	var codes []int
	for _, c := range []struct{ from, xff string }{
		{"127.0.0.1", "203.0.113.7"}, {"127.0.0.1", "203.0.113.7"}, {"127.0.0.1", "203.0.113.7"}, // third past the burst
		{"127.0.0.1", "203.0.113.8"},                                                                // another client behind the proxy
		{"127.0.0.1", "203.0.113.7, 127.0.0.1"},                                                     // through a second trusted hop: still .7
		{"127.0.0.2", "198.51.100.1"}, {"127.0.0.2", "198.51.100.2"}, {"127.0.0.2", "198.51.100.3"}, // not a proxy: one bucket
	} {
		codes = append(codes, get(c.from, c.xff))
	}
	if want := "[200 200 429 200 429 200 200 429]"; fmt.Sprint(codes) != want {
		t.Errorf("codes %v, want %s", codes, want)
	}

	h := http.Header{"X-Forwarded-For": {"203.0.113.9"}, "Content-Type": {"application/json"}}
	secDrain(requestFrom(t, "127.0.0.1", "POST", s.URL()+"/api/v1/session", h, `{"username":"nobody","password":"wrong"}`))
	h.Set("X-Forwarded-For", "198.51.100.9")
	secDrain(requestFrom(t, "127.0.0.3", "POST", s.URL()+"/api/v1/session", h, `{"username":"nobody","password":"wrong"}`))
	entries, err := sp.db.AuditEntries(context.Background(), store.AuditFilter{Action: "login.failed"})
	if err != nil {
		t.Fatal(err)
	}
	var remotes []string
	for _, e := range entries {
		remotes = append(remotes, e.Remote)
	}
	slices.Sort(remotes)
	if fmt.Sprint(remotes) != "[127.0.0.3 203.0.113.9]" {
		t.Errorf("audited login failures from %v, want the forwarded client and the direct one", remotes)
	}
}
