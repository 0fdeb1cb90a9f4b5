package samples

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
)

// DefaultListen is the RTSP address the simulator listens on when its
// config names none.
const DefaultListen = ":8554"

// udpPortOffset is how far above the RTSP port the simulator puts its UDP
// RTP port when the config names none; the RTCP port follows it.
const udpPortOffset = 1000

// writeQueueSize is how many RTP packets each reader may have queued before
// the simulator drops that reader's packets; it holds a few 1080p IDR
// pictures.
const writeQueueSize = 1024

// maxStreamBytes bounds the size of a prepared stream the simulator loads
// into memory.
const maxStreamBytes = 1 << 30

// h264PayloadType is the dynamic RTP payload type of the H.264 media.
const h264PayloadType = 96

// rtpClockRate is the RTP clock rate of H.264 (RFC 6184).
const rtpClockRate = 90000

// pathNamePattern is what a path name may look like: it becomes one
// segment of an RTSP URL.
var pathNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// SimulatorConfig configures a Simulator.
type SimulatorConfig struct {
	// Listen is the TCP address for RTSP, DefaultListen when empty.
	Listen string
	// UDPRTPAddress and UDPRTCPAddress are the UDP addresses for RTP and
	// RTCP when clients ask for the UDP transport; the RTP port must be
	// even and the RTCP port the next one. When both are empty they are
	// the Listen port plus 1000 and 1001 (rounded down to an even RTP
	// port), on the Listen host; when the Listen port is 0 the simulator
	// serves TCP only.
	UDPRTPAddress, UDPRTCPAddress string
	// Username and Password, when Username is set, are required of every
	// client, with basic or digest (MD5) authentication.
	Username, Password string
	// Loop makes every path start over at the end of its video, forever.
	// Without it a path ends, and its readers are disconnected, after one
	// pass.
	Loop bool
	// Logger receives one line per event; slog.Default() when nil.
	Logger *slog.Logger
}

// Path is a video the simulator serves at rtsp://HOST:PORT/<Name>.
type Path struct {
	// Name is the last segment of the path's URL.
	Name string
	// Prepared is the stream served there.
	Prepared Prepared
}

// Simulator serves prepared H.264 streams over RTSP as live cameras: each
// path is one shared stream that every reader of it receives, over TCP or
// UDP, paced in real time by the video's frame rate. When a path loops,
// RTP timestamps and sequence numbers keep increasing across the loop.
//
// A Simulator is made by NewSimulator, started by Start and stopped by
// Close; its methods may be called from any goroutine.
type Simulator struct {
	cfg SimulatorConfig
	log *slog.Logger

	// ctx ends when the simulator closes; every path's sender runs under
	// it.
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	server   *gortsplib.Server
	listener net.Listener
	paths    map[string]*simPath
	sessions map[*gortsplib.ServerSession]struct{}
	conns    map[*gortsplib.ServerConn]struct{}
	started  bool
	closed   bool
	// senders counts the running path senders.
	senders sync.WaitGroup
}

// simPath is one served video: the loaded clip, its RTSP stream and the
// goroutine that writes the clip into the stream.
type simPath struct {
	name   string
	prep   Prepared
	clip   *clip
	desc   *description.Session
	stream *gortsplib.ServerStream
	// paused stops the sender from writing packets; time keeps running.
	paused atomic.Bool
	// cancel stops the sender; done closes when it has returned.
	cancel context.CancelFunc
	done   chan struct{}
	// closeOnce closes stream once, whether the path ends by itself or is
	// stopped.
	closeOnce sync.Once
}

// closeStream closes the path's stream, disconnecting its readers.
func (sp *simPath) closeStream() {
	sp.closeOnce.Do(sp.stream.Close)
}

// NewSimulator returns a simulator with cfg; it serves nothing until Start.
func NewSimulator(cfg SimulatorConfig) *Simulator {
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Simulator{
		cfg:      cfg,
		log:      log.With("component", "rtsp-simulator"),
		ctx:      ctx,
		cancel:   cancel,
		paths:    make(map[string]*simPath),
		sessions: make(map[*gortsplib.ServerSession]struct{}),
		conns:    make(map[*gortsplib.ServerConn]struct{}),
	}
}

// AddPath loads the prepared stream p and serves it at
// rtsp://HOST:PORT/<name>, before or after Start.
func (s *Simulator) AddPath(name string, p Prepared) error {
	if !pathNamePattern.MatchString(name) {
		return fmt.Errorf("simulator path %q: name must be letters, digits, '.', '_' or '-'", name)
	}
	if !p.FrameRate.Valid() {
		return fmt.Errorf("simulator path %q: %s: invalid frame rate %s", name, p.Video, p.FrameRate)
	}
	c, err := loadClip(p.Video)
	if err != nil {
		return fmt.Errorf("simulator path %q: %w", name, err)
	}
	sp := &simPath{
		name: name,
		prep: p,
		clip: c,
		desc: &description.Session{
			Title: name,
			Medias: []*description.Media{{
				Type: description.MediaTypeVideo,
				Formats: []format.Format{&format.H264{
					PayloadTyp:        h264PayloadType,
					PacketizationMode: 1,
					SPS:               c.sps,
					PPS:               c.pps,
				}},
			}},
		},
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("simulator path %q: simulator is closed", name)
	}
	if _, ok := s.paths[name]; ok {
		return fmt.Errorf("simulator path %q: already served", name)
	}
	if s.started {
		if err := s.startPathLocked(sp); err != nil {
			return err
		}
	}
	s.paths[name] = sp
	return nil
}

// loadClip reads a prepared stream and splits it into access units.
func loadClip(video string) (*clip, error) {
	info, err := os.Stat(video)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", video, err)
	}
	if info.Size() > maxStreamBytes {
		return nil, fmt.Errorf("load %s: %d bytes, more than the %d the simulator holds in memory",
			video, info.Size(), maxStreamBytes)
	}
	data, err := os.ReadFile(video)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", video, err)
	}
	c, err := splitAccessUnits(data)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", video, err)
	}
	return c, nil
}

// startPathLocked creates the path's RTSP stream and starts its sender.
// s.mu is held and the server is running.
func (s *Simulator) startPathLocked(sp *simPath) error {
	stream := &gortsplib.ServerStream{Server: s.server, Desc: sp.desc}
	if err := stream.Initialize(); err != nil {
		return fmt.Errorf("simulator path %q: create stream: %w", sp.name, err)
	}
	sp.stream = stream
	ctx, cancel := context.WithCancel(s.ctx)
	sp.cancel = cancel
	sp.done = make(chan struct{})
	s.senders.Add(1)
	go func() {
		defer s.senders.Done()
		defer close(sp.done)
		s.send(ctx, sp)
	}()
	s.log.Info("simulator path added", "path", sp.name, "video", sp.prep.Video,
		"frames", len(sp.clip.aus), "fps", sp.prep.FrameRate.Float(),
		"width", sp.clip.width, "height", sp.clip.height, "loop", s.cfg.Loop)
	return nil
}

// RemovePath stops serving the path name and disconnects its readers.
func (s *Simulator) RemovePath(name string) error {
	s.mu.Lock()
	sp, ok := s.paths[name]
	if ok {
		delete(s.paths, name)
	}
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("simulator path %q: not served", name)
	}
	s.stopPath(sp)
	s.log.Info("simulator path removed", "path", name)
	return nil
}

// stopPath stops the sender of a path no longer in s.paths and closes its
// stream, which disconnects its readers.
func (s *Simulator) stopPath(sp *simPath) {
	if sp.stream == nil {
		return
	}
	sp.cancel()
	<-sp.done
	sp.closeStream()
}

// Paths returns the names of the served paths, sorted.
func (s *Simulator) Paths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.paths))
	for name := range s.paths {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Pause stops sending media on the path name while its readers stay
// connected, as a camera that stalls does. Its timeline keeps running: the
// pictures due while paused are never sent.
func (s *Simulator) Pause(name string) error {
	return s.setPaused(name, true)
}

// Resume sends media on a paused path again, from the picture due now.
func (s *Simulator) Resume(name string) error {
	return s.setPaused(name, false)
}

// setPaused sets the paused state of the path name.
func (s *Simulator) setPaused(name string, paused bool) error {
	s.mu.Lock()
	sp, ok := s.paths[name]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("simulator path %q: not served", name)
	}
	if sp.paused.Swap(paused) != paused {
		if paused {
			s.log.Info("simulator path paused", "path", name)
		} else {
			s.log.Info("simulator path resumed", "path", name)
		}
	}
	return nil
}

// CloseSessions disconnects every client, as a camera that reboots does;
// the paths stay served and clients may connect again.
func (s *Simulator) CloseSessions() {
	s.mu.Lock()
	sessions := make([]*gortsplib.ServerSession, 0, len(s.sessions))
	for ss := range s.sessions {
		sessions = append(sessions, ss)
	}
	conns := make([]*gortsplib.ServerConn, 0, len(s.conns))
	for sc := range s.conns {
		conns = append(conns, sc)
	}
	s.mu.Unlock()
	for _, ss := range sessions {
		ss.Close()
	}
	for _, sc := range conns {
		sc.Close()
	}
	s.log.Info("simulator closed all sessions", "sessions", len(sessions), "connections", len(conns))
}

// Start starts listening and serving the paths added so far. Close
// releases whatever a failed Start leaves behind.
func (s *Simulator) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.started {
		return errors.New("start simulator: already started or closed")
	}
	rtpAddr, rtcpAddr, err := s.udpAddresses()
	if err != nil {
		return err
	}
	var listener net.Listener
	server := &gortsplib.Server{
		Handler:        &simHandler{s: s},
		RTSPAddress:    s.cfg.Listen,
		UDPRTPAddress:  rtpAddr,
		UDPRTCPAddress: rtcpAddr,
		WriteQueueSize: writeQueueSize,
		Listen: func(network, address string) (net.Listener, error) {
			l, err := net.Listen(network, address)
			listener = l
			return l, err
		},
	}
	if err := server.Start(); err != nil {
		return fmt.Errorf("start simulator on %s (UDP %q/%q): %w", s.cfg.Listen, rtpAddr, rtcpAddr, err)
	}
	s.server = server
	s.listener = listener
	s.started = true
	for _, sp := range s.paths {
		if err := s.startPathLocked(sp); err != nil {
			return fmt.Errorf("start simulator: %w", err)
		}
	}
	s.log.Info("simulator listening", "rtsp", listener.Addr().String(), "udp_rtp", rtpAddr,
		"udp_rtcp", rtcpAddr, "auth", s.cfg.Username != "")
	return nil
}

// udpAddresses returns the UDP RTP and RTCP addresses to serve on, both
// empty for TCP only.
func (s *Simulator) udpAddresses() (string, string, error) {
	if s.cfg.UDPRTPAddress != "" || s.cfg.UDPRTCPAddress != "" {
		return s.cfg.UDPRTPAddress, s.cfg.UDPRTCPAddress, nil
	}
	host, portText, err := net.SplitHostPort(s.cfg.Listen)
	if err != nil {
		return "", "", fmt.Errorf("simulator listen address %q: %w", s.cfg.Listen, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return "", "", fmt.Errorf("simulator listen address %q: port %q is not a number from 0 to 65535",
			s.cfg.Listen, portText)
	}
	if port == 0 {
		return "", "", nil
	}
	rtp := (port + udpPortOffset) &^ 1
	if rtp+1 > 65535 {
		return "", "", fmt.Errorf("simulator listen address %q: UDP ports %d/%d would pass 65535; set them",
			s.cfg.Listen, rtp, rtp+1)
	}
	return net.JoinHostPort(host, strconv.Itoa(rtp)), net.JoinHostPort(host, strconv.Itoa(rtp+1)), nil
}

// Addr returns the address the simulator listens on for RTSP, nil before
// Start.
func (s *Simulator) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listener == nil {
		return nil
	}
	return s.listener.Addr()
}

// URL returns the rtsp:// URL of the path name, without credentials; an
// unspecified listen host becomes 127.0.0.1. It is "" before Start.
func (s *Simulator) URL(name string) string {
	addr, ok := s.Addr().(*net.TCPAddr)
	if !ok {
		return ""
	}
	host := addr.IP.String()
	if addr.IP == nil || addr.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "rtsp://" + net.JoinHostPort(host, strconv.Itoa(addr.Port)) + "/" + name
}

// Close stops every path, disconnects every client and stops listening. It
// returns when all of the simulator's goroutines have ended.
func (s *Simulator) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	paths := make([]*simPath, 0, len(s.paths))
	for _, sp := range s.paths {
		paths = append(paths, sp)
	}
	clear(s.paths)
	server := s.server
	s.mu.Unlock()

	s.cancel()
	for _, sp := range paths {
		s.stopPath(sp)
	}
	s.senders.Wait()
	if server != nil {
		server.Close()
	}
	s.log.Info("simulator closed")
}

// Run serves until ctx ends or the server fails, then closes the
// simulator. Start must have succeeded.
func (s *Simulator) Run(ctx context.Context) error {
	s.mu.Lock()
	server := s.server
	s.mu.Unlock()
	if server == nil {
		return errors.New("run simulator: not started")
	}
	failed := make(chan error, 1)
	// The waiter ends when the server stops, which Close below ensures.
	go func() { failed <- server.Wait() }()
	select {
	case <-ctx.Done():
		s.Close()
		<-failed
		return nil
	case err := <-failed:
		s.Close()
		return fmt.Errorf("simulator on %s: %w", s.cfg.Listen, err)
	}
}

// send writes the clip of sp into its stream, one access unit per frame
// period, until ctx ends or, without Loop, the clip has been sent once.
// Frame n is due at start + n frame periods and carries the RTP timestamp
// base + n periods, so neither drifts and both keep rising across loops.
func (s *Simulator) send(ctx context.Context, sp *simPath) {
	media := sp.desc.Medias[0]
	enc, err := media.Formats[0].(*format.H264).CreateEncoder()
	if err != nil {
		s.log.Error("simulator path stopped", "path", sp.name, "error", fmt.Errorf("create RTP encoder: %w", err))
		return
	}
	var seed [4]byte
	if _, err := rand.Read(seed[:]); err != nil {
		s.log.Error("simulator path stopped", "path", sp.name, "error", fmt.Errorf("random RTP timestamp: %w", err))
		return
	}
	base := binary.BigEndian.Uint32(seed[:])
	rate := sp.prep.FrameRate
	frames := int64(len(sp.clip.aus))
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	start := time.Now()
	for n := int64(0); ; n++ {
		due := start.Add(rate.FrameTime(n))
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return
		}
		if !s.cfg.Loop && n == frames {
			// The last picture has had its frame period on the wire.
			s.endPath(sp)
			return
		}
		if n > 0 && n%frames == 0 {
			s.log.Debug("simulator path looped", "path", sp.name, "loop", n/frames)
		}
		if sp.paused.Load() {
			continue
		}
		pkts, err := enc.Encode(sp.clip.aus[n%frames].nalus)
		if err != nil {
			s.log.Error("simulator path stopped", "path", sp.name, "frame", n%frames,
				"error", fmt.Errorf("packetize frame: %w", err))
			return
		}
		ts := base + uint32(rate.ticks(n, rtpClockRate))
		for _, pkt := range pkts {
			pkt.Timestamp = ts
			if err := sp.stream.WritePacketRTPWithNTP(media, pkt, due); err != nil {
				if errors.As(err, new(liberrors.ErrServerStreamClosed)) {
					return
				}
				s.log.Warn("simulator write failed", "path", sp.name, "error", err)
				break
			}
		}
	}
}

// endPath removes a path whose single pass is over and closes its stream,
// which disconnects its readers. It runs on the path's own sender.
func (s *Simulator) endPath(sp *simPath) {
	s.mu.Lock()
	if cur, ok := s.paths[sp.name]; ok && cur == sp {
		delete(s.paths, sp.name)
	}
	s.mu.Unlock()
	sp.closeStream()
	s.log.Info("simulator path ended", "path", sp.name, "frames", len(sp.clip.aus))
}

// lookup returns the stream served at an RTSP request path.
func (s *Simulator) lookup(path string) (*gortsplib.ServerStream, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sp, ok := s.paths[strings.Trim(path, "/")]
	if !ok || sp.stream == nil {
		return nil, false
	}
	return sp.stream, true
}

// simHandler answers the RTSP server's callbacks for a Simulator.
type simHandler struct {
	s *Simulator
}

// OnConnOpen records a new client connection.
func (h *simHandler) OnConnOpen(ctx *gortsplib.ServerHandlerOnConnOpenCtx) {
	h.s.mu.Lock()
	h.s.conns[ctx.Conn] = struct{}{}
	h.s.mu.Unlock()
	h.s.log.Debug("rtsp connection opened", "remote", ctx.Conn.NetConn().RemoteAddr().String())
}

// OnConnClose forgets a closed client connection.
func (h *simHandler) OnConnClose(ctx *gortsplib.ServerHandlerOnConnCloseCtx) {
	h.s.mu.Lock()
	delete(h.s.conns, ctx.Conn)
	h.s.mu.Unlock()
	h.s.log.Debug("rtsp connection closed", "remote", ctx.Conn.NetConn().RemoteAddr().String(),
		"reason", ctx.Error)
}

// OnSessionOpen records a new session.
func (h *simHandler) OnSessionOpen(ctx *gortsplib.ServerHandlerOnSessionOpenCtx) {
	h.s.mu.Lock()
	h.s.sessions[ctx.Session] = struct{}{}
	h.s.mu.Unlock()
}

// OnSessionClose forgets a closed session.
func (h *simHandler) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	h.s.mu.Lock()
	delete(h.s.sessions, ctx.Session)
	h.s.mu.Unlock()
	if path := ctx.Session.SetuppedPath(); path != "" {
		h.s.log.Info("rtsp reader left", "path", strings.Trim(path, "/"), "reason", ctx.Error)
	}
}

// authorize checks the request's credentials when the simulator requires
// them.
func (h *simHandler) authorize(conn *gortsplib.ServerConn, req *base.Request, path string) (*base.Response, error) {
	if h.s.cfg.Username == "" || conn.VerifyCredentials(req, h.s.cfg.Username, h.s.cfg.Password) {
		return nil, nil
	}
	if _, tried := req.Header["Authorization"]; tried {
		h.s.log.Warn("rtsp credentials refused", "remote", conn.NetConn().RemoteAddr().String(),
			"path", strings.Trim(path, "/"), "method", string(req.Method))
	}
	return &base.Response{StatusCode: base.StatusUnauthorized}, liberrors.ErrServerAuth{}
}

// answer authorizes a reader's request and hands it the path's stream,
// or says why not.
func (h *simHandler) answer(conn *gortsplib.ServerConn, req *base.Request, path string) (
	*base.Response, *gortsplib.ServerStream, error,
) {
	if res, err := h.authorize(conn, req, path); res != nil {
		return res, nil, err
	}
	stream, ok := h.s.lookup(path)
	if !ok {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, stream, nil
}

// OnDescribe answers DESCRIBE with the path's stream.
func (h *simHandler) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (
	*base.Response, *gortsplib.ServerStream, error,
) {
	return h.answer(ctx.Conn, ctx.Request, ctx.Path)
}

// OnSetup answers SETUP for readers of a served path; publishing is
// refused.
func (h *simHandler) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (
	*base.Response, *gortsplib.ServerStream, error,
) {
	return h.answer(ctx.Conn, ctx.Request, ctx.Path)
}

// OnPlay starts playing a set-up session.
func (h *simHandler) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	h.s.log.Info("rtsp reader joined", "path", strings.Trim(ctx.Path, "/"),
		"remote", ctx.Conn.NetConn().RemoteAddr().String(),
		"transport", ctx.Session.SetuppedTransport().String())
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// DefaultCacheDir returns the folder where ResolveVideos callers keep
// prepared streams by default: flowwatch/prepared in the user's cache
// folder.
func DefaultCacheDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("prepared-stream cache: %w", err)
	}
	return filepath.Join(dir, "flowwatch", "prepared"), nil
}

// ResolveVideos turns the videos named on the command line of
// `flowwatch simulate` into paths to serve. No args means the built-in
// samples in MediaDir, each of which must be there (`make setup` makes
// them). An arg is a video file, served under its base name without
// extension, or the name of a built-in sample. Video files that are not
// already prepared streams (an .h264 file with the sidecar Prepare writes)
// are prepared into cacheDir.
func ResolveVideos(ctx context.Context, args []string, cacheDir string) ([]Path, error) {
	type wanted struct {
		name, file string
		builtin    bool
	}
	var want []wanted
	if len(args) == 0 {
		for _, s := range Builtin() {
			want = append(want, wanted{name: s.Name, file: s.Path(), builtin: true})
		}
	}
	for _, arg := range args {
		if _, err := os.Stat(arg); err != nil {
			if s, ok := LookupBuiltin(arg); ok {
				want = append(want, wanted{name: s.Name, file: s.Path(), builtin: true})
				continue
			}
			return nil, fmt.Errorf("video %s: %w", arg, err)
		}
		base := filepath.Base(arg)
		want = append(want, wanted{name: strings.TrimSuffix(base, filepath.Ext(base)), file: arg})
	}

	seen := make(map[string]string, len(want))
	paths := make([]Path, 0, len(want))
	for _, w := range want {
		if !pathNamePattern.MatchString(w.name) {
			return nil, fmt.Errorf("video %s: name %q cannot be an RTSP path; rename the file to letters, digits, '.', '_' or '-'",
				w.file, w.name)
		}
		if other, dup := seen[w.name]; dup {
			return nil, fmt.Errorf("video %s: name %q is already taken by %s", w.file, w.name, other)
		}
		seen[w.name] = w.file
		if w.builtin {
			if _, err := os.Stat(w.file); err != nil {
				return nil, fmt.Errorf("built-in sample %q: %s is missing (run make setup, or set %s to the folder holding it): %w",
					w.name, w.file, MediaEnv, err)
			}
		}
		p, err := LoadPrepared(w.file)
		if err != nil || filepath.Ext(w.file) != ".h264" {
			p, err = Prepare(ctx, w.file, cacheDir)
			if err != nil {
				return nil, err
			}
		}
		paths = append(paths, Path{Name: w.name, Prepared: p})
	}
	return paths, nil
}

// Serve runs `flowwatch simulate`: a simulator with cfg serving paths until
// ctx ends.
func Serve(ctx context.Context, cfg SimulatorConfig, paths []Path) error {
	sim := NewSimulator(cfg)
	for _, p := range paths {
		if err := sim.AddPath(p.Name, p.Prepared); err != nil {
			sim.Close()
			return err
		}
	}
	if err := sim.Start(); err != nil {
		sim.Close()
		return err
	}
	for _, p := range paths {
		sim.log.Info("simulator serving", "path", p.Name, "url", sim.URL(p.Name), "video", p.Prepared.Video)
	}
	return sim.Run(ctx)
}
