package vision

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// ortEnvironment owns ONNX Runtime's environment. onnxruntime_go keeps a
// single environment per process, bound to the one shared library it loaded
// (InitializeEnvironment fails when called twice, and every session needs the
// environment alive), so its owner in flowwatch is process-wide as well: this
// is vision's one package-level mutable value besides metrics. Runners take a
// reference with acquire and give it back with release; the first acquire
// loads the library and creates the environment, the last release destroys
// it.
type ortEnvironment struct {
	mu      sync.Mutex
	refs    int
	library string
}

// ortEnv is the process's ONNX Runtime environment owner (see
// ortEnvironment).
var ortEnv ortEnvironment

// acquire takes a reference to the environment, loading library first if no
// runner holds it. A library other than the one already loaded is refused.
func (e *ortEnvironment) acquire(library string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.refs > 0 {
		if filepath.Clean(library) != filepath.Clean(e.library) {
			return fmt.Errorf("ONNX Runtime library %q is loaded already; %q cannot be loaded beside it", e.library, library)
		}
		e.refs++
		return nil
	}
	if ort.IsInitialized() {
		return fmt.Errorf("load ONNX Runtime library %q: the environment was initialized outside flowwatch's owner", library)
	}
	ort.SetSharedLibraryPath(library)
	if err := ort.InitializeEnvironment(); err != nil {
		return fmt.Errorf("load ONNX Runtime library %q: %w", library, err)
	}
	e.refs, e.library = 1, library
	return nil
}

// release gives back a reference taken by acquire.
func (e *ortEnvironment) release() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.refs == 0 {
		return errors.New("ONNX Runtime environment released more often than acquired")
	}
	e.refs--
	if e.refs > 0 {
		return nil
	}
	lib := e.library
	e.library = ""
	if err := ort.DestroyEnvironment(); err != nil {
		return fmt.Errorf("unload ONNX Runtime library %q: %w", lib, err)
	}
	return nil
}

// references returns how many references are held.
func (e *ortEnvironment) references() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.refs
}

// ortShapes is how many input shapes an ortRunner keeps tensors for. A
// scheduler that sends full and partial batches alternates between a few
// batch sizes of one frame size; each keeps its tensors instead of
// re-creating them on every switch.
const ortShapes = 4

// ortRunner runs a model with ONNX Runtime: one session, and for each of the
// last few input shapes an input and an output tensor bound to the session
// (an IoBinding). A Run of a known shape copies the input into its bound
// tensor and runs, without allocating; a new shape creates its tensors,
// evicting those of the least recently used shape when ortShapes are held.
type ortRunner struct {
	path     string
	provider string
	inName   string
	outName  string

	mu      sync.Mutex
	closed  bool
	session *ort.DynamicAdvancedSession
	shapes  []*ortShape
	// runs counts Runs, to find the least recently used shape.
	runs uint64
}

// ortShape holds the tensors of one input shape, bound to the session.
type ortShape struct {
	shape   []int64
	in, out *ort.Tensor[float32]
	binding *ort.IoBinding
	// view is what Run returns: out's shape and data.
	view Tensor
	// used is the runner's Run count at this shape's last Run.
	used uint64
}

// newORTRunner creates an ONNX Runtime session for cfg (already normalized).
func newORTRunner(cfg RunnerConfig) (_ *ortRunner, err error) {
	if err := checkRunnerModel(cfg.Backend, cfg.ModelPath); err != nil {
		return nil, err
	}
	if err := ortEnv.acquire(cfg.Library); err != nil {
		return nil, fmt.Errorf("onnxruntime runner for %q: %w", cfg.ModelPath, err)
	}
	r := &ortRunner{path: cfg.ModelPath, provider: cfg.Provider}
	defer func() {
		if err != nil {
			r.closeLocked()
		}
	}()
	if err := r.resolveNames(cfg); err != nil {
		return nil, err
	}
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("onnxruntime runner for %q: session options: %w", r.path, err)
	}
	defer opts.Destroy()
	if cfg.Threads > 0 {
		if err := opts.SetIntraOpNumThreads(cfg.Threads); err != nil {
			return nil, fmt.Errorf("onnxruntime runner for %q: set %d intra-op threads: %w", r.path, cfg.Threads, err)
		}
	}
	if err := appendProvider(opts, cfg); err != nil {
		return nil, err
	}
	r.session, err = ort.NewDynamicAdvancedSession(r.path, []string{r.inName}, []string{r.outName}, opts)
	if err != nil {
		return nil, fmt.Errorf("onnxruntime runner: load model %q with provider %q: %w", r.path, r.provider, err)
	}
	return r, nil
}

// resolveNames reads the model's inputs and outputs, picks the tensors named
// by cfg (or the first ones), and checks they are float32.
func (r *ortRunner) resolveNames(cfg RunnerConfig) error {
	// A one-thread session only reads the graph's signature.
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return fmt.Errorf("onnxruntime runner for %q: session options: %w", r.path, err)
	}
	defer opts.Destroy()
	if err := opts.SetIntraOpNumThreads(1); err != nil {
		return fmt.Errorf("onnxruntime runner for %q: set intra-op threads: %w", r.path, err)
	}
	inputs, outputs, err := ort.GetInputOutputInfoWithOptions(r.path, opts)
	if err != nil {
		return fmt.Errorf("onnxruntime runner: load model %q: %w", r.path, err)
	}
	in, err := pickTensor(r.path, "input", cfg.InputName, inputs)
	if err != nil {
		return err
	}
	out, err := pickTensor(r.path, "output", cfg.OutputName, outputs)
	if err != nil {
		return err
	}
	if len(inputs) > 1 {
		return fmt.Errorf("onnxruntime runner: model %q has %d inputs (%s); flowwatch feeds models with one",
			r.path, len(inputs), ioNames(inputs))
	}
	r.inName, r.outName = in.Name, out.Name
	return nil
}

// pickTensor finds the input or output called name (the first when name is
// empty) and checks that it is a float32 tensor.
func pickTensor(path, kind, name string, infos []ort.InputOutputInfo) (ort.InputOutputInfo, error) {
	if len(infos) == 0 {
		return ort.InputOutputInfo{}, fmt.Errorf("onnxruntime runner: model %q has no %s", path, kind)
	}
	i := 0
	if name != "" {
		i = -1
		for j := range infos {
			if infos[j].Name == name {
				i = j
			}
		}
		if i < 0 {
			return ort.InputOutputInfo{}, fmt.Errorf("onnxruntime runner: model %q has no %s %q (it has %s)",
				path, kind, name, ioNames(infos))
		}
	}
	info := infos[i]
	if info.OrtValueType != ort.ONNXTypeTensor {
		what := strings.ToLower(strings.TrimPrefix(info.OrtValueType.String(), "ONNX_TYPE_"))
		return ort.InputOutputInfo{}, fmt.Errorf("onnxruntime runner: model %q: %s %q is a %s, want a float32 tensor",
			path, kind, info.Name, what)
	}
	if info.DataType != ort.TensorElementDataTypeFloat {
		elem := strings.ToLower(strings.TrimPrefix(info.DataType.String(), "ONNX_TENSOR_ELEMENT_DATA_TYPE_"))
		return ort.InputOutputInfo{}, fmt.Errorf("onnxruntime runner: model %q: %s %q holds %s, want float32",
			path, kind, info.Name, elem)
	}
	return info, nil
}

// ioNames lists the names of infos, quoted.
func ioNames(infos []ort.InputOutputInfo) string {
	names := make([]string, len(infos))
	for i, info := range infos {
		names[i] = strconv.Quote(info.Name)
	}
	return strings.Join(names, ", ")
}

// appendProvider adds cfg's execution provider to opts. The CPU provider is
// always there; asking for CUDA or TensorRT from a library built without them
// fails here, naming the provider and the library.
func appendProvider(opts *ort.SessionOptions, cfg RunnerConfig) error {
	fail := func(err error) error {
		return fmt.Errorf("onnxruntime runner for %q: execution provider %q is not available with ONNX Runtime library %q: %w",
			cfg.ModelPath, cfg.Provider, cfg.Library, err)
	}
	device := strconv.Itoa(cfg.DeviceID)
	switch cfg.Provider {
	case ProviderCPU:
		return nil
	case ProviderTensorRT:
		trt, err := ort.NewTensorRTProviderOptions()
		if err != nil {
			return fail(err)
		}
		defer trt.Destroy()
		fp16 := "0"
		if cfg.FP16 {
			fp16 = "1"
		}
		if err := trt.Update(map[string]string{"device_id": device, "trt_fp16_enable": fp16}); err != nil {
			return fail(err)
		}
		if err := opts.AppendExecutionProviderTensorRT(trt); err != nil {
			return fail(err)
		}
	}
	// CUDA serves the cuda provider, and under TensorRT it takes the nodes
	// TensorRT does not.
	cuda, err := ort.NewCUDAProviderOptions()
	if err != nil {
		return fail(err)
	}
	defer cuda.Destroy()
	if err := cuda.Update(map[string]string{"device_id": device}); err != nil {
		return fail(err)
	}
	if err := opts.AppendExecutionProviderCUDA(cuda); err != nil {
		return fail(err)
	}
	return nil
}

// Run feeds in to the model and returns its output, which stays valid until
// the next Run. The first Run of an input shape creates the tensors of that
// shape; later Runs of the same shape reuse them. A Run once started
// finishes: ctx is checked before it.
func (r *ortRunner) Run(ctx context.Context, in *Tensor) (*Tensor, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkRunnerInput(in); err != nil {
		return nil, fmt.Errorf("onnxruntime runner for %q: %w", r.path, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, fmt.Errorf("onnxruntime runner for %q: run after Close", r.path)
	}
	r.runs++
	for _, s := range r.shapes {
		if slices.Equal(s.shape, in.Shape) {
			s.used = r.runs
			copy(s.in.GetData(), in.Data)
			if err := r.session.RunWithBinding(s.binding); err != nil {
				return nil, fmt.Errorf("onnxruntime runner: run model %q on input %v: %w", r.path, in.Shape, err)
			}
			return &s.view, nil
		}
	}
	s, err := r.newShape(in)
	if err != nil {
		return nil, err
	}
	if len(r.shapes) == ortShapes {
		oldest := 0
		for i, o := range r.shapes {
			if o.used < r.shapes[oldest].used {
				oldest = i
			}
		}
		r.shapes[oldest].free()
		r.shapes = append(r.shapes[:oldest], r.shapes[oldest+1:]...)
	}
	r.shapes = append(r.shapes, s)
	return &s.view, nil
}

// newShape creates the tensors for in's shape and runs the model on in. The
// output's shape comes from this run, whose output tensor ONNX Runtime
// allocates; it is kept and bound for the Runs that follow.
func (r *ortRunner) newShape(in *Tensor) (_ *ortShape, err error) {
	s := &ortShape{shape: append([]int64(nil), in.Shape...), used: r.runs}
	defer func() {
		if err != nil {
			s.free()
		}
	}()
	s.in, err = ort.NewEmptyTensor[float32](ort.NewShape(in.Shape...))
	if err != nil {
		return nil, fmt.Errorf("onnxruntime runner for %q: input tensor %v: %w", r.path, in.Shape, err)
	}
	copy(s.in.GetData(), in.Data)
	outs := []ort.Value{nil}
	if err := r.session.Run([]ort.Value{s.in}, outs); err != nil {
		return nil, fmt.Errorf("onnxruntime runner: run model %q on input %v: %w", r.path, in.Shape, err)
	}
	out, ok := outs[0].(*ort.Tensor[float32])
	if !ok {
		outs[0].Destroy()
		return nil, fmt.Errorf("onnxruntime runner: model %q: output %q is not a float32 tensor", r.path, r.outName)
	}
	s.out = out
	s.view = Tensor{Shape: out.GetShape(), Data: out.GetData()}
	s.binding, err = r.session.CreateIoBinding()
	if err != nil {
		return nil, fmt.Errorf("onnxruntime runner for %q: create I/O binding: %w", r.path, err)
	}
	if err := s.binding.BindInput(r.inName, s.in); err != nil {
		return nil, fmt.Errorf("onnxruntime runner for %q: bind input %q: %w", r.path, r.inName, err)
	}
	if err := s.binding.BindOutput(r.outName, s.out); err != nil {
		return nil, fmt.Errorf("onnxruntime runner for %q: bind output %q: %w", r.path, r.outName, err)
	}
	return s, nil
}

// free releases the shape's binding and tensors. The data of an output
// already handed out stays readable: it is Go memory.
func (s *ortShape) free() {
	if s.binding != nil {
		s.binding.Destroy()
		s.binding = nil
	}
	if s.in != nil {
		s.in.Destroy()
		s.in = nil
	}
	if s.out != nil {
		s.out.Destroy()
		s.out = nil
	}
}

// Close frees the session and its tensors and gives back the ONNX Runtime
// environment. Closing twice is harmless.
func (r *ortRunner) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	return r.closeLocked()
}

// closeLocked frees everything r holds; r.mu is held or r is unshared.
func (r *ortRunner) closeLocked() error {
	r.closed = true
	for _, s := range r.shapes {
		s.free()
	}
	r.shapes = nil
	if r.session != nil {
		r.session.Destroy()
		r.session = nil
	}
	if err := ortEnv.release(); err != nil {
		return fmt.Errorf("onnxruntime runner for %q: %w", r.path, err)
	}
	return nil
}
