package ingest

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// decSliceReader hands out access units from memory, then io.EOF or err.
type decSliceReader struct {
	aus []*AccessUnit
	err error
}

func (r *decSliceReader) Next(ctx context.Context) (*AccessUnit, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(r.aus) == 0 {
		if r.err != nil {
			return nil, r.err
		}
		return nil, io.EOF
	}
	au := r.aus[0]
	r.aus = r.aus[1:]
	return au, nil
}

// decBlockingReader hands out its access units, then blocks until ctx
// ends, as a live camera subscription does.
type decBlockingReader struct {
	decSliceReader
}

func (r *decBlockingReader) Next(ctx context.Context) (*AccessUnit, error) {
	if len(r.aus) > 0 {
		return r.decSliceReader.Next(ctx)
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

// decRunPipeline runs p in a goroutine and returns a function that waits
// for Run's result.
func decRunPipeline(ctx context.Context, p *FramePipeline) func() error {
	var err error
	var wg sync.WaitGroup
	wg.Go(func() { err = p.Run(ctx) })
	return func() error {
		wg.Wait()
		return err
	}
}

// decClip encodes frames of vtest as H.264 with a key frame every gop
// frames and reads its access units.
func decClip(t *testing.T, frames, gop int) []*AccessUnit {
	t.Helper()
	clip := decEncode(t, t.TempDir(), "clip.mp4", frames, decH264Opts(gop)...)
	_, aus := decReadAUs(t, clip)
	return aus
}

func TestFramePipelineSamplesFile(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	decNeedTools(t)
	clip := decEncode(t, t.TempDir(), "clip.mp4", 100, decH264Opts(30)...)
	r, err := OpenAccessUnitFile(context.Background(), clip)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p, err := NewFramePipeline(r, PipelineConfig{Decoder: DecoderConfig{Rate: 2, MaxWidth: 384}, Queue: 100})
	if err != nil {
		t.Fatal(err)
	}
	wait := decRunPipeline(context.Background(), p)
	var got []*Frame
	for {
		f, err := p.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, f)
	}
	if err := wait(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(got) != 20 {
		t.Fatalf("%d frames at 2 fps from 100 at 10 fps, want 20", len(got))
	}
	for i, f := range got {
		if f.Width != 384 || f.Index != int64(5*i) || f.PTS != time.Duration(i)*500*time.Millisecond {
			t.Fatalf("frame %d: width %d index %d PTS %v", i, f.Width, f.Index, f.PTS)
		}
		f.Release()
	}
	if st := p.Stats(); st != (PipelineStats{Decoded: 100, Delivered: 20}) {
		t.Fatalf("stats %+v", st)
	}
}

func TestFramePipelineDropsOldest(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	decNeedTools(t)
	aus := decClip(t, 40, 10)
	p, err := NewFramePipeline(&decSliceReader{aus: aus}, PipelineConfig{Queue: 3})
	if err != nil {
		t.Fatal(err)
	}
	// The consumer does not read until the whole clip went through.
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	for want := int64(37); want < 40; want++ {
		f, err := p.Next(context.Background())
		if err != nil || f.Index != want {
			t.Fatalf("got frame %v (%v), want the newest ones: index %d", f, err, want)
		}
		f.Release()
	}
	if _, err := p.Next(context.Background()); !errors.Is(err, io.EOF) {
		t.Fatalf("Next after the last frame: %v, want io.EOF", err)
	}
	if st := p.Stats(); st != (PipelineStats{Decoded: 40, Delivered: 3, Dropped: 37}) {
		t.Fatalf("stats %+v", st)
	}
	if err := p.Run(context.Background()); err == nil {
		t.Fatal("second Run succeeded")
	}
}

func TestFramePipelineSlowConsumer(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	decNeedTools(t)
	aus := decClip(t, 60, 10)
	p, err := NewFramePipeline(&decSliceReader{aus: aus}, PipelineConfig{Queue: 2})
	if err != nil {
		t.Fatal(err)
	}
	wait := decRunPipeline(context.Background(), p)
	last := int64(-1)
	delivered := 0
	for {
		f, err := p.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if f.Index <= last {
			t.Fatalf("frame %d after frame %d", f.Index, last)
		}
		last = f.Index
		f.Release()
		delivered++
		time.Sleep(20 * time.Millisecond) // analysis takes its time
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	if last != 59 || st.Decoded != 60 || st.Delivered != int64(delivered) || st.Dropped+st.Delivered != 60 || st.Dropped == 0 {
		t.Fatalf("last frame %d, stats %+v: want the last frame delivered and every frame delivered or dropped", last, st)
	}
}

func TestFramePipelineKeyframesAndCodecChange(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	decNeedTools(t)
	dir := t.TempDir()
	_, h264AUs := decReadAUs(t, decEncode(t, dir, "a.mp4", 30, decH264Opts(10)...))
	_, h265AUs := decReadAUs(t, decEncode(t, dir, "b.mp4", 20, append([]string{"-s", "384x288"}, decH265Opts(10)...)...))
	aus := append([]*AccessUnit{}, h264AUs...)
	for _, au := range h265AUs {
		moved := *au
		moved.PTS += 3 * time.Second
		aus = append(aus, &moved)
	}
	p, err := NewFramePipeline(&decSliceReader{aus: aus}, PipelineConfig{Decoder: DecoderConfig{Mode: DecodeKeyframes}, Queue: 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for {
		f, err := p.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !f.Key {
			t.Fatalf("frame at %v is not a key frame", f.PTS)
		}
		sizes = append(sizes, f.Width)
		f.Release()
	}
	if want := []int{768, 768, 768, 384, 384}; !slices.Equal(sizes, want) {
		t.Fatalf("key frame widths %v, want %v", sizes, want)
	}
}

func TestFramePipelineDecodeErrors(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	decNeedTools(t)
	aus := decClip(t, 30, 10)
	aus[13] = &AccessUnit{Codec: CodecH264, PTS: aus[13].PTS, NALUs: [][]byte{{0x41, 0xff, 0x00, 0x13, 0x37}}}
	var hooked int
	p, err := NewFramePipeline(&decSliceReader{aus: aus}, PipelineConfig{
		Decoder: DecoderConfig{OnError: func(error) { hooked++ }},
		Queue:   30,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	// Frames 0-12 and 20-29 decode; 13 is damaged, 14-19 wait for the key
	// frame at 20. With B-frames, a picture or two before 13 may be lost
	// with it.
	if st.DecodeErrors == 0 || hooked != int(st.DecodeErrors) || st.Decoded < 20 || st.Decoded > 23 {
		t.Fatalf("stats %+v, hook called %d times", st, hooked)
	}
	n := 0
	for {
		f, err := p.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		f.Release()
		n++
	}
	if int64(n) != st.Decoded {
		t.Fatalf("%d frames delivered, %d decoded", n, st.Decoded)
	}
}

func TestFramePipelineStops(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	decNeedTools(t)
	aus := decClip(t, 10, 10)

	t.Run("context", func(t *testing.T) {
		p, err := NewFramePipeline(&decBlockingReader{decSliceReader{aus: aus}}, PipelineConfig{Queue: 20})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		wait := decRunPipeline(ctx, p)
		// A live reader never ends, so the decoder holds its last
		// pictures back until more access units arrive.
		f, err := p.Next(context.Background())
		if err != nil || f.Index != 0 {
			t.Fatalf("first frame %v, %v", f, err)
		}
		f.Release()
		short, stop := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer stop()
		if _, err := p.Next(short); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Next with a deadline: %v", err)
		}
		cancel()
		if err := wait(); !errors.Is(err, context.Canceled) {
			t.Fatalf("Run after cancel: %v", err)
		}
		for {
			f, err := p.Next(context.Background())
			if err != nil {
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("Next after Run was cancelled: %v", err)
				}
				break
			}
			f.Release()
		}
		if st := p.Stats(); st.Decoded == 0 || st.Decoded >= 10 {
			t.Fatalf("decoded %d of 10 pictures; want the decoding delay held back, not flushed", st.Decoded)
		}
	})

	t.Run("reader-error", func(t *testing.T) {
		broken := errors.New("camera went away")
		p, err := NewFramePipeline(&decSliceReader{aus: aus[:3], err: broken}, PipelineConfig{})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Run(context.Background()); !errors.Is(err, broken) || !strings.Contains(err.Error(), "read access unit") {
			t.Fatalf("Run: %v", err)
		}
		for range 2 {
			if f, err := p.Next(context.Background()); err == nil {
				f.Release()
			}
		}
		if _, err := p.Next(context.Background()); !errors.Is(err, broken) {
			t.Fatalf("Next after the reader failed: %v", err)
		}
	})

	t.Run("config", func(t *testing.T) {
		for _, cfg := range []PipelineConfig{
			{Queue: -1},
			{Decoder: DecoderConfig{Mode: "every"}},
			{Decoder: DecoderConfig{Rate: -2}},
		} {
			if _, err := NewFramePipeline(&decSliceReader{}, cfg); err == nil {
				t.Fatalf("config %+v accepted", cfg)
			}
		}
		if _, err := NewFramePipeline(nil, PipelineConfig{}); err == nil {
			t.Fatal("nil reader accepted")
		}
	})
}

func TestFramePool(t *testing.T) {
	p := NewFramePool()
	f := p.Get(4, 3)
	if f.Width != 4 || f.Height != 3 || f.Stride != 12 || len(f.Pix) != 36 {
		t.Fatalf("frame %dx%d stride %d, %d bytes", f.Width, f.Height, f.Stride, len(f.Pix))
	}
	f.PTS, f.Index, f.Key = time.Second, 7, true
	f.Release()
	f.Release() // a second Release does nothing
	if f.PTS != 0 || f.Index != 0 || f.Key || f.Width != 0 {
		t.Fatalf("released frame keeps its fields: %+v", f)
	}
	// Released buffers come back (sync.Pool may drop some, so count).
	reused := 0
	for range 100 {
		a := p.Get(640, 360)
		ptr := &a.Pix[0]
		a.Release()
		b := p.Get(640, 360)
		if &b.Pix[0] == ptr {
			reused++
		}
		b.Release()
	}
	if reused < 50 {
		t.Fatalf("buffer reused %d times out of 100", reused)
	}
	// Many sizes never grow the pool past its bound.
	for w := 1; w <= 3*framePoolSizes; w++ {
		p.Get(w, 1).Release()
	}
	p.mu.Lock()
	n := len(p.bySize)
	p.mu.Unlock()
	if n > framePoolSizes {
		t.Fatalf("pool keeps %d sizes, bound is %d", n, framePoolSizes)
	}
	var unpooled Frame
	unpooled.Release() // a frame without a pool
}
