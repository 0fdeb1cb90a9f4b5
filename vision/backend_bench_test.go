package vision

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// BenchmarkRunners runs density_tiny through ONNX Runtime and OpenCV DNN at
// 768x576 (the vtest clip) and 1920x1080, one frame and four frames a run.
// Each reports ms/frame and frames/s; the ONNX Runtime ones also report
// ort/opencv, their time per frame over OpenCV DNN's on the same input,
// measured once in the same process as the reference.
//
//	go test -run '^$' -bench BenchmarkRunners ./vision
func BenchmarkRunners(b *testing.B) {
	lib := testORTLibrary(b)
	model := testModelPath("density_tiny")
	sizes := [][2]int64{{768, 576}, {1920, 1080}}
	batches := []int64{1, 4}

	// OpenCV DNN's time per frame for each size and batch, measured on
	// first use by the ONNX Runtime sub-benchmark that needs it.
	type reference struct {
		once    sync.Once
		msFrame float64
		err     error
	}
	refs := map[string]*reference{}
	for _, size := range sizes {
		for _, batch := range batches {
			refs[fmt.Sprint(size, batch)] = &reference{}
		}
	}
	measureOpenCV := func(size [2]int64, batch int64) (float64, error) {
		ref := refs[fmt.Sprint(size, batch)]
		ref.once.Do(func() {
			r, err := NewRunner(RunnerConfig{Backend: BackendOpenCV, ModelPath: model})
			if err != nil {
				ref.err = err
				return
			}
			defer r.Close()
			in := randomTensor(1, batch, 3, size[1], size[0])
			ctx := context.Background()
			if _, err := r.Run(ctx, in); err != nil {
				ref.err = err
				return
			}
			const runs = 5
			start := time.Now()
			for i := 0; i < runs; i++ {
				if _, err := r.Run(ctx, in); err != nil {
					ref.err = err
					return
				}
			}
			ref.msFrame = time.Since(start).Seconds() * 1000 / float64(runs*batch)
		})
		return ref.msFrame, ref.err
	}

	for _, size := range sizes {
		for _, batch := range batches {
			for _, backend := range []string{BackendONNXRuntime, BackendOpenCV} {
				name := fmt.Sprintf("%s/%dx%d/batch%d", backend, size[0], size[1], batch)
				b.Run(name, func(b *testing.B) {
					cfg := RunnerConfig{Backend: backend, ModelPath: model}
					if backend == BackendONNXRuntime {
						cfg.Library = lib
					}
					r, err := NewRunner(cfg)
					if err != nil {
						b.Fatal(err)
					}
					defer r.Close()
					in := randomTensor(1, batch, 3, size[1], size[0])
					ctx := context.Background()
					if _, err := r.Run(ctx, in); err != nil {
						b.Fatal(err)
					}
					for b.Loop() {
						if _, err := r.Run(ctx, in); err != nil {
							b.Fatal(err)
						}
					}
					msFrame := b.Elapsed().Seconds() * 1000 / float64(int64(b.N)*batch)
					b.ReportMetric(msFrame, "ms/frame")
					b.ReportMetric(1000/msFrame, "frames/s")
					if backend == BackendONNXRuntime {
						ref, err := measureOpenCV(size, batch)
						if err != nil {
							b.Fatalf("OpenCV reference: %v", err)
						}
						b.ReportMetric(msFrame/ref, "ort/opencv")
					}
				})
			}
		}
	}
}
