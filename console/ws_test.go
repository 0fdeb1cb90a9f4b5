package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"flowwatch/alerting"
	"flowwatch/internal/config"
	"flowwatch/internal/event"
	"flowwatch/internal/store"
)

// wsSite is the smallest site that raises real alerts: one camera, one
// zone with a capacity, one area; trends off so only capacity alerts come.
const wsSite = `
security: {allow_loopback: true}
cameras:
  - name: cam-a
    url: rtsp://127.0.0.1:8554/a
    zones:
      - name: gate
        polygon: [[0,0],[1,0],[1,1]]
        capacity: 50
areas:
  - name: plaza
    title: 广场 Plaza
    zones: [cam-a/gate]
    capacity: 100
rules:
  smoothing: 1s
  min_duration: 1s
  surge_per_minute: -1
  forecast_horizon: -1s
`

type wsCameras []event.CameraState

func (f wsCameras) CameraStates() []event.CameraState { return f }

// wsTestCameras has one main stream with an error naming an address, and
// a live substream that consoles are not sent.
var wsTestCameras = wsCameras{
	{Camera: "cam-a", Stream: "main", Status: event.CameraLive, LastError: "dial rtsp://10.0.0.7:554: refused",
		LastErrorAt: time.Unix(1700000000, 0)},
	{Camera: "cam-a", Stream: "live", Status: event.CameraLive},
}

// wsEnv is a real alerting service, a hub and a loopback HTTP server
// whose test middleware takes the principal from X-Test-* headers.
type wsEnv struct {
	t    *testing.T
	svc  *alerting.Service
	hub  *Hub
	srv  *httptest.Server
	url  string // ws://…/ws
	host string // 127.0.0.1:port

	ctx     context.Context
	cancel  context.CancelFunc
	runErr  chan error
	running bool
	stopSvc func()
	once    sync.Once
}

type wsOpts struct {
	hub       HubConfig // Alerts, Areas and Cameras are filled in when nil
	feed      func(*alerting.Service) AlertFeed
	pingEvery time.Duration
	sndBuf    int  // the server sockets' send buffer, when not 0
	noRun     bool // the test starts Run itself
}

func newWSEnv(t *testing.T, o wsOpts) *wsEnv {
	t.Helper()
	cfg, err := config.Parse("ws-test.yaml", []byte(wsSite))
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(filepath.Join(t.TempDir(), "flowwatch.db"))
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := alerting.NewService(context.Background(), alerting.ServiceConfig{Config: cfg, Store: db, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithCancel(context.Background())
	sdone := make(chan struct{})
	go func() { defer close(sdone); _ = svc.Run(sctx) }()

	hc := o.hub
	if hc.Alerts == nil {
		hc.Alerts = svc
		if o.feed != nil {
			hc.Alerts = o.feed(svc)
		}
	}
	if hc.Areas == nil {
		hc.Areas = svc.Engine()
	}
	if hc.Cameras == nil {
		hc.Cameras = wsTestCameras
	}
	if hc.Logger == nil {
		hc.Logger = quiet
	}
	hub, err := NewHub(hc)
	if err != nil {
		t.Fatal(err)
	}
	if o.pingEvery > 0 {
		hub.pingWait = o.pingEvery
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", hub)
	srv := httptest.NewUnstartedServer(wsTestPrincipal(mux))
	if o.sndBuf > 0 {
		lc := net.ListenConfig{Control: wsSockopt(syscall.SO_SNDBUF, o.sndBuf)} // inherited by accepted sockets
		ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv.Listener.Close()
		srv.Listener = ln
	}
	srv.Start()
	e := &wsEnv{t: t, svc: svc, hub: hub, srv: srv, url: "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws",
		host: srv.Listener.Addr().String(), runErr: make(chan error, 1)}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.stopSvc = func() { scancel(); <-sdone; db.Close() }
	if !o.noRun {
		e.run()
	}
	t.Cleanup(e.close)
	return e
}

// run starts the hub.
func (e *wsEnv) run() {
	e.running = true
	go func() { e.runErr <- e.hub.Run(e.ctx) }()
}

// stopHub cancels Run's context and returns what Run returned.
func (e *wsEnv) stopHub() error {
	e.t.Helper()
	e.cancel()
	if !e.running {
		return nil
	}
	e.running = false
	select {
	case err := <-e.runErr:
		return err
	case <-time.After(10 * time.Second):
		e.t.Fatal("Run did not return after its context ended")
		return nil
	}
}

// close stops the hub, the server and the service, in that order.
func (e *wsEnv) close() {
	e.once.Do(func() {
		_ = e.stopHub()
		e.srv.Close()
		e.stopSvc()
	})
}

func wsTestPrincipal(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u := r.Header.Get("X-Test-User"); u != "" {
			p := Principal{User: u, Role: r.Header.Get("X-Test-Role")}
			if posts := r.Header.Get("X-Test-Posts"); posts != "" {
				p.Posts = strings.Split(posts, ",")
			}
			r = r.WithContext(WithPrincipal(r.Context(), p))
		}
		next.ServeHTTP(w, r)
	})
}

// wsSockopt sets one int socket option before connect or listen.
func wsSockopt(opt, v int) func(string, string, syscall.RawConn) error {
	return func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, opt, v) })
		return errors.Join(err, serr)
	}
}

type wsWho struct {
	user, role, posts, origin string
	noPrincipal               bool
	dialer                    *websocket.Dialer
}

func (e *wsEnv) dial(w wsWho) (*websocket.Conn, *http.Response, error) {
	h := http.Header{}
	if !w.noPrincipal {
		h.Set("X-Test-User", w.user)
		h.Set("X-Test-Role", w.role)
		if w.posts != "" {
			h.Set("X-Test-Posts", w.posts)
		}
	}
	if w.origin != "" {
		h.Set("Origin", w.origin)
	}
	d := w.dialer
	if d == nil {
		d = &websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	}
	c, resp, err := d.Dial(e.url, h)
	if c != nil {
		e.t.Cleanup(func() { c.Close() })
	}
	return c, resp, err
}

// connect dials and checks that the first message is the hello.
func (e *wsEnv) connect(w wsWho) *websocket.Conn {
	e.t.Helper()
	c, _, err := e.dial(w)
	if err != nil {
		e.t.Fatalf("%s (%s): dial: %v", w.user, w.role, err)
	}
	m := wsRead(e.t, c)
	var hello struct{ User, Role string }
	if m.Type != "hello" || json.Unmarshal(m.Data, &hello) != nil || hello.User != w.user || hello.Role != w.role {
		e.t.Fatalf("%s: first message %s %s, want hello naming the user and role", w.user, m.Type, m.Data)
	}
	return c
}

// waitClients waits until the hub counts n clients.
func (e *wsEnv) waitClients(n int) {
	e.t.Helper()
	wsWaitFor(e.t, "the hub to count clients", func() bool { return e.hub.Clients() == n })
}

type wsMsg struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

// wsRead reads one message, failing the test after 5 s.
func wsRead(t *testing.T, c *websocket.Conn) wsMsg {
	t.Helper()
	m, err := wsTryRead(c, 5*time.Second)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return m
}

func wsTryRead(c *websocket.Conn, d time.Duration) (wsMsg, error) {
	var m wsMsg
	_ = c.SetReadDeadline(time.Now().Add(d))
	kind, b, err := c.ReadMessage()
	if err != nil {
		return m, err
	}
	if kind != websocket.TextMessage {
		return m, errors.New("not a text frame")
	}
	return m, json.Unmarshal(b, &m)
}

// wsNext reads until a message of the type, failing after 5 s.
func wsNext(t *testing.T, c *websocket.Conn, typ string) wsMsg {
	t.Helper()
	end := time.Now().Add(5 * time.Second)
	for time.Now().Before(end) {
		if m := wsRead(t, c); m.Type == typ {
			return m
		}
	}
	t.Fatalf("no %q message within 5 s", typ)
	return wsMsg{}
}

func wsWaitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// wsCrowd feeds 15 s of the gate at 200 people (4x its capacity, 2x the
// plaza's): the zone and the area alerts are raised at once.
func wsCrowd(svc *alerting.Service) {
	start := time.Now()
	for s := range 15 {
		svc.Observe(event.CountSample{Time: start.Add(time.Duration(s) * time.Second), Camera: "cam-a", Zone: "gate", Count: 200})
	}
}

func wsTargets(t *testing.T, m wsMsg) []event.Target {
	t.Helper()
	var st []alerting.TargetStatus
	if err := json.Unmarshal(m.Data, &st); err != nil || st == nil {
		t.Fatalf("status data %s: %v (want a list)", m.Data, err)
	}
	var out []event.Target
	for _, s := range st {
		out = append(out, s.Target)
	}
	return out
}

func TestWSAlertsAndSnapshotsFollowThePrincipal(t *testing.T) {
	e := newWSEnv(t, wsOpts{hub: HubConfig{CountsEvery: 50 * time.Millisecond}, pingEvery: 100 * time.Millisecond})
	op := e.connect(wsWho{user: "op1", role: RoleOperator})
	var pinged atomic.Bool
	op.SetPingHandler(func(data string) error {
		pinged.Store(true)
		return op.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	admin := e.connect(wsWho{user: "root", role: RoleAdmin})
	mine := e.connect(wsWho{user: "g-plaza", role: RoleGuard, posts: "lawn,plaza"})
	other := e.connect(wsWho{user: "g-lawn", role: RoleGuard, posts: "lawn"})
	e.waitClients(4)

	// snapshots: everything for the operator, the guard's own area only,
	// nothing for a guard of an area that is not watched
	if got := wsTargets(t, wsNext(t, op, "status")); !slices.Contains(got, event.AreaTarget("plaza")) ||
		!slices.Contains(got, event.ZoneTarget("cam-a", "gate")) {
		t.Fatalf("operator's status %v, want the zone and the area", got)
	}
	if got := wsTargets(t, wsNext(t, mine, "status")); !slices.Equal(got, []event.Target{event.AreaTarget("plaza")}) {
		t.Fatalf("plaza guard's status %v, want only area:plaza", got)
	}
	if got := wsTargets(t, wsNext(t, other, "status")); len(got) != 0 {
		t.Fatalf("lawn guard's status %v, want none", got)
	}
	// cameras: main streams only; the error (it names an address) for
	// admins only
	var cams []event.CameraState
	m := wsNext(t, op, "cameras")
	if err := json.Unmarshal(m.Data, &cams); err != nil || len(cams) != 1 || cams[0].Stream != "main" {
		t.Fatalf("operator's cameras %s: want the one main stream", m.Data)
	}
	if bytes.Contains(m.Data, []byte("10.0.0.7")) || bytes.Contains(m.Data, []byte("last_error")) {
		t.Fatalf("operator's cameras carry the error: %s", m.Data)
	}
	if m := wsNext(t, admin, "cameras"); !bytes.Contains(m.Data, []byte("10.0.0.7")) {
		t.Fatalf("admin's cameras lack the error: %s", m.Data)
	}

	wsCrowd(e.svc)
	alertOf := func(who string, c *websocket.Conn) event.AlertChange {
		t.Helper()
		var ch event.AlertChange
		m := wsNext(t, c, "alert")
		if err := json.Unmarshal(m.Data, &ch); err != nil || ch.Kind != event.AlertRaised || ch.Alert.ID == 0 ||
			!slices.Contains(ch.Alert.Posts, "plaza") {
			t.Fatalf("%s got alert %s (%v), want a stored raise for the plaza", who, m.Data, err)
		}
		return ch
	}
	alertOf("operator", op)
	alertOf("admin", admin)
	alertOf("plaza guard", mine)
	// the alerts went out before the next snapshots: four of them without
	// an alert mean the lawn guard was never sent one
	for n := 0; n < 4; {
		switch m := wsRead(t, other); m.Type {
		case "status":
			n++
		case "alert":
			t.Fatalf("guard of another post got %s", m.Data)
		}
	}
	// pings arrive (a client handles them while it reads)
	for end := time.Now().Add(5 * time.Second); !pinged.Load(); wsRead(t, op) {
		if time.Now().After(end) {
			t.Fatal("no ping within 5 s")
		}
	}
}

func TestWSStatusComesOncePerInterval(t *testing.T) {
	const every = 100 * time.Millisecond
	e := newWSEnv(t, wsOpts{hub: HubConfig{CountsEvery: every}})
	c := e.connect(wsWho{user: "op1", role: RoleOperator})
	wsNext(t, c, "status")
	start := time.Now()
	for range 5 {
		wsNext(t, c, "status")
	}
	// five intervals: never faster than the throttle (a late tick may be
	// followed by a prompt one), and not wildly slower on a busy machine
	if d := time.Since(start); d < 4*every || d > 3*time.Second {
		t.Fatalf("5 status intervals took %s, want about %s", d, 5*every)
	}
}

func TestWSOriginsAndLogin(t *testing.T) {
	e := newWSEnv(t, wsOpts{hub: HubConfig{AllowedOrigins: []string{"https://Wall.example"}}})
	for _, c := range []struct {
		name   string
		who    wsWho
		status int
	}{
		{"no origin (a non-browser client)", wsWho{}, http.StatusSwitchingProtocols},
		{"its own host", wsWho{origin: "http://" + e.host}, http.StatusSwitchingProtocols},
		{"an allowed origin", wsWho{origin: "https://wall.example"}, http.StatusSwitchingProtocols},
		{"another origin", wsWho{origin: "https://evil.example"}, http.StatusForbidden},
		{"an allowed host on another scheme", wsWho{origin: "http://wall.example"}, http.StatusForbidden},
		{"an opaque origin", wsWho{origin: "null"}, http.StatusForbidden},
		{"no login", wsWho{noPrincipal: true}, http.StatusUnauthorized},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.who.user, c.who.role = "op1", RoleOperator
			conn, resp, err := e.dial(c.who)
			if resp == nil {
				t.Fatalf("no answer: %v", err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.status)
			}
			if conn != nil {
				if m := wsRead(t, conn); m.Type != "hello" {
					t.Fatalf("first message %q", m.Type)
				}
				return
			}
			var body struct{ Error string }
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Error == "" ||
				resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("refusal body: %q %v, want JSON {\"error\":…}", body.Error, err)
			}
		})
	}
	// a plain GET that is no websocket handshake
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/ws", nil)
	req.Header.Set("X-Test-User", "op1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("plain GET: status %d, want 400", resp.StatusCode)
	}
	http.DefaultClient.CloseIdleConnections()

	for _, bad := range []string{"wall.example", "https://wall.example/console", "ftp://wall.example", "https://"} {
		if _, err := NewHub(HubConfig{AllowedOrigins: []string{bad}}); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("allowed origin %q: error %v, want one naming it", bad, err)
		}
	}
}

func TestWSSlowClientIsCutOffOthersKeepReceiving(t *testing.T) {
	set := metrics.NewSet()
	// small socket buffers so that a client that never reads backs up
	// into its queue within a second
	e := newWSEnv(t, wsOpts{hub: HubConfig{CountsEvery: 10 * time.Millisecond, ClientQueue: 4, Metrics: set},
		sndBuf: 4096})
	slowDialer := &websocket.Dialer{HandshakeTimeout: 5 * time.Second,
		NetDialContext: (&net.Dialer{Control: wsSockopt(syscall.SO_RCVBUF, 4096)}).DialContext}
	slow, _, err := e.dial(wsWho{user: "slow", role: RoleViewer, dialer: slowDialer})
	if err != nil {
		t.Fatal(err)
	}
	fast := e.connect(wsWho{user: "fast", role: RoleOperator})
	e.waitClients(2)

	// read the fast client all along, until the slow one is cut off
	dropped := set.GetOrCreateCounter("flowwatch_ws_dropped_total")
	for end := time.Now().Add(20 * time.Second); dropped.Get() == 0; {
		if time.Now().After(end) {
			t.Fatal("a client that never reads was not cut off")
		}
		wsRead(t, fast)
	}
	for range 3 {
		wsNext(t, fast, "status")
	}
	if n := e.hub.Clients(); n != 1 {
		t.Fatalf("%d clients after the cut, want 1", n)
	}
	var text bytes.Buffer
	set.WritePrometheus(&text)
	for _, want := range []string{"flowwatch_ws_dropped_total 1\n", "flowwatch_ws_clients 1\n"} {
		if !strings.Contains(text.String(), want) {
			t.Fatalf("metrics lack %q:\n%s", want, text.String())
		}
	}
	// the slow client finds its connection closed once it drains what was
	// in flight: with close 1008 when that frame found room, else abruptly
	for {
		_, err := wsTryRead(slow, 5*time.Second)
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || (ce.Code != websocket.ClosePolicyViolation && ce.Code != websocket.CloseAbnormalClosure) {
			t.Fatalf("slow client read %v, want the connection closed", err)
		}
		break
	}
}

// wsDroppedFeed hands the hub a subscription the service has already cut
// off, then real ones.
type wsDroppedFeed struct {
	svc   *alerting.Service
	first *alerting.Subscription
	calls atomic.Int32
}

func (f *wsDroppedFeed) Subscribe(n int) *alerting.Subscription {
	if f.calls.Add(1) == 1 {
		return f.first
	}
	return f.svc.Subscribe(n)
}

func TestWSResyncWhenTheFeedDropsTheHub(t *testing.T) {
	feed := &wsDroppedFeed{}
	e := newWSEnv(t, wsOpts{hub: HubConfig{CountsEvery: 50 * time.Millisecond}, noRun: true,
		feed: func(s *alerting.Service) AlertFeed { feed.svc = s; return feed }})
	// a queue of one: the zone's and the area's raises overflow it
	feed.first = e.svc.Subscribe(1)
	wsCrowd(e.svc)
	wsWaitFor(t, "the service to drop the subscription", feed.first.Dropped)

	c := e.connect(wsWho{user: "op1", role: RoleOperator})
	e.waitClients(1)
	e.run()
	var ch event.AlertChange
	if err := json.Unmarshal(wsNext(t, c, "alert").Data, &ch); err != nil || ch.Alert.ID == 0 {
		t.Fatalf("the change queued before the drop: %+v %v", ch, err)
	}
	wsNext(t, c, "resync")
	if n := feed.calls.Load(); n != 2 {
		t.Fatalf("%d subscriptions, want 2 (resubscribed once)", n)
	}
	// the new subscription is live: an acknowledgement reaches the console
	if _, err := e.svc.Acknowledge(context.Background(), ch.Alert.ID, "op1", "on it"); err != nil {
		t.Fatal(err)
	}
	for {
		var got event.AlertChange
		if err := json.Unmarshal(wsNext(t, c, "alert").Data, &got); err != nil {
			t.Fatal(err)
		}
		if got.Kind == event.AlertAcked && got.Alert.ID == ch.Alert.ID && got.By == "op1" {
			break
		}
	}
}

func TestWSRunEndClosesEveryClientWithoutLeaks(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	e := newWSEnv(t, wsOpts{hub: HubConfig{CountsEvery: 20 * time.Millisecond}})
	a := e.connect(wsWho{user: "op1", role: RoleOperator})
	b := e.connect(wsWho{user: "g1", role: RoleGuard, posts: "plaza"})
	gone := e.connect(wsWho{user: "op2", role: RoleOperator})
	e.waitClients(3)
	wsNext(t, a, "status")

	// a client that leaves is forgotten
	_ = gone.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	e.waitClients(2)

	if err := e.stopHub(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v, want context.Canceled", err)
	}
	if n := e.hub.Clients(); n != 0 {
		t.Fatalf("%d clients after Run, want 0", n)
	}
	for _, c := range []*websocket.Conn{a, b} {
		for {
			_, err := wsTryRead(c, 5*time.Second)
			if err == nil {
				continue
			}
			if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
				t.Fatalf("read after Run ended: %v, want close 1001", err)
			}
			break
		}
	}
	// a late console is turned away
	_, resp, err := e.dial(wsWho{user: "op3", role: RoleOperator})
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("dial after Run: %v, want 503", err)
	}
	resp.Body.Close()
	for _, c := range []*websocket.Conn{a, b, gone} {
		c.Close()
	}
	e.close()
	goleak.VerifyNone(t, ignore)
}
