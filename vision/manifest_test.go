package vision

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"flowwatch/internal/config"
)

const densityManifestYAML = `name: crowd
file: crowd.onnx
task: density
input:
  name: input
  layout: NCHW
  multiple: 8
  max_side: 1024
  color: RGB
  scale: 0.00392156862745098
  mean: [0.485, 0.456, 0.406]
  std: [0.229, 0.224, 0.225]
  tile: {size: 512, overlap: 64}
output:
  name: density
  stride: 8
  sums_to_count: true
`

const detectManifestYAML = `name: people
file: people.onnx
task: detection
input:
  name: images
  layout: NCHW
  width: 640
  height: 640
  color: RGB
  scale: 0.00392156862745098
  pad: 114
output:
  name: output0
  format: yolov8
  box: cxcywh
  person_class: 0
  score_threshold: 0.25
  nms_threshold: 0.45
`

// writeModelDir writes a model folder named name holding model.yaml and an
// empty model file, and returns the folder.
func writeModelDir(t *testing.T, name, manifest, file string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ManifestFile), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	if file != "" {
		if err := os.WriteFile(filepath.Join(dir, file), []byte("onnx"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestManifestLoadsDensity(t *testing.T) {
	dir := writeModelDir(t, "crowd", densityManifestYAML, "crowd.onnx")
	m, err := LoadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "crowd" || m.Task != TaskDensity || m.Path() != filepath.Join(dir, "crowd.onnx") {
		t.Errorf("name %q task %q path %q", m.Name, m.Task, m.Path())
	}
	in := m.Input
	if in.Layout != NCHW || in.Color != RGB || in.Multiple != 8 || in.MaxSide != 1024 || in.Width != 0 {
		t.Errorf("input %+v", in)
	}
	if in.Mean != (Triple{0.485, 0.456, 0.406}) || in.Std != (Triple{0.229, 0.224, 0.225}) {
		t.Errorf("mean %v std %v", in.Mean, in.Std)
	}
	if in.Tile == nil || *in.Tile != (TileSpec{Size: 512, Overlap: 64}) {
		t.Errorf("tile %+v", in.Tile)
	}
	if m.Output.Stride != 8 || !m.Output.SumsToCount || m.MaxBatch() != DefaultMaxBatch {
		t.Errorf("output %+v, max batch %d", m.Output, m.MaxBatch())
	}
}

func TestManifestLoadsDetectionWithDefaults(t *testing.T) {
	m, err := ParseManifest("people.yaml", []byte(detectManifestYAML))
	if err != nil {
		t.Fatal(err)
	}
	if m.Input.Std != (Triple{1, 1, 1}) || m.Input.Mean != (Triple{}) {
		t.Errorf("default mean %v std %v, want 0s and 1s", m.Input.Mean, m.Input.Std)
	}
	if m.Input.Pad != 114 || m.Output.Format != YOLOv8 || m.Output.Box != BoxCXCYWH || m.Output.NMSThreshold != 0.45 {
		t.Errorf("manifest %+v", m)
	}
	noScale := strings.Replace(detectManifestYAML, "  scale: 0.00392156862745098\n", "", 1)
	m, err = ParseManifest("people.yaml", []byte(noScale))
	if err != nil {
		t.Fatal(err)
	}
	if m.Input.Scale != 1 {
		t.Errorf("default scale %g, want 1", m.Input.Scale)
	}
}

func TestManifestErrorsNameFileLineAndKey(t *testing.T) {
	cases := []struct {
		name    string
		yaml    string
		want    []string
		wantLen int
	}{
		{"unknown key", strings.Replace(densityManifestYAML, "  multiple: 8\n", "  multiple: 8\n  mutliple: 4\n", 1),
			[]string{"m.yaml:8: input.mutliple: unknown key \"mutliple\""}, 1},
		{"bad layout", strings.Replace(densityManifestYAML, "NCHW", "NCWH", 1),
			[]string{"m.yaml:6: input.layout: must be NCHW or NHWC, got \"NCWH\""}, 1},
		{"mean of two", strings.Replace(densityManifestYAML, "[0.485, 0.456, 0.406]", "[0.485, 0.456]", 1),
			[]string{"m.yaml:11: input.mean: needs a list of 3 numbers"}, 1},
		{"std zero", strings.Replace(densityManifestYAML, "0.229, 0.224", "0, 0.224", 1),
			[]string{"m.yaml:12: input.std: must be positive, got 0 for channel 0"}, 1},
		{"stride not a divisor", strings.Replace(densityManifestYAML, "stride: 8", "stride: 3", 1),
			[]string{"m.yaml:13: input.tile.size: must be a multiple of 24 and at least 64, got 512",
				"m.yaml:13: input.tile.overlap: must be a multiple of 3"}, 2},
		{"missing task and output name", strings.NewReplacer("task: density\n", "", "  name: density\n", "").Replace(densityManifestYAML),
			[]string{"m.yaml: task: is required", "m.yaml:13: output.name: is required"}, 2},
		{"not sums_to_count", strings.Replace(densityManifestYAML, "sums_to_count: true", "sums_to_count: false", 1),
			[]string{"m.yaml:17: output.sums_to_count: must be true"}, 1},
		{"detection fields on density", densityManifestYAML + "  score_threshold: 0.5\n",
			[]string{"m.yaml:14: output: format, box"}, 1},
		{"threshold out of range", strings.Replace(detectManifestYAML, "score_threshold: 0.25", "score_threshold: 1.5", 1),
			[]string{"m.yaml:17: output.score_threshold: must be between 0 and 1"}, 1},
		{"fixed size with max_side", strings.Replace(detectManifestYAML, "  pad: 114\n", "  pad: 114\n  max_side: 800\n", 1),
			[]string{"m.yaml:12: input.max_side: applies to dynamic sizes only"}, 1},
		{"half fixed", strings.Replace(detectManifestYAML, "  height: 640\n", "", 1),
			[]string{"m.yaml:7: input.width: width and height are both fixed or both 0"}, 1},
		{"file outside folder", strings.Replace(detectManifestYAML, "file: people.onnx", "file: ../other/people.onnx", 1),
			[]string{"m.yaml:2: file: must be a path inside the manifest's folder"}, 1},
		{"grid strides on yolov8", detectManifestYAML + "  grid_strides: [8, 16, 32]\n",
			[]string{"m.yaml:19: output.grid_strides: applies to yolox only"}, 1},
		{"pad out of range", strings.Replace(detectManifestYAML, "pad: 114", "pad: 300", 1),
			[]string{"m.yaml:11: input.pad: must be a pixel value from 0 to 255, got 300"}, 1},
		{"not yaml", "name: [unclosed\n", []string{"m.yaml:"}, 1},
		{"empty", "", []string{"m.yaml: the file is empty"}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseManifest("m.yaml", []byte(tc.yaml))
			var me *config.Error
			if !errors.As(err, &me) {
				t.Fatalf("error %v, want a *config.Error", err)
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error\n%s\nlacks %q", msg, w)
				}
			}
			if len(me.Problems) != tc.wantLen {
				t.Errorf("%d problems, want %d:\n%s", len(me.Problems), tc.wantLen, msg)
			}
		})
	}
}

func TestManifestNameMustMatchFolderAndFileExist(t *testing.T) {
	dir := writeModelDir(t, "other", densityManifestYAML, "crowd.onnx")
	if _, err := LoadManifest(dir); err == nil || !strings.Contains(err.Error(), `name: is "crowd" but the manifest's folder is "other"`) {
		t.Errorf("name/folder mismatch: %v", err)
	}
	dir = writeModelDir(t, "crowd", densityManifestYAML, "")
	if _, err := LoadManifest(dir); err == nil || !strings.Contains(err.Error(), `model "crowd"`) || !strings.Contains(err.Error(), "crowd.onnx") {
		t.Errorf("missing model file: %v", err)
	}
	if _, err := LoadManifest(filepath.Join(t.TempDir(), "none")); err == nil || !strings.Contains(err.Error(), ManifestFile) {
		t.Errorf("missing manifest: %v", err)
	}
}

func TestManifestModelsDir(t *testing.T) {
	t.Setenv(ModelsEnv, "/srv/flowwatch/models")
	if got := ModelsDir(); got != "/srv/flowwatch/models" {
		t.Errorf("ModelsDir with %s set: %q", ModelsEnv, got)
	}
	t.Setenv(ModelsEnv, "")
	want := defaultModelsDir
	if want == "" {
		want = "models"
	}
	if got := ModelsDir(); got != want {
		t.Errorf("ModelsDir without %s: %q, want %q", ModelsEnv, got, want)
	}
}

func TestManifestShippedTestModelsLoad(t *testing.T) {
	for _, name := range []string{"density_tiny", "detect_yolov8_tiny"} {
		m, err := LoadManifest(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Verify(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(densityManifestYAML))
	f.Add([]byte(detectManifestYAML))
	f.Add([]byte("name: x\ninput: {mean: [1, 2, 3, 4]}\n"))
	f.Add([]byte("input:\n  tile: {size: 0, overlap: -1}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest("fuzz.yaml", data)
		if err != nil {
			if m != nil {
				t.Fatal("a manifest came back with an error")
			}
			return
		}
		// A manifest that passes must plan any sensible frame.
		for _, size := range [][2]int{{1, 1}, {768, 576}, {3840, 2160}} {
			p, err := m.Plan(size[0], size[1])
			if err != nil {
				t.Fatalf("plan %v: %v", size, err)
			}
			if len(p.Tiles) == 0 || p.InputW < 1 || p.InputH < 1 {
				t.Fatalf("plan %v: %+v", size, p)
			}
		}
	})
}
