package console

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"flowwatch/ingest"
	"flowwatch/internal/config"
	"flowwatch/internal/event"
	"flowwatch/internal/netguard"
	"flowwatch/internal/store"
)

// Camera test bounds.
const (
	// DefaultCameraTestTimeout bounds one RTSP connection test.
	DefaultCameraTestTimeout = 10 * time.Second
	// maxCameraTests is how many connection tests may run at once.
	maxCameraTests = 2
	// snapshotQuality is the JPEG quality of snapshots.
	snapshotQuality = 85
)

// Camera statuses the camera list adds to the streams' own.
const (
	// cameraDisabled: the config keeps the camera but does not connect it.
	cameraDisabled = "disabled"
	// cameraOffline: no stream of the camera has reported yet.
	cameraOffline = "offline"
)

// camerasAPI serves /api/v1/cameras and its snapshot, density and test
// routes.
type camerasAPI struct {
	auth    *Auth
	site    *config.Config
	states  CameraStates
	snaps   Snapshots
	density LiveDensity
	// db, when set, holds the zone layouts saved in the console.
	db  *store.Store
	log *slog.Logger
	// testTimeout bounds one connection test.
	testTimeout time.Duration
	// tests holds a token per connection test running.
	tests chan struct{}
}

// snapshotRoles may see a camera's latest picture.
var snapshotRoles = []string{RoleAdmin, RoleOperator, RolePlanner, RoleViewer}

func (c *camerasAPI) register(mux *http.ServeMux) {
	if c.testTimeout <= 0 {
		c.testTimeout = DefaultCameraTestTimeout
	}
	c.tests = make(chan struct{}, maxCameraTests)
	mux.Handle("GET /api/v1/cameras", c.auth.Require(readers, http.HandlerFunc(c.list)))
	mux.Handle("GET /api/v1/cameras/{name}/snapshot", c.auth.Require(snapshotRoles, http.HandlerFunc(c.snapshot)))
	mux.Handle("GET /api/v1/cameras/{name}/density", c.auth.Require(whepRoles, http.HandlerFunc(c.liveDensity)))
	mux.Handle("POST /api/v1/cameras/{name}/test", c.auth.Require([]string{RoleAdmin}, http.HandlerFunc(c.test)))
}

// cameraInfo is one camera of GET /api/v1/cameras. It carries no URL and
// no credentials.
type cameraInfo struct {
	Name   string `json:"name"`
	Title  string `json:"title"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
	// Status is the main stream's status, "disabled" or "offline".
	Status string              `json:"status"`
	Zones  []store.LayoutZone  `json:"zones"`
	States []event.CameraState `json:"states"`
}

func (c *camerasAPI) list(w http.ResponseWriter, r *http.Request) {
	var layouts map[string]store.ZoneLayout
	if c.db != nil {
		var err error
		if layouts, err = c.db.ZoneLayouts(r.Context()); err != nil {
			c.log.Error("zone layouts unreadable", "err", err)
			writeError(w, http.StatusInternalServerError, "zone layouts unreadable; see the server log")
			return
		}
	}
	var states []event.CameraState
	if c.states != nil {
		states = c.states.CameraStates()
	}
	out := make([]cameraInfo, 0, len(c.site.Cameras))
	for _, cc := range c.site.Cameras {
		info := cameraInfo{Name: cc.Name, Title: cc.Title, Status: cameraOffline, States: []event.CameraState{}}
		if info.Title == "" {
			info.Title = cc.Name
		}
		l, ok := layouts[cc.Name]
		if !ok {
			l = configLayout(cc)
		}
		info.Zones = l.Zones
		if info.Zones == nil {
			info.Zones = []store.LayoutZone{}
		}
		for _, st := range states {
			if st.Camera != cc.Name {
				continue
			}
			info.States = append(info.States, st)
			if st.Stream == ingest.StreamMain || st.Stream == "" {
				info.Status, info.Width, info.Height = string(st.Status), st.Width, st.Height
			}
		}
		if cc.Disabled {
			info.Status = cameraDisabled
		}
		out = append(out, info)
	}
	writeJSON(w, http.StatusOK, map[string]any{"cameras": out})
}

func (c *camerasAPI) snapshot(w http.ResponseWriter, r *http.Request) {
	cc, ok := pathCamera(w, r, c.site)
	if !ok {
		return
	}
	if c.snaps == nil {
		writeError(w, http.StatusServiceUnavailable, "camera %q: snapshots are not available on this server", cc.Name)
		return
	}
	f, err := c.snaps.Snapshot(cc.Name)
	if err != nil {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "camera %q: no snapshot: %v", cc.Name, err)
		return
	}
	var buf bytes.Buffer
	if err := encodeJPEG(&buf, f); err != nil {
		c.log.Error("snapshot not encoded", "camera", cc.Name, "err", err)
		writeError(w, http.StatusInternalServerError, "camera %q: snapshot not encoded; see the server log", cc.Name)
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", fmt.Sprint(buf.Len()))
	_, _ = w.Write(buf.Bytes())
}

// encodeJPEG writes the BGR frame f as a JPEG picture to buf.
func encodeJPEG(buf *bytes.Buffer, f *ingest.Frame) error {
	img, err := frameImage(f)
	if err != nil {
		return err
	}
	return jpeg.Encode(buf, img, &jpeg.Options{Quality: snapshotQuality})
}

// frameImage copies the BGR frame f into an RGBA picture.
func frameImage(f *ingest.Frame) (*image.RGBA, error) {
	switch {
	case f == nil:
		return nil, errors.New("no frame")
	case f.Width <= 0 || f.Height <= 0 || f.Stride < 3*f.Width || len(f.Pix) < (f.Height-1)*f.Stride+3*f.Width:
		return nil, fmt.Errorf("frame %dx%d with stride %d holds %d bytes: not a BGR picture", f.Width, f.Height, f.Stride, len(f.Pix))
	}
	img := image.NewRGBA(image.Rect(0, 0, f.Width, f.Height))
	for y := range f.Height {
		src := f.Pix[y*f.Stride : y*f.Stride+3*f.Width]
		dst := img.Pix[y*img.Stride : y*img.Stride+4*f.Width]
		for x := range f.Width {
			dst[4*x], dst[4*x+1], dst[4*x+2], dst[4*x+3] = src[3*x+2], src[3*x+1], src[3*x], 0xff
		}
	}
	return img, nil
}

func (c *camerasAPI) liveDensity(w http.ResponseWriter, r *http.Request) {
	cc, ok := pathCamera(w, r, c.site)
	if !ok {
		return
	}
	if c.density == nil {
		writeError(w, http.StatusServiceUnavailable, "camera %q: live density is not available on this server", cc.Name)
		return
	}
	g, err := c.density.LiveHeatmap(cc.Name)
	if err != nil {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "camera %q: no live density: %v", cc.Name, err)
		return
	}
	if g.Data == nil {
		g.Data = []float32{}
	}
	writeJSON(w, http.StatusOK, g)
}

// cameraTest is the answer of POST /api/v1/cameras/{name}/test. It never
// holds the camera's URL or password.
type cameraTest struct {
	OK        bool   `json:"ok"`
	Codec     string `json:"codec"`
	Width     int    `json:"width"`
	Height    int    `json:"height"`
	ElapsedMS int64  `json:"elapsed_ms"`
	Error     string `json:"error"`
}

func (c *camerasAPI) test(w http.ResponseWriter, r *http.Request) {
	cc, ok := pathCamera(w, r, c.site)
	if !ok {
		return
	}
	select {
	case c.tests <- struct{}{}:
		defer func() { <-c.tests }()
	default:
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusTooManyRequests, "%d camera tests are running; retry when one ends", maxCameraTests)
		return
	}
	guard := netguard.Policy{AllowLoopback: c.site.Security.AllowLoopback}
	res := probeCamera(r.Context(), cc, guard.Dialer().DialContext, c.testTimeout, c.log)
	detail := fmt.Sprintf("ok: %s %dx%d in %d ms", res.Codec, res.Width, res.Height, res.ElapsedMS)
	if !res.OK {
		detail = fmt.Sprintf("failed in %d ms: %s", res.ElapsedMS, res.Error)
	}
	c.log.Info("camera test", "camera", cc.Name, "ok", res.OK, "codec", res.Codec, "elapsed_ms", res.ElapsedMS, "err", res.Error)
	c.auth.Audit(r, principal(r), "camera.test", "camera "+cc.Name, detail)
	writeJSON(w, http.StatusOK, res)
}

// probeCamera connects to the camera as configured (URL, credentials,
// transport), sets up its video and waits, at most timeout, until its codec
// and picture size are known. Nothing it answers holds the URL's or the
// camera's password. dial opens the connection; the route passes the SSRF
// guard's, so a camera name that now resolves to a refused address is not
// reached.
func probeCamera(ctx context.Context, cc config.Camera, dial ingest.DialFunc, timeout time.Duration, log *slog.Logger) cameraTest {
	start := time.Now()
	res := cameraTest{}
	secrets := append([]string{cc.Password}, urlPasswords(cc.URL)...)
	finish := func(err error) cameraTest {
		res.ElapsedMS = time.Since(start).Milliseconds()
		if err != nil {
			res.OK = false
			res.Error = redactSecrets(err.Error(), secrets)
		}
		return res
	}
	src, err := ingest.NewRTSPSource(ingest.RTSPConfig{URL: cc.URL, Username: cc.Username, Password: cc.Password,
		Transport: ingest.Transport(cc.Transport), RequestTimeout: timeout, Logger: log, Dial: dial})
	if err != nil {
		return finish(err)
	}
	known := make(chan ingest.Media, 1)
	st := ingest.NewStream(ingest.StreamConfig{Name: cc.Name + "/test", OnMedia: func(m ingest.Media) {
		if m.Codec != "" && m.Width > 0 && m.Height > 0 {
			select {
			case known <- m:
			default:
			}
		}
	}})
	defer st.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- src.Run(ctx, st) }()
	var runErr error
	running := true
	select {
	case m := <-known:
		res.OK, res.Codec, res.Width, res.Height = true, string(m.Codec), m.Width, m.Height
	case runErr = <-ran:
		running = false
		if runErr == nil || errors.Is(runErr, context.DeadlineExceeded) {
			runErr = fmt.Errorf("no picture size within %s", timeout)
		}
	case <-ctx.Done():
		runErr = fmt.Errorf("no picture size within %s", timeout)
	}
	cancel()
	if running {
		<-ran
	}
	if !res.OK {
		m := st.Media()
		res.Codec, res.Width, res.Height = string(m.Codec), m.Width, m.Height
		if m.Codec != "" && runErr != nil && strings.HasPrefix(runErr.Error(), "no picture size") {
			runErr = fmt.Errorf("connected (%s) but %v", m.Codec, runErr)
		}
		return finish(runErr)
	}
	return finish(nil)
}

// urlPasswords returns the password in raw's userinfo as written and
// decoded; none when raw has none.
func urlPasswords(raw string) []string {
	_, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return nil
	}
	_, pass, ok := strings.Cut(rest[:at], ":")
	if !ok || pass == "" {
		return nil
	}
	out := []string{pass}
	if dec, err := url.PathUnescape(pass); err == nil && dec != pass {
		out = append(out, dec)
	}
	return out
}

// redactSecrets removes URL passwords from s, and every secret of at least
// four bytes (shorter ones would blank out ordinary letters).
func redactSecrets(s string, secrets []string) string {
	s = ingest.RedactURL(s)
	for _, sec := range secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "***")
		}
	}
	return s
}
