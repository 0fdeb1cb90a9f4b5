package ingest

import (
	"context"
	"time"
)

// Codec names the video codec of a stream.
type Codec string

// The codecs ingest carries as access units.
const (
	CodecH264 Codec = "H264"
	CodecH265 Codec = "H265"
)

// AccessUnit is one coded picture as it travels from a source to its
// subscribers: the NAL units of the picture without start codes, in decode
// order. An AccessUnit is shared by every subscriber of a Stream and must be
// treated as read-only.
type AccessUnit struct {
	// Codec is the codec of the NAL units.
	Codec Codec
	// PTS is the presentation time relative to the start of the source.
	// Across reconnects a source keeps it increasing.
	PTS time.Duration
	// NALUs are the NAL units of the picture, without start codes.
	NALUs [][]byte
	// Key is true for a random access point: an IDR picture (H.264) or an
	// IRAP picture (H.265). Key access units carry the parameter sets in
	// force (SPS/PPS, and VPS for H.265) among their NALUs, so a subscriber
	// that starts at one can decode it on its own.
	Key bool
	// Received is when the source finished receiving the access unit.
	Received time.Time
}

// AccessUnitReader hands out access units one at a time, in decode order.
// Stream subscriptions and file demuxers implement it; the decoding pipeline
// consumes it.
type AccessUnitReader interface {
	// Next blocks until the next access unit, ctx ends, or the reader ends
	// (io.EOF).
	Next(ctx context.Context) (*AccessUnit, error)
}

// Frame is one decoded picture, packed BGR24 (the layout OpenCV uses), ready
// for the vision stage without another copy. Frames come from a pool:
// whoever holds one calls Release when done with it.
type Frame struct {
	// Width and Height are the picture size in pixels.
	Width, Height int
	// Stride is the number of bytes per row in Pix (at least 3*Width).
	Stride int
	// Pix holds Height rows of Stride bytes, B, G, R per pixel.
	Pix []byte
	// PTS is the presentation time of the picture relative to the source
	// start.
	PTS time.Duration
	// Index counts the frames decoded from the source, from 0.
	Index int64
	// Key is true when the picture was a random access point.
	Key bool
	// Received is when the access unit whose decoding gave out the picture
	// arrived (zero for sources without arrival times); the start of the
	// glass-to-alert latency.
	Received time.Time

	release func(*Frame)
}

// Release gives the frame back to its pool. The frame must not be used
// afterwards. Release on a frame without a pool does nothing.
func (f *Frame) Release() {
	if f != nil && f.release != nil {
		r := f.release
		f.release = nil
		r(f)
	}
}
