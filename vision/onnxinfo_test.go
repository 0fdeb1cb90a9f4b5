package vision

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestModelIOReadsShapes(t *testing.T) {
	cases := []struct {
		path     string
		inputs   []string
		outputs  []string
		inputLen int
	}{
		{"testdata/density_tiny/density_tiny.onnx",
			[]string{`input float32 [n,3,h,w]`}, nil, 1},
		{"testdata/detect_yolov8_tiny/detect_yolov8_tiny.onnx",
			[]string{`input float32 [n,3,320,320]`}, []string{`output float32 [n,`}, 1},
		{"testdata/bad_int64_output/bad_int64_output.onnx",
			nil, []string{`density int64 [`}, 1},
		// Weights listed as graph inputs by the old exporter are left out.
		{"testdata/seed_nhwc_initializer_inputs.onnx",
			[]string{`image float32 [1,32,48,3]`}, []string{`map float32 [1,8,12,1]`}, 1},
		{"testdata/seed_yolox_two_outputs.onnx",
			[]string{`images float32 [batch,3,64,64]`}, []string{`output float32 [batch,`, `aux int64 [batch]`}, 1},
	}
	for _, tc := range cases {
		mio, err := ReadModelIO(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, v := range mio.Inputs {
			got = append(got, v.Name+" "+v.String())
		}
		for _, v := range mio.Outputs {
			got = append(got, v.Name+" "+v.String())
		}
		all := strings.Join(got, "\n")
		for _, w := range append(tc.inputs, tc.outputs...) {
			if !strings.Contains(all, w) {
				t.Errorf("%s: got\n%s\nwant a line starting %q", tc.path, all, w)
			}
		}
		if len(mio.Inputs) != tc.inputLen {
			t.Errorf("%s: %d inputs, want %d:\n%s", tc.path, len(mio.Inputs), tc.inputLen, all)
		}
	}
}

func TestModelIOCheckAcceptsMatchingModels(t *testing.T) {
	m, err := ParseManifest("nhwc.yaml", []byte(`name: nhwc
file: seed_nhwc_initializer_inputs.onnx
task: density
input: {name: image, layout: NHWC, width: 48, height: 32, batch: 1, color: BGR}
output: {name: map, stride: 4, sums_to_count: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	mio, err := ReadModelIO("testdata/seed_nhwc_initializer_inputs.onnx")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Check(mio); err != nil {
		t.Errorf("matching NHWC model refused: %v", err)
	}
	m.Input.Batch = 0
	if err := m.Check(mio); err == nil || !strings.Contains(err.Error(), `manifest says input "image" is NHWC float32 [?,32,48,3], seed_nhwc_initializer_inputs.onnx has float32 [1,32,48,3]`) {
		t.Errorf("dynamic batch in the manifest, fixed 1 in the model: %v", err)
	}

	x, err := ParseManifest("yolox.yaml", []byte(`name: yolox
file: seed_yolox_two_outputs.onnx
task: detection
input: {name: images, layout: NCHW, width: 64, height: 64, color: BGR}
output: {name: output, format: yolox, box: cxcywh, person_class: 1, score_threshold: 0.3, nms_threshold: 0.5}
`))
	if err != nil {
		t.Fatal(err)
	}
	mio, err = ReadModelIO("testdata/seed_yolox_two_outputs.onnx")
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Check(mio); err != nil {
		t.Errorf("matching YOLOX model refused: %v", err)
	}
	x.Output.Name = "aux"
	if err := x.Check(mio); err == nil || !strings.Contains(err.Error(), `output "aux"`) || !strings.Contains(err.Error(), "int64 [batch]") {
		t.Errorf("int64 output: %v", err)
	}
}

func TestModelIOCheckRefusesBrokenModels(t *testing.T) {
	cases := []struct {
		dir  string
		want string
	}{
		{"bad_int64_output", `model "bad_int64_output": manifest says output "density" is a float32 density map [?,1,?,?], [?,?,?,1] or [?,?,?], bad_int64_output.onnx has int64 [`},
		{"bad_rank", `model "bad_rank": manifest says input "input" is NCHW float32 [?,3,?,?], bad_rank.onnx has float32 [3,h,w]`},
		{"bad_channels", `model "bad_channels": manifest says input "input" is NCHW float32 [?,3,?,?], bad_channels.onnx has float32 [n,1,h,w]`},
	}
	for _, tc := range cases {
		m, err := LoadManifest(filepath.Join("testdata", tc.dir))
		if err != nil {
			t.Fatal(err)
		}
		err = m.Verify()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v\nwant %q", tc.dir, err, tc.want)
		}
	}
}

func TestModelIOCheckNamesAndSizes(t *testing.T) {
	m, err := LoadManifest("testdata/density_tiny")
	if err != nil {
		t.Fatal(err)
	}
	mio, err := ReadModelIO(m.Path())
	if err != nil {
		t.Fatal(err)
	}
	wrong := *m
	wrong.Input.Name = "images"
	if err := wrong.Check(mio); err == nil || !strings.Contains(err.Error(), `manifest says input "images" (NCHW float32 [?,3,?,?]), density_tiny.onnx has inputs "input" (float32 [n,3,h,w])`) {
		t.Errorf("wrong input name: %v", err)
	}
	wrong = *m
	wrong.Output.Name = "count"
	if err := wrong.Check(mio); err == nil || !strings.Contains(err.Error(), `manifest says output "count", density_tiny.onnx has outputs "density"`) {
		t.Errorf("wrong output name: %v", err)
	}

	det, err := LoadManifest("testdata/detect_yolov8_tiny")
	if err != nil {
		t.Fatal(err)
	}
	dio, err := ReadModelIO(det.Path())
	if err != nil {
		t.Fatal(err)
	}
	resized := *det
	resized.Input.Width, resized.Input.Height = 640, 640
	if err := resized.Check(dio); err == nil || !strings.Contains(err.Error(), `is NCHW float32 [?,3,640,640], detect_yolov8_tiny.onnx has float32 [n,3,320,320]`) {
		t.Errorf("fixed size differs: %v", err)
	}
	dynamic := *det
	dynamic.Input.Width, dynamic.Input.Height = 0, 0
	if err := dynamic.Check(dio); err == nil || !strings.Contains(err.Error(), `[?,3,?,?], detect_yolov8_tiny.onnx has float32 [n,3,320,320]`) {
		t.Errorf("dynamic manifest, fixed model: %v", err)
	}

	// Exporters often leave output sizes symbolic; where they are fixed,
	// the class count is checked too.
	fixedOut := ModelIO{
		Inputs:  dio.Inputs,
		Outputs: []ValueInfo{{Name: "output", Type: ElemFloat32, Dims: []Dim{{Param: "n"}, {Value: 6}, {Value: 2100}}}},
	}
	if err := det.Check(fixedOut); err != nil {
		t.Errorf("fixed [n,6,2100] output refused: %v", err)
	}
	third := *det
	third.Output.PersonClass = 2
	if err := third.Check(fixedOut); err == nil || !strings.Contains(err.Error(), `output "output" is float32 [?,4+classes,anchors] with at least 3 classes, detect_yolov8_tiny.onnx has float32 [n,6,2100]`) {
		t.Errorf("person class beyond the model's classes: %v", err)
	}
	rank2 := ModelIO{Inputs: dio.Inputs, Outputs: []ValueInfo{{Name: "output", Type: ElemFloat32, Dims: []Dim{{Value: 6}, {Value: 2100}}}}}
	if err := det.Check(rank2); err == nil || !strings.Contains(err.Error(), "has float32 [6,2100]") {
		t.Errorf("rank-2 detection output: %v", err)
	}
	extra := ModelIO{Inputs: append([]ValueInfo{{Name: "scale", Type: ElemFloat32, Dims: []Dim{{Value: 1}}}}, dio.Inputs...), Outputs: fixedOut.Outputs}
	if err := det.Check(extra); err == nil || !strings.Contains(err.Error(), `manifest says the one input is "input", detect_yolov8_tiny.onnx also needs "scale" (float32 [1])`) {
		t.Errorf("a second input: %v", err)
	}
}

func TestModelIORefusesNonONNX(t *testing.T) {
	dir := t.TempDir()
	cases := map[string][]byte{
		"empty.onnx":     nil,
		"text.onnx":      []byte("name: not a model\n"),
		"truncated.onnx": truncated(t, "testdata/density_tiny/density_tiny.onnx", 200),
	}
	for name, data := range cases {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadModelIO(path); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v, want an error naming the file", name, err)
		}
	}
	if _, err := ReadModelIO(filepath.Join(dir, "missing.onnx")); err == nil {
		t.Error("a missing file read")
	}
}

func truncated(t testing.TB, path string, n int) []byte {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data[:min(n, len(data))]
}

func FuzzReadModelIO(f *testing.F) {
	seeds, err := filepath.Glob("testdata/*.onnx")
	if err != nil {
		f.Fatal(err)
	}
	more, err := filepath.Glob("testdata/*/*.onnx")
	if err != nil {
		f.Fatal(err)
	}
	for _, path := range append(seeds, more...) {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		f.Add(data[:len(data)/2])
	}
	f.Add([]byte{0x3a, 0x05, 0x5a, 0x03, 0x0a, 0x01, 0x78})
	f.Fuzz(func(t *testing.T, data []byte) {
		mio, err := readModelIO(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		for _, v := range append(mio.Inputs, mio.Outputs...) {
			if len(v.Dims) > pbMaxDims || len(v.Name) > pbMaxName {
				t.Fatalf("value %q with %d dims passed the limits", v.Name, len(v.Dims))
			}
			_ = v.String()
		}
	})
}
