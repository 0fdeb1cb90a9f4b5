package console

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"flowwatch/ingest"
	"flowwatch/samples"
)

// The WHEP benchmarks relay a 1080p25 H.264 camera (ffmpeg's testsrc2,
// libx264 veryfast at 4 Mbit/s, a keyframe every 2 s, no B-frames) to
// real pion viewers on loopback:
//
//   - BenchmarkWHEPViewers plays the clip into an ingest.Stream in real
//     time and adds viewers in steps (1, 10, 50, 100, …) until the relay
//     falls behind or the box runs out of CPU. Per step it prints the
//     relay's CPU (this process's rusage over the window, less the same
//     window with no viewer), per viewer, the viewers' loss and lateness,
//     and how many viewers the relay's cost per viewer fits into 80% of
//     the box's cores.
//   - BenchmarkWHEPRelayLatency takes the same clip through a real RTSP
//     hop (samples.Simulator → ingest.Camera → WHEP) and prints the
//     relay's latency from the access unit's RTSP arrival to just after
//     its last WriteRTP, exactly (every sample, via WHEPConfig.onRelay),
//     with 1, 10 and 50 viewers.
//
// The viewers run in a child process (this test binary started again, see
// TestBenchChildProcess), so this process's CPU is the relay's alone; the
// child's CPU is measured by the child and shown separately. Both share
// the machine's cores, as they would not in production.
//
// Each runs in real time; run them with -benchtime 1x.
// FLOWWATCH_WHEP_BENCH_WINDOW (a Go duration, default 6s) is how long
// each step is measured, after 2 s of warm-up.

const (
	// whepBenchClipName is the benchmark clip in the benchmark cache; the
	// name carries the recipe (whepBenchClipArgs).
	whepBenchClipName = "whep-testsrc2-1920x1080-25fps-10s-4M-g50.mp4"
	// whepBenchFPS is the clip's frame rate.
	whepBenchFPS = 25
	// whepBenchWarmup precedes each measured window.
	whepBenchWarmup = 2 * time.Second
	// whepBenchDefaultWindow is each step's measured window.
	whepBenchDefaultWindow = 6 * time.Second
	// whepBenchBudget bounds BenchmarkWHEPViewers's steps: no step starts
	// after it, so the benchmark ends within about two minutes.
	whepBenchBudget = 85 * time.Second
	// whepBenchMaxViewers is the largest step.
	whepBenchMaxViewers = 600
	// whepBenchLateMs is how late a frame may reach a viewer, after its
	// access unit was published, before it counts as late.
	whepBenchLateMs = 200
	// whepBenchBoxShare is the share of the box's cores the capacity
	// figure fills.
	whepBenchBoxShare = 0.8
)

// whepBenchClipArgs renders the benchmark clip (the output path follows).
var whepBenchClipArgs = []string{"-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=25",
	"-t", "10", "-c:v", "libx264", "-preset", "veryfast", "-b:v", "4M", "-g", "50", "-bf", "0", "-pix_fmt", "yuv420p", "-f", "mp4"}

// whepBenchClip is the benchmark input: the clip's access units and, for
// each, the key a viewer computes from the access unit's last packet
// (whepPacketKey), so that a frame a viewer receives can be matched with
// when its access unit was published.
type whepBenchClip struct {
	mp4  string
	aus  []*ingest.AccessUnit
	keys []uint64
	// mbps and pps are the clip's bit rate and RTP packets per second as
	// relayed.
	mbps, pps float64
	// dupKeys counts frames whose key another frame has too (a viewer's
	// latency for those may be matched with the wrong publish); 0 for
	// the clip as rendered.
	dupKeys int
}

// whepBenchInput renders the clip into the benchmark cache on first use
// (about 15 s on two cores) and reads its access units.
var whepBenchInput = sync.OnceValues(func() (*whepBenchClip, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return nil, fmt.Errorf("benchmark cache: %w", err)
	}
	dir := filepath.Join(cache, "flowwatch", "bench")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("benchmark cache: %w", err)
	}
	mp4 := filepath.Join(dir, whepBenchClipName)
	if _, err := os.Stat(mp4); err != nil {
		tmp := mp4 + ".tmp"
		out, err := exec.Command("ffmpeg", append(append([]string{}, whepBenchClipArgs...), "-y", tmp)...).CombinedOutput()
		if err != nil {
			os.Remove(tmp)
			return nil, fmt.Errorf("benchmark clip: ffmpeg: %v: %s", err, out)
		}
		if err := os.Rename(tmp, mp4); err != nil {
			return nil, fmt.Errorf("benchmark clip: %w", err)
		}
	}
	ctx := context.Background()
	r, err := ingest.OpenAccessUnitFile(ctx, mp4)
	if err != nil {
		return nil, fmt.Errorf("benchmark clip: %w", err)
	}
	defer r.Close()
	c := &whepBenchClip{mp4: mp4}
	var bytes, packets int
	for {
		au, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("benchmark clip %s: %w", mp4, err)
		}
		c.aus = append(c.aus, au)
		c.keys = append(c.keys, whepAUKey(au))
		for _, n := range au.NALUs {
			bytes += len(n)
			packets += (len(n) + whepMTU - 2) / (whepMTU - 2) // FU-A fragments; close enough for small NALs
		}
	}
	c.dupKeys = len(c.keys) - len(slices.Compact(slices.Sorted(slices.Values(c.keys))))
	if len(c.aus) < 2*whepBenchFPS || !c.aus[0].Key {
		return nil, fmt.Errorf("benchmark clip %s: %d access units, first a keyframe: %v", mp4, len(c.aus), len(c.aus) > 0 && c.aus[0].Key)
	}
	secs := float64(len(c.aus)) / whepBenchFPS
	c.mbps = float64(bytes) * 8 / secs / 1e6
	c.pps = float64(packets) / secs
	return c, nil
})

// whepPacketKey names a frame by the last bytes of its last RTP packet's
// payload (the marker packet): what a viewer can see of it.
func whepPacketKey(payload []byte) uint64 {
	h := fnv.New64a()
	h.Write(payload[max(0, len(payload)-16):])
	return h.Sum64()
}

// whepAUKey is whepPacketKey of the marker packet the relay sends for au:
// its last NAL unit packetized as whepSession.write does.
func whepAUKey(au *ingest.AccessUnit) uint64 {
	if len(au.NALUs) == 0 {
		return 0
	}
	p := codecs.H264Payloader{DisableStapA: true}
	pkts := p.Payload(whepMTU, au.NALUs[len(au.NALUs)-1])
	if len(pkts) == 0 {
		return 0
	}
	return whepPacketKey(pkts[len(pkts)-1])
}

// whepBenchWindow is FLOWWATCH_WHEP_BENCH_WINDOW or the default.
func whepBenchWindow(b *testing.B) time.Duration {
	s := os.Getenv("FLOWWATCH_WHEP_BENCH_WINDOW")
	if s == "" {
		return whepBenchDefaultWindow
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Second {
		b.Fatalf("FLOWWATCH_WHEP_BENCH_WINDOW=%q: want a duration of at least 1s", s)
	}
	return d
}

// cpuTime is this process's user and system CPU so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchPub is one published frame: its key and when it was published (or
// arrived over RTSP), in Unix nanoseconds.
type benchPub struct {
	K uint64 `json:"k"`
	T int64  `json:"t"`
}

// whepRig is a WHEP endpoint serving camera "gate" from one stream on
// loopback (no login: every offer is a viewer's), with the relay's latency
// samples collected while a window is open, a log of what was published,
// and the viewers' child process.
type whepRig struct {
	b      *testing.B
	stream *ingest.Stream
	whep   *WHEP
	set    *metrics.Set
	srv    *httptest.Server
	child  *benchChild

	pubMu sync.Mutex
	pubs  []benchPub

	relayOn atomic.Bool
	relayMu sync.Mutex
	relays  []time.Duration

	viewers int
}

func newWHEPRig(b *testing.B, stream *ingest.Stream) *whepRig {
	b.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	r := &whepRig{b: b, stream: stream, set: metrics.NewSet()}
	w, err := NewWHEP(WHEPConfig{
		Streams:     whepStreams{"gate": stream},
		Logger:      quiet,
		Metrics:     r.set,
		MaxViewers:  whepBenchMaxViewers + 10,
		ICELoopback: true,
		ipFilter:    func(ip net.IP) bool { return ip.IsLoopback() },
		onRelay: func(d time.Duration) {
			if r.relayOn.Load() {
				r.relayMu.Lock()
				r.relays = append(r.relays, d)
				r.relayMu.Unlock()
			}
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	r.whep = w
	mux := http.NewServeMux()
	mux.HandleFunc("POST /whep/{camera}", func(rw http.ResponseWriter, req *http.Request) {
		w.offer(rw, req.WithContext(WithPrincipal(req.Context(), Principal{User: "bench", Role: RoleViewer})))
	})
	r.srv = httptest.NewServer(mux)
	r.child = startBenchChild(b, "whep", "FLOWWATCH_BENCH_WHEP_URL="+r.srv.URL+"/whep/gate")
	return r
}

// logPub records a published frame, keeping the last 30 s.
func (r *whepRig) logPub(key uint64, at time.Time) {
	r.pubMu.Lock()
	defer r.pubMu.Unlock()
	r.pubs = append(r.pubs, benchPub{K: key, T: at.UnixNano()})
	if len(r.pubs) > 60*whepBenchFPS {
		r.pubs = slices.Delete(r.pubs, 0, 30*whepBenchFPS)
	}
}

// pubsSince returns the frames published since t.
func (r *whepRig) pubsSince(t time.Time) []benchPub {
	r.pubMu.Lock()
	defer r.pubMu.Unlock()
	var out []benchPub
	for _, p := range r.pubs {
		if p.T >= t.UnixNano() {
			out = append(out, p)
		}
	}
	return out
}

// close ends the viewers, then the endpoint.
func (r *whepRig) close() {
	r.child.close()
	r.whep.Close()
	r.srv.Close()
}

// whepStep is what one window measured.
type whepStep struct {
	viewers   int
	secs      float64
	relayCPU  float64 // cores
	childCPU  float64 // cores
	droppedAU int     // access units the relay dropped (viewer queues full)
	load1     string  // the 1-minute load average at the window's end
	retried   bool    // the first window fell behind; this is the second
	relay     []time.Duration
	v         whepViewerReport
}

// grow opens viewers until there are n.
func (r *whepRig) grow(n int) {
	r.b.Helper()
	if n <= r.viewers {
		return
	}
	var rep struct {
		Viewers int    `json:"viewers"`
		Err     string `json:"err"`
	}
	r.child.call("add", map[string]int{"n": n - r.viewers}, &rep)
	if rep.Err != "" {
		r.b.Fatalf("opening %d viewers: %s", n-r.viewers, rep.Err)
	}
	r.viewers = rep.Viewers
}

// measure waits out the warm-up, then measures one window.
func (r *whepRig) measure(window time.Duration) whepStep {
	r.b.Helper()
	time.Sleep(whepBenchWarmup)
	dropped := r.set.GetOrCreateCounter("flowwatch_whep_dropped_access_units_total")
	r.relayMu.Lock()
	r.relays = r.relays[:0]
	r.relayMu.Unlock()
	r.child.call("mark", nil, nil)
	start, cpu0, drop0 := time.Now(), cpuTime(), dropped.Get()
	r.relayOn.Store(true)
	time.Sleep(window)
	r.relayOn.Store(false)
	cpu1, drop1, secs := cpuTime(), dropped.Get(), time.Since(start).Seconds()
	st := whepStep{viewers: r.viewers, secs: secs, relayCPU: (cpu1 - cpu0).Seconds() / secs, droppedAU: int(drop1 - drop0),
		load1: load1()}
	// Frames up to 9 s late still find their publish; the clip, and so
	// every key, repeats after 10 s.
	r.child.call("report", map[string]any{"pubs": r.pubsSince(start.Add(-9 * time.Second))}, &st.v)
	st.childCPU = st.v.CPUSecs / secs
	r.relayMu.Lock()
	st.relay = slices.Clone(r.relays)
	r.relayMu.Unlock()
	slices.Sort(st.relay)
	return st
}

// lossPct is the share of the packets the viewers missed.
func (s whepStep) lossPct() float64 {
	if s.v.Expected == 0 {
		return 0
	}
	return 100 * float64(s.v.Lost) / float64(s.v.Expected)
}

// framesPct is the share of the published frames the viewers got.
func (s whepStep) framesPct() float64 {
	want := float64(s.viewers) * s.secs * whepBenchFPS
	if want == 0 {
		return 100
	}
	return 100 * float64(s.v.Frames) / want
}

// keptUp tells whether every viewer got (nearly) everything in time: no
// access unit dropped by the relay, at most 0.1% of packets lost, 99% of
// the frames within whepBenchLateMs.
func (s whepStep) keptUp() bool {
	return s.droppedAU == 0 && s.lossPct() <= 0.1 && s.framesPct() >= 97 && s.v.StalledViewers == 0 &&
		s.v.LatencyMs[1] <= whepBenchLateMs && s.latePct() <= 1
}

// latePct is the share of the frames the viewers got late (or so late
// that their publish was no longer known).
func (s whepStep) latePct() float64 {
	return 100 * float64(s.v.Late+s.v.Unmatched) / float64(max(s.v.Frames, 1))
}

// durPct is the p-th percentile of sorted durations, in milliseconds.
func durPct(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := min(len(sorted)-1, int(math.Ceil(p/100*float64(len(sorted))))-1)
	return float64(sorted[max(i, 0)]) / float64(time.Millisecond)
}

// feedWHEPBench plays the clip into stream in real time, looping, one
// source session with PTS going on, until ctx ends; each access unit's
// Received is its publish time. late receives how far behind schedule the
// feed was at its worst.
func feedWHEPBench(ctx context.Context, clip *whepBenchClip, stream *ingest.Stream, log func(uint64, time.Time), late *atomic.Int64) {
	stream.Begin(ingest.CodecH264, nil)
	frame := time.Second / whepBenchFPS
	start := time.Now()
	for n := 0; ; n++ {
		due := start.Add(time.Duration(n) * frame)
		if d := time.Until(due); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		} else if ctx.Err() != nil {
			return
		}
		i := n % len(clip.aus)
		au := *clip.aus[i]
		au.PTS = time.Duration(n) * frame
		au.Received = time.Now()
		if behind := int64(au.Received.Sub(due)); behind > late.Load() {
			late.Store(behind)
		}
		log(clip.keys[i], au.Received)
		stream.Publish(&au)
	}
}

func BenchmarkWHEPViewers(b *testing.B) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		b.Skip("ffmpeg not installed")
	}
	clip, err := whepBenchInput()
	if err != nil {
		b.Fatal(err)
	}
	window := whepBenchWindow(b)
	cores := runtime.NumCPU()
	b.Logf("clip %s: 1920x1080 25 fps, %.1f Mbit/s, about %.0f RTP packets/s per viewer, %d frame keys not unique; window %s after %s warm-up; %d CPUs; load average %s",
		filepath.Base(clip.mp4), clip.mbps, clip.pps, clip.dupKeys, window, whepBenchWarmup, cores, loadAvg())
	for b.Loop() {
		stream := ingest.NewStream(ingest.StreamConfig{Name: "gate/main"})
		rig := newWHEPRig(b, stream)
		ctx, stop := context.WithCancel(context.Background())
		var feedLate atomic.Int64
		fed := make(chan struct{})
		go func() { defer close(fed); feedWHEPBench(ctx, clip, stream, rig.logPub, &feedLate) }()

		began := time.Now()
		base := rig.measure(window)
		var steps []whepStep
		var best *whepStep // the largest step that kept up
		why := "reached the largest step"
		for _, n := range []int{1, 10, 50, 100, 150, 200, 300, 400, 500, whepBenchMaxViewers} {
			if time.Since(began) > whepBenchBudget {
				why = "out of time (" + whepBenchBudget.String() + ")"
				break
			}
			rig.grow(n)
			st := rig.measure(window)
			if !st.keptUp() {
				// The box is shared: measure once more before calling it.
				st = rig.measure(window)
				st.retried = true
			}
			steps = append(steps, st)
			if !st.keptUp() {
				why = fmt.Sprintf("fell behind at %d viewers, with relay and viewers together using %.0f%% of the %d cores (1-minute load average %s)",
					n, 100*(st.relayCPU+st.childCPU)/float64(cores), cores, st.load1)
				break
			}
			best = &steps[len(steps)-1]
			if st.relayCPU+st.childCPU > 0.9*float64(cores) {
				why = fmt.Sprintf("the box is saturated at %d viewers (relay and viewers together)", n)
				break
			}
		}
		stop()
		<-fed
		rig.close()
		stream.Close()

		out := &strings.Builder{}
		fmt.Fprintf(out, "WHEP relay of one 1080p25 camera (%.1f Mbit/s) to N pion viewers on loopback, viewers in a child process\n", clip.mbps)
		fmt.Fprintf(out, "relay CPU = this process's rusage: the stream feed, the WHEP sessions (packetizing, interceptors, SRTP, UDP sends, RTCP reads), Go runtime and GC; viewers excluded\n")
		fmt.Fprintf(out, "baseline, 0 viewers: %.1f%% of a core (the feed at 25 fps)\n", 100*base.relayCPU)
		fmt.Fprintf(out, "%7s %9s %12s %10s %9s %7s %7s %8s %14s %13s %7s %6s %s\n", "viewers", "relay%1c", "relay ms/v/s", "viewers%1c",
			"packets", "lost", "dropAU", "frames%", "relay p50/p99", "view p50/p99", "late%", "load1", "kept up")
		for _, st := range steps {
			perViewer := (st.relayCPU - base.relayCPU) / float64(st.viewers)
			fmt.Fprintf(out, "%7d %8.1f%% %12.3f %9.1f%% %9d %7d %7d %7.1f%% %14s %13s %6.2f%% %6s %v\n",
				st.viewers, 100*st.relayCPU, 1000*perViewer, 100*st.childCPU, st.v.Packets, st.v.Lost, st.droppedAU, st.framesPct(),
				fmt.Sprintf("%.1f/%.1f", durPct(st.relay, 50), durPct(st.relay, 99)), fmt.Sprintf("%.0f/%.0f", st.v.LatencyMs[0], st.v.LatencyMs[1]),
				st.latePct(), st.load1, keptUpWord(st.keptUp())+secondTry(st.retried))
		}
		fmt.Fprintf(out, "columns: relay%%1c and viewers%%1c: CPU in %% of one core; relay ms/v/s: relay CPU per viewer per second, baseline subtracted; packets: RTP packets the viewers got; lost: gaps in their sequence numbers; dropAU: access units the relay dropped (a viewer's queue full); frames%%: frames the viewers got of those published; relay p50/p99: ms from publish to the last WriteRTP; view p50/p99: ms from publish to the viewer's read of the frame's last packet; late%%: frames over %d ms; a step that falls behind is measured a second time and that one is shown\n", whepBenchLateMs)
		fmt.Fprintf(out, "stopped: %s; the feed was at worst %.1f ms behind its schedule; load average now %s\n", why, float64(feedLate.Load())/1e6, loadAvg())
		if best != nil {
			perViewer := (best.relayCPU - base.relayCPU) / float64(best.viewers)
			fit := 0
			if perViewer > 0 {
				fit = int((whepBenchBoxShare*float64(cores) - base.relayCPU) / perViewer)
			}
			fmt.Fprintf(out, "relay cost per viewer (from %d viewers): %.3f ms CPU per second (%.2f%% of a core); at %.0f%% of %d cores this box serves about %d viewers of this camera (relay only; the viewers elsewhere)\n",
				best.viewers, 1000*perViewer, 100*perViewer, 100*whepBenchBoxShare, cores, fit)
			if best.childCPU > 0 {
				fmt.Fprintf(out, "for comparison, the pion viewers cost %.3f ms CPU per viewer per second in their own process\n", 1000*best.childCPU/float64(best.viewers))
			}
			b.ReportMetric(1000*perViewer, "relay-ms/viewer/s")
			b.ReportMetric(float64(fit), "viewers@80%")
			b.ReportMetric(float64(best.viewers), "max-kept-up")
			b.ReportMetric(durPct(best.relay, 99), "relay-p99-ms")
		} else {
			fmt.Fprintln(out, "no step kept up: no capacity figure")
		}
		fmt.Print(out.String())
	}
}

func BenchmarkWHEPRelayLatency(b *testing.B) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		b.Skip("ffmpeg not installed")
	}
	clip, err := whepBenchInput()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	prep, err := samples.Prepare(ctx, clip.mp4, filepath.Dir(clip.mp4))
	if err != nil {
		b.Fatal(err)
	}
	window := whepBenchWindow(b)
	b.Logf("clip %s over RTSP (TCP) from an in-process simulator; window %s after %s warm-up; %d CPUs; load average %s",
		filepath.Base(clip.mp4), window, whepBenchWarmup, runtime.NumCPU(), loadAvg())
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for b.Loop() {
		sim := samples.NewSimulator(samples.SimulatorConfig{Listen: "127.0.0.1:0", Loop: true, Logger: quiet})
		if err := sim.Start(); err != nil {
			b.Fatal(err)
		}
		if err := sim.AddPath("gate", prep); err != nil {
			b.Fatal(err)
		}
		cam, err := ingest.NewCamera(ingest.CameraConfig{Name: "gate", URL: sim.URL("gate"), Transport: ingest.TransportTCP, Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		cctx, stop := context.WithCancel(ctx)
		if err := cam.Start(cctx); err != nil {
			b.Fatal(err)
		}
		rig := newWHEPRig(b, cam.Live())
		// Log each access unit's RTSP arrival, for the viewers' latency.
		sub, err := cam.Live().Subscribe(ingest.SubscribeOptions{Name: "bench-log", QueueLen: 256})
		if err != nil {
			b.Fatal(err)
		}
		logged := make(chan struct{})
		go func() {
			defer close(logged)
			for {
				au, err := sub.Next(cctx)
				if err != nil {
					return
				}
				rig.logPub(whepAUKey(au), au.Received)
			}
		}()
		deadline := time.Now().Add(15 * time.Second)
		for cam.Live().LastPublished().IsZero() {
			if time.Now().After(deadline) {
				b.Fatalf("no access unit over RTSP within 15 s: %+v", cam.State())
			}
			time.Sleep(50 * time.Millisecond)
		}

		out := &strings.Builder{}
		fmt.Fprintf(out, "WHEP relay latency, RTSP arrival (AccessUnit.Received) to just after the last WriteRTP, every access unit of every viewer (exact, not from the histogram's buckets)\n")
		fmt.Fprintf(out, "source: samples.Simulator -> RTSP/TCP on loopback -> ingest.Camera -> WHEP; viewers: pion in a child process\n")
		fmt.Fprintf(out, "%7s %8s %9s %9s %9s %9s %13s %8s %8s %6s\n", "viewers", "samples", "p50 ms", "p99 ms", "max ms", "relay%1c", "view p50/p99", "lost", "dropAU", "load1")
		for _, n := range []int{1, 10, 50} {
			rig.grow(n)
			st := rig.measure(window)
			fmt.Fprintf(out, "%7d %8d %9.2f %9.2f %9.2f %8.1f%% %13s %8d %8d %6s\n", n, len(st.relay),
				durPct(st.relay, 50), durPct(st.relay, 99), durPct(st.relay, 100), 100*st.relayCPU,
				fmt.Sprintf("%.0f/%.0f", st.v.LatencyMs[0], st.v.LatencyMs[1]), st.v.Lost, st.droppedAU, st.load1)
			b.ReportMetric(durPct(st.relay, 50), fmt.Sprintf("p50-ms@%d", n))
			b.ReportMetric(durPct(st.relay, 99), fmt.Sprintf("p99-ms@%d", n))
		}
		var text bytes.Buffer
		rig.set.WritePrometheus(&text)
		count := 0
		for line := range strings.Lines(text.String()) {
			if v, ok := strings.CutPrefix(line, "flowwatch_whep_relay_seconds_count "); ok {
				count, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
		fmt.Fprintf(out, "view p50/p99: ms from RTSP arrival to the viewer's read of the frame's last packet; flowwatch_whep_relay_seconds_count %d; load average now %s\n", count, loadAvg())
		if count == 0 {
			b.Error("flowwatch_whep_relay_seconds recorded nothing")
		}
		rig.close()
		stop()
		<-logged
		sub.Close()
		cam.Close()
		sim.Close()
		fmt.Print(out.String())
	}
}

func keptUpWord(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

// secondTry marks a figure from a second measurement.
func secondTry(retried bool) string {
	if retried {
		return " (2nd try)"
	}
	return ""
}

// load1 is the 1-minute load average.
func load1() string {
	if f := strings.Fields(loadAvg()); len(f) > 0 {
		return f[0]
	}
	return "?"
}

// loadAvg is the 1, 5 and 15 minute load averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

func TestWHEPRelayHistogram(t *testing.T) {
	var mu sync.Mutex
	var seen []time.Duration
	e := newWHEPEnv(t, func(c *WHEPConfig) {
		c.onRelay = func(d time.Duration) {
			mu.Lock()
			seen = append(seen, d)
			mu.Unlock()
		}
	})
	v := e.view(e.token)
	v.waitFrames(t, "viewer", 5, 10*time.Second)
	e.close()
	mu.Lock()
	n := len(seen)
	mu.Unlock()
	if n < 5 {
		t.Fatalf("observer got %d durations, want one per access unit sent (at least 5)", n)
	}
	var text bytes.Buffer
	e.set.WritePrometheus(&text)
	if !strings.Contains(text.String(), fmt.Sprintf("flowwatch_whep_relay_seconds_count %d\n", n)) {
		t.Fatalf("metrics lack flowwatch_whep_relay_seconds_count %d:\n%s", n, text.String())
	}
}

// ---- the child process ----

// benchChildEnv names the child's job; the child is this test binary
// running only TestBenchChildProcess.
const benchChildEnv = "FLOWWATCH_BENCH_CHILD"

// benchReplyPrefix starts the child's answers on its stdout.
const benchReplyPrefix = "benchreply "

// benchChild is a child process that takes one JSON command a line on its
// stdin and answers each with one line on its stdout.
type benchChild struct {
	b      testing.TB
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Scanner
	stderr *bytes.Buffer
	once   sync.Once
}

// startBenchChild starts the child for job with extra environment.
func startBenchChild(b testing.TB, job string, env ...string) *benchChild {
	b.Helper()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestBenchChildProcess$", "-test.timeout=30m", "-test.count=1")
	cmd.Env = append(append(os.Environ(), benchChildEnv+"="+job), env...)
	c := &benchChild{b: b, cmd: cmd, stderr: &bytes.Buffer{}}
	cmd.Stderr = &benchTail{buf: c.stderr}
	if c.in, err = cmd.StdinPipe(); err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	c.out = bufio.NewScanner(stdout)
	c.out.Buffer(make([]byte, 1<<20), 64<<20)
	b.Cleanup(c.close)
	return c
}

// benchTail keeps the last 64 KiB written to it.
type benchTail struct {
	mu  sync.Mutex
	buf *bytes.Buffer
}

func (t *benchTail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	if t.buf.Len() > 64<<10 {
		t.buf.Next(t.buf.Len() - 32<<10)
	}
	return len(p), nil
}

func (c *benchChild) stderrTail() string {
	c.cmd.Stderr.(*benchTail).mu.Lock()
	defer c.cmd.Stderr.(*benchTail).mu.Unlock()
	return c.stderr.String()
}

// call sends one command and decodes its answer into reply (when not nil).
func (c *benchChild) call(op string, arg, reply any) {
	c.b.Helper()
	line, err := json.Marshal(map[string]any{"op": op, "arg": arg})
	if err != nil {
		c.b.Fatal(err)
	}
	if _, err := c.in.Write(append(line, '\n')); err != nil {
		c.b.Fatalf("child %s: %v\n%s", op, err, c.stderrTail())
	}
	for c.out.Scan() {
		if ans, ok := strings.CutPrefix(c.out.Text(), benchReplyPrefix); ok {
			var e struct{ Fatal string }
			if json.Unmarshal([]byte(ans), &e) == nil && e.Fatal != "" {
				c.b.Fatalf("child %s: %s", op, e.Fatal)
			}
			if reply != nil {
				if err := json.Unmarshal([]byte(ans), reply); err != nil {
					c.b.Fatalf("child %s: answer %q: %v", op, ans, err)
				}
			}
			return
		}
	}
	c.b.Fatalf("child %s: no answer (%v); its stderr:\n%s", op, c.out.Err(), c.stderrTail())
}

// close tells the child to end and waits for it (10 s at most).
func (c *benchChild) close() {
	c.once.Do(func() {
		_, _ = c.in.Write([]byte(`{"op":"quit"}` + "\n"))
		c.in.Close()
		done := make(chan struct{})
		go func() { _ = c.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = c.cmd.Process.Kill()
			<-done
		}
	})
}

// benchChildCmd is one command to the child.
type benchChildCmd struct {
	Op  string          `json:"op"`
	Arg json.RawMessage `json:"arg"`
}

// TestBenchChildProcess is a benchmark's child process (see benchChild);
// it skips in every other run.
func TestBenchChildProcess(t *testing.T) {
	job := os.Getenv(benchChildEnv)
	var handle func(benchChildCmd) (any, error)
	switch job {
	case "":
		t.Skip("runs only as a benchmark's child process")
	case "whep":
		v := &whepViewers{url: os.Getenv("FLOWWATCH_BENCH_WHEP_URL")}
		defer v.closeAll()
		handle = v.handle
	case "ws":
		c := &wsBenchConsoles{url: os.Getenv("FLOWWATCH_BENCH_WS_URL")}
		defer c.closeAll()
		handle = c.handle
	default:
		t.Fatalf("%s=%q: unknown job", benchChildEnv, job)
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 64<<20)
	for in.Scan() {
		var cmd benchChildCmd
		if err := json.Unmarshal(in.Bytes(), &cmd); err != nil {
			t.Fatalf("command %q: %v", in.Text(), err)
		}
		if cmd.Op == "quit" {
			return
		}
		reply, err := handle(cmd)
		if err != nil {
			reply = map[string]string{"fatal": err.Error()}
		}
		if reply == nil {
			reply = struct{}{}
		}
		b, _ := json.Marshal(reply)
		fmt.Printf("%s%s\n", benchReplyPrefix, b)
	}
}

// childCPU is the child's own CPU time.
func childCPU() time.Duration { return cpuTime() }

// percentileMs is the p-th percentile of sorted nanoseconds, in ms.
func percentileMs(sorted []int64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := min(len(sorted)-1, int(math.Ceil(p/100*float64(len(sorted))))-1)
	return float64(sorted[max(i, 0)]) / 1e6
}

// whepViewers are the child's pion viewers.
type whepViewers struct {
	url  string
	list []*whepBenchViewer
	cpu0 time.Duration
	mark time.Time
}

// whepViewerReport is what the viewers got in a window.
type whepViewerReport struct {
	Viewers        int        `json:"viewers"`
	CPUSecs        float64    `json:"cpu_s"`
	Packets        int        `json:"packets"`
	Expected       int        `json:"expected"`
	Lost           int        `json:"lost"`
	Frames         int        `json:"frames"`
	Unmatched      int        `json:"unmatched"` // frames whose publish time is unknown
	Late           int        `json:"late"`
	LatencyMs      [3]float64 `json:"latency_ms"` // p50, p99, max
	StalledViewers int        `json:"stalled"`    // viewers that got no frame in the window
	NotConnected   int        `json:"not_connected"`
}

func (v *whepViewers) handle(cmd benchChildCmd) (any, error) {
	switch cmd.Op {
	case "add":
		var a struct{ N int }
		if err := json.Unmarshal(cmd.Arg, &a); err != nil {
			return nil, err
		}
		return v.add(a.N)
	case "mark":
		for _, w := range v.list {
			w.reset()
		}
		v.mark, v.cpu0 = time.Now(), childCPU()
		return nil, nil
	case "report":
		var a struct{ Pubs []benchPub }
		if err := json.Unmarshal(cmd.Arg, &a); err != nil {
			return nil, err
		}
		return v.report(a.Pubs), nil
	}
	return nil, fmt.Errorf("unknown op %q", cmd.Op)
}

// add opens n more viewers, 8 at a time, and waits until each got a
// frame.
func (v *whepViewers) add(n int) (any, error) {
	var mu sync.Mutex
	var errs []error
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			w, err := openWHEPBenchViewer(v.url)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			v.list = append(v.list, w)
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return nil, fmt.Errorf("%d of %d viewers failed; the first: %w", len(errs), n, errs[0])
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, w := range v.list {
		select {
		case <-w.firstFrame:
		case <-time.After(time.Until(deadline)):
			return nil, fmt.Errorf("a viewer got no frame within 20 s (connection %s)", w.pc.ConnectionState())
		}
	}
	return map[string]int{"viewers": len(v.list)}, nil
}

func (v *whepViewers) report(pubs []benchPub) whepViewerReport {
	cpu := childCPU() - v.cpu0
	byKey := map[uint64][]int64{}
	for _, p := range pubs {
		byKey[p.K] = append(byKey[p.K], p.T)
	}
	r := whepViewerReport{Viewers: len(v.list), CPUSecs: cpu.Seconds()}
	var lat []int64
	for _, w := range v.list {
		w.mu.Lock()
		r.Packets += w.packets
		if w.winStarted {
			exp := int(w.winMax - w.winMin + 1)
			r.Expected += exp
			r.Lost += max(0, exp-w.distinct)
		}
		r.Frames += len(w.frames)
		if len(w.frames) == 0 {
			r.StalledViewers++
		}
		for _, f := range w.frames {
			// the latest publish of that key before the frame arrived
			var best int64 = -1
			for _, t := range byKey[f.key] {
				if t <= f.at && t > best {
					best = t
				}
			}
			if best < 0 {
				r.Unmatched++
				continue
			}
			d := f.at - best
			lat = append(lat, d)
			if d > whepBenchLateMs*int64(time.Millisecond) {
				r.Late++
			}
		}
		w.mu.Unlock()
		if w.pc.ConnectionState() != webrtc.PeerConnectionStateConnected {
			r.NotConnected++
		}
	}
	slices.Sort(lat)
	r.LatencyMs = [3]float64{percentileMs(lat, 50), percentileMs(lat, 99), percentileMs(lat, 100)}
	return r
}

func (v *whepViewers) closeAll() {
	var wg sync.WaitGroup
	for _, w := range v.list {
		wg.Go(func() { _ = w.pc.Close() })
	}
	wg.Wait()
}

// whepBenchViewer is one pion viewer that reads every RTP packet and
// notes, per window, the distinct sequence numbers (for loss) and each
// frame's key and arrival.
type whepBenchViewer struct {
	pc         *webrtc.PeerConnection
	firstFrame chan struct{}
	gotFirst   bool

	mu         sync.Mutex
	hi         int64 // highest extended sequence number so far
	started    bool
	winStarted bool
	winMin     int64
	winMax     int64
	seen       [1 << 16 / 64]uint64
	distinct   int
	packets    int
	frames     []benchFrame
}

// benchFrame is one frame a viewer got: its key and when its last packet
// was read, in Unix nanoseconds.
type benchFrame struct {
	key uint64
	at  int64
}

// reset starts a window.
func (w *whepBenchViewer) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.winStarted, w.distinct, w.packets = false, 0, 0
	w.frames = w.frames[:0]
	clear(w.seen[:])
}

// note records one packet.
func (w *whepBenchViewer) note(seq uint16, marker bool, payload []byte, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	ext := int64(seq)
	if w.started {
		ext = w.hi + int64(int16(seq-uint16(w.hi)))
	}
	w.started = true
	w.hi = max(w.hi, ext)
	if !w.winStarted {
		w.winStarted, w.winMin, w.winMax = true, ext, ext
	}
	w.winMin, w.winMax = min(w.winMin, ext), max(w.winMax, ext)
	w.packets++
	if i := uint16(ext); w.seen[i/64]&(1<<(i%64)) == 0 {
		w.seen[i/64] |= 1 << (i % 64)
		w.distinct++
	}
	if marker {
		w.frames = append(w.frames, benchFrame{key: whepPacketKey(payload), at: at.UnixNano()})
		if !w.gotFirst {
			w.gotFirst = true
			close(w.firstFrame)
		}
	}
}

// openWHEPBenchViewer offers to url and starts reading once connected.
// Its pion stack is a browser's minimum: NACKs, receiver reports.
func openWHEPBenchViewer(url string) (*whepBenchViewer, error) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	reg := &interceptor.Registry{}
	if err := webrtc.ConfigureNack(me, reg); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureRTCPReports(reg); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se)).
		NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	w := &whepBenchViewer{pc: pc, firstFrame: make(chan struct{})}
	fail := func(err error) (*whepBenchViewer, error) {
		_ = pc.Close()
		return nil, err
	}
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		return fail(err)
	}
	pc.OnTrack(func(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		buf := make([]byte, 1600)
		for {
			n, _, err := track.Read(buf)
			if err != nil {
				return
			}
			var h rtp.Header
			hl, err := h.Unmarshal(buf[:n])
			if err != nil {
				continue
			}
			w.note(h.SequenceNumber, h.Marker, buf[hl:n], time.Now())
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return fail(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return fail(err)
	}
	select {
	case <-gathered:
	case <-time.After(10 * time.Second):
		return fail(errors.New("ICE gathering did not finish in 10 s"))
	}
	resp, err := http.Post(url, "application/sdp", strings.NewReader(pc.LocalDescription().SDP))
	if err != nil {
		return fail(err)
	}
	answer, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fail(err)
	}
	if resp.StatusCode != http.StatusCreated {
		return fail(fmt.Errorf("offer: %s: %s", resp.Status, answer))
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(answer)}); err != nil {
		return fail(err)
	}
	return w, nil
}
