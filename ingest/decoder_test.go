package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// decVtest is the real clip Debian's opencv-doc ships: 768x576, 10 fps,
// 795 frames of pedestrians.
const decVtest = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"

// decNeedTools skips the test when ffmpeg, ffprobe or the sample clip are
// missing (make setup installs them).
func decNeedTools(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: %v", tool, err)
		}
	}
	if _, err := os.Stat(decVtest); err != nil {
		t.Skipf("sample clip missing: %v", err)
	}
}

// decRun runs a tool and returns its standard output.
func decRun(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// decEncode encodes the first frames of vtest (all when frames is 0) with
// the given output options into dir/name.
func decEncode(t testing.TB, dir, name string, frames int, opts ...string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	args := []string{"-v", "error", "-y", "-i", decVtest}
	if frames > 0 {
		args = append(args, "-frames:v", strconv.Itoa(frames))
	}
	args = append(args, "-an")
	args = append(args, opts...)
	decRun(t, "ffmpeg", append(args, out)...)
	return out
}

// decH264Opts encodes H.264 with a keyframe every gop frames and B-frames.
func decH264Opts(gop int) []string {
	return []string{"-c:v", "libx264", "-preset", "ultrafast", "-bf", "2", "-g", strconv.Itoa(gop),
		"-keyint_min", strconv.Itoa(gop), "-sc_threshold", "0", "-x264-params", "b-adapt=0"}
}

// decH265Opts encodes H.265 with a keyframe every gop frames.
func decH265Opts(gop int) []string {
	return []string{"-c:v", "libx265", "-preset", "ultrafast",
		"-x265-params", fmt.Sprintf("log-level=error:keyint=%d:min-keyint=%d:scenecut=0", gop, gop)}
}

// decProbeFrames counts the frames ffprobe decodes; keyOnly counts only
// key frames.
func decProbeFrames(t testing.TB, path string, keyOnly bool) int {
	t.Helper()
	args := []string{"-v", "error", "-select_streams", "v:0"}
	if keyOnly {
		args = append(args, "-skip_frame", "nokey")
	}
	args = append(args, "-count_frames", "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path)
	n, err := strconv.Atoi(strings.TrimSpace(string(decRun(t, "ffprobe", args...))))
	if err != nil {
		t.Fatalf("ffprobe frame count of %s: %v", path, err)
	}
	return n
}

// decProbeKeyPTS lists the presentation times of the key frames ffprobe
// finds, in milliseconds.
func decProbeKeyPTS(t testing.TB, path string) []int64 {
	t.Helper()
	out := decRun(t, "ffprobe", "-v", "error", "-select_streams", "v:0", "-skip_frame", "nokey",
		"-show_entries", "frame=pts_time", "-of", "csv=p=0", path)
	var ms []int64
	for _, line := range strings.Fields(string(out)) {
		sec, err := strconv.ParseFloat(strings.TrimSuffix(line, ","), 64)
		if err != nil {
			t.Fatalf("ffprobe key frame time %q of %s: %v", line, path, err)
		}
		ms = append(ms, int64(sec*1000+0.5))
	}
	return ms
}

// decFFmpegBGR is ffmpeg's own BGR24 rendering of frame n of path, scaled
// to w x h with libswscale's bilinear filter when that differs from the
// coded size.
func decFFmpegBGR(t testing.TB, path string, n, w, h int) []byte {
	t.Helper()
	vf := fmt.Sprintf("select=eq(n\\,%d),scale=%d:%d:flags=bilinear", n, w, h)
	pix := decRun(t, "ffmpeg", "-v", "error", "-i", path, "-vf", vf, "-frames:v", "1",
		"-f", "rawvideo", "-pix_fmt", "bgr24", "-")
	if len(pix) != 3*w*h {
		t.Fatalf("ffmpeg frame %d of %s: %d bytes, want %d", n, path, len(pix), 3*w*h)
	}
	return pix
}

// decMeanAbsDiff is the mean absolute difference between f's pixels and
// want (packed w x h BGR24).
func decMeanAbsDiff(t testing.TB, f *Frame, want []byte) float64 {
	t.Helper()
	if len(want) != 3*f.Width*f.Height {
		t.Fatalf("reference has %d bytes for a %dx%d frame", len(want), f.Width, f.Height)
	}
	var sum int64
	for y := range f.Height {
		row := f.Pix[y*f.Stride : y*f.Stride+3*f.Width]
		ref := want[y*3*f.Width : (y+1)*3*f.Width]
		for i := range row {
			d := int64(row[i]) - int64(ref[i])
			sum += max(d, -d)
		}
	}
	return float64(sum) / float64(len(want))
}

// decReadAUs reads every access unit of path.
func decReadAUs(t testing.TB, path string) (Codec, []*AccessUnit) {
	t.Helper()
	r, err := OpenAccessUnitFile(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var aus []*AccessUnit
	for {
		au, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return r.Codec(), aus
		}
		if err != nil {
			t.Fatal(err)
		}
		aus = append(aus, au)
	}
}

// decFrameMeta is what the tests keep of a frame after releasing it.
type decFrameMeta struct {
	w, h  int
	pts   time.Duration
	index int64
	key   bool
}

// decCollector keeps the metadata of every frame and the pixels of one.
type decCollector struct {
	frames  []decFrameMeta
	keepIdx int64
	kept    *Frame
}

func newDecCollector(keepIdx int64) *decCollector { return &decCollector{keepIdx: keepIdx} }

func (c *decCollector) emit(f *Frame) {
	c.frames = append(c.frames, decFrameMeta{w: f.Width, h: f.Height, pts: f.PTS, index: f.Index, key: f.Key})
	if f.Index == c.keepIdx && c.kept == nil {
		c.kept = f
		return
	}
	f.Release()
}

// decDecode feeds aus to a new decoder, flushes it, and collects the
// frames. Decode errors fail the test.
func decDecode(t testing.TB, codec Codec, aus []*AccessUnit, cfg DecoderConfig, keepIdx int64) (*decCollector, DecoderStats) {
	t.Helper()
	d, err := NewDecoder(codec, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	c := newDecCollector(keepIdx)
	for _, au := range aus {
		if err := d.Decode(au, c.emit); err != nil {
			t.Fatalf("access unit at %v: %v", au.PTS, err)
		}
	}
	if err := d.Flush(c.emit); err != nil {
		t.Fatal(err)
	}
	return c, d.Stats()
}

// decClipFrames is how many vtest frames a test encodes: all in the long
// run, fewer under -short.
func decClipFrames() int {
	if testing.Short() {
		return 160
	}
	return 0
}

func TestDecodeH264MatchesFFmpeg(t *testing.T) {
	decNeedTools(t)
	dir := t.TempDir()
	clip := decEncode(t, dir, "vtest.mp4", decClipFrames(), decH264Opts(30)...)
	wantAll := decProbeFrames(t, clip, false)
	wantKeyPTS := decProbeKeyPTS(t, clip)
	codec, aus := decReadAUs(t, clip)
	if codec != CodecH264 {
		t.Fatalf("codec %s, want H264", codec)
	}

	for _, threads := range []int{1, 2} {
		t.Run(fmt.Sprintf("all/threads=%d", threads), func(t *testing.T) {
			const check = 37 // a B-frame inside the second GOP
			c, st := decDecode(t, codec, aus, DecoderConfig{Threads: threads}, check)
			if len(c.frames) != wantAll || st.Decoded != int64(wantAll) || st.Emitted != int64(wantAll) {
				t.Fatalf("%d frames (stats %+v), ffprobe decodes %d", len(c.frames), st, wantAll)
			}
			for i, f := range c.frames {
				if f.index != int64(i) || f.w != 768 || f.h != 576 {
					t.Fatalf("frame %d: index %d size %dx%d", i, f.index, f.w, f.h)
				}
				if want := time.Duration(i) * 100 * time.Millisecond; f.pts != want {
					t.Fatalf("frame %d: PTS %v, want %v", i, f.pts, want)
				}
			}
			if c.kept == nil {
				t.Fatalf("frame %d not decoded", check)
			}
			defer c.kept.Release()
			if c.kept.Stride != 3*768 || len(c.kept.Pix) != 3*768*576 {
				t.Fatalf("stride %d, %d bytes", c.kept.Stride, len(c.kept.Pix))
			}
			diff := decMeanAbsDiff(t, c.kept, decFFmpegBGR(t, clip, check, 768, 576))
			t.Logf("frame %d: mean abs diff to ffmpeg %.4f", check, diff)
			if diff > 0.5 {
				t.Fatalf("frame %d differs from ffmpeg's by %.3f per byte", check, diff)
			}
		})
	}

	t.Run("keyframes", func(t *testing.T) {
		c, st := decDecode(t, codec, aus, DecoderConfig{Mode: DecodeKeyframes}, 0)
		if len(c.frames) != len(wantKeyPTS) || len(c.frames) != decProbeFrames(t, clip, true) {
			t.Fatalf("%d frames, ffprobe finds %d key frames", len(c.frames), len(wantKeyPTS))
		}
		for i, f := range c.frames {
			if !f.key || f.pts.Milliseconds() != wantKeyPTS[i] || f.index != int64(i) {
				t.Fatalf("key frame %d: key %v PTS %v index %d, ffprobe PTS %dms", i, f.key, f.pts, f.index, wantKeyPTS[i])
			}
		}
		if want := int64(len(aus) - len(wantKeyPTS)); st.Skipped != want {
			t.Fatalf("skipped %d access units, want %d", st.Skipped, want)
		}
	})

	t.Run("scaled", func(t *testing.T) {
		const check = 12
		c, _ := decDecode(t, codec, aus[:40], DecoderConfig{MaxWidth: 384, MaxHeight: 1000}, check)
		for _, f := range c.frames {
			if f.w != 384 || f.h != 288 {
				t.Fatalf("frame %d: %dx%d, want 384x288", f.index, f.w, f.h)
			}
		}
		defer c.kept.Release()
		diff := decMeanAbsDiff(t, c.kept, decFFmpegBGR(t, clip, check, 384, 288))
		t.Logf("scaled frame %d: mean abs diff to ffmpeg %.4f", check, diff)
		if diff > 2 {
			t.Fatalf("scaled frame %d differs from ffmpeg's by %.3f per byte", check, diff)
		}
	})

	t.Run("rate", func(t *testing.T) {
		c, st := decDecode(t, codec, aus, DecoderConfig{Rate: 2}, -1)
		if want := (wantAll + 4) / 5; len(c.frames) != want {
			t.Fatalf("%d frames at 2 fps out of %d at 10 fps, want %d", len(c.frames), wantAll, want)
		}
		if st.Decoded != int64(wantAll) {
			t.Fatalf("decoded %d, want every one of %d", st.Decoded, wantAll)
		}
		for i := 1; i < len(c.frames); i++ {
			if gap := c.frames[i].pts - c.frames[i-1].pts; gap < 500*time.Millisecond {
				t.Fatalf("frames %d and %d only %v apart", c.frames[i-1].index, c.frames[i].index, gap)
			}
		}
	})

	t.Run("keyframes-rate", func(t *testing.T) {
		// Key frames every 3 s, sampled at one per 5 s: every other one.
		c, st := decDecode(t, codec, aus, DecoderConfig{Mode: DecodeKeyframes, Rate: 0.2}, -1)
		if want := (len(wantKeyPTS) + 1) / 2; len(c.frames) != want || st.Decoded != int64(want) {
			t.Fatalf("%d frames (%d decoded), want %d", len(c.frames), st.Decoded, want)
		}
	})
}

func TestDecodeH265(t *testing.T) {
	decNeedTools(t)
	if !strings.Contains(string(decRun(t, "ffmpeg", "-hide_banner", "-encoders")), "libx265") {
		t.Skip("ffmpeg lacks libx265")
	}
	dir := t.TempDir()
	clip := decEncode(t, dir, "vtest-hevc.mp4", 60, decH265Opts(20)...)
	codec, aus := decReadAUs(t, clip)
	if codec != CodecH265 {
		t.Fatalf("codec %s, want H265", codec)
	}
	const check = 25
	c, _ := decDecode(t, codec, aus, DecoderConfig{}, check)
	if want := decProbeFrames(t, clip, false); len(c.frames) != want {
		t.Fatalf("%d frames, ffprobe decodes %d", len(c.frames), want)
	}
	defer c.kept.Release()
	if diff := decMeanAbsDiff(t, c.kept, decFFmpegBGR(t, clip, check, 768, 576)); diff > 0.5 {
		t.Fatalf("frame %d differs from ffmpeg's by %.3f per byte", check, diff)
	}
	k, _ := decDecode(t, codec, aus, DecoderConfig{Mode: DecodeKeyframes}, -1)
	if want := decProbeFrames(t, clip, true); len(k.frames) != want || want != 3 {
		t.Fatalf("%d key frames, ffprobe finds %d (3 expected)", len(k.frames), want)
	}
}

func TestDecodeResolutionChange(t *testing.T) {
	decNeedTools(t)
	dir := t.TempDir()
	opts := func(size string) []string {
		return append([]string{"-s", size, "-bsf:v", "h264_mp4toannexb", "-f", "h264"}, decH264Opts(10)...)
	}
	a := decEncode(t, dir, "a.h264", 20, opts("320x240")...)
	b := decEncode(t, dir, "b.h264", 20, opts("160x128")...)
	joined := filepath.Join(dir, "joined.h264")
	var both []byte
	for _, p := range []string{a, b} {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		both = append(both, data...)
	}
	if err := os.WriteFile(joined, both, 0o600); err != nil {
		t.Fatal(err)
	}
	codec, aus := decReadAUs(t, joined)
	c, st := decDecode(t, codec, aus, DecoderConfig{}, -1)
	sizes := map[string]int{}
	for i, f := range c.frames {
		sizes[fmt.Sprintf("%dx%d", f.w, f.h)]++
		if f.index != int64(i) {
			t.Fatalf("frame %d has index %d", i, f.index)
		}
	}
	if sizes["320x240"] != 20 || sizes["160x128"] != 20 || len(sizes) != 2 {
		t.Fatalf("frame sizes %v, want 20 of 320x240 and 20 of 160x128 (stats %+v)", sizes, st)
	}
	// Scaled output follows the change too.
	s, _ := decDecode(t, codec, aus, DecoderConfig{MaxWidth: 200}, -1)
	if s.frames[0].w != 200 || s.frames[0].h != 150 || s.frames[39].w != 160 || s.frames[39].h != 128 {
		t.Fatalf("scaled sizes %dx%d then %dx%d, want 200x150 then 160x128",
			s.frames[0].w, s.frames[0].h, s.frames[39].w, s.frames[39].h)
	}
}

// decCorruption damages one access unit.
type decCorruption struct {
	name string
	bad  func(au *AccessUnit, rng *rand.Rand) *AccessUnit
}

func decCorruptions() []decCorruption {
	random := func(rng *rand.Rand, n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return b
	}
	slice := func(au *AccessUnit) int {
		for i, n := range au.NALUs {
			if t := n[0] & 0x1f; t == 1 || t == 5 {
				return i
			}
		}
		return len(au.NALUs) - 1
	}
	return []decCorruption{
		{"garbage-slice", func(au *AccessUnit, rng *rand.Rand) *AccessUnit {
			// A non-IDR slice header followed by noise.
			return &AccessUnit{Codec: au.Codec, PTS: au.PTS, NALUs: [][]byte{append([]byte{0x41}, random(rng, 3000)...)}}
		}},
		{"garbage-idr", func(au *AccessUnit, rng *rand.Rand) *AccessUnit {
			// An IDR slice header followed by noise: a key access unit
			// that cannot be decoded.
			return &AccessUnit{Codec: au.Codec, PTS: au.PTS, Key: true,
				NALUs: [][]byte{append([]byte{0x65}, random(rng, 3000)...)}}
		}},
		{"truncated-slice", func(au *AccessUnit, rng *rand.Rand) *AccessUnit {
			out := *au
			out.NALUs = slices.Clone(au.NALUs)
			i := slice(au)
			out.NALUs[i] = out.NALUs[i][:len(out.NALUs[i])/3]
			return &out
		}},
		{"random-bytes", func(au *AccessUnit, rng *rand.Rand) *AccessUnit {
			return &AccessUnit{Codec: au.Codec, PTS: au.PTS, NALUs: [][]byte{random(rng, 5000)}}
		}},
		{"forbidden-bit", func(au *AccessUnit, rng *rand.Rand) *AccessUnit {
			return &AccessUnit{Codec: au.Codec, PTS: au.PTS, NALUs: [][]byte{{0xc1, 1, 2, 3}}}
		}},
		{"empty", func(au *AccessUnit, rng *rand.Rand) *AccessUnit {
			return &AccessUnit{Codec: au.Codec, PTS: au.PTS}
		}},
	}
}

func TestDecodeCorruptInput(t *testing.T) {
	decNeedTools(t)
	dir := t.TempDir()
	// No B-frames, so that frame order is access unit order.
	clip := decEncode(t, dir, "clip.mp4", 60, "-c:v", "libx264", "-preset", "ultrafast", "-bf", "0",
		"-g", "20", "-keyint_min", "20", "-sc_threshold", "0")
	codec, aus := decReadAUs(t, clip)
	if !aus[20].Key || !aus[40].Key {
		t.Fatalf("access units 20 and 40 should be key ones")
	}
	for _, tc := range decCorruptions() {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(len(tc.name))))
			var hooked []error
			d, err := NewDecoder(codec, DecoderConfig{OnError: func(err error) { hooked = append(hooked, err) }})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			c := newDecCollector(-1)
			var returned []error
			const badAt = 25
			for i, au := range aus {
				if i == badAt {
					au = tc.bad(au, rng)
				}
				if err := d.Decode(au, c.emit); err != nil {
					returned = append(returned, err)
					t.Logf("access unit %d: %v", i, err)
				}
			}
			if err := d.Flush(c.emit); err != nil {
				returned = append(returned, err)
			}
			st := d.Stats()
			if len(returned) == 0 || st.Errors == 0 || len(hooked) != int(st.Errors) {
				t.Fatalf("returned %d errors, counted %d, hook saw %d; want at least one, all counted and hooked",
					len(returned), st.Errors, len(hooked))
			}
			var after, before, between int
			for _, f := range c.frames {
				switch {
				case f.pts >= aus[40].PTS:
					after++
				case f.pts < aus[badAt].PTS:
					before++
				default:
					between++
				}
			}
			// Every picture before the damage and from the next key
			// frame on is decoded; none in between reaches emit.
			if before != badAt || after != len(aus)-40 || between != 0 {
				t.Fatalf("%d frames before the damage (want %d), %d from the next key frame (want %d), %d between (want 0)",
					before, badAt, after, len(aus)-40, between)
			}
			if st.Skipped == 0 {
				t.Fatalf("no access units skipped while waiting for the key frame: %+v", st)
			}
		})
	}
}

func TestDecoderConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		codec Codec
		cfg   DecoderConfig
		want  string
	}{
		{"VP8", DecoderConfig{}, `"VP8" is not supported`},
		{CodecH264, DecoderConfig{Mode: "some"}, `mode "some"`},
		{CodecH264, DecoderConfig{Rate: -1}, "rate -1"},
		{CodecH264, DecoderConfig{Threads: -2}, "thread count -2"},
		{CodecH264, DecoderConfig{MaxWidth: -1}, "max size -1x0"},
	} {
		d, err := NewDecoder(tc.codec, tc.cfg)
		if err == nil {
			d.Close()
			t.Fatalf("NewDecoder(%s, %+v) succeeded", tc.codec, tc.cfg)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("NewDecoder(%s, %+v): %v, want it to mention %s", tc.codec, tc.cfg, err, tc.want)
		}
	}
	d, err := NewDecoder(CodecH264, DecoderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	err = d.Decode(&AccessUnit{Codec: CodecH265, NALUs: [][]byte{{0x40, 1}}}, func(f *Frame) { f.Release() })
	if err == nil || !strings.Contains(err.Error(), "decoder is for H264") {
		t.Fatalf("H265 access unit into H264 decoder: %v", err)
	}
	d.Close()
	d.Close()
	if err := d.Decode(&AccessUnit{Codec: CodecH264}, nil); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Decode after Close: %v", err)
	}
}

func TestDecOutputSize(t *testing.T) {
	for _, tc := range []struct{ w, h, maxW, maxH, wantW, wantH int }{
		{1920, 1080, 0, 0, 1920, 1080},
		{1920, 1080, 960, 0, 960, 540},
		{1920, 1080, 0, 540, 960, 540},
		{1920, 1080, 1280, 540, 960, 540},
		{768, 576, 1920, 1080, 768, 576},
		{768, 576, 384, 1000, 384, 288},
		{1000, 10, 10, 0, 10, 1},
	} {
		if w, h := decOutputSize(tc.w, tc.h, tc.maxW, tc.maxH); w != tc.wantW || h != tc.wantH {
			t.Errorf("decOutputSize(%d, %d, %d, %d) = %dx%d, want %dx%d", tc.w, tc.h, tc.maxW, tc.maxH, w, h, tc.wantW, tc.wantH)
		}
	}
}

func TestDecSampler(t *testing.T) {
	s := decSampler{interval: 500 * time.Millisecond}
	var kept []time.Duration
	// 25 fps with a backwards jump (a restarted source) after 1.2 s.
	for i := range 60 {
		pts := time.Duration(i%30) * 40 * time.Millisecond
		if s.keep(pts) {
			kept = append(kept, pts)
		}
	}
	want := []time.Duration{0, 520, 1040, 0, 520, 1040}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if !slices.Equal(kept, want) {
		t.Fatalf("kept %v, want %v", kept, want)
	}
}
