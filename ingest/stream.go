package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// Defaults for StreamConfig and SubscribeOptions.
const (
	// DefaultQueueLen is a subscription's queue length when none is given:
	// about 2.5 s of 25 fps video.
	DefaultQueueLen = 64
	// DefaultGOPCache is how many access units of the current group of
	// pictures a Stream keeps for late subscribers when none is given.
	DefaultGOPCache = 128
)

// ErrStreamClosed is returned by Subscribe on a closed Stream.
var ErrStreamClosed = errors.New("ingest: stream closed")

// ErrSubscriptionClosed is returned by Next after the subscription's own
// Close.
var ErrSubscriptionClosed = errors.New("ingest: subscription closed")

// Media describes what a Stream carries at one moment.
type Media struct {
	// Codec is the codec of the access units; empty before the first
	// session.
	Codec Codec
	// Width and Height are the picture size from the SPS in force; zero
	// until an SPS was seen.
	Width, Height int
	// ParamSets are copies of the parameter sets in force, in decode order
	// (VPS for H.265, SPS, PPS), without start codes.
	ParamSets [][]byte
	// Generation counts the source sessions that fed the stream, from 1.
	// It changes each time the source reconnects: timestamps and decoder
	// state from before do not carry over.
	Generation uint64
}

// StreamConfig configures a Stream.
type StreamConfig struct {
	// Name identifies the stream in errors, such as "gate-east/main".
	Name string
	// GOPCache bounds how many access units, from the last keyframe on, the
	// stream keeps so that a late subscriber can start decoding at once.
	// Default DefaultGOPCache. A group of pictures longer than that keeps
	// only its keyframe.
	GOPCache int
	// Metrics receives the stream's counters; nil keeps them in a set of
	// their own that nothing exports.
	Metrics *StreamMetrics
	// OnMedia, when set, is called after the codec, picture size or
	// parameter sets change, and at each new source session. It runs on
	// the publishing goroutine and must return quickly.
	OnMedia func(Media)
}

// Stream fans access units from one source out to many subscribers. Each
// subscriber has its own bounded queue; publishing never blocks, so a slow
// subscriber never stalls the source or the others (it drops, per its
// DropPolicy, and counts what it dropped).
//
// The stream tracks the parameter sets in force, from the source's session
// description and from in-band SPS/PPS/VPS, and inserts them into every
// keyframe that lacks them, so a subscriber may start at any keyframe. It
// also keeps the current group of pictures for late subscribers.
//
// A Stream is safe for concurrent use. Access units handed out are shared
// and read-only.
type Stream struct {
	name    string
	gopMax  int
	metrics *StreamMetrics
	onMedia func(Media)

	// lastPublish is when the last access unit was published, in Unix
	// nanoseconds; 0 before the first.
	lastPublish atomic.Int64

	mu      sync.Mutex
	params  paramSets
	gen     uint64
	gop     []*AccessUnit
	gopFull bool
	subs    map[*Subscription]struct{}
	closed  bool
}

// NewStream returns an open Stream with no source session yet.
func NewStream(cfg StreamConfig) *Stream {
	if cfg.GOPCache <= 0 {
		cfg.GOPCache = DefaultGOPCache
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewStreamMetrics(metrics.NewSet(), cfg.Name, "main")
	}
	return &Stream{
		name:    cfg.Name,
		gopMax:  cfg.GOPCache,
		metrics: cfg.Metrics,
		onMedia: cfg.OnMedia,
		subs:    make(map[*Subscription]struct{}),
	}
}

// Name returns the stream's name.
func (s *Stream) Name() string { return s.name }

// Metrics returns the stream's counters.
func (s *Stream) Metrics() *StreamMetrics { return s.metrics }

// AddDecodeErrors counts n pictures of this stream that a decoder could not
// decode.
func (s *Stream) AddDecodeErrors(n int) { s.metrics.AddDecodeErrors(n) }

// Begin starts a new source session carrying codec, with the parameter
// sets announced out of band (an SDP's sprop-parameter-sets); nil or
// malformed ones are ignored. The cached group of pictures is dropped and
// the generation advances. A source calls Begin once per session, before
// its first Publish.
func (s *Stream) Begin(codec Codec, outOfBand [][]byte) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.gen++
	if s.params.codec != codec {
		s.params = paramSets{codec: codec}
	}
	var valid [][]byte
	for _, ps := range outOfBand {
		if checkNALU(codec, ps) == nil {
			valid = append(valid, ps)
		}
	}
	if _, _, err := s.params.observe(valid); err != nil {
		s.metrics.AddDecodeErrors(1)
	}
	s.gop, s.gopFull = nil, false
	media := s.mediaLocked()
	s.mu.Unlock()
	if s.onMedia != nil {
		s.onMedia(media)
	}
}

// Publish hands an access unit to every subscriber. Malformed NAL units
// are removed and counted as decode errors; an access unit left without
// NAL units is dropped. A keyframe lacking parameter sets gets the ones in
// force inserted (in a copy; au itself is never modified). Publish never
// blocks on subscribers.
func (s *Stream) Publish(au *AccessUnit) {
	if au == nil {
		return
	}
	nalus, bad := cleanAU(au.Codec, au.NALUs)
	s.metrics.AddDecodeErrors(bad)
	if len(nalus) == 0 {
		return
	}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	changed := false
	if s.params.codec != au.Codec {
		s.params = paramSets{codec: au.Codec}
		changed = true
	}
	modified := bad > 0
	observed, psChanged, err := s.params.observe(nalus)
	if err != nil {
		s.metrics.AddDecodeErrors(1)
	}
	changed = changed || psChanged
	modified = modified || len(observed) != len(nalus)
	nalus = observed
	if len(nalus) == 0 {
		s.mu.Unlock()
		if changed && s.onMedia != nil {
			s.onMedia(s.Media())
		}
		return
	}
	if au.Key {
		completed := s.params.complete(nalus)
		modified = modified || len(completed) != len(nalus)
		nalus = completed
	}
	if modified {
		cp := *au
		cp.NALUs = nalus
		au = &cp
	}

	switch {
	case au.Key:
		s.gop = append(s.gop[:0:0], au)
		s.gopFull = false
	case s.gop != nil && !s.gopFull:
		if len(s.gop) < s.gopMax {
			s.gop = append(s.gop, au)
		} else {
			s.gop = []*AccessUnit{s.gop[0]}
			s.gopFull = true
		}
	}

	dropped := 0
	for sub := range s.subs {
		dropped += sub.offer(au, s.gen)
	}
	s.lastPublish.Store(time.Now().UnixNano())
	var media Media
	if changed {
		media = s.mediaLocked()
	}
	s.mu.Unlock()

	s.metrics.frames.Inc()
	if dropped > 0 {
		s.metrics.dropped.Add(dropped)
	}
	if changed && s.onMedia != nil {
		s.onMedia(media)
	}
}

// Media returns what the stream carries now.
func (s *Stream) Media() Media {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mediaLocked()
}

func (s *Stream) mediaLocked() Media {
	return Media{
		Codec:      s.params.codec,
		Width:      s.params.width,
		Height:     s.params.height,
		ParamSets:  s.params.list(),
		Generation: s.gen,
	}
}

// Generation returns the number of source sessions begun so far.
func (s *Stream) Generation() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
}

// LastPublished returns when the last access unit was published; the zero
// time before the first.
func (s *Stream) LastPublished() time.Time {
	ns := s.lastPublish.Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// Subscribers returns how many subscriptions are open.
func (s *Stream) Subscribers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs)
}

// Close ends the stream: every subscription's Next returns what is still
// queued, then io.EOF. Later Publish and Begin calls do nothing.
func (s *Stream) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	for sub := range s.subs {
		sub.end()
	}
	s.subs = nil
	s.gop = nil
}

// DropPolicy says what a subscription drops when its queue is full.
type DropPolicy int

const (
	// DropOldest, for analysis, discards the oldest queued access unit to
	// make room for the newest, so the subscriber stays close to real time.
	// A decoder reading every picture sees the gap as damaged pictures
	// until the next keyframe.
	DropOldest DropPolicy = iota
	// DropUntilKeyframe, for live view, drops the access unit that did not
	// fit and every following one until the next keyframe, so a viewer
	// never decodes a picture whose references are missing. The keyframe
	// replaces whatever is still queued if the queue is still full.
	DropUntilKeyframe
)

// String returns the policy's name.
func (p DropPolicy) String() string {
	switch p {
	case DropOldest:
		return "drop-oldest"
	case DropUntilKeyframe:
		return "drop-until-keyframe"
	}
	return fmt.Sprintf("DropPolicy(%d)", int(p))
}

// SubscribeOptions configure one subscription.
type SubscribeOptions struct {
	// Name identifies the subscriber in logs and errors, such as
	// "analysis" or "whep-3".
	Name string
	// QueueLen bounds the subscriber's queue. Default DefaultQueueLen.
	QueueLen int
	// Policy says what to drop when the queue is full. Default DropOldest.
	Policy DropPolicy
	// KeyframesOnly delivers only keyframes; the others are skipped
	// without counting as drops.
	KeyframesOnly bool
	// StartAtKeyframe makes the first access unit delivered a keyframe:
	// the stream's cached one at once when there is one, followed by the
	// rest of its group of pictures when that fits in the queue (otherwise
	// delivery resumes at the next keyframe); without a cached keyframe,
	// delivery starts at the next one.
	StartAtKeyframe bool
}

// Subscribe opens a subscription. It fails only when the stream is
// closed.
func (s *Stream) Subscribe(opts SubscribeOptions) (*Subscription, error) {
	if opts.QueueLen <= 0 {
		opts.QueueLen = DefaultQueueLen
	}
	sub := &Subscription{
		stream:  s,
		name:    opts.Name,
		policy:  opts.Policy,
		keyOnly: opts.KeyframesOnly,
		ring:    make([]subEntry, opts.QueueLen),
		notify:  make(chan struct{}, 1),
		done:    make(chan struct{}),
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("subscribe %q to stream %q: %w", opts.Name, s.name, ErrStreamClosed)
	}
	if opts.StartAtKeyframe {
		switch {
		case len(s.gop) == 0:
			sub.waitKey = true
		case opts.KeyframesOnly:
			sub.offer(s.gop[0], s.gen)
		case !s.gopFull && len(s.gop) <= opts.QueueLen:
			for _, au := range s.gop {
				sub.offer(au, s.gen)
			}
		default:
			sub.offer(s.gop[0], s.gen)
			sub.waitKey = true
		}
	}
	s.subs[sub] = struct{}{}
	return sub, nil
}

func (s *Stream) remove(sub *Subscription) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.subs, sub)
}

// subEntry is one queued access unit and the generation it belongs to.
type subEntry struct {
	au  *AccessUnit
	gen uint64
}

// Subscription is one subscriber's bounded queue on a Stream. It
// implements AccessUnitReader. Next is meant for one reading goroutine;
// the other methods may be called from anywhere.
type Subscription struct {
	stream  *Stream
	name    string
	policy  DropPolicy
	keyOnly bool
	// notify carries a wake-up for a waiting Next (capacity 1: one pending
	// wake-up covers any number of arrivals).
	notify  chan struct{}
	done    chan struct{}
	dropped atomic.Uint64

	mu      sync.Mutex
	ring    []subEntry
	head, n int
	waitKey bool
	ended   bool
	closed  bool
	gen     uint64
}

// offer queues au per the subscription's policy and returns how many
// access units it dropped. It never blocks.
func (sub *Subscription) offer(au *AccessUnit, gen uint64) (dropped int) {
	if sub.keyOnly && !au.Key {
		return 0
	}
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if sub.closed || sub.ended {
		return 0
	}
	if sub.waitKey {
		if !au.Key {
			sub.dropped.Add(1)
			return 1
		}
		sub.waitKey = false
	}
	if sub.n == len(sub.ring) {
		switch {
		case sub.policy == DropOldest:
			sub.pop()
			dropped = 1
		case au.Key:
			dropped = sub.n
			sub.head, sub.n = 0, 0
			clear(sub.ring)
		default:
			sub.waitKey = true
			sub.dropped.Add(1)
			return 1
		}
	}
	sub.ring[(sub.head+sub.n)%len(sub.ring)] = subEntry{au: au, gen: gen}
	sub.n++
	if dropped > 0 {
		sub.dropped.Add(uint64(dropped))
	}
	select {
	case sub.notify <- struct{}{}:
	default:
	}
	return dropped
}

// pop removes the oldest entry; the queue must not be empty.
func (sub *Subscription) pop() subEntry {
	e := sub.ring[sub.head]
	sub.ring[sub.head] = subEntry{}
	sub.head = (sub.head + 1) % len(sub.ring)
	sub.n--
	return e
}

// Next returns the next access unit in decode order. It blocks until one
// is queued, ctx ends (ctx.Err()), the stream is closed and the queue
// drained (io.EOF), or the subscription is closed (ErrSubscriptionClosed).
func (sub *Subscription) Next(ctx context.Context) (*AccessUnit, error) {
	for {
		sub.mu.Lock()
		if sub.closed {
			sub.mu.Unlock()
			return nil, ErrSubscriptionClosed
		}
		if sub.n > 0 {
			e := sub.pop()
			sub.gen = e.gen
			sub.mu.Unlock()
			return e.au, nil
		}
		if sub.ended {
			sub.mu.Unlock()
			return nil, io.EOF
		}
		sub.mu.Unlock()

		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-sub.notify:
		case <-sub.done:
		}
	}
}

// Generation returns the stream generation of the access unit Next
// returned last; a change means the source reconnected in between, so a
// decoder should start afresh.
func (sub *Subscription) Generation() uint64 {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return sub.gen
}

// Dropped returns how many access units this subscription dropped because
// its queue was full.
func (sub *Subscription) Dropped() uint64 { return sub.dropped.Load() }

// Len returns how many access units are queued.
func (sub *Subscription) Len() int {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return sub.n
}

// Name returns the subscriber's name.
func (sub *Subscription) Name() string { return sub.name }

// Close cancels the subscription: queued access units are discarded and
// Next returns ErrSubscriptionClosed. Close is idempotent.
func (sub *Subscription) Close() {
	sub.mu.Lock()
	if sub.closed {
		sub.mu.Unlock()
		return
	}
	sub.closed = true
	sub.head, sub.n = 0, 0
	clear(sub.ring)
	if !sub.ended {
		close(sub.done)
	}
	sub.mu.Unlock()
	sub.stream.remove(sub)
}

// end marks the stream closed for this subscription; called by
// Stream.Close with the stream locked.
func (sub *Subscription) end() {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if sub.ended || sub.closed {
		return
	}
	sub.ended = true
	close(sub.done)
}
