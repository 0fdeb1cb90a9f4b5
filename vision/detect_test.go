package vision

import (
	"math"
	"strings"
	"testing"
)

// yoloBox is one anchor of a constructed detection output, in input
// pixels.
type yoloBox struct {
	b      [4]float32
	obj    float32 // YOLOX only
	scores []float32
}

// yolov8Output lays boxes out as [1, 4+classes, anchors].
func yolov8Output(classes int, boxes []yoloBox) *Tensor {
	vals, a := 4+classes, len(boxes)
	out := &Tensor{Shape: []int64{1, int64(vals), int64(a)}, Data: make([]float32, vals*a)}
	for i, bx := range boxes {
		for v := 0; v < 4; v++ {
			out.Data[v*a+i] = bx.b[v]
		}
		for c, s := range bx.scores {
			out.Data[(4+c)*a+i] = s
		}
	}
	return out
}

// yoloxOutput lays boxes out as [1, anchors, 5+classes].
func yoloxOutput(classes int, boxes []yoloBox) *Tensor {
	vals := 5 + classes
	out := &Tensor{Shape: []int64{1, int64(len(boxes)), int64(vals)}, Data: make([]float32, vals*len(boxes))}
	for i, bx := range boxes {
		row := out.Data[i*vals : (i+1)*vals]
		copy(row, bx.b[:])
		row[4] = bx.obj
		copy(row[5:], bx.scores)
	}
	return out
}

func detectManifest(format DetectFormat, box BoxFormat) *Manifest {
	m := testManifest(TaskDetection)
	m.Input.Width, m.Input.Height = 320, 320
	m.Output.Format, m.Output.Box = format, box
	return m
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-3 }

func TestDetectYOLOv8(t *testing.T) {
	m := detectManifest(YOLOv8, BoxCXCYWH)
	mustValid(t, m)
	// 640x480 into 320x320: scale 0.5, content 320x240.
	plan, err := m.Plan(640, 480)
	if err != nil {
		t.Fatal(err)
	}
	if plan.ScaledW != 320 || plan.ScaledH != 240 {
		t.Fatalf("plan %+v", plan)
	}
	out := yolov8Output(2, []yoloBox{
		{b: [4]float32{100, 100, 20, 40}, scores: []float32{0.9, 0.1}},  // kept
		{b: [4]float32{102, 101, 20, 40}, scores: []float32{0.8, 0.1}},  // overlaps the first: suppressed
		{b: [4]float32{200, 100, 20, 40}, scores: []float32{0.5, 0.9}},  // best class is not person
		{b: [4]float32{50, 50, 10, 20}, scores: []float32{0.2, 0.0}},    // under the threshold
		{b: [4]float32{160, 200, 30, 60}, scores: []float32{0.25, 0.0}}, // at the threshold: kept
		{b: [4]float32{300, 300, 20, 40}, scores: []float32{0.9, 0.0}},  // in the padding: dropped
	})
	dets, err := DetectionsFromOutput(out, 0, &plan, &m.Output)
	if err != nil {
		t.Fatal(err)
	}
	if len(dets) != 2 {
		t.Fatalf("%d detections, want 2: %+v", len(dets), dets)
	}
	d := dets[0]
	if !near(d.X0, 180) || !near(d.Y0, 160) || !near(d.X1, 220) || !near(d.Y1, 240) || d.Score != 0.9 {
		t.Errorf("first box %+v, want [180,160,220,240] at 0.9 in frame pixels", d)
	}
	if d := dets[1]; !near(d.X0, 290) || !near(d.Y1, 460) || d.Score != 0.25 {
		t.Errorf("second box %+v", d)
	}
}

func TestDetectYOLOXDecodedAndXYXY(t *testing.T) {
	m := detectManifest(YOLOX, BoxXYXY)
	mustValid(t, m)
	plan, err := m.Plan(320, 320)
	if err != nil {
		t.Fatal(err)
	}
	out := yoloxOutput(3, []yoloBox{
		{b: [4]float32{10, 20, 30, 60}, obj: 0.5, scores: []float32{0.9, 0.1, 0.1}},   // 0.45: kept
		{b: [4]float32{100, 20, 130, 60}, obj: 0.2, scores: []float32{0.9, 0.1, 0.1}}, // 0.18: dropped
		{b: [4]float32{200, 20, 230, 60}, obj: 0.9, scores: []float32{0.3, 0.6, 0.1}}, // a class-1 box
		{b: [4]float32{12, 22, 30, 60}, obj: 0.9, scores: []float32{0.4, 0.1, 0.1}},   // 0.36, overlaps the first
		{b: [4]float32{30, 20, 10, 60}, obj: 0.9, scores: []float32{0.9, 0.1, 0.1}},   // inverted: dropped
	})
	dets, err := DetectionsFromOutput(out, 0, &plan, &m.Output)
	if err != nil {
		t.Fatal(err)
	}
	if len(dets) != 1 || !near(dets[0].X0, 10) || !near(dets[0].Y1, 60) || !near(float64(dets[0].Score), 0.45) {
		t.Fatalf("detections %+v, want the one box [10,20,30,60] at 0.45", dets)
	}
	// A different person class picks the class-1 box instead.
	m.Output.PersonClass = 1
	dets, err = DetectionsFromOutput(out, 0, &plan, &m.Output)
	if err != nil {
		t.Fatal(err)
	}
	if len(dets) != 1 || !near(dets[0].X0, 200) {
		t.Fatalf("person class 1: %+v", dets)
	}
}

func TestDetectYOLOXRawGrid(t *testing.T) {
	m := testManifest(TaskDetection)
	m.Input.Width, m.Input.Height = 64, 32
	m.Output.Format, m.Output.Box = YOLOX, BoxCXCYWH
	m.Output.GridStrides = []int{8, 16}
	mustValid(t, m)
	plan, err := m.Plan(64, 32)
	if err != nil {
		t.Fatal(err)
	}
	// Stride 8: 8x4 = 32 anchors; stride 16: 4x2 = 8 anchors.
	boxes := make([]yoloBox, 40)
	for i := range boxes {
		boxes[i] = yoloBox{scores: []float32{0}}
	}
	// Stride-8 cell (3, 2) is anchor 2*8+3.
	boxes[19] = yoloBox{b: [4]float32{0.5, 0.5, float32(math.Log(2)), float32(math.Log(4))}, obj: 1, scores: []float32{0.9}}
	// Stride-16 cell (1, 1) is anchor 32 + 1*4+1.
	boxes[37] = yoloBox{b: [4]float32{0.25, 0, 0, 0}, obj: 1, scores: []float32{0.8}}
	dets, err := DetectionsFromOutput(yoloxOutput(1, boxes), 0, &plan, &m.Output)
	if err != nil {
		t.Fatal(err)
	}
	if len(dets) != 2 {
		t.Fatalf("detections %+v, want 2", dets)
	}
	// (3.5*8, 2.5*8) = (28, 20), 16x32 clipped to the frame.
	if d := dets[0]; !near(d.X0, 20) || !near(d.X1, 36) || !near(d.Y0, 4) || !near(d.Y1, 32) {
		t.Errorf("stride-8 box %+v, want [20,4,36,32]", d)
	}
	// (1.25*16, 1*16) = (20, 16), 16x16.
	if d := dets[1]; !near(d.X0, 12) || !near(d.X1, 28) || !near(d.Y0, 8) || !near(d.Y1, 24) {
		t.Errorf("stride-16 box %+v, want [12,8,28,24]", d)
	}
	short := yoloxOutput(1, boxes[:39])
	if _, err := DetectionsFromOutput(short, 0, &plan, &m.Output); err == nil || !strings.Contains(err.Error(), "make 40") {
		t.Errorf("39 anchors for 40 grid cells: %v", err)
	}
}

func TestDetectTilesCountOverlapOnce(t *testing.T) {
	m := testManifest(TaskDetection)
	m.Input.Tile = &TileSpec{Size: 64, Overlap: 32}
	mustValid(t, m)
	plan, err := m.Plan(96, 64)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Tiles) != 2 {
		t.Fatalf("plan %+v, want two tiles", plan)
	}
	// A person at frame x 40..56, foot at 48 in the overlap [32,64), is
	// seen by both tiles; the cut at 48 gives them to the right tile only.
	// Each item holds two anchors; the second scores 0.
	out := &Tensor{Shape: []int64{2, 5, 2}, Data: make([]float32, 20)}
	set := func(item int, b [4]float32, s float32) {
		base := item * 5 * 2
		for v := 0; v < 4; v++ {
			out.Data[base+v*2] = b[v]
		}
		out.Data[base+4*2] = s
	}
	set(0, [4]float32{48, 40, 16, 40}, 0.9)      // left tile, origin 0
	set(1, [4]float32{48 - 32, 40, 16, 40}, 0.8) // right tile, origin 32
	dets, err := DetectionsFromOutput(out, 0, &plan, &m.Output)
	if err != nil {
		t.Fatal(err)
	}
	if len(dets) != 1 || !near(dets[0].X0, 40) || !near(dets[0].X1, 56) || dets[0].Score != 0.8 {
		t.Fatalf("detections %+v, want the one person at [40,56] from the right tile", dets)
	}
}

func TestDetectRejectsBadOutputs(t *testing.T) {
	m := detectManifest(YOLOv8, BoxCXCYWH)
	m.Output.PersonClass = 2
	plan, err := m.Plan(320, 320)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		out  *Tensor
		want string
	}{
		{&Tensor{Shape: []int64{1, 6, 10}, Data: make([]float32, 60)}, "has 2 classes; the person class is 2"},
		{&Tensor{Shape: []int64{60}, Data: make([]float32, 60)}, "want rank 3"},
		{&Tensor{Shape: []int64{1, 7, 10}, Data: make([]float32, 69)}, "holds 69 values, want 70"},
	} {
		_, err := DetectionsFromOutput(tc.out, 0, &plan, &m.Output)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.out.Shape, err, tc.want)
		}
	}
}

func TestNMS(t *testing.T) {
	box := func(x0, y0, x1, y1 float64, s float32) Detection {
		return Detection{X0: x0, Y0: y0, X1: x1, Y1: y1, Score: s}
	}
	dets := []Detection{
		box(0, 0, 10, 10, 0.5),
		box(1, 0, 11, 10, 0.9),   // IoU with the first 9/11 = 0.82
		box(20, 0, 30, 10, 0.7),  // apart
		box(25, 0, 35, 10, 0.6),  // IoU with the third 5/15 = 0.33
		box(0, 20, 10, 30, 0.7),  // apart, same score as the third
		box(0, 20, 10, 30, 0.65), // identical to the fifth
	}
	kept := NMS(dets, 0.45)
	want := []float32{0.9, 0.7, 0.7, 0.6}
	if len(kept) != len(want) {
		t.Fatalf("kept %+v", kept)
	}
	for i, d := range kept {
		if d.Score != want[i] {
			t.Errorf("kept[%d] scores %g, want %g", i, d.Score, want[i])
		}
	}
	if kept[1].X0 != 20 || kept[2].Y0 != 20 {
		t.Errorf("equal scores out of input order: %+v", kept)
	}
	// At a threshold of 0.3 the fourth box goes too.
	if kept := NMS([]Detection{box(20, 0, 30, 10, 0.7), box(25, 0, 35, 10, 0.6)}, 0.3); len(kept) != 1 {
		t.Errorf("threshold 0.3: kept %+v", kept)
	}
	if got := IoU(box(0, 0, 10, 10, 0), box(5, 5, 15, 15, 0)); !near(got, 25.0/175) {
		t.Errorf("IoU %g, want %g", got, 25.0/175)
	}
}

func TestDetectDensityPutsMassAtFeet(t *testing.T) {
	dets := []Detection{
		{X0: 10, Y0: 10, X1: 30, Y1: 50},     // foot (20, 50)
		{X0: 600, Y0: 400, X1: 640, Y1: 480}, // foot on the bottom edge
		{X0: 100, Y0: 0, X1: 110, Y1: 47},
	}
	dm := DetectionDensity(dets, 640, 480)
	if dm.Sum() != 3 || float64(dm.Cols)*dm.CellW != 640 || float64(dm.Rows)*dm.CellH != 480 {
		t.Fatalf("map %dx%d of %gx%g summing to %g", dm.Cols, dm.Rows, dm.CellW, dm.CellH, dm.Sum())
	}
	for _, tc := range []struct{ x, y float64 }{{20, 50}, {620, 479}, {105, 47}} {
		c, r := int(tc.x/dm.CellW), int(tc.y/dm.CellH)
		if dm.Data[r*dm.Cols+c] != 1 {
			t.Errorf("no unit of mass in the cell of (%g, %g)", tc.x, tc.y)
		}
	}
}
