package samples

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"
	"go.uber.org/goleak"
)

// syncBuffer is a bytes.Buffer safe for the simulator's concurrent log
// lines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testLogger logs into the test's output, and also into extra when given.
func testLogger(t *testing.T, extra ...io.Writer) *slog.Logger {
	w := io.MultiWriter(append([]io.Writer{t.Output()}, extra...)...)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// freeAddrs returns a free loopback TCP address for RTSP and a free pair of
// consecutive UDP addresses, the first with an even port, for RTP and RTCP.
func freeAddrs(t *testing.T) (listen, udpRTP, udpRTCP string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen = l.Addr().String()
	l.Close()
	for range 100 {
		a, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := a.LocalAddr().(*net.UDPAddr).Port
		if port%2 != 0 || port == 65535 {
			a.Close()
			continue
		}
		b, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port+1))
		a.Close()
		if err != nil {
			continue
		}
		b.Close()
		return listen, "127.0.0.1:" + strconv.Itoa(port), "127.0.0.1:" + strconv.Itoa(port+1)
	}
	t.Fatal("no free pair of UDP ports on 127.0.0.1")
	return "", "", ""
}

// startSimulator starts a simulator on free loopback ports serving paths,
// and closes it when the test ends.
func startSimulator(t *testing.T, cfg SimulatorConfig, paths ...Path) *Simulator {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	var lastErr error
	for range 5 {
		cfg.Listen, cfg.UDPRTPAddress, cfg.UDPRTCPAddress = freeAddrs(t)
		sim := NewSimulator(cfg)
		for _, p := range paths {
			if err := sim.AddPath(p.Name, p.Prepared); err != nil {
				sim.Close()
				t.Fatal(err)
			}
		}
		if lastErr = sim.Start(); lastErr == nil {
			t.Cleanup(sim.Close)
			return sim
		}
		sim.Close()
	}
	t.Fatalf("start simulator: %v", lastErr)
	return nil
}

// preparedClip makes a test-pattern clip of the given length and rate and
// prepares it for the simulator.
func preparedClip(t *testing.T, name string, seconds, rate int) Prepared {
	t.Helper()
	dir := t.TempDir()
	src := makeClip(t, dir, name+".avi", seconds, rate, "320x240", "-c:v", "mjpeg")
	p, err := Prepare(context.Background(), src, dir)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// rtpRecord is one RTP packet as a test client received it.
type rtpRecord struct {
	seq    uint16
	ts     uint32
	ssrc   uint32
	marker bool
	key    bool // the packet completed an IDR access unit
	at     time.Time
}

// rtpReader is a gortsplib client that records every H.264 RTP packet of a
// path.
type rtpReader struct {
	client *gortsplib.Client
	mu     sync.Mutex
	pkts   []rtpRecord
}

// readRTP connects to url with the given transport and records its packets
// until the test ends.
func readRTP(t *testing.T, url string, transport gortsplib.Transport) *rtpReader {
	t.Helper()
	r, err := dialRTP(url, transport)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.client.Close)
	return r
}

// dialRTP connects to url and starts recording its packets.
func dialRTP(url string, transport gortsplib.Transport) (*rtpReader, error) {
	u, err := base.ParseURL(url)
	if err != nil {
		return nil, err
	}
	r := &rtpReader{client: &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Transport: &transport}}
	if err := r.client.Start2(); err != nil {
		return nil, err
	}
	desc, _, err := r.client.Describe(u)
	if err != nil {
		r.client.Close()
		return nil, err
	}
	var forma *format.H264
	medi := desc.FindFormat(&forma)
	if medi == nil {
		r.client.Close()
		return nil, fmt.Errorf("%s: no H.264 media in %v", url, desc.Medias)
	}
	dec, err := forma.CreateDecoder()
	if err != nil {
		r.client.Close()
		return nil, err
	}
	if _, err := r.client.Setup(desc.BaseURL, medi, 0, 0); err != nil {
		r.client.Close()
		return nil, err
	}
	r.client.OnPacketRTP(medi, forma, func(pkt *rtp.Packet) {
		rec := rtpRecord{seq: pkt.SequenceNumber, ts: pkt.Timestamp, ssrc: pkt.SSRC,
			marker: pkt.Marker, at: time.Now()}
		if au, err := dec.Decode(pkt); err == nil {
			rec.key = h264.IsRandomAccess(au)
		}
		r.mu.Lock()
		r.pkts = append(r.pkts, rec)
		r.mu.Unlock()
	})
	if _, err := r.client.Play(nil); err != nil {
		r.client.Close()
		return nil, err
	}
	return r, nil
}

// packets returns a copy of the packets recorded so far.
func (r *rtpReader) packets() []rtpRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]rtpRecord(nil), r.pkts...)
}

// waitPackets waits until the reader has recorded at least n packets.
func (r *rtpReader) waitPackets(t *testing.T, n int, within time.Duration) []rtpRecord {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		pkts := r.packets()
		if len(pkts) >= n {
			return pkts
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d RTP packets within %v, want %d", len(pkts), within, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitAccessUnits waits until the reader has recorded n complete access
// units (packets with the marker bit).
func (r *rtpReader) waitAccessUnits(t *testing.T, n int, within time.Duration) []rtpRecord {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		pkts := r.packets()
		if countMarkers(pkts) >= n {
			return pkts
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d access units within %v, want %d", countMarkers(pkts), within, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func countMarkers(pkts []rtpRecord) int {
	n := 0
	for _, p := range pkts {
		if p.marker {
			n++
		}
	}
	return n
}

// checkContinuity asserts that sequence numbers rise by exactly one per
// packet and that timestamps rise by exactly one frame period per access
// unit.
func checkContinuity(t *testing.T, pkts []rtpRecord, period uint32) {
	t.Helper()
	for i := 1; i < len(pkts); i++ {
		prev, cur := pkts[i-1], pkts[i]
		if cur.seq != prev.seq+1 {
			t.Fatalf("packet %d: sequence number %d after %d", i, cur.seq, prev.seq)
		}
		step := cur.ts - prev.ts
		if prev.marker && step != period {
			t.Fatalf("packet %d: timestamp %d after %d, a step of %d, want %d",
				i, cur.ts, prev.ts, int32(step), period)
		}
		if !prev.marker && step != 0 {
			t.Fatalf("packet %d: timestamp changed within an access unit (%d after %d)", i, cur.ts, prev.ts)
		}
	}
}

func TestSimulatorLoopKeepsSequenceAndTimestampsRising(t *testing.T) {
	t.Parallel()
	// A one-second clip of 25 frames with one IDR picture at its start.
	p := preparedClip(t, "pattern", 1, 25)
	if p.Frames != 25 {
		t.Fatalf("prepared %d frames, want 25", p.Frames)
	}
	sim := startSimulator(t, SimulatorConfig{Loop: true}, Path{Name: "pattern", Prepared: p})
	r := readRTP(t, sim.URL("pattern"), gortsplib.TransportTCP)

	// Three and a half loops: three loop points.
	pkts := r.waitAccessUnits(t, 88, 20*time.Second)
	checkContinuity(t, pkts, 90000/25)
	keys := 0
	for _, pkt := range pkts {
		if pkt.key {
			keys++
		}
	}
	if keys < 3 {
		t.Errorf("saw %d IDR access units over three loop points, want at least 3", keys)
	}
	if pkts[0].ssrc != pkts[len(pkts)-1].ssrc {
		t.Errorf("SSRC changed from %d to %d", pkts[0].ssrc, pkts[len(pkts)-1].ssrc)
	}
}

func TestSimulatorSharesOneStreamAmongReaders(t *testing.T) {
	t.Parallel()
	p := preparedClip(t, "shared", 2, 10)
	sim := startSimulator(t, SimulatorConfig{Loop: true}, Path{Name: "shared", Prepared: p})
	var readers []*rtpReader
	for i := range 4 {
		transport := gortsplib.TransportTCP
		if i%2 == 1 {
			transport = gortsplib.TransportUDP
		}
		readers = append(readers, readRTP(t, sim.URL("shared"), transport))
	}
	// Every reader gets the same packets: same SSRC, and the same
	// timestamp for the same sequence number.
	want := map[uint16]uint32{}
	var ssrc uint32
	for i, r := range readers {
		pkts := r.waitAccessUnits(t, 15, 10*time.Second)
		checkContinuity(t, pkts, 90000/10)
		for _, pkt := range pkts {
			if i == 0 && ssrc == 0 {
				ssrc = pkt.ssrc
			}
			if pkt.ssrc != ssrc {
				t.Fatalf("reader %d: SSRC %d, reader 0 got %d", i, pkt.ssrc, ssrc)
			}
			if ts, ok := want[pkt.seq]; ok && ts != pkt.ts {
				t.Fatalf("reader %d: packet %d has timestamp %d, another reader got %d", i, pkt.seq, pkt.ts, ts)
			}
			want[pkt.seq] = pkt.ts
		}
	}
}

// rtspRequest sends one raw RTSP request over TCP and returns the status
// line of the answer.
func rtspRequest(t *testing.T, url, method string, header ...string) string {
	t.Helper()
	u, err := base.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	req := method + " " + url + " RTSP/1.0\r\nCSeq: 1\r\n"
	for _, h := range header {
		req += h + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return strings.TrimSpace(status)
}

// runFFprobe runs ffprobe against url and returns its standard output and
// error output.
func runFFprobe(ctx context.Context, args ...string) (string, string, error) {
	cmd := exec.CommandContext(ctx, "ffprobe", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

func TestSimulatorRequiresCredentials(t *testing.T) {
	t.Parallel()
	requireFFmpeg(t)
	const user, pass = "viewer", "s3cret-Pa55"
	p := preparedClip(t, "gate", 1, 10)
	var logs syncBuffer
	sim := startSimulator(t, SimulatorConfig{
		Loop: true, Username: user, Password: pass, Logger: testLogger(t, &logs),
	}, Path{Name: "gate", Prepared: p})
	plain := sim.URL("gate")
	withCreds := strings.Replace(plain, "rtsp://", "rtsp://"+user+":"+pass+"@", 1)
	wrongCreds := strings.Replace(plain, "rtsp://", "rtsp://"+user+":wrong@", 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	probe := []string{"-v", "error", "-rtsp_transport", "tcp", "-show_entries", "stream=codec_name", "-of", "csv=p=0"}
	if out, stderr, err := runFFprobe(ctx, append(probe, plain)...); err == nil || !strings.Contains(stderr, "401") {
		t.Errorf("ffprobe without credentials: err %v, output %q, stderr %q; want a 401 failure", err, out, stderr)
	}
	if out, stderr, err := runFFprobe(ctx, append(probe, wrongCreds)...); err == nil || !strings.Contains(stderr, "401") {
		t.Errorf("ffprobe with a wrong password: err %v, output %q, stderr %q; want a 401 failure", err, out, stderr)
	}
	// ffmpeg answers the digest challenge.
	if out, stderr, err := runFFprobe(ctx, append(probe, withCreds)...); err != nil || strings.TrimSpace(out) != "h264" {
		t.Errorf("ffprobe with credentials: err %v, output %q, stderr %q; want h264", err, out, stderr)
	}
	// Basic authentication works too.
	basic := "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	if status := rtspRequest(t, plain, "DESCRIBE", basic); !strings.Contains(status, "200") {
		t.Errorf("DESCRIBE with basic credentials: %q, want 200", status)
	}
	badBasic := "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(user+":nope"))
	if status := rtspRequest(t, plain, "DESCRIBE", badBasic); !strings.Contains(status, "401") {
		t.Errorf("DESCRIBE with wrong basic credentials: %q, want 401", status)
	}
	if !strings.Contains(logs.String(), "rtsp credentials refused") {
		t.Errorf("refused credentials were not logged:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), pass) {
		t.Errorf("the password reached the log:\n%s", logs.String())
	}
}

func TestSimulatorWithoutLoopEndsThePath(t *testing.T) {
	t.Parallel()
	requireFFmpeg(t)
	p := preparedClip(t, "once", 3, 10)
	sim := startSimulator(t, SimulatorConfig{Loop: false}, Path{Name: "once", Prepared: p})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// ffmpeg reads the camera until the simulator ends it; it must exit on
	// its own, long before the deadline.
	cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
		"-rtsp_transport", "tcp", "-i", sim.URL("once"), "-c", "copy", "-f", "framemd5", "-")
	out, _ := cmd.Output()
	if ctx.Err() != nil {
		t.Fatalf("ffmpeg still reading after %v: the path did not end", 30*time.Second)
	}
	frames := 0
	for _, line := range strings.Split(string(out), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			frames++
		}
	}
	if frames == 0 || frames > p.Frames {
		t.Errorf("ffmpeg read %d frames, want 1 to %d (one pass)", frames, p.Frames)
	}
	if got := sim.Paths(); len(got) != 0 {
		t.Errorf("paths after the single pass: %v, want none", got)
	}
	if status := rtspRequest(t, sim.URL("once"), "DESCRIBE"); !strings.Contains(status, "404") {
		t.Errorf("DESCRIBE after the single pass: %q, want 404", status)
	}
}

func TestSimulatorPauseKeepsReadersConnected(t *testing.T) {
	t.Parallel()
	p := preparedClip(t, "stall", 2, 10)
	sim := startSimulator(t, SimulatorConfig{Loop: true}, Path{Name: "stall", Prepared: p})
	r := readRTP(t, sim.URL("stall"), gortsplib.TransportTCP)
	r.waitAccessUnits(t, 5, 10*time.Second)

	if err := sim.Pause("stall"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // packets already on their way
	before := len(r.packets())
	time.Sleep(time.Second)
	paused := r.packets()
	if len(paused) != before {
		t.Fatalf("%d packets arrived while paused", len(paused)-before)
	}
	if err := sim.Resume("stall"); err != nil {
		t.Fatal(err)
	}
	// The same session receives again: no reconnect happened.
	pkts := r.waitPackets(t, len(paused)+1, 10*time.Second)
	last, next := pkts[len(paused)-1], pkts[len(paused)]
	if next.seq != last.seq+1 {
		t.Errorf("sequence number %d after the stall, want %d", next.seq, last.seq+1)
	}
	if gap := time.Duration(next.ts-last.ts) * time.Second / 90000; gap < time.Second {
		t.Errorf("timestamps advanced %v over a stall of more than 1.3s, want them to follow the clock", gap)
	}
	if err := sim.Pause("nosuch"); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("Pause of an unknown path: %v", err)
	}
}

func TestSimulatorCloseSessionsAndRuntimePaths(t *testing.T) {
	t.Parallel()
	p := preparedClip(t, "first", 2, 10)
	sim := startSimulator(t, SimulatorConfig{Loop: true}, Path{Name: "first", Prepared: p})
	r := readRTP(t, sim.URL("first"), gortsplib.TransportTCP)
	r.waitAccessUnits(t, 3, 10*time.Second)

	sim.CloseSessions()
	waited := make(chan error, 1)
	go func() { waited <- r.client.Wait() }()
	select {
	case err := <-waited:
		if err == nil {
			t.Error("client ended without an error after CloseSessions")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("client still connected 10s after CloseSessions")
	}

	// The path is still served: a new reader gets media.
	readRTP(t, sim.URL("first"), gortsplib.TransportTCP).waitAccessUnits(t, 3, 10*time.Second)

	// A path added at runtime is served; a removed one is gone.
	if err := sim.AddPath("second", p); err != nil {
		t.Fatal(err)
	}
	if err := sim.AddPath("second", p); err == nil {
		t.Error("adding a path twice: no error")
	}
	if err := sim.AddPath("bad/name", p); err == nil {
		t.Error("a path name with a slash: no error")
	}
	readRTP(t, sim.URL("second"), gortsplib.TransportTCP).waitAccessUnits(t, 3, 10*time.Second)
	if err := sim.RemovePath("first"); err != nil {
		t.Fatal(err)
	}
	if status := rtspRequest(t, sim.URL("first"), "DESCRIBE"); !strings.Contains(status, "404") {
		t.Errorf("DESCRIBE of a removed path: %q, want 404", status)
	}
	if got := sim.Paths(); len(got) != 1 || got[0] != "second" {
		t.Errorf("paths %v, want [second]", got)
	}
	if err := sim.RemovePath("first"); err == nil {
		t.Error("removing a path twice: no error")
	}
}

// TestSimulatorCloseLeavesNoGoroutines runs before the parallel tests, so
// the goroutines it checks are its own.
func TestSimulatorCloseLeavesNoGoroutines(t *testing.T) {
	p := preparedClip(t, "leak", 1, 10)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	listen, rtpAddr, rtcpAddr := freeAddrs(t)
	sim := NewSimulator(SimulatorConfig{Listen: listen, UDPRTPAddress: rtpAddr, UDPRTCPAddress: rtcpAddr,
		Loop: true, Logger: testLogger(t)})
	if err := sim.AddPath("leak", p); err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- sim.Run(ctx) }()
	var readers []*rtpReader
	for _, tr := range []gortsplib.Transport{gortsplib.TransportTCP, gortsplib.TransportUDP} {
		r, err := dialRTP(sim.URL("leak"), tr)
		if err != nil {
			t.Fatal(err)
		}
		readers = append(readers, r)
		r.waitAccessUnits(t, 2, 10*time.Second)
	}
	cancel()
	if err := <-ran; err != nil {
		t.Errorf("Run after its context ended: %v", err)
	}
	for _, r := range readers {
		r.client.Close()
	}
	if err := sim.AddPath("late", p); err == nil {
		t.Error("AddPath after Close: no error")
	}
}

func TestSimulatorDerivesUDPPorts(t *testing.T) {
	for _, tc := range []struct {
		listen, rtp, rtcp string
	}{
		{":8554", ":9554", ":9555"},
		{"127.0.0.1:8555", "127.0.0.1:9554", "127.0.0.1:9555"},
		{"127.0.0.1:0", "", ""},
	} {
		sim := NewSimulator(SimulatorConfig{Listen: tc.listen})
		rtpAddr, rtcpAddr, err := sim.udpAddresses()
		if err != nil || rtpAddr != tc.rtp || rtcpAddr != tc.rtcp {
			t.Errorf("listen %s: UDP %q %q (%v), want %q %q", tc.listen, rtpAddr, rtcpAddr, err, tc.rtp, tc.rtcp)
		}
		sim.Close()
	}
	sim := NewSimulator(SimulatorConfig{Listen: "127.0.0.1:65000"})
	if _, _, err := sim.udpAddresses(); err == nil {
		t.Error("listen port 65000: no error for UDP ports past 65535")
	}
	sim.Close()
}

// probePacketTimes has ffprobe read n packets of the video at url over the
// given RTSP transport and returns their presentation times in seconds.
// ffmpeg's RTP demuxer gives the first packet it reads no timestamp; that
// one is left out, and any later packet without one is an error.
func probePacketTimes(ctx context.Context, url, transport string, n int) ([]float64, error) {
	out, stderr, err := runFFprobe(ctx, "-v", "error", "-rtsp_transport", transport,
		"-select_streams", "v:0", "-read_intervals", "%+#"+strconv.Itoa(n),
		"-show_entries", "packet=pts_time", "-of", "json", url)
	if err != nil {
		return nil, fmt.Errorf("ffprobe packets of %s over %s: %w: %s", url, transport, err, stderr)
	}
	var res struct {
		Packets []struct {
			PTSTime *string `json:"pts_time"`
		} `json:"packets"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		return nil, fmt.Errorf("ffprobe packets of %s: %w", url, err)
	}
	if len(res.Packets) != n {
		return nil, fmt.Errorf("ffprobe read %d packets of %s, want %d", len(res.Packets), url, n)
	}
	var pts []float64
	for i, pkt := range res.Packets {
		if pkt.PTSTime == nil && i == 0 {
			continue
		}
		if pkt.PTSTime == nil {
			return nil, fmt.Errorf("ffprobe packet %d of %s has no pts", i, url)
		}
		v, err := strconv.ParseFloat(*pkt.PTSTime, 64)
		if err != nil {
			return nil, fmt.Errorf("ffprobe packet %d of %s: pts %q: %w", i, url, *pkt.PTSTime, err)
		}
		pts = append(pts, v)
	}
	return pts, nil
}

// vtestForTest returns the prepared vtest clip: the one in MediaDir when
// setup made it, else one prepared into a temporary folder.
func vtestForTest(t *testing.T) Prepared {
	t.Helper()
	s, _ := LookupBuiltin("vtest")
	if p, err := LoadPrepared(s.Path()); err == nil {
		return p
	}
	p, err := PrepareVtest(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSimulatorServesVtestToFFprobe is the simulator's acceptance test:
// ffprobe, an independent RTSP client, reads the vtest camera over TCP and
// over UDP at once, for more than two passes of the 79.5 s clip, and sees
// H.264 768x576 at 10 fps arriving in real time with timestamps that never
// go back. It takes about three minutes and runs under -short too.
func TestSimulatorServesVtestToFFprobe(t *testing.T) {
	t.Parallel()
	requireFFmpeg(t)
	p := vtestForTest(t)
	if p.Frames != 795 || p.Width != 768 || p.Height != 576 || p.FrameRate != (FrameRate{Num: 10, Den: 1}) {
		t.Fatalf("prepared vtest is %+v, want 795 frames of 768x576 at 10/1", p)
	}
	sim := startSimulator(t, SimulatorConfig{Loop: true}, Path{Name: "vtest", Prepared: p})
	url := sim.URL("vtest")
	if url != "rtsp://"+sim.Addr().String()+"/vtest" || !strings.HasPrefix(url, "rtsp://127.0.0.1:") {
		t.Fatalf("URL %q does not name the loopback listener %s", url, sim.Addr())
	}

	// 1700 frames: 170 s, more than two passes of 79.5 s wherever the
	// reader starts in the clip.
	const frames = 1700
	for _, transport := range []string{"tcp", "udp"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()

			st := probeStream(t, ctx, url, "-rtsp_transport", transport)
			if st["codec_name"] != "h264" || st["width"] != float64(768) || st["height"] != float64(576) ||
				st["r_frame_rate"] != "10/1" {
				t.Errorf("ffprobe sees %v %vx%v at %v, want h264 768x576 at 10/1",
					st["codec_name"], st["width"], st["height"], st["r_frame_rate"])
			}

			began := time.Now()
			pts, err := probePacketTimes(ctx, url, transport, frames)
			wall := time.Since(began)
			if err != nil {
				t.Fatal(err)
			}
			for i := 1; i < len(pts); i++ {
				step := pts[i] - pts[i-1]
				if step <= 0 {
					t.Fatalf("packet %d: pts %.3f after %.3f: timestamps went back", i, pts[i], pts[i-1])
				}
				// TCP loses nothing; over UDP a lost frame would show as a
				// double step, never as a step back.
				if transport == "tcp" && (step < 0.099 || step > 0.101) {
					t.Fatalf("packet %d: pts step %.4f s, want 0.1 s", i, step)
				}
			}
			span := pts[len(pts)-1] - pts[0]
			if span < 2*79.5 {
				t.Errorf("pts span %.1f s does not cover two passes of 79.5 s", span)
			}
			t.Logf("%s: %d packets read in %.1f s, pts %.1f..%.1f s (span %.1f s, %.2f passes of the clip)",
				transport, frames, wall.Seconds(), pts[0], pts[len(pts)-1], span, span/79.5)
			// Real time: 1700 frames at 10 fps cannot arrive faster than
			// 169.9 s, and pacing keeps them from arriving much later.
			want := float64(frames-1) / 10
			if got := wall.Seconds(); got < want-1 || got > want*1.03+3 {
				t.Errorf("read %d frames in %.1f s, want about %.1f s (real time at 10 fps)", frames, got, want)
			}
		})
	}
}

func TestResolveVideos(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	t.Setenv(MediaEnv, dir)

	// A built-in sample that setup has not made: the error names the file
	// and the remedy.
	_, err := ResolveVideos(ctx, nil, dir)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "vtest.h264")) ||
		!strings.Contains(err.Error(), "make setup") {
		t.Errorf("missing built-in sample: error %v, want one naming %s and make setup",
			err, filepath.Join(dir, "vtest.h264"))
	}

	clipPath := makeClip(t, dir, "north-gate.avi", 1, 10, "320x240", "-c:v", "mjpeg")
	paths, err := ResolveVideos(ctx, []string{clipPath}, filepath.Join(dir, "cache"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 1 || paths[0].Name != "north-gate" || paths[0].Prepared.Frames != 10 {
		t.Errorf("resolved %+v, want north-gate with 10 frames", paths)
	}
	// An already prepared stream is served as it is.
	again, err := ResolveVideos(ctx, []string{paths[0].Prepared.Video}, filepath.Join(dir, "other"))
	if err != nil {
		t.Fatal(err)
	}
	if again[0].Prepared.Video != paths[0].Prepared.Video {
		t.Errorf("prepared stream %s was prepared again into %s", paths[0].Prepared.Video, again[0].Prepared.Video)
	}

	other := filepath.Join(dir, "sub")
	if err := os.Mkdir(other, 0o755); err != nil {
		t.Fatal(err)
	}
	twin := makeClip(t, other, "north-gate.avi", 1, 10, "320x240", "-c:v", "mjpeg")
	if _, err := ResolveVideos(ctx, []string{clipPath, twin}, dir); err == nil ||
		!strings.Contains(err.Error(), "north-gate") {
		t.Errorf("two videos named north-gate: error %v", err)
	}
	if _, err := ResolveVideos(ctx, []string{filepath.Join(dir, "nope.mp4")}, dir); err == nil ||
		!strings.Contains(err.Error(), "nope.mp4") {
		t.Errorf("missing video: error %v does not name it", err)
	}
}

func TestSimulatorStartFailureIsReported(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	sim := NewSimulator(SimulatorConfig{Listen: busy.Addr().String(), Logger: testLogger(t)})
	defer sim.Close()
	if err := sim.Start(); err == nil || !strings.Contains(err.Error(), busy.Addr().String()) {
		t.Errorf("Start on a busy port: error %v does not name %s", err, busy.Addr())
	}
	if err := sim.Run(context.Background()); err == nil {
		t.Error("Run of a simulator that did not start: no error")
	}
}
