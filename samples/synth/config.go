package synth

import (
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"
)

// Scene kinds a Config can ask for.
const (
	// ScenePlaza is an open paved plaza in sunlight in front of a building
	// facade, with planters, trees, benches, lamp posts and a fountain.
	ScenePlaza = "plaza"
	// SceneHall is an indoor museum hall under diffuse light, with columns,
	// display cases, benches and a back wall with paintings and doorways.
	SceneHall = "hall"
)

// Preset names known to PresetConfig.
const (
	// PresetSparse is a museum hall with 8 to 18 people in view.
	PresetSparse = "sparse"
	// PresetDense is a plaza with 160 to 220 people in view.
	PresetDense = "dense"
)

// Limits on a Config, checked by Render and Generate.
const (
	minSide     = 64
	maxSide     = 7680
	maxFPS      = 120
	maxDuration = 2 * time.Hour
	maxPeople   = 2000
)

// Config describes one synthetic video. Zero fields take the value of the
// preset named by Preset (see PresetConfig); with no Preset, Width, Height,
// FPS and Duration take the defaults 1280x720, 15 fps and 40 s, and
// MaxVisible must be set.
type Config struct {
	// Preset names the preset the other fields start from; it is recorded in
	// the sidecar. Empty means no preset.
	Preset string
	// Scene is ScenePlaza or SceneHall; empty picks one from the seed.
	Scene string
	// Width and Height are the frame size in pixels; both must be even
	// (H.264 with 4:2:0 chroma needs it) and between 64 and 7680.
	Width, Height int
	// FPS is the frame rate, above 0 and at most 120.
	FPS float64
	// Duration is the length of the video; the frame count is
	// Duration×FPS rounded to the nearest integer, at least 1.
	Duration time.Duration
	// Seed fixes everything random: camera, scene, people and their paths.
	Seed uint64
	// MinVisible and MaxVisible bound the number of people in the truth of
	// every frame (see the package documentation for the truth rule). The
	// crowd drifts between them; MaxVisible zero takes the preset's bounds.
	MinVisible, MaxVisible int
	// CameraHeightM, CameraTiltDeg and CameraVFOVDeg override the camera
	// (height above the ground in metres, pitch below the horizontal and
	// vertical field of view in degrees). Zero picks a value from the seed:
	// height 4.5 to 5.5 m, field of view 46 to 52°, and the tilt that
	// shows the far distance, where a 1.7 m person is 3% of the frame tall,
	// just below the top edge; a person on the bottom edge is then about a
	// quarter of the frame tall (160 to 200 px at 720 rows).
	CameraHeightM, CameraTiltDeg, CameraVFOVDeg float64
	// Grain is the standard deviation, in 8-bit levels, of the sensor noise
	// added to every frame; zero means 1.5, negative means none.
	Grain float64
	// Logger receives one line per finished video from Generate; nil means
	// slog.Default().
	Logger *slog.Logger
}

// PresetConfig returns the full Config of a named preset: "sparse" (a museum
// hall, 8 to 18 people in view) or "dense" (a plaza, 160 to 220 people in
// view), both 1280x720 at 15 fps for 40 s.
func PresetConfig(name string) (Config, error) {
	base := Config{
		Preset:   name,
		Width:    1280,
		Height:   720,
		FPS:      15,
		Duration: 40 * time.Second,
	}
	switch name {
	case PresetSparse:
		base.Scene = SceneHall
		base.Seed = 1
		base.MinVisible, base.MaxVisible = 8, 18
	case PresetDense:
		base.Scene = ScenePlaza
		base.Seed = 2
		base.MinVisible, base.MaxVisible = 160, 220
	default:
		return Config{}, fmt.Errorf("synth: unknown preset %q (known: %s, %s)", name, PresetSparse, PresetDense)
	}
	return base, nil
}

// frames returns the number of frames the Config makes: Duration×FPS rounded
// to the nearest integer, at least 1. It assumes a resolved Config.
func (c Config) frames() int {
	n := int(math.Round(c.Duration.Seconds() * c.FPS))
	return max(n, 1)
}

// resolve fills zero fields from the preset and the defaults and checks the
// result.
func (c Config) resolve() (Config, error) {
	r := c
	if c.Preset != "" {
		p, err := PresetConfig(c.Preset)
		if err != nil {
			return Config{}, err
		}
		if r.Scene == "" {
			r.Scene = p.Scene
		}
		if r.Width == 0 {
			r.Width = p.Width
		}
		if r.Height == 0 {
			r.Height = p.Height
		}
		if r.FPS == 0 {
			r.FPS = p.FPS
		}
		if r.Duration == 0 {
			r.Duration = p.Duration
		}
		if r.MaxVisible == 0 {
			r.MinVisible, r.MaxVisible = p.MinVisible, p.MaxVisible
		}
	}
	if r.Width == 0 {
		r.Width = 1280
	}
	if r.Height == 0 {
		r.Height = 720
	}
	if r.FPS == 0 {
		r.FPS = 15
	}
	if r.Duration == 0 {
		r.Duration = 40 * time.Second
	}
	if r.Grain == 0 {
		r.Grain = 1.5
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	if r.Scene == "" {
		if r.Seed%2 == 0 {
			r.Scene = ScenePlaza
		} else {
			r.Scene = SceneHall
		}
	}
	if err := r.check(); err != nil {
		return Config{}, err
	}
	return r, nil
}

// check reports the first field of a resolved Config that is out of bounds.
func (c Config) check() error {
	name := c.Preset
	if name == "" {
		name = "custom"
	}
	bad := func(field string, format string, args ...any) error {
		return fmt.Errorf("synth: config %q: %s: %s", name, field, fmt.Sprintf(format, args...))
	}
	switch {
	case c.Width < minSide || c.Width > maxSide || c.Width%2 != 0:
		return bad("Width", "%d is not an even number between %d and %d", c.Width, minSide, maxSide)
	case c.Height < minSide || c.Height > maxSide || c.Height%2 != 0:
		return bad("Height", "%d is not an even number between %d and %d", c.Height, minSide, maxSide)
	case !(c.FPS > 0 && c.FPS <= maxFPS):
		return bad("FPS", "%g is not above 0 and at most %d", c.FPS, maxFPS)
	case c.Duration <= 0 || c.Duration > maxDuration:
		return bad("Duration", "%s is not above 0 and at most %s", c.Duration, maxDuration)
	case c.MaxVisible <= 0:
		return bad("MaxVisible", "%d: set it, or name a preset", c.MaxVisible)
	case c.MaxVisible > maxPeople:
		return bad("MaxVisible", "%d is above %d", c.MaxVisible, maxPeople)
	case c.MinVisible < 0 || c.MinVisible > c.MaxVisible:
		return bad("MinVisible", "%d is not between 0 and MaxVisible (%d)", c.MinVisible, c.MaxVisible)
	case c.Scene != ScenePlaza && c.Scene != SceneHall:
		return bad("Scene", "%q is not one of %s", c.Scene, strings.Join([]string{ScenePlaza, SceneHall}, ", "))
	case c.CameraHeightM < 0 || c.CameraHeightM > 50:
		return bad("CameraHeightM", "%g m is not between 0 (pick from the seed) and 50", c.CameraHeightM)
	case c.CameraTiltDeg < 0 || c.CameraTiltDeg > 80:
		return bad("CameraTiltDeg", "%g° is not between 0 (pick from the seed) and 80", c.CameraTiltDeg)
	case c.CameraVFOVDeg < 0 || c.CameraVFOVDeg > 120:
		return bad("CameraVFOVDeg", "%g° is not between 0 (pick from the seed) and 120", c.CameraVFOVDeg)
	case c.Grain > 32:
		return bad("Grain", "%g levels is above 32", c.Grain)
	}
	return nil
}
