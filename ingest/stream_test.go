package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"
)

// Parameter sets from libx264 output: 320x240 baseline and 160x120 high.
func testSPS320() []byte {
	return []byte{0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00,
		0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x42, 0xa4, 0x80}
}

func testPPS320() []byte { return []byte{0x68, 0xcb, 0x83, 0xcb, 0x20} }

func testSPS160() []byte {
	return []byte{0x67, 0x64, 0x00, 0x0b, 0xac, 0xb2, 0x05, 0x08, 0xfc, 0xb8, 0x08, 0x80, 0x00, 0x00,
		0x03, 0x00, 0x80, 0x00, 0x00, 0x19, 0x07, 0x8a, 0x15, 0x24}
}

func testPPS160() []byte { return []byte{0x68, 0xeb, 0xc3, 0xcb, 0x22, 0xc0} }

// testAU returns access unit i of a synthetic H.264 sequence with a
// keyframe every gop pictures; the slice carries i so that tests can tell
// access units apart. Keyframes carry params in front when given.
func testAU(i, gop int, params ...[]byte) *AccessUnit {
	key := i%gop == 0
	slice := []byte{0x41, 0x9a, byte(i >> 8), byte(i)}
	if key {
		slice = []byte{0x65, 0x88, byte(i >> 8), byte(i)}
	}
	var nalus [][]byte
	if key {
		nalus = append(nalus, params...)
	}
	nalus = append(nalus, slice)
	return &AccessUnit{
		Codec: CodecH264,
		PTS:   time.Duration(i) * 40 * time.Millisecond,
		NALUs: nalus,
		Key:   key,
	}
}

// auIndex recovers i from an access unit made by testAU.
func auIndex(t *testing.T, au *AccessUnit) int {
	t.Helper()
	last := au.NALUs[len(au.NALUs)-1]
	if len(last) != 4 {
		t.Fatalf("access unit's last NAL unit is %x, not a test slice", last)
	}
	return int(last[2])<<8 | int(last[3])
}

// drain reads every queued access unit without blocking for new ones.
func drain(t *testing.T, sub *Subscription) []*AccessUnit {
	t.Helper()
	var out []*AccessUnit
	for sub.Len() > 0 {
		au, err := sub.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, au)
	}
	return out
}

func TestStreamFanOutSlowSubscriberDrops(t *testing.T) {
	st := NewStream(StreamConfig{Name: "test/main"})
	st.Begin(CodecH264, [][]byte{testSPS320(), testPPS320()})
	fast, err := st.Subscribe(SubscribeOptions{Name: "fast", QueueLen: 16})
	if err != nil {
		t.Fatal(err)
	}
	slow, err := st.Subscribe(SubscribeOptions{Name: "slow", QueueLen: 8, Policy: DropOldest})
	if err != nil {
		t.Fatal(err)
	}

	const n = 500
	var got []*AccessUnit
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for len(got) < n {
			au, err := fast.Next(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			got = append(got, au)
		}
	}()
	for i := 0; i < n; i++ {
		// The fast reader keeps up as long as it is scheduled; give it
		// room so that its queue of 16 never overflows.
		for fast.Len() > 8 {
			time.Sleep(time.Millisecond)
		}
		st.Publish(testAU(i, 25))
	}
	wg.Wait()

	if len(got) != n {
		t.Fatalf("fast subscriber got %d access units, want %d", len(got), n)
	}
	for i, au := range got {
		if v := auIndex(t, au); v != i {
			t.Fatalf("fast subscriber got access unit %d at position %d", v, i)
		}
	}
	if fast.Dropped() != 0 {
		t.Errorf("fast subscriber dropped %d", fast.Dropped())
	}
	if slow.Dropped() != n-8 {
		t.Errorf("slow subscriber dropped %d, want %d", slow.Dropped(), n-8)
	}
	left := drain(t, slow)
	if len(left) != 8 || auIndex(t, left[0]) != n-8 || auIndex(t, left[7]) != n-1 {
		t.Errorf("slow subscriber kept %d access units starting at %d, want the newest 8", len(left), auIndex(t, left[0]))
	}
	if c := st.Metrics().Counts(); c.Dropped != n-8 || c.Frames != n {
		t.Errorf("metrics dropped %d frames %d, want %d and %d", c.Dropped, c.Frames, n-8, n)
	}
}

func TestStreamLiveViewDropsUntilKeyframe(t *testing.T) {
	st := NewStream(StreamConfig{Name: "test/live"})
	st.Begin(CodecH264, [][]byte{testSPS320(), testPPS320()})
	live, err := st.Subscribe(SubscribeOptions{Name: "live", QueueLen: 4, Policy: DropUntilKeyframe, StartAtKeyframe: true})
	if err != nil {
		t.Fatal(err)
	}
	const gop, n = 10, 57
	var delivered []*AccessUnit
	for i := 0; i < n; i++ {
		st.Publish(testAU(i, gop))
		if i%7 == 6 {
			// A reader that wakes up now and then and takes two.
			for k := 0; k < 2 && live.Len() > 0; k++ {
				au, _ := live.Next(context.Background())
				delivered = append(delivered, au)
			}
		}
	}
	delivered = append(delivered, drain(t, live)...)

	if !delivered[0].Key {
		t.Fatal("first access unit delivered is not a keyframe")
	}
	prev := -1
	for _, au := range delivered {
		i := auIndex(t, au)
		if !au.Key && i != prev+1 {
			t.Fatalf("access unit %d delivered after %d: its reference is missing", i, prev)
		}
		prev = i
	}
	if want := uint64(n - len(delivered)); live.Dropped() != want || want == 0 {
		t.Errorf("dropped %d, want %d (> 0)", live.Dropped(), want)
	}
}

func TestStreamLateSubscriberStartsAtKeyframe(t *testing.T) {
	st := NewStream(StreamConfig{Name: "test/main"})
	// Parameter sets only out of band, as many cameras do.
	st.Begin(CodecH264, [][]byte{testSPS320(), testPPS320()})
	for i := 0; i < 36; i++ {
		st.Publish(testAU(i, 30))
	}

	t.Run("whole group", func(t *testing.T) {
		sub, err := st.Subscribe(SubscribeOptions{Name: "late", StartAtKeyframe: true})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		got := drain(t, sub)
		if len(got) != 6 || !got[0].Key || auIndex(t, got[0]) != 30 || auIndex(t, got[5]) != 35 {
			t.Fatalf("late subscriber got %d access units, want the group 30..35", len(got))
		}
		if !containsNALU(got[0].NALUs, testSPS320()) || !containsNALU(got[0].NALUs, testPPS320()) {
			t.Error("cached keyframe lacks SPS and PPS")
		}
	})
	t.Run("group larger than queue", func(t *testing.T) {
		sub, err := st.Subscribe(SubscribeOptions{Name: "late-small", QueueLen: 3, StartAtKeyframe: true})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		first, err := sub.Next(context.Background())
		if err != nil || auIndex(t, first) != 30 || !first.Key {
			t.Fatalf("first access unit %v, %v; want keyframe 30", first, err)
		}
		st.Publish(testAU(36, 30))
		if sub.Len() != 0 {
			t.Fatal("picture after the cached keyframe delivered without its references")
		}
		for i := 37; i <= 61; i++ {
			st.Publish(testAU(i, 30))
		}
		got := drain(t, sub)
		if len(got) != 2 || auIndex(t, got[0]) != 60 || auIndex(t, got[1]) != 61 {
			t.Fatalf("after the cached keyframe got %d access units, want 60, 61", len(got))
		}
	})
	t.Run("keyframes only", func(t *testing.T) {
		sub, err := st.Subscribe(SubscribeOptions{Name: "thumbs", KeyframesOnly: true, StartAtKeyframe: true})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		for i := 62; i < 125; i++ {
			st.Publish(testAU(i, 30))
		}
		got := drain(t, sub)
		var idx []int
		for _, au := range got {
			idx = append(idx, auIndex(t, au))
		}
		if fmt.Sprint(idx) != "[60 90 120]" {
			t.Fatalf("keyframes-only subscriber got %v, want [60 90 120]", idx)
		}
		if sub.Dropped() != 0 {
			t.Errorf("skipped pictures counted as %d drops", sub.Dropped())
		}
	})
}

func TestStreamInsertsParamSetsIntoKeyframes(t *testing.T) {
	st := NewStream(StreamConfig{Name: "test/main"})
	st.Begin(CodecH264, [][]byte{testSPS320(), testPPS320()})
	sub, err := st.Subscribe(SubscribeOptions{Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	aud := []byte{0x09, 0xf0}
	key := &AccessUnit{Codec: CodecH264, Key: true, NALUs: [][]byte{aud, {0x65, 0x88, 0, 1}}}
	st.Publish(key)
	st.Publish(testAU(1, 30))
	got := drain(t, sub)
	want := [][]byte{aud, testSPS320(), testPPS320(), {0x65, 0x88, 0, 1}}
	if !equalNALUs(got[0].NALUs, want) {
		t.Errorf("keyframe delivered as %x, want %x", got[0].NALUs, want)
	}
	if len(key.NALUs) != 2 {
		t.Error("Publish modified the caller's access unit")
	}
	if len(got[1].NALUs) != 1 {
		t.Errorf("non-key access unit got %d NAL units, want its own 1", len(got[1].NALUs))
	}
}

func TestStreamFollowsInBandResolutionChange(t *testing.T) {
	var mu sync.Mutex
	var seen []Media
	st := NewStream(StreamConfig{Name: "test/main", OnMedia: func(m Media) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, m)
	}})
	st.Begin(CodecH264, [][]byte{testSPS320(), testPPS320()})
	if m := st.Media(); m.Width != 320 || m.Height != 240 || m.Codec != CodecH264 || m.Generation != 1 {
		t.Fatalf("media after Begin: %+v", m)
	}
	sub, _ := st.Subscribe(SubscribeOptions{Name: "a"})
	st.Publish(testAU(0, 2))
	st.Publish(testAU(1, 2))
	st.Publish(testAU(2, 2, testSPS160(), testPPS160()))
	st.Publish(testAU(3, 2))
	st.Publish(testAU(4, 2))
	if m := st.Media(); m.Width != 160 || m.Height != 120 {
		t.Fatalf("media after in-band SPS: %dx%d, want 160x120", m.Width, m.Height)
	}
	mu.Lock()
	last := seen[len(seen)-1]
	mu.Unlock()
	if last.Width != 160 || !containsNALU(last.ParamSets, testSPS160()) {
		t.Errorf("OnMedia last reported %dx%d", last.Width, last.Height)
	}
	got := drain(t, sub)
	if !containsNALU(got[0].NALUs, testSPS320()) {
		t.Error("keyframe 0 lacks the first SPS")
	}
	if !containsNALU(got[4].NALUs, testSPS160()) || containsNALU(got[4].NALUs, testSPS320()) {
		t.Error("keyframe 4 does not carry the new SPS alone")
	}
}

func TestStreamRemovesMalformedNALUnits(t *testing.T) {
	st := NewStream(StreamConfig{Name: "test/main"})
	st.Begin(CodecH264, [][]byte{testSPS320(), testPPS320()})
	sub, _ := st.Subscribe(SubscribeOptions{Name: "a"})
	st.Publish(&AccessUnit{Codec: CodecH264, NALUs: [][]byte{{}, {0x80 | 0x01, 1}, {0x41, 0x9a, 0, 1}}})
	st.Publish(&AccessUnit{Codec: CodecH264, NALUs: [][]byte{{0x1e, 1, 2}}})
	// A truncated SPS in a keyframe: removed, the one in force inserted.
	st.Publish(&AccessUnit{Codec: CodecH264, Key: true, NALUs: [][]byte{{0x67, 0x42}, {0x65, 0x88, 0, 2}}})
	got := drain(t, sub)
	if len(got) != 2 || len(got[0].NALUs) != 1 {
		t.Fatalf("got %d access units (first with %d NAL units), want 2 with the bad units removed", len(got), len(got[0].NALUs))
	}
	if !equalNALUs(got[1].NALUs, [][]byte{testSPS320(), testPPS320(), {0x65, 0x88, 0, 2}}) {
		t.Errorf("keyframe with a truncated SPS delivered as %x", got[1].NALUs)
	}
	if m := st.Media(); m.Width != 320 {
		t.Errorf("truncated SPS changed the size to %dx%d", m.Width, m.Height)
	}
	if c := st.Metrics().Counts(); c.DecodeErrors != 4 {
		t.Errorf("decode errors %d, want 4", c.DecodeErrors)
	}
}

func TestStreamGenerationMarksRestarts(t *testing.T) {
	st := NewStream(StreamConfig{Name: "test/main"})
	sub, _ := st.Subscribe(SubscribeOptions{Name: "a"})
	st.Begin(CodecH264, [][]byte{testSPS320(), testPPS320()})
	st.Publish(testAU(0, 10))
	st.Publish(testAU(1, 10))
	st.Begin(CodecH264, nil)
	st.Publish(testAU(0, 10))
	var gens []uint64
	for range 3 {
		if _, err := sub.Next(context.Background()); err != nil {
			t.Fatal(err)
		}
		gens = append(gens, sub.Generation())
	}
	if fmt.Sprint(gens) != "[1 1 2]" || st.Generation() != 2 {
		t.Errorf("generations %v (stream %d), want [1 1 2] and 2", gens, st.Generation())
	}
	late, _ := st.Subscribe(SubscribeOptions{Name: "late", StartAtKeyframe: true})
	if late.Len() != 1 {
		t.Errorf("late subscriber after a restart got %d cached access units, want the new session's keyframe", late.Len())
	}
}

func TestStreamCloseAndCancel(t *testing.T) {
	st := NewStream(StreamConfig{Name: "test/main"})
	st.Begin(CodecH264, nil)
	a, _ := st.Subscribe(SubscribeOptions{Name: "a"})
	b, _ := st.Subscribe(SubscribeOptions{Name: "b"})
	if st.Subscribers() != 2 {
		t.Fatalf("%d subscribers, want 2", st.Subscribers())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := a.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next on an idle stream: %v, want the context's deadline", err)
	}

	waiting := make(chan error, 1)
	go func() {
		_, err := b.Next(context.Background())
		waiting <- err
	}()
	b.Close()
	if err := <-waiting; !errors.Is(err, ErrSubscriptionClosed) {
		t.Fatalf("blocked Next after Close: %v", err)
	}
	if st.Subscribers() != 1 {
		t.Fatalf("%d subscribers after Close, want 1", st.Subscribers())
	}

	st.Publish(testAU(0, 10))
	st.Publish(testAU(1, 10))
	st.Close()
	st.Publish(testAU(2, 10))
	for i := 0; i < 2; i++ {
		if au, err := a.Next(context.Background()); err != nil || auIndex(t, au) != i {
			t.Fatalf("queued access unit %d after stream close: %v", i, err)
		}
	}
	if _, err := a.Next(context.Background()); err != io.EOF {
		t.Fatalf("Next after the queue drained: %v, want io.EOF", err)
	}
	if _, err := st.Subscribe(SubscribeOptions{Name: "c"}); !errors.Is(err, ErrStreamClosed) {
		t.Fatalf("Subscribe on a closed stream: %v", err)
	}
}

func equalNALUs(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// BenchmarkStreamPublish measures publishing to 1 and to 8 subscribers
// that never read (every publish drops), the worst case for the source's
// goroutine; the ratio of the two shows the per-subscriber cost.
func BenchmarkStreamPublish(b *testing.B) {
	for _, subs := range []int{1, 8} {
		b.Run(fmt.Sprintf("subscribers=%d", subs), func(b *testing.B) {
			st := NewStream(StreamConfig{Name: "bench"})
			st.Begin(CodecH264, [][]byte{testSPS320(), testPPS320()})
			for i := 0; i < subs; i++ {
				if _, err := st.Subscribe(SubscribeOptions{Name: fmt.Sprint(i), QueueLen: 16}); err != nil {
					b.Fatal(err)
				}
			}
			aus := make([]*AccessUnit, 50)
			for i := range aus {
				aus[i] = testAU(i, 25)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				st.Publish(aus[i%len(aus)])
			}
		})
	}
}
