package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"flowwatch/internal/event"
)

// Defaults CameraConfig fills in for zero fields.
const (
	// DefaultStallTimeout is how long a playing session may go without an
	// access unit before it is closed and reopened.
	DefaultStallTimeout = 5 * time.Second
	// DefaultBackoffMin is the first reconnect delay.
	DefaultBackoffMin = 500 * time.Millisecond
	// DefaultBackoffMax caps the reconnect delay; it is also the delay
	// between attempts while the camera refuses the credentials.
	DefaultBackoffMax = 30 * time.Second
)

// Stream names used in camera states and metric labels.
const (
	// StreamMain names the analysed stream.
	StreamMain = "main"
	// StreamLive names the live-view substream.
	StreamLive = "live"
)

// errStalled is wrapped by the error that ends a session for lack of media.
var errStalled = errors.New("stalled")

// CameraConfig configures a Camera. Zero durations take the defaults
// above.
type CameraConfig struct {
	// Name identifies the camera in states, logs and metrics.
	Name string
	// URL is the rtsp:// or rtsps:// address of the analysed stream.
	URL string
	// LiveURL is an optional lighter substream for live viewing; without
	// it the live view uses the main stream.
	LiveURL string
	// Username and Password, when Username is set, replace credentials
	// given in the URLs.
	Username, Password string
	// Transport is auto (default), tcp or udp.
	Transport Transport
	// StallTimeout is how long a playing session may go without media
	// before it is closed and reopened. Default DefaultStallTimeout.
	StallTimeout time.Duration
	// BackoffMin and BackoffMax bound the delay between connection
	// attempts; it doubles after each failure and returns to BackoffMin
	// once media flows. Defaults DefaultBackoffMin, DefaultBackoffMax.
	BackoffMin, BackoffMax time.Duration
	// RequestTimeout bounds dialling and each RTSP request. Default
	// DefaultRequestTimeout.
	RequestTimeout time.Duration
	// GOPCache is passed to each stream's StreamConfig.
	GOPCache int
	// Logger receives state changes and session failures, one line each;
	// nil means slog.Default().
	Logger *slog.Logger
	// Dial, when set, opens every RTSP connection of both streams (see
	// RTSPConfig.Dial).
	Dial DialFunc
	// OnState, when set, receives every change of a stream's state
	// (status, error, codec or size), in order. It is called from the
	// camera's goroutines, including the one receiving media, so it must
	// return quickly; it must not call Close.
	OnState func(event.CameraState)
}

// withDefaults returns c with every zero field that has a default filled
// in.
func (c CameraConfig) withDefaults() CameraConfig {
	if c.Transport == "" {
		c.Transport = TransportAuto
	}
	if c.StallTimeout <= 0 {
		c.StallTimeout = DefaultStallTimeout
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = DefaultBackoffMin
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = DefaultBackoffMax
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Camera supervises the RTSP sessions of one camera: its main stream and,
// when configured, its live-view substream, each with its own Stream,
// state and metrics. Each stream goes connecting → live, and on a failure
// or a stall (no media for StallTimeout) through retrying or stalled back
// to connecting after a capped exponential backoff with jitter. A camera
// that refuses the credentials is unauthorized and is retried only every
// BackoffMax.
type Camera struct {
	cfg  CameraConfig
	log  *slog.Logger
	set  *metrics.Set
	main *cameraStream
	live *cameraStream

	// notifyMu orders state updates with their OnState calls.
	notifyMu sync.Mutex

	mu      sync.Mutex
	started bool
	closed  bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// NewCamera checks cfg and returns a camera ready to Start.
func NewCamera(cfg CameraConfig) (*Camera, error) {
	cfg = cfg.withDefaults()
	if cfg.Name == "" {
		return nil, fmt.Errorf("camera %s: no name", RedactURL(cfg.URL))
	}
	if cfg.BackoffMin > cfg.BackoffMax {
		return nil, fmt.Errorf("camera %q: backoff min %s exceeds max %s", cfg.Name, cfg.BackoffMin, cfg.BackoffMax)
	}
	c := &Camera{
		cfg: cfg,
		log: cfg.Logger.With("camera", cfg.Name),
		set: metrics.NewSet(),
	}
	var err error
	c.main, err = c.newCameraStream(StreamMain, cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.LiveURL != "" {
		c.live, err = c.newCameraStream(StreamLive, cfg.LiveURL)
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *Camera) newCameraStream(kind, rawURL string) (*cameraStream, error) {
	src, err := NewRTSPSource(RTSPConfig{
		URL:            rawURL,
		Username:       c.cfg.Username,
		Password:       c.cfg.Password,
		Transport:      c.cfg.Transport,
		RequestTimeout: c.cfg.RequestTimeout,
		Logger:         c.log.With("stream", kind),
		Dial:           c.cfg.Dial,
	})
	if err != nil {
		return nil, fmt.Errorf("camera %q %s: %w", c.cfg.Name, kind, err)
	}
	cs := &cameraStream{
		cam:     c,
		kind:    kind,
		source:  src,
		metrics: NewStreamMetrics(c.set, c.cfg.Name, kind),
		log:     c.log.With("stream", kind),
		state: event.CameraState{
			Camera: c.cfg.Name,
			Stream: kind,
			Status: event.CameraStopped,
			Since:  time.Now(),
		},
	}
	cs.stream = NewStream(StreamConfig{
		Name:     c.cfg.Name + "/" + kind,
		GOPCache: c.cfg.GOPCache,
		Metrics:  cs.metrics,
		OnMedia:  cs.onMedia,
	})
	registerStateGauges(c.set, c.cfg.Name, kind, cs.status)
	return cs, nil
}

// Name returns the camera's name.
func (c *Camera) Name() string { return c.cfg.Name }

// Main returns the stream analysed by the vision stage.
func (c *Camera) Main() *Stream { return c.main.stream }

// Live returns the stream for live viewing: the substream when LiveURL is
// configured, the main stream otherwise.
func (c *Camera) Live() *Stream {
	if c.live != nil {
		return c.live.stream
	}
	return c.main.stream
}

// State returns the main stream's current state.
func (c *Camera) State() event.CameraState { return c.main.snapshot() }

// States returns the current state of the main stream and, when
// configured, of the live substream.
func (c *Camera) States() []event.CameraState {
	out := []event.CameraState{c.main.snapshot()}
	if c.live != nil {
		out = append(out, c.live.snapshot())
	}
	return out
}

// MetricsSet returns the set holding the camera's metrics, registered for
// export between Start and Close.
func (c *Camera) MetricsSet() *metrics.Set { return c.set }

// Start registers the camera's metrics and starts supervising its streams
// until ctx ends or Close is called. A camera starts once.
func (c *Camera) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return fmt.Errorf("camera %q: start after close", c.cfg.Name)
	case c.started:
		return fmt.Errorf("camera %q: already started", c.cfg.Name)
	}
	c.started = true
	metrics.RegisterSet(c.set)
	runCtx, cancel := context.WithCancel(ctx)
	c.cancel = cancel
	for _, cs := range c.streams() {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			cs.run(runCtx)
		}()
	}
	return nil
}

// Close stops the camera: sessions are closed, the streams end (their
// subscribers get io.EOF), the state becomes stopped and the metrics are
// unregistered. Close waits for every goroutine of the camera to return
// and is idempotent.
func (c *Camera) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	cancel, started := c.cancel, c.started
	c.mu.Unlock()

	if cancel != nil {
		cancel()
	}
	c.wg.Wait()
	for _, cs := range c.streams() {
		cs.stream.Close()
		cs.setStatus(event.CameraStopped, nil)
	}
	if started {
		metrics.UnregisterSet(c.set, true)
	}
}

func (c *Camera) streams() []*cameraStream {
	if c.live != nil {
		return []*cameraStream{c.main, c.live}
	}
	return []*cameraStream{c.main}
}

// checkInterval is how often a supervisor looks at its stream: often
// enough to report live promptly and to catch a stall within a tenth of
// its timeout.
func (c *Camera) checkInterval() time.Duration {
	d := c.cfg.StallTimeout / 10
	return min(max(d, 10*time.Millisecond), 100*time.Millisecond)
}

// cameraStream is one supervised stream of a camera.
type cameraStream struct {
	cam     *Camera
	kind    string
	source  Source
	stream  *Stream
	metrics *StreamMetrics
	log     *slog.Logger

	mu    sync.Mutex
	state event.CameraState
}

// run connects, watches and reconnects until ctx ends; then the state
// becomes stopped.
func (cs *cameraStream) run(ctx context.Context) {
	defer cs.setStatus(event.CameraStopped, nil)
	cfg := cs.cam.cfg
	bo := backoff{min: cfg.BackoffMin, max: cfg.BackoffMax}
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			cs.metrics.reconnects.Inc()
		}
		if cs.status() != event.CameraUnauthorized {
			cs.setStatus(event.CameraConnecting, nil)
		}
		err := cs.session(ctx, &bo)
		if ctx.Err() != nil {
			return
		}
		var delay time.Duration
		switch {
		case errors.Is(err, ErrUnauthorized):
			delay = bo.slowest()
			cs.setStatus(event.CameraUnauthorized, err)
		case errors.Is(err, errStalled):
			delay = bo.next()
		default:
			delay = bo.next()
			cs.setStatus(event.CameraRetrying, err)
		}
		cs.log.Warn("camera session ended", "status", string(cs.status()),
			"error", cs.redact(err), "retry_in", delay.Round(time.Millisecond))

		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// session runs one source session under the stall watchdog and returns
// why it ended. When media starts flowing the state becomes live and bo
// starts over.
func (cs *cameraStream) session(ctx context.Context, bo *backoff) error {
	cfg := cs.cam.cfg
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()

	start := time.Now()
	startGen := cs.stream.Generation()
	ended := make(chan error, 1)
	// The source goroutine is owned by this call, which never returns
	// before it has ended.
	go func() { ended <- cs.source.Run(sctx, cs.stream) }()

	tick := time.NewTicker(cs.cam.checkInterval())
	defer tick.Stop()
	var playing time.Time
	live := false
	for {
		select {
		case err := <-ended:
			if !live && cs.stream.LastPublished().After(start) {
				// Media flowed, if only between two looks.
				bo.reset()
			}
			if err == nil {
				return fmt.Errorf("camera %q %s: session ended", cfg.Name, cs.kind)
			}
			return fmt.Errorf("camera %q %s: %w", cfg.Name, cs.kind, err)
		case <-ctx.Done():
			cancel()
			<-ended
			return ctx.Err()
		case now := <-tick.C:
			if playing.IsZero() {
				if cs.stream.Generation() == startGen {
					// Still negotiating: the source's request timeout
					// bounds this part.
					continue
				}
				playing = now
			}
			ref := playing
			if last := cs.stream.LastPublished(); last.After(start) {
				ref = last
				if !live {
					live = true
					bo.reset()
					cs.setStatus(event.CameraLive, nil)
				}
			}
			limit := cfg.StallTimeout
			if !live && cfg.Transport == TransportAuto {
				limit += autoUDPWait
			}
			if now.Sub(ref) > limit {
				err := fmt.Errorf("camera %q %s: no media for %s: %w", cfg.Name, cs.kind, limit, errStalled)
				cs.setStatus(event.CameraStalled, err)
				cancel()
				<-ended
				return err
			}
		}
	}
}

func (cs *cameraStream) redact(err error) string {
	if err == nil {
		return ""
	}
	return redactText(err.Error(), cs.cam.cfg.Password)
}

// status returns the current status.
func (cs *cameraStream) status() event.CameraStatus {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.state.Status
}

// snapshot returns a copy of the current state.
func (cs *cameraStream) snapshot() event.CameraState {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.state
}

// setStatus moves to status, recording err (redacted) when not nil, and
// reports the change. Setting the current status again without an error
// changes nothing.
func (cs *cameraStream) setStatus(status event.CameraStatus, err error) {
	cs.update(func(st *event.CameraState) bool {
		if st.Status == status && err == nil {
			return false
		}
		now := time.Now()
		if st.Status != status {
			st.Status = status
			st.Since = now
		}
		if err != nil {
			st.LastError = cs.redact(err)
			st.LastErrorAt = now
		}
		return true
	})
}

// onMedia records the codec and picture size of the stream.
func (cs *cameraStream) onMedia(m Media) {
	cs.update(func(st *event.CameraState) bool {
		if st.Codec == string(m.Codec) && st.Width == m.Width && st.Height == m.Height {
			return false
		}
		st.Codec, st.Width, st.Height = string(m.Codec), m.Width, m.Height
		return true
	})
}

// update applies change to the state and, when it reports a change, logs
// a status change and calls OnState, in the order of the updates.
func (cs *cameraStream) update(change func(*event.CameraState) bool) {
	c := cs.cam
	c.notifyMu.Lock()
	defer c.notifyMu.Unlock()

	cs.mu.Lock()
	before := cs.state.Status
	if !change(&cs.state) {
		cs.mu.Unlock()
		return
	}
	st := cs.state
	cs.mu.Unlock()

	// Failures are logged by run together with the retry delay; the
	// other transitions get a line of their own here.
	if st.Status != before {
		switch st.Status {
		case event.CameraLive, event.CameraStopped:
			cs.log.Info("camera state", "status", string(st.Status))
		case event.CameraConnecting:
			cs.log.Debug("camera state", "status", string(st.Status))
		}
	}
	if c.cfg.OnState != nil {
		c.cfg.OnState(st)
	}
}
