package config

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"flowwatch/internal/netguard"
)

// nameRE is what camera, zone and area names may contain: they appear in
// URLs, metrics labels and file names.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// Roles are the user roles flowwatch knows.
var Roles = []string{"admin", "operator", "guard", "planner", "viewer"}

type checker struct {
	problems []Problem
	// guard judges the hosts of camera and webhook URLs.
	guard netguard.Policy
}

func (k *checker) add(key, format string, args ...any) {
	k.problems = append(k.problems, Problem{Key: key, Message: fmt.Sprintf(format, args...)})
}

func validate(c *Config) []Problem {
	k := checker{guard: netguard.Policy{AllowLoopback: c.Security.AllowLoopback}}
	k.listen("console.listen", c.Console.Listen)
	if (c.Console.TLSCert == "") != (c.Console.TLSKey == "") {
		k.add("console.tls_cert", "tls_cert and tls_key go together: set both or neither")
	}
	if r := c.Console.RateLimitPerSecond; !(r > 0 && r <= 100000) {
		k.add("console.rate_limit_per_second", "must be above 0 and at most 100000 requests per second, got %g", r)
	}
	k.between("console.rate_limit_burst", float64(c.Console.RateLimitBurst), 1, 1000000)
	for i, p := range c.Console.TrustedProxies {
		if _, err := ParseProxy(p); err != nil {
			k.add(fmt.Sprintf("console.trusted_proxies[%d]", i), "%v", err)
		}
	}
	if c.Console.ProxyTLS && len(c.Console.TrustedProxies) == 0 {
		k.add("console.proxy_tls", "says a proxy terminates TLS, but console.trusted_proxies names none")
	}
	k.positive("storage.counts_retention", c.Storage.CountsRetention)
	k.positive("storage.rollup_retention", c.Storage.RollupRetention)
	k.positive("storage.alerts_retention", c.Storage.AlertsRetention)
	k.positive("storage.heatmaps_retention", c.Storage.HeatmapsRetention)
	k.positive("storage.snapshots_retention", c.Storage.SnapshotsRetention)
	if c.Storage.AuditRetention < MinAuditRetention {
		k.add("storage.audit_retention", "must be at least %s (180 days: the audit log is kept six months), got %s",
			MinAuditRetention, c.Storage.AuditRetention)
	}
	k.positive("console.idle_timeout", c.Console.IdleTimeout)
	if c.Console.MaxSession < c.Console.IdleTimeout {
		k.add("console.max_session", "must not be below idle_timeout (%s), got %s", c.Console.IdleTimeout, c.Console.MaxSession)
	}
	if h := c.Console.PasswordHistory; h != -1 && (h < 1 || h > 25) {
		k.add("console.password_history", "must be 1 to 25, or -1 to turn the rule off, got %d", h)
	}
	for i, r := range c.Console.TOTPRoles {
		k.oneOf(fmt.Sprintf("console.totp_roles[%d]", i), r, Roles...)
	}
	if c.Storage.DataDir == "" {
		k.add("storage.data_dir", "must not be empty")
	}
	k.oneOf("vision.provider", c.Vision.Provider, "cpu", "cuda", "tensorrt")
	k.between("vision.threads", float64(c.Vision.Threads), 1, 256)
	k.between("vision.batch_size", float64(c.Vision.BatchSize), 1, 64)
	if c.Vision.FP16 && c.Vision.Provider != "tensorrt" {
		k.add("vision.fp16", "half precision needs provider tensorrt, got %q", c.Vision.Provider)
	}
	if c.Vision.DeviceID < 0 {
		k.add("vision.device_id", "must be 0 or more, got %d", c.Vision.DeviceID)
	}
	if c.Vision.BatchWait < 0 || c.Vision.BatchWait > 10*time.Second {
		k.add("vision.batch_wait", "must be between 0s and 10s, got %s", c.Vision.BatchWait)
	}
	if c.Simulator.Enabled {
		k.listen("simulator.listen", c.Simulator.Listen)
	}

	zones := map[string]bool{}
	cameras := map[string]bool{}
	for i, cam := range c.Cameras {
		key := fmt.Sprintf("cameras[%d]", i)
		k.name(key+".name", cam.Name)
		if cameras[cam.Name] {
			k.add(key+".name", "camera %q is defined twice", cam.Name)
		}
		cameras[cam.Name] = true
		k.rtspURL(key+".url", cam.URL, true)
		k.rtspURL(key+".live_url", cam.LiveURL, false)
		k.oneOf(key+".transport", cam.Transport, "auto", "tcp", "udp")
		k.oneOf(key+".decode", cam.Decode, "all", "keyframes")
		k.privacy(key, cam)
		if !(cam.AnalysisFPS > 0 && cam.AnalysisFPS <= 60) {
			k.add(key+".analysis_fps", "must be above 0 and at most 60, got %g", cam.AnalysisFPS)
		}
		if cam.StallTimeout < 500*time.Millisecond {
			k.add(key+".stall_timeout", "must be at least 500ms, got %s", cam.StallTimeout)
		}
		k.positive(key+".backoff_min", cam.BackoffMin)
		if cam.BackoffMax < cam.BackoffMin {
			k.add(key+".backoff_max", "must not be below backoff_min (%s), got %s", cam.BackoffMin, cam.BackoffMax)
		}
		seen := map[string]bool{}
		for j, z := range cam.Zones {
			zkey := fmt.Sprintf("%s.zones[%d]", key, j)
			k.name(zkey+".name", z.Name)
			if seen[z.Name] {
				k.add(zkey+".name", "zone %q is defined twice in camera %q", z.Name, cam.Name)
			}
			seen[z.Name] = true
			zones[cam.Name+"/"+z.Name] = true
			k.polygon(zkey+".polygon", z.Polygon)
			if z.Capacity < 0 {
				k.add(zkey+".capacity", "must be 0 or more, got %d", z.Capacity)
			}
		}
	}

	areas := map[string]bool{}
	for i, a := range c.Areas {
		key := fmt.Sprintf("areas[%d]", i)
		k.name(key+".name", a.Name)
		if areas[a.Name] {
			k.add(key+".name", "area %q is defined twice", a.Name)
		}
		areas[a.Name] = true
		if len(a.Zones) == 0 {
			k.add(key+".zones", "an area needs at least one zone (\"camera/zone\")")
		}
		for j, z := range a.Zones {
			if !zones[z] {
				k.add(fmt.Sprintf("%s.zones[%d]", key, j), "no zone %q: name zones as \"camera/zone\" of a configured camera", z)
			}
		}
		if a.Capacity < 0 {
			k.add(key+".capacity", "must be 0 or more, got %d", a.Capacity)
		}
		if a.AreaM2 < 0 || math.IsNaN(a.AreaM2) {
			k.add(key+".area_m2", "must be 0 or more, got %g", a.AreaM2)
		}
		if !(a.SpacePerVisitorM2 > 0) {
			k.add(key+".space_per_visitor_m2", "must be above 0, got %g", a.SpacePerVisitorM2)
		}
		if a.Capacity == 0 && a.AreaM2 == 0 {
			k.add(key+".capacity", "set capacity (people) or area_m2 (with space_per_visitor_m2)")
		}
	}

	for i, a := range c.Areas {
		if a.Turnover < 0 || math.IsNaN(a.Turnover) {
			k.add(fmt.Sprintf("areas[%d].turnover", i), "must be 0 or more, got %g", a.Turnover)
		}
		for j, l := range a.Links {
			key := fmt.Sprintf("areas[%d].links[%d]", i, j)
			switch {
			case !areas[l.To]:
				k.add(key+".to", "no area %q", l.To)
			case l.To == a.Name:
				k.add(key+".to", "an area cannot divert to itself")
			}
			if l.WalkMinutes < 0 || math.IsNaN(l.WalkMinutes) {
				k.add(key+".walk_minutes", "must be 0 or more, got %g", l.WalkMinutes)
			}
		}
	}

	r := c.Rules
	if len(r.ComfortBounds) != 4 {
		k.add("rules.comfort_bounds", "needs exactly four increasing fractions of capacity, got %d", len(r.ComfortBounds))
	} else {
		for i, b := range r.ComfortBounds {
			if !(b > 0 && b <= 2) || (i > 0 && b <= r.ComfortBounds[i-1]) {
				k.add(fmt.Sprintf("rules.comfort_bounds[%d]", i), "bounds must increase and lie in (0, 2], got %v", r.ComfortBounds)
				break
			}
		}
	}
	if !(r.Yellow > 0 && r.Yellow < r.Orange && r.Orange < r.Red && r.Red <= 2) {
		k.add("rules.yellow", "tiers must satisfy 0 < yellow < orange < red <= 2, got %g, %g, %g", r.Yellow, r.Orange, r.Red)
	}
	if !(r.ClearMargin > 0 && r.ClearMargin < r.Yellow) {
		k.add("rules.clear_margin", "must lie between 0 and the yellow tier (%g), got %g", r.Yellow, r.ClearMargin)
	}
	k.positive("rules.smoothing", r.Smoothing)
	k.positive("rules.min_duration", r.MinDuration)
	k.positive("rules.cooldown", r.Cooldown)
	k.positive("rules.trend_window", r.TrendWindow)
	k.positive("rules.camera_offline", r.CameraOffline)
	if math.IsNaN(r.SurgePerMinute) || r.SurgePerMinute > 10 {
		k.add("rules.surge_per_minute", "must be a fraction of capacity per minute up to 10 (negative: off), got %g", r.SurgePerMinute)
	}
	k.oneOf("rules.escalate_to", r.EscalateTo, Roles...)

	hooks := map[string]bool{}
	for i, w := range c.Notify.Webhooks {
		key := fmt.Sprintf("notify.webhooks[%d]", i)
		k.name(key+".name", w.Name)
		if hooks[w.Name] {
			k.add(key+".name", "webhook %q is defined twice", w.Name)
		}
		hooks[w.Name] = true
		k.webhookURL(key+".url", w.URL)
		k.oneOf(key+".min_level", w.MinLevel, "info", "yellow", "orange", "red")
	}
	k.positive("notify.retry_for", c.Notify.RetryFor)

	users := map[string]bool{}
	for i, u := range c.Users {
		key := fmt.Sprintf("users[%d]", i)
		if u.Username == "" || strings.TrimSpace(u.Username) != u.Username || len(u.Username) > 64 {
			k.add(key+".username", "must be 1 to 64 characters without surrounding spaces")
		}
		if users[u.Username] {
			k.add(key+".username", "user %q is defined twice", u.Username)
		}
		users[u.Username] = true
		k.oneOf(key+".role", u.Role, Roles...)
		for j, p := range u.Posts {
			if !areas[p] {
				k.add(fmt.Sprintf("%s.posts[%d]", key, j), "no area %q", p)
			}
		}
	}
	return k.problems
}

// webhookURL checks an http(s) URL without echoing any credentials in it.
func (k *checker) webhookURL(key, raw string) {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		k.add(key, "a webhook needs a URL")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		k.add(key, "must be an http:// or https:// URL")
	case u.User != nil:
		k.add(key, "must not carry credentials: put the shared secret in secret")
	default:
		k.host(key, u.Hostname())
	}
}

// host refuses a URL's host that the SSRF guard refuses (see
// internal/netguard); the host is named, never the rest of the URL.
func (k *checker) host(key, host string) {
	if err := k.guard.CheckHost(host); err != nil {
		k.add(key, "%v", err)
	}
}

func (k *checker) listen(key, addr string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		k.add(key, "must be HOST:PORT, got %q", addr)
		return
	}
	if host != "" && net.ParseIP(host) == nil && host != "localhost" {
		k.add(key, "host must be an IP address or localhost, got %q", host)
	}
}

func (k *checker) positive(key string, d time.Duration) {
	if d <= 0 {
		k.add(key, "must be a positive duration such as 500ms, 5s or 24h, got %s", d)
	}
}

func (k *checker) between(key string, v, lo, hi float64) {
	if v < lo || v > hi {
		k.add(key, "must be between %g and %g, got %g", lo, hi, v)
	}
}

func (k *checker) oneOf(key, v string, allowed ...string) {
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	k.add(key, "must be one of %s, got %q", strings.Join(allowed, ", "), v)
}

func (k *checker) name(key, v string) {
	if !nameRE.MatchString(v) {
		k.add(key, "must be 1 to 64 letters, digits, '-' or '_', starting with a letter or digit, got %q", v)
	}
}

// rtspURL checks a camera URL. Its messages never repeat the URL, which
// may hold a password.
func (k *checker) rtspURL(key, raw string, required bool) {
	if raw == "" {
		if required {
			k.add(key, "is required")
		}
		return
	}
	u, err := url.Parse(raw)
	if err != nil {
		k.add(key, "is not a valid URL")
		return
	}
	if u.Scheme != "rtsp" && u.Scheme != "rtsps" {
		k.add(key, "scheme must be rtsp or rtsps, got %q", u.Scheme)
	}
	if u.Hostname() == "" {
		k.add(key, "has no host")
		return
	}
	k.host(key, u.Hostname())
}

func (k *checker) polygon(key string, pts [][2]float64) {
	if len(pts) < 3 {
		k.add(key, "needs at least 3 points, got %d", len(pts))
		return
	}
	for _, p := range pts {
		if !(p[0] >= 0 && p[0] <= 1 && p[1] >= 0 && p[1] <= 1) {
			k.add(key, "points are normalized image coordinates in [0, 1], got [%g, %g]", p[0], p[1])
			return
		}
	}
	var area2 float64
	for i := range pts {
		a, b := pts[i], pts[(i+1)%len(pts)]
		area2 += a[0]*b[1] - b[0]*a[1]
	}
	if math.Abs(area2) < 1e-9 {
		k.add(key, "has no area (its points lie on a line)")
	}
}

// privacy refuses a camera that films a kind of place the regulation
// bans, or names a kind flowwatch does not know. A camera that does not
// say where its notice is posted or what it films still loads (existing
// sites keep running); serve warns about it (PrivacyGaps).
func (k *checker) privacy(key string, cam Camera) {
	switch {
	case cam.LocationType == "":
	case slices.Contains(BannedLocationTypes, cam.LocationType):
		k.add(key+".location_type", "camera %q films a %s: cameras are banned there (public-security video regulation); remove the camera",
			cam.Name, strings.ReplaceAll(cam.LocationType, "_", " "))
	default:
		k.oneOf(key+".location_type", cam.LocationType, LocationTypes...)
	}
}

// PrivacyGaps lists the enabled cameras that do not yet say where their
// public notice is posted (signage) or what kind of place they film
// (location_type), as "cameras[i] (name): signage, location_type".
func PrivacyGaps(c *Config) []string {
	var out []string
	for i, cam := range c.Cameras {
		if cam.Disabled {
			continue
		}
		var missing []string
		if strings.TrimSpace(cam.Signage) == "" {
			missing = append(missing, "signage")
		}
		if cam.LocationType == "" {
			missing = append(missing, "location_type")
		}
		if len(missing) > 0 {
			out = append(out, fmt.Sprintf("cameras[%d] (%s): %s", i, cam.Name, strings.Join(missing, ", ")))
		}
	}
	return out
}

// ParseProxy reads one entry of console.trusted_proxies: an IP address
// (a single host) or a CIDR prefix such as 10.0.0.0/24. A prefix must not
// have host bits set, so a typo cannot trust more than was meant, and
// 0.0.0.0/0 or ::/0 (trusting every client) is refused.
func ParseProxy(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither an IP address nor a CIDR prefix such as 10.0.0.0/24", s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set; did you mean %s?", s, p.Masked())
	}
	if p.Bits() == 0 {
		return netip.Prefix{}, fmt.Errorf("%q would trust every client to name its own address", s)
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p, nil
}
