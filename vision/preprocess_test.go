package vision

import (
	"math"
	"testing"

	"flowwatch/ingest"
)

// testManifest returns a valid manifest for tests to adjust.
func testManifest(task Task) *Manifest {
	m := &Manifest{
		Name: "test",
		File: "test.onnx",
		Task: task,
		Input: InputSpec{
			Name:   "input",
			Layout: NCHW,
			Color:  RGB,
			Scale:  1.0 / 255,
			Mean:   Triple{0.5, 0.25, 0},
			Std:    Triple{0.5, 0.25, 2},
		},
		Output: OutputSpec{Name: "out"},
	}
	if task == TaskDensity {
		m.Output.Stride = 1
		m.Output.SumsToCount = true
	} else {
		m.Output.Format = YOLOv8
		m.Output.Box = BoxCXCYWH
		m.Output.ScoreThreshold = 0.25
		m.Output.NMSThreshold = 0.45
	}
	return m
}

// mustValid fails the test when m breaks the manifest rules.
func mustValid(t testing.TB, m *Manifest) {
	t.Helper()
	if p := m.validate(); len(p) > 0 {
		t.Fatalf("test manifest invalid: %+v", p)
	}
}

// newFrame returns a w x h frame with the given stride whose pixel (x, y)
// has the color px(x, y) as B, G, R; the padding bytes of each row are 0xEE.
func newFrame(w, h, stride int, px func(x, y int) [3]byte) *ingest.Frame {
	f := &ingest.Frame{Width: w, Height: h, Stride: stride, Pix: make([]byte, h*stride)}
	for i := range f.Pix {
		f.Pix[i] = 0xEE
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := px(x, y)
			copy(f.Pix[y*stride+3*x:], c[:])
		}
	}
	return f
}

func gradient(x, y int) [3]byte {
	return [3]byte{byte(x * 7), byte(y * 13), byte(x + y)}
}

func TestPreprocessNormalizesAndLaysOut(t *testing.T) {
	const w, h = 5, 3
	for _, layout := range []Layout{NCHW, NHWC} {
		for _, color := range []ColorOrder{RGB, BGR} {
			for _, stride := range []int{3 * w, 3*w + 3, 3*w + 1} {
				m := testManifest(TaskDensity)
				m.Input.Layout, m.Input.Color = layout, color
				mustValid(t, m)
				plan, err := m.Plan(w, h)
				if err != nil {
					t.Fatal(err)
				}
				if plan.ScaledW != w || plan.ScaledH != h || plan.InputW != w || plan.InputH != h {
					t.Fatalf("plan %+v, want the native size", plan)
				}
				f := newFrame(w, h, stride, gradient)
				p := NewPreprocessor(m)
				dst := make([]float32, plan.InputLen())
				if err := p.Frame(f, &plan, dst); err != nil {
					t.Fatal(err)
				}
				p.Close()
				for y := 0; y < h; y++ {
					for x := 0; x < w; x++ {
						bgr := gradient(x, y)
						for c := 0; c < 3; c++ {
							b := bgr[c]
							if color == RGB {
								b = bgr[2-c]
							}
							want := float32((float64(b)/255 - m.Input.Mean[c]) / m.Input.Std[c])
							i := c*w*h + y*w + x
							if layout == NHWC {
								i = (y*w+x)*3 + c
							}
							if got := dst[i]; math.Abs(float64(got-want)) > 1e-6 {
								t.Fatalf("%s %s stride %d: pixel (%d,%d) channel %d = %g, want %g", layout, color, stride, x, y, c, got, want)
							}
						}
					}
				}
			}
		}
	}
}

// whiteBox is black with white pixels in [100,150) x [50,100).
func whiteBox(x, y int) [3]byte {
	if x >= 100 && x < 150 && y >= 50 && y < 100 {
		return [3]byte{255, 255, 255}
	}
	return [3]byte{}
}

func TestPreprocessResizeKeepsAspectAndPlace(t *testing.T) {
	m := testManifest(TaskDensity)
	m.Input.Mean, m.Input.Std, m.Input.Scale = Triple{}, Triple{1, 1, 1}, 1
	m.Input.MaxSide = 100
	m.Input.Multiple = 10
	mustValid(t, m)
	plan, err := m.Plan(200, 100)
	if err != nil {
		t.Fatal(err)
	}
	if plan.ScaledW != 100 || plan.ScaledH != 50 || plan.ScaleX() != 0.5 || plan.ScaleY() != 0.5 {
		t.Fatalf("plan %+v, want 100x50 at scale 0.5", plan)
	}
	// The three ways a frame reaches OpenCV (packed, a region of a wider
	// Mat, a copy) must give the same input.
	var first []float32
	for _, stride := range []int{600, 603, 601} {
		p := NewPreprocessor(m)
		dst := make([]float32, plan.InputLen())
		if err := p.Frame(newFrame(200, 100, stride, whiteBox), &plan, dst); err != nil {
			t.Fatal(err)
		}
		p.Close()
		for y := 0; y < 50; y++ {
			for x := 0; x < 100; x++ {
				v := dst[y*100+x]
				inside := x >= 50 && x < 75 && y >= 25 && y < 50
				if inside && v != 255 || !inside && v != 0 {
					t.Fatalf("stride %d: scaled pixel (%d,%d) = %g; the white box should cover [50,75)x[25,50) exactly", stride, x, y, v)
				}
			}
		}
		if first == nil {
			first = dst
		} else {
			for i := range dst {
				if dst[i] != first[i] {
					t.Fatalf("stride %d: value %d differs from the packed frame's", stride, i)
				}
			}
		}
	}
}

func TestPreprocessLetterboxPads(t *testing.T) {
	m := testManifest(TaskDetection)
	m.Input.Width, m.Input.Height = 64, 64
	m.Input.Pad = 114
	m.Input.Mean, m.Input.Std = Triple{}, Triple{1, 1, 1}
	mustValid(t, m)
	plan, err := m.Plan(200, 100)
	if err != nil {
		t.Fatal(err)
	}
	if plan.ScaledW != 64 || plan.ScaledH != 32 || plan.InputW != 64 || plan.InputH != 64 {
		t.Fatalf("plan %+v, want 64x32 in a 64x64 input", plan)
	}
	p := NewPreprocessor(m)
	defer p.Close()
	dst := make([]float32, plan.InputLen())
	if err := p.Frame(newFrame(200, 100, 600, whiteBox), &plan, dst); err != nil {
		t.Fatal(err)
	}
	pad := float32(114.0 / 255)
	for c := 0; c < 3; c++ {
		for y := 0; y < 64; y++ {
			for x := 0; x < 64; x++ {
				v := dst[c*64*64+y*64+x]
				switch {
				case y >= 32 && v != pad:
					t.Fatalf("padding (%d,%d) = %g, want %g", x, y, v, pad)
				case y < 32 && x == 40 && y == 24 && v != 1:
					t.Fatalf("inside the box (%d,%d) = %g, want 1", x, y, v)
				case y < 32 && x == 10 && y == 10 && v != 0:
					t.Fatalf("outside the box (%d,%d) = %g, want 0", x, y, v)
				}
			}
		}
	}
}

func TestPreprocessBatchAndTiles(t *testing.T) {
	m := testManifest(TaskDensity)
	m.Input.Mean, m.Input.Std, m.Input.Scale = Triple{}, Triple{1, 1, 1}, 1
	m.Input.Tile = &TileSpec{Size: 64, Overlap: 16}
	mustValid(t, m)
	plan, err := m.Plan(150, 100)
	if err != nil {
		t.Fatal(err)
	}
	if !plan.Tiled() || plan.ScaledW != 150 || plan.InputW != 64 {
		t.Fatalf("plan %+v, want native tiles of 64", plan)
	}
	frames := []*ingest.Frame{newFrame(150, 100, 450, gradient), newFrame(150, 100, 452, func(x, y int) [3]byte { return gradient(y, x) })}
	n := plan.InputLen()
	dst := make([]float32, len(frames)*len(plan.Tiles)*n)
	p := NewPreprocessor(m)
	defer p.Close()
	if err := p.Batch(frames, &plan, dst); err != nil {
		t.Fatal(err)
	}
	for fi, f := range frames {
		for ti, tile := range plan.Tiles {
			in := dst[(fi*len(plan.Tiles)+ti)*n:]
			for _, pt := range [][2]int{{0, 0}, {tile.Rect.Dx() - 1, tile.Rect.Dy() - 1}, {5, 7}} {
				x, y := tile.Rect.Min.X+pt[0], tile.Rect.Min.Y+pt[1]
				red := f.Pix[y*f.Stride+3*x+2]
				if got := in[pt[1]*64+pt[0]]; got != float32(red) {
					t.Fatalf("frame %d tile %d (%v): input (%d,%d) = %g, frame (%d,%d) red = %d", fi, ti, tile.Rect, pt[0], pt[1], got, x, y, red)
				}
			}
		}
	}
	if err := p.Batch(frames, &plan, dst[:len(dst)-1]); err == nil {
		t.Error("a short batch buffer was accepted")
	}
	if err := p.Frame(newFrame(100, 100, 300, gradient), &plan, dst); err == nil {
		t.Error("a frame of the wrong size was accepted")
	}
	short := newFrame(150, 100, 450, gradient)
	short.Pix = short.Pix[:len(short.Pix)-10]
	if err := p.Frame(short, &plan, dst); err == nil {
		t.Error("a frame with too few bytes was accepted")
	}
}

func TestPreprocessReusesBuffers(t *testing.T) {
	m := testManifest(TaskDensity)
	m.Input.MaxSide = 320
	m.Input.Multiple = 32
	mustValid(t, m)
	plan, err := m.Plan(768, 576)
	if err != nil {
		t.Fatal(err)
	}
	f := newFrame(768, 576, 768*3, gradient)
	p := NewPreprocessor(m)
	defer p.Close()
	dst := make([]float32, plan.InputLen())
	if err := p.Frame(f, &plan, dst); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(5, func() {
		if err := p.Frame(f, &plan, dst); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%g Go allocations per frame of a steady size, want 0", allocs)
	}
}
