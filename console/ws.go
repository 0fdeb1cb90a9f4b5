package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/gorilla/websocket"

	"flowwatch/alerting"
	"flowwatch/internal/event"
)

// AlertFeed is the live feed of alert changes the hub fans out;
// alerting.Service implements it.
type AlertFeed interface {
	Subscribe(queueLen int) *alerting.Subscription
}

// HubConfig configures a Hub. Every source may be nil: its messages are
// then never sent.
type HubConfig struct {
	// Alerts is the feed of alert changes ("alert" messages).
	Alerts AlertFeed
	// Areas reports where every zone and area stands ("status" messages).
	Areas AreaStatus
	// Cameras reports the camera streams' states ("cameras" messages).
	Cameras CameraStates
	// Logger receives one line per client joining or leaving and per
	// resync; nil means slog.Default().
	Logger *slog.Logger
	// Metrics receives flowwatch_ws_clients, flowwatch_ws_dropped_total
	// and flowwatch_ws_resyncs_total; nil makes a private set.
	Metrics *metrics.Set
	// AllowedOrigins are the browser origins, besides the request's own
	// host, that may open the websocket, written exactly as a browser
	// sends them ("https://wall.example"). A request without an Origin
	// header (a non-browser client) is always allowed.
	AllowedOrigins []string
	// CountsEvery is how often the status and camera snapshots are sent:
	// as often as a screen needs, not as often as counts change.
	// Default 1s.
	CountsEvery time.Duration
	// ClientQueue bounds the messages waiting for one client. Default 64;
	// a client whose queue is full is cut off (close 1008 "too slow").
	ClientQueue int
	// WriteTimeout bounds one write to a client. Default 5s.
	WriteTimeout time.Duration
}

// The websocket's fixed limits.
const (
	// wsPingEvery is how often a client is pinged; one that answers
	// nothing (no pong, no frame) for two periods is closed.
	wsPingEvery = 30 * time.Second
	// wsReadLimit is the largest frame a client may send; clients have
	// nothing to say beyond pings.
	wsReadLimit = 4 << 10
	// wsAlertQueue is the hub's own queue on the alert feed.
	wsAlertQueue = 256
	// wsCloseGrace bounds the wait to send a close frame.
	wsCloseGrace = time.Second
)

// The close reasons a client may be sent.
const (
	wsReasonTooSlow  = "too slow"
	wsReasonStopping = "server stopping"
)

// Hub serves /ws: it holds one subscription to the alert feed and one
// snapshot clock, and fans both out to every connected console, each
// filtered to what its principal may see. A slow client never blocks the
// hub: each has a bounded queue and is cut off when it is full.
type Hub struct {
	cfg      HubConfig
	log      *slog.Logger
	set      *metrics.Set
	origins  map[string]bool
	up       websocket.Upgrader
	pingWait time.Duration // ping period; a field so tests can shorten it

	mu      sync.Mutex
	clients map[*wsClient]struct{}
	started bool // Run was called
	closed  bool // Run has ended: no client may join
	wg      sync.WaitGroup

	dropped, resyncs *metrics.Counter
}

// wsClient is one connected console.
type wsClient struct {
	conn *websocket.Conn
	p    Principal
	send chan []byte // bounded by ClientQueue; the hub never waits on it

	once   sync.Once
	done   chan struct{} // closed when the client is to end
	code   int           // close code to send, 0 for none; set before done closes
	reason string
}

// stop ends the client: its writer sends the close frame (when code is
// not 0) and closes the connection, which ends its reader. It never
// blocks; a write in flight is cut short after wsCloseGrace.
func (c *wsClient) stop(code int, reason string) {
	c.once.Do(func() {
		c.code, c.reason = code, reason
		close(c.done)
		_ = c.conn.NetConn().SetWriteDeadline(time.Now().Add(wsCloseGrace))
	})
}

// wsMessage is every frame the hub sends.
type wsMessage struct {
	Type string `json:"type"`
	Data any    `json:"data,omitempty"`
}

// wsHello is the data of the first message: who the console is.
type wsHello struct {
	User  string   `json:"user"`
	Role  string   `json:"role"`
	Posts []string `json:"posts,omitempty"`
}

// NewHub checks the config, fills in its defaults and makes a Hub; Run
// starts it.
func NewHub(cfg HubConfig) (*Hub, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.NewSet()
	}
	if cfg.CountsEvery == 0 {
		cfg.CountsEvery = time.Second
	}
	if cfg.ClientQueue == 0 {
		cfg.ClientQueue = 64
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 5 * time.Second
	}
	switch {
	case cfg.CountsEvery < 0:
		return nil, fmt.Errorf("console: websocket CountsEvery %s is negative", cfg.CountsEvery)
	case cfg.ClientQueue < 0:
		return nil, fmt.Errorf("console: websocket ClientQueue %d is negative", cfg.ClientQueue)
	case cfg.WriteTimeout < 0:
		return nil, fmt.Errorf("console: websocket WriteTimeout %s is negative", cfg.WriteTimeout)
	}
	origins := map[string]bool{}
	for _, o := range cfg.AllowedOrigins {
		norm, err := wsOrigin(o)
		if err != nil {
			return nil, fmt.Errorf("console: websocket allowed origin %q: %w", o, err)
		}
		origins[norm] = true
	}
	h := &Hub{cfg: cfg, log: cfg.Logger, set: cfg.Metrics, origins: origins, pingWait: wsPingEvery,
		clients: map[*wsClient]struct{}{}}
	h.up = websocket.Upgrader{
		// the origin is checked in ServeHTTP, before the upgrade
		CheckOrigin: func(*http.Request) bool { return true },
		Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
			writeError(w, status, "%s", reason.Error())
		},
	}
	h.dropped = h.set.NewCounter("flowwatch_ws_dropped_total")
	h.resyncs = h.set.NewCounter("flowwatch_ws_resyncs_total")
	h.set.NewGauge("flowwatch_ws_clients", func() float64 { return float64(h.Clients()) })
	return h, nil
}

// wsOrigin parses an allowed origin into the form browsers send:
// lower-case scheme://host[:port], nothing else.
func wsOrigin(o string) (string, error) {
	u, err := url.Parse(o)
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", errors.New("want http:// or https://")
	}
	if u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", errors.New("want scheme://host[:port] only")
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

// MetricsSet returns the set holding the hub's metrics.
func (h *Hub) MetricsSet() *metrics.Set { return h.set }

// Clients returns how many consoles are connected.
func (h *Hub) Clients() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

// Run subscribes to the alert feed and sends alerts as they come and
// snapshots every CountsEvery, until ctx ends; then it closes every
// client (close 1001), waits for their goroutines and returns ctx.Err().
// A hub runs once.
func (h *Hub) Run(ctx context.Context) error {
	h.mu.Lock()
	if h.started {
		h.mu.Unlock()
		return errors.New("console: websocket hub already ran")
	}
	h.started = true
	h.mu.Unlock()
	defer h.shutdown()

	var sub *alerting.Subscription
	var alerts <-chan event.AlertChange
	if h.cfg.Alerts != nil {
		sub = h.cfg.Alerts.Subscribe(wsAlertQueue)
		alerts = sub.C
		defer func() { sub.Close() }() // the latest subscription
	}
	tick := time.NewTicker(h.cfg.CountsEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ch, ok := <-alerts:
			if !ok {
				// cut off by the service (or closed under us): changes
				// may be lost, so consoles reload alerts from the API
				dropped := sub.Dropped()
				sub.Close()
				sub = h.cfg.Alerts.Subscribe(wsAlertQueue)
				alerts = sub.C
				h.resyncs.Inc()
				h.log.Warn("websocket hub lost the alert feed; resubscribed and told consoles to resync",
					"dropped", dropped, "clients", h.Clients())
				h.broadcast(wsMessage{Type: "resync"}, func(Principal) bool { return true })
				continue
			}
			h.broadcast(wsMessage{Type: "alert", Data: ch}, func(p Principal) bool { return p.Covers(ch.Alert.Posts) })
		case <-tick.C:
			h.snapshot(time.Now())
		}
	}
}

// shutdown closes every client and waits for their goroutines.
func (h *Hub) shutdown() {
	h.mu.Lock()
	h.closed = true
	for c := range h.clients {
		c.stop(websocket.CloseGoingAway, wsReasonStopping)
	}
	clear(h.clients)
	h.mu.Unlock()
	h.wg.Wait()
}

// broadcast sends one message to every client that may see it.
func (h *Hub) broadcast(m wsMessage, may func(Principal) bool) {
	b, err := json.Marshal(m)
	if err != nil {
		h.log.Error("websocket message not encoded", "type", m.Type, "err", err)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		if may(c.p) {
			h.enqueueLocked(c, b)
		}
	}
}

// enqueueLocked queues b for c, or cuts c off when its queue is full.
// h.mu is held.
func (h *Hub) enqueueLocked(c *wsClient, b []byte) {
	select {
	case c.send <- b:
	default:
		delete(h.clients, c)
		h.dropped.Inc()
		c.stop(websocket.ClosePolicyViolation, wsReasonTooSlow)
	}
}

// snapshot sends the status and the camera states: everything to those
// who see everything, a guard only the areas of their posts, camera
// errors (which may hold addresses) to admins only.
func (h *Hub) snapshot(now time.Time) {
	h.mu.Lock()
	n := len(h.clients)
	h.mu.Unlock()
	if n == 0 {
		return
	}
	var status []alerting.TargetStatus
	if h.cfg.Areas != nil {
		if status = h.cfg.Areas.Status(now); status == nil {
			status = []alerting.TargetStatus{}
		}
	}
	var cams, camsPlain []event.CameraState
	if h.cfg.Cameras != nil {
		cams = []event.CameraState{}
		for _, st := range h.cfg.Cameras.CameraStates() {
			if st.Stream == "main" {
				cams = append(cams, st)
			}
		}
		camsPlain = make([]event.CameraState, len(cams))
		for i, st := range cams {
			st.LastError, st.LastErrorAt = "", time.Time{}
			camsPlain[i] = st
		}
	}
	enc := func(m wsMessage) []byte {
		b, err := json.Marshal(m)
		if err != nil {
			h.log.Error("websocket message not encoded", "type", m.Type, "err", err)
		}
		return b
	}
	var statusAll, camsAdmin, camsOthers []byte
	if h.cfg.Areas != nil {
		statusAll = enc(wsMessage{Type: "status", Data: status})
	}
	if h.cfg.Cameras != nil {
		camsAdmin = enc(wsMessage{Type: "cameras", Data: cams})
		camsOthers = enc(wsMessage{Type: "cameras", Data: camsPlain})
	}
	guardStatus := map[string][]byte{} // by the guard's posts
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		if h.cfg.Areas != nil {
			b := statusAll
			if c.p.Role == RoleGuard {
				key := strings.Join(c.p.Posts, "\x00")
				if b = guardStatus[key]; b == nil {
					b = enc(wsMessage{Type: "status", Data: guardView(status, c.p.Posts)})
					guardStatus[key] = b
				}
			}
			if b != nil {
				h.enqueueLocked(c, b)
			}
		}
		if h.cfg.Cameras != nil {
			if _, ok := h.clients[c]; !ok {
				continue // cut off just now
			}
			b := camsOthers
			if c.p.Role == RoleAdmin {
				b = camsAdmin
			}
			if b != nil {
				h.enqueueLocked(c, b)
			}
		}
	}
}

// guardView keeps the entries of a guard's own areas.
func guardView(status []alerting.TargetStatus, posts []string) []alerting.TargetStatus {
	out := []alerting.TargetStatus{}
	for _, st := range status {
		for _, p := range posts {
			if st.Target == event.AreaTarget(p) {
				out = append(out, st)
				break
			}
		}
	}
	return out
}

// ServeHTTP serves GET /ws: it checks the origin (403) and the principal
// (401), upgrades, sends "hello" and then the live messages until the
// client leaves, falls too far behind, or Run ends.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeError(w, http.StatusMethodNotAllowed, "use GET to open the websocket")
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" && !h.originAllowed(origin, r.Host) {
		writeError(w, http.StatusForbidden, "origin %q may not open the websocket", origin)
		return
	}
	p, ok := PrincipalFrom(r.Context())
	if !ok {
		writeError(w, http.StatusUnauthorized, "login required")
		return
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, "the console is stopping")
		return
	}
	h.wg.Add(1) // before Run's Wait can start: closed is still false
	h.mu.Unlock()
	defer h.wg.Done()

	conn, err := h.up.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered
	}
	c := &wsClient{conn: conn, p: p, send: make(chan []byte, max(h.cfg.ClientQueue, 1)), done: make(chan struct{})}
	hello, _ := json.Marshal(wsMessage{Type: "hello", Data: wsHello{User: p.User, Role: p.Role, Posts: p.Posts}})
	c.send <- hello // first, before the hub can queue anything

	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		_ = conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseGoingAway, wsReasonStopping), time.Now().Add(wsCloseGrace))
		_ = conn.Close()
		return
	}
	h.clients[c] = struct{}{}
	h.mu.Unlock()
	h.log.Info("websocket client connected", "user", p.User, "role", p.Role, "remote", r.RemoteAddr)

	h.wg.Go(func() { h.write(c) })
	readErr := h.read(c)

	// the reader ends on the client's close, an error, or the writer
	// closing the connection
	h.mu.Lock()
	delete(h.clients, c)
	h.mu.Unlock()
	c.stop(0, "")
	<-c.done
	reason := c.reason
	if reason == "" && readErr != nil {
		reason = readErr.Error()
	}
	if c.code == websocket.ClosePolicyViolation {
		h.log.Warn("websocket client cut off", "user", p.User, "reason", reason, "queue", cap(c.send))
	} else {
		h.log.Info("websocket client gone", "user", p.User, "reason", reason)
	}
}

// originAllowed reports whether a browser page from origin may connect to
// a request for host.
func (h *Hub) originAllowed(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false // "null" and other opaque origins
	}
	if strings.EqualFold(u.Host, host) {
		return true
	}
	return h.origins[strings.ToLower(u.Scheme+"://"+u.Host)]
}

// read discards what the client sends (pings, anything up to
// wsReadLimit) until an error; a frame or a pong keeps it alive.
func (h *Hub) read(c *wsClient) error {
	wait := 2 * h.pingWait
	c.conn.SetReadLimit(wsReadLimit)
	_ = c.conn.SetReadDeadline(time.Now().Add(wait))
	c.conn.SetPongHandler(func(string) error { return c.conn.SetReadDeadline(time.Now().Add(wait)) })
	for {
		_, r, err := c.conn.NextReader()
		if err != nil {
			return err
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			return err
		}
		_ = c.conn.SetReadDeadline(time.Now().Add(wait))
	}
}

// write sends the client's queue and the pings until the client stops,
// then sends the close frame, if any, and closes the connection.
func (h *Hub) write(c *wsClient) {
	defer c.conn.Close()
	ping := time.NewTicker(h.pingWait)
	defer ping.Stop()
	for {
		select {
		case <-c.done:
			h.sendClose(c)
			return
		default:
		}
		select {
		case <-c.done:
			h.sendClose(c)
			return
		case b := <-c.send:
			_ = c.conn.SetWriteDeadline(time.Now().Add(h.cfg.WriteTimeout))
			if err := c.conn.WriteMessage(websocket.TextMessage, b); err != nil {
				c.stop(0, "write: "+err.Error())
				return
			}
		case <-ping.C:
			if err := c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(h.cfg.WriteTimeout)); err != nil {
				c.stop(0, "ping: "+err.Error())
				return
			}
		}
	}
}

// sendClose sends the close frame of a client the hub ended. It is best
// effort: a client whose socket is full only sees the connection drop.
func (h *Hub) sendClose(c *wsClient) {
	if c.code == 0 {
		return
	}
	_ = c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(c.code, c.reason),
		time.Now().Add(min(wsCloseGrace, h.cfg.WriteTimeout)))
}
