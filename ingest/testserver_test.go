package ingest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/auth"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"
)

// testClip is an encoded clip split into access units.
type testClip struct {
	codec         Codec
	aus           [][][]byte
	keys          []bool
	fps           int
	width, height int
	// vps, sps, pps are the first parameter sets of the clip.
	vps, sps, pps []byte
}

// makeClip encodes a test pattern with ffmpeg (libx264 or libx265, no
// B-frames, a keyframe every gop pictures) and splits it into access
// units. It skips the test when ffmpeg is not installed.
func makeClip(t testing.TB, codec Codec, width, height, fps, gop int, seconds float64) *testClip {
	t.Helper()
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Skip("ffmpeg not installed (make setup installs it); RTSP tests need it to encode their clip")
	}
	out := filepath.Join(t.TempDir(), "clip")
	args := []string{"-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=%d", width, height, fps),
		"-t", fmt.Sprint(seconds), "-pix_fmt", "yuv420p"}
	switch codec {
	case CodecH264:
		args = append(args, "-c:v", "libx264", "-bf", "0", "-g", fmt.Sprint(gop), "-f", "h264", out)
	case CodecH265:
		args = append(args, "-c:v", "libx265",
			"-x265-params", fmt.Sprintf("log-level=error:bframes=0:keyint=%d:min-keyint=%d", gop, gop),
			"-f", "hevc", out)
	}
	cmd := exec.Command(ffmpeg, args...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, msg)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var annexb h264.AnnexB
	if err := annexb.Unmarshal(raw); err != nil {
		t.Fatalf("split %s: %v", out, err)
	}
	clip := &testClip{codec: codec, fps: fps}
	var cur [][]byte
	curHasPicture := false
	flush := func() {
		if len(cur) == 0 {
			return
		}
		hasPic, key := auInfo(codec, cur)
		if !hasPic {
			t.Fatalf("access unit %d of %s has no picture", len(clip.aus), out)
		}
		clip.aus = append(clip.aus, cur)
		clip.keys = append(clip.keys, key)
		cur, curHasPicture = nil, false
	}
	for _, n := range annexb {
		if err := checkNALU(codec, n); err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		kind := nalKindOf(codec, n)
		vcl, firstSlice := false, false
		switch codec {
		case CodecH264:
			typ := n[0] & 0x1F
			vcl = typ >= 1 && typ <= 5
			firstSlice = vcl && len(n) > 1 && n[1]&0x80 != 0
		case CodecH265:
			typ := (n[0] >> 1) & 0x3F
			vcl = typ < 32
			firstSlice = vcl && len(n) > 2 && n[2]&0x80 != 0
		}
		suffix := codec == CodecH265 && (n[0]>>1)&0x3F == 40
		if curHasPicture && ((!vcl && !suffix) || firstSlice) {
			flush()
		}
		cur = append(cur, n)
		if vcl {
			curHasPicture = true
		}
		switch kind {
		case nalVPS:
			if clip.vps == nil {
				clip.vps = n
			}
		case nalSPS:
			if clip.sps == nil {
				clip.sps = n
			}
		case nalPPS:
			if clip.pps == nil {
				clip.pps = n
			}
		}
	}
	flush()
	if clip.sps == nil || clip.pps == nil || !clip.keys[0] {
		t.Fatalf("%s: no parameter sets or no leading keyframe", out)
	}
	clip.width, clip.height, err = pictureSize(codec, clip.sps)
	if err != nil {
		t.Fatal(err)
	}
	return clip
}

// testServerConfig configures a testServer.
type testServerConfig struct {
	clip *testClip
	// udp enables the UDP transport on two ports of its own.
	udp bool
	// user and pass, when user is set, are required from readers, with
	// the given methods (default basic and digest).
	user, pass string
	methods    []auth.VerifyMethod
	// stripParams removes the in-band parameter sets from the access
	// units sent, leaving only those in the SDP.
	stripParams bool
	// noSDPParams leaves the parameter sets out of the SDP.
	noSDPParams bool
}

// testServer serves one clip in a loop, in real time, as
// rtsp://127.0.0.1:PORT/cam with gortsplib, on a port that stays the same
// across stop and start. It can pause the media while keeping sessions
// open, inject packets, and counts connections.
type testServer struct {
	t       testing.TB
	cfg     testServerConfig
	addr    string
	rtpAddr string
	rtcpAdr string

	mu        sync.Mutex
	srv       *gortsplib.Server
	stream    *gortsplib.ServerStream
	media     *description.Media
	paused    bool
	inject    []*rtp.Packet
	connTimes []time.Time
	setups    []gortsplib.Transport
	cancel    context.CancelFunc
	feederWG  sync.WaitGroup
}

// newTestServer picks free loopback ports and starts serving; the server
// stops at the end of the test.
func newTestServer(t testing.TB, cfg testServerConfig) *testServer {
	t.Helper()
	ts := &testServer{t: t, cfg: cfg, addr: freeTCPAddr(t)}
	if cfg.udp {
		ts.rtpAddr, ts.rtcpAdr = freeUDPPair(t)
	}
	ts.start()
	t.Cleanup(ts.stop)
	return ts
}

// url returns the camera address, with userinfo when user is set.
func (ts *testServer) url(user, pass string) string {
	if user != "" {
		return fmt.Sprintf("rtsp://%s:%s@%s/cam", user, pass, ts.addr)
	}
	return fmt.Sprintf("rtsp://%s/cam", ts.addr)
}

// start begins serving, again after stop, on the same ports.
func (ts *testServer) start() {
	ts.t.Helper()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.srv != nil {
		return
	}
	srv := &gortsplib.Server{
		Handler:        ts,
		RTSPAddress:    ts.addr,
		UDPRTPAddress:  ts.rtpAddr,
		UDPRTCPAddress: ts.rtcpAdr,
		AuthMethods:    ts.cfg.methods,
	}
	var err error
	for i := 0; i < 50; i++ {
		if err = srv.Start(); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		ts.t.Fatalf("start test server on %s: %v", ts.addr, err)
	}
	clip := ts.cfg.clip
	var forma format.Format
	switch clip.codec {
	case CodecH264:
		f := &format.H264{PayloadTyp: 96, PacketizationMode: 1}
		if !ts.cfg.noSDPParams {
			f.SPS, f.PPS = clip.sps, clip.pps
		}
		forma = f
	case CodecH265:
		f := &format.H265{PayloadTyp: 96}
		if !ts.cfg.noSDPParams {
			f.VPS, f.SPS, f.PPS = clip.vps, clip.sps, clip.pps
		}
		forma = f
	}
	ts.media = &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{forma}}
	ts.stream = &gortsplib.ServerStream{Server: srv, Desc: &description.Session{Medias: []*description.Media{ts.media}}}
	if err := ts.stream.Initialize(); err != nil {
		srv.Close()
		ts.t.Fatalf("test server stream: %v", err)
	}
	ts.srv = srv
	ctx, cancel := context.WithCancel(context.Background())
	ts.cancel = cancel
	ts.feederWG.Add(1)
	go ts.feed(ctx, ts.stream, ts.media, forma)
}

// stop closes every connection and stops listening.
func (ts *testServer) stop() {
	ts.mu.Lock()
	srv, stream, cancel := ts.srv, ts.stream, ts.cancel
	ts.srv, ts.stream, ts.cancel = nil, nil, nil
	ts.mu.Unlock()
	if srv == nil {
		return
	}
	cancel()
	ts.feederWG.Wait()
	stream.Close()
	srv.Close()
}

// setPaused stops or resumes sending media; sessions stay open.
func (ts *testServer) setPaused(p bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.paused = p
}

// injectPackets queues packets to send before the next access unit; a nil
// entry skips one sequence number, as a lost packet would.
func (ts *testServer) injectPackets(pkts ...*rtp.Packet) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.inject = append(ts.inject, pkts...)
}

// connections returns when each RTSP connection was opened.
func (ts *testServer) connections() []time.Time {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]time.Time(nil), ts.connTimes...)
}

// feed sends the clip in a loop at its frame rate until ctx ends.
func (ts *testServer) feed(ctx context.Context, stream *gortsplib.ServerStream, medi *description.Media, forma format.Format) {
	defer ts.feederWG.Done()
	clip := ts.cfg.clip
	encode, err := newTestEncoder(forma)
	if err != nil {
		ts.t.Errorf("test encoder: %v", err)
		return
	}
	frame := time.Second / time.Duration(clip.fps)
	tick := time.NewTicker(frame)
	defer tick.Stop()
	seq := uint16(1000)
	rtpTS := uint32(5000)
	step := uint32(90000 / clip.fps)
	for i := 0; ; {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		rtpTS += step
		ts.mu.Lock()
		paused, inject := ts.paused, ts.inject
		ts.inject = nil
		ts.mu.Unlock()
		if paused {
			continue
		}
		for _, pkt := range inject {
			if pkt == nil {
				seq++
				continue
			}
			pkt.SequenceNumber = seq
			pkt.SSRC = 0x1234
			pkt.PayloadType = 96
			pkt.Version = 2
			if pkt.Timestamp == 0 {
				pkt.Timestamp = rtpTS - step/2
			}
			seq++
			_ = stream.WritePacketRTP(medi, pkt)
		}
		au := clip.aus[i%len(clip.aus)]
		if ts.cfg.stripParams {
			var kept [][]byte
			for _, n := range au {
				switch nalKindOf(clip.codec, n) {
				case nalVPS, nalSPS, nalPPS:
				default:
					kept = append(kept, n)
				}
			}
			au = kept
		}
		pkts, err := encode(au)
		if err != nil {
			ts.t.Errorf("encode access unit %d: %v", i, err)
			return
		}
		for _, pkt := range pkts {
			pkt.SequenceNumber = seq
			pkt.SSRC = 0x1234
			pkt.Timestamp = rtpTS
			seq++
			_ = stream.WritePacketRTP(medi, pkt)
		}
		i++
	}
}

func newTestEncoder(forma format.Format) (func([][]byte) ([]*rtp.Packet, error), error) {
	switch f := forma.(type) {
	case *format.H264:
		enc, err := f.CreateEncoder()
		if err != nil {
			return nil, err
		}
		return enc.Encode, nil
	case *format.H265:
		enc, err := f.CreateEncoder()
		if err != nil {
			return nil, err
		}
		return enc.Encode, nil
	}
	return nil, fmt.Errorf("format %T", forma)
}

// OnConnOpen implements gortsplib.ServerHandlerOnConnOpen.
func (ts *testServer) OnConnOpen(*gortsplib.ServerHandlerOnConnOpenCtx) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.connTimes = append(ts.connTimes, time.Now())
}

func (ts *testServer) authorized(conn *gortsplib.ServerConn, req *base.Request) bool {
	return ts.cfg.user == "" || conn.VerifyCredentials(req, ts.cfg.user, ts.cfg.pass)
}

// OnDescribe implements gortsplib.ServerHandlerOnDescribe.
func (ts *testServer) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if !ts.authorized(ctx.Conn, ctx.Request) {
		return &base.Response{StatusCode: base.StatusUnauthorized}, nil, liberrors.ErrServerAuth{}
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ctx.Path != "/cam" || ts.stream == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, ts.stream, nil
}

// OnSetup implements gortsplib.ServerHandlerOnSetup.
func (ts *testServer) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if !ts.authorized(ctx.Conn, ctx.Request) {
		return &base.Response{StatusCode: base.StatusUnauthorized}, nil, liberrors.ErrServerAuth{}
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.stream == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	if ctx.Transport == gortsplib.TransportUDP && ts.rtpAddr == "" {
		return &base.Response{StatusCode: base.StatusUnsupportedTransport}, nil, nil
	}
	ts.setups = append(ts.setups, ctx.Transport)
	return &base.Response{StatusCode: base.StatusOK}, ts.stream, nil
}

// setupTransports returns the transport of each accepted SETUP.
func (ts *testServer) setupTransports() []gortsplib.Transport {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]gortsplib.Transport(nil), ts.setups...)
}

// OnPlay implements gortsplib.ServerHandlerOnPlay.
func (ts *testServer) OnPlay(*gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// freeTCPAddr returns a loopback address whose port was free a moment ago.
func freeTCPAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// freeUDPPair returns two loopback UDP addresses on consecutive ports, the
// first even, as RTP and RTCP need.
func freeUDPPair(t testing.TB) (string, string) {
	t.Helper()
	for i := 0; i < 100; i++ {
		a, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := a.LocalAddr().(*net.UDPAddr).Port
		a.Close()
		if port%2 == 1 {
			port--
		}
		rtpA := fmt.Sprintf("127.0.0.1:%d", port)
		rtcpA := fmt.Sprintf("127.0.0.1:%d", port+1)
		p1, err1 := net.ListenPacket("udp", rtpA)
		p2, err2 := net.ListenPacket("udp", rtcpA)
		if p1 != nil {
			p1.Close()
		}
		if p2 != nil {
			p2.Close()
		}
		if err1 == nil && err2 == nil {
			return rtpA, rtcpA
		}
	}
	t.Fatal("no free UDP port pair on 127.0.0.1")
	return "", ""
}

// hasNALKind reports whether au holds a NAL unit of kind.
func hasNALKind(codec Codec, au [][]byte, kind nalKind) bool {
	for _, n := range au {
		if nalKindOf(codec, n) == kind {
			return true
		}
	}
	return false
}

// containsNALU reports whether au holds a NAL unit equal to want.
func containsNALU(au [][]byte, want []byte) bool {
	for _, n := range au {
		if bytes.Equal(n, want) {
			return true
		}
	}
	return false
}
