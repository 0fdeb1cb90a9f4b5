package samples

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// FrameRate is a frame rate as a fraction, Num frames every Den seconds
// (30000/1001 for NTSC video, 10/1 for vtest).
type FrameRate struct {
	Num int `json:"num"`
	Den int `json:"den"`
}

// ParseFrameRate reads a frame rate written as ffprobe writes it ("10/1",
// "30000/1001") or as a whole number ("25").
func ParseFrameRate(s string) (FrameRate, error) {
	num, den, found := strings.Cut(strings.TrimSpace(s), "/")
	if !found {
		den = "1"
	}
	n, errN := strconv.Atoi(num)
	d, errD := strconv.Atoi(den)
	r := FrameRate{Num: n, Den: d}
	if errN != nil || errD != nil || !r.Valid() {
		return FrameRate{}, fmt.Errorf("frame rate %q: want N or N/D with positive whole numbers", s)
	}
	return r, nil
}

// Valid reports whether both parts of the frame rate are positive.
func (r FrameRate) Valid() bool {
	return r.Num > 0 && r.Den > 0
}

// Float returns the frame rate in frames per second.
func (r FrameRate) Float() float64 {
	return float64(r.Num) / float64(r.Den)
}

// String writes the frame rate as N/D.
func (r FrameRate) String() string {
	return fmt.Sprintf("%d/%d", r.Num, r.Den)
}

// FrameTime returns when frame n starts, counted from frame 0, exactly to
// the nanosecond (rounded down) however large n grows.
func (r FrameRate) FrameTime(n int64) time.Duration {
	return time.Duration(r.ticks(n, int64(time.Second)))
}

// ticks returns the start of frame n in units of a clock running at
// clockRate ticks per second, rounded down, without overflow for any frame
// count a clip can reach.
func (r FrameRate) ticks(n, clockRate int64) int64 {
	whole := n * int64(r.Den) / int64(r.Num)
	rem := n * int64(r.Den) % int64(r.Num)
	return whole*clockRate + rem*clockRate/int64(r.Num)
}

// PrepareMethod says how Prepare made a stream from its source.
type PrepareMethod string

// The ways Prepare makes a stream.
const (
	// PrepareCopy: the source was H.264 without B-frames; its bitstream
	// was copied into Annex-B form.
	PrepareCopy PrepareMethod = "copy"
	// PrepareTranscode: the source was encoded again with libx264.
	PrepareTranscode PrepareMethod = "transcode"
)

// Prepared describes an H.264 Annex-B elementary stream made by Prepare: no
// B-frames, SPS and PPS in front of IDR pictures, and an IDR picture every
// second when transcoded (a copy keeps its source's keyframe interval). Its
// fields are stored in a JSON sidecar next to the stream (the stream's path
// with ".json" appended).
type Prepared struct {
	// Video is the path of the .h264 stream. It is not stored in the
	// sidecar; LoadPrepared fills it in.
	Video string `json:"-"`
	// Source is the absolute path of the file the stream was made from.
	Source string `json:"source"`
	// SourceSize and SourceModTime identify the version of Source the
	// stream was made from.
	SourceSize    int64     `json:"source_size"`
	SourceModTime time.Time `json:"source_mod_time"`
	// Method says whether the stream was copied or transcoded.
	Method PrepareMethod `json:"method"`
	// FrameRate is the stream's constant frame rate.
	FrameRate FrameRate `json:"frame_rate"`
	// Width and Height are the picture size in pixels.
	Width  int `json:"width"`
	Height int `json:"height"`
	// Frames is the number of access units (pictures) in the stream.
	Frames int `json:"frames"`
}

// Duration returns how long one pass over the stream lasts.
func (p Prepared) Duration() time.Duration {
	return p.FrameRate.FrameTime(int64(p.Frames))
}

// sidecarPath returns the path of the JSON sidecar of a prepared stream.
func sidecarPath(video string) string {
	return video + ".json"
}

// LoadPrepared reads the sidecar of the prepared stream at video and checks
// that the stream is there.
func LoadPrepared(video string) (Prepared, error) {
	data, err := os.ReadFile(sidecarPath(video))
	if err != nil {
		return Prepared{}, fmt.Errorf("load prepared stream %s: %w", video, err)
	}
	var p Prepared
	if err := json.Unmarshal(data, &p); err != nil {
		return Prepared{}, fmt.Errorf("load prepared stream %s: sidecar %s: %w", video, sidecarPath(video), err)
	}
	if (p.Method != PrepareCopy && p.Method != PrepareTranscode) ||
		!p.FrameRate.Valid() || p.Width <= 0 || p.Height <= 0 || p.Frames <= 0 {
		return Prepared{}, fmt.Errorf("load prepared stream %s: sidecar %s lacks method, frame rate, size or frame count",
			video, sidecarPath(video))
	}
	if _, err := os.Stat(video); err != nil {
		return Prepared{}, fmt.Errorf("load prepared stream %s: %w", video, err)
	}
	p.Video = video
	return p, nil
}

// prepareRecipe names the ffmpeg recipe below; it is part of the cache key,
// so a change to the recipe makes Prepare redo cached streams.
const prepareRecipe = "h264-annexb-v1"

// Prepare makes an H.264 Annex-B elementary stream from src, any file ffmpeg
// reads, for the simulator to loop. An H.264 source in 4:2:0 without
// B-frames is copied; anything else is transcoded with libx264 (baseline
// profile, no B-frames, an IDR picture every second, same frame rate and
// size). The stream and its sidecar go into cacheDir under a name keyed by
// the source's path, size and modification time, so a source is prepared
// once; a later call returns the cached stream.
func Prepare(ctx context.Context, src, cacheDir string) (Prepared, error) {
	abs, err := filepath.Abs(src)
	if err != nil {
		return Prepared{}, fmt.Errorf("prepare %s: %w", src, err)
	}
	info, err := os.Stat(abs)
	if err != nil {
		return Prepared{}, fmt.Errorf("prepare %s: %w", src, err)
	}
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%d\x00%d",
		prepareRecipe, abs, info.Size(), info.ModTime().UnixNano()))
	base := strings.TrimSuffix(filepath.Base(abs), filepath.Ext(abs))
	out := filepath.Join(cacheDir, base+"-"+hex.EncodeToString(sum[:8])+".h264")
	return prepareTo(ctx, abs, info, out)
}

// PrepareVtest prepares the built-in clip (VtestSource) into
// <mediaDir>/vtest.h264 and its sidecar, the file the vtest sample names.
// It does nothing when that stream is already there and was made from the
// same version of the source.
func PrepareVtest(ctx context.Context, mediaDir string) (Prepared, error) {
	info, err := os.Stat(VtestSource)
	if err != nil {
		return Prepared{}, fmt.Errorf("prepare vtest: %w (it comes with the Debian package opencv-doc; run make setup)", err)
	}
	s, _ := LookupBuiltin("vtest")
	return prepareTo(ctx, VtestSource, info, filepath.Join(mediaDir, s.File))
}

// prepareTo makes the stream at out from src unless out's sidecar says it
// was already made from this version of src.
func prepareTo(ctx context.Context, src string, info os.FileInfo, out string) (Prepared, error) {
	if p, err := LoadPrepared(out); err == nil && p.Source == src &&
		p.SourceSize == info.Size() && p.SourceModTime.Equal(info.ModTime()) {
		return p, nil
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return Prepared{}, fmt.Errorf("prepare %s: %w", src, err)
	}
	probe, err := probeVideo(ctx, src)
	if err != nil {
		return Prepared{}, fmt.Errorf("prepare %s: %w", src, err)
	}
	method := PrepareTranscode
	if probe.CodecName == "h264" && probe.HasBFrames == 0 &&
		(probe.PixFmt == "yuv420p" || probe.PixFmt == "yuvj420p") {
		method = PrepareCopy
	}

	tmp, err := os.CreateTemp(filepath.Dir(out), filepath.Base(out)+".*.tmp")
	if err != nil {
		return Prepared{}, fmt.Errorf("prepare %s: %w", src, err)
	}
	tmpName := tmp.Name()
	tmp.Close()
	defer os.Remove(tmpName)
	// Prepared media is shared like the rest of the sample media.
	if err := os.Chmod(tmpName, 0o644); err != nil {
		return Prepared{}, fmt.Errorf("prepare %s: %w", src, err)
	}

	if err := runFFmpeg(ctx, ffmpegArgs(src, tmpName, method, probe.FrameRate)); err != nil {
		return Prepared{}, fmt.Errorf("prepare %s: %s: %w", src, method, err)
	}
	stream, err := os.ReadFile(tmpName)
	if err != nil {
		return Prepared{}, fmt.Errorf("prepare %s: %w", src, err)
	}
	c, err := splitAccessUnits(stream)
	if err != nil {
		return Prepared{}, fmt.Errorf("prepare %s: output of %s: %w", src, method, err)
	}
	p := Prepared{
		Video:         out,
		Source:        src,
		SourceSize:    info.Size(),
		SourceModTime: info.ModTime().UTC(),
		Method:        method,
		FrameRate:     probe.FrameRate,
		Width:         c.width,
		Height:        c.height,
		Frames:        len(c.aus),
	}
	sidecar, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return Prepared{}, fmt.Errorf("prepare %s: encode sidecar: %w", src, err)
	}
	// The sidecar marks a complete stream: remove the old one first and
	// write the new one last, so a crash in between leaves no sidecar
	// describing the wrong stream.
	if err := os.Remove(sidecarPath(out)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return Prepared{}, fmt.Errorf("prepare %s: %w", src, err)
	}
	if err := os.Rename(tmpName, out); err != nil {
		return Prepared{}, fmt.Errorf("prepare %s: %w", src, err)
	}
	if err := writeFileAtomic(sidecarPath(out), append(sidecar, '\n')); err != nil {
		return Prepared{}, fmt.Errorf("prepare %s: %w", src, err)
	}
	return p, nil
}

// writeFileAtomic writes data to a temporary file beside path and renames it
// into place.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", f.Name(), err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", f.Name(), err)
	}
	return os.Rename(f.Name(), path)
}

// videoProbe is what Prepare needs to know of a source's first video stream.
type videoProbe struct {
	CodecName  string
	HasBFrames int
	PixFmt     string
	Width      int
	Height     int
	FrameRate  FrameRate
}

// probeVideo asks ffprobe about the first video stream of src.
func probeVideo(ctx context.Context, src string) (videoProbe, error) {
	args := []string{"-v", "error", "-select_streams", "v:0",
		"-show_entries", "stream=codec_name,has_b_frames,pix_fmt,width,height,r_frame_rate,avg_frame_rate",
		"-of", "json", "--", src}
	cmd := exec.CommandContext(ctx, "ffprobe", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &limitedWriter{buf: &stderr, max: 4096}
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.Output()
	if err != nil {
		return videoProbe{}, fmt.Errorf("ffprobe: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var res struct {
		Streams []struct {
			CodecName    string `json:"codec_name"`
			HasBFrames   int    `json:"has_b_frames"`
			PixFmt       string `json:"pix_fmt"`
			Width        int    `json:"width"`
			Height       int    `json:"height"`
			RFrameRate   string `json:"r_frame_rate"`
			AvgFrameRate string `json:"avg_frame_rate"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return videoProbe{}, fmt.Errorf("ffprobe: decode its output: %w", err)
	}
	if len(res.Streams) == 0 {
		return videoProbe{}, errors.New("ffprobe: no video stream")
	}
	s := res.Streams[0]
	rate, err := ParseFrameRate(s.AvgFrameRate)
	if err != nil {
		rate, err = ParseFrameRate(s.RFrameRate)
	}
	if err != nil || rate.Float() > 1000 {
		return videoProbe{}, fmt.Errorf("ffprobe: no usable frame rate (avg_frame_rate %q, r_frame_rate %q)",
			s.AvgFrameRate, s.RFrameRate)
	}
	return videoProbe{
		CodecName:  s.CodecName,
		HasBFrames: s.HasBFrames,
		PixFmt:     s.PixFmt,
		Width:      s.Width,
		Height:     s.Height,
		FrameRate:  rate,
	}, nil
}

// ffmpegArgs builds the ffmpeg command line that writes the stream of src
// into out as raw H.264 Annex-B.
func ffmpegArgs(src, out string, method PrepareMethod, rate FrameRate) []string {
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error", "-y",
		"-i", src, "-map", "0:v:0", "-an", "-sn", "-dn"}
	if method == PrepareCopy {
		// h264_mp4toannexb also puts SPS and PPS in front of IDR pictures
		// that lack them.
		args = append(args, "-c:v", "copy", "-bsf:v", "h264_mp4toannexb")
	} else {
		gop := strconv.Itoa(max(1, int(math.Round(rate.Float()))))
		args = append(args,
			"-vf", "crop=trunc(iw/2)*2:trunc(ih/2)*2",
			"-fps_mode", "cfr", "-r", rate.String(),
			"-c:v", "libx264", "-preset", "veryfast", "-profile:v", "baseline",
			"-pix_fmt", "yuv420p", "-bf", "0",
			"-g", gop, "-keyint_min", gop, "-sc_threshold", "0",
			"-x264-params", "repeat-headers=1")
	}
	return append(args, "-f", "h264", out)
}

// runFFmpeg runs ffmpeg with args and returns its error output on failure.
func runFFmpeg(ctx context.Context, args []string) error {
	cmd := exec.CommandContext(ctx, "ffmpeg", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &limitedWriter{buf: &stderr, max: 4096}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ffmpeg: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// limitedWriter keeps the first max bytes written to it and discards the
// rest, so a chatty child process cannot fill memory.
type limitedWriter struct {
	buf *bytes.Buffer
	max int
}

// Write keeps what fits and reports everything as written.
func (w *limitedWriter) Write(p []byte) (int, error) {
	if room := w.max - w.buf.Len(); room > 0 {
		w.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}
