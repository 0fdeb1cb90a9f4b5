package synth

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Generate renders the video described by cfg, encodes it to H.264 at
// videoPath with the ffmpeg program (libx264, yuv420p, no B-frames, a
// keyframe every two seconds), and writes the truth CSV to truthPath and the
// sidecar to SidecarPath(truthPath). The files appear only when all of them
// are complete: they are written under temporary names in the same folders
// and renamed at the end. Cancelling ctx stops ffmpeg and the rendering.
func Generate(ctx context.Context, cfg Config, videoPath, truthPath string) error {
	cfg, err := cfg.resolve()
	if err != nil {
		return err
	}
	start := time.Now()
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		return fmt.Errorf("synth: generate %s: the ffmpeg program (with libx264) is needed: %w", videoPath, err)
	}
	tmpVideo := partialName(videoPath)
	tmpTruth := partialName(truthPath)
	sidecar := SidecarPath(truthPath)
	tmpSidecar := partialName(sidecar)
	done := false
	defer func() {
		if !done {
			for _, p := range []string{tmpVideo, tmpTruth, tmpSidecar} {
				_ = os.Remove(p)
			}
		}
	}()

	tf, err := os.Create(tmpTruth)
	if err != nil {
		return fmt.Errorf("synth: generate %s: truth: %w", videoPath, err)
	}
	defer tf.Close()
	tw, err := newTruthWriter(tf)
	if err != nil {
		return fmt.Errorf("synth: generate %s: truth %s: %w", videoPath, tmpTruth, err)
	}

	fps := strconv.FormatFloat(cfg.FPS, 'f', -1, 64)
	gop := strconv.Itoa(max(1, int(math.Round(2*cfg.FPS))))
	args := []string{
		"-hide_banner", "-loglevel", "error", "-y",
		"-f", "rawvideo", "-pix_fmt", "rgb24", "-s", fmt.Sprintf("%dx%d", cfg.Width, cfg.Height), "-r", fps, "-i", "-",
		"-an", "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-bf", "0", "-g", gop,
		"-pix_fmt", "yuv420p", tmpVideo,
	}
	cmd := exec.CommandContext(ctx, ffmpeg, args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("synth: generate %s: ffmpeg stdin: %w", videoPath, err)
	}
	stderr := &tailBuffer{limit: 8 << 10}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("synth: generate %s: start %s: %w", videoPath, ffmpeg, err)
	}

	frame := make([]byte, cfg.Width*cfg.Height*3)
	frames := 0
	renderErr := Render(cfg, func(i int, img *image.RGBA, heads []Head) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		packRGB(frame, img)
		if _, err := stdin.Write(frame); err != nil {
			return fmt.Errorf("write frame %d to ffmpeg: %w", i, err)
		}
		if err := tw.frame(i, heads); err != nil {
			return fmt.Errorf("truth %s: frame %d: %w", tmpTruth, i, err)
		}
		frames++
		return nil
	})
	closeErr := stdin.Close()
	waitErr := cmd.Wait()
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("synth: generate %s: %w", videoPath, ctx.Err())
	case waitErr != nil:
		return fmt.Errorf("synth: generate %s: ffmpeg %s: %w: %s", videoPath, strings.Join(args, " "), waitErr, stderr.text())
	case renderErr != nil:
		return fmt.Errorf("synth: generate %s: %w", videoPath, renderErr)
	case closeErr != nil && !errors.Is(closeErr, os.ErrClosed):
		return fmt.Errorf("synth: generate %s: close ffmpeg stdin: %w", videoPath, closeErr)
	}

	if err := tw.flush(); err != nil {
		return fmt.Errorf("synth: generate %s: truth %s: %w", videoPath, tmpTruth, err)
	}
	if err := tf.Close(); err != nil {
		return fmt.Errorf("synth: generate %s: truth %s: %w", videoPath, tmpTruth, err)
	}
	cam := newScene(cfg).cam.Camera
	if err := writeSidecar(tmpSidecar, cfg, cam, frames, videoPath, truthPath); err != nil {
		return fmt.Errorf("synth: generate %s: sidecar %s: %w", videoPath, tmpSidecar, err)
	}
	for _, mv := range [][2]string{{tmpVideo, videoPath}, {tmpTruth, truthPath}, {tmpSidecar, sidecar}} {
		if err := os.Rename(mv[0], mv[1]); err != nil {
			return fmt.Errorf("synth: generate %s: %w", videoPath, err)
		}
	}
	done = true
	cfg.Logger.Info("synthetic video written", "video", videoPath, "truth", truthPath,
		"preset", cfg.Preset, "scene", cfg.Scene, "seed", cfg.Seed,
		"size", fmt.Sprintf("%dx%d", cfg.Width, cfg.Height), "fps", cfg.FPS, "frames", frames,
		"elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}

// partialName returns the temporary name a file is written under before it
// is complete: hidden, in the same folder, with the same extension (ffmpeg
// picks the container from it).
func partialName(path string) string {
	dir, base := filepath.Split(path)
	ext := filepath.Ext(base)
	return filepath.Join(dir, "."+strings.TrimSuffix(base, ext)+".partial"+ext)
}

// packRGB copies an RGBA picture into dst as packed RGB, 3 bytes a pixel.
func packRGB(dst []byte, img *image.RGBA) {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	o := 0
	for y := range h {
		row := img.Pix[y*img.Stride : y*img.Stride+4*w]
		for x := 0; x < len(row); x += 4 {
			dst[o], dst[o+1], dst[o+2] = row[x], row[x+1], row[x+2]
			o += 3
		}
	}
}

// tailBuffer keeps the last limit bytes written to it: the end of ffmpeg's
// error output.
type tailBuffer struct {
	limit int
	buf   []byte
}

// Write keeps p, dropping the oldest bytes beyond the limit.
func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.limit; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// text returns what was kept, trimmed, or a note that there was nothing.
func (t *tailBuffer) text() string {
	s := strings.TrimSpace(string(t.buf))
	if s == "" {
		return "(no error output)"
	}
	return s
}
