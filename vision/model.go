package vision

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"flowwatch/ingest"
)

// maxCachedPlans bounds the plans a ModelEstimator keeps, one per frame
// size seen.
const maxCachedPlans = 64

// ModelEstimator is the Estimator of a density or detection model: it
// plans and preprocesses frames as the model's manifest says, runs them
// through a Runner in batches, and turns the outputs into estimates.
// Frames of the same size share batches, tiles of large frames included;
// buffers are kept between calls. It is safe for concurrent use; calls run
// one at a time.
type ModelEstimator struct {
	m    *Manifest
	r    Runner
	info EstimatorInfo

	mu    sync.Mutex
	pre   *Preprocessor
	plans map[[2]int]*Plan
	in    Tensor
	buf   []float32
}

// NewModelEstimator returns an Estimator running the model of manifest m
// through r. info describes the backend; its Model and Task are filled
// from the manifest when empty. The estimator owns r from then on and
// closes it in Close.
func NewModelEstimator(m *Manifest, r Runner, info EstimatorInfo) (*ModelEstimator, error) {
	if m == nil || r == nil {
		return nil, errors.New("model estimator: a manifest and a runner are required")
	}
	if m.Task != TaskDensity && m.Task != TaskDetection {
		return nil, fmt.Errorf("model %q: task %q is neither density nor detection", m.Name, m.Task)
	}
	if info.Model == "" {
		info.Model = m.Name
	}
	if info.Task == "" {
		info.Task = m.Task
	}
	if info.Task != m.Task {
		return nil, fmt.Errorf("model %q: the backend says task %q, the manifest %q", m.Name, info.Task, m.Task)
	}
	return &ModelEstimator{
		m:     m,
		r:     r,
		info:  info,
		pre:   NewPreprocessor(m),
		plans: make(map[[2]int]*Plan),
	}, nil
}

// Info describes the estimator.
func (e *ModelEstimator) Info() EstimatorInfo { return e.info }

// Manifest returns the model's manifest.
func (e *ModelEstimator) Manifest() *Manifest { return e.m }

// Close frees the preprocessing buffers and closes the runner.
func (e *ModelEstimator) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return errors.Join(e.pre.Close(), e.r.Close())
}

// plan returns the cached plan for a frame size.
func (e *ModelEstimator) plan(w, h int) (*Plan, error) {
	key := [2]int{w, h}
	if p, ok := e.plans[key]; ok {
		return p, nil
	}
	p, err := e.m.Plan(w, h)
	if err != nil {
		return nil, err
	}
	if len(e.plans) >= maxCachedPlans {
		clear(e.plans)
	}
	e.plans[key] = &p
	return &p, nil
}

// Estimate returns one Estimate per frame, in order.
func (e *ModelEstimator) Estimate(ctx context.Context, frames []*ingest.Frame) ([]Estimate, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	results := make([]Estimate, len(frames))
	// Group frames by size, keeping the order of first appearance.
	var sizes [][2]int
	groups := map[[2]int][]int{}
	for i, f := range frames {
		if f == nil {
			return nil, fmt.Errorf("model %q: frame %d of %d is nil", e.m.Name, i, len(frames))
		}
		key := [2]int{f.Width, f.Height}
		if _, ok := groups[key]; !ok {
			sizes = append(sizes, key)
		}
		groups[key] = append(groups[key], i)
	}
	for _, key := range sizes {
		plan, err := e.plan(key[0], key[1])
		if err != nil {
			return nil, err
		}
		if err := e.estimateGroup(ctx, frames, groups[key], plan, results); err != nil {
			return nil, err
		}
	}
	return results, nil
}

// estimateGroup runs the frames at indices idx, all of plan's size, and
// fills their results.
func (e *ModelEstimator) estimateGroup(ctx context.Context, frames []*ingest.Frame, idx []int, plan *Plan, results []Estimate) error {
	m := e.m
	tiles := len(plan.Tiles)
	total := len(idx) * tiles
	batch := m.MaxBatch()
	inLen := plan.InputLen()
	if need := batch * inLen; cap(e.buf) < need {
		e.buf = make([]float32, need)
	}
	maps := make([]*DensityMap, len(idx))
	dets := make([][]Detection, len(idx))
	if m.Task == TaskDensity {
		for k := range idx {
			maps[k] = NewDensityMap(plan, m.Output.Stride)
		}
	}
	loaded := -1
	for start := 0; start < total; start += batch {
		if err := ctx.Err(); err != nil {
			return err
		}
		k := min(batch, total-start)
		n := k
		if m.Input.Batch > 0 {
			n = m.Input.Batch
		}
		buf := e.buf[:n*inLen]
		for j := 0; j < k; j++ {
			fi, t := (start+j)/tiles, (start+j)%tiles
			if fi != loaded {
				if err := e.pre.Load(frames[idx[fi]], plan); err != nil {
					return fmt.Errorf("model %q: %w", m.Name, err)
				}
				loaded = fi
			}
			if err := e.pre.Tile(t, buf[j*inLen:(j+1)*inLen]); err != nil {
				return fmt.Errorf("model %q: %w", m.Name, err)
			}
		}
		e.in.Shape = append(e.in.Shape[:0], m.InputShape(n, plan)...)
		e.in.Data = buf
		out, err := e.r.Run(ctx, &e.in)
		if err != nil {
			return fmt.Errorf("model %q: run %d inputs of %dx%d: %w", m.Name, n, plan.InputW, plan.InputH, err)
		}
		if out == nil || len(out.Shape) == 0 || out.Shape[0] != int64(n) {
			var shape []int64
			if out != nil {
				shape = out.Shape
			}
			return fmt.Errorf("model %q: %d inputs gave output %v", m.Name, n, shape)
		}
		for j := 0; j < k; j++ {
			fi, t := (start+j)/tiles, (start+j)%tiles
			if m.Task == TaskDensity {
				err = addDensityTile(maps[fi], out, j, plan, t, m.Output.Stride)
			} else {
				dets[fi], err = decodeTile(dets[fi], out, j, plan, t, &m.Output)
			}
			if err != nil {
				return fmt.Errorf("model %q: %w", m.Name, err)
			}
		}
	}
	for k, i := range idx {
		if m.Task == TaskDensity {
			results[i] = Estimate{Count: maps[k].Sum(), Density: maps[k]}
			continue
		}
		kept := NMS(dets[k], m.Output.NMSThreshold)
		results[i] = Estimate{
			Count:      float64(len(kept)),
			Density:    DetectionDensity(kept, plan.FrameW, plan.FrameH),
			Detections: kept,
		}
	}
	return nil
}
