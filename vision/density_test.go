package vision

import (
	"math"
	"strings"
	"testing"
)

func TestDensityFromOutputIsExact(t *testing.T) {
	m := testManifest(TaskDensity)
	m.Output.Stride = 8
	m.Input.Multiple = 8
	m.Input.MaxSide = 64
	mustValid(t, m)
	plan, err := m.Plan(640, 480)
	if err != nil {
		t.Fatal(err)
	}
	if plan.ScaledW != 64 || plan.ScaledH != 48 {
		t.Fatalf("plan %+v, want 64x48", plan)
	}
	const h, w = 6, 8
	// Two batch items; the frame is the second.
	data := make([]float32, 2*h*w)
	var want float64
	for i := range data {
		data[i] = float32(i%7) * 0.125
		if i >= h*w {
			want += float64(data[i])
		}
	}
	for _, shape := range [][]int64{{2, 1, h, w}, {2, h, w, 1}, {2, h, w}} {
		dm, err := DensityFromOutput(&Tensor{Shape: shape, Data: data}, 1, &plan, 8)
		if err != nil {
			t.Fatal(err)
		}
		if dm.Cols != w || dm.Rows != h || dm.CellW != 80 || dm.CellH != 80 {
			t.Errorf("%v: map %dx%d of %gx%g cells, want 8x6 of 80x80 (stride 8 / scale 0.1)", shape, dm.Cols, dm.Rows, dm.CellW, dm.CellH)
		}
		if got := dm.Sum(); got != want {
			t.Errorf("%v: sum %g, want exactly %g", shape, got, want)
		}
		for i, v := range dm.Data {
			if v != data[h*w+i] {
				t.Fatalf("%v: cell %d = %g, want %g unchanged", shape, i, v, data[h*w+i])
			}
		}
	}
}

func TestDensityLetterboxDropsPaddingOnly(t *testing.T) {
	m := testManifest(TaskDensity)
	m.Output.Stride = 8
	m.Input.Width, m.Input.Height = 64, 64
	mustValid(t, m)
	plan, err := m.Plan(200, 100)
	if err != nil {
		t.Fatal(err)
	}
	if plan.ScaledW != 64 || plan.ScaledH != 32 {
		t.Fatalf("plan %+v, want 64x32 content", plan)
	}
	out := &Tensor{Shape: []int64{1, 1, 8, 8}, Data: make([]float32, 64)}
	for r := 0; r < 8; r++ {
		for c := 0; c < 8; c++ {
			if r < 4 {
				out.Data[r*8+c] = 0.25 // the frame
			} else {
				out.Data[r*8+c] = 5 // padding below it
			}
		}
	}
	dm, err := DensityFromOutput(out, 0, &plan, 8)
	if err != nil {
		t.Fatal(err)
	}
	if dm.Rows != 4 || dm.Cols != 8 || dm.Sum() != 8 {
		t.Errorf("map %dx%d summing to %g, want 8x4 summing to exactly 8", dm.Cols, dm.Rows, dm.Sum())
	}
	if dm.CellW != 25 || dm.CellH != 25 {
		t.Errorf("cells %gx%g, want 25x25", dm.CellW, dm.CellH)
	}
}

func TestDensityRejectsBadOutputs(t *testing.T) {
	m := testManifest(TaskDensity)
	m.Output.Stride = 4
	mustValid(t, m)
	plan, err := m.Plan(32, 16)
	if err != nil {
		t.Fatal(err)
	}
	nan := make([]float32, 32)
	nan[9] = float32(math.NaN())
	for _, tc := range []struct {
		out  *Tensor
		want string
	}{
		{&Tensor{Shape: []int64{1, 1, 8, 4}, Data: make([]float32, 32)}, "want [N,1,4,8]"},
		{&Tensor{Shape: []int64{1, 2, 4, 8}, Data: make([]float32, 64)}, "does not fit 32x16 inputs at stride 4"},
		{&Tensor{Shape: []int64{1, 1, 4, 8}, Data: make([]float32, 31)}, "holds 31 values, want 32"},
		{&Tensor{Shape: []int64{1, 1, 4, 8}, Data: nan}, "holds NaN at item 0, row 1, column 1"},
		{&Tensor{Shape: []int64{32}, Data: make([]float32, 32)}, "does not fit"},
	} {
		_, err := DensityFromOutput(tc.out, 0, &plan, 4)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.out.Shape, err, tc.want)
		}
	}
	if _, err := DensityFromOutput(&Tensor{Shape: []int64{1, 1, 4, 8}, Data: make([]float32, 32)}, 1, &plan, 4); err == nil {
		t.Error("batch item 1 of 1 was read")
	}
}
