// Package netguard decides which hosts flowwatch may dial on a URL it was
// given, against server-side request forgery (SSRF): a camera or webhook
// URL must not turn flowwatch into a way to reach its own loopback
// services, the cloud's instance metadata (and the credentials it hands
// out) or addresses that are never a camera or an alert receiver.
//
// Refused: loopback (127.0.0.0/8, ::1, "localhost" and names under
// ".localhost"), link-local unicast (169.254.0.0/16, which holds the
// metadata address 169.254.169.254, and fe80::/10), unspecified
// (0.0.0.0/8, ::), multicast and broadcast, the cloud metadata names
// (metadata.google.internal and the like), the metadata addresses outside
// link-local (Alibaba Cloud's 100.100.100.200, AWS's fd00:ec2::254), and
// IPv4 addresses written in any form but dotted decimal (2130706433,
// 0x7f.1), which some resolvers read as loopback. A Policy with
// AllowLoopback lets loopback through, for the demo's built-in simulator
// and for tests; nothing else can be allowed.
//
// Allowed: every other unicast address, the private ranges included
// (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10 and IPv6
// fc00::/7). This is deliberate: cameras and on-site alert receivers live
// on private networks, and refusing those would make flowwatch useless
// where it is deployed. Keep flowwatch's network segment free of services
// that must not be reached from it, or firewall them.
//
// CheckHost and CheckURL judge a host as written and do no DNS lookup;
// Control judges the address a name resolved to at the moment it is
// dialled, which also defeats DNS rebinding.
package netguard

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
)

// Policy says which hosts may be dialled. The zero Policy refuses
// everything the package comment lists.
type Policy struct {
	// AllowLoopback lets loopback addresses and names (127.0.0.0/8, ::1,
	// localhost) be dialled.
	AllowLoopback bool
}

// ErrRefused is wrapped by every error that refuses a host.
var ErrRefused = errors.New("refused by the SSRF guard")

// metadataNames are cloud instance metadata services' host names, lower
// case without a trailing dot. Most clouds serve metadata only at
// 169.254.169.254, which the link-local rule refuses.
var metadataNames = map[string]bool{
	"metadata":                   true, // Google Compute Engine's short name
	"metadata.google.internal":   true,
	"metadata.goog":              true,
	"instance-data":              true, // AWS EC2
	"instance-data.ec2.internal": true,
	"metadata.tencentyun.com":    true, // Tencent Cloud
}

// metadataAddrs are metadata services' addresses outside the ranges
// refused anyway.
var metadataAddrs = map[netip.Addr]bool{
	netip.MustParseAddr("100.100.100.200"): true, // Alibaba Cloud
	netip.MustParseAddr("fd00:ec2::254"):   true, // AWS EC2 over IPv6
}

// thisNetwork is 0.0.0.0/8, "this network": Linux dials 0.0.0.0 as
// loopback.
var thisNetwork = netip.MustParsePrefix("0.0.0.0/8")

// CheckIP returns nil when addr may be dialled, else an error wrapping
// ErrRefused that says which rule refused it.
func (p Policy) CheckIP(addr netip.Addr) error {
	addr = addr.Unmap().WithZone("")
	why := ""
	switch {
	case !addr.IsValid():
		why = "not an IP address"
	case addr.IsLoopback():
		if p.AllowLoopback {
			return nil
		}
		why = "a loopback address (set security.allow_loopback to allow it)"
	case metadataAddrs[addr]:
		why = "a cloud metadata address"
	case addr.IsUnspecified() || (addr.Is4() && thisNetwork.Contains(addr)):
		why = "an unspecified address"
	case addr.IsLinkLocalUnicast():
		why = "a link-local address (169.254.0.0/16 holds the cloud metadata service)"
	case addr.IsMulticast():
		why = "a multicast address"
	case addr == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		why = "the broadcast address"
	default:
		return nil
	}
	return fmt.Errorf("%s is %s: %w", addr, why, ErrRefused)
}

// CheckHost returns nil when host (a URL's host name or IP address,
// without port; IPv6 with or without brackets) may be dialled, judging
// it as written, without a DNS lookup. Its errors name the host, which is
// never secret.
func (p Policy) CheckHost(host string) error {
	name := strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if addr, err := netip.ParseAddr(name); err == nil {
		return p.CheckIP(addr)
	}
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if addr, err := netip.ParseAddr(name); err == nil { // "127.0.0.1."
		return p.CheckIP(addr)
	}
	switch {
	case name == "":
		return fmt.Errorf("no host: %w", ErrRefused)
	case name == "localhost" || strings.HasSuffix(name, ".localhost"):
		if p.AllowLoopback {
			return nil
		}
		return fmt.Errorf("%q is a loopback name (set security.allow_loopback to allow it): %w", host, ErrRefused)
	case metadataNames[name]:
		return fmt.Errorf("%q is a cloud metadata service: %w", host, ErrRefused)
	case numericIPv4(name):
		return fmt.Errorf("%q is an IPv4 address not in dotted decimal, which resolvers read differently; write it as a.b.c.d: %w", host, ErrRefused)
	}
	return nil
}

// CheckURL returns nil when the host of the URL raw may be dialled (see
// CheckHost). Its errors never repeat the URL, which may hold a password
// or a token: only its host.
func (p Policy) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a valid URL")
	}
	return p.CheckHost(u.Hostname())
}

// Control is a net.Dialer Control function: it refuses, before any
// connection is made, an address the policy refuses. The address is the
// one a name resolved to, so it sees through names and DNS rebinding. The
// dialer's error (a *net.OpError) names the address and wraps this one.
func (p Policy) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("cannot read the %s address %q: %w", network, address, ErrRefused)
	}
	return p.CheckIP(ap.Addr())
}

// Dialer returns a net.Dialer whose every connection passes Control.
func (p Policy) Dialer() *net.Dialer {
	return &net.Dialer{Control: p.Control}
}

// numericIPv4 reports whether name is an IPv4 address in one of the forms
// inet_aton reads besides dotted decimal: one to four parts, each decimal,
// octal (a leading 0) or hexadecimal (0x), such as 2130706433, 0177.1 or
// 0x7f.0.0.1. netip refuses these, but C resolvers (used through cgo)
// dial them.
func numericIPv4(name string) bool {
	parts := strings.Split(name, ".")
	if len(parts) > 4 {
		return false
	}
	for _, part := range parts {
		if part == "" {
			return false
		}
		if _, err := strconv.ParseUint(part, 0, 32); err != nil {
			return false
		}
	}
	return true
}
