package ingest

import (
	"math/rand/v2"
	"time"
)

// jitterFloor is the smallest fraction of the nominal delay a jittered
// delay can be: delays are spread over [0.8, 1.0] of nominal so that
// cameras that failed together do not all retry at the same instant.
const jitterFloor = 0.8

// backoff computes reconnect delays: min, 2*min, 4*min ... capped at max,
// each shortened by a random jitter of up to 20%. It is not safe for
// concurrent use; each camera stream's supervisor owns one.
type backoff struct {
	min, max time.Duration
	// jitter returns a number in [0, 1); nil means math/rand/v2.
	jitter  func() float64
	attempt int
}

// next returns the delay before the next attempt and advances the
// sequence.
func (b *backoff) next() time.Duration {
	d := b.min
	for i := 0; i < b.attempt && d < b.max; i++ {
		d *= 2
	}
	if d > b.max {
		d = b.max
	}
	b.attempt++
	return b.jittered(d)
}

// slowest returns a delay at the cap, for failures that retrying soon
// cannot fix (wrong credentials). It does not advance the sequence.
func (b *backoff) slowest() time.Duration {
	return b.jittered(b.max)
}

// reset starts the sequence again from min, after a session that worked.
func (b *backoff) reset() {
	b.attempt = 0
}

func (b *backoff) jittered(d time.Duration) time.Duration {
	r := rand.Float64
	if b.jitter != nil {
		r = b.jitter
	}
	return time.Duration(float64(d) * (jitterFloor + (1-jitterFloor)*r()))
}
