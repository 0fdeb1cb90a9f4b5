package main

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"flowwatch/ingest"
	"flowwatch/internal/config"
	"flowwatch/internal/netguard"
	"flowwatch/internal/store"
	"flowwatch/samples"
	"flowwatch/vision"
)

// BenchmarkResidentMemoryPerCamera measures the resident memory (VmRSS of
// this process) that serve's per-camera stack costs. A simulator child
// (benchmain_test.go) serves vtest (768x576, 10 fps) on eight paths; this
// process runs serve's counting stage (startCounting: the model, the
// batching scheduler, the heatmap history, SQLite in a temporary folder)
// and, per camera, exactly what serve runs: an ingest.Camera over TCP, the
// camera's counter (addCamera, with the demo's vtest zones) and its
// analysis (newAnalysis: the analysis subscription and a FramePipeline
// decoding every picture, 2 frames a second converted and counted).
//
// It reads RSS with the model loaded and no camera (MB-baseline), with one
// camera (MB-1cam) and after seven more join the same process (MB-8cam),
// each after the cameras have run memSettle, as the mean of memSamples
// readings a second apart. MB/camera is (MB-8cam - MB-1cam) / 7: what one
// more camera costs once the shared parts (the model's buffers, the
// scheduler) are warm. goheap-MB/camera is the same for the Go heap and
// stacks in use, the part of it Go allocates. analysed-fps is the analysed
// frames per second per camera during the last window (2 expected),
// counted-cameras how many cameras had their zone counts published, and
// load1 the 1-minute load average at the end.
//
// The model is $FLOWWATCH_BENCH_MODEL, default "default", with serve's
// default vision settings (1 intra-op thread, batch 4); a missing default
// model falls back to vision/testdata/density_tiny, which is logged, marks
// the benchmark's name and sets fallback 1.
//
// It runs in real time (about a minute); run it with -benchtime 1x.
func BenchmarkResidentMemoryPerCamera(b *testing.B) {
	clip := memVtestClip(b)
	model, note := memPickModel(b)
	fallback := note != ""
	lib := memORTLibrary(b)
	name := filepath.Base(model)
	if fallback {
		name = "density_tiny-fallback"
	}
	// A parent benchmark's log is not printed: the row logs what it ran.
	b.Run(name, func(b *testing.B) {
		if fallback {
			b.Log(note)
		}
		b.Logf("simulated cameras: %s, %dx%d at %s fps", clip.prepared.Video, clip.prepared.Width, clip.prepared.Height, clip.prepared.FrameRate)
		for range b.N {
			r := memMeasure(b, clip, model, lib)
			b.ReportMetric(r.baseline, "MB-baseline")
			b.ReportMetric(r.one, "MB-1cam")
			b.ReportMetric(r.eight, "MB-8cam")
			b.ReportMetric((r.eight-r.one)/7, "MB/camera")
			b.ReportMetric((r.heapEight-r.heapOne)/7, "goheap-MB/camera")
			b.ReportMetric(r.fps, "analysed-fps")
			b.ReportMetric(float64(r.counted), "counted-cameras")
			f := 0.0
			if fallback {
				f = 1
			}
			b.ReportMetric(f, "fallback")
			b.ReportMetric(memLoad1(), "load1")
		}
	})
}

const (
	// memCameras is the larger camera count; the smaller one is 1.
	memCameras = 8
	// memSettle is how long the cameras run before RSS is read.
	memSettle = 10 * time.Second
	// memSamples is how many RSS readings, a second apart, are averaged.
	memSamples = 5
)

// memResult is what memMeasure read, in MB (10^6 bytes).
type memResult struct {
	baseline, one, eight float64
	heapOne, heapEight   float64
	fps                  float64
	counted              int
}

// memVtestClip returns the prepared vtest stream for the simulator child:
// samples/media's vtest.h264 when it is there, else one prepared from
// opencv-doc's vtest.avi into the benchmark cache. startBenchSim needs only
// the prepared stream of a benchClip.
func memVtestClip(b *testing.B) *benchClip {
	b.Helper()
	s, ok := samples.LookupBuiltin("vtest")
	if !ok {
		b.Fatal("no built-in vtest sample")
	}
	prep, err := samples.LoadPrepared(s.Path())
	if err != nil {
		if _, err := exec.LookPath("ffmpeg"); err != nil {
			b.Skipf("no prepared vtest at %s and no ffmpeg to prepare it", s.Path())
		}
		dir, err := benchCacheDir()
		if err != nil {
			b.Fatal(err)
		}
		if prep, err = samples.Prepare(context.Background(), samples.VtestSource, dir); err != nil {
			b.Fatal(err)
		}
	}
	return &benchClip{prepared: prep, duration: prep.Duration()}
}

// memPickModel returns the model folder to open and, when the tiny test
// model stands in for a missing default model, a note saying so.
func memPickModel(b *testing.B) (string, string) {
	b.Helper()
	name := os.Getenv("FLOWWATCH_BENCH_MODEL")
	asked := name != ""
	if !asked {
		name = config.DefaultModel
	}
	dir, err := vision.ResolveModelDir(name)
	if err != nil && os.Getenv(vision.ModelsEnv) == "" && !strings.ContainsRune(name, os.PathSeparator) {
		// go test runs in the package folder: try the repository's models.
		if d, err2 := vision.ResolveModelDir(filepath.Join("..", "..", "models", name)); err2 == nil {
			dir, err = d, nil
		}
	}
	if err == nil {
		return dir, ""
	}
	if asked {
		b.Fatalf("$FLOWWATCH_BENCH_MODEL=%s: %v", name, err)
	}
	tiny := filepath.Join("..", "..", "vision", "testdata", "density_tiny")
	return tiny, fmt.Sprintf("NOTE: the default model is not there (%v); measuring with the tiny test model %s INSTEAD", err, tiny)
}

// memORTLibrary returns $FLOWWATCH_ORT_LIB, else the library make setup
// installs in the repository; without either the benchmark is skipped.
func memORTLibrary(b *testing.B) string {
	b.Helper()
	if lib := vision.DefaultORTLibrary(); lib != "" {
		return lib
	}
	lib, err := filepath.Abs(filepath.Join("..", "..", "third_party", "onnxruntime", "libonnxruntime.so.1.24.1"))
	if err == nil {
		if _, err := os.Stat(lib); err == nil {
			return lib
		}
	}
	b.Skipf("no ONNX Runtime library: set $%s or run make setup", vision.ORTLibraryEnv)
	return ""
}

// memMeasure runs the stack and reads RSS at baseline, one camera and
// memCameras cameras.
func memMeasure(b *testing.B, clip *benchClip, model, lib string) memResult {
	b.Helper()
	var r memResult
	sim := startBenchSim(b, clip, memCameras)
	defer sim.stop()

	demo, err := config.Demo()
	if err != nil {
		b.Fatal(err)
	}
	var tmpl config.Camera
	for _, c := range demo.Cameras {
		if c.Name == "vtest" {
			tmpl = c
		}
	}
	if tmpl.Name == "" {
		b.Fatal("the demo config has no vtest camera")
	}
	cfg := demo
	cfg.Simulator.Enabled = false
	cfg.Storage.DataDir = b.TempDir()
	cfg.Vision.Model = model
	cfg.Vision.ORTLibrary = lib

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	db, err := store.Open(filepath.Join(cfg.Storage.DataDir, "flowwatch.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	cnt, err := startCounting(cfg, db, nil, log)
	if err != nil {
		b.Fatal(err)
	}
	defer cnt.Close()
	b.Logf("counting with model %s, %s backend, %d intra-op thread(s), batch %d",
		cnt.est.Info().Model, cnt.est.Info().Backend, cfg.Vision.Threads, cfg.Vision.BatchSize)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var cams []*ingest.Camera
	var counters []*cameraCounter
	var analyses []*analysis
	defer func() {
		cancel()
		for _, c := range cams {
			c.Close()
		}
		wg.Wait()
		for _, c := range counters {
			c.close()
		}
	}()

	// addCameras starts cameras until there are n, as serve starts each.
	addCameras := func(n int) {
		for i := len(cams); i < n; i++ {
			cc := tmpl
			cc.Name = fmt.Sprintf("mem-%d", benchCameraSeq.Add(1))
			cc.URL = sim.url(i)
			cc.Transport = string(ingest.TransportTCP)
			cam, err := ingest.NewCamera(cameraConfig(cc, netguard.Policy{AllowLoopback: true}.Dialer().DialContext, log))
			if err != nil {
				b.Fatal(err)
			}
			if err := cam.Start(ctx); err != nil {
				b.Fatalf("camera %s: %v", cc.URL, err)
			}
			cams = append(cams, cam)
			counter, err := cnt.addCamera(cc, cam.MetricsSet())
			if err != nil {
				b.Fatal(err)
			}
			counters = append(counters, counter)
			a, err := newAnalysis(cam, cc, counter, log)
			if err != nil {
				b.Fatal(err)
			}
			analyses = append(analyses, a)
			wg.Go(func() { a.run(ctx) })
		}
		benchWaitReady(b, cams, "an analysed frame", func(i int) bool { return analyses[i].frames.Get() > 0 })
	}
	// settle lets the cameras run, then returns the mean RSS and Go heap
	// over memSamples readings, and the analysed frames per second per
	// camera over the whole wait.
	settle := func(wait time.Duration) (rss, heap, fps float64) {
		var frames0 uint64
		for _, a := range analyses {
			frames0 += a.frames.Get()
		}
		start := time.Now()
		time.Sleep(wait)
		for i := range memSamples {
			if i > 0 {
				time.Sleep(time.Second)
			}
			rss += memRSS(b)
			heap += memGoHeap()
		}
		var frames1 uint64
		for _, a := range analyses {
			frames1 += a.frames.Get()
		}
		if len(analyses) > 0 {
			fps = float64(frames1-frames0) / time.Since(start).Seconds() / float64(len(analyses))
		}
		return rss / memSamples, heap / memSamples, fps
	}

	r.baseline, _, _ = settle(2 * time.Second)
	b.Logf("baseline (model loaded, no camera): %.1f MB RSS; load average %s", r.baseline, memLoadAvg())

	addCameras(1)
	r.one, r.heapOne, _ = settle(memSettle)
	b.Logf("1 camera: %.1f MB RSS, %.1f MB Go heap and stacks", r.one, r.heapOne)

	addCameras(memCameras)
	r.eight, r.heapEight, r.fps = settle(memSettle)
	b.Logf("%d cameras: %.1f MB RSS, %.1f MB Go heap and stacks, %.2f analysed frames/s per camera; load average %s",
		memCameras, r.eight, r.heapEight, r.fps, memLoadAvg())

	for _, c := range cams {
		for _, m := range c.MetricsSet().ListMetricNames() {
			if strings.HasPrefix(m, "flowwatch_zone_people{") && strings.Contains(m, `zone="all"`) {
				r.counted++
				break
			}
		}
	}
	if r.counted < len(cams) {
		b.Logf("warning: only %d of %d cameras had zone counts published: the model may not keep up", r.counted, len(cams))
	}
	return r
}

// memRSS reads VmRSS from /proc/self/status, in MB.
func memRSS(b *testing.B) float64 {
	b.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Fatalf("resident memory: %v", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) >= 3 && fields[0] == "VmRSS:" && fields[2] == "kB" {
			kb, err := strconv.ParseFloat(fields[1], 64)
			if err != nil {
				b.Fatalf("resident memory: %q: %v", s.Text(), err)
			}
			return kb * 1024 / 1e6
		}
	}
	b.Fatal("resident memory: no VmRSS line in /proc/self/status")
	return 0
}

// memGoHeap is the Go heap and goroutine stacks in use, in MB.
func memGoHeap() float64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapInuse+ms.StackInuse) / 1e6
}

// memLoadAvg returns the first three fields of /proc/loadavg.
func memLoadAvg() string {
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

// memLoad1 returns the 1-minute load average, or -1 when unknown.
func memLoad1() float64 {
	f := strings.Fields(memLoadAvg())
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}
