package console

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/logging"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"flowwatch/ingest"
)

// LiveStreams finds the stream a camera's live view shows.
type LiveStreams interface {
	// LiveStream returns the camera's live-view substream when it has
	// one, else its main stream; false for an unknown camera.
	LiveStream(camera string) (*ingest.Stream, bool)
}

// Defaults and bounds of the WHEP endpoint.
const (
	// DefaultMaxViewers is WHEPConfig.MaxViewers when none is given.
	DefaultMaxViewers = 64

	// whepMaxOffer bounds the body of an offer.
	whepMaxOffer = 64 << 10
	// whepQueueLen bounds a viewer's queue of access units (about 2 s
	// at 15 fps). A cached group of pictures longer than that is not
	// sent at once: the viewer gets its keyframe, then waits for the
	// next one.
	whepQueueLen = 32
	// whepGatherTimeout bounds the wait for ICE gathering before the
	// answer goes out with the candidates gathered so far.
	whepGatherTimeout = 5 * time.Second
	// whepConnectTimeout ends a session that did not connect in time.
	whepConnectTimeout = 20 * time.Second
	// whepDisconnectGrace ends a session that stays disconnected this
	// long.
	whepDisconnectGrace = 10 * time.Second
	// whepDeleteWait bounds how long DELETE waits for the session to end.
	whepDeleteWait = 5 * time.Second
	// whepMTU is the largest RTP payload sent, as pion's own tracks do.
	whepMTU = 1200
	// whepClockRate is the RTP clock of H.264.
	whepClockRate = 90000
	// whepFallbackProfile is the profile-level-id offered before the
	// stream has an SPS (Constrained Baseline 3.1).
	whepFallbackProfile = "42e01f"
)

// whepRoles may watch live video.
var whepRoles = []string{RoleAdmin, RoleOperator, RoleGuard, RolePlanner, RoleViewer}

// Why sessions end, as logged.
var (
	errWHEPDeleted      = errors.New("deleted by the viewer")
	errWHEPClosing      = errors.New("server closing")
	errWHEPConnFailed   = errors.New("connection failed")
	errWHEPConnClosed   = errors.New("connection closed")
	errWHEPDisconnected = fmt.Errorf("disconnected for more than %v", whepDisconnectGrace)
	errWHEPNoConnect    = fmt.Errorf("not connected within %v", whepConnectTimeout)
	errWHEPStreamClosed = errors.New("camera stream closed")
)

// WHEPConfig configures a WHEP endpoint.
type WHEPConfig struct {
	// Streams finds each camera's live-view stream. Required.
	Streams LiveStreams
	// Logger receives one line per session start and end; nil means
	// slog.Default(). pion's own errors arrive at Warn, its warnings at
	// Debug.
	Logger *slog.Logger
	// Metrics receives flowwatch_whep_sessions (gauge),
	// flowwatch_whep_sessions_total,
	// flowwatch_whep_dropped_access_units_total and the histogram
	// flowwatch_whep_relay_seconds (per viewer and access unit: from the
	// access unit's arrival, AccessUnit.Received, to just after its last
	// packet was written to the viewer's track; a new viewer's first
	// group of pictures, sent from the stream's cache, counts with its
	// age); nil keeps them in a set of their own that nothing exports.
	Metrics *metrics.Set
	// MaxViewers bounds the sessions open at once, over all cameras
	// together: each costs a UDP socket, a DTLS session and the camera's
	// bit rate on the uplink. A viewer over the bound gets 503. Default
	// DefaultMaxViewers.
	MaxViewers int
	// ICEPortMin and ICEPortMax, when both set, bound the local UDP
	// ports of the sessions (each session takes one port per address),
	// for a firewall to open. Zero means any ephemeral port.
	ICEPortMin, ICEPortMax uint16
	// NAT1To1IPs are public addresses that map one to one to this host
	// (a cloud VM, a port-forwarding router): they are announced as
	// host candidates in addition to the local addresses, so viewers
	// both inside and outside can connect.
	NAT1To1IPs []string
	// ICELoopback also announces loopback candidates (127.0.0.1, ::1).
	// Viewers on other hosts do not need them, nor does a browser on this
	// host while it has another interface; a viewer on a host with only
	// loopback (tests in a sandbox) does.
	ICELoopback bool

	// ipFilter, when set, keeps only the local addresses it accepts
	// (tests keep loopback only).
	ipFilter func(net.IP) bool
	// onRelay, when set, receives every duration that
	// flowwatch_whep_relay_seconds records, exactly (benchmarks read
	// percentiles from it). It is called on the sessions' goroutines and
	// must return quickly.
	onRelay func(time.Duration)
}

// WHEP serves live video of the cameras over WebRTC (WHEP, RFC 9725):
// each viewer POSTs an SDP offer to /whep/<camera> and gets an answer with
// all its ICE candidates (no trickle); the camera's H.264 is relayed as
// it comes, without decoding or encoding. Every viewer has its own
// subscription to the camera's stream, so it starts at a keyframe and a
// slow viewer drops only its own pictures, up to the next keyframe. It is
// safe for concurrent use.
type WHEP struct {
	cfg     WHEPConfig
	log     *slog.Logger
	api     *webrtc.API
	gauge   *metrics.Gauge
	total   *metrics.Counter
	dropped *metrics.Counter
	relayed *metrics.Histogram

	// audit, set by Register, records who watched which camera when.
	audit *Auth

	mu       sync.Mutex
	sessions map[string]*whepSession
	// pending counts sessions being set up, which hold a viewer slot
	// before they are in sessions.
	pending int
	closed  bool
	wg      sync.WaitGroup
}

// NewWHEP checks cfg, fills in its defaults and makes a WHEP endpoint.
func NewWHEP(cfg WHEPConfig) (*WHEP, error) {
	fail := func(format string, args ...any) (*WHEP, error) {
		return nil, fmt.Errorf("console: whep: "+format, args...)
	}
	switch {
	case cfg.Streams == nil:
		return fail("no live streams")
	case cfg.MaxViewers < 0:
		return fail("negative max viewers %d", cfg.MaxViewers)
	case (cfg.ICEPortMin == 0) != (cfg.ICEPortMax == 0):
		return fail("ICE port range %d-%d: give both ends or neither", cfg.ICEPortMin, cfg.ICEPortMax)
	case cfg.ICEPortMin > cfg.ICEPortMax:
		return fail("ICE port range %d-%d is empty", cfg.ICEPortMin, cfg.ICEPortMax)
	}
	for _, ip := range cfg.NAT1To1IPs {
		if net.ParseIP(ip) == nil {
			return fail("NAT 1:1 address %q is no IP address", ip)
		}
	}
	if cfg.MaxViewers == 0 {
		cfg.MaxViewers = DefaultMaxViewers
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.NewSet()
	}
	api, err := newWHEPAPI(cfg)
	if err != nil {
		return fail("%v", err)
	}
	return &WHEP{
		cfg:      cfg,
		log:      cfg.Logger,
		api:      api,
		gauge:    cfg.Metrics.GetOrCreateGauge("flowwatch_whep_sessions", nil),
		total:    cfg.Metrics.GetOrCreateCounter("flowwatch_whep_sessions_total"),
		dropped:  cfg.Metrics.GetOrCreateCounter("flowwatch_whep_dropped_access_units_total"),
		relayed:  cfg.Metrics.GetOrCreateHistogram("flowwatch_whep_relay_seconds"),
		sessions: make(map[string]*whepSession),
	}, nil
}

// newWHEPAPI makes the pion API every session's PeerConnection comes
// from: H.264 only (packetization mode 1, the profiles browsers offer),
// NACK answered from a bounded history, sender reports, and the ICE
// settings of cfg.
func newWHEPAPI(cfg WHEPConfig) (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	feedback := []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"}}
	for i, profile := range []string{"42001f", "42e01f", "4d001f", "64001f"} {
		if err := me.RegisterCodec(webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{
				MimeType:     webrtc.MimeTypeH264,
				ClockRate:    whepClockRate,
				SDPFmtpLine:  h264Fmtp(profile),
				RTCPFeedback: feedback,
			},
			PayloadType: webrtc.PayloadType(102 + 2*i),
		}, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, fmt.Errorf("register H.264 %s: %w", profile, err)
		}
	}
	reg := &interceptor.Registry{}
	// 512 packets is about a second of a 4 Mbit/s stream: enough for a
	// retransmission over any sane round trip, 600 KiB per viewer.
	if err := webrtc.ConfigureNackWithOptions(me, reg, nil, nack.ResponderSize(512)); err != nil {
		return nil, fmt.Errorf("NACK interceptor: %w", err)
	}
	if err := webrtc.ConfigureRTCPReports(reg); err != nil {
		return nil, fmt.Errorf("RTCP report interceptor: %w", err)
	}

	se := webrtc.SettingEngine{LoggerFactory: pionLogs{log: cfg.Logger}}
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	// Browsers hide their addresses behind mDNS names; their checks
	// still reach our candidates and make peer-reflexive ones, so
	// resolving the names (a multicast socket per session) buys nothing.
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(cfg.ICELoopback)
	if cfg.ipFilter != nil {
		se.SetIPFilter(cfg.ipFilter)
	}
	if cfg.ICEPortMin != 0 {
		if err := se.SetEphemeralUDPPortRange(cfg.ICEPortMin, cfg.ICEPortMax); err != nil {
			return nil, fmt.Errorf("ICE port range %d-%d: %w", cfg.ICEPortMin, cfg.ICEPortMax, err)
		}
	}
	if len(cfg.NAT1To1IPs) > 0 {
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External:        cfg.NAT1To1IPs,
			AsCandidateType: webrtc.ICECandidateTypeHost,
			Mode:            webrtc.ICEAddressRewriteAppend,
		}); err != nil {
			return nil, fmt.Errorf("NAT 1:1 addresses %v: %w", cfg.NAT1To1IPs, err)
		}
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se)), nil
}

// h264Fmtp is the fmtp line of H.264 in packetization mode 1 with the
// given profile-level-id.
func h264Fmtp(profileLevelID string) string {
	return "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + profileLevelID
}

// Register adds the WHEP routes to mux, for every role:
//
//	POST    /whep/{camera}            an SDP offer → 201, Location, the SDP answer
//	DELETE  /whep/{camera}/{session}  end the session
//	OPTIONS /whep/{camera}            what the endpoint accepts (no login)
//	PATCH   /whep/{camera}/{session}  405: no trickle ICE, no ICE restart
//
// A cookie session sends its CSRF token (X-CSRF-Token) with POST and
// DELETE, as with every change.
//
// Every view is audited: "video.view.start" when its session opens and
// "video.view.end" when it ends, with the user, the camera and, at the
// end, the span watched.
func (w *WHEP) Register(mux *http.ServeMux, auth *Auth) {
	w.audit = auth
	mux.Handle("POST /whep/{camera}", auth.Require(whepRoles, http.HandlerFunc(w.offer)))
	mux.Handle("DELETE /whep/{camera}/{session}", auth.Require(whepRoles, http.HandlerFunc(w.hangUp)))
	mux.HandleFunc("OPTIONS /whep/{camera}", w.options)
	// Trickle ICE and ICE restarts (PATCH) are not supported: RFC 9725
	// answers 405. Other methods get the mux's own 405; no pattern here
	// is method-less, so that one such as "GET /" for the browser app
	// can share the mux.
	mux.HandleFunc("PATCH /whep/{camera}/{session}", authMethodNotAllowed("DELETE"))
}

// Sessions returns how many sessions are open.
func (w *WHEP) Sessions() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.sessions)
}

// Close ends every session and waits for them; later offers get 503.
func (w *WHEP) Close() {
	w.mu.Lock()
	w.closed = true
	for _, s := range w.sessions {
		s.end(errWHEPClosing)
	}
	w.mu.Unlock()
	w.wg.Wait()
}

// options serves OPTIONS /whep/{camera}.
func (w *WHEP) options(rw http.ResponseWriter, _ *http.Request) {
	rw.Header().Set("Allow", "OPTIONS, POST")
	rw.Header().Set("Accept-Post", "application/sdp")
	rw.WriteHeader(http.StatusNoContent)
}

// offer serves POST /whep/{camera}.
func (w *WHEP) offer(rw http.ResponseWriter, r *http.Request) {
	camera := r.PathValue("camera")
	stream, ok := w.cfg.Streams.LiveStream(camera)
	if !ok || stream == nil {
		writeError(rw, http.StatusNotFound, "no camera %q", camera)
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/sdp" {
		writeError(rw, http.StatusUnsupportedMediaType, "send the offer as Content-Type: application/sdp")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, whepMaxOffer))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(rw, http.StatusRequestEntityTooLarge, "offer over %d bytes", whepMaxOffer)
			return
		}
		writeError(rw, http.StatusBadRequest, "reading the offer: %v", err)
		return
	}
	if len(body) == 0 {
		writeError(rw, http.StatusBadRequest, "empty offer: send an SDP offer")
		return
	}
	if codec := stream.Media().Codec; codec != "" && codec != ingest.CodecH264 {
		writeError(rw, http.StatusUnprocessableEntity, "camera %q sends %s; live view relays H.264 only", camera, codec)
		return
	}
	if !w.reserve() {
		rw.Header().Set("Retry-After", "10")
		writeError(rw, http.StatusServiceUnavailable, "live view is at its limit of %d viewers (or shutting down); try again later", w.cfg.MaxViewers)
		return
	}
	p, _ := PrincipalFrom(r.Context())
	s, answer, status, err := w.open(r.Context(), camera, stream, p.User, string(body))
	if err != nil {
		w.release()
		if status >= 500 {
			w.log.Error("whep session setup failed", "camera", camera, "user", p.User, "err", err)
			writeError(rw, status, "internal error; see the server log")
			return
		}
		writeError(rw, status, "%v", err)
		return
	}
	s.viewer, s.client = p, clientKey(r)
	s.auditStart()
	if !w.admit(s) {
		s.end(errWHEPClosing)
		_ = s.pc.GracefulClose()
		s.auditEnd(errWHEPClosing)
		rw.Header().Set("Retry-After", "10")
		writeError(rw, http.StatusServiceUnavailable, "live view is shutting down")
		return
	}
	w.log.Info("whep session started", "camera", camera, "session", s.id, "user", p.User,
		"stream", stream.Name(), "client", clientKey(r))
	rw.Header().Set("Location", "/whep/"+url.PathEscape(camera)+"/"+s.id)
	rw.Header().Set("Content-Type", "application/sdp")
	rw.Header().Set("Cache-Control", "no-store")
	rw.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(rw, answer)
}

// reserve takes a viewer slot for a session being set up.
func (w *WHEP) reserve() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || len(w.sessions)+w.pending >= w.cfg.MaxViewers {
		return false
	}
	w.pending++
	return true
}

// release gives back a slot whose setup failed.
func (w *WHEP) release() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending--
}

// admit turns s's reserved slot into an open session and starts it;
// false once Close was called.
func (w *WHEP) admit(s *whepSession) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending--
	if w.closed {
		return false
	}
	w.sessions[s.id] = s
	w.gauge.Set(float64(len(w.sessions)))
	w.total.Inc()
	w.wg.Add(1)
	go s.run()
	return true
}

// remove forgets s once it has ended.
func (w *WHEP) remove(s *whepSession) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.sessions, s.id)
	w.gauge.Set(float64(len(w.sessions)))
}

// hangUp serves DELETE /whep/{camera}/{session}. Only the user who
// opened the session, or an admin, may end it; to anyone else it does not
// exist.
func (w *WHEP) hangUp(rw http.ResponseWriter, r *http.Request) {
	camera, id := r.PathValue("camera"), r.PathValue("session")
	p, _ := PrincipalFrom(r.Context())
	w.mu.Lock()
	s := w.sessions[id]
	w.mu.Unlock()
	if s == nil || s.camera != camera || (s.user != p.User && p.Role != RoleAdmin) {
		writeError(rw, http.StatusNotFound, "no live view session %q of camera %q", id, camera)
		return
	}
	s.end(errWHEPDeleted)
	t := time.NewTimer(whepDeleteWait)
	defer t.Stop()
	select {
	case <-s.done:
	case <-t.C:
	case <-r.Context().Done():
	}
	rw.WriteHeader(http.StatusOK)
}

// open sets up a session for an offer: a PeerConnection with one
// send-only H.264 track, the answer and every ICE candidate. On error it
// returns the HTTP status to answer and leaves nothing behind.
func (w *WHEP) open(ctx context.Context, camera string, stream *ingest.Stream, user, offer string) (*whepSession, string, int, error) {
	profile := whepFallbackProfile
	for _, ps := range stream.Media().ParamSets {
		if len(ps) >= 4 && ps[0]&0x1f == 7 {
			profile = hex.EncodeToString(ps[1:4])
		}
	}
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{
		MimeType:    webrtc.MimeTypeH264,
		ClockRate:   whepClockRate,
		SDPFmtpLine: h264Fmtp(profile),
	}, "video", "flowwatch-"+camera)
	if err != nil {
		return nil, "", http.StatusInternalServerError, fmt.Errorf("camera %q: new track: %w", camera, err)
	}
	pc, err := w.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, "", http.StatusInternalServerError, fmt.Errorf("camera %q: new peer connection: %w", camera, err)
	}
	// The session's own context: it outlives the request.
	sctx, cancel := context.WithCancelCause(context.Background())
	fail := func(status int, err error) (*whepSession, string, int, error) {
		cancel(err)
		_ = pc.GracefulClose()
		return nil, "", status, err
	}
	sender, err := pc.AddTrack(track)
	if err != nil {
		return fail(http.StatusInternalServerError, fmt.Errorf("camera %q: add track: %w", camera, err))
	}
	s := &whepSession{
		w: w, id: newSessionID(), camera: camera, user: user,
		stream: stream, pc: pc, sender: sender, track: track,
		ctx: sctx, cancel: cancel, done: make(chan struct{}),
		payloader: codecs.H264Payloader{DisableStapA: true},
		seq:       uint16(randUint32()),
		clock:     rtpClock{offset: int64(randUint32())},
	}
	pc.OnConnectionStateChange(s.onState)

	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return fail(http.StatusBadRequest, fmt.Errorf("bad SDP offer: %w", err))
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return fail(http.StatusBadRequest, fmt.Errorf("cannot answer the offer: %w", err))
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return fail(http.StatusBadRequest, fmt.Errorf("cannot answer the offer: %w", err))
	}
	timer := time.NewTimer(whepGatherTimeout)
	defer timer.Stop()
	select {
	case <-gathered:
	case <-timer.C:
		w.log.Warn("whep: ICE gathering unfinished; answering with the candidates so far",
			"camera", camera, "after", whepGatherTimeout)
	case <-ctx.Done():
		return fail(http.StatusServiceUnavailable, fmt.Errorf("request ended: %w", context.Cause(ctx)))
	}
	local := pc.LocalDescription()
	if local == nil {
		return fail(http.StatusInternalServerError, fmt.Errorf("camera %q: no local description", camera))
	}
	if err := sendsH264(local.SDP); err != nil {
		return fail(http.StatusBadRequest, err)
	}
	return s, local.SDP, 0, nil
}

// sendsH264 checks that an answer sends H.264 video, which it does only
// when the offer received video and accepted H.264 in packetization mode
// 1.
func sendsH264(answer string) error {
	var d sdp.SessionDescription
	if err := d.UnmarshalString(answer); err != nil {
		return fmt.Errorf("cannot answer the offer: %w", err)
	}
	for _, m := range d.MediaDescriptions {
		if m.MediaName.Media != "video" || m.MediaName.Port.Value == 0 {
			continue
		}
		if _, ok := m.Attribute(webrtc.RTPTransceiverDirectionSendonly.String()); !ok {
			if _, ok := m.Attribute(webrtc.RTPTransceiverDirectionSendrecv.String()); !ok {
				continue
			}
		}
		for _, a := range m.Attributes {
			if a.Key == "rtpmap" && strings.Contains(strings.ToUpper(a.Value), " H264/") {
				return nil
			}
		}
	}
	return errors.New("the offer does not receive H.264 video (packetization-mode=1)")
}

// newSessionID returns 128 random bits in hex.
func newSessionID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func randUint32() uint32 {
	var b [4]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}

// whepSession is one viewer: its PeerConnection and the goroutine that
// relays the camera's stream to it.
type whepSession struct {
	w                *WHEP
	id, camera, user string
	stream           *ingest.Stream
	pc               *webrtc.PeerConnection
	sender           *webrtc.RTPSender
	track            *webrtc.TrackLocalStaticRTP
	ctx              context.Context
	cancel           context.CancelCauseFunc
	done             chan struct{}
	started          time.Time
	mu               sync.Mutex
	disconnected     *time.Timer // runs while the connection is disconnected
	stateClosed      bool        // no more state changes are acted on
	payloader        codecs.H264Payloader
	seq              uint16
	clock            rtpClock
	gen              uint64 // stream generation of the last access unit
	waitKey          bool   // skip access units until a keyframe
	frames, packets  uint64
	writeErrs        uint64
	loggedCodec      bool
	lastDropped      uint64
	payloads         [][]byte
	// viewer and client are who watches and from where, viewFrom when
	// the view began, for the audit log.
	viewer   Principal
	client   string
	viewFrom time.Time
}

// auditStart records the view's start in the audit log.
func (s *whepSession) auditStart() {
	if s.w.audit == nil {
		return
	}
	s.viewFrom = s.w.audit.now()
	s.w.audit.auditDetached(context.Background(), s.viewer, "video.view.start", "camera "+s.camera,
		fmt.Sprintf("live view %s from %s", s.id[:8], s.viewFrom.UTC().Format(time.RFC3339)), s.client)
}

// auditEnd records the view's end, its span and why it ended.
func (s *whepSession) auditEnd(cause error) {
	if s.w.audit == nil {
		return
	}
	to := s.w.audit.now()
	s.w.audit.auditDetached(context.Background(), s.viewer, "video.view.end", "camera "+s.camera,
		fmt.Sprintf("live view %s from %s to %s (%s); %v", s.id[:8], s.viewFrom.UTC().Format(time.RFC3339),
			to.UTC().Format(time.RFC3339), to.Sub(s.viewFrom).Round(time.Second), cause), s.client)
}

// end asks the session to end for cause.
func (s *whepSession) end(cause error) { s.cancel(cause) }

// onState follows the PeerConnection's state: failed or closed ends the
// session, disconnected does when it lasts whepDisconnectGrace.
func (s *whepSession) onState(st webrtc.PeerConnectionState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stateClosed {
		return
	}
	switch st {
	case webrtc.PeerConnectionStateConnected:
		if s.disconnected != nil {
			s.disconnected.Stop()
			s.disconnected = nil
		}
	case webrtc.PeerConnectionStateDisconnected:
		if s.disconnected == nil {
			s.disconnected = time.AfterFunc(whepDisconnectGrace, func() { s.end(errWHEPDisconnected) })
		}
	case webrtc.PeerConnectionStateFailed:
		s.end(errWHEPConnFailed)
	case webrtc.PeerConnectionStateClosed:
		s.end(errWHEPConnClosed)
	}
}

// run relays the stream to the viewer until the session ends, then
// closes everything the session holds.
func (s *whepSession) run() {
	s.started = time.Now()
	// Deferred, so in reverse: gone from Sessions before done closes
	// (DELETE answers then), and done before Close may return.
	defer s.w.wg.Done()
	defer close(s.done)
	defer s.w.remove(s)
	// Closing the PeerConnection is what unblocks a wait for SRTP and
	// the RTCP reader.
	stop := context.AfterFunc(s.ctx, func() { _ = s.pc.Close() })
	defer stop()

	rtcpDone, err := s.connect()
	if err == nil {
		err = s.relay()
	}
	s.cancel(err)
	s.mu.Lock()
	s.stateClosed = true
	if s.disconnected != nil {
		s.disconnected.Stop()
	}
	s.mu.Unlock()
	_ = s.pc.GracefulClose()
	if rtcpDone != nil {
		<-rtcpDone
	}
	s.w.log.Info("whep session ended", "camera", s.camera, "session", s.id, "user", s.user,
		"reason", context.Cause(s.ctx).Error(), "duration", time.Since(s.started).Round(time.Millisecond).String(),
		"frames", s.frames, "packets", s.packets, "dropped", s.lastDropped)
	s.auditEnd(context.Cause(s.ctx))
}

// connect waits until the viewer is connected and SRTP runs, or the
// session ends, then starts reading the viewer's RTCP (which runs the
// NACK and report interceptors). The returned channel closes when the
// reader stops.
func (s *whepSession) connect() (<-chan struct{}, error) {
	timeout := time.AfterFunc(whepConnectTimeout, func() { s.end(errWHEPNoConnect) })
	// SetReadDeadline blocks until the DTLS handshake is done and SRTP
	// set up, or the PeerConnection closes: access units written before
	// are lost, the cached keyframe first among them.
	err := s.sender.SetReadDeadline(time.Time{})
	timeout.Stop()
	if s.ctx.Err() != nil {
		return nil, context.Cause(s.ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("waiting for the connection: %w", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			if _, _, err := s.sender.Read(buf); err != nil {
				return
			}
		}
	}()
	return done, nil
}

// relay subscribes to the stream and writes its access units to the
// track until the session ends.
func (s *whepSession) relay() error {
	sub, err := s.stream.Subscribe(ingest.SubscribeOptions{
		Name:            "whep-" + s.id[:8],
		QueueLen:        whepQueueLen,
		Policy:          ingest.DropUntilKeyframe,
		StartAtKeyframe: true,
	})
	if err != nil {
		return errWHEPStreamClosed
	}
	defer sub.Close()
	defer s.countDrops(sub)
	for {
		au, err := sub.Next(s.ctx)
		switch {
		case errors.Is(err, io.EOF):
			return errWHEPStreamClosed
		case err != nil:
			return context.Cause(s.ctx)
		}
		s.countDrops(sub)
		if g := sub.Generation(); g != s.gen {
			// The camera reconnected: nothing before its next keyframe
			// decodes.
			s.gen, s.waitKey = g, s.frames > 0
		}
		if s.waitKey && !au.Key {
			continue
		}
		s.waitKey = false
		if err := s.write(au); err != nil {
			return err
		}
	}
}

// countDrops adds the subscription's new drops to the counter.
func (s *whepSession) countDrops(sub *ingest.Subscription) {
	if d := sub.Dropped(); d > s.lastDropped {
		s.w.dropped.Add(int(d - s.lastDropped))
		s.lastDropped = d
	}
}

// write sends one access unit as RTP packets: one per NAL unit, or FU-A
// fragments of a large one, SPS and PPS each alone; the marker bit on
// the access unit's last packet; the timestamp from its PTS.
func (s *whepSession) write(au *ingest.AccessUnit) error {
	if au.Codec != ingest.CodecH264 {
		if !s.loggedCodec {
			s.loggedCodec = true
			s.w.log.Warn("whep: camera sends a codec live view cannot relay; skipping it",
				"camera", s.camera, "session", s.id, "codec", string(au.Codec))
		}
		s.waitKey = true
		return nil
	}
	nalus := au.NALUs
	if au.Key && !hasH264ParamSets(nalus) {
		// The stream puts its parameter sets into every keyframe; this
		// only guards against one it did not know yet.
		if ps := s.stream.Media().ParamSets; len(ps) > 0 {
			nalus = append(append([][]byte{}, ps...), nalus...)
		}
	}
	s.payloads = s.payloads[:0]
	for _, n := range nalus {
		s.payloads = append(s.payloads, s.payloader.Payload(whepMTU, n)...)
	}
	if len(s.payloads) == 0 {
		return nil
	}
	ts := s.clock.at(au.PTS)
	for i, p := range s.payloads {
		pkt := rtp.Packet{
			Header: rtp.Header{
				Version:        2,
				Marker:         i == len(s.payloads)-1,
				SequenceNumber: s.seq,
				Timestamp:      ts,
			},
			Payload: p,
		}
		s.seq++
		if err := s.track.WriteRTP(&pkt); err != nil {
			if errors.Is(err, io.ErrClosedPipe) {
				return errWHEPConnClosed
			}
			s.writeErrs++
			if s.writeErrs == 1 {
				s.w.log.Warn("whep: sending to the viewer failed", "camera", s.camera, "session", s.id, "err", err)
			}
			continue
		}
		s.packets++
	}
	if !au.Received.IsZero() {
		d := time.Since(au.Received)
		s.w.relayed.Update(d.Seconds())
		if s.w.cfg.onRelay != nil {
			s.w.cfg.onRelay(d)
		}
	}
	clear(s.payloads)
	s.frames++
	return nil
}

// hasH264ParamSets tells whether an access unit carries an SPS and a
// PPS.
func hasH264ParamSets(nalus [][]byte) bool {
	var sps, pps bool
	for _, n := range nalus {
		if len(n) == 0 {
			continue
		}
		switch n[0] & 0x1f {
		case 7:
			sps = true
		case 8:
			pps = true
		}
	}
	return sps && pps
}

// rtpClock turns presentation times into 90 kHz RTP timestamps that
// start at a random offset and never go back: when the PTS does (a source
// that restarted its clock), the timestamps go on one frame later.
type rtpClock struct {
	offset  int64
	last    int64
	started bool
}

// at returns the RTP timestamp of pts.
func (c *rtpClock) at(pts time.Duration) uint32 {
	t := c.offset + int64(pts/time.Microsecond)*whepClockRate/1_000_000
	if c.started && t < c.last {
		const frame = whepClockRate / 30
		c.offset += c.last + frame - t
		t = c.last + frame
	}
	c.started, c.last = true, t
	return uint32(t & math.MaxUint32)
}

// pionLogs hands pion's log lines to slog: its errors at Warn, its
// warnings at Debug, the rest dropped.
type pionLogs struct{ log *slog.Logger }

func (f pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{log: f.log.With("pion", scope)}
}

type pionLogger struct{ log *slog.Logger }

func (l pionLogger) logf(level slog.Level, format string, args ...any) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, "pion: "+fmt.Sprintf(format, args...))
	}
}

func (pionLogger) Trace(string)                        {}
func (pionLogger) Tracef(string, ...any)               {}
func (pionLogger) Debug(string)                        {}
func (pionLogger) Debugf(string, ...any)               {}
func (pionLogger) Info(string)                         {}
func (pionLogger) Infof(string, ...any)                {}
func (l pionLogger) Warn(msg string)                   { l.logf(slog.LevelDebug, "%s", msg) }
func (l pionLogger) Warnf(format string, args ...any)  { l.logf(slog.LevelDebug, format, args...) }
func (l pionLogger) Error(msg string)                  { l.logf(slog.LevelWarn, "%s", msg) }
func (l pionLogger) Errorf(format string, args ...any) { l.logf(slog.LevelWarn, format, args...) }
