package synth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// needTools fails the test when ffmpeg or ffprobe is missing: setup installs
// them, and Generate cannot be checked without them.
func needTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (make setup installs it): %v", tool, err)
		}
	}
}

func TestGenerate(t *testing.T) {
	needTools(t)
	dir := t.TempDir()
	video := filepath.Join(dir, "dense.mp4")
	truthPath := filepath.Join(dir, "dense.truth.csv")
	cfg := smallConfig(t, PresetDense, 320, 180, 2*time.Second)
	if err := Generate(context.Background(), cfg, video, truthPath); err != nil {
		t.Fatal(err)
	}
	truth, err := LoadTruth(truthPath)
	if err != nil {
		t.Fatal(err)
	}
	if truth.Frames() != 30 {
		t.Errorf("truth has %d frames, want 30", truth.Frames())
	}
	for f := range truth.Frames() {
		if n := len(truth.Heads(f)); n < cfg.MinVisible || n > cfg.MaxVisible {
			t.Fatalf("frame %d: %d heads, want %d..%d", f, n, cfg.MinVisible, cfg.MaxVisible)
		}
	}

	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames",
		"-show_entries", "stream=codec_name,width,height,nb_read_frames,pix_fmt,r_frame_rate",
		"-of", "json", video).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", video, err)
	}
	var probe struct {
		Streams []struct {
			Codec  string `json:"codec_name"`
			Width  int    `json:"width"`
			Height int    `json:"height"`
			Frames string `json:"nb_read_frames"`
			PixFmt string `json:"pix_fmt"`
			Rate   string `json:"r_frame_rate"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &probe); err != nil || len(probe.Streams) != 1 {
		t.Fatalf("ffprobe output %s: %v", out, err)
	}
	s := probe.Streams[0]
	frames, _ := strconv.Atoi(s.Frames)
	if s.Codec != "h264" || s.Width != 320 || s.Height != 180 || frames != truth.Frames() || s.PixFmt != "yuv420p" || s.Rate != "15/1" {
		t.Errorf("ffprobe: %+v; want h264 320x180 yuv420p 15/1 with %d frames", s, truth.Frames())
	}
	meta, ok := truth.Sidecar()
	if !ok || meta.Video != "dense.mp4" || meta.Truth != "dense.truth.csv" || meta.Frames != 30 || meta.Preset != PresetDense {
		t.Errorf("sidecar = %+v, %v; want one naming dense.mp4 and dense.truth.csv, 30 frames", meta, ok)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("folder holds %v, want the video, the truth and the sidecar only", names)
	}

	// Decoded frame k is rendered frame k: each decoded frame is closer to
	// the rendered frame with its own index than to its neighbours.
	decoded, err := exec.Command("ffmpeg", "-v", "error", "-i", video, "-f", "rawvideo", "-pix_fmt", "rgb24", "-").Output()
	if err != nil {
		t.Fatalf("decode %s: %v", video, err)
	}
	size := 320 * 180 * 3
	if len(decoded) != size*30 {
		t.Fatalf("decoded %d bytes, want %d frames of %d", len(decoded), 30, size)
	}
	var rendered [][]byte
	if err := Render(cfg, func(i int, img *image.RGBA, _ []Head) error {
		b := make([]byte, size)
		packRGB(b, img)
		rendered = append(rendered, b)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []int{1, 15, 28} {
		d := decoded[k*size : (k+1)*size]
		own, prev, next := mse(d, rendered[k]), mse(d, rendered[k-1]), mse(d, rendered[k+1])
		if own >= prev || own >= next {
			t.Errorf("decoded frame %d: error against rendered %d/%d/%d = %.1f/%.1f/%.1f, want the smallest at %d",
				k, k-1, k, k+1, prev, own, next, k)
		}
		if own > 150 {
			t.Errorf("decoded frame %d differs from the rendered one by MSE %.1f, want under 150 (PSNR above 26 dB)", k, own)
		}
	}
}

// mse is the mean squared difference of two byte slices.
func mse(a, b []byte) float64 {
	var s float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		s += d * d
	}
	return s / float64(len(a))
}

func TestGenerateReportsFFmpegFailure(t *testing.T) {
	needTools(t)
	dir := t.TempDir()
	cfg := smallConfig(t, PresetSparse, 160, 96, time.Second)
	// ffmpeg knows no container for this extension.
	err := Generate(context.Background(), cfg, filepath.Join(dir, "clip.nosuchformat"), filepath.Join(dir, "clip.csv"))
	if err == nil || !strings.Contains(err.Error(), "ffmpeg") || !strings.Contains(err.Error(), "nosuchformat") {
		t.Fatalf("Generate to an unknown format: error = %v, want ffmpeg's complaint", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("failed Generate left %d files", len(entries))
	}
}

func TestGenerateStopsOnCancel(t *testing.T) {
	needTools(t)
	dir := t.TempDir()
	cfg := smallConfig(t, PresetSparse, 160, 96, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := Generate(ctx, cfg, filepath.Join(dir, "v.mp4"), filepath.Join(dir, "v.csv"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Generate with a deadline: error = %v, want the deadline", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("Generate took %s to stop after its deadline", d)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("cancelled Generate left %d files", len(entries))
	}
}

func TestTailBufferKeepsTheEnd(t *testing.T) {
	tb := &tailBuffer{limit: 8}
	for _, s := range []string{"abc", "defgh", "ijkl"} {
		if n, err := tb.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if got := tb.text(); got != "efghijkl" {
		t.Errorf("text() = %q, want %q", got, "efghijkl")
	}
	if got := (&tailBuffer{limit: 8}).text(); !bytes.Contains([]byte(got), []byte("no error output")) {
		t.Errorf("empty text() = %q", got)
	}
}

func BenchmarkRenderDense(b *testing.B)  { benchmarkRender(b, PresetDense) }
func BenchmarkRenderSparse(b *testing.B) { benchmarkRender(b, PresetSparse) }

// benchmarkRender times drawing frames of a preset at 1280x720 (stepping
// the crowd included, the one-off background excluded) and reports ms per
// frame and the ratio to copying the background alone.
func benchmarkRender(b *testing.B, preset string) {
	cfg, err := PresetConfig(preset)
	if err != nil {
		b.Fatal(err)
	}
	r, err := newRenderer(cfg, true)
	if err != nil {
		b.Fatal(err)
	}
	// Reference: the memory traffic every frame needs anyway.
	const refN = 200
	refStart := time.Now()
	for range refN {
		copy(r.img.Pix, r.bg.pix)
	}
	ref := time.Since(refStart) / refN
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		r.crowd.step(r.dt)
		r.draw(i)
	}
	per := time.Since(start) / time.Duration(b.N)
	b.ReportMetric(float64(per.Microseconds())/1000, "ms/frame")
	b.ReportMetric(float64(per)/float64(ref), "x_bgcopy")
	b.ReportMetric(float64(len(r.crowd.people)), "people")
}
