package ingest

import (
	"fmt"
	"strings"

	"github.com/VictoriaMetrics/metrics"

	"flowwatch/internal/event"
)

// The metrics ingest exports, each labelled camera="<name>" and
// stream="main" or "live". A Camera keeps them in its own metrics.Set,
// registered by Start and unregistered by Close, so a removed camera leaves
// nothing behind on /metrics.
const (
	// MetricPackets counts RTP packets received.
	MetricPackets = "flowwatch_ingest_packets_total"
	// MetricBytes counts RTP bytes received (headers and payload).
	MetricBytes = "flowwatch_ingest_bytes_total"
	// MetricFrames counts access units (coded pictures) published to the
	// stream.
	MetricFrames = "flowwatch_ingest_frames_total"
	// MetricRTPLost counts RTP packets the camera sent that never arrived,
	// from gaps in sequence numbers.
	MetricRTPLost = "flowwatch_ingest_rtp_lost_total"
	// MetricRTPErrors counts RTP packets that could not be turned into NAL
	// units: truncated or malformed payloads, fragments with a missing
	// piece, packets gortsplib rejected.
	MetricRTPErrors = "flowwatch_ingest_rtp_errors_total"
	// MetricDecodeErrors counts malformed NAL units and parameter sets
	// found by ingest, plus pictures the decoder reports it could not
	// decode (Stream.AddDecodeErrors).
	MetricDecodeErrors = "flowwatch_ingest_decode_errors_total"
	// MetricDropped counts access units dropped by subscriber queues that
	// were full, summed over the stream's subscribers.
	MetricDropped = "flowwatch_ingest_dropped_total"
	// MetricReconnects counts connection attempts after the first one.
	MetricReconnects = "flowwatch_ingest_reconnects_total"
	// MetricState is 1 for the stream's current state and 0 for the
	// others, with an extra label state="connecting", "live", "stalled",
	// "retrying", "unauthorized" or "stopped".
	MetricState = "flowwatch_ingest_state"
)

// cameraStatuses lists every status MetricState has a series for.
func cameraStatuses() []event.CameraStatus {
	return []event.CameraStatus{
		event.CameraConnecting,
		event.CameraLive,
		event.CameraStalled,
		event.CameraRetrying,
		event.CameraUnauthorized,
		event.CameraStopped,
	}
}

// StreamMetrics holds the counters of one camera stream. Its methods are
// safe for concurrent use.
type StreamMetrics struct {
	packets      *metrics.Counter
	bytes        *metrics.Counter
	frames       *metrics.Counter
	rtpLost      *metrics.Counter
	rtpErrors    *metrics.Counter
	decodeErrors *metrics.Counter
	dropped      *metrics.Counter
	reconnects   *metrics.Counter
}

// StreamCounts is a snapshot of a stream's counters.
type StreamCounts struct {
	// Packets and Bytes count RTP received.
	Packets, Bytes uint64
	// Frames counts access units published.
	Frames uint64
	// RTPLost counts packets missing from the sequence.
	RTPLost uint64
	// RTPErrors counts packets that could not be depacketized.
	RTPErrors uint64
	// DecodeErrors counts malformed NAL units and undecodable pictures.
	DecodeErrors uint64
	// Dropped counts access units dropped by full subscriber queues.
	Dropped uint64
	// Reconnects counts connection attempts after the first.
	Reconnects uint64
}

// NewStreamMetrics creates the counters of one stream of camera in set,
// with the names listed above. The set is the caller's to register.
func NewStreamMetrics(set *metrics.Set, camera, stream string) *StreamMetrics {
	labels := streamLabels(camera, stream)
	c := func(name string) *metrics.Counter {
		return set.GetOrCreateCounter(name + "{" + labels + "}")
	}
	return &StreamMetrics{
		packets:      c(MetricPackets),
		bytes:        c(MetricBytes),
		frames:       c(MetricFrames),
		rtpLost:      c(MetricRTPLost),
		rtpErrors:    c(MetricRTPErrors),
		decodeErrors: c(MetricDecodeErrors),
		dropped:      c(MetricDropped),
		reconnects:   c(MetricReconnects),
	}
}

// AddDecodeErrors adds n to the decode error counter.
func (m *StreamMetrics) AddDecodeErrors(n int) {
	if n > 0 {
		m.decodeErrors.Add(n)
	}
}

// Counts returns the current values of the counters.
func (m *StreamMetrics) Counts() StreamCounts {
	return StreamCounts{
		Packets:      m.packets.Get(),
		Bytes:        m.bytes.Get(),
		Frames:       m.frames.Get(),
		RTPLost:      m.rtpLost.Get(),
		RTPErrors:    m.rtpErrors.Get(),
		DecodeErrors: m.decodeErrors.Get(),
		Dropped:      m.dropped.Get(),
		Reconnects:   m.reconnects.Get(),
	}
}

// registerStateGauges adds the MetricState series of one stream to set;
// status reports the stream's current status when the set is scraped.
func registerStateGauges(set *metrics.Set, camera, stream string, status func() event.CameraStatus) {
	labels := streamLabels(camera, stream)
	for _, st := range cameraStatuses() {
		name := fmt.Sprintf("%s{%s,state=%q}", MetricState, labels, string(st))
		set.GetOrCreateGauge(name, func() float64 {
			if status() == st {
				return 1
			}
			return 0
		})
	}
}

// streamLabels renders the camera and stream labels, escaped as the
// Prometheus text format requires.
func streamLabels(camera, stream string) string {
	return `camera="` + escapeLabel(camera) + `",stream="` + escapeLabel(stream) + `"`
}

// escapeLabel escapes a label value for the Prometheus text format:
// backslash, double quote and newline.
func escapeLabel(v string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v)
}
