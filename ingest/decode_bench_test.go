package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// decBenchClip is the benchmark input: vtest played at 25 fps and scaled to
// 1080p, so that it moves like a real scene, 10 s of H.264 (libx264
// veryfast, a key frame every 2 s, no B-frames, as cameras send it), read
// into memory as access units.
type decBenchClip struct {
	path    string
	aus     []*AccessUnit
	frames  int
	keys    int
	seconds float64
}

// decBenchClipName names the cached clip after everything that shapes it.
const decBenchClipName = "vtest-1080p25-10s-x264-veryfast-g50-bf0.mp4"

// decBenchInput makes the clip once per process. The encoded file is kept
// in the user cache directory (flowwatch/bench) for later runs; deleting it
// is safe.
var decBenchInput = sync.OnceValues(func() (*decBenchClip, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "flowwatch", "bench")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, decBenchClipName)
	if _, err := os.Stat(path); err != nil {
		tmp := path + ".part.mp4"
		cmd := exec.Command("ffmpeg", "-v", "error", "-y", "-r", "25", "-i", decVtest, "-t", "10",
			"-vf", "scale=1920:1080:flags=lanczos", "-c:v", "libx264", "-preset", "veryfast",
			"-g", "50", "-keyint_min", "50", "-sc_threshold", "0", "-bf", "0", "-pix_fmt", "yuv420p", tmp)
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("encode benchmark clip: %v: %s", err, out)
		}
		if err := os.Rename(tmp, path); err != nil {
			return nil, err
		}
	}
	r, err := OpenAccessUnitFile(context.Background(), path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	clip := &decBenchClip{path: path}
	for {
		au, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		clip.aus = append(clip.aus, au)
		if au.Key {
			clip.keys++
		}
	}
	clip.frames = len(clip.aus)
	clip.seconds = float64(clip.frames) / 25
	return clip, nil
})

// decFFmpegReference is the CPU time ffmpeg itself spends per second of
// the clip decoding it with one thread (the best of three runs, each a
// separate process measured by its rusage), in milliseconds.
var decFFmpegReference = sync.OnceValues(func() (float64, error) {
	clip, err := decBenchInput()
	if err != nil {
		return 0, err
	}
	best := time.Duration(-1)
	for range 3 {
		cpu, err := decFFmpegCPU(clip.path)
		if err != nil {
			return 0, err
		}
		if best < 0 || cpu < best {
			best = cpu
		}
	}
	return float64(best) / 1e6 / clip.seconds, nil
})

// decFFmpegCPU runs ffmpeg decoding path with one thread to the null
// muxer and returns the CPU time (user and system) it used.
func decFFmpegCPU(path string) (time.Duration, error) {
	cmd := exec.Command("ffmpeg", "-v", "error", "-threads", "1", "-i", path, "-f", "null", "-")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("ffmpeg reference: %v: %s", err, stderr.String())
	}
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
}

// decProcessCPU is the CPU time (user and system) this process used so far.
func decProcessCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// decBenchSetup skips without the tools and returns the clip and the
// ffmpeg reference.
func decBenchSetup(b *testing.B) (*decBenchClip, float64) {
	decNeedTools(b)
	clip, err := decBenchInput()
	if err != nil {
		b.Fatal(err)
	}
	ref, err := decFFmpegReference()
	if err != nil {
		b.Fatal(err)
	}
	return clip, ref
}

// decBenchDecode decodes the whole clip b.N times through the Decoder with
// one thread and reports CPU milliseconds per second of video, and that
// against ffmpeg's.
func decBenchDecode(b *testing.B, cfg DecoderConfig, wantFrames func(*decBenchClip) int) {
	clip, ref := decBenchSetup(b)
	cfg.Threads = 1
	emitted := 0
	emit := func(f *Frame) {
		emitted++
		f.Release()
	}
	b.ResetTimer()
	start := decProcessCPU(b)
	for range b.N {
		d, err := NewDecoder(CodecH264, cfg)
		if err != nil {
			b.Fatal(err)
		}
		emitted = 0
		for _, au := range clip.aus {
			if err := d.Decode(au, emit); err != nil {
				b.Fatal(err)
			}
		}
		if err := d.Flush(emit); err != nil {
			b.Fatal(err)
		}
		d.Close()
		if want := wantFrames(clip); emitted != want {
			b.Fatalf("%d frames, want %d", emitted, want)
		}
	}
	cpu := decProcessCPU(b) - start
	b.StopTimer()
	perSecond := float64(cpu) / 1e6 / float64(b.N) / clip.seconds
	b.ReportMetric(perSecond, "cpu-ms/video-s")
	b.ReportMetric(perSecond/ref, "x-ffmpeg")
}

// BenchmarkDecodeAll decodes every access unit of the 1080p25 clip; the
// sub-benchmarks convert every picture to BGR24 at 1080p, or sample 2 fps
// scaled to 960 pixels wide as analysis does.
func BenchmarkDecodeAll(b *testing.B) {
	b.Run("bgr-every-frame", func(b *testing.B) {
		decBenchDecode(b, DecoderConfig{}, func(c *decBenchClip) int { return c.frames })
	})
	b.Run("2fps-960w", func(b *testing.B) {
		decBenchDecode(b, DecoderConfig{Rate: 2, MaxWidth: 960}, func(c *decBenchClip) int { return int(2 * c.seconds) })
	})
}

// BenchmarkDecodeKeyframes decodes only the key access units of the clip,
// each on its own, to BGR24 at 1080p.
func BenchmarkDecodeKeyframes(b *testing.B) {
	decBenchDecode(b, DecoderConfig{Mode: DecodeKeyframes}, func(c *decBenchClip) int { return c.keys })
}

// BenchmarkFFmpegReference runs ffmpeg decoding the clip with one thread
// to the null muxer, for the ratio the other benchmarks report.
func BenchmarkFFmpegReference(b *testing.B) {
	clip, ref := decBenchSetup(b)
	var cpu time.Duration
	for range b.N {
		c, err := decFFmpegCPU(clip.path)
		if err != nil {
			b.Fatal(err)
		}
		cpu += c
	}
	perSecond := float64(cpu) / 1e6 / float64(b.N) / clip.seconds
	b.ReportMetric(perSecond, "cpu-ms/video-s")
	b.ReportMetric(perSecond/ref, "x-ffmpeg")
}
