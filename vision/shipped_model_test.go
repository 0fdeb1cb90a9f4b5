package vision

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"flowwatch/ingest"
)

// shippedVtest is the real clip the shipped model's reference counts were
// taken on (Debian's opencv-doc). vision may not import samples, so the
// path is spelled out.
const shippedVtest = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"

// shippedTolerance is how far a count through ONNX Runtime and the manifest
// may stray from the count PyTorch gave at export: 0.05 people plus 1%.
// The input is the same frame at the same size (vtest is 768x576, the
// manifest's max_side), so only float rounding separates the two; a wrong
// normalisation, colour order, stride or a broken export moves counts by
// whole people.
func shippedTolerance(want float64) float64 { return 0.05 + 0.01*math.Abs(want) }

// TestShippedDefaultModel loads models/default through its manifest with the
// ONNX Runtime runner and checks its count on a few fixed vtest frames against
// models/default/reference_counts.json, written by models/train/train.py
// export.
func TestShippedDefaultModel(t *testing.T) {
	lib := DefaultORTLibrary()
	if lib == "" {
		t.Skipf("no ONNX Runtime library: set $%s", ORTLibraryEnv)
	}
	if _, err := os.Stat(lib); err != nil {
		t.Skipf("ONNX Runtime library %s: %v", lib, err)
	}
	if _, err := os.Stat(shippedVtest); err != nil {
		t.Skipf("vtest clip: %v (install opencv-doc)", err)
	}
	dir := filepath.Join("..", "models", "default")
	data, err := os.ReadFile(filepath.Join(dir, "reference_counts.json"))
	if err != nil {
		t.Fatalf("reference counts: %v", err)
	}
	var ref struct {
		Counts map[string]float64 `json:"counts"`
	}
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatalf("reference counts: %v", err)
	}
	want := map[int64]float64{}
	var last int64
	for k, v := range ref.Counts {
		i, err := strconv.ParseInt(k, 10, 64)
		if err != nil {
			t.Fatalf("reference counts: frame %q: %v", k, err)
		}
		want[i] = v
		last = max(last, i)
	}
	if len(want) == 0 {
		t.Fatal("reference counts: no frames")
	}

	est, err := OpenModel(OpenConfig{Model: dir, Runner: RunnerConfig{Library: lib, Threads: 2}})
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	defer est.Close()
	if m := est.Manifest(); m.Name != "default" {
		t.Errorf("manifest name %q, want default", m.Name)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	src, err := ingest.OpenFile(ctx, shippedVtest, ingest.FileConfig{})
	if err != nil {
		t.Fatalf("open %s: %v", shippedVtest, err)
	}
	defer src.Close()
	got := map[int64]float64{}
	for {
		f, err := src.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("decode %s: %v", shippedVtest, err)
		}
		idx := f.Index
		if _, ok := want[idx]; ok {
			res, err := est.Estimate(ctx, []*ingest.Frame{f})
			if err != nil {
				f.Release()
				t.Fatalf("frame %d: %v", idx, err)
			}
			got[idx] = res[0].Count
		}
		f.Release()
		if idx >= last {
			break
		}
	}
	frames := make([]int64, 0, len(want))
	for i := range want {
		frames = append(frames, i)
	}
	sort.Slice(frames, func(a, b int) bool { return frames[a] < frames[b] })
	for _, i := range frames {
		g, ok := got[i]
		if !ok {
			t.Errorf("frame %d: not decoded", i)
			continue
		}
		if d := math.Abs(g - want[i]); d > shippedTolerance(want[i]) {
			t.Errorf("frame %d: count %.3f, export recorded %.3f (off by %.3f, tolerance %.3f)", i, g, want[i], d, shippedTolerance(want[i]))
		} else {
			t.Logf("frame %d: count %.3f, export recorded %.3f", i, g, want[i])
		}
	}
}
