package event

import "time"

// CameraStatus is the connection state of one camera stream.
type CameraStatus string

// The states a camera stream moves through.
const (
	// CameraConnecting: dialling or negotiating the session.
	CameraConnecting CameraStatus = "connecting"
	// CameraLive: media is arriving.
	CameraLive CameraStatus = "live"
	// CameraStalled: the session is up but no media arrived within the
	// stall timeout; a reconnect follows.
	CameraStalled CameraStatus = "stalled"
	// CameraRetrying: the last attempt failed; waiting out the backoff.
	CameraRetrying CameraStatus = "retrying"
	// CameraUnauthorized: the camera refused the credentials; retries
	// continue at the slowest backoff.
	CameraUnauthorized CameraStatus = "unauthorized"
	// CameraStopped: the camera was removed or flowwatch is stopping.
	CameraStopped CameraStatus = "stopped"
)

// CameraState is a camera stream's state at one moment, as reported to the
// console and the alerting engine.
type CameraState struct {
	// Camera is the camera's configured name.
	Camera string `json:"camera"`
	// Stream is "main" for the analysed stream or "live" for the live-view
	// substream.
	Stream string `json:"stream"`
	// Status is the connection state.
	Status CameraStatus `json:"status"`
	// Since is when Status was entered.
	Since time.Time `json:"since"`
	// LastError is the last error met, with secrets removed; empty when
	// none.
	LastError string `json:"last_error,omitempty"`
	// LastErrorAt is when LastError happened.
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// Codec, Width and Height describe the media once known.
	Codec  string `json:"codec,omitempty"`
	Width  int    `json:"width,omitempty"`
	Height int    `json:"height,omitempty"`
}
