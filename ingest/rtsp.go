package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph265"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/pion/rtp"
)

// Source feeds a Stream, one session per Run call.
type Source interface {
	// Run opens a session, calls st.Begin once it is set up, publishes
	// access units to st until ctx ends or the session fails, and returns
	// why it ended: ctx.Err() after ctx ends, an error wrapping
	// ErrUnauthorized when the credentials were refused. Calls to Run
	// follow one another, never overlap.
	Run(ctx context.Context, st *Stream) error
}

// ErrUnauthorized is wrapped by errors from a camera that refused the
// credentials (RTSP 401).
var ErrUnauthorized = errors.New("unauthorized")

// Transport selects how RTP travels from the camera.
type Transport string

// The transports a camera may be read with.
const (
	// TransportAuto tries UDP first and falls back to TCP when no packet
	// arrives within autoUDPWait (gortsplib's automatic choice). The empty
	// Transport means auto too.
	TransportAuto Transport = "auto"
	// TransportTCP interleaves RTP in the RTSP connection.
	TransportTCP Transport = "tcp"
	// TransportUDP receives RTP on UDP ports of its own.
	TransportUDP Transport = "udp"
)

// autoUDPWait is how long TransportAuto waits for the first UDP packet
// before switching to TCP.
const autoUDPWait = 3 * time.Second

// DefaultRequestTimeout bounds dialling, each RTSP request, and silence on
// a TCP session when RTSPConfig.RequestTimeout is zero.
const DefaultRequestTimeout = 10 * time.Second

// maxPendingNALUs bounds the NAL units (parameter sets, SEI) that arrive
// without a picture and wait to be joined to the next one; beyond it the
// oldest are discarded.
const maxPendingNALUs = 16

// valid reports whether t is one of the transports above or empty.
func (t Transport) valid() bool {
	switch t {
	case "", TransportAuto, TransportTCP, TransportUDP:
		return true
	}
	return false
}

// RTSPConfig configures an RTSPSource.
type RTSPConfig struct {
	// URL is the rtsp:// or rtsps:// address; it may carry credentials as
	// userinfo.
	URL string
	// Username and Password, when Username is set, replace the URL's
	// credentials. gortsplib answers basic and digest challenges alike.
	Username, Password string
	// Transport is auto (default), tcp or udp.
	Transport Transport
	// RequestTimeout bounds dialling, each RTSP request and silence on a
	// TCP session. Default DefaultRequestTimeout.
	RequestTimeout time.Duration
	// Logger receives one line per transport switch; nil means
	// slog.Default().
	Logger *slog.Logger
	// Dial, when set, opens each session's TCP connection; serve passes
	// the SSRF guard's dialer (internal/netguard), which judges the
	// address the camera's name resolves to at that moment. Nil dials
	// directly.
	Dial DialFunc
}

// DialFunc opens a network connection, as net.Dialer.DialContext does.
type DialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// RTSPSource reads H.264 or H.265 video from an RTSP camera with
// gortsplib. Each Run is one RTSP session; the source keeps presentation
// times increasing from one session to the next, so subscribers see one
// continuous timeline across reconnects.
type RTSPSource struct {
	u        *base.URL
	redacted string
	password string
	timeout  time.Duration
	tr       Transport
	log      *slog.Logger
	dial     DialFunc

	// Timeline carried across sessions. Only the packet callback of the
	// current session touches these; sessions never overlap, and the
	// client's Close orders one session's callbacks before the next's.
	havePTS  bool
	lastPTS  time.Duration
	lastWall time.Time
}

// NewRTSPSource checks cfg and returns a source for it.
func NewRTSPSource(cfg RTSPConfig) (*RTSPSource, error) {
	redacted := RedactURL(cfg.URL)
	if !cfg.Transport.valid() {
		return nil, fmt.Errorf("rtsp source %s: transport %q is not auto, tcp or udp", redacted, cfg.Transport)
	}
	u, err := base.ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("rtsp source: parse URL %s: %s", redacted, redactText(err.Error(), cfg.Password))
	}
	if u.Scheme != "rtsp" && u.Scheme != "rtsps" {
		return nil, fmt.Errorf("rtsp source %s: scheme %q is not rtsp or rtsps", redacted, u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("rtsp source %s: no host", redacted)
	}
	password := cfg.Password
	if cfg.Username != "" {
		u.User = url.UserPassword(cfg.Username, cfg.Password)
	} else if u.User != nil {
		password, _ = u.User.Password()
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &RTSPSource{
		u:        u,
		redacted: RedactURL(u.String()),
		password: password,
		timeout:  cfg.RequestTimeout,
		tr:       cfg.Transport,
		log:      cfg.Logger,
		dial:     cfg.Dial,
	}, nil
}

// String returns the source's URL with the password redacted.
func (s *RTSPSource) String() string { return s.redacted }

// Run implements Source: DESCRIBE, SETUP of the first H.264 or H.265
// video media, PLAY, then publishing until the session ends.
func (s *RTSPSource) Run(ctx context.Context, st *Stream) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m := st.Metrics()
	c := &gortsplib.Client{
		Scheme:                s.u.Scheme,
		Host:                  s.u.Host,
		ReadTimeout:           s.timeout,
		WriteTimeout:          s.timeout,
		Transport:             s.gortsplibTransport(),
		InitialUDPReadTimeout: autoUDPWait,
		DialContext:           s.dial,
		OnPacketsLost: func(lost uint64) {
			m.rtpLost.AddInt64(int64(lost))
		},
		OnDecodeError: func(error) {
			m.rtpErrors.Inc()
		},
		OnTransportSwitch: func(err error) {
			s.log.Info("rtsp transport switch", "url", s.redacted,
				"reason", redactText(err.Error(), s.password))
		},
	}
	if err := c.Start2(); err != nil {
		return s.fail(ctx, "start client for", err)
	}

	// The watcher closes the client when ctx ends, which makes a pending
	// request or Wait return at once.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-ctx.Done():
			c.Close()
		case <-stop:
		}
	}()
	defer func() {
		close(stop)
		c.Close()
		wg.Wait()
	}()

	desc, _, err := c.Describe(s.u)
	if err != nil {
		return s.fail(ctx, "describe", err)
	}
	sess, err := s.newSession(c, desc, st)
	if err != nil {
		return err
	}
	if _, err := c.Setup(desc.BaseURL, sess.media, 0, 0); err != nil {
		return s.fail(ctx, "setup", err)
	}
	c.OnPacketRTP(sess.media, sess.format, sess.onPacket)
	st.Begin(sess.codec, sess.sdpParams)
	if _, err := c.Play(nil); err != nil {
		return s.fail(ctx, "play", err)
	}
	return s.fail(ctx, "read", c.Wait())
}

func (s *RTSPSource) gortsplibTransport() *gortsplib.Transport {
	var t gortsplib.Transport
	switch s.tr {
	case TransportTCP:
		t = gortsplib.TransportTCP
	case TransportUDP:
		t = gortsplib.TransportUDP
	default:
		return nil
	}
	return &t
}

// fail turns a gortsplib error met during step into the error Run returns:
// ctx.Err() once ctx ended, ErrUnauthorized wrapped for a 401, and never a
// password in the text.
func (s *RTSPSource) fail(ctx context.Context, step string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	if err == nil {
		err = errors.New("session ended")
	}
	msg := fmt.Sprintf("%s %s: %s", step, s.redacted, redactText(err.Error(), s.password))
	if isUnauthorized(err) {
		return &sourceError{msg: msg, errs: []error{ErrUnauthorized, err}}
	}
	return &sourceError{msg: msg, errs: []error{err}}
}

// isUnauthorized reports whether err is the camera refusing credentials.
func isUnauthorized(err error) bool {
	var bad liberrors.ErrClientBadStatusCode
	if errors.As(err, &bad) && bad.Code == base.StatusUnauthorized {
		return true
	}
	var setup liberrors.ErrClientAuthSetup
	return errors.As(err, &setup)
}

// sourceError is an error whose text has its secrets removed while the
// errors it wraps stay available to errors.Is and errors.As.
type sourceError struct {
	msg  string
	errs []error
}

func (e *sourceError) Error() string   { return e.msg }
func (e *sourceError) Unwrap() []error { return e.errs }

// newSession picks the first H.264 or H.265 video format of desc and
// prepares its depacketizer.
func (s *RTSPSource) newSession(c *gortsplib.Client, desc *description.Session, st *Stream) (*rtspSession, error) {
	sess := &rtspSession{src: s, client: c, stream: st, metrics: st.Metrics()}

	var h264f *format.H264
	var h265f *format.H265
	if medi := desc.FindFormat(&h264f); medi != nil {
		dec, err := h264f.CreateDecoder()
		if err != nil {
			return nil, fmt.Errorf("describe %s: H.264 depacketizer: %w", s.redacted, err)
		}
		sps, pps := h264f.SafeParams()
		sess.media, sess.format, sess.codec = medi, h264f, CodecH264
		sess.sdpParams = nonEmpty(sps, pps)
		sess.decode = func(pkt *rtp.Packet) ([][]byte, error) {
			au, err := dec.Decode(pkt)
			if errors.Is(err, rtph264.ErrMorePacketsNeeded) || errors.Is(err, rtph264.ErrNonStartingPacketAndNoPrevious) {
				return nil, nil
			}
			return au, err
		}
		return sess, nil
	}
	if medi := desc.FindFormat(&h265f); medi != nil {
		dec, err := h265f.CreateDecoder()
		if err != nil {
			return nil, fmt.Errorf("describe %s: H.265 depacketizer: %w", s.redacted, err)
		}
		vps, sps, pps := h265f.SafeParams()
		sess.media, sess.format, sess.codec = medi, h265f, CodecH265
		sess.sdpParams = nonEmpty(vps, sps, pps)
		sess.decode = func(pkt *rtp.Packet) ([][]byte, error) {
			au, err := dec.Decode(pkt)
			if errors.Is(err, rtph265.ErrMorePacketsNeeded) || errors.Is(err, rtph265.ErrNonStartingPacketAndNoPrevious) {
				return nil, nil
			}
			return au, err
		}
		return sess, nil
	}

	var offered []string
	for _, medi := range desc.Medias {
		for _, f := range medi.Formats {
			offered = append(offered, f.Codec())
		}
	}
	return nil, fmt.Errorf("describe %s: no H.264 or H.265 video (offered: %s)", s.redacted, strings.Join(offered, ", "))
}

func nonEmpty(bufs ...[]byte) [][]byte {
	var out [][]byte
	for _, b := range bufs {
		if len(b) > 0 {
			out = append(out, b)
		}
	}
	return out
}

// rtspSession turns one session's RTP packets into access units.
type rtspSession struct {
	src       *RTSPSource
	client    *gortsplib.Client
	stream    *Stream
	metrics   *StreamMetrics
	media     *description.Media
	format    format.Format
	codec     Codec
	sdpParams [][]byte
	// decode depacketizes; it returns nil, nil while an access unit is
	// incomplete.
	decode func(*rtp.Packet) ([][]byte, error)

	// mu serializes the packet callback, which gortsplib may call from a
	// UDP reader and later, after a transport switch, from a TCP one.
	mu       sync.Mutex
	started  bool
	offset   time.Duration
	havePrev bool
	prevTS   uint32
	prevPTS  time.Duration
	pending  [][]byte
}

// onPacket handles one RTP packet of the session's media.
func (ss *rtspSession) onPacket(pkt *rtp.Packet) {
	now := time.Now()
	ss.metrics.packets.Inc()
	ss.metrics.bytes.Add(pkt.MarshalSize())
	raw, ok := ss.client.PacketPTS2(ss.media, pkt)

	ss.mu.Lock()
	defer ss.mu.Unlock()

	pts := ticksToDuration(raw, ss.format.ClockRate())
	// The depacketizer also ends an access unit when the timestamp moves
	// on without a marker bit; that access unit belongs to the previous
	// packet's time.
	auPTS := pts
	if !pkt.Marker && ss.havePrev && pkt.Timestamp != ss.prevTS {
		auPTS = ss.prevPTS
	}
	if ok {
		ss.havePrev, ss.prevTS, ss.prevPTS = true, pkt.Timestamp, pts
	}

	nalus, err := ss.decode(pkt)
	if err != nil {
		ss.metrics.rtpErrors.Inc()
		return
	}
	if nalus == nil || !ok {
		return
	}
	nalus, bad := cleanAU(ss.codec, nalus)
	ss.metrics.AddDecodeErrors(bad)
	if len(nalus) == 0 {
		return
	}
	hasPicture, key := auInfo(ss.codec, nalus)
	if !hasPicture {
		ss.pending = append(ss.pending, nalus...)
		if over := len(ss.pending) - maxPendingNALUs; over > 0 {
			ss.pending = ss.pending[over:]
		}
		return
	}
	if len(ss.pending) > 0 {
		nalus = append(ss.pending, nalus...)
		ss.pending = nil
	}
	if !ss.started {
		if !key {
			return
		}
		ss.started = true
		ss.offset = ss.src.sessionOffset(auPTS, now)
	}
	out := auPTS + ss.offset
	ss.src.notePTS(out, now)
	ss.stream.Publish(&AccessUnit{
		Codec:    ss.codec,
		PTS:      out,
		NALUs:    nalus,
		Key:      key,
		Received: now,
	})
}

// sessionOffset returns what to add to a new session's presentation times
// so that its first access unit follows the previous session's last one
// by the wall-clock time between them, or starts at 0 for the source's
// first session.
func (s *RTSPSource) sessionOffset(first time.Duration, now time.Time) time.Duration {
	if !s.havePTS {
		return -first
	}
	gap := now.Sub(s.lastWall)
	if gap < time.Millisecond {
		gap = time.Millisecond
	}
	return s.lastPTS + gap - first
}

// notePTS records a published presentation time for the next session's
// offset.
func (s *RTSPSource) notePTS(pts time.Duration, now time.Time) {
	if !s.havePTS || pts > s.lastPTS {
		s.lastPTS = pts
	}
	s.lastWall = now
	s.havePTS = true
}

// ticksToDuration converts RTP clock ticks to a duration without
// overflowing for long sessions.
func ticksToDuration(ticks int64, clockRate int) time.Duration {
	if clockRate <= 0 {
		return 0
	}
	cr := int64(clockRate)
	return time.Duration(ticks/cr)*time.Second + time.Duration(ticks%cr)*time.Second/time.Duration(cr)
}
