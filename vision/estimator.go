package vision

import (
	"context"

	"flowwatch/ingest"
)

// Estimator estimates where people are in frames. Backends batch the frames
// they are given in one call.
type Estimator interface {
	// Estimate returns one Estimate per frame, in order. The frames stay
	// owned by the caller.
	Estimate(ctx context.Context, frames []*ingest.Frame) ([]Estimate, error)
	// Info describes the estimator.
	Info() EstimatorInfo
	// Close frees the estimator's resources.
	Close() error
}

// EstimatorInfo describes an Estimator.
type EstimatorInfo struct {
	// Backend is "onnxruntime", "opencv" or "classic".
	Backend string `json:"backend"`
	// Model is the model's name; empty for the classic estimator.
	Model string `json:"model,omitempty"`
	// Task is what the model outputs.
	Task Task `json:"task"`
	// Provider is the execution provider (cpu, cuda, tensorrt) for ONNX
	// Runtime.
	Provider string `json:"provider,omitempty"`
}

// Task is the kind of output a model produces.
type Task string

// The tasks flowwatch understands.
const (
	// TaskDensity: a density map whose sum is the number of people.
	TaskDensity Task = "density"
	// TaskDetection: person boxes.
	TaskDetection Task = "detection"
	// TaskClassic: the classic estimator's foreground-based density.
	TaskClassic Task = "classic"
)

// Estimate is what an Estimator found in one frame.
type Estimate struct {
	// Count is the number of people in the whole frame.
	Count float64
	// Density spreads Count over the frame; present for every task
	// (detections contribute a unit of mass at each foot point).
	Density *DensityMap
	// Detections are the person boxes of a detection model.
	Detections []Detection
	// Classic is true when the estimate comes from the classic estimator,
	// not a model.
	Classic bool
}

// DensityMap is a grid of people per cell laid over a frame: cell (c, r)
// covers frame pixels [c*CellW, (c+1)*CellW) x [r*CellH, (r+1)*CellH).
type DensityMap struct {
	// Cols and Rows are the grid size.
	Cols, Rows int
	// CellW and CellH are a cell's size in frame pixels.
	CellW, CellH float64
	// Data holds Rows rows of Cols values.
	Data []float32
}

// Sum returns the total mass of the map.
func (m *DensityMap) Sum() float64 {
	var s float64
	for _, v := range m.Data {
		s += float64(v)
	}
	return s
}

// Detection is one person box in frame pixels.
type Detection struct {
	// X0, Y0 is the top-left corner, X1, Y1 the bottom-right one.
	X0, Y0, X1, Y1 float64
	// Score is the model's confidence.
	Score float32
}

// Foot returns the point where the person stands: the middle of the box's
// bottom edge.
func (d Detection) Foot() (x, y float64) { return (d.X0 + d.X1) / 2, d.Y1 }

// Tensor is a dense float32 tensor.
type Tensor struct {
	// Shape lists the dimensions, outermost first.
	Shape []int64
	// Data holds the elements in row-major order.
	Data []float32
}

// Runner executes a model on a tensor: the seam between pre/post-processing
// and an inference backend (ONNX Runtime, OpenCV DNN).
type Runner interface {
	// Run executes the model on in and returns its output. The returned
	// tensor may share memory reused by the next Run.
	Run(ctx context.Context, in *Tensor) (*Tensor, error)
	// Close frees the runner.
	Close() error
}
