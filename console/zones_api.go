package console

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"flowwatch/internal/config"
	"flowwatch/internal/store"
	"flowwatch/vision"
)

// ZoneEditor puts the zone layouts saved in the console to work in the
// running pipeline; cmd/flowwatch's site implements it.
type ZoneEditor interface {
	// ApplyZones makes the camera count the layout's zones from now on
	// and says, in a few words for the console, what took effect (such
	// as "counting now; alert capacities at next start"). The layout has
	// passed CheckZoneLayout and is saved already.
	ApplyZones(camera string, layout store.ZoneLayout) (string, error)
	// ZonesApplied says, in the same words, how the camera's zones in
	// force are applied.
	ZonesApplied(camera string) string
}

// Bounds of a zone layout sent to the console.
const (
	// maxZones is the most zones one camera may have.
	maxZones = 64
	// maxPolygonPoints is the most points one zone's polygon may have.
	maxPolygonPoints = 256
)

// Where a camera's zones in force come from, as the zones API says.
const (
	zonesFromConfig  = "config"
	zonesFromConsole = "console"
)

// zoneNameRE is the config's rule for zone names (they appear in metric
// labels and "camera/zone" targets).
var zoneNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// CheckZoneLayout reports what is wrong with zones and calib as the new
// layout of site's camera, naming the zone or point at fault: names must be
// 1 to 64 letters, digits, '-' or '_', unique and not "all"; polygons as
// vision.NewZoneSet wants them; capacities 0 or more; every zone an area of
// site names must stay; a calibration, when given, must solve
// (vision.NewCalibration) with its image points in [0, 1].
func CheckZoneLayout(site *config.Config, camera string, zones []store.LayoutZone, calib *store.LayoutCalibration) error {
	if len(zones) > maxZones {
		return fmt.Errorf("camera %q: at most %d zones, got %d", camera, maxZones, len(zones))
	}
	vz := make([]vision.Zone, len(zones))
	kept := map[string]bool{}
	for i, z := range zones {
		switch {
		case !zoneNameRE.MatchString(z.Name):
			return fmt.Errorf("zones[%d]: name %q must be 1 to 64 letters, digits, '-' or '_', starting with a letter or digit", i, z.Name)
		case z.Capacity < 0:
			return fmt.Errorf("zone %q: capacity must be 0 or more, got %d", z.Name, z.Capacity)
		case len(z.Polygon) > maxPolygonPoints:
			return fmt.Errorf("zone %q: polygon has %d points, at most %d", z.Name, len(z.Polygon), maxPolygonPoints)
		}
		vz[i] = vision.Zone{Name: z.Name, Polygon: z.Polygon}
		kept[z.Name] = true
	}
	if _, err := vision.NewZoneSet(vz); err != nil {
		return err
	}
	if site != nil {
		for _, a := range site.Areas {
			for _, ref := range a.Zones {
				cam, zone, _ := strings.Cut(ref, "/")
				if cam == camera && !kept[zone] {
					return fmt.Errorf("zone %q is part of area %q: keep it (areas are edited in the config file)", zone, a.Name)
				}
			}
		}
	}
	if calib != nil {
		for i, p := range calib.Image {
			if !(p[0] >= 0 && p[0] <= 1 && p[1] >= 0 && p[1] <= 1) {
				return fmt.Errorf("calibration: image point %d [%g, %g] is outside the normalized range [0, 1]", i, p[0], p[1])
			}
		}
		if _, err := vision.NewCalibration(calib.Image, calib.Ground); err != nil {
			return err
		}
	}
	return nil
}

// siteCamera returns the configured camera called name.
func siteCamera(site *config.Config, name string) (config.Camera, bool) {
	for _, c := range site.Cameras {
		if c.Name == name {
			return c, true
		}
	}
	return config.Camera{}, false
}

// pathCamera finds site's {name} camera of r, answering 404 itself when
// there is none.
func pathCamera(w http.ResponseWriter, r *http.Request, site *config.Config) (config.Camera, bool) {
	name := r.PathValue("name")
	cc, ok := siteCamera(site, name)
	if !ok {
		writeError(w, http.StatusNotFound, "no camera %q", name)
	}
	return cc, ok
}

// configLayout is a configured camera's zones as a layout.
func configLayout(cc config.Camera) store.ZoneLayout {
	l := store.ZoneLayout{Camera: cc.Name, Zones: make([]store.LayoutZone, len(cc.Zones))}
	for i, z := range cc.Zones {
		l.Zones[i] = store.LayoutZone{Name: z.Name, Polygon: z.Polygon, Capacity: z.Capacity}
	}
	return l
}

// zonesAPI serves GET and PUT /api/v1/cameras/{name}/zones.
type zonesAPI struct {
	auth   *Auth
	db     *store.Store
	site   *config.Config
	editor ZoneEditor
	log    *slog.Logger

	// mu orders saves, so that the layout applied last is the one stored
	// last.
	mu sync.Mutex
}

// zoneEditors may read the zones; only admins change them.
var zoneEditors = []string{RoleAdmin, RoleOperator, RolePlanner}

func (z *zonesAPI) register(mux *http.ServeMux) {
	mux.Handle("GET /api/v1/cameras/{name}/zones", z.auth.Require(zoneEditors, http.HandlerFunc(z.get)))
	mux.Handle("PUT /api/v1/cameras/{name}/zones", z.auth.Require([]string{RoleAdmin}, http.HandlerFunc(z.put)))
}

// zoneLayoutAnswer is the answer of the zones routes.
type zoneLayoutAnswer struct {
	Camera      string                   `json:"camera"`
	Zones       []store.LayoutZone       `json:"zones"`
	Calibration *store.LayoutCalibration `json:"calibration"`
	// Source is "config" or "console".
	Source string `json:"source"`
	// UpdatedAt and UpdatedBy tell the console's last save; null and ""
	// for zones from the config.
	UpdatedAt *time.Time `json:"updated_at"`
	UpdatedBy string     `json:"updated_by"`
	// Applied says what the running pipeline does with these zones.
	Applied string `json:"applied"`
}

// zoneLayoutBody is the body of PUT /api/v1/cameras/{name}/zones.
type zoneLayoutBody struct {
	Zones       []store.LayoutZone       `json:"zones"`
	Calibration *store.LayoutCalibration `json:"calibration"`
}

// inForce returns the camera's layout in force and where it comes from:
// the console's latest save, or the config.
func (z *zonesAPI) inForce(r *http.Request, cc config.Camera) (store.ZoneLayout, string, error) {
	l, err := z.db.ZoneLayout(r.Context(), cc.Name)
	switch {
	case err == nil:
		return l, zonesFromConsole, nil
	case errors.Is(err, store.ErrNotFound):
		return configLayout(cc), zonesFromConfig, nil
	default:
		return store.ZoneLayout{}, "", err
	}
}

// answer makes the answer for layout l from source.
func (z *zonesAPI) answer(l store.ZoneLayout, source, applied string) zoneLayoutAnswer {
	a := zoneLayoutAnswer{Camera: l.Camera, Zones: l.Zones, Calibration: l.Calibration, Source: source,
		UpdatedBy: l.UpdatedBy, Applied: applied}
	if a.Zones == nil {
		a.Zones = []store.LayoutZone{}
	}
	if !l.UpdatedAt.IsZero() {
		at := l.UpdatedAt.UTC()
		a.UpdatedAt = &at
	}
	return a
}

func (z *zonesAPI) get(w http.ResponseWriter, r *http.Request) {
	cc, ok := pathCamera(w, r, z.site)
	if !ok {
		return
	}
	l, source, err := z.inForce(r, cc)
	if err != nil {
		z.log.Error("zone layout unreadable", "camera", cc.Name, "err", err)
		writeError(w, http.StatusInternalServerError, "camera %q: zone layout unreadable; see the server log", cc.Name)
		return
	}
	writeJSON(w, http.StatusOK, z.answer(l, source, z.editor.ZonesApplied(cc.Name)))
}

func (z *zonesAPI) put(w http.ResponseWriter, r *http.Request) {
	cc, ok := pathCamera(w, r, z.site)
	if !ok {
		return
	}
	var body zoneLayoutBody
	if !readJSON(w, r, &body) {
		return
	}
	if body.Zones == nil {
		writeError(w, http.StatusBadRequest, "zones is required: a list of {name, polygon, capacity} ([] for none)")
		return
	}
	if err := CheckZoneLayout(z.site, cc.Name, body.Zones, body.Calibration); err != nil {
		writeError(w, http.StatusBadRequest, "camera %q: %v", cc.Name, err)
		return
	}
	p := principal(r)
	l := store.ZoneLayout{Camera: cc.Name, Zones: body.Zones, Calibration: body.Calibration,
		UpdatedAt: time.Now().UTC().Truncate(time.Millisecond), UpdatedBy: p.User}

	z.mu.Lock()
	defer z.mu.Unlock()
	id, err := z.db.SaveZoneLayout(r.Context(), l)
	if err != nil {
		z.log.Error("zone layout not saved", "camera", cc.Name, "err", err)
		writeError(w, http.StatusInternalServerError, "camera %q: zone layout not saved; see the server log", cc.Name)
		return
	}
	l.ID = id
	applied, err := z.editor.ApplyZones(cc.Name, l)
	if err != nil {
		z.log.Error("zone layout saved but not applied", "camera", cc.Name, "err", err)
		applied = "saved; not applied now (see the server log): used at next start"
	}
	z.log.Info("zone layout saved", "camera", cc.Name, "user", p.User, "zones", len(l.Zones), "applied", applied)
	z.auth.Audit(r, p, "zones.update", "camera "+cc.Name, zonesDetail(l, applied))
	writeJSON(w, http.StatusOK, z.answer(l, zonesFromConsole, applied))
}

// zonesDetail sums a layout up for the audit log: each zone with its
// capacity, whether a calibration came, and what took effect.
func zonesDetail(l store.ZoneLayout, applied string) string {
	parts := make([]string, len(l.Zones))
	for i, zn := range l.Zones {
		parts[i] = fmt.Sprintf("%s (capacity %d, %d points)", zn.Name, zn.Capacity, len(zn.Polygon))
	}
	calib := "no calibration"
	if l.Calibration != nil {
		calib = "calibration"
	}
	return fmt.Sprintf("%d zones: %s; %s; %s", len(l.Zones), strings.Join(parts, ", "), calib, applied)
}
