package vision

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"flowwatch/ingest"
)

// BenchmarkModel measures a whole model Estimator as serve uses it
// (vision.OpenModel: preprocessing with gocv, the runner, density or
// detection post-processing) on real decoded frames:
//
//	768x576    the vtest clip (opencv-doc's vtest.avi);
//	1920x1080  the synthetic 1080p clip the cmd/flowwatch benchmarks render
//	           into ~/.cache/flowwatch/bench, else samples/media's
//	           synth-dense.mp4 (1280x720) scaled up with gocv, else vtest
//	           scaled up.
//
// Sub-benchmarks are MODEL/SIZE/BACKEND/batchN for ONNX Runtime (2 intra-op
// threads) and OpenCV DNN (OpenCV's process-wide pool, one thread per core),
// with 1 and 4 frames per Estimate call. Each reports ms/frame, frames/s and
// people/frame (the mean count, a sanity check); ONNX Runtime rows also
// report ort/opencv, their ms/frame over OpenCV DNN's at the same size and
// batch, and batch4 rows report x-batch1, the speed-up over batch 1 on the
// same backend. The references are the rows measured earlier in the same
// run (OpenCV before ONNX Runtime, batch 1 before batch 4), or, when a
// -bench pattern left them out, measured on the spot. load1 is the 1-minute
// load average when the row ended: the machine may be shared.
//
// The model is $FLOWWATCH_BENCH_MODEL (a name under the models folder or a
// folder with a model.yaml), default "default". When the default model is
// not there, the benchmark says so (b.Log, a model name ending in
// "-fallback" and fallback 1) and measures the tiny test model
// testdata/density_tiny instead.
//
//	go test -run '^$' -bench '^BenchmarkModel$' -benchtime 8s ./vision
func BenchmarkModel(b *testing.B) {
	lib := testORTLibrary(b)
	choice := benchPickModel(b)
	sizes := benchModelInputs(b)
	backends := []string{BackendOpenCV, BackendONNXRuntime}
	batches := []int{1, 4}
	fallback := 0.0
	if choice.fallback {
		fallback = 1
	}
	// A parent benchmark's log is not printed; each row logs what it ran.
	about := func(backend string) string {
		s := fmt.Sprintf("model %s (%s)", choice.label, choice.dir)
		if choice.fallback {
			s += " [FALLBACK: " + choice.why + "]"
		}
		if backend == BackendONNXRuntime {
			return s + fmt.Sprintf("; ONNX Runtime %s, %d intra-op threads", lib, benchModelThreads)
		}
		return s + fmt.Sprintf("; OpenCV DNN on OpenCV's own thread pool (one thread per core: %d)", runtime.NumCPU())
	}

	open := func(b *testing.B, backend string) *ModelEstimator {
		b.Helper()
		rc := RunnerConfig{Backend: backend}
		if backend == BackendONNXRuntime {
			rc.Library = lib
			rc.Threads = benchModelThreads
		}
		e, err := OpenModel(OpenConfig{Model: choice.dir, Runner: rc})
		if err != nil {
			b.Fatalf("open %s on %s: %v", choice.dir, backend, err)
		}
		return e
	}

	type key struct {
		size    string
		backend string
		batch   int
	}
	var mu sync.Mutex
	measured := map[key]float64{} // ms per frame
	// reference returns the ms/frame of k measured earlier in this run,
	// or measures it now (a warm-up call, then benchModelRefRuns calls).
	reference := func(b *testing.B, k key, frames []*ingest.Frame) float64 {
		b.Helper()
		mu.Lock()
		ms, ok := measured[k]
		mu.Unlock()
		if ok {
			return ms
		}
		e := open(b, k.backend)
		defer e.Close()
		sets := benchBatches(frames, k.batch)
		ctx := context.Background()
		if _, err := e.Estimate(ctx, sets[0]); err != nil {
			b.Fatalf("reference %+v: %v", k, err)
		}
		start := time.Now()
		for i := range benchModelRefRuns {
			if _, err := e.Estimate(ctx, sets[i%len(sets)]); err != nil {
				b.Fatalf("reference %+v: %v", k, err)
			}
		}
		ms = time.Since(start).Seconds() * 1000 / float64(benchModelRefRuns*k.batch)
		b.Logf("reference %s/%s/batch%d measured on the spot: %.2f ms/frame", k.size, k.backend, k.batch, ms)
		mu.Lock()
		measured[k] = ms
		mu.Unlock()
		return ms
	}

	b.Run(choice.label, func(b *testing.B) {
		for _, s := range sizes {
			for _, backend := range backends {
				for _, batch := range batches {
					b.Run(fmt.Sprintf("%s/%s/batch%d", s.name, backend, batch), func(b *testing.B) {
						b.Logf("%s; load average %s", about(backend), benchLoadAvg())
						e := open(b, backend)
						defer e.Close()
						if plan, err := e.Manifest().Plan(s.frames[0].Width, s.frames[0].Height); err == nil {
							b.Logf("%s frames (%s) go in as %d input(s) of %dx%d", s.name, s.source, len(plan.Tiles), plan.InputW, plan.InputH)
						}
						sets := benchBatches(s.frames, batch)
						ctx := context.Background()
						// Warm-up: the first call plans the size and
						// allocates the buffers.
						if _, err := e.Estimate(ctx, sets[0]); err != nil {
							b.Fatal(err)
						}
						var people float64
						var counted int
						i := 0
						for b.Loop() {
							res, err := e.Estimate(ctx, sets[i%len(sets)])
							if err != nil {
								b.Fatal(err)
							}
							if len(res) != batch {
								b.Fatalf("%d estimates for %d frames", len(res), batch)
							}
							for _, r := range res {
								people += r.Count
								counted++
							}
							i++
						}
						ms := b.Elapsed().Seconds() * 1000 / float64(b.N*batch)
						k := key{s.name, backend, batch}
						mu.Lock()
						measured[k] = ms
						mu.Unlock()
						b.ReportMetric(ms, "ms/frame")
						b.ReportMetric(1000/ms, "frames/s")
						b.ReportMetric(people/float64(counted), "people/frame")
						if backend == BackendONNXRuntime {
							ref := reference(b, key{s.name, BackendOpenCV, batch}, s.frames)
							b.ReportMetric(ms/ref, "ort/opencv")
						}
						if batch > 1 {
							ref := reference(b, key{s.name, backend, 1}, s.frames)
							b.ReportMetric(ref/ms, "x-batch1")
						}
						b.ReportMetric(fallback, "fallback")
						b.ReportMetric(benchLoad1(), "load1")
					})
				}
			}
		}
	})
}

const (
	// benchModelEnv names the model BenchmarkModel measures.
	benchModelEnv = "FLOWWATCH_BENCH_MODEL"
	// benchModelDefault is the model measured when benchModelEnv is unset.
	benchModelDefault = "default"
	// benchModelThreads is ONNX Runtime's intra-op thread count.
	benchModelThreads = 2
	// benchModelFrames is how many distinct frames each size cycles
	// through.
	benchModelFrames = 8
	// benchModelRefRuns is how many calls an on-the-spot reference times.
	benchModelRefRuns = 5
	// benchModelVtest is the 768x576 clip.
	benchModelVtest = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"
	// benchModelHDClip is the 1080p clip cmd/flowwatch's ingest benchmarks
	// render into the benchmark cache.
	benchModelHDClip = "synth-dense-1920x1080-25fps-20s-seed7.mp4"
)

// benchModelChoice is the model a benchmark measures.
type benchModelChoice struct {
	// label names it in sub-benchmark names.
	label string
	// dir is its folder, as OpenModel takes it.
	dir string
	// fallback is true when the default model was missing and the tiny
	// test model stands in for it.
	fallback bool
	// why says why the fallback was taken.
	why string
}

// benchPickModel resolves $FLOWWATCH_BENCH_MODEL (default "default"). A
// missing default model falls back to testdata/density_tiny, loudly; a
// missing model that was asked for by name fails the benchmark.
func benchPickModel(b *testing.B) benchModelChoice {
	b.Helper()
	name := os.Getenv(benchModelEnv)
	asked := name != ""
	if !asked {
		name = benchModelDefault
	}
	dir, err := ResolveModelDir(name)
	if err != nil && os.Getenv(ModelsEnv) == "" && !strings.ContainsRune(name, os.PathSeparator) {
		// go test runs in the package folder: try the repository's models.
		if d, err2 := ResolveModelDir(filepath.Join("..", "models", name)); err2 == nil {
			dir, err = d, nil
		}
	}
	if err == nil {
		return benchModelChoice{label: filepath.Base(dir), dir: dir}
	}
	if asked {
		b.Fatalf("$%s=%s: %v", benchModelEnv, name, err)
	}
	tiny := filepath.Join("testdata", "density_tiny")
	why := fmt.Sprintf("the default model is not there (%v); measuring the tiny test model %s INSTEAD: its figures say nothing of the default model's speed", err, tiny)
	b.Log(why)
	return benchModelChoice{label: "density_tiny-fallback", dir: tiny, fallback: true, why: why}
}

// benchModelSize is one frame size's input frames.
type benchModelSize struct {
	name   string
	source string
	frames []*ingest.Frame
}

var benchModelInputsOnce = sync.OnceValues(func() ([]benchModelSize, error) {
	if _, err := os.Stat(benchModelVtest); err != nil {
		return nil, fmt.Errorf("vtest clip: %w (it comes with the Debian package opencv-doc)", err)
	}
	// vtest is 10 fps: a frame every second.
	vt, err := benchDecodeFrames(benchModelVtest, benchModelFrames, 10)
	if err != nil {
		return nil, err
	}
	sd := benchModelSize{name: "768x576", source: "vtest.avi, a frame a second", frames: vt}
	hd, err := benchHDFrames(vt)
	if err != nil {
		return nil, err
	}
	return []benchModelSize{sd, hd}, nil
})

// benchModelInputs returns the frames of both sizes, decoded once.
func benchModelInputs(b *testing.B) []benchModelSize {
	b.Helper()
	sizes, err := benchModelInputsOnce()
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range sizes {
		f := s.frames[0]
		if s.name != fmt.Sprintf("%dx%d", f.Width, f.Height) {
			b.Fatalf("%s frames from %s are %dx%d", s.name, s.source, f.Width, f.Height)
		}
	}
	return sizes
}

// benchHDFrames returns 1920x1080 frames: the benchmark cache's 1080p
// clip, else samples/media/synth-dense.mp4 scaled up, else vt scaled up.
func benchHDFrames(vt []*ingest.Frame) (benchModelSize, error) {
	out := benchModelSize{name: "1920x1080"}
	if cache, err := os.UserCacheDir(); err == nil {
		clip := filepath.Join(cache, "flowwatch", "bench", benchModelHDClip)
		if _, err := os.Stat(clip); err == nil {
			// 25 fps: a frame every second.
			fs, err := benchDecodeFrames(clip, benchModelFrames, 25)
			if err != nil {
				return out, err
			}
			out.source, out.frames = clip+", a frame a second", fs
			return out, nil
		}
	}
	media := os.Getenv("FLOWWATCH_SAMPLES")
	if media == "" {
		media = filepath.Join("..", "samples", "media")
	}
	clip := filepath.Join(media, "synth-dense.mp4")
	if _, err := os.Stat(clip); err == nil {
		fs, err := benchDecodeFrames(clip, benchModelFrames, 25)
		if err != nil {
			return out, err
		}
		if out.frames, err = benchResizeFrames(fs, 1920, 1080); err != nil {
			return out, err
		}
		out.source = clip + " scaled up with gocv"
		return out, nil
	}
	fs, err := benchResizeFrames(vt, 1920, 1080)
	if err != nil {
		return out, err
	}
	out.source, out.frames = "vtest.avi scaled up (and stretched) with gocv", fs
	return out, nil
}

// benchDecodeFrames decodes path and returns copies of n frames, one every
// every decoded frames, packed (stride 3*width) and owned by the caller.
func benchDecodeFrames(path string, n, every int) ([]*ingest.Frame, error) {
	ctx := context.Background()
	src, err := ingest.OpenFile(ctx, path, ingest.FileConfig{})
	if err != nil {
		return nil, err
	}
	defer src.Close()
	var out []*ingest.Frame
	for i := 0; len(out) < n; i++ {
		f, err := src.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("decode %s: %w", path, err)
		}
		if i%every == 0 {
			c := &ingest.Frame{Width: f.Width, Height: f.Height, Stride: 3 * f.Width, Index: f.Index, PTS: f.PTS,
				Pix: make([]byte, 3*f.Width*f.Height)}
			for y := range f.Height {
				copy(c.Pix[y*c.Stride:(y+1)*c.Stride], f.Pix[y*f.Stride:])
			}
			out = append(out, c)
		}
		f.Release()
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("decode %s: no frames", path)
	}
	return out, nil
}

// benchResizeFrames scales packed frames to w x h with gocv (bilinear).
func benchResizeFrames(in []*ingest.Frame, w, h int) ([]*ingest.Frame, error) {
	out := make([]*ingest.Frame, 0, len(in))
	for _, f := range in {
		src, err := gocv.NewMatFromBytes(f.Height, f.Width, gocv.MatTypeCV8UC3, f.Pix)
		if err != nil {
			return nil, fmt.Errorf("resize frame %d: %w", f.Index, err)
		}
		dst := gocv.NewMat()
		gocv.Resize(src, &dst, image.Pt(w, h), 0, 0, gocv.InterpolationLinear)
		pix := dst.ToBytes()
		src.Close()
		dst.Close()
		out = append(out, &ingest.Frame{Width: w, Height: h, Stride: 3 * w, Index: f.Index, PTS: f.PTS, Pix: pix})
	}
	return out, nil
}

// benchBatches splits frames into calls of batch frames each, cycling
// through frames from the start.
func benchBatches(frames []*ingest.Frame, batch int) [][]*ingest.Frame {
	n := max(len(frames)/batch, 1)
	sets := make([][]*ingest.Frame, n)
	for i := range sets {
		for j := range batch {
			sets[i] = append(sets[i], frames[(i*batch+j)%len(frames)])
		}
	}
	return sets
}

// benchLoadAvg returns the first three fields of /proc/loadavg.
func benchLoadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// benchLoad1 returns the 1-minute load average, or -1 when unknown.
func benchLoad1() float64 {
	f := strings.Fields(benchLoadAvg())
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}
