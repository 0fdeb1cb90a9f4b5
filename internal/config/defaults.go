package config

import "time"

// The defaults, all in one place. ApplyDefaults fills them into a Config.
const (
	DefaultListen             = "127.0.0.1:8080"
	DefaultRateLimitPerSec    = 20.0
	DefaultRateLimitBurst     = 100
	DefaultDataDir            = "./data"
	DefaultCountsRetention    = 7 * 24 * time.Hour
	DefaultRollupRetention    = 365 * 24 * time.Hour
	DefaultAlertsRetention    = 365 * 24 * time.Hour
	DefaultHeatmapsRetention  = 90 * 24 * time.Hour
	DefaultSnapshotsRetention = 30 * 24 * time.Hour
	// MinAuditRetention is the shortest audit retention allowed, and the
	// default: six months.
	MinAuditRetention      = 180 * 24 * time.Hour
	DefaultIdleTimeout     = 15 * time.Minute
	DefaultMaxSession      = 12 * time.Hour
	DefaultPasswordHistory = 5
	DefaultModel           = "default"
	DefaultProvider        = "cpu"
	DefaultThreads         = 1
	DefaultBatchSize       = 4
	DefaultBatchWait       = 50 * time.Millisecond
	DefaultSimulatorListen = "127.0.0.1:8554"
	DefaultTransport       = "auto"
	DefaultDecode          = "all"
	DefaultAnalysisFPS     = 2.0
	DefaultStallTimeout    = 5 * time.Second
	DefaultBackoffMin      = 500 * time.Millisecond
	DefaultBackoffMax      = 30 * time.Second
	DefaultSpacePerVisitor = 1.0
	DefaultYellow          = 0.8
	DefaultOrange          = 0.9
	DefaultRed             = 1.0
	DefaultClearMargin     = 0.05
	DefaultSmoothing       = 10 * time.Second
	DefaultMinDuration     = 10 * time.Second
	DefaultCooldown        = 2 * time.Minute
	DefaultSurgePerMinute  = 0.2
	DefaultTrendWindow     = time.Minute
	DefaultForecastHorizon = 10 * time.Minute
	DefaultCameraOffline   = 30 * time.Second
	DefaultEscalateAfter   = 2 * time.Minute
	DefaultEscalateTo      = "admin"
	DefaultRetryFor        = 24 * time.Hour
	DefaultWebhookMinLevel = "info"
)

// DefaultComfortBounds are the upper bounds of the first four comfort
// grades as fractions of capacity.
func DefaultComfortBounds() []float64 { return []float64{0.3, 0.5, 0.7, 0.9} }

// ApplyDefaults fills every unset field of c with its default.
func ApplyDefaults(c *Config) {
	setString(&c.Console.Listen, DefaultListen)
	if c.Console.RateLimitPerSecond == 0 {
		c.Console.RateLimitPerSecond = DefaultRateLimitPerSec
	}
	setInt(&c.Console.RateLimitBurst, DefaultRateLimitBurst)
	setString(&c.Storage.DataDir, DefaultDataDir)
	setDuration(&c.Storage.CountsRetention, DefaultCountsRetention)
	setDuration(&c.Storage.RollupRetention, DefaultRollupRetention)
	setDuration(&c.Storage.AlertsRetention, DefaultAlertsRetention)
	setDuration(&c.Storage.HeatmapsRetention, DefaultHeatmapsRetention)
	setDuration(&c.Storage.SnapshotsRetention, DefaultSnapshotsRetention)
	setDuration(&c.Storage.AuditRetention, MinAuditRetention)
	setDuration(&c.Console.IdleTimeout, DefaultIdleTimeout)
	setDuration(&c.Console.MaxSession, DefaultMaxSession)
	setInt(&c.Console.PasswordHistory, DefaultPasswordHistory)
	setString(&c.Vision.Model, DefaultModel)
	setString(&c.Vision.Provider, DefaultProvider)
	setInt(&c.Vision.Threads, DefaultThreads)
	setInt(&c.Vision.BatchSize, DefaultBatchSize)
	setDuration(&c.Vision.BatchWait, DefaultBatchWait)
	setString(&c.Simulator.Listen, DefaultSimulatorListen)
	for i := range c.Cameras {
		cam := &c.Cameras[i]
		setString(&cam.Transport, DefaultTransport)
		setString(&cam.Decode, DefaultDecode)
		if cam.AnalysisFPS == 0 {
			cam.AnalysisFPS = DefaultAnalysisFPS
		}
		setDuration(&cam.StallTimeout, DefaultStallTimeout)
		setDuration(&cam.BackoffMin, DefaultBackoffMin)
		setDuration(&cam.BackoffMax, DefaultBackoffMax)
	}
	for i := range c.Areas {
		if c.Areas[i].SpacePerVisitorM2 == 0 {
			c.Areas[i].SpacePerVisitorM2 = DefaultSpacePerVisitor
		}
	}
	if c.Rules.ComfortBounds == nil {
		c.Rules.ComfortBounds = DefaultComfortBounds()
	}
	if c.Rules.Yellow == 0 {
		c.Rules.Yellow = DefaultYellow
	}
	if c.Rules.Orange == 0 {
		c.Rules.Orange = DefaultOrange
	}
	if c.Rules.Red == 0 {
		c.Rules.Red = DefaultRed
	}
	r := &c.Rules
	if r.ClearMargin == 0 {
		r.ClearMargin = DefaultClearMargin
	}
	setDuration(&r.Smoothing, DefaultSmoothing)
	setDuration(&r.MinDuration, DefaultMinDuration)
	setDuration(&r.Cooldown, DefaultCooldown)
	if r.SurgePerMinute == 0 {
		r.SurgePerMinute = DefaultSurgePerMinute
	}
	setDuration(&r.TrendWindow, DefaultTrendWindow)
	setDuration(&r.ForecastHorizon, DefaultForecastHorizon)
	setDuration(&r.CameraOffline, DefaultCameraOffline)
	setDuration(&r.EscalateAfter, DefaultEscalateAfter)
	setString(&r.EscalateTo, DefaultEscalateTo)
	setDuration(&c.Notify.RetryFor, DefaultRetryFor)
	for i := range c.Notify.Webhooks {
		setString(&c.Notify.Webhooks[i].MinLevel, DefaultWebhookMinLevel)
	}
}

func setString(p *string, v string) {
	if *p == "" {
		*p = v
	}
}

func setInt(p *int, v int) {
	if *p == 0 {
		*p = v
	}
}

func setDuration(p *time.Duration, v time.Duration) {
	if *p == 0 {
		*p = v
	}
}
