package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"flowwatch/internal/config"
	"flowwatch/internal/event"
	"flowwatch/internal/store"
)

// CameraStates reports the current state of every camera stream.
type CameraStates interface {
	CameraStates() []event.CameraState
}

// Config configures a Server.
type Config struct {
	// Listen is the TCP address, such as 127.0.0.1:8080.
	Listen string
	// TLSCert and TLSKey, when set, serve HTTPS.
	TLSCert, TLSKey string
	// Cameras reports camera states for /healthz.
	Cameras CameraStates
	// Areas reports the areas' counts and comfort levels for the public
	// comfort endpoint; nil leaves that endpoint out (404).
	Areas AreaStatus
	// Auth authenticates users and guards every other route; nil serves
	// only the public endpoints above.
	Auth *Auth
	// Store, Desk and Site serve the alerts API (with Auth): the store
	// for reading alerts, deliveries and history, the desk for the
	// lifecycle, the site config for rule backtests.
	Store *store.Store
	Desk  AlertDesk
	Site  *config.Config
	// Hub serves /ws (with Auth); its Run is the caller's to start.
	Hub *Hub
	// WHEP serves live video at /whep/<camera> (with Auth); Close is the
	// caller's.
	WHEP *WHEP
	// Snapshots and LiveDensity give the cameras' latest pictures and
	// recent density for /api/v1/cameras/{name}/snapshot and /density
	// (with Auth and Site); nil ones answer 503.
	Snapshots   Snapshots
	LiveDensity LiveDensity
	// Zones puts zone layouts saved at /api/v1/cameras/{name}/zones to
	// work (with Auth, Store and Site); nil leaves the zones routes out.
	Zones ZoneEditor
	// CameraTestTimeout bounds an RTSP connection test; zero means
	// DefaultCameraTestTimeout.
	CameraTestTimeout time.Duration
	// RateLimitPerSecond and RateLimitBurst bound each client's requests
	// (a token bucket per IP address or IPv6 /64; every route, loopback
	// included); zero takes Site's console settings, or the config
	// defaults without Site. Site's console.trusted_proxies name the
	// reverse proxies whose X-Forwarded-For is believed.
	RateLimitPerSecond float64
	RateLimitBurst     int
	// Logger receives one line per server event; nil means slog.Default().
	Logger *slog.Logger
}

// Server is the console's HTTP server.
type Server struct {
	cfg     Config
	log     *slog.Logger
	ln      net.Listener
	srv     *http.Server
	started time.Time
}

// New makes a Server; Start opens its listener.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, log: cfg.Logger}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	registerWebApp(mux)
	if cfg.Areas != nil {
		mux.HandleFunc("GET /api/v1/public/comfort", s.comfort)
	}
	if cfg.Auth != nil {
		cfg.Auth.Register(mux)
		mux.Handle("GET /api/v1/audit", cfg.Auth.Require([]string{RoleAdmin}, http.HandlerFunc(cfg.Auth.auditLog)))
		if cfg.Store != nil && cfg.Desk != nil && cfg.Areas != nil && cfg.Site != nil {
			api := &alertsAPI{auth: cfg.Auth, db: cfg.Store, desk: cfg.Desk, areas: cfg.Areas, site: cfg.Site}
			api.register(mux, cfg.Auth)
		}
		if cfg.Store != nil && cfg.Site != nil {
			newHistoryAPI(cfg.Auth, cfg.Store, cfg.Site, storedBackgrounds{cfg.Store}).register(mux, cfg.Auth)
		}
		if cfg.Site != nil {
			cams := &camerasAPI{auth: cfg.Auth, site: cfg.Site, states: cfg.Cameras, snaps: cfg.Snapshots,
				density: cfg.LiveDensity, db: cfg.Store, log: s.log, testTimeout: cfg.CameraTestTimeout}
			cams.register(mux)
			registerSnapshotsAPI(mux, cfg, s.log)
			if cfg.Store != nil && cfg.Zones != nil {
				zones := &zonesAPI{auth: cfg.Auth, db: cfg.Store, site: cfg.Site, editor: cfg.Zones, log: s.log}
				zones.register(mux)
			}
		}
		registerExportAPI(mux, cfg, s.log)
		users := &usersAPI{auth: cfg.Auth, site: cfg.Site, log: s.log}
		users.register(mux)
		if cfg.Hub != nil {
			mux.Handle("GET /ws", cfg.Auth.Require(readers, cfg.Hub))
		}
		if cfg.WHEP != nil {
			cfg.WHEP.Register(mux, cfg.Auth)
		}
	}
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		metrics.WritePrometheus(w, true)
	})
	perSecond, burst := cfg.RateLimitPerSecond, cfg.RateLimitBurst
	if perSecond <= 0 {
		perSecond = config.DefaultRateLimitPerSec
		if cfg.Site != nil && cfg.Site.Console.RateLimitPerSecond > 0 {
			perSecond = cfg.Site.Console.RateLimitPerSecond
		}
	}
	if burst <= 0 {
		burst = config.DefaultRateLimitBurst
		if cfg.Site != nil && cfg.Site.Console.RateLimitBurst > 0 {
			burst = cfg.Site.Console.RateLimitBurst
		}
	}
	limiter := newRateLimiter(perSecond, burst, nil)
	var proxies trustedProxies
	if cfg.Site != nil {
		for _, p := range cfg.Site.Console.TrustedProxies {
			if pr, err := config.ParseProxy(p); err == nil { // config.Parse has refused bad ones
				proxies = append(proxies, pr)
			}
		}
	}
	s.srv = &http.Server{
		// every answer gets the security headers; then the client behind
		// a trusted proxy is named, then the rate limit, then the body
		// bound, then the routes
		Handler:           securityHeaders(proxies.wrap(limiter.wrap(limitBodies(jsonMisses(mux), MaxRequestBody)))),
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    64 << 10,
		TLSConfig:         serverTLSConfig(),
	}
	return s
}

// Start listens on the configured address and serves in the background.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("console: listen on %s: %w", s.cfg.Listen, err)
	}
	s.ln = ln
	s.started = time.Now()
	go func() {
		var err error
		if s.cfg.TLSCert != "" {
			err = s.srv.ServeTLS(ln, s.cfg.TLSCert, s.cfg.TLSKey)
		} else {
			err = s.srv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("console server stopped", "err", err)
		}
	}()
	s.log.Info("console listening", "addr", s.URL())
	return nil
}

// URL is the base URL the server answers on.
func (s *Server) URL() string {
	scheme := "http"
	if s.cfg.TLSCert != "" {
		scheme = "https"
	}
	return scheme + "://" + s.ln.Addr().String()
}

// Close stops the server, letting requests in flight finish for up to five
// seconds.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}

// health is the /healthz answer. It names no camera, so it is safe to
// expose to load balancers without login.
type health struct {
	Status      string  `json:"status"`
	UptimeS     float64 `json:"uptime_s"`
	Cameras     int     `json:"cameras"`
	CamerasLive int     `json:"cameras_live"`
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	h := health{Status: "ok", UptimeS: time.Since(s.started).Seconds()}
	if s.cfg.Cameras != nil {
		for _, st := range s.cfg.Cameras.CameraStates() {
			if st.Stream != "main" {
				continue
			}
			h.Cameras++
			if st.Status == event.CameraLive {
				h.CamerasLive++
			}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(h)
}

// jsonMisses answers requests that match no route, or match a route with
// another method, with a JSON error (404, or 405 with Allow) like every
// other error of the API.
func jsonMisses(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r) // the mux sets the path values
			return
		}
		probe := &statusProbe{header: http.Header{}}
		h.ServeHTTP(probe, r)
		switch probe.status {
		case http.StatusMethodNotAllowed:
			w.Header().Set("Allow", probe.header.Get("Allow"))
			writeError(w, probe.status, "%s is not allowed on %s", r.Method, r.URL.Path)
		case http.StatusNotFound, 0:
			writeError(w, http.StatusNotFound, "no such path: %s", r.URL.Path)
		default: // a redirect to the cleaned path, and the like
			for k, v := range probe.header {
				w.Header()[k] = v
			}
			w.WriteHeader(probe.status)
		}
	})
}

// statusProbe records what the mux's own miss handler would answer.
type statusProbe struct {
	header http.Header
	status int
}

func (p *statusProbe) Header() http.Header         { return p.header }
func (p *statusProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *statusProbe) WriteHeader(code int)        { p.status = code }
