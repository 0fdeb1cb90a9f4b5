package ingest

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
)

// DecodeMode says which access units of a camera reach the decoder.
type DecodeMode string

// The decode modes a camera can be configured with.
const (
	// DecodeAll decodes every access unit; the pictures are then sampled
	// down to the analysis rate by their PTS.
	DecodeAll DecodeMode = "all"
	// DecodeKeyframes decodes only key access units (IDR for H.264, IRAP
	// for H.265), each on its own: the decoder is drained and reset after
	// every one, so no picture depends on another.
	DecodeKeyframes DecodeMode = "keyframes"
)

// Valid reports whether m is one of the defined modes.
func (m DecodeMode) Valid() bool {
	return m == DecodeAll || m == DecodeKeyframes
}

// DecoderConfig configures a Decoder. The zero value decodes every access
// unit with one thread, emits every picture at its coded size, and uses a
// pool of its own.
type DecoderConfig struct {
	// Mode selects which access units are decoded; empty means DecodeAll.
	Mode DecodeMode
	// Rate is the most pictures per second to emit, chosen by PTS: an
	// emitted picture is at least 1/Rate after the previous one (within a
	// millisecond of timestamp rounding). Pictures not chosen are decoded
	// (in DecodeAll mode later pictures need them) but not converted; in
	// DecodeKeyframes mode key access units not chosen are not decoded at
	// all. 0 emits every decoded picture.
	Rate float64
	// Threads is the number of libavcodec decoding threads; 0 means 1.
	// More threads add that many pictures of delay in DecodeAll mode.
	Threads int
	// MaxWidth and MaxHeight bound the emitted picture size; a larger
	// picture is scaled down, keeping its aspect ratio, in the same pass
	// that converts it to BGR24. 0 leaves that side unbounded.
	MaxWidth, MaxHeight int
	// Pool supplies the frames; nil gives the decoder a pool of its own.
	Pool *FramePool
	// OnError, when set, is called with every decode error, besides the
	// error being returned and counted.
	OnError func(error)
}

// DecoderStats counts what a Decoder did since it was created.
type DecoderStats struct {
	// AccessUnits is the number of access units passed to Decode.
	AccessUnits int64
	// Skipped counts access units not sent to libavcodec: non-key ones in
	// DecodeKeyframes mode, key ones refused by the rate, and those before
	// the first key access unit or after an error, while the decoder waits
	// for the next key one.
	Skipped int64
	// Decoded counts pictures that came out of libavcodec intact.
	Decoded int64
	// Emitted counts frames handed to emit.
	Emitted int64
	// Errors counts decode errors: refused access units and corrupt
	// pictures.
	Errors int64
}

// Decoder turns H.264 or H.265 access units into packed BGR24 frames with
// libavcodec and libswscale. It follows parameter set and resolution
// changes within the stream. After a decode error it skips access units
// until the next key one, where decoding resumes. A Decoder is used by one
// goroutine at a time; Stats may be called from any goroutine.
type Decoder struct {
	codec    Codec
	cfg      DecoderConfig
	pool     *FramePool
	av       *avDecoder
	sampler  decSampler
	needKey  bool
	index    int64
	lastPTS  time.Duration
	curPTS   time.Duration // PTS of the access unit being decoded
	curRecv  time.Time     // arrival of the access unit being decoded
	firstErr error         // first error of the current Decode call

	accessUnits, skipped, decoded, emitted, errs atomic.Int64
}

// NewDecoder opens a decoder for codec.
func NewDecoder(codec Codec, cfg DecoderConfig) (*Decoder, error) {
	if cfg.Mode == "" {
		cfg.Mode = DecodeAll
	}
	switch {
	case !cfg.Mode.Valid():
		return nil, fmt.Errorf("new %s decoder: mode %q is neither %q nor %q", codec, cfg.Mode, DecodeAll, DecodeKeyframes)
	case cfg.Rate < 0:
		return nil, fmt.Errorf("new %s decoder: rate %g is negative", codec, cfg.Rate)
	case cfg.Threads < 0:
		return nil, fmt.Errorf("new %s decoder: thread count %d is negative", codec, cfg.Threads)
	case cfg.MaxWidth < 0 || cfg.MaxHeight < 0:
		return nil, fmt.Errorf("new %s decoder: max size %dx%d is negative", codec, cfg.MaxWidth, cfg.MaxHeight)
	}
	if cfg.Threads == 0 {
		cfg.Threads = 1
	}
	av, err := avOpenDecoder(codec, cfg.Threads)
	if err != nil {
		return nil, err
	}
	d := &Decoder{codec: codec, cfg: cfg, pool: cfg.Pool, av: av, needKey: true}
	if d.pool == nil {
		d.pool = NewFramePool()
	}
	if cfg.Rate > 0 {
		d.sampler.interval = time.Duration(float64(time.Second) / cfg.Rate)
	}
	return d, nil
}

// Codec is the codec the decoder was opened for.
func (d *Decoder) Codec() Codec { return d.codec }

// Stats returns the decoder's counters.
func (d *Decoder) Stats() DecoderStats {
	return DecoderStats{
		AccessUnits: d.accessUnits.Load(),
		Skipped:     d.skipped.Load(),
		Decoded:     d.decoded.Load(),
		Emitted:     d.emitted.Load(),
		Errors:      d.errs.Load(),
	}
}

// Decode decodes au and calls emit with every frame that is ready, which
// may be none (decoding delay, rate) or pictures of earlier access units.
// emit owns each frame it gets and must Release it. The returned error is
// the first decode error of this call; decoding goes on with the next key
// access unit.
func (d *Decoder) Decode(au *AccessUnit, emit func(*Frame)) error {
	if d.av == nil {
		return fmt.Errorf("decode %s access unit at %v: decoder is closed", au.Codec, au.PTS)
	}
	d.accessUnits.Add(1)
	d.firstErr = nil
	if au.Codec != d.codec {
		return d.fail(fmt.Errorf("decode access unit at %v: codec %s, decoder is for %s", au.PTS, au.Codec, d.codec))
	}
	key := au.Key || decIsKey(d.codec, au.NALUs)
	switch {
	case !key && (d.needKey || d.cfg.Mode == DecodeKeyframes):
		d.skipped.Add(1)
		return nil
	case d.cfg.Mode == DecodeKeyframes && !d.sampler.keep(au.PTS):
		d.skipped.Add(1)
		return nil
	}
	if err := decCheckNALUs(d.codec, au.NALUs); err != nil {
		return d.fail(fmt.Errorf("decode %s access unit at %v: %w", d.codec, au.PTS, err))
	}
	d.needKey = false
	d.curPTS, d.curRecv = au.PTS, au.Received
	if err := d.av.sendNALUs(au.NALUs, int64(au.PTS)); err != nil {
		d.fail(fmt.Errorf("decode %s access unit at %v: %w", d.codec, au.PTS, err))
	}
	if d.cfg.Mode == DecodeKeyframes {
		d.drain(emit)
		return d.firstErr
	}
	d.receive(emit)
	return d.firstErr
}

// Flush hands the pictures still held by the decoder to emit, as at the
// end of a stream, and readies the decoder for a new stream starting with
// a key access unit.
func (d *Decoder) Flush(emit func(*Frame)) error {
	if d.av == nil {
		return fmt.Errorf("flush %s decoder: decoder is closed", d.codec)
	}
	d.firstErr = nil
	d.drain(emit)
	d.needKey = true
	return d.firstErr
}

// Close frees the decoder. Frames already emitted stay valid. Later calls
// do nothing.
func (d *Decoder) Close() {
	if d.av != nil {
		d.av.close()
		d.av = nil
	}
}

// drain makes libavcodec hand out all it holds, then resets it.
func (d *Decoder) drain(emit func(*Frame)) {
	if err := d.av.drain(); err != nil {
		d.fail(fmt.Errorf("drain %s decoder: %w", d.codec, err))
	}
	d.receive(emit)
	d.av.reset()
}

// receive takes every ready picture out of libavcodec.
func (d *Decoder) receive(emit func(*Frame)) {
	for {
		pic, st, err := d.av.receive()
		if err != nil {
			// Pictures still inside come out with the next call.
			d.fail(fmt.Errorf("decode %s picture after access unit at %v: %w", d.codec, d.curPTS, err))
			return
		}
		if st != avGotPicture {
			return
		}
		pts := d.lastPTS
		if pic.pts != avNoPTS {
			pts = time.Duration(pic.pts)
		}
		d.lastPTS = pts
		if pic.corrupt {
			d.fail(fmt.Errorf("decode %s picture at %v: libavcodec reports it corrupt", d.codec, pts))
			continue
		}
		d.decoded.Add(1)
		index := d.index
		d.index++
		if d.cfg.Mode == DecodeAll && !d.sampler.keep(pts) {
			continue
		}
		w, h := decOutputSize(pic.width, pic.height, d.cfg.MaxWidth, d.cfg.MaxHeight)
		f := d.pool.Get(w, h)
		if err := d.av.convert(f); err != nil {
			f.Release()
			d.fail(fmt.Errorf("%s picture at %v: %w", d.codec, pts, err))
			continue
		}
		f.PTS, f.Index, f.Key, f.Received = pts, index, pic.key, d.curRecv
		d.emitted.Add(1)
		emit(f)
	}
}

// fail counts err, reports it, makes the decoder wait for the next key
// access unit, and returns err.
func (d *Decoder) fail(err error) error {
	d.errs.Add(1)
	d.needKey = true
	if d.firstErr == nil {
		d.firstErr = err
	}
	if d.cfg.OnError != nil {
		d.cfg.OnError(err)
	}
	return err
}

// decSampler picks pictures at most one per interval by PTS.
type decSampler struct {
	interval time.Duration
	last     time.Duration
	started  bool
}

// decSampleSlack absorbs the rounding of timestamps converted between time
// bases, so a 10 fps stream sampled to 2 fps keeps every fifth picture.
const decSampleSlack = time.Millisecond

// keep reports whether the picture at pts is chosen. A PTS going backwards
// (a source restarting its clock) starts the sampling over.
func (s *decSampler) keep(pts time.Duration) bool {
	if s.interval <= 0 {
		return true
	}
	if s.started && pts >= s.last && pts-s.last < s.interval-decSampleSlack {
		return false
	}
	s.started = true
	s.last = pts
	return true
}

// decOutputSize fits width x height into maxW x maxH (0: unbounded),
// keeping the aspect ratio; it never scales up.
func decOutputSize(width, height, maxW, maxH int) (int, int) {
	w, h := width, height
	if maxW > 0 && w > maxW {
		h = max(1, (h*maxW+w/2)/w)
		w = maxW
	}
	if maxH > 0 && h > maxH {
		w = max(1, (width*maxH+height/2)/height)
		h = maxH
	}
	return w, h
}

// decIsKey reports whether nalus hold a random access picture: an IDR
// slice for H.264, an IRAP (BLA, IDR or CRA) slice for H.265.
func decIsKey(codec Codec, nalus [][]byte) bool {
	for _, n := range nalus {
		if len(n) == 0 {
			continue
		}
		switch codec {
		case CodecH264:
			if h264.NALUType(n[0]&0x1f) == h264.NALUTypeIDR {
				return true
			}
		case CodecH265:
			t := h265.NALUType((n[0] >> 1) & 0x3f)
			if t >= h265.NALUType_BLA_W_LP && t <= h265.NALUType_CRA_NUT {
				return true
			}
		}
	}
	return false
}

// errDecNoNALUs is returned for an access unit without NAL units.
var errDecNoNALUs = errors.New("access unit has no NAL units")

// decCheckNALUs refuses NAL units whose header is malformed: empty, the
// forbidden_zero_bit set, or (H.265) a two-byte header cut short or with a
// zero temporal id plus one.
func decCheckNALUs(codec Codec, nalus [][]byte) error {
	if len(nalus) == 0 {
		return errDecNoNALUs
	}
	for i, n := range nalus {
		switch {
		case len(n) == 0:
			return fmt.Errorf("NAL unit %d is empty", i)
		case n[0]&0x80 != 0:
			return fmt.Errorf("NAL unit %d (header %#02x): forbidden_zero_bit is set", i, n[0])
		case codec == CodecH265 && len(n) < 2:
			return fmt.Errorf("NAL unit %d: H.265 header needs 2 bytes, has %d", i, len(n))
		case codec == CodecH265 && n[1]&0x07 == 0:
			return fmt.Errorf("NAL unit %d (header %#02x%02x): nuh_temporal_id_plus1 is 0", i, n[0], n[1])
		}
	}
	return nil
}
