package vision

import (
	"context"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// testORTLibrary returns the ONNX Runtime library the tests load:
// $FLOWWATCH_ORT_LIB (which `make test` sets), else the one `make setup`
// installs in the repository. Without either the test is skipped.
func testORTLibrary(t testing.TB) string {
	t.Helper()
	if lib := os.Getenv(ORTLibraryEnv); lib != "" {
		return lib
	}
	lib, err := filepath.Abs(filepath.Join("..", "third_party", "onnxruntime", "libonnxruntime.so.1.24.1"))
	if err == nil {
		if _, err := os.Stat(lib); err == nil {
			return lib
		}
	}
	t.Skipf("no ONNX Runtime library: set $%s or run make setup", ORTLibraryEnv)
	return ""
}

// testModelPath returns the path of a model written by
// testdata/make_test_models.py.
func testModelPath(name string) string {
	return filepath.Join("testdata", name, name+".onnx")
}

// newTestRunner opens a runner for cfg, filling in the test library, and
// closes it when the test ends.
func newTestRunner(t testing.TB, cfg RunnerConfig) Runner {
	t.Helper()
	if cfg.Backend != BackendOpenCV && cfg.Library == "" {
		cfg.Library = testORTLibrary(t)
	}
	r, err := NewRunner(cfg)
	if err != nil {
		t.Fatalf("NewRunner(%+v): %v", cfg, err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("close runner for %s: %v", cfg.ModelPath, err)
		}
	})
	return r
}

// randomTensor returns a tensor of the given shape with values spread like
// a normalized image (about -2..2), from a fixed seed.
func randomTensor(seed int64, shape ...int64) *Tensor {
	rng := rand.New(rand.NewSource(seed))
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	t := &Tensor{Shape: append([]int64(nil), shape...), Data: make([]float32, n)}
	for i := range t.Data {
		t.Data[i] = rng.Float32()*4 - 2
	}
	return t
}

// copyTensor returns a deep copy of t, so that it outlives the next Run.
func copyTensor(t *Tensor) *Tensor {
	return &Tensor{Shape: append([]int64(nil), t.Shape...), Data: append([]float32(nil), t.Data...)}
}

// mustRun runs r on in, failing the test on an error, and returns a copy of
// the output.
func mustRun(t testing.TB, r Runner, in *Tensor) *Tensor {
	t.Helper()
	out, err := r.Run(context.Background(), in)
	if err != nil {
		t.Fatalf("run on %v: %v", in.Shape, err)
	}
	return copyTensor(out)
}

// tensorSum returns the sum of t's values.
func tensorSum(t *Tensor) float64 {
	var s float64
	for _, v := range t.Data {
		s += float64(v)
	}
	return s
}

// compareTensors checks that got has want's shape and that every value is
// within rel of want, relative to want's largest magnitude.
func compareTensors(t testing.TB, what string, got, want *Tensor, rel float64) {
	t.Helper()
	if !slices.Equal(got.Shape, want.Shape) {
		t.Fatalf("%s: shape %v, want %v", what, got.Shape, want.Shape)
	}
	var scale float64
	for _, v := range want.Data {
		scale = math.Max(scale, math.Abs(float64(v)))
	}
	if scale == 0 {
		t.Fatalf("%s: the reference output is all zeros, which compares nothing", what)
	}
	worst, at := 0.0, 0
	for i := range want.Data {
		if d := math.Abs(float64(got.Data[i]) - float64(want.Data[i])); d > worst {
			worst, at = d, i
		}
	}
	if worst > rel*scale {
		t.Errorf("%s: value %d is %g, want %g (difference %g > %g of the largest value %g)",
			what, at, got.Data[at], want.Data[at], worst, rel, scale)
	}
}

// checkDensityOutput checks a density_tiny output for input shape in: shape
// [N,1,H/4,W/4], finite, non-negative and not all zero.
func checkDensityOutput(t testing.TB, in []int64, out *Tensor) {
	t.Helper()
	want := []int64{in[0], 1, in[2] / 4, in[3] / 4}
	if !slices.Equal(out.Shape, want) {
		t.Fatalf("input %v: output shape %v, want %v", in, out.Shape, want)
	}
	positive := 0
	for i, v := range out.Data {
		if v < 0 || math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatalf("input %v: density value %d is %g, want finite and non-negative", in, i, v)
		}
		if v > 0 {
			positive++
		}
	}
	if positive == 0 {
		t.Fatalf("input %v: the density map is all zeros", in)
	}
}

func TestORTRunnerDensityShapes(t *testing.T) {
	r := newTestRunner(t, RunnerConfig{ModelPath: testModelPath("density_tiny"), Threads: 1})
	for i, shape := range [][]int64{{1, 3, 64, 96}, {1, 3, 96, 64}, {2, 3, 48, 80}, {1, 3, 4, 4}} {
		in := randomTensor(int64(i), shape...)
		checkDensityOutput(t, shape, mustRun(t, r, in))
	}
}

// TestORTRunnerReusesTensors checks that a steady-state Run allocates
// nothing (beyond a tiny constant) and writes into the same output memory,
// and that the reused tensors hold each run's own result.
func TestORTRunnerReusesTensors(t *testing.T) {
	r := newTestRunner(t, RunnerConfig{ModelPath: testModelPath("density_tiny"), Threads: 1})
	a, b := randomTensor(1, 1, 3, 64, 96), randomTensor(2, 1, 3, 64, 96)
	ctx := context.Background()

	first, err := r.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	outA := copyTensor(first)
	second, err := r.Run(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if &first.Data[0] != &second.Data[0] {
		t.Errorf("a second Run of the same shape returned new output memory")
	}
	outB := copyTensor(second)
	if tensorSum(outA) == tensorSum(outB) {
		t.Fatalf("different inputs gave the same density sum %g: the output is stale", tensorSum(outA))
	}
	compareTensors(t, "input a run again", mustRun(t, r, a), outA, 1e-6)

	allocs := testing.AllocsPerRun(20, func() {
		if _, err := r.Run(ctx, b); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("a steady-state Run allocates %.1f times", allocs)
	if allocs > 2 {
		t.Errorf("a steady-state Run allocates %.1f times, want at most 2", allocs)
	}

	// Full and partial batches alternating keep their tensors too.
	pair := randomTensor(3, 2, 3, 64, 96)
	mustRun(t, r, pair)
	allocs = testing.AllocsPerRun(20, func() {
		for _, in := range []*Tensor{a, pair} {
			if _, err := r.Run(ctx, in); err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Logf("two Runs alternating between two shapes allocate %.1f times", allocs)
	if allocs > 2 {
		t.Errorf("two Runs alternating between two shapes allocate %.1f times, want at most 2", allocs)
	}
}

// TestORTRunnerShapeChanges checks that the tensors kept per shape, through
// more shapes than are kept at once, give the same results as a fresh
// runner.
func TestORTRunnerShapeChanges(t *testing.T) {
	cfg := RunnerConfig{ModelPath: testModelPath("density_tiny"), Threads: 1, Library: testORTLibrary(t)}
	r := newTestRunner(t, cfg)
	var shapes [][]int64
	for n := int64(1); n <= ortShapes+2; n++ {
		shapes = append(shapes, []int64{n, 3, 16 + 4*n, 24})
	}
	order := append(append([][]int64{}, shapes...), shapes[0], shapes[len(shapes)-1], shapes[1], shapes[0])
	for i, shape := range order {
		in := randomTensor(int64(10+i), shape...)
		got := mustRun(t, r, in)
		fresh, err := NewRunner(cfg)
		if err != nil {
			t.Fatal(err)
		}
		want := mustRun(t, fresh, in)
		fresh.Close()
		compareTensors(t, fmt.Sprintf("run %d, shape %v", i, shape), got, want, 1e-6)
	}
}

func TestORTRunnerThreads(t *testing.T) {
	in := randomTensor(3, 1, 3, 96, 128)
	var want *Tensor
	for _, threads := range []int{0, 1, 2} {
		r := newTestRunner(t, RunnerConfig{ModelPath: testModelPath("density_tiny"), Threads: threads})
		got := mustRun(t, r, in)
		if want == nil {
			want = got
			continue
		}
		compareTensors(t, fmt.Sprintf("%d threads", threads), got, want, 1e-5)
	}
	_, err := NewRunner(RunnerConfig{ModelPath: testModelPath("density_tiny"), Threads: -1, Library: testORTLibrary(t)})
	if err == nil || !strings.Contains(err.Error(), "threads") {
		t.Errorf("threads -1: error %v, want one about threads", err)
	}
}

// TestORTRunnerRefusesMissingProvider checks that asking the CPU library for
// a GPU provider fails at load, naming the provider and the library, rather
// than running on the CPU.
func TestORTRunnerRefusesMissingProvider(t *testing.T) {
	lib := testORTLibrary(t)
	if _, err := os.Stat(filepath.Join(filepath.Dir(lib), "libonnxruntime_providers_cuda.so")); err == nil {
		t.Skipf("%s has the CUDA provider beside it", lib)
	}
	for _, cfg := range []RunnerConfig{
		{Provider: ProviderCUDA},
		{Provider: ProviderCUDA, DeviceID: 1},
		{Provider: ProviderTensorRT, FP16: true},
	} {
		cfg.ModelPath, cfg.Library = testModelPath("density_tiny"), lib
		r, err := NewRunner(cfg)
		if err == nil {
			r.Close()
			t.Fatalf("provider %q with the CPU library %s: NewRunner succeeded, want an error", cfg.Provider, lib)
		}
		for _, want := range []string{`"` + cfg.Provider + `"`, lib, "not available"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("provider %q: error %q does not mention %s", cfg.Provider, err, want)
			}
		}
	}
	if n := ortEnv.references(); n != 0 {
		t.Errorf("after refused runners the environment holds %d references, want 0", n)
	}
}

func TestRunnerConfigRefusals(t *testing.T) {
	model := testModelPath("density_tiny")
	for _, tc := range []struct {
		cfg  RunnerConfig
		want string
	}{
		{RunnerConfig{Backend: "tflite", ModelPath: model}, `"tflite"`},
		{RunnerConfig{ModelPath: "", Library: "x.so"}, "no model path"},
		{RunnerConfig{ModelPath: model, Provider: "rocm", Library: "x.so"}, `"rocm"`},
		{RunnerConfig{Backend: BackendOpenCV, ModelPath: model, Provider: ProviderTensorRT}, "ONNX Runtime only"},
		{RunnerConfig{ModelPath: model, DeviceID: -1, Library: "x.so"}, "device id"},
		{RunnerConfig{ModelPath: model, DeviceID: 2, Library: "x.so"}, "device id 2"},
		{RunnerConfig{ModelPath: model, FP16: true, Provider: ProviderCUDA, Library: "x.so"}, "fp16"},
		{RunnerConfig{Backend: BackendOpenCV, ModelPath: model, FP16: true}, "fp16"},
	} {
		_, err := NewRunner(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewRunner(%+v): error %v, want one containing %s", tc.cfg, err, tc.want)
		}
	}
	t.Setenv(ORTLibraryEnv, "")
	_, err := NewRunner(RunnerConfig{ModelPath: model})
	if err == nil || !strings.Contains(err.Error(), ORTLibraryEnv) {
		t.Errorf("no library anywhere: error %v, want one naming $%s", err, ORTLibraryEnv)
	}
}

// TestRunnerRefusesBadModelFiles checks, for both backends, that a missing
// file, a file of random bytes and a directory are refused with the path in
// the message (and that OpenCV's exceptions do not abort the process).
func TestRunnerRefusesBadModelFiles(t *testing.T) {
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.onnx")
	junk := make([]byte, 4096)
	rand.New(rand.NewSource(7)).Read(junk)
	if err := os.WriteFile(corrupt, junk, 0o644); err != nil {
		t.Fatal(err)
	}
	lib := testORTLibrary(t)
	for _, backend := range []string{BackendONNXRuntime, BackendOpenCV} {
		for _, path := range []string{filepath.Join(dir, "missing.onnx"), corrupt, dir} {
			r, err := NewRunner(RunnerConfig{Backend: backend, ModelPath: path, Library: lib})
			if err == nil {
				r.Close()
				t.Errorf("%s: model %s accepted", backend, path)
				continue
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), backend) {
				t.Errorf("%s: model %s: error %q should name the backend and the path", backend, path, err)
			}
		}
	}
}

// TestORTRunnerRefusesBadTensors checks the load-time checks of the model's
// inputs and outputs.
func TestORTRunnerRefusesBadTensors(t *testing.T) {
	lib := testORTLibrary(t)
	for _, tc := range []struct {
		cfg  RunnerConfig
		want []string
	}{
		{RunnerConfig{ModelPath: testModelPath("bad_int64_output")}, []string{`output "density"`, "int64", "float32"}},
		{RunnerConfig{ModelPath: testModelPath("density_tiny"), InputName: "images"}, []string{`no input "images"`, `"input"`}},
		{RunnerConfig{ModelPath: testModelPath("density_tiny"), OutputName: "count"}, []string{`no output "count"`, `"density"`}},
	} {
		tc.cfg.Library = lib
		r, err := NewRunner(tc.cfg)
		if err == nil {
			r.Close()
			t.Errorf("NewRunner(%+v) succeeded, want an error", tc.cfg)
			continue
		}
		for _, want := range append(tc.want, tc.cfg.ModelPath) {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("NewRunner(%+v): error %q does not mention %s", tc.cfg, err, want)
			}
		}
	}
}

// TestRunnerRefusesBadInputs checks, for both backends, that inputs the
// model cannot take are refused with an error naming the model and the
// shape, and that the runner still works afterwards.
func TestRunnerRefusesBadInputs(t *testing.T) {
	for _, backend := range []string{BackendONNXRuntime, BackendOpenCV} {
		r := newTestRunner(t, RunnerConfig{Backend: backend, ModelPath: testModelPath("density_tiny")})
		ctx := context.Background()
		for _, in := range []*Tensor{
			randomTensor(1, 1, 1, 32, 32),   // one channel
			randomTensor(2, 1, 3, 32),       // rank 3
			{Shape: []int64{1, 3, 8, 8}},    // no data
			{Shape: []int64{1, 3, 0, 8}},    // empty dimension
			{Shape: nil, Data: []float32{}}, // no shape
		} {
			_, err := r.Run(ctx, in)
			if err == nil {
				t.Errorf("%s: input %v accepted", backend, in.Shape)
				continue
			}
			if !strings.Contains(err.Error(), testModelPath("density_tiny")) || !strings.Contains(err.Error(), fmt.Sprint(in.Shape)) {
				t.Errorf("%s: input %v: error %q should name the model and the shape", backend, in.Shape, err)
			}
		}
		good := randomTensor(3, 1, 3, 32, 32)
		checkDensityOutput(t, good.Shape, mustRun(t, r, good))

		canceled, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := r.Run(canceled, good); err != context.Canceled {
			t.Errorf("%s: run with a canceled context: %v, want context.Canceled", backend, err)
		}
	}
}

// TestORTRunnerCloseReleases checks that closing runners frees the shared
// environment and leaves no goroutine behind, and that a closed runner
// refuses to run.
func TestORTRunnerCloseReleases(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	lib := testORTLibrary(t)
	cfg := RunnerConfig{ModelPath: testModelPath("density_tiny"), Library: lib, Threads: 2}
	before := ortEnv.references()
	a, err := NewRunner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewRunner(cfg)
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	if n := ortEnv.references(); n != before+2 {
		t.Errorf("two runners hold %d references, want %d", n, before+2)
	}
	if before == 0 {
		other := RunnerConfig{ModelPath: cfg.ModelPath, Library: "/elsewhere/libonnxruntime.so"}
		if r, err := NewRunner(other); err == nil {
			r.Close()
			t.Errorf("a second ONNX Runtime library was accepted beside %s", lib)
		} else if !strings.Contains(err.Error(), lib) || !strings.Contains(err.Error(), other.Library) {
			t.Errorf("second library: error %q should name both libraries", err)
		}
	}
	in := randomTensor(1, 1, 3, 32, 32)
	mustRun(t, a, in)
	mustRun(t, b, in)
	for _, r := range []Runner{a, b} {
		if err := r.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if err := r.Close(); err != nil {
			t.Errorf("second close: %v", err)
		}
	}
	if n := ortEnv.references(); n != before {
		t.Errorf("after Close the environment holds %d references, want %d", n, before)
	}
	if _, err := a.Run(context.Background(), in); err == nil || !strings.Contains(err.Error(), "Close") {
		t.Errorf("run after Close: %v, want an error", err)
	}
}

// TestORTRunnerCUDA runs density_tiny on the CUDA provider and compares it
// with the CPU. scripts/gpu_check.sh runs it on a GPU machine with
// FLOWWATCH_GPU_CHECK=1 and $FLOWWATCH_ORT_LIB naming an ONNX Runtime that
// has the CUDA provider; elsewhere it is skipped.
func TestORTRunnerCUDA(t *testing.T) {
	if os.Getenv("FLOWWATCH_GPU_CHECK") != "1" {
		t.Skip("GPU check: run scripts/gpu_check.sh on a machine with an NVIDIA GPU")
	}
	lib := testORTLibrary(t)
	model := testModelPath("density_tiny")
	cpu := newTestRunner(t, RunnerConfig{ModelPath: model, Library: lib})
	gpu, err := NewRunner(RunnerConfig{ModelPath: model, Library: lib, Provider: ProviderCUDA})
	if err != nil {
		t.Fatalf("CUDA provider: %v", err)
	}
	defer gpu.Close()
	for _, size := range [][2]int64{{768, 576}, {1920, 1080}} {
		for _, batch := range []int64{1, 4} {
			in := randomTensor(size[0]+batch, batch, 3, size[1], size[0])
			want := mustRun(t, cpu, in)
			got := mustRun(t, gpu, in)
			name := fmt.Sprintf("%dx%d batch %d", size[0], size[1], batch)
			compareTensors(t, name+" cuda vs cpu", got, want, 1e-3)
			if d := math.Abs(tensorSum(got)-tensorSum(want)) / tensorSum(want); d > 1e-3 {
				t.Errorf("%s: cuda sum %g, cpu sum %g (relative difference %g)", name, tensorSum(got), tensorSum(want), d)
			}
			for _, c := range []struct {
				name string
				r    Runner
			}{{"cpu", cpu}, {"cuda", gpu}} {
				const runs = 20
				start := time.Now()
				for i := 0; i < runs; i++ {
					if _, err := c.r.Run(context.Background(), in); err != nil {
						t.Fatal(err)
					}
				}
				perFrame := time.Since(start).Seconds() * 1000 / float64(runs*int(batch))
				t.Logf("%s %s: %.3f ms/frame, %.1f frames/s", name, c.name, perFrame, 1000/perFrame)
			}
		}
	}
}
