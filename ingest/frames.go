package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
)

// PipelineConfig configures a FramePipeline.
type PipelineConfig struct {
	// Decoder configures the decoder: mode, analysis rate, threads, size.
	// Its OnError is called besides the pipeline's own counting and
	// logging.
	Decoder DecoderConfig
	// Queue is how many frames wait for the consumer; when it is full the
	// oldest waiting frame is dropped (released and counted) to make room
	// for the newest. 0 means 2.
	Queue int
	// Logger receives one line per decode error; nil means slog.Default().
	// Give it the camera's attributes.
	Logger *slog.Logger
}

// PipelineStats counts what a FramePipeline did.
type PipelineStats struct {
	// Decoded counts pictures decoded intact.
	Decoded int64
	// Delivered counts frames the consumer took with Next.
	Delivered int64
	// Dropped counts frames dropped from the full queue, oldest first.
	Dropped int64
	// DecodeErrors counts decode errors.
	DecodeErrors int64
}

// FramePipeline turns access units from an AccessUnitReader into frames
// for analysis: it decodes them per the decode mode, samples them to the
// analysis rate, and queues them for the consumer. The queue is bounded
// and drops its oldest frame when full, so a slow consumer always gets
// the freshest pictures and never stalls the reader.
//
// The owner runs Run in a goroutine of its own; it returns when its
// context ends or the reader ends. The consumer calls Next, which returns
// the queued frames and then io.EOF if the reader ended, or the error that
// stopped Run. The decoder follows the codec of the access units and is
// opened again when it changes.
type FramePipeline struct {
	src   AccessUnitReader
	cfg   PipelineConfig
	log   *slog.Logger
	queue chan *Frame
	done  chan struct{} // closed when Run has returned
	err   error         // why Run returned; written before done is closed
	ran   atomic.Bool

	// statsMu guards the pair: pictures decoded by decoders already
	// closed, and the decoder in use.
	statsMu       sync.Mutex
	decodedBefore int64
	dec           *Decoder
	delivered     atomic.Int64
	dropped       atomic.Int64
	decodeErrors  atomic.Int64
}

// NewFramePipeline checks cfg and returns a pipeline reading src.
func NewFramePipeline(src AccessUnitReader, cfg PipelineConfig) (*FramePipeline, error) {
	if cfg.Decoder.Mode == "" {
		cfg.Decoder.Mode = DecodeAll
	}
	switch {
	case src == nil:
		return nil, errors.New("new frame pipeline: access unit reader is nil")
	case !cfg.Decoder.Mode.Valid():
		return nil, fmt.Errorf("new frame pipeline: mode %q is neither %q nor %q", cfg.Decoder.Mode, DecodeAll, DecodeKeyframes)
	case cfg.Decoder.Rate < 0:
		return nil, fmt.Errorf("new frame pipeline: rate %g is negative", cfg.Decoder.Rate)
	case cfg.Queue < 0:
		return nil, fmt.Errorf("new frame pipeline: queue length %d is negative", cfg.Queue)
	}
	if cfg.Queue == 0 {
		cfg.Queue = 2
	}
	if cfg.Decoder.Pool == nil {
		cfg.Decoder.Pool = NewFramePool()
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &FramePipeline{
		src:   src,
		cfg:   cfg,
		log:   log,
		queue: make(chan *Frame, cfg.Queue),
		done:  make(chan struct{}),
	}, nil
}

// Stats returns the pipeline's counters; it may be called at any time.
func (p *FramePipeline) Stats() PipelineStats {
	p.statsMu.Lock()
	decoded := p.decodedBefore
	if p.dec != nil {
		decoded += p.dec.Stats().Decoded
	}
	p.statsMu.Unlock()
	return PipelineStats{
		Decoded:      decoded,
		Delivered:    p.delivered.Load(),
		Dropped:      p.dropped.Load(),
		DecodeErrors: p.decodeErrors.Load(),
	}
}

// Run reads, decodes and queues until ctx ends or the reader ends. It
// returns nil when the reader ended with io.EOF (after flushing the
// decoder), ctx's error when ctx ended, or the reader's error. Decode
// errors are counted and logged, not returned: decoding resumes at the
// next key access unit. Run may be called once.
func (p *FramePipeline) Run(ctx context.Context) error {
	if !p.ran.CompareAndSwap(false, true) {
		return errors.New("frame pipeline: Run called twice")
	}
	err := p.run(ctx)
	p.err = err
	close(p.done)
	return err
}

// run is Run's loop; it owns the decoder.
func (p *FramePipeline) run(ctx context.Context) error {
	var dec *Decoder
	defer func() {
		if dec != nil {
			p.retire(dec)
		}
	}()
	for {
		au, err := p.src.Next(ctx)
		if errors.Is(err, io.EOF) {
			if dec != nil {
				dec.Flush(p.push)
			}
			return nil
		}
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return ctxErr
			}
			return fmt.Errorf("frame pipeline: read access unit: %w", err)
		}
		if dec == nil || dec.Codec() != au.Codec {
			if dec != nil {
				dec.Flush(p.push)
				p.retire(dec)
				dec = nil
			}
			if dec, err = p.open(au.Codec); err != nil {
				return fmt.Errorf("frame pipeline: %w", err)
			}
		}
		// Decode errors reach onError; the decoder resumes by itself.
		_ = dec.Decode(au, p.push)
	}
}

// open makes the decoder for codec the current one.
func (p *FramePipeline) open(codec Codec) (*Decoder, error) {
	cfg := p.cfg.Decoder
	userOnError := cfg.OnError
	cfg.OnError = func(err error) {
		p.decodeErrors.Add(1)
		p.log.Warn("decode error; waiting for the next key frame", "err", err)
		if userOnError != nil {
			userOnError(err)
		}
	}
	dec, err := NewDecoder(codec, cfg)
	if err != nil {
		return nil, err
	}
	p.statsMu.Lock()
	p.dec = dec
	p.statsMu.Unlock()
	return dec, nil
}

// retire closes dec and folds its counts into the pipeline's.
func (p *FramePipeline) retire(dec *Decoder) {
	p.statsMu.Lock()
	p.decodedBefore += dec.Stats().Decoded
	p.dec = nil
	p.statsMu.Unlock()
	dec.Close()
}

// push queues f, dropping the oldest queued frame while the queue is full.
// Only Run's goroutine pushes, so once a slot is free the send succeeds.
func (p *FramePipeline) push(f *Frame) {
	for {
		select {
		case p.queue <- f:
			return
		default:
		}
		select {
		case old := <-p.queue:
			old.Release()
			p.dropped.Add(1)
		default:
		}
	}
}

// Next returns the next queued frame, waiting for one. The caller owns
// the frame and must Release it. After Run returned and the queue is
// empty, Next returns io.EOF if the reader ended, else the error that
// stopped Run. It returns ctx's error if ctx ends first. One consumer
// goroutine calls Next.
func (p *FramePipeline) Next(ctx context.Context) (*Frame, error) {
	select {
	case f := <-p.queue:
		p.delivered.Add(1)
		return f, nil
	case <-p.done:
		select {
		case f := <-p.queue:
			p.delivered.Add(1)
			return f, nil
		default:
		}
		if p.err != nil {
			return nil, p.err
		}
		return nil, io.EOF
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
