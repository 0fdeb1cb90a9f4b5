package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"flowwatch/samples"
	"flowwatch/samples/synth"
)

// testModel is a tiny density model made for tests (random fixed weights:
// its counts mean nothing, the pipeline around it is what is checked).
const testModel = "../../vision/testdata/density_tiny"

func writeZones(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "zones.yaml")
	body := "zones:\n  - name: left\n    polygon: [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]\n  - name: right\n    polygon: [[0.5, 0], [1, 0], [1, 1], [0.5, 1]]\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func readCounts(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("counts CSV: %v", err)
	}
	if len(rows) == 0 || strings.Join(rows[0], ",") != "frame,pts_ms,zone,count" {
		t.Fatalf("counts CSV header = %v", rows[:min(1, len(rows))])
	}
	return rows[1:]
}

func TestAnalyzeVtestWritesRowPerFrameAndHeatmap(t *testing.T) {
	dir := t.TempDir()
	out, heat := filepath.Join(dir, "counts.csv"), filepath.Join(dir, "heat.png")
	var stdout bytes.Buffer
	err := run(context.Background(), []string{"analyze", samples.VtestSource, "--model", testModel,
		"--zones", writeZones(t), "--every", "10", "--frames", "200", "--batch", "4",
		"--out", out, "--heatmap", heat}, &stdout, io.Discard)
	if err != nil {
		t.Fatalf("analyze: %v", err)
	}
	rows := readCounts(t, out)
	var allFrames []int
	perFrame := map[int]map[string]float64{}
	for _, r := range rows {
		frame, _ := strconv.Atoi(r[0])
		pts, _ := strconv.Atoi(r[1])
		if pts != frame*100 {
			t.Errorf("frame %d has pts_ms %d, want %d (vtest is 10 fps)", frame, pts, frame*100)
		}
		c, err := strconv.ParseFloat(r[3], 64)
		if err != nil {
			t.Fatalf("row %v: count: %v", r, err)
		}
		if perFrame[frame] == nil {
			perFrame[frame] = map[string]float64{}
		}
		perFrame[frame][r[2]] = c
		if r[2] == "all" {
			allFrames = append(allFrames, frame)
		}
	}
	if len(allFrames) != 20 {
		t.Fatalf("got %d `all` rows, want 20 (frames 0..199, every 10th)", len(allFrames))
	}
	for i, f := range allFrames {
		if f != 10*i {
			t.Fatalf("all rows for frames %v, want 0, 10, 20, …", allFrames)
		}
		z := perFrame[f]
		if math.Abs(z["left"]+z["right"]-z["all"]) > 1e-3*math.Max(1, z["all"]) {
			t.Errorf("frame %d: left %.3f + right %.3f != all %.3f", f, z["left"], z["right"], z["all"])
		}
	}
	pf, err := os.Open(heat)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	img, err := png.Decode(pf)
	if err != nil {
		t.Fatalf("heatmap: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 768 || b.Dy() != 576 {
		t.Errorf("heatmap is %v, want vtest's 768x576", b)
	}
	if !strings.Contains(stdout.String(), "analysed 20 of 200 decoded frames") {
		t.Errorf("summary: %q", stdout.String())
	}
}

// TestAnalyzeComparesZonesWithGroundTruth checks that analyze on a
// synthetic sample prints per-zone MAE, and that the printed MAE is the one
// the CSV and the truth file give.
func TestAnalyzeComparesZonesWithGroundTruth(t *testing.T) {
	s, _ := samples.LookupBuiltin("synth-sparse")
	video := s.Path()
	if _, err := os.Stat(video); err != nil {
		t.Fatalf("sample %s missing (make setup prepares it): %v", video, err)
	}
	out := filepath.Join(t.TempDir(), "counts.csv")
	zones := writeZones(t)
	var stdout bytes.Buffer
	err := run(context.Background(), []string{"analyze", video, "--model", testModel,
		"--zones", zones, "--every", "15", "--frames", "60", "--out", out}, &stdout, io.Discard)
	if err != nil {
		t.Fatalf("analyze: %v", err)
	}
	truth, err := synth.LoadTruth(s.TruthPath())
	if err != nil {
		t.Fatal(err)
	}
	polys := map[string][][2]float64{
		"left":  {{0, 0}, {0.5, 0}, {0.5, 1}, {0, 1}},
		"right": {{0.5, 0}, {1, 0}, {1, 1}, {0.5, 1}},
	}
	absErr, n := map[string]float64{}, map[string]int{}
	for _, r := range readCounts(t, out) {
		frame, _ := strconv.Atoi(r[0])
		got, _ := strconv.ParseFloat(r[3], 64)
		want := float64(len(truth.Heads(frame)))
		if p, ok := polys[r[2]]; ok {
			want = float64(truth.CountIn(frame, p, s.Width, s.Height))
		}
		absErr[r[2]] += math.Abs(got - want)
		n[r[2]]++
	}
	for _, zone := range []string{"all", "left", "right"} {
		if n[zone] != 4 {
			t.Fatalf("zone %s has %d rows, want 4 (frames 0, 15, 30, 45)", zone, n[zone])
		}
		re := regexp.MustCompile(`(?m)^` + zone + `\s+4\s+([0-9.]+)\s`)
		m := re.FindStringSubmatch(stdout.String())
		if m == nil {
			t.Fatalf("no MAE line for zone %s in:\n%s", zone, stdout.String())
		}
		printed, _ := strconv.ParseFloat(m[1], 64)
		if want := absErr[zone] / 4; math.Abs(printed-want) > 0.002 {
			t.Errorf("zone %s: printed MAE %.3f, CSV and truth give %.3f", zone, printed, want)
		}
	}
}

func TestAnalyzeRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "c.csv")
	badZones := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badZones, []byte("zones:\n  - name: z\n    polygon: [[0,0],[1,1]]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"analyze", "--out", out}, "want one INPUT"},
		{[]string{"analyze", samples.VtestSource}, "--out counts.csv is required"},
		{[]string{"analyze", samples.VtestSource, "--every", "0", "--out", out}, "--every must be 1 or more"},
		{[]string{"analyze", filepath.Join(dir, "nope.mp4"), "--model", testModel, "--out", out}, "nope.mp4"},
		{[]string{"analyze", samples.VtestSource, "--model", "../../vision/testdata/bad_int64_output", "--out", out}, "int64"},
		{[]string{"analyze", samples.VtestSource, "--model", "no-such-model", "--out", out}, `model "no-such-model"`},
		{[]string{"analyze", samples.VtestSource, "--model", "classic", "--out", out}, "--pixels-per-person"},
		{[]string{"analyze", samples.VtestSource, "--model", testModel, "--zones", badZones, "--out", out}, "bad.yaml"},
	}
	for _, tc := range cases {
		err := run(context.Background(), tc.args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want one containing %q", tc.args[1:], err, tc.want)
		}
	}
}

func TestAnalyzeClassicEstimator(t *testing.T) {
	out := filepath.Join(t.TempDir(), "c.csv")
	var stdout bytes.Buffer
	err := run(context.Background(), []string{"analyze", samples.VtestSource, "--model", "classic",
		"--pixels-per-person", "1450", "--horizon", "-0.15", "--every", "25", "--frames", "400", "--out", out}, &stdout, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	rows := readCounts(t, out)
	if len(rows) != 16 {
		t.Fatalf("%d rows, want 16", len(rows))
	}
	var total float64
	for _, r := range rows[4:] { // past the background model's warm-up
		c, _ := strconv.ParseFloat(r[3], 64)
		total += c
	}
	if total <= 0 {
		t.Errorf("classic estimator counted nobody on vtest frames 100–375: %v", rows)
	}
	if !strings.Contains(stdout.String(), "classic estimator") {
		t.Errorf("summary does not say the classic estimator was used: %q", stdout.String())
	}
}

func TestAnalyzeNeverShowsPasswords(t *testing.T) {
	out := filepath.Join(t.TempDir(), "c.csv")
	var stdout, stderr bytes.Buffer
	port := freePort(t)
	input := fmt.Sprintf("rtsp://admin:pa#ss-s3cret@127.0.0.1:%d/gate", port)
	err := run(context.Background(), []string{"analyze", input, "--model", testModel, "--out", out}, &stdout, &stderr)
	if err == nil {
		t.Fatal("analyze of a closed port succeeded")
	}
	for _, text := range []string{err.Error(), stdout.String(), stderr.String()} {
		if strings.Contains(text, "s3cret") {
			t.Errorf("password shown: %q", text)
		}
	}
	for in, want := range map[string]string{
		"rtsp://u:p@cam.local:554/streams/main": "main",
		"rtsp://u:p@cam.local":                  "cam.local",
		"/data/clips/gate.mp4":                  "gate.mp4",
	} {
		if got := inputName(in); got != want {
			t.Errorf("inputName(%q) = %q, want %q", in, got, want)
		}
	}
}
