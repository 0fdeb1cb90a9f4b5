package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"flowwatch/alerting"
	"flowwatch/internal/event"

	"flowwatch/internal/config"
	"flowwatch/samples"
)

// BenchmarkGlassToAlert runs the whole serve site (simulator, RTSP ingest,
// decoding, the default model, alerting with its store) on the dense
// synthetic camera cut into a 4x4 grid of zones whose capacities sit near
// their counts, so alerts come and go all the time. It reports the time
// from a picture's arrival to the alert change it caused being stored and
// on the live feed the console's websocket carries: p50 and p95 over the
// run ($FLOWWATCH_BENCH_WINDOW, default 60s).
func BenchmarkGlassToAlert(b *testing.B) {
	lib := memORTLibrary(b)
	model, note := memPickModel(b)
	if note != "" {
		b.Log(note)
	}
	if _, err := os.Stat(samples.MediaDir()); err != nil {
		b.Skipf("no sample media: run make setup (%v)", err)
	}
	window := 60 * time.Second
	if v := os.Getenv("FLOWWATCH_BENCH_WINDOW"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatal(err)
		}
		window = max(d, 30*time.Second)
	}
	var y strings.Builder
	fmt.Fprintf(&y, "simulator: {enabled: true}\nsecurity: {allow_loopback: true}\n")
	fmt.Fprintf(&y, "vision: {model: %q, ort_library: %q, threads: 2}\n", model, lib)
	y.WriteString("cameras:\n  - name: synth-dense\n    url: rtsp://127.0.0.1:8554/synth-dense\n    analysis_fps: 2\n    zones:\n")
	for r := range 4 {
		for c := range 4 {
			x0, y0 := float64(c)/4, float64(r)/4
			// rows hold very different crowds: capacity follows the row
			fmt.Fprintf(&y, "      - {name: r%dc%d, capacity: %d, polygon: [[%g,%g],[%g,%g],[%g,%g],[%g,%g]]}\n",
				r, c, []int{20, 15, 8, 4}[r], x0, y0, x0+0.25, y0, x0+0.25, y0+0.25, x0, y0+0.25)
		}
	}
	y.WriteString("rules: {smoothing: 1s, min_duration: 1s, cooldown: 2s, surge_per_minute: -1, forecast_horizon: -1s}\n")
	cfg, err := config.Parse("glass-to-alert.yaml", []byte(y.String()))
	if err != nil {
		b.Fatal(err)
	}
	cfg.Storage.DataDir = b.TempDir()
	rtsp, web := benchFreePort(b), benchFreePort(b)
	cfg.Simulator.Listen = fmt.Sprintf("127.0.0.1:%d", rtsp)
	cfg.Cameras[0].URL = fmt.Sprintf("rtsp://127.0.0.1:%d/synth-dense", rtsp)
	cfg.Console.Listen = fmt.Sprintf("127.0.0.1:%d", web)
	const password = "Glass-to-Alert-bench-2026"
	b.Setenv(adminPasswordEnv, password)
	site := &site{cfg: cfg, log: slog.New(slog.NewTextHandler(io.Discard, nil)), out: io.Discard}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- site.run(ctx) }()
	defer func() { cancel(); <-done }()

	// an operator's console: the websocket, logged in as admin
	base := fmt.Sprintf("127.0.0.1:%d", web)
	var token string
	for deadline := time.Now().Add(30 * time.Second); token == ""; {
		if time.Now().After(deadline) {
			b.Fatal("console did not come up within 30 s")
		}
		time.Sleep(200 * time.Millisecond)
		resp, err := http.Post("http://"+base+"/api/v1/session", "application/json",
			strings.NewReader(`{"username":"admin","password":"`+password+`"}`))
		if err != nil {
			continue
		}
		var answer struct {
			Token string `json:"token"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&answer)
		resp.Body.Close()
		token = answer.Token
	}
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+base+"/ws", http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	var wsLatency []float64 // seconds from the deciding picture's arrival to the websocket message
	go func() {
		for {
			var msg struct {
				Type string          `json:"type"`
				Data json.RawMessage `json:"data"`
			}
			if err := conn.ReadJSON(&msg); err != nil {
				return
			}
			got := time.Now()
			if msg.Type != "alert" {
				continue
			}
			var ch event.AlertChange
			if json.Unmarshal(msg.Data, &ch) == nil && ch.By == alerting.System && ch.Alert.Rule == event.RuleCapacity {
				// a capacity change is decided by a count: its time is the
				// arrival of that count's picture
				wsMu.Lock()
				wsLatency = append(wsLatency, got.Sub(ch.At).Seconds())
				wsMu.Unlock()
			}
		}
	}()

	b.ResetTimer()
	for b.Loop() {
		time.Sleep(window)
	}
	b.StopTimer()
	wsMu.Lock()
	ws := slices.Clone(wsLatency)
	wsMu.Unlock()
	if len(ws) < 10 {
		b.Fatalf("only %d capacity alert changes reached the websocket in %s", len(ws), window)
	}
	slices.Sort(ws)
	wsP50, wsP95 := ws[len(ws)/2], ws[min(len(ws)-1, int(math.Ceil(0.95*float64(len(ws))))-1)]
	svc := site.alerting()
	if svc == nil {
		b.Fatal("alerting never started")
	}
	var buckets []latencyBucket
	total := uint64(0)
	svc.Latency().VisitNonZeroBuckets(func(vmrange string, count uint64) {
		lo, hi, _ := strings.Cut(vmrange, "...")
		l, _ := strconv.ParseFloat(lo, 64)
		h, _ := strconv.ParseFloat(hi, 64)
		buckets = append(buckets, latencyBucket{l, h, count})
		total += count
	})
	sort.Slice(buckets, func(i, j int) bool { return buckets[i].lo < buckets[j].lo })
	p50, p95 := latencyQuantile(buckets, total, 0.5), latencyQuantile(buckets, total, 0.95)
	b.ReportMetric(float64(len(ws)), "changes")
	b.ReportMetric(wsP50*1000, "ws-p50-ms")
	b.ReportMetric(wsP95*1000, "ws-p95-ms")
	b.ReportMetric(p50*1000, "stored-p50-ms")
	b.ReportMetric(p95*1000, "stored-p95-ms")
	b.Logf("glass to alert over %s: %d capacity changes on the websocket, p50 %.0f ms, p95 %.0f ms; "+
		"to stored and on the live feed (%d changes, histogram bucket upper bounds): p50 %.0f ms, p95 %.0f ms",
		window, len(ws), wsP50*1000, wsP95*1000, total, p50*1000, p95*1000)
}

var wsMu sync.Mutex

func benchFreePort(b *testing.B) int {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

type latencyBucket struct {
	lo, hi float64
	n      uint64
}

// latencyQuantile returns the upper bound of the bucket holding quantile q.
func latencyQuantile(bs []latencyBucket, total uint64, q float64) float64 {
	want := uint64(math.Ceil(q * float64(total)))
	var seen uint64
	for _, bk := range bs {
		seen += bk.n
		if seen >= want {
			return bk.hi
		}
	}
	return math.NaN()
}
