package vision

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"flowwatch/internal/config"
)

// defaultModelsDir is the models folder compiled into the binary by the
// Makefile (-ldflags "-X flowwatch/vision.defaultModelsDir=/abs/models"), so
// that an installed binary finds its models from any working directory.
var defaultModelsDir string

// ModelsEnv is the environment variable that, when set, names the folder
// holding the models instead of the built-in default.
const ModelsEnv = "FLOWWATCH_MODELS"

// ManifestFile is the name of a model's manifest inside its folder.
const ManifestFile = "model.yaml"

// ModelsDir returns the folder holding the models, one sub-folder per model:
// $FLOWWATCH_MODELS when set, else the folder compiled in at build time,
// else "models" relative to the working directory.
func ModelsDir() string {
	if dir := os.Getenv(ModelsEnv); dir != "" {
		return dir
	}
	if defaultModelsDir != "" {
		return defaultModelsDir
	}
	return "models"
}

// Layout is the order of a tensor's axes.
type Layout string

// The input layouts flowwatch can feed.
const (
	// NCHW: batch, channel, row, column.
	NCHW Layout = "NCHW"
	// NHWC: batch, row, column, channel.
	NHWC Layout = "NHWC"
)

// ColorOrder is the order of the color channels a model expects.
type ColorOrder string

// The color orders flowwatch can feed.
const (
	// RGB puts red in channel 0.
	RGB ColorOrder = "RGB"
	// BGR puts blue in channel 0 (OpenCV's order).
	BGR ColorOrder = "BGR"
)

// DetectFormat is the layout of a detection model's output.
type DetectFormat string

// The detection output formats flowwatch decodes.
const (
	// YOLOv8 outputs [N, 4+classes, anchors]: four box values then one
	// score per class, without objectness.
	YOLOv8 DetectFormat = "yolov8"
	// YOLOX outputs [N, anchors, 5+classes]: four box values, the
	// objectness and one score per class; a box's score is objectness
	// times its class score.
	YOLOX DetectFormat = "yolox"
)

// BoxFormat is how a detection's four box values are given.
type BoxFormat string

// The box formats flowwatch decodes.
const (
	// BoxCXCYWH: centre x, centre y, width, height.
	BoxCXCYWH BoxFormat = "cxcywh"
	// BoxXYXY: left, top, right, bottom.
	BoxXYXY BoxFormat = "xyxy"
)

// Manifest describes a model: its file, what it outputs, and how frames
// are turned into its input and its output into counts. It is read from
// models/<name>/model.yaml by LoadManifest.
type Manifest struct {
	// Name is the model's name; it must equal its folder's name.
	Name string `yaml:"name"`
	// File is the ONNX file, relative to the manifest's folder.
	File string `yaml:"file"`
	// Task is density or detection.
	Task Task `yaml:"task"`
	// Input says how frames become the model's input tensor.
	Input InputSpec `yaml:"input"`
	// Output says how the model's output tensor is read.
	Output OutputSpec `yaml:"output"`

	// Dir is the folder the manifest was loaded from.
	Dir string `yaml:"-"`
}

// InputSpec describes a model's input tensor. A pixel value p (0..255) of
// channel c becomes (p*Scale - Mean[c]) / Std[c]; channel indices follow
// Color, so with RGB Mean[0] applies to red.
type InputSpec struct {
	// Name is the input tensor's name in the model.
	Name string `yaml:"name"`
	// Layout is NCHW or NHWC.
	Layout Layout `yaml:"layout"`
	// Width and Height are the model's fixed input size, or both 0 when
	// the model takes any size. A fixed-size input receives the frame
	// resized to fit with its aspect kept, padded on the right and bottom.
	Width  int `yaml:"width"`
	Height int `yaml:"height"`
	// Batch is the model's fixed batch size, or 0 when its batch axis is
	// dynamic (flowwatch then sends up to DefaultMaxBatch inputs a run).
	Batch int `yaml:"batch"`
	// Multiple rounds dynamic input sizes to a multiple of it (8, 32...);
	// 0 means 1.
	Multiple int `yaml:"multiple"`
	// MaxSide shrinks frames of a dynamic-size model, aspect kept, so
	// their long side is at most MaxSide; 0 keeps their native size.
	// Frames are never enlarged.
	MaxSide int `yaml:"max_side"`
	// Color is the channel order: RGB or BGR.
	Color ColorOrder `yaml:"color"`
	// Scale multiplies pixel values (0..255) first; 1/255 maps them to
	// 0..1. Default 1.
	Scale float64 `yaml:"scale"`
	// Mean is subtracted per channel after scaling. Default 0, 0, 0.
	Mean Triple `yaml:"mean"`
	// Std divides per channel after the mean. Default 1, 1, 1.
	Std Triple `yaml:"std"`
	// Pad is the pixel value (0..255, the same in every channel) of the
	// padding around a frame smaller than the input. Default 0; YOLO
	// detectors are trained with 114.
	Pad int `yaml:"pad"`
	// Tile, when set, cuts frames whose long side exceeds Tile.Size into
	// overlapping tiles fed at native resolution.
	Tile *TileSpec `yaml:"tile"`
}

// TileSpec describes tiling: square tiles of Size frame pixels overlapping
// by Overlap pixels.
type TileSpec struct {
	// Size is a tile's side in pixels.
	Size int `yaml:"size"`
	// Overlap is how many pixels neighbouring tiles share.
	Overlap int `yaml:"overlap"`
}

// OutputSpec describes a model's output tensor.
type OutputSpec struct {
	// Name is the output tensor's name in the model.
	Name string `yaml:"name"`

	// Stride (density) is the number of input pixels per map cell along
	// each axis.
	Stride int `yaml:"stride"`
	// SumsToCount (density) must be true: the map's sum is the number of
	// people.
	SumsToCount bool `yaml:"sums_to_count"`

	// Format (detection) is yolov8 or yolox.
	Format DetectFormat `yaml:"format"`
	// Box (detection) is cxcywh or xyxy, in input pixels.
	Box BoxFormat `yaml:"box"`
	// PersonClass (detection) is the index of the person class.
	PersonClass int `yaml:"person_class"`
	// ScoreThreshold (detection) is the least score a box is kept with.
	ScoreThreshold float64 `yaml:"score_threshold"`
	// NMSThreshold (detection) is the IoU above which the weaker of two
	// boxes is suppressed.
	NMSThreshold float64 `yaml:"nms_threshold"`
	// GridStrides (yolox) are the strides of the raw head grids, such as
	// [8, 16, 32], for a model exported without its decoding step; empty
	// for the usual export whose boxes are already in input pixels.
	GridStrides []int `yaml:"grid_strides"`
}

// Triple is three per-channel numbers.
type Triple [3]float64

// UnmarshalYAML reads a sequence of exactly three numbers.
func (t *Triple) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.SequenceNode || len(n.Content) != 3 {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: needs a list of 3 numbers, one per channel", n.Line)}}
	}
	for i, c := range n.Content {
		v, err := strconv.ParseFloat(c.Value, 64)
		if c.Kind != yaml.ScalarNode || err != nil {
			return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %q is not a number", c.Line, c.Value)}}
		}
		t[i] = v
	}
	return nil
}

// DefaultMaxBatch is the most inputs sent in one run to a model with a
// dynamic batch axis.
const DefaultMaxBatch = 8

// Path returns the model file's path.
func (m *Manifest) Path() string { return filepath.Join(m.Dir, m.File) }

// MaxBatch returns the number of inputs per run: the model's fixed batch
// size, or DefaultMaxBatch for a dynamic batch axis.
func (m *Manifest) MaxBatch() int {
	if m.Input.Batch > 0 {
		return m.Input.Batch
	}
	return DefaultMaxBatch
}

// LoadManifest reads and checks dir/model.yaml. Unknown keys, missing
// required keys and out-of-range values are all reported, each with its
// line and key; the model file must exist. The model's tensors are checked
// against the manifest by Verify.
func LoadManifest(dir string) (*Manifest, error) {
	path := filepath.Join(dir, ManifestFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read model manifest: %w", err)
	}
	m, err := ParseManifest(path, data)
	if err != nil {
		return nil, err
	}
	m.Dir = dir
	if base := filepath.Base(filepath.Clean(dir)); m.Name != base {
		return nil, &config.Error{File: path, Problems: []config.Problem{{
			Key: "name", Message: fmt.Sprintf("is %q but the manifest's folder is %q; they must be equal", m.Name, base)}}}
	}
	st, err := os.Stat(m.Path())
	if err != nil {
		return nil, fmt.Errorf("model %q: %w", m.Name, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("model %q: %s is not a regular file", m.Name, m.Path())
	}
	return m, nil
}

// Verify reads the model file's inputs and outputs and checks them against
// the manifest (see Check).
func (m *Manifest) Verify() error {
	io, err := ReadModelIO(m.Path())
	if err != nil {
		return fmt.Errorf("model %q: %w", m.Name, err)
	}
	return m.Check(io)
}

// ParseManifest checks a manifest given as YAML text; name is used in error
// messages, which are *config.Error values naming the file, line and key.
// The returned manifest's Dir is empty.
func ParseManifest(name string, data []byte) (*Manifest, error) {
	var m Manifest
	root, err := config.DecodeYAML(name, data, &m)
	if err != nil {
		return nil, err
	}
	if !config.HasKey(root, "input.scale") {
		m.Input.Scale = 1
	}
	if !config.HasKey(root, "input.std") {
		m.Input.Std = Triple{1, 1, 1}
	}
	if problems := m.validate(); len(problems) > 0 {
		return nil, config.Located(name, root, problems)
	}
	return &m, nil
}

var modelNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

type manifestChecker struct{ problems []config.Problem }

func (k *manifestChecker) add(key, format string, args ...any) {
	k.problems = append(k.problems, config.Problem{Key: key, Message: fmt.Sprintf(format, args...)})
}

func (k *manifestChecker) required(key string, v string) bool {
	if v == "" {
		k.add(key, "is required")
		return false
	}
	return true
}

func (k *manifestChecker) oneOf(key, v string, allowed ...string) {
	if !k.required(key, v) {
		return
	}
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	k.add(key, "must be %s, got %q", strings.Join(allowed, " or "), v)
}

func (k *manifestChecker) atLeast(key string, v, lo int) {
	if v < lo {
		k.add(key, "must be at least %d, got %d", lo, v)
	}
}

func (k *manifestChecker) finite(key string, v float64) bool {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		k.add(key, "must be a finite number, got %g", v)
		return false
	}
	return true
}

// validate checks every field; the keys it reports are dotted YAML paths.
func (m *Manifest) validate() []config.Problem {
	var k manifestChecker
	if k.required("name", m.Name) && !modelNameRE.MatchString(m.Name) {
		k.add("name", "may hold only letters, digits, '.', '-' and '_', got %q", m.Name)
	}
	if k.required("file", m.File) {
		clean := filepath.Clean(m.File)
		if filepath.IsAbs(m.File) || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
			k.add("file", "must be a path inside the manifest's folder, got %q", m.File)
		}
	}
	k.oneOf("task", string(m.Task), string(TaskDensity), string(TaskDetection))

	in := &m.Input
	k.required("input.name", in.Name)
	k.oneOf("input.layout", string(in.Layout), string(NCHW), string(NHWC))
	k.oneOf("input.color", string(in.Color), string(RGB), string(BGR))
	k.atLeast("input.width", in.Width, 0)
	k.atLeast("input.height", in.Height, 0)
	if (in.Width == 0) != (in.Height == 0) {
		k.add("input.width", "width and height are both fixed or both 0 (dynamic), got %dx%d", in.Width, in.Height)
	}
	fixed := in.Width > 0 && in.Height > 0
	k.atLeast("input.batch", in.Batch, 0)
	k.atLeast("input.multiple", in.Multiple, 0)
	k.atLeast("input.max_side", in.MaxSide, 0)
	if fixed && in.Multiple > 1 {
		k.add("input.multiple", "applies to dynamic sizes only; the input is fixed at %dx%d", in.Width, in.Height)
	}
	if fixed && in.MaxSide > 0 {
		k.add("input.max_side", "applies to dynamic sizes only; the input is fixed at %dx%d", in.Width, in.Height)
	}
	if in.Pad < 0 || in.Pad > 255 {
		k.add("input.pad", "must be a pixel value from 0 to 255, got %d", in.Pad)
	}
	if k.finite("input.scale", in.Scale) && in.Scale <= 0 {
		k.add("input.scale", "must be positive, got %g", in.Scale)
	}
	for c := 0; c < 3; c++ {
		if !k.finite("input.mean", in.Mean[c]) {
			break
		}
	}
	for c := 0; c < 3; c++ {
		if !k.finite("input.std", in.Std[c]) {
			break
		}
		if in.Std[c] <= 0 {
			k.add("input.std", "must be positive, got %g for channel %d", in.Std[c], c)
			break
		}
	}

	out := &m.Output
	k.required("output.name", out.Name)
	switch m.Task {
	case TaskDensity:
		if out.Stride < 1 {
			k.add("output.stride", "must be at least 1 (input pixels per map cell), got %d", out.Stride)
		}
		if !out.SumsToCount {
			k.add("output.sums_to_count", "must be true: flowwatch counts people as the map's sum")
		}
		if out.Format != "" || out.Box != "" || out.PersonClass != 0 || out.ScoreThreshold != 0 || out.NMSThreshold != 0 || len(out.GridStrides) > 0 {
			k.add("output", "format, box, person_class, score_threshold, nms_threshold and grid_strides are for detection models")
		}
	case TaskDetection:
		k.oneOf("output.format", string(out.Format), string(YOLOv8), string(YOLOX))
		k.oneOf("output.box", string(out.Box), string(BoxCXCYWH), string(BoxXYXY))
		k.atLeast("output.person_class", out.PersonClass, 0)
		if k.finite("output.score_threshold", out.ScoreThreshold) && !(out.ScoreThreshold > 0 && out.ScoreThreshold < 1) {
			k.add("output.score_threshold", "must be between 0 and 1 (exclusive), got %g", out.ScoreThreshold)
		}
		if k.finite("output.nms_threshold", out.NMSThreshold) && !(out.NMSThreshold > 0 && out.NMSThreshold <= 1) {
			k.add("output.nms_threshold", "must be in (0, 1], got %g", out.NMSThreshold)
		}
		if out.Stride != 0 || out.SumsToCount {
			k.add("output", "stride and sums_to_count are for density models")
		}
		if len(out.GridStrides) > 0 {
			if out.Format != YOLOX {
				k.add("output.grid_strides", "applies to yolox only")
			}
			if out.Box != BoxCXCYWH {
				k.add("output.box", "a raw yolox head (grid_strides set) predicts cxcywh")
			}
			for _, s := range out.GridStrides {
				if s < 1 {
					k.add("output.grid_strides", "strides must be positive, got %d", s)
				}
			}
		}
	}
	if len(k.problems) > 0 {
		return k.problems
	}

	// Sizes must line up with the output grid: a density map's cells must
	// tile the input exactly, and raw yolox grids must divide it.
	align, cell, grain := m.align(), m.cell(), m.grain()
	if fixed {
		if in.Width%cell != 0 || in.Height%cell != 0 {
			k.add("input.width", "%dx%d must be a multiple of %d (the output grid) in both directions", in.Width, in.Height, cell)
		}
	}
	if t := in.Tile; t != nil {
		if t.Size%align != 0 || t.Size < max(align, minTileSize) {
			k.add("input.tile.size", "must be a multiple of %d and at least %d, got %d", align, max(align, minTileSize), t.Size)
		}
		if t.Overlap < 0 || t.Overlap > t.Size/2 || t.Overlap%grain != 0 {
			k.add("input.tile.overlap", "must be a multiple of %d from 0 to half the tile size %d, got %d", grain, t.Size, t.Overlap)
		}
		if fixed && (t.Size != in.Width || t.Size != in.Height) {
			k.add("input.tile.size", "must equal the fixed input size %dx%d, got %d", in.Width, in.Height, t.Size)
		}
	}
	if in.MaxSide > 0 && in.MaxSide < align {
		k.add("input.max_side", "must be at least %d (the size multiple), got %d", align, in.MaxSide)
	}
	return k.problems
}

// minTileSize is the smallest tile side a manifest may ask for.
const minTileSize = 64

// cell is the size every model input must be a multiple of: the stride of
// a density map, the common multiple of raw yolox grid strides, else 1.
func (m *Manifest) cell() int {
	switch {
	case m.Task == TaskDensity:
		return m.Output.Stride
	case len(m.Output.GridStrides) > 0:
		g := 1
		for _, s := range m.Output.GridStrides {
			g = lcm(g, s)
		}
		return g
	}
	return 1
}

// grain is the granularity of content sizes and tile positions: a density
// map's cells must cover the frame exactly, so they follow its stride;
// boxes need no alignment.
func (m *Manifest) grain() int {
	if m.Task == TaskDensity {
		return m.Output.Stride
	}
	return 1
}

// align is the multiple dynamic input sizes are rounded to.
func (m *Manifest) align() int {
	return lcm(max(m.Input.Multiple, 1), m.cell())
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func lcm(a, b int) int { return a / gcd(a, b) * b }
