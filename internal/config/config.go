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
}

// Console configures the HTTP server.
type Console struct {
	// Listen is the TCP address to listen on. Default 127.0.0.1:8080.
	Listen string `yaml:"listen"`
	// TLSCert and TLSKey, when both set, serve HTTPS with these PEM files.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
}

// Storage configures where data lives and for how long.
type Storage struct {
	// DataDir holds the SQLite database and stored files. Default ./data.
	DataDir string `yaml:"data_dir"`
	// CountsRetention is how long per-second counts are kept. Default 7 days.
	CountsRetention time.Duration `yaml:"counts_retention"`
	// RollupRetention is how long per-minute rollups are kept. Default 365 days.
	RollupRetention time.Duration `yaml:"rollup_retention"`
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
	// Zones are the counting regions of this camera's picture.
	Zones []Zone `yaml:"zones"`
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
