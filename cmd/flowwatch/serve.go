package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sort"
	"sync"

	"github.com/VictoriaMetrics/metrics"

	"flowwatch/alerting"
	"flowwatch/console"
	"flowwatch/ingest"
	"flowwatch/internal/config"
	"flowwatch/internal/event"
	"flowwatch/internal/netguard"
	"flowwatch/internal/secrets"
	"flowwatch/internal/store"
	"flowwatch/samples"
)

// adminPasswordEnv gives the first admin's password; without it one is
// generated and printed once.
const adminPasswordEnv = "FLOWWATCH_ADMIN_PASSWORD"

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
	sf := addSiteFlags(fs)
	listen := fs.String("listen", "", "console `address`, overriding console.listen")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("serve: unexpected arguments %q", rest)
	}
	cfg, err := sf.load()
	if err != nil {
		return err
	}
	if *listen != "" {
		cfg.Console.Listen = *listen
	}
	log := newLogger(stderr)
	app := &site{cfg: cfg, log: log, out: stdout}
	return app.run(ctx)
}

// site is one running flowwatch: the simulator when enabled, the cameras
// with their analysis pipelines, and the console.
type site struct {
	cfg *config.Config
	log *slog.Logger
	out io.Writer // where a generated admin password is printed, once

	mu      sync.Mutex
	cameras []*ingest.Camera
	alerts  *alerting.Service
	// views are what the console sees of each running camera: latest
	// picture, live heatmap, zone counter.
	views siteViews
}

func (s *site) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()

	if s.cfg.Simulator.Enabled {
		sim, err := s.startSimulator(ctx)
		if err != nil {
			return err
		}
		defer sim.Close()
		wg.Go(func() {
			if err := sim.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				s.log.Error("simulator stopped", "err", err)
			}
		})
	}

	if err := os.MkdirAll(s.cfg.Storage.DataDir, 0o750); err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	db, err := store.Open(dbPath(s.cfg))
	if err != nil {
		return err
	}
	defer db.Close()

	// camera passwords and webhook secrets given as secret:NAME open
	// here, from the encrypted store, for the cameras, webhooks and
	// camera tests of this run
	opened, err := resolveSecrets(ctx, s.cfg, db, os.Getenv, s.log)
	if err != nil {
		return err
	}
	s.cfg = opened
	if gaps := config.PrivacyGaps(s.cfg); len(gaps) > 0 {
		s.log.Warn("cameras do not say where their public notice is posted or what they film: set signage and location_type",
			"cameras", gaps)
	}

	// zones saved in the console replace the config's, for counting and
	// for the alerting engine's targets and capacities alike
	cfg, notes, err := withStoredZones(ctx, s.cfg, db, s.log)
	if err != nil {
		return err
	}
	s.cfg = cfg
	s.views.mu.Lock()
	s.views.notes = notes
	s.views.mu.Unlock()

	// one job deletes every class of data past its retention, stopped
	// before the database closes
	st := s.cfg.Storage
	retention, err := store.NewRetention(store.RetentionConfig{Store: db, Logger: s.log, Policy: store.RetentionPolicy{
		Counts: st.CountsRetention, Rollups: st.RollupRetention, Alerts: st.AlertsRetention,
		Heatmaps: st.HeatmapsRetention, Snapshots: st.SnapshotsRetention, Audit: st.AuditRetention,
	}})
	if err != nil {
		return err
	}
	retentionCtx, stopRetention := context.WithCancel(ctx)
	retentionDone := make(chan struct{})
	go func() { defer close(retentionDone); _ = retention.Run(retentionCtx) }()
	defer func() { stopRetention(); <-retentionDone }()

	alerts, err := startAlerting(ctx, s.cfg, db, s.log)
	if err != nil {
		return err
	}
	alertsDone := make(chan struct{})
	alertsCtx, stopAlerts := context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		defer close(alertsDone)
		if err := alerts.Run(alertsCtx); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Error("alerting stopped", "err", err)
		}
	}()
	// alerting stops after the cameras and counting, so that the last
	// counts and camera states are taken in
	defer func() {
		stopAlerts()
		<-alertsDone
		metrics.UnregisterSet(alerts.MetricsSet(), true)
	}()
	s.mu.Lock()
	s.alerts = alerts
	s.mu.Unlock()

	// Counting needs a model; when it cannot start, cameras are still
	// ingested (live video goes on) and the reason is logged as an error.
	var counter *counting
	if c, err := startCounting(s.cfg, db, alerts.Observe, s.log); err != nil {
		s.log.Error("people counting is off", "err", err)
	} else {
		counter = c
		defer counter.Close()
	}

	cc := s.cfg.Console
	ac := console.AuthConfig{Store: db, Logger: s.log, SecureCookies: cc.TLSCert != "" || cc.ProxyTLS,
		IdleTimeout: cc.IdleTimeout, MaxSession: cc.MaxSession, PasswordHistory: cc.PasswordHistory, TOTPRoles: cc.TOTPRoles}
	// TOTP secrets are sealed with the key that seals camera passwords;
	// without one, TOTP cannot be set up (and roles that need it say so)
	switch box, err := secrets.FromEnv(nil); {
	case err == nil:
		ac.Sealer = box
	case errors.Is(err, secrets.ErrNoKey):
		if len(cc.TOTPRoles) > 0 {
			return fmt.Errorf("console.totp_roles needs an encryption key for the TOTP secrets: %w", err)
		}
	default:
		return err
	}
	auth, err := console.NewAuth(ac)
	if err != nil {
		return err
	}
	if err := auth.EnsureUsers(ctx, s.cfg.Users); err != nil {
		return err
	}
	// the first admin's password: from the environment, or generated and
	// printed once
	if err := auth.EnsureAdmin(ctx, os.Getenv(adminPasswordEnv), s.out); err != nil {
		return err
	}
	hub, err := console.NewHub(console.HubConfig{Alerts: alerts, Areas: alerts.Engine(), Cameras: s, Logger: s.log})
	if err != nil {
		return err
	}
	metrics.RegisterSet(hub.MetricsSet())
	defer metrics.UnregisterSet(hub.MetricsSet(), true)
	hubCtx, stopHub := context.WithCancel(ctx)
	hubDone := make(chan struct{})
	go func() { defer close(hubDone); _ = hub.Run(hubCtx) }()
	defer func() { stopHub(); <-hubDone }()

	// live video: a console on a loopback address also offers loopback
	// candidates, so a browser on the same box connects
	host, _, _ := net.SplitHostPort(s.cfg.Console.Listen)
	ip := net.ParseIP(host)
	whepMetrics := metrics.NewSet()
	whep, err := console.NewWHEP(console.WHEPConfig{Streams: s, Logger: s.log, Metrics: whepMetrics,
		ICELoopback: host == "localhost" || (ip != nil && ip.IsLoopback())})
	if err != nil {
		return err
	}
	metrics.RegisterSet(whepMetrics)
	defer metrics.UnregisterSet(whepMetrics, true)
	defer whep.Close()

	srv := console.New(console.Config{
		Listen:  s.cfg.Console.Listen,
		TLSCert: s.cfg.Console.TLSCert,
		TLSKey:  s.cfg.Console.TLSKey,
		Cameras: s,
		Areas:   alerts.Engine(),
		Auth:    auth,
		Store:   db,
		Desk:    alerts,
		Site:    s.cfg,
		Hub:     hub,
		WHEP:    whep,
		Logger:  s.log,

		Snapshots:   s,
		LiveDensity: s,
		Zones:       s,
	})
	if err := srv.Start(); err != nil {
		return err
	}
	defer srv.Close()

	// Every camera connection passes the SSRF guard at dial time, against
	// the address the camera's name resolves to then.
	guard := netguard.Policy{AllowLoopback: s.cfg.Security.AllowLoopback}
	for _, cc := range s.cfg.Cameras {
		if cc.Disabled {
			s.log.Info("camera disabled", "camera", cc.Name)
			continue
		}
		ic := cameraConfig(cc, guard.Dialer().DialContext, s.log)
		ic.OnState = alerts.CameraState
		cam, err := ingest.NewCamera(ic)
		if err != nil {
			return err
		}
		if err := cam.Start(ctx); err != nil {
			return fmt.Errorf("camera %q: %w", cc.Name, err)
		}
		defer cam.Close()
		s.mu.Lock()
		s.cameras = append(s.cameras, cam)
		s.mu.Unlock()
		var cnt *cameraCounter
		if counter != nil {
			if cnt, err = counter.addCamera(cc, cam.MetricsSet()); err != nil {
				return err
			}
			defer cnt.close()
		}
		view, err := newCameraView(cc, cnt)
		if err != nil {
			return err
		}
		s.views.add(view)
		a, err := newAnalysis(cam, cc, cnt, s.log)
		if err != nil {
			return err
		}
		a.view = view
		wg.Go(func() { a.run(ctx) })
	}
	s.log.Info("flowwatch serving", "console", srv.URL(), "cameras", len(s.cameras))
	<-ctx.Done()
	s.log.Info("flowwatch stopping")
	return nil
}

func (s *site) startSimulator(ctx context.Context) (*samples.Simulator, error) {
	cacheDir, err := samples.DefaultCacheDir()
	if err != nil {
		return nil, err
	}
	paths, err := samples.ResolveVideos(ctx, s.cfg.Simulator.Videos, cacheDir)
	if err != nil {
		return nil, fmt.Errorf("simulator: %w", err)
	}
	sim := samples.NewSimulator(samples.SimulatorConfig{
		Listen: s.cfg.Simulator.Listen,
		Loop:   true,
		Logger: s.log,
	})
	for _, p := range paths {
		if err := sim.AddPath(p.Name, p.Prepared); err != nil {
			sim.Close()
			return nil, fmt.Errorf("simulator: %w", err)
		}
	}
	if err := sim.Start(); err != nil {
		sim.Close()
		return nil, fmt.Errorf("simulator: %w", err)
	}
	return sim, nil
}

// LiveStream returns the stream a camera's live view relays: its
// substream when configured, else its main stream.
func (s *site) LiveStream(camera string) (*ingest.Stream, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.cameras {
		if c.Name() == camera {
			return c.Live(), true
		}
	}
	return nil, false
}

// alerting returns the running alerting service; nil before it starts.
func (s *site) alerting() *alerting.Service {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.alerts
}

// CameraStates reports every camera stream's state, by camera name.
func (s *site) CameraStates() []event.CameraState {
	s.mu.Lock()
	cams := append([]*ingest.Camera(nil), s.cameras...)
	s.mu.Unlock()
	var out []event.CameraState
	for _, c := range cams {
		out = append(out, c.States()...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Camera < out[j].Camera })
	return out
}

// cameraConfig maps a configured camera onto ingest's settings; dial opens
// its connections.
func cameraConfig(cc config.Camera, dial ingest.DialFunc, log *slog.Logger) ingest.CameraConfig {
	return ingest.CameraConfig{
		Name:         cc.Name,
		URL:          cc.URL,
		LiveURL:      cc.LiveURL,
		Username:     cc.Username,
		Password:     cc.Password,
		Transport:    ingest.Transport(cc.Transport),
		StallTimeout: cc.StallTimeout,
		BackoffMin:   cc.BackoffMin,
		BackoffMax:   cc.BackoffMax,
		Logger:       log,
		Dial:         dial,
	}
}
