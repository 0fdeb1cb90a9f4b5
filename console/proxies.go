package console

import (
	"net/http"
	"net/netip"
	"strings"
)

// trustedProxies are the reverse proxies in front of the console
// (console.trusted_proxies). Requests they forward name their client in
// X-Forwarded-For; requests from anywhere else are taken at their
// connection's address, whatever headers they carry.
type trustedProxies []netip.Prefix

// trusts reports whether a is one of the proxies.
func (t trustedProxies) trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// client returns the address of the client behind a request that arrived
// from remote: remote itself unless it is a trusted proxy; otherwise the
// X-Forwarded-For entries are walked from the right (the proxy nearest the
// console appends last) past trusted proxies, and the first other address
// is the client. An entry that is not an IP address stops the walk at the
// last trusted hop, so a malformed header never yields a chosen address.
func (t trustedProxies) client(remote netip.Addr, forwarded []string) netip.Addr {
	remote = remote.Unmap()
	if !t.trusts(remote) {
		return remote
	}
	client := remote
	for i := len(forwarded) - 1; i >= 0; i-- {
		hops := strings.Split(forwarded[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			hop := strings.TrimSpace(hops[j])
			if hop == "" {
				continue
			}
			a, err := netip.ParseAddr(hop)
			if err != nil {
				if ap, err2 := netip.ParseAddrPort(hop); err2 == nil {
					a, err = ap.Addr(), nil
				}
			}
			if err != nil {
				return client
			}
			client = a.WithZone("").Unmap()
			if !t.trusts(client) {
				return client
			}
		}
	}
	return client
}

// wrap sets each request's RemoteAddr to its client's address (port 0 for
// a forwarded client) before next sees it, so that rate limits, lock-outs,
// logs and the audit log all name the client rather than the proxy. With
// no trusted proxies it returns next unchanged.
func (t trustedProxies) wrap(next http.Handler) http.Handler {
	if len(t) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ap, err := netip.ParseAddrPort(r.RemoteAddr)
		if err == nil && t.trusts(ap.Addr()) {
			c := t.client(ap.Addr(), r.Header.Values("X-Forwarded-For"))
			if c != ap.Addr().Unmap() {
				r2 := r.WithContext(r.Context()) // a shallow copy
				r2.RemoteAddr = netip.AddrPortFrom(c, 0).String()
				r = r2
			}
		}
		next.ServeHTTP(w, r)
	})
}
