package vision

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// TestOpenCVMatchesORT runs the same inputs through both backends: the maps
// must agree value by value and their sums (the counts) within 1e-3
// relative, on square, non-square and batched inputs.
func TestOpenCVMatchesORT(t *testing.T) {
	model := testModelPath("density_tiny")
	ortR := newTestRunner(t, RunnerConfig{ModelPath: model, Threads: 1})
	cvR := newTestRunner(t, RunnerConfig{Backend: BackendOpenCV, ModelPath: model})
	shapes := [][]int64{{1, 3, 64, 64}, {1, 3, 96, 160}, {1, 3, 160, 96}, {2, 3, 48, 80}, {1, 3, 144, 192}}
	if !testing.Short() {
		shapes = append(shapes, []int64{1, 3, 576, 768}, []int64{2, 3, 1080, 1920})
	}
	for i, shape := range shapes {
		in := randomTensor(int64(100+i), shape...)
		want := mustRun(t, ortR, in)
		got := mustRun(t, cvR, in)
		checkDensityOutput(t, shape, got)
		compareTensors(t, fmt.Sprintf("density %v, opencv vs onnxruntime", shape), got, want, 1e-3)
		per := want.Shape[1] * want.Shape[2] * want.Shape[3]
		for n := int64(0); n < shape[0]; n++ {
			a := tensorSum(&Tensor{Data: got.Data[n*per : (n+1)*per]})
			b := tensorSum(&Tensor{Data: want.Data[n*per : (n+1)*per]})
			if d := math.Abs(a-b) / b; d > 1e-3 {
				t.Errorf("density %v item %d: opencv count %g, onnxruntime count %g (relative difference %g > 1e-3)", shape, n, a, b, d)
			}
		}
	}

	// The detection model decodes boxes in its graph (grids, sigmoids,
	// products); both backends must agree on that too.
	det := testModelPath("detect_yolov8_tiny")
	ortD := newTestRunner(t, RunnerConfig{ModelPath: det, Threads: 1})
	cvD := newTestRunner(t, RunnerConfig{Backend: BackendOpenCV, ModelPath: det})
	in := randomTensor(200, 2, 3, 320, 320)
	want := mustRun(t, ortD, in)
	if !slices.Equal(want.Shape, []int64{2, 6, 2100}) {
		t.Fatalf("detect_yolov8_tiny output shape %v, want [2 6 2100]", want.Shape)
	}
	compareTensors(t, "detect_yolov8_tiny, opencv vs onnxruntime", mustRun(t, cvD, in), want, 1e-3)
}

// TestRunnerBatchEqualsSingles checks, for both backends, that a batch of
// four gives the four results of four single runs.
func TestRunnerBatchEqualsSingles(t *testing.T) {
	const n, c, h, w = 4, 3, 72, 100
	batch := randomTensor(300, n, c, h, w)
	per := c * h * w
	for _, backend := range []string{BackendONNXRuntime, BackendOpenCV} {
		r := newTestRunner(t, RunnerConfig{Backend: backend, ModelPath: testModelPath("density_tiny"), Threads: 1})
		all := mustRun(t, r, batch)
		checkDensityOutput(t, batch.Shape, all)
		outPer := len(all.Data) / n
		for i := 0; i < n; i++ {
			single := &Tensor{Shape: []int64{1, c, h, w}, Data: batch.Data[i*per : (i+1)*per]}
			one := mustRun(t, r, single)
			part := &Tensor{Shape: one.Shape, Data: all.Data[i*outPer : (i+1)*outPer]}
			compareTensors(t, fmt.Sprintf("%s: batch item %d vs its single run", backend, i), part, one, 1e-5)
		}
	}
}

// TestOpenCVRunnerRefusesMissingCUDA checks that the CUDA target is refused
// by an OpenCV without CUDA (Debian's), rather than run on the CPU.
func TestOpenCVRunnerRefusesMissingCUDA(t *testing.T) {
	if opencvCUDAAvailable() {
		t.Skip("this OpenCV has a CUDA backend and device")
	}
	model := testModelPath("density_tiny")
	r, err := NewRunner(RunnerConfig{Backend: BackendOpenCV, ModelPath: model, Provider: ProviderCUDA})
	if err == nil {
		r.Close()
		t.Fatal("the CUDA target was accepted by an OpenCV without CUDA")
	}
	for _, want := range []string{`"cuda"`, model, "not available"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

// TestOpenCVRunnerRefusesUnknownNames checks that tensor names the model
// lacks are refused at load.
func TestOpenCVRunnerRefusesUnknownNames(t *testing.T) {
	model := testModelPath("density_tiny")
	for _, cfg := range []RunnerConfig{
		{InputName: "images"},
		{OutputName: "count"},
	} {
		cfg.Backend, cfg.ModelPath = BackendOpenCV, model
		r, err := NewRunner(cfg)
		if err == nil {
			r.Close()
			t.Errorf("NewRunner(%+v) succeeded, want an error", cfg)
			continue
		}
		name := cfg.InputName + cfg.OutputName
		if !strings.Contains(err.Error(), `"`+name+`"`) || !strings.Contains(err.Error(), model) {
			t.Errorf("NewRunner(%+v): error %q should name %q and the model", cfg, err, name)
		}
	}
	r := newTestRunner(t, RunnerConfig{Backend: BackendOpenCV, ModelPath: model, InputName: "input", OutputName: "density"})
	in := randomTensor(1, 1, 3, 32, 48)
	checkDensityOutput(t, in.Shape, mustRun(t, r, in))
}

// TestOpenCVRunnerClose checks that Close frees the network, leaves no
// goroutine behind and makes later Runs fail.
func TestOpenCVRunnerClose(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	r, err := NewRunner(RunnerConfig{Backend: BackendOpenCV, ModelPath: testModelPath("density_tiny")})
	if err != nil {
		t.Fatal(err)
	}
	in := randomTensor(1, 1, 3, 32, 32)
	first := mustRun(t, r, in)
	second := mustRun(t, r, in)
	compareTensors(t, "the same input twice", second, first, 0)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	if _, err := r.Run(context.Background(), in); err == nil || !strings.Contains(err.Error(), "Close") {
		t.Errorf("run after Close: %v, want an error", err)
	}
}

// TestOpenCVRunnerSteadyStateAllocs checks that a Run of an unchanged shape
// reuses its output buffer.
func TestOpenCVRunnerSteadyStateAllocs(t *testing.T) {
	r := newTestRunner(t, RunnerConfig{Backend: BackendOpenCV, ModelPath: testModelPath("density_tiny")})
	in := randomTensor(1, 1, 3, 64, 96)
	ctx := context.Background()
	mustRun(t, r, in)
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := r.Run(ctx, in); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("a steady-state Run allocates %.1f times", allocs)
	if allocs > 2 {
		t.Errorf("a steady-state Run allocates %.1f times, want at most 2", allocs)
	}
}
