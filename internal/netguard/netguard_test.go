package netguard

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// hostCases are hosts as written in URLs, with whether the zero Policy and
// one with AllowLoopback let them be dialled, and what a refusal says.
var hostCases = []struct {
	host            string
	strict, allowLB bool
	why             string
}{
	// cameras and receivers on private networks, and public ones
	{"10.1.2.3", true, true, ""},
	{"172.16.0.9", true, true, ""},
	{"192.168.1.64", true, true, ""},
	{"100.64.0.1", true, true, ""},
	{"fd12:3456::1", true, true, ""},
	{"[fd12:3456::1]", true, true, ""},
	{"203.0.113.7", true, true, ""},
	{"2001:db8::7", true, true, ""},
	{"cam-gate.example.com", true, true, ""},
	{"qyapi.weixin.qq.com", true, true, ""},
	{"1e100.net", true, true, ""},
	// loopback: only with the allowance
	{"127.0.0.1", false, true, "loopback"},
	{"127.8.9.10", false, true, "loopback"},
	{"::1", false, true, "loopback"},
	{"[::1]", false, true, "loopback"},
	{"::ffff:127.0.0.1", false, true, "loopback"},
	{"localhost", false, true, "loopback"},
	{"LocalHost.", false, true, "loopback"},
	{"cam.localhost", false, true, "loopback"},
	{"127.0.0.1.", false, true, "loopback"},
	// never
	{"169.254.169.254", false, false, "link-local"},
	{"169.254.0.23", false, false, "link-local"},
	{"::ffff:169.254.169.254", false, false, "link-local"},
	{"fe80::1", false, false, "link-local"},
	{"fe80::1%eth0", false, false, "link-local"},
	{"100.100.100.200", false, false, "metadata"},
	{"fd00:ec2::254", false, false, "metadata"},
	{"metadata.google.internal", false, false, "metadata"},
	{"Metadata.Google.Internal.", false, false, "metadata"},
	{"metadata", false, false, "metadata"},
	{"instance-data.ec2.internal", false, false, "metadata"},
	{"metadata.tencentyun.com", false, false, "metadata"},
	{"0.0.0.0", false, false, "unspecified"},
	{"0.1.2.3", false, false, "unspecified"},
	{"::", false, false, "unspecified"},
	{"224.0.0.1", false, false, "multicast"},
	{"239.255.255.250", false, false, "multicast"},
	{"ff02::1", false, false, "multicast"},
	{"255.255.255.255", false, false, "broadcast"},
	{"2130706433", false, false, "dotted decimal"},
	{"0x7f.1", false, false, "dotted decimal"},
	{"0177.0.0.1", false, false, "dotted decimal"},
	{"", false, false, "no host"},
}

func TestCheckHost(t *testing.T) {
	for _, tc := range hostCases {
		for _, p := range []Policy{{}, {AllowLoopback: true}} {
			want := tc.strict
			if p.AllowLoopback {
				want = tc.allowLB
			}
			err := p.CheckHost(tc.host)
			if (err == nil) != want {
				t.Errorf("%+v.CheckHost(%q) = %v, want allowed %v", p, tc.host, err, want)
				continue
			}
			if err != nil {
				if !errors.Is(err, ErrRefused) {
					t.Errorf("CheckHost(%q) = %v, which does not wrap ErrRefused", tc.host, err)
				}
				if !strings.Contains(err.Error(), tc.why) {
					t.Errorf("CheckHost(%q) = %q, want it to say %q", tc.host, err, tc.why)
				}
			}
		}
	}
}

func TestCheckURLNamesOnlyTheHost(t *testing.T) {
	p := Policy{}
	err := p.CheckURL("rtsp://admin:s3cret-pw@169.254.169.254:554/stream?token=t0ken")
	if err == nil {
		t.Fatal("metadata address allowed")
	}
	for _, secret := range []string{"s3cret-pw", "t0ken", "admin"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error %q repeats %q", err, secret)
		}
	}
	if err := p.CheckURL("rtsp://192.168.1.64:554/Streaming/Channels/101"); err != nil {
		t.Errorf("private camera refused: %v", err)
	}
	if err := p.CheckURL("http://[::1]:8080/hook"); err == nil {
		t.Error("IPv6 loopback URL allowed")
	}
	if err := p.CheckURL("http://%zz"); err == nil || strings.Contains(err.Error(), "%zz") {
		t.Errorf("bad URL: %v", err)
	}
}

func TestControl(t *testing.T) {
	for _, tc := range []struct {
		addr string
		p    Policy
		ok   bool
	}{
		{"192.168.1.10:443", Policy{}, true},
		{"127.0.0.1:80", Policy{}, false},
		{"127.0.0.1:80", Policy{AllowLoopback: true}, true},
		{"[::1]:80", Policy{}, false},
		{"169.254.169.254:80", Policy{AllowLoopback: true}, false},
		{"[fe80::1%lo]:80", Policy{AllowLoopback: true}, false},
		{"not-an-address", Policy{AllowLoopback: true}, false},
	} {
		err := tc.p.Control("tcp4", tc.addr, nil)
		if (err == nil) != tc.ok {
			t.Errorf("%+v.Control(%q) = %v, want allowed %v", tc.p, tc.addr, err, tc.ok)
		}
	}
}

// TestDialerRefusesResolvedLoopback dials a real listener on loopback by
// name: the name passes CheckHost's look at it only with the allowance,
// but the dialer judges the address it resolved to.
func TestDialerRefusesResolvedLoopback(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c, err := (Policy{}).Dialer().DialContext(ctx, "tcp", net.JoinHostPort("localhost", port)); err == nil {
		c.Close()
		t.Fatal("the strict dialer connected to localhost")
	} else if !errors.Is(err, ErrRefused) {
		t.Fatalf("dial localhost: %v, want ErrRefused", err)
	}
	c, err := (Policy{AllowLoopback: true}).Dialer().DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("the allowing dialer: %v", err)
	}
	c.Close()
}

func FuzzCheckHost(f *testing.F) {
	for _, tc := range hostCases {
		f.Add(tc.host)
	}
	f.Fuzz(func(t *testing.T, host string) {
		err := Policy{}.CheckHost(host)
		if err != nil && !errors.Is(err, ErrRefused) {
			t.Fatalf("CheckHost(%q) = %v without ErrRefused", host, err)
		}
		// loopback is never let through without the allowance
		if err == nil && (host == "localhost" || strings.HasPrefix(host, "127.")) {
			if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
				t.Fatalf("CheckHost(%q) allowed loopback", host)
			}
		}
	})
}
