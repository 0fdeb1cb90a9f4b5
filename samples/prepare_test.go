package samples

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// requireFFmpeg fails the test when ffmpeg or ffprobe is missing: the
// tests need them as real peers, and `make setup` installs them.
func requireFFmpeg(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found (make setup installs it): %v", tool, err)
		}
	}
}

// makeClip writes a test-pattern clip of the given length, size and rate
// with the given encoder options into dir and returns its path.
func makeClip(t *testing.T, dir, name string, seconds, rate int, size string, encode ...string) string {
	t.Helper()
	requireFFmpeg(t)
	out := filepath.Join(dir, name)
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "testsrc2=size=" + size + ":rate=" + strconv.Itoa(rate),
		"-t", strconv.Itoa(seconds)}
	args = append(append(args, encode...), out)
	if msg, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("make clip %s: %v: %s", out, err, msg)
	}
	return out
}

// idrWithoutParameterSets returns the index of the first IDR slice of an
// Annex-B stream whose picture is not preceded by an SPS and a PPS since
// the previous picture, or -1.
func idrWithoutParameterSets(stream []byte) int {
	var sps, pps bool
	for i, n := range nalUnits(stream) {
		switch n[0] & 0x1f {
		case 7:
			sps = true
		case 8:
			pps = true
		case 5:
			if firstSliceOfPicture(n) && (!sps || !pps) {
				return i
			}
			sps, pps = false, false
		case 1:
			sps, pps = false, false
		}
	}
	return -1
}

// probeStream returns ffprobe's view of the first video stream of a file or
// URL.
func probeStream(t *testing.T, ctx context.Context, input string, extra ...string) map[string]any {
	t.Helper()
	args := append([]string{"-v", "error"}, extra...)
	args = append(args, "-select_streams", "v:0", "-show_streams", "-of", "json", input)
	out, err := exec.CommandContext(ctx, "ffprobe", args...).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", input, err)
	}
	var res struct {
		Streams []map[string]any `json:"streams"`
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res.Streams) == 0 {
		t.Fatalf("ffprobe %s: no video stream in %s (%v)", input, out, err)
	}
	return res.Streams[0]
}

func TestPrepareTranscodesNonH264(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	src := makeClip(t, dir, "pattern.avi", 2, 25, "320x240", "-c:v", "mpeg4")
	cache := filepath.Join(dir, "cache")

	p, err := Prepare(ctx, src, cache)
	if err != nil {
		t.Fatal(err)
	}
	if p.Method != PrepareTranscode {
		t.Errorf("method %q, want %q", p.Method, PrepareTranscode)
	}
	if p.FrameRate != (FrameRate{Num: 25, Den: 1}) || p.Width != 320 || p.Height != 240 || p.Frames != 50 {
		t.Errorf("prepared %+v, want 25/1 fps, 320x240, 50 frames", p)
	}
	if filepath.Dir(p.Video) != cache || filepath.Ext(p.Video) != ".h264" {
		t.Errorf("video %s, want an .h264 file in %s", p.Video, cache)
	}
	st := probeStream(t, ctx, p.Video)
	if st["codec_name"] != "h264" || st["has_b_frames"] != float64(0) || st["width"] != float64(320) {
		t.Errorf("prepared stream is %v %v %v, want h264 without B-frames, 320 wide",
			st["codec_name"], st["has_b_frames"], st["width"])
	}
	for _, f := range []string{p.Video, p.Video + ".json"} {
		info, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o644 {
			t.Errorf("%s: mode %v, want -rw-r--r--", f, info.Mode())
		}
	}
	loaded, err := LoadPrepared(p.Video)
	if err != nil {
		t.Fatal(err)
	}
	if loaded != p {
		t.Errorf("sidecar holds %+v, Prepare returned %+v", loaded, p)
	}

	// A second call finds the cached stream and leaves it alone.
	before, err := os.Stat(p.Video)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Prepare(ctx, src, cache)
	if err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(again.Video)
	if err != nil {
		t.Fatal(err)
	}
	if again.Video != p.Video || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("second Prepare rewrote %s (was %s)", again.Video, p.Video)
	}

	// A changed source is prepared again, into a new cache entry.
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(src, later, later); err != nil {
		t.Fatal(err)
	}
	changed, err := Prepare(ctx, src, cache)
	if err != nil {
		t.Fatal(err)
	}
	if changed.Video == p.Video || !changed.SourceModTime.Equal(later) {
		t.Errorf("changed source gave %s modified %v, want a new entry for %v",
			changed.Video, changed.SourceModTime, later)
	}
}

func TestPrepareCopiesH264WithoutBFrames(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	src := makeClip(t, dir, "pattern.mp4", 2, 10, "320x240",
		"-c:v", "libx264", "-bf", "0", "-pix_fmt", "yuv420p", "-g", "10")

	p, err := Prepare(ctx, src, dir)
	if err != nil {
		t.Fatal(err)
	}
	if p.Method != PrepareCopy {
		t.Errorf("method %q, want %q", p.Method, PrepareCopy)
	}
	if p.Frames != 20 || p.FrameRate != (FrameRate{Num: 10, Den: 1}) || p.Width != 320 || p.Height != 240 {
		t.Errorf("prepared %+v, want 20 frames at 10/1, 320x240", p)
	}
	sidecar, err := os.ReadFile(p.Video + ".json")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(sidecar), `"method": "copy"`) {
		t.Errorf("sidecar does not record the copy: %s", sidecar)
	}
	// Every IDR picture of the copy carries its parameter sets.
	data, err := os.ReadFile(p.Video)
	if err != nil {
		t.Fatal(err)
	}
	if i := idrWithoutParameterSets(data); i >= 0 {
		t.Errorf("IDR NAL unit %d of the copy lacks SPS or PPS", i)
	}
}

func TestPrepareTranscodesH264WithBFrames(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	src := makeClip(t, dir, "bframes.mp4", 2, 10, "320x240", "-c:v", "libx264", "-bf", "2")
	p, err := Prepare(ctx, src, dir)
	if err != nil {
		t.Fatal(err)
	}
	if p.Method != PrepareTranscode || p.Frames != 20 {
		t.Errorf("prepared %+v, want 20 transcoded frames", p)
	}
}

func TestPrepareErrorsNameTheInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.mp4")
	if _, err := Prepare(ctx, missing, dir); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing source: error %v does not name %s", err, missing)
	}
	notVideo := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notVideo, []byte("no video here"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Prepare(ctx, notVideo, dir); err == nil || !strings.Contains(err.Error(), notVideo) {
		t.Errorf("not a video: error %v does not name %s", err, notVideo)
	}
	if _, err := LoadPrepared(filepath.Join(dir, "none.h264")); err == nil {
		t.Error("LoadPrepared of a missing stream: no error")
	}
}

func TestParseFrameRate(t *testing.T) {
	for in, want := range map[string]FrameRate{
		"10/1":       {10, 1},
		"30000/1001": {30000, 1001},
		"25":         {25, 1},
	} {
		got, err := ParseFrameRate(in)
		if err != nil || got != want {
			t.Errorf("ParseFrameRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0/0", "10/0", "-5/1", "x/1", "1/y"} {
		if _, err := ParseFrameRate(in); err == nil {
			t.Errorf("ParseFrameRate(%q): no error", in)
		}
	}
}

func TestFrameTime(t *testing.T) {
	ntsc := FrameRate{Num: 30000, Den: 1001}
	if got, want := ntsc.FrameTime(30000), 1001*time.Second; got != want {
		t.Errorf("frame 30000 at 30000/1001: %v, want %v", got, want)
	}
	ten := FrameRate{Num: 10, Den: 1}
	if got := ten.FrameTime(795); got != 79500*time.Millisecond {
		t.Errorf("frame 795 at 10 fps: %v, want 79.5s", got)
	}
	// Years of frames neither overflow nor lose precision.
	frames := int64(30000 * 1_000_000)
	if got, want := ntsc.ticks(frames+1, 90000), int64(1001*1_000_000)*90000+3003; got != want {
		t.Errorf("RTP ticks of frame %d: %d, want %d", frames+1, got, want)
	}
	if got := ten.ticks(3, 90000); got != 27000 {
		t.Errorf("RTP ticks of frame 3 at 10 fps: %d, want 27000", got)
	}
}
