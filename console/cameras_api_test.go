package console

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/jpeg"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"flowwatch/ingest"
	"flowwatch/internal/config"
	"flowwatch/internal/event"
	"flowwatch/internal/store"
	"flowwatch/samples"
	"flowwatch/vision"
)

// cameraSiteYAML has a camera with areas over its zones, a disabled one
// and one whose URL carries a password.
const cameraSiteYAML = `
security: {allow_loopback: true}
cameras:
  - name: cam
    title: Gate camera
    url: rtsp://127.0.0.1:1/cam
    zones:
      - {name: gate, polygon: [[0,0],[1,0],[1,1]], capacity: 10}
      - {name: yard, polygon: [[0,0],[1,1],[0,1]]}
  - name: spare
    url: rtsp://127.0.0.1:1/spare
    disabled: true
  - name: secret
    url: rtsp://watch:url-pass-9876@127.0.0.1:1/secret
    username: watch
    password: cam-pass-1234
areas:
  - {name: gate, zones: [cam/gate], capacity: 10}
  - {name: yard, zones: [cam/yard], capacity: 100}
`

// cameraViews fakes what cmd/flowwatch's site gives the cameras and zones
// APIs: states, snapshots, live density and the zone editor.
type cameraViews struct {
	mu      sync.Mutex
	applied map[string]store.ZoneLayout
}

func (v *cameraViews) CameraStates() []event.CameraState {
	return []event.CameraState{
		{Camera: "cam", Stream: "main", Status: event.CameraLive, Codec: "H264", Width: 64, Height: 48},
		{Camera: "secret", Stream: "main", Status: event.CameraUnauthorized, LastError: "401"},
	}
}

// Snapshot gives cam a 64x48 picture, blue on the left and red on the
// right; the others have none.
func (v *cameraViews) Snapshot(camera string) (*ingest.Frame, error) {
	if camera != "cam" {
		return nil, fmt.Errorf("camera %q has given no picture yet", camera)
	}
	f := &ingest.Frame{Width: 64, Height: 48, Stride: 64*3 + 8}
	f.Pix = make([]byte, f.Height*f.Stride)
	for y := range f.Height {
		for x := range f.Width {
			px := f.Pix[y*f.Stride+3*x:]
			if x < f.Width/2 {
				px[0] = 255 // blue
			} else {
				px[2] = 255 // red
			}
		}
	}
	return f, nil
}

func (v *cameraViews) LiveHeatmap(camera string) (vision.HeatmapGrid, error) {
	if camera != "cam" {
		return vision.HeatmapGrid{}, errors.New("nothing counted yet")
	}
	return vision.HeatmapGrid{Camera: camera, Cols: 2, Rows: 1, Frames: 3, Max: 1.5, Data: []float32{0.5, 1.5}}, nil
}

func (v *cameraViews) ApplyZones(camera string, l store.ZoneLayout) (string, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.applied == nil {
		v.applied = map[string]store.ZoneLayout{}
	}
	v.applied[camera] = l
	return "counting now; alert capacities at next start", nil
}

func (v *cameraViews) ZonesApplied(camera string) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.applied[camera]; ok {
		return "counting now; alert capacities at next start"
	}
	return "counting and alerts"
}

// cameraSiteUsers are the users of a camera site, one per role, by name.
var cameraSiteUsers = map[string]string{
	"ada": RoleAdmin, "otto": RoleOperator, "gina": RoleGuard, "pia": RolePlanner, "vic": RoleViewer,
}

// newCameraSite serves the cameras, zones and users APIs over a real store
// with the fakes of views, one user per role (cameraSiteUsers) holding an
// API token, and the user "temp" (a viewer) to be changed.
func newCameraSite(t *testing.T) (*apiSite, *cameraViews, *Auth) {
	t.Helper()
	return newCameraSiteEdited(t, nil)
}

// newCameraSiteEdited is newCameraSite with its parsed configuration
// changed by edit, when set, before the server starts.
func newCameraSiteEdited(t *testing.T, edit func(*config.Config)) (*apiSite, *cameraViews, *Auth) {
	t.Helper()
	sp := newSiteParts(t, cameraSiteYAML)
	cfg, db, log, auth := sp.cfg, sp.db, sp.log, sp.auth
	if edit != nil {
		edit(cfg)
	}
	views := &cameraViews{}
	s := New(Config{Listen: "127.0.0.1:0", Auth: auth, Store: db, Site: cfg, Cameras: views, Snapshots: views,
		LiveDensity: views, Zones: views, CameraTestTimeout: 5 * time.Second, Logger: log})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	site := &apiSite{base: s.URL(), tokens: map[string]string{}, db: db}
	ctx := context.Background()
	for name, role := range cameraSiteUsers {
		var posts []string
		if role == RoleGuard {
			posts = []string{"gate"}
		}
		if err := auth.CreateUser(ctx, name, role, posts, testPassword(name)); err != nil {
			t.Fatal(err)
		}
		token, err := auth.CreateAPIToken(ctx, name, "test")
		if err != nil {
			t.Fatal(err)
		}
		site.tokens[name] = token
	}
	if err := auth.CreateUser(ctx, "temp", RoleViewer, nil, testPassword("temp")); err != nil {
		t.Fatal(err)
	}
	return site, views, auth
}

// cameraZoneUserRoutes are the routes of the cameras, zones and users APIs
// with the users of newCameraSite allowed on each; the users routes change
// the user "temp", whom the last one deletes.
func cameraZoneUserRoutes() []apiRoute {
	all := []string{"ada", "otto", "gina", "pia", "vic"}
	layout := `{"zones":[{"name":"gate","polygon":[[0,0],[1,0],[1,1]],"capacity":12},{"name":"yard","polygon":[[0,0],[1,1],[0,1]]}]}`
	return []apiRoute{
		{"GET", "/api/v1/cameras", "", all, 200},
		{"GET", "/api/v1/cameras/cam/snapshot", "", []string{"ada", "otto", "pia", "vic"}, 200},
		{"GET", "/api/v1/cameras/cam/density", "", all, 200},
		{"POST", "/api/v1/cameras/cam/test", "", []string{"ada"}, 200},
		{"GET", "/api/v1/cameras/cam/zones", "", []string{"ada", "otto", "pia"}, 200},
		{"PUT", "/api/v1/cameras/cam/zones", layout, []string{"ada"}, 200},
		{"GET", "/api/v1/users", "", []string{"ada"}, 200},
		{"POST", "/api/v1/users", `{"username":"newbie","role":"viewer"}`, []string{"ada"}, 201},
		{"PUT", "/api/v1/users/temp", `{"role":"planner","posts":[]}`, []string{"ada"}, 200},
		{"POST", "/api/v1/users/temp/password", "", []string{"ada"}, 200},
		{"POST", "/api/v1/users/temp/unlock", "", []string{"ada"}, 200},
		{"DELETE", "/api/v1/users/temp", "", []string{"ada"}, 200},
	}
}

func TestCameraZoneUserRoutesEveryRole(t *testing.T) {
	site, _, _ := newCameraSite(t)
	checkRoutesEveryRole(t, site, cameraZoneUserRoutes())
}

// checkRoutesEveryRole calls each route without login (401) and as each
// of the camera site's users: rt.ok for the allowed ones, 403 for the
// others.
func checkRoutesEveryRole(t *testing.T, site *apiSite, routes []apiRoute) {
	t.Helper()
	all := []string{"ada", "otto", "gina", "pia", "vic"}
	for _, rt := range routes {
		if code := site.call(t, "", rt.method, rt.path, rt.body, nil); code != http.StatusUnauthorized {
			t.Errorf("%s %s without login: %d, want 401", rt.method, rt.path, code)
		}
		// the allowed users last, so that a change (a deletion) comes
		// after every refusal
		users := slices.Clone(all)
		slices.SortStableFunc(users, func(a, b string) int {
			return boolInt(slices.Contains(rt.allowed, a)) - boolInt(slices.Contains(rt.allowed, b))
		})
		for _, user := range users {
			code := site.call(t, user, rt.method, rt.path, rt.body, nil)
			want := http.StatusForbidden
			if slices.Contains(rt.allowed, user) {
				want = rt.ok
			}
			if code != want {
				t.Errorf("%s %s as %s (%s): %d, want %d", rt.method, rt.path, user, cameraSiteUsers[user], code, want)
			}
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestCamerasListSnapshotAndDensity(t *testing.T) {
	site, _, _ := newCameraSite(t)
	var list struct {
		Cameras []struct {
			Name, Title, Status string
			Width, Height       int
			Zones               []store.LayoutZone
			States              []event.CameraState
		} `json:"cameras"`
	}
	if code := site.call(t, "gina", "GET", "/api/v1/cameras", "", &list); code != 200 {
		t.Fatalf("camera list: %d", code)
	}
	if len(list.Cameras) != 3 {
		t.Fatalf("cameras: %+v", list.Cameras)
	}
	cam, spare, secret := list.Cameras[0], list.Cameras[1], list.Cameras[2]
	if cam.Name != "cam" || cam.Title != "Gate camera" || cam.Status != "live" || cam.Width != 64 || cam.Height != 48 ||
		len(cam.Zones) != 2 || cam.Zones[0].Name != "gate" || cam.Zones[0].Capacity != 10 || len(cam.Zones[1].Polygon) != 3 ||
		len(cam.States) != 1 {
		t.Errorf("cam: %+v", cam)
	}
	if spare.Status != "disabled" || spare.Title != "spare" || spare.Zones == nil || len(spare.States) != 0 {
		t.Errorf("spare: %+v", spare)
	}
	if secret.Status != "unauthorized" {
		t.Errorf("secret: %+v", secret)
	}
	raw := site.raw(t, "ada", "GET", "/api/v1/cameras", "")
	for _, word := range []string{"rtsp://", "url-pass-9876", "cam-pass-1234"} {
		if strings.Contains(raw.body, word) {
			t.Errorf("the camera list shows %q: %s", word, raw.body)
		}
	}

	// the snapshot is a JPEG of the frame, blue left and red right
	snap := site.raw(t, "vic", "GET", "/api/v1/cameras/cam/snapshot", "")
	if snap.code != 200 || snap.header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("snapshot: %d %s %q", snap.code, snap.header.Get("Content-Type"), snap.body)
	}
	img, err := jpeg.Decode(strings.NewReader(snap.body))
	if err != nil {
		t.Fatalf("snapshot does not decode: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 64 || b.Dy() != 48 {
		t.Fatalf("snapshot is %v, want 64x48", b)
	}
	for _, p := range []struct {
		x        int
		wantBlue bool
	}{{8, true}, {56, false}} {
		r, _, b, _ := img.At(p.x, 24).RGBA()
		if blue := b > 0xc000 && r < 0x4000; blue != p.wantBlue {
			t.Errorf("snapshot pixel at x=%d: r=%x b=%x, want blue=%v", p.x, r, b, p.wantBlue)
		}
	}
	if a := site.raw(t, "vic", "GET", "/api/v1/cameras/secret/snapshot", ""); a.code != http.StatusServiceUnavailable ||
		!strings.Contains(a.body, "no picture yet") {
		t.Errorf("snapshot of a camera without one: %d %s", a.code, a.body)
	}
	if a := site.raw(t, "vic", "GET", "/api/v1/cameras/nope/snapshot", ""); a.code != http.StatusNotFound || !strings.Contains(a.body, `\"nope\"`) {
		t.Errorf("snapshot of an unknown camera: %d %s", a.code, a.body)
	}

	var grid vision.HeatmapGrid
	if code := site.call(t, "gina", "GET", "/api/v1/cameras/cam/density", "", &grid); code != 200 ||
		grid.Camera != "cam" || grid.Cols != 2 || grid.Rows != 1 || len(grid.Data) != 2 || grid.Data[1] != 1.5 || grid.Max != 1.5 {
		t.Errorf("density: %d %+v", code, grid)
	}
	if code := site.call(t, "gina", "GET", "/api/v1/cameras/spare/density", "", nil); code != http.StatusServiceUnavailable {
		t.Errorf("density of a camera without one: %d", code)
	}
}

// simulatorSample returns the prepared vtest stream, skipping the test
// when the samples are not set up.
func simulatorSample(t *testing.T) samples.Prepared {
	t.Helper()
	dir := os.Getenv("FLOWWATCH_SAMPLES")
	if dir == "" {
		dir = filepath.Join("..", "samples", "media")
	}
	p, err := samples.LoadPrepared(filepath.Join(dir, "vtest.h264"))
	if err != nil {
		t.Skipf("sample video not prepared (make setup): %v", err)
	}
	return p
}

func TestCameraConnectionTestAgainstTheSimulator(t *testing.T) {
	p := simulatorSample(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	const user, password = "watch", "sim-pass-5678"
	sim := samples.NewSimulator(samples.SimulatorConfig{Listen: "127.0.0.1:0", Username: user, Password: password,
		Loop: true, Logger: quiet})
	if err := sim.AddPath("vtest", p); err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = sim.Run(ctx) }()
	defer func() { cancel(); <-done }()
	u := sim.URL("vtest")
	withPass := strings.Replace(u, "rtsp://", "rtsp://"+user+":"+password+"@", 1)
	wrongInURL := strings.Replace(u, "rtsp://", "rtsp://"+user+":wrong-url-pass@", 1)

	for _, c := range []struct {
		name   string
		cam    config.Camera
		ok     bool
		secret []string // never in the answer
	}{
		{"credentials in the config", config.Camera{Name: "a", URL: u, Username: user, Password: password, Transport: "tcp"}, true, []string{password}},
		{"credentials in the URL", config.Camera{Name: "b", URL: withPass, Transport: "tcp"}, true, []string{password}},
		{"wrong password", config.Camera{Name: "c", URL: u, Username: user, Password: "wrong-pass-4321", Transport: "tcp"}, false, []string{"wrong-pass-4321"}},
		{"wrong password in the URL", config.Camera{Name: "d", URL: wrongInURL, Transport: "tcp"}, false, []string{"wrong-url-pass"}},
		{"no such path", config.Camera{Name: "e", URL: withPass + "-missing", Transport: "tcp"}, false, []string{password}},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := probeCamera(context.Background(), c.cam, nil, 5*time.Second, quiet)
			t.Logf("%+v", res)
			if res.OK != c.ok {
				t.Fatalf("ok = %v, want %v: %+v", res.OK, c.ok, res)
			}
			if c.ok && (res.Codec != "H264" || res.Width != p.Width || res.Height != p.Height || res.Error != "") {
				t.Errorf("answer %+v, want H264 %dx%d", res, p.Width, p.Height)
			}
			if !c.ok && res.Error == "" {
				t.Errorf("a failed test says no error: %+v", res)
			}
			if res.ElapsedMS < 0 || res.ElapsedMS > 6000 {
				t.Errorf("elapsed %d ms", res.ElapsedMS)
			}
			for _, s := range c.secret {
				if strings.Contains(fmt.Sprintf("%+v", res), s) {
					t.Errorf("the answer shows the password %q: %+v", s, res)
				}
			}
		})
	}
}

func TestCameraConnectionTestRouteRedactsAndAudits(t *testing.T) {
	site, _, _ := newCameraSite(t)
	a := site.raw(t, "ada", "POST", "/api/v1/cameras/secret/test", "")
	if a.code != 200 {
		t.Fatalf("test: %d %s", a.code, a.body)
	}
	for _, word := range []string{"url-pass-9876", "cam-pass-1234"} {
		if strings.Contains(a.body, word) {
			t.Errorf("the test answer shows the password: %s", a.body)
		}
	}
	if !strings.Contains(a.body, `"ok":false`) || !strings.Contains(a.body, "refused") {
		t.Errorf("test of a closed port: %s", a.body)
	}
	if a := site.raw(t, "ada", "POST", "/api/v1/cameras/nope/test", ""); a.code != http.StatusNotFound {
		t.Errorf("test of an unknown camera: %d %s", a.code, a.body)
	}
	entries, err := site.db.AuditEntries(context.Background(), store.AuditFilter{Action: "camera.test"})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Actor != "ada" || entries[0].Target != "camera secret" ||
		strings.Contains(entries[0].Detail, "pass-") {
		t.Errorf("audit of the camera test: %+v", entries)
	}
	var buf bytes.Buffer
	if err := encodeJPEG(&buf, &ingest.Frame{Width: 4, Height: 4, Stride: 12, Pix: make([]byte, 8)}); err == nil {
		t.Error("a frame shorter than its size encodes")
	}
}

// TestCameraConnectionTestPassesTheSSRFGuard: the connection test dials
// through the SSRF guard, so a camera whose address is refused at dial time
// (here loopback once allow_loopback is off, as a name rebound to
// 127.0.0.1 would be) is never reached, while the same camera is reached
// when loopback is allowed.
func TestCameraConnectionTestPassesTheSSRFGuard(t *testing.T) {
	for _, allow := range []bool{true, false} {
		t.Run(fmt.Sprintf("allow_loopback=%v", allow), func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			var accepted atomic.Int32
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					accepted.Add(1)
					c.Close()
				}
			}()
			site, _, _ := newCameraSiteEdited(t, func(cfg *config.Config) {
				cfg.Security.AllowLoopback = allow
				cfg.Cameras[0].URL = "rtsp://" + ln.Addr().String() + "/cam"
			})
			a := site.raw(t, "ada", "POST", "/api/v1/cameras/cam/test", "")
			if a.code != 200 || !strings.Contains(a.body, `"ok":false`) {
				t.Fatalf("test: %d %s", a.code, a.body)
			}
			refused := strings.Contains(a.body, "SSRF guard")
			if allow && (refused || accepted.Load() == 0) {
				t.Errorf("loopback allowed: %d connections, answer %s", accepted.Load(), a.body)
			}
			if !allow && (!refused || accepted.Load() != 0) {
				t.Errorf("loopback refused: %d connections, answer %s", accepted.Load(), a.body)
			}
		})
	}
}
