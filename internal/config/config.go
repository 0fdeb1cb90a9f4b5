package config

import "time"

// Config is the whole of a flowwatch deployment's configuration.
type Config struct {
	// Console is the HTTP server for the console, API and metrics.
	Console Console `yaml:"console"`
	// Storage is where flowwatch keeps its SQLite database and files.
	Storage Storage `yaml:"storage"`
	// Vision selects the model and inference backend.
	Vision Vision `yaml:"vision"`
	// Simulator, when enabled, serves sample videos as RTSP cameras
	// inside the serve process (the demo uses it).
	Simulator Simulator `yaml:"simulator"`
	// Cameras are the video sources; each holds its own zones.
	Cameras []Camera `yaml:"cameras"`
	// Areas group zones (possibly across cameras) under a capacity.
	Areas []Area `yaml:"areas"`
	// Rules tune comfort levels and capacity tiers.
	Rules Rules `yaml:"rules"`
	// Users are local accounts created at start when missing.
	Users []User `yaml:"users"`
	// Notify configures where alerts are sent besides the console.
	Notify Notify `yaml:"notify"`
	// Security holds exceptions to flowwatch's safety checks.
	Security Security `yaml:"security"`
}

// Security holds exceptions to flowwatch's safety checks; the defaults
// are the safe ones.
type Security struct {
	// AllowLoopback lets camera URLs (url, live_url) and webhook URLs
	// name loopback addresses (127.0.0.0/8, ::1, localhost), which the
	// SSRF guard refuses otherwise; webhooks are also checked again at
	// each connection, against the address the name resolved to. The
	// demo sets it for its built-in simulator on 127.0.0.1. Link-local
	// (169.254.0.0/16, the cloud metadata service), unspecified and
	// multicast addresses and the metadata names stay refused; private
	// networks (10/8, 172.16/12, 192.168/16, fc00::/7) are always
	// allowed, since cameras live there. Default false.
	AllowLoopback bool `yaml:"allow_loopback"`
}

// Console configures the HTTP server.
type Console struct {
	// Listen is the TCP address to listen on. Default 127.0.0.1:8080.
	Listen string `yaml:"listen"`
	// TLSCert and TLSKey, when both set, serve HTTPS with these PEM files.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// RateLimitPerSecond is how many requests per second each client
	// address (an IPv4 address, or an IPv6 /64) may make to the console,
	// every route counted, loopback included; a websocket or WHEP
	// connection counts once, when it is opened. Default 20.
	RateLimitPerSecond float64 `yaml:"rate_limit_per_second"`
	// RateLimitBurst is how many requests a client may make at once
	// before RateLimitPerSecond applies (the token bucket's size): an
	// app's first load fetches many at once. Default 100.
	RateLimitBurst int `yaml:"rate_limit_burst"`
	// TrustedProxies are the addresses or CIDR prefixes of reverse
	// proxies in front of the console (nginx, a load balancer). For a
	// request arriving from one of them, the client is the rightmost
	// X-Forwarded-For address that is not itself a trusted proxy; rate
	// limits, lock-outs, logs and the audit log then name that client.
	// Default none: forwarding headers are ignored, so no client can
	// choose the address it is known by.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// ProxyTLS says the trusted proxies terminate TLS for the console:
	// session cookies are then marked Secure although the console itself
	// serves plain HTTP. The proxy should send Strict-Transport-Security.
	ProxyTLS bool `yaml:"proxy_tls"`
	// IdleTimeout ends a login session unused this long. Default 15m.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxSession ends a login session this long after the login, used
	// or not; at least IdleTimeout. Default 12h.
	MaxSession time.Duration `yaml:"max_session"`
	// PasswordHistory is how many of a user's last passwords, the
	// current one included, a new password may not repeat. Default 5;
	// -1 turns the rule off.
	PasswordHistory int `yaml:"password_history"`
	// TOTPRoles are the roles whose users must log in with a TOTP second
	// factor (RFC 6238); such a user without one may log in only to set
	// it up. TOTP needs FLOWWATCH_SECRET_KEY. Default none.
	TOTPRoles []string `yaml:"totp_roles"`
}

// Storage configures where data lives and for how long.
type Storage struct {
	// DataDir holds the SQLite database and stored files. Default ./data.
	DataDir string `yaml:"data_dir"`
	// CountsRetention is how long per-second counts are kept. Default 7 days.
	CountsRetention time.Duration `yaml:"counts_retention"`
	// RollupRetention is how long per-minute rollups are kept. Default 365 days.
	RollupRetention time.Duration `yaml:"rollup_retention"`
	// AlertsRetention is how long resolved alerts and their history are
	// kept. Default 365 days.
	AlertsRetention time.Duration `yaml:"alerts_retention"`
	// HeatmapsRetention is how long heatmap buckets are kept. Default 90
	// days.
	HeatmapsRetention time.Duration `yaml:"heatmaps_retention"`
	// SnapshotsRetention is how long the camera pictures an admin stored
	// are kept. Default 30 days.
	SnapshotsRetention time.Duration `yaml:"snapshots_retention"`
	// AuditRetention is how long audit entries are kept: at least 180
	// days (six months, as MLPS 2.0 level 3 asks). Default 180 days.
	AuditRetention time.Duration `yaml:"audit_retention"`
}

// Vision configures inference.
type Vision struct {
	// Model is the name of a model under the models folder. Default
	// "default".
	Model string `yaml:"model"`
	// Provider is the ONNX Runtime execution provider: cpu, cuda or
	// tensorrt. Default cpu.
	Provider string `yaml:"provider"`
	// DeviceID is the GPU index for cuda and tensorrt.
	DeviceID int `yaml:"device_id"`
	// FP16 lets TensorRT compute in half precision.
	FP16 bool `yaml:"fp16"`
	// ORTLibrary is the path of libonnxruntime; empty means
	// $FLOWWATCH_ORT_LIB or the library installed by setup.
	ORTLibrary string `yaml:"ort_library"`
	// Threads is the number of intra-op threads. Default 1.
	Threads int `yaml:"threads"`
	// BatchSize is the most frames batched across cameras. Default 4.
	BatchSize int `yaml:"batch_size"`
	// BatchWait is the longest a frame waits for a batch to fill.
	// Default 50ms.
	BatchWait time.Duration `yaml:"batch_wait"`
}

// Simulator configures the built-in RTSP simulator.
type Simulator struct {
	// Enabled starts the simulator inside serve.
	Enabled bool `yaml:"enabled"`
	// Listen is the RTSP TCP address. Default 127.0.0.1:8554.
	Listen string `yaml:"listen"`
	// Videos are files to serve; empty means the built-in samples.
	Videos []string `yaml:"videos"`
}

// Camera is one RTSP camera.
type Camera struct {
	// Name identifies the camera: letters, digits, '-' and '_'.
	Name string `yaml:"name"`
	// Title is a human label shown in the console.
	Title string `yaml:"title"`
	// URL is the rtsp:// or rtsps:// address of the analysed stream.
	URL string `yaml:"url"`
	// LiveURL is an optional lighter substream for live viewing.
	LiveURL string `yaml:"live_url"`
	// Username and Password authenticate to the camera (basic or digest);
	// they may also be given in the URL.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// Transport is auto, tcp or udp. Default auto.
	Transport string `yaml:"transport"`
	// Decode is "all" (every frame decoded, sampled to AnalysisFPS) or
	// "keyframes" (only keyframes decoded). Default all.
	Decode string `yaml:"decode"`
	// AnalysisFPS is how many frames per second are analysed. Default 2.
	AnalysisFPS float64 `yaml:"analysis_fps"`
	// StallTimeout is how long without media before a reconnect. Default 5s.
	StallTimeout time.Duration `yaml:"stall_timeout"`
	// BackoffMin and BackoffMax bound the reconnect delay. Defaults
	// 500ms and 30s.
	BackoffMin time.Duration `yaml:"backoff_min"`
	BackoffMax time.Duration `yaml:"backoff_max"`
	// Disabled keeps the camera configured but not connected.
	Disabled bool `yaml:"disabled"`
	// Signage says where the notice telling the public that this camera
	// films them is posted (PIPL Art. 26: images from public places need
	// visible signs). serve warns about a camera without it.
	Signage string `yaml:"signage"`
	// LocationType is the kind of place the camera films: one of
	// LocationTypes. Cameras in places the public-security video
	// regulation bans (toilets, changing rooms, nursing rooms, bathing
	// places, dormitories, guest rooms) are refused; serve warns about a
	// camera without one.
	LocationType string `yaml:"location_type"`
	// Zones are the counting regions of this camera's picture.
	Zones []Zone `yaml:"zones"`
}

// LocationTypes are the kinds of place a camera may film.
var LocationTypes = []string{
	"entrance", "exit", "ticketing", "plaza", "path", "viewpoint", "parking",
	"exhibition_hall", "corridor", "stairs", "shop", "restaurant", "waiting_area",
	"outdoor_other", "indoor_other",
}

// BannedLocationTypes are the places the public-security video regulation
// (公共安全视频图像信息系统管理条例, 2025) bans cameras from, where people
// expect privacy: a camera configured with one is refused.
var BannedLocationTypes = []string{
	"toilet", "changing_room", "fitting_room", "nursing_room", "bathing_room", "dormitory", "guest_room",
}

// Zone is a polygon in normalized image coordinates (0..1, origin top
// left) of one camera.
type Zone struct {
	// Name identifies the zone within its camera.
	Name string `yaml:"name"`
	// Polygon has three or more [x, y] points.
	Polygon [][2]float64 `yaml:"polygon"`
	// Capacity is the most people the zone should hold; 0 means none set.
	Capacity int `yaml:"capacity"`
}

// Area is a set of zones, possibly across cameras, with a capacity.
type Area struct {
	// Name identifies the area.
	Name string `yaml:"name"`
	// Title is a human label for consoles and the public page.
	Title string `yaml:"title"`
	// Zones name members as "camera/zone".
	Zones []string `yaml:"zones"`
	// Capacity in people. Either Capacity or AreaM2 must be set.
	Capacity int `yaml:"capacity"`
	// AreaM2 is the walkable area; capacity is AreaM2 / SpacePerVisitorM2.
	AreaM2 float64 `yaml:"area_m2"`
	// SpacePerVisitorM2 is the space each visitor needs. Default 1.0.
	SpacePerVisitorM2 float64 `yaml:"space_per_visitor_m2"`
	// Turnover is how many times a day the area's visitors are replaced
	// (opening hours over the average stay); with it the area publishes a
	// daily capacity of capacity × turnover (LB/T 034-2014). 0: none.
	Turnover float64 `yaml:"turnover"`
	// Links are the neighbouring areas visitors can be sent to when this
	// one fills, with the way there.
	Links []Link `yaml:"links"`
}

// Link joins an area to a neighbour for diversion advice.
type Link struct {
	// To names the neighbouring area.
	To string `yaml:"to"`
	// Route is the gate or path to take, as guards say it.
	Route string `yaml:"route"`
	// WalkMinutes is how long the walk takes.
	WalkMinutes float64 `yaml:"walk_minutes"`
}

// Rules holds the thresholds that turn counts into levels.
type Rules struct {
	// ComfortBounds are the four upper bounds, as fractions of capacity,
	// of the comfort grades 舒适, 较舒适, 一般, 较拥挤 (above the last:
	// 拥挤). Default [0.3, 0.5, 0.7, 0.9].
	ComfortBounds []float64 `yaml:"comfort_bounds"`
	// Yellow, Orange and Red are the capacity tiers as fractions of
	// capacity. Defaults 0.8, 0.9, 1.0.
	Yellow float64 `yaml:"yellow"`
	Orange float64 `yaml:"orange"`
	Red    float64 `yaml:"red"`
	// ClearMargin is the hysteresis of the tiers: a tier clears only when
	// the ratio falls below its bound minus this. Default 0.05.
	ClearMargin float64 `yaml:"clear_margin"`
	// Smoothing is the window of the running median that counts pass
	// through before any rule sees them. Default 10s.
	Smoothing time.Duration `yaml:"smoothing"`
	// MinDuration is how long a condition must hold before its alert is
	// raised, changes level or clears. Default 10s.
	MinDuration time.Duration `yaml:"min_duration"`
	// Cooldown is how long after an alert clears before the same rule on
	// the same target may raise again at the same level or lower (a
	// higher level raises at once). Default 2m.
	Cooldown time.Duration `yaml:"cooldown"`
	// SurgePerMinute raises a surge alert when a target's count grows
	// faster than this fraction of its capacity per minute. Default 0.2;
	// negative turns it off.
	SurgePerMinute float64 `yaml:"surge_per_minute"`
	// TrendWindow is the span of recent counts whose trend gives the
	// surge rate; forecasts use it or half the horizon, whichever is
	// longer. Default 1m.
	TrendWindow time.Duration `yaml:"trend_window"`
	// ForecastHorizon raises "will reach capacity in N minutes" when the
	// trend reaches the red tier within this. Default 10m; negative turns
	// it off.
	ForecastHorizon time.Duration `yaml:"forecast_horizon"`
	// CameraOffline raises a camera alert when a camera is not live for
	// this long; its zones read unknown meanwhile. Default 30s.
	CameraOffline time.Duration `yaml:"camera_offline"`
	// EscalateAfter escalates an alert nobody acknowledged within this to
	// EscalateTo. Default 2m; negative turns escalation off.
	EscalateAfter time.Duration `yaml:"escalate_after"`
	// EscalateTo is the role the escalation goes to. Default admin.
	EscalateTo string `yaml:"escalate_to"`
}

// Notify configures alert delivery outside the console.
type Notify struct {
	// Webhooks receive every alert change as signed JSON.
	Webhooks []Webhook `yaml:"webhooks"`
	// RetryFor is how long an undelivered alert change is retried before
	// it goes to the dead-letter list. Default 24h.
	RetryFor time.Duration `yaml:"retry_for"`
}

// Webhook is one HTTP endpoint that receives alert changes.
type Webhook struct {
	// Name identifies the webhook in logs, metrics and the API.
	Name string `yaml:"name"`
	// URL is the http:// or https:// address to POST to.
	URL string `yaml:"url"`
	// Secret signs each request (HMAC-SHA256); it never appears in logs
	// or answers.
	Secret string `yaml:"secret"`
	// MinLevel is the least level sent: info, yellow, orange or red.
	// Default info (everything).
	MinLevel string `yaml:"min_level"`
}

// User is a local account.
type User struct {
	// Username is the login name.
	Username string `yaml:"username"`
	// Role is admin, operator, guard, planner or viewer.
	Role string `yaml:"role"`
	// Posts are the areas a guard answers for.
	Posts []string `yaml:"posts"`
}

// EffectiveCapacity returns the area's capacity in people: Capacity when set, else
// AreaM2 divided by SpacePerVisitorM2, rounded down.
func (a Area) EffectiveCapacity() int {
	if a.Capacity > 0 {
		return a.Capacity
	}
	if a.AreaM2 > 0 && a.SpacePerVisitorM2 > 0 {
		return int(a.AreaM2 / a.SpacePerVisitorM2)
	}
	return 0
}
