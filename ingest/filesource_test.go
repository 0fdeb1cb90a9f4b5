package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// decProbeStream asks ffprobe for fields of the first video stream.
func decProbeStream(t testing.TB, path string, fields ...string) map[string]string {
	t.Helper()
	out := decRun(t, "ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "stream="+strings.Join(fields, ","), "-of", "default=noprint_wrappers=1", path)
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			got[k] = v
		}
	}
	return got
}

func TestFileSourceVtest(t *testing.T) {
	decNeedTools(t)
	probe := decProbeStream(t, decVtest, "codec_name", "width", "height", "nb_frames")
	wantFrames := decProbeFrames(t, decVtest, false)
	s, err := OpenFile(context.Background(), decVtest, FileConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	info := s.Info()
	if info.Codec != probe["codec_name"] || strconv.Itoa(info.Width) != probe["width"] ||
		strconv.Itoa(info.Height) != probe["height"] || strconv.FormatInt(info.Frames, 10) != probe["nb_frames"] ||
		info.FPS != 10 || info.Duration != 79500*time.Millisecond || info.Format != "avi" {
		t.Fatalf("info %+v, ffprobe says %v", info, probe)
	}
	const check = 100
	n := 0
	for {
		f, err := s.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if f.Index != int64(n) || f.Width != 768 || f.Height != 576 || f.PTS != time.Duration(n)*100*time.Millisecond {
			t.Fatalf("frame %d: index %d, %dx%d, PTS %v", n, f.Index, f.Width, f.Height, f.PTS)
		}
		if n == check {
			diff := decMeanAbsDiff(t, f, decFFmpegBGR(t, decVtest, check, 768, 576))
			t.Logf("frame %d: mean abs diff to ffmpeg %.4f", check, diff)
			if diff > 0.5 {
				t.Fatalf("frame %d differs from ffmpeg's by %.3f per byte", check, diff)
			}
		}
		f.Release()
		n++
	}
	if n != wantFrames || n != 795 {
		t.Fatalf("%d frames, ffprobe decodes %d (795 expected)", n, wantFrames)
	}
	if _, err := s.Next(context.Background()); !errors.Is(err, io.EOF) {
		t.Fatalf("Next after the end: %v, want io.EOF", err)
	}
}

func TestFileSourceScaledMP4(t *testing.T) {
	decNeedTools(t)
	dir := t.TempDir()
	clip := decEncode(t, dir, "clip.mp4", 30, decH264Opts(10)...)
	s, err := OpenFile(context.Background(), clip, FileConfig{MaxWidth: 400, MaxHeight: 200, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if info := s.Info(); info.Codec != "h264" || info.Frames != 30 || math.Abs(info.FPS-10) > 1e-9 {
		t.Fatalf("info %+v", info)
	}
	n := 0
	for ; ; n++ {
		f, err := s.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		// 768x576 fits 200 rows: 267x200.
		if f.Width != 267 || f.Height != 200 || f.PTS != time.Duration(n)*100*time.Millisecond || f.Key != (n%10 == 0) {
			t.Fatalf("frame %d: %dx%d PTS %v key %v", n, f.Width, f.Height, f.PTS, f.Key)
		}
		f.Release()
	}
	if n != 30 {
		t.Fatalf("%d frames, want 30", n)
	}
}

func TestFileSourceErrors(t *testing.T) {
	decNeedTools(t)
	missing := filepath.Join(t.TempDir(), "none.mp4")
	if _, err := OpenFile(context.Background(), missing, FileConfig{}); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("open missing file: %v", err)
	}
	junk := filepath.Join(t.TempDir(), "junk.mp4")
	if err := os.WriteFile(junk, []byte(strings.Repeat("not a video ", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFile(context.Background(), junk, FileConfig{}); err == nil || !strings.Contains(err.Error(), junk) {
		t.Fatalf("open junk file: %v", err)
	}
	if _, err := OpenAccessUnitFile(context.Background(), decVtest); err == nil || !strings.Contains(err.Error(), "msmpeg4v3") {
		t.Fatalf("access units of an MPEG-4 part 2 file: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := OpenFile(ctx, decVtest, FileConfig{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("open with a cancelled context: %v", err)
	}
	s, err := OpenFile(context.Background(), decVtest, FileConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next with a cancelled context: %v", err)
	}
	f, err := s.Next(context.Background())
	if err != nil || f.Index != 0 {
		t.Fatalf("Next after a cancelled one: frame %v, %v", f, err)
	}
	f.Release()
	s.Close()
	s.Close()
	if _, err := s.Next(context.Background()); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Next after Close: %v", err)
	}
}

func TestAccessUnitFileParameterSets(t *testing.T) {
	decNeedTools(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name  string
		opts  []string
		codec Codec
	}{
		{"clip.mp4", decH264Opts(10), CodecH264},
		{"clip.h264", append([]string{"-f", "h264"}, decH264Opts(10)...), CodecH264},
		{"clip-hevc.mp4", decH265Opts(10), CodecH265},
		{"clip.hevc", append([]string{"-f", "hevc"}, decH265Opts(10)...), CodecH265},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clip := decEncode(t, dir, tc.name, 30, tc.opts...)
			codec, aus := decReadAUs(t, clip)
			if codec != tc.codec || len(aus) != 30 {
				t.Fatalf("%d %s access units, want 30 %s", len(aus), codec, tc.codec)
			}
			keys := 0
			for i, au := range aus {
				var params int
				for _, n := range au.NALUs {
					if decIsParamSet(codec, n) {
						params++
					}
				}
				want := 2
				if codec == CodecH265 {
					want = 3
				}
				if au.Key {
					keys++
					if params < want {
						t.Fatalf("key access unit %d carries %d parameter sets, want %d", i, params, want)
					}
				}
				if au.Codec != codec || au.Received.IsZero() {
					t.Fatalf("access unit %d: %+v", i, au)
				}
			}
			if keys != 3 {
				t.Fatalf("%d key access units, want 3", keys)
			}
			// Keyframe mode needs each key access unit to decode alone.
			c, _ := decDecode(t, codec, aus, DecoderConfig{Mode: DecodeKeyframes}, -1)
			if len(c.frames) != 3 {
				t.Fatalf("%d key frames decoded, want 3", len(c.frames))
			}
		})
	}
}

func TestDecParseCodecConfig(t *testing.T) {
	avcc := []byte{1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 3, 0x67, 1, 2, 1, 0, 2, 0x68, 9}
	size, params, err := decParseAVCC(avcc)
	if err != nil || size != 4 || len(params) != 2 || params[0][0] != 0x67 || params[1][1] != 9 {
		t.Fatalf("avcC: size %d params %x err %v", size, params, err)
	}
	for cut := range len(avcc) - 1 {
		if _, _, err := decParseAVCC(avcc[:cut]); err == nil && cut < len(avcc) {
			// The record may end after its SPS only if it claims no PPS.
			t.Fatalf("avcC cut to %d bytes parsed", cut)
		}
	}
	if _, err := decSplitLengthPrefixed([]byte{0, 0, 0, 5, 1, 2}, 4); err == nil {
		t.Fatal("NAL unit longer than its packet was split")
	}
	nalus, err := decSplitLengthPrefixed([]byte{0, 2, 0x65, 1, 0, 1, 0x41}, 2)
	if err != nil || len(nalus) != 2 || nalus[1][0] != 0x41 {
		t.Fatalf("split: %x, %v", nalus, err)
	}
}

func TestFileSourceRTSPListen(t *testing.T) {
	decNeedTools(t)
	dir := t.TempDir()
	clip := decEncode(t, dir, "clip.mp4", 40, decH264Opts(10)...)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("rtsp://127.0.0.1:%d/live", l.Addr().(*net.TCPAddr).Port)
	l.Close()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	// ffmpeg publishes the clip to the source, which listens as an RTSP
	// server; ffmpeg retries until the source listens.
	var pushErr error
	pushed := make(chan struct{})
	defer func() {
		cancel()
		<-pushed
	}()
	go func() {
		defer close(pushed)
		var err error
		for range 100 {
			cmd := exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-i", clip, "-c", "copy",
				"-f", "rtsp", "-rtsp_transport", "tcp", url)
			var out []byte
			if out, err = cmd.CombinedOutput(); err == nil || ctx.Err() != nil {
				break
			}
			if !strings.Contains(string(out), "Connection refused") {
				err = fmt.Errorf("%w: %s", err, out)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		pushErr = err
	}()
	s, err := OpenFile(ctx, url, FileConfig{Options: map[string]string{"rtsp_flags": "listen"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if info := s.Info(); info.Codec != "h264" || info.Width != 768 || info.Format != "rtsp" {
		t.Fatalf("info %+v", info)
	}
	n := 0
	for {
		f, err := s.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("after %d frames: %v", n, err)
		}
		if f.Width != 768 || f.Height != 576 || f.Index != int64(n) {
			t.Fatalf("frame %d: %dx%d index %d", n, f.Width, f.Height, f.Index)
		}
		f.Release()
		n++
	}
	<-pushed
	if pushErr != nil {
		t.Fatalf("ffmpeg publishing: %v", pushErr)
	}
	if n != 40 {
		t.Fatalf("%d frames over RTSP, want 40", n)
	}
}
