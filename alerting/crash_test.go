package alerting

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"flowwatch/internal/config"
	"flowwatch/internal/event"
	"flowwatch/internal/store"
)

// The crash test runs the alerting service in a child process (this test
// binary again, running TestCrashChild) against a real SQLite file and a
// webhook receiver on loopback that fails some requests, drives an alert
// storm, kills the child with SIGKILL mid-storm, restarts it on the same
// file, and checks that nothing committed was lost and nothing was
// delivered twice under one idempotency key with different content.

const (
	crashEnvDB   = "FLOWWATCH_CRASH_DB"
	crashEnvURL  = "FLOWWATCH_CRASH_URL"
	crashEnvMode = "FLOWWATCH_CRASH_MODE" // "storm" or "drain"
	crashSecret  = "crash-test-secret"
	crashZones   = 150
)

// crashConfig is one camera with crashZones zones of capacity 10 and rules
// that raise and clear at once, so every flip of a count is an alert
// change.
func crashConfig(url string) *config.Config {
	var b strings.Builder
	b.WriteString("security: {allow_loopback: true}\ncameras:\n  - name: storm\n    url: rtsp://127.0.0.1:8554/storm\n    zones:\n")
	for i := range crashZones {
		fmt.Fprintf(&b, "      - {name: z%d, polygon: [[0,0],[1,0],[1,1]], capacity: 10}\n", i)
	}
	b.WriteString("areas:\n  - {name: all, zones: [storm/z0], capacity: 1000}\n")
	b.WriteString("rules: {smoothing: 1ms, min_duration: 1ms, cooldown: 1ms, surge_per_minute: -1, forecast_horizon: -1s, escalate_after: -1s}\n")
	fmt.Fprintf(&b, "notify:\n  retry_for: 1h\n  webhooks:\n    - {name: ops, url: %q, secret: %q}\n", url, crashSecret)
	cfg, err := config.Parse("crash.yaml", []byte(b.String()))
	if err != nil {
		panic(err)
	}
	return cfg
}

// TestCrashChild is the child process; it does nothing in a normal run.
func TestCrashChild(t *testing.T) {
	dbPath := os.Getenv(crashEnvDB)
	if dbPath == "" {
		t.Skip("runs only as the crash test's child process")
	}
	cfg := crashConfig(os.Getenv(crashEnvURL))
	db, err := store.Open(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	hook, err := NewWebhook(WebhookConfig{Name: "ops", URL: os.Getenv(crashEnvURL), Secret: crashSecret, Timeout: 2 * time.Second,
		AllowLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	// quick retries keep the test short; the backoff itself is tested in dispatch_test.go
	svc, err := NewService(context.Background(), ServiceConfig{Config: cfg, Store: db, Notifiers: []Notifier{hook},
		Logger: log, RetryMin: 20 * time.Millisecond, RetryMax: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// every change the service has committed is printed: "committed ID KIND"
	sub := svc.Subscribe(1 << 16)
	out := bufio.NewWriter(os.Stdout)
	go func() {
		for ch := range sub.C {
			fmt.Fprintf(out, "committed %d %s\n", ch.Alert.ID, ch.Kind)
			if len(sub.C) == 0 {
				out.Flush()
			}
		}
	}()
	ctx := context.Background()
	go func() { _ = svc.Run(ctx) }()
	fmt.Println("ready")
	if os.Getenv(crashEnvMode) != "storm" {
		select {} // drain: the dispatcher sends what is pending until killed
	}
	// the storm: every zone flips between empty and twice its capacity
	for i := 0; ; i++ {
		v := 0.0
		if (i/2)%2 == 0 {
			v = 20
		}
		now := time.Now()
		for z := range crashZones {
			svc.Observe(event.CountSample{Time: now, Camera: "storm", Zone: "z" + strconv.Itoa(z), Count: v})
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// crashReceiver is the webhook receiver: it verifies signatures, fails
// every fifth request with a 503 (and every seventh after reading it, as
// if the answer were lost), and records what it accepted by key.
type crashReceiver struct {
	mu       sync.Mutex
	requests int
	failed   int
	byKey    map[string]string // idempotency key → payload digest
	dupes    int               // same key, same payload: a harmless resend
	conflict []string          // same key, different payload
	badSig   int
}

func (r *crashReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	if !VerifySignature(crashSecret, req.Header.Get("X-Flowwatch-Timestamp"), body, req.Header.Get("X-Flowwatch-Signature")) {
		r.badSig++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if r.requests%5 == 0 {
		r.failed++
		http.Error(w, "try later", http.StatusServiceUnavailable)
		return
	}
	key := req.Header.Get("Idempotency-Key")
	sum := sha256.Sum256(body)
	digest := hex.EncodeToString(sum[:])
	if old, ok := r.byKey[key]; ok {
		if old != digest {
			r.conflict = append(r.conflict, key)
		} else {
			r.dupes++
		}
	} else {
		r.byKey[key] = digest
	}
	if r.requests%7 == 0 {
		// accepted, but the answer is lost: the sender must resend
		r.failed++
		http.Error(w, "lost answer", http.StatusBadGateway)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func TestCrashDuringAlertStorm(t *testing.T) {
	if os.Getenv(crashEnvDB) != "" {
		t.Skip("child process")
	}
	storm := 5 * time.Second
	cycles := 1
	if !testing.Short() {
		storm, cycles = 20*time.Second, 3
	}
	rec := &crashReceiver{byKey: map[string]string{}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	dbPath := filepath.Join(t.TempDir(), "crash.db")

	committed := map[int64]bool{}
	var raised int
	var stormTime time.Duration
	for c := range cycles {
		child := startCrashChild(t, dbPath, srv.URL, "storm")
		start := time.Now()
		lines := make(chan string, 1<<16)
		go func() {
			sc := bufio.NewScanner(child.stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		deadline := time.After(storm)
	read:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					break read
				}
				var id int64
				var kind string
				if _, err := fmt.Sscanf(l, "committed %d %s", &id, &kind); err == nil {
					committed[id] = true
					if kind == string(event.AlertRaised) {
						raised++
					}
				}
			case <-deadline:
				break read
			}
		}
		_ = child.cmd.Process.Signal(syscall.SIGKILL)
		_ = child.cmd.Wait()
		stormTime += time.Since(start)
		t.Logf("cycle %d: killed with SIGKILL after %s; %d alerts raised so far", c+1, time.Since(start).Round(time.Millisecond), raised)
	}
	perMinute := float64(raised) / stormTime.Minutes()
	if perMinute < 1000 {
		t.Fatalf("storm raised %.0f alerts a minute, want 1000 or more for the test to mean anything", perMinute)
	}

	// restart on the same file: the dispatcher sends what is pending
	child := startCrashChild(t, dbPath, srv.URL, "drain")
	defer func() {
		_ = child.cmd.Process.Signal(syscall.SIGKILL)
		_ = child.cmd.Wait()
	}()
	go func() { _, _ = io.Copy(io.Discard, child.stdout) }()
	db, err := store.Open(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	var pending int64
	for wait := time.Now().Add(2 * time.Minute); ; {
		if pending, err = db.PendingDeliveries(ctx, "ops"); err != nil {
			t.Fatal(err)
		}
		if pending == 0 || time.Now().After(wait) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if pending != 0 {
		t.Fatalf("%d deliveries still pending two minutes after the restart", pending)
	}
	if dead, err := db.DeadDeliveries(ctx, 10); err != nil || len(dead) != 0 {
		t.Fatalf("dead letters %v, %v: every failure here was retryable", dead, err)
	}

	// every alert the child reported as committed is in the store
	for id := range committed {
		if _, err := db.Alert(ctx, id); err != nil {
			t.Fatalf("alert %d was reported committed but is not in the store: %v", id, err)
		}
	}
	// and the receiver has every stored change at least once
	total, err := db.CountAlerts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	changes := 0
	for id := int64(1); id <= total; id++ {
		chs, err := db.AlertChanges(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for seq := range chs {
			changes++
			key := fmt.Sprintf("flowwatch-alert-%d-%d", id, seq+1)
			if _, ok := rec.byKey[key]; !ok {
				t.Fatalf("change %s is stored but never reached the receiver", key)
			}
		}
	}
	if len(rec.conflict) > 0 {
		t.Fatalf("%d idempotency keys carried different payloads, first %s", len(rec.conflict), rec.conflict[0])
	}
	if rec.badSig > 0 {
		t.Fatalf("%d requests had a bad signature", rec.badSig)
	}
	if len(rec.byKey) != changes {
		t.Fatalf("receiver holds %d keys, the store %d changes", len(rec.byKey), changes)
	}
	t.Logf("%d kills; %d alerts (%.0f a minute), %d changes stored, all delivered; receiver: %d requests, %d failed on purpose, %d harmless resends, 0 conflicts",
		cycles, total, perMinute, changes, rec.requests, rec.failed, rec.dupes)
}

type crashChild struct {
	cmd    *exec.Cmd
	stdout io.Reader
}

func startCrashChild(t *testing.T, dbPath, url, mode string) crashChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1", "-test.timeout=30m")
	cmd.Env = append(os.Environ(), crashEnvDB+"="+dbPath, crashEnvURL+"="+url, crashEnvMode+"="+mode)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(out)
	line, err := r.ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("child did not start: %q %v", line, err)
	}
	return crashChild{cmd: cmd, stdout: r}
}
