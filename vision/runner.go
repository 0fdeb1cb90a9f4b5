package vision

import (
	"fmt"
	"os"
)

// The inference backends a Runner can use.
const (
	// BackendONNXRuntime runs models with ONNX Runtime (onnxruntime_go).
	BackendONNXRuntime = "onnxruntime"
	// BackendOpenCV runs models with OpenCV's DNN module.
	BackendOpenCV = "opencv"
)

// The execution providers a Runner can be asked for.
const (
	// ProviderCPU runs on the CPU.
	ProviderCPU = "cpu"
	// ProviderCUDA runs on an NVIDIA GPU through CUDA.
	ProviderCUDA = "cuda"
	// ProviderTensorRT runs on an NVIDIA GPU through TensorRT (ONNX
	// Runtime only).
	ProviderTensorRT = "tensorrt"
)

// ORTLibraryEnv is the environment variable naming the ONNX Runtime shared
// library (libonnxruntime.so) when RunnerConfig.Library is empty.
const ORTLibraryEnv = "FLOWWATCH_ORT_LIB"

// defaultORTLibrary is the ONNX Runtime library that setup installed,
// set at build time (-X flowwatch/vision.defaultORTLibrary=…) so the binary
// finds it from any directory; $FLOWWATCH_ORT_LIB and the config override it.
var defaultORTLibrary string

// DefaultORTLibrary returns the ONNX Runtime library used when none is
// configured: $FLOWWATCH_ORT_LIB, else the one setup installed.
func DefaultORTLibrary() string {
	if p := os.Getenv(ORTLibraryEnv); p != "" {
		return p
	}
	return defaultORTLibrary
}

// RunnerConfig says which backend runs which model, and how.
type RunnerConfig struct {
	// Backend is BackendONNXRuntime (the default when empty) or
	// BackendOpenCV.
	Backend string
	// ModelPath is the ONNX file.
	ModelPath string
	// InputName and OutputName name the tensor fed and the tensor read;
	// empty means the model's first input and its (first) output.
	InputName, OutputName string
	// Threads is ONNX Runtime's intra-op thread count; 0 leaves ONNX
	// Runtime's default (one per core). The OpenCV backend runs on OpenCV's
	// process-wide thread pool and does not use it.
	Threads int
	// Provider is ProviderCPU (the default when empty), ProviderCUDA or
	// ProviderTensorRT. A provider the backend or its library lacks is an
	// error from NewRunner, never a silent fall-back to the CPU.
	Provider string
	// DeviceID is the GPU index for ProviderCUDA and ProviderTensorRT.
	DeviceID int
	// FP16 lets TensorRT (or OpenCV's CUDA target) compute in half
	// precision.
	FP16 bool
	// Library is the path of libonnxruntime for BackendONNXRuntime; empty
	// means $FLOWWATCH_ORT_LIB. ONNX Runtime is loaded once per process, so
	// every ONNX Runtime runner alive at the same time must name the same
	// library.
	Library string
}

// NewRunner loads the model named by cfg with cfg's backend and provider.
// The returned Runner is safe for use by several goroutines, one Run at a
// time; the tensor a Run returns stays valid until that Runner's next Run.
func NewRunner(cfg RunnerConfig) (Runner, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	var r Runner
	var err error
	switch cfg.Backend {
	case BackendONNXRuntime:
		r, err = newORTRunner(cfg)
	default:
		r, err = newOpenCVRunner(cfg)
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

// normalize fills cfg's defaults and checks its fields against each other.
func (cfg *RunnerConfig) normalize() error {
	if cfg.Backend == "" {
		cfg.Backend = BackendONNXRuntime
	}
	if cfg.Provider == "" {
		cfg.Provider = ProviderCPU
	}
	if cfg.Backend == BackendONNXRuntime && cfg.Library == "" {
		cfg.Library = DefaultORTLibrary()
	}
	switch {
	case cfg.Backend != BackendONNXRuntime && cfg.Backend != BackendOpenCV:
		return fmt.Errorf("runner for %q: backend must be %q or %q, got %q",
			cfg.ModelPath, BackendONNXRuntime, BackendOpenCV, cfg.Backend)
	case cfg.ModelPath == "":
		return fmt.Errorf("%s runner: no model path given", cfg.Backend)
	case cfg.Provider != ProviderCPU && cfg.Provider != ProviderCUDA && cfg.Provider != ProviderTensorRT:
		return fmt.Errorf("%s runner for %q: provider must be %q, %q or %q, got %q",
			cfg.Backend, cfg.ModelPath, ProviderCPU, ProviderCUDA, ProviderTensorRT, cfg.Provider)
	case cfg.Backend == BackendOpenCV && cfg.Provider == ProviderTensorRT:
		return fmt.Errorf("opencv runner for %q: provider %q is for ONNX Runtime only; OpenCV DNN offers %q and %q",
			cfg.ModelPath, ProviderTensorRT, ProviderCPU, ProviderCUDA)
	case cfg.Threads < 0:
		return fmt.Errorf("%s runner for %q: threads must be 0 (the backend's default) or more, got %d",
			cfg.Backend, cfg.ModelPath, cfg.Threads)
	case cfg.DeviceID < 0:
		return fmt.Errorf("%s runner for %q: device id must be 0 or more, got %d",
			cfg.Backend, cfg.ModelPath, cfg.DeviceID)
	case cfg.DeviceID != 0 && cfg.Provider == ProviderCPU:
		return fmt.Errorf("%s runner for %q: device id %d names a GPU, but the provider is %q",
			cfg.Backend, cfg.ModelPath, cfg.DeviceID, cfg.Provider)
	case cfg.FP16 && cfg.Backend == BackendONNXRuntime && cfg.Provider != ProviderTensorRT:
		return fmt.Errorf("onnxruntime runner for %q: fp16 needs provider %q, got %q",
			cfg.ModelPath, ProviderTensorRT, cfg.Provider)
	case cfg.FP16 && cfg.Backend == BackendOpenCV && cfg.Provider != ProviderCUDA:
		return fmt.Errorf("opencv runner for %q: fp16 needs provider %q, got %q",
			cfg.ModelPath, ProviderCUDA, cfg.Provider)
	case cfg.Backend == BackendONNXRuntime && cfg.Library == "":
		return fmt.Errorf("onnxruntime runner for %q: no ONNX Runtime library: set the library path or $%s",
			cfg.ModelPath, ORTLibraryEnv)
	}
	return nil
}

// checkRunnerInput checks that t's shape is positive and matches its data.
func checkRunnerInput(t *Tensor) error {
	if t == nil {
		return fmt.Errorf("no input tensor")
	}
	if len(t.Shape) == 0 {
		return fmt.Errorf("input shape %v has no dimensions", t.Shape)
	}
	n := int64(1)
	for _, d := range t.Shape {
		if d <= 0 {
			return fmt.Errorf("input shape %v has a dimension below 1", t.Shape)
		}
		if d > int64(len(t.Data)) || n > int64(len(t.Data))/d {
			return fmt.Errorf("input shape %v holds more values than the data's %d", t.Shape, len(t.Data))
		}
		n *= d
	}
	if n != int64(len(t.Data)) {
		return fmt.Errorf("input shape %v holds %d values, but the data has %d", t.Shape, n, len(t.Data))
	}
	return nil
}

// checkRunnerModel checks that path is a readable regular file, so that a
// missing model is reported the same way by every backend.
func checkRunnerModel(backend, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%s runner: open model %q: %w", backend, path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%s runner: stat model %q: %w", backend, path, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s runner: model %q is not a regular file", backend, path)
	}
	return nil
}
