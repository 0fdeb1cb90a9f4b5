package console

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// MaxRequestBody is the most any request may send as its body. Routes
// that read bodies bound them tighter still (JSON bodies to 64 KiB, SDP
// offers to 64 KiB, logins to less); this bound holds for every route,
// those without a bound of their own included.
const MaxRequestBody = 1 << 20

// Bounds on how many clients the rate limiter remembers: past
// rateLimitPruneAt it forgets the clients whose bucket is full again;
// past rateLimitMax (too many clients at once: an attack) new clients
// wait.
const (
	rateLimitPruneAt = 4096
	rateLimitMax     = 1 << 16
)

// rateLimited counts requests refused by the rate limiter.
var rateLimited = metrics.NewCounter("flowwatch_console_rate_limited_total")

// rateLimiter is a token bucket per client (clientKey: the IP address, or
// the IPv6 /64): a client may make burst requests at once and perSecond
// requests a second after that. Every request counts, loopback's
// included; a websocket or a WHEP session counts once, when it is opened,
// since it is one request.
type rateLimiter struct {
	perSecond float64
	burst     float64
	now       func() time.Time

	mu      sync.Mutex
	buckets map[string]tokenBucket
}

// tokenBucket is one client's bucket: tokens left at the time at.
type tokenBucket struct {
	tokens float64
	at     time.Time
}

// newRateLimiter makes a limiter of perSecond requests a second with bursts
// of burst; now nil means time.Now.
func newRateLimiter(perSecond float64, burst int, now func() time.Time) *rateLimiter {
	if now == nil {
		now = time.Now
	}
	return &rateLimiter{perSecond: perSecond, burst: float64(max(burst, 1)), now: now, buckets: map[string]tokenBucket{}}
}

// allow takes a token of client's bucket; when there is none, it returns
// false and how long until there is one.
func (l *rateLimiter) allow(client string) (time.Duration, bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[client]
	if !ok {
		if len(l.buckets) >= rateLimitPruneAt {
			l.prune(now)
			if len(l.buckets) >= rateLimitMax {
				return time.Second, false
			}
		}
		b = tokenBucket{tokens: l.burst, at: now}
	}
	if elapsed := now.Sub(b.at); elapsed > 0 {
		b.tokens = math.Min(l.burst, b.tokens+elapsed.Seconds()*l.perSecond)
	}
	b.at = now
	if b.tokens < 1 {
		l.buckets[client] = b
		return time.Duration((1 - b.tokens) / l.perSecond * float64(time.Second)), false
	}
	b.tokens--
	l.buckets[client] = b
	return 0, true
}

// prune forgets the clients whose bucket has filled up again: they are as
// good as new.
func (l *rateLimiter) prune(now time.Time) {
	full := time.Duration(l.burst / l.perSecond * float64(time.Second))
	for k, b := range l.buckets {
		if now.Sub(b.at) >= full {
			delete(l.buckets, k)
		}
	}
}

// wrap refuses the requests of a client over its rate with 429, a JSON
// error and Retry-After (whole seconds, at least 1).
func (l *rateLimiter) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wait, ok := l.allow(clientKey(r))
		if !ok {
			rateLimited.Inc()
			secs := max(1, int(math.Ceil(wait.Seconds())))
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			writeError(w, http.StatusTooManyRequests, "too many requests from %s: at most %g a second (bursts of %g); retry after %d s",
				clientKey(r), l.perSecond, l.burst, secs)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// limitBodies bounds every request's body to limit bytes: one that says it
// is longer is refused with 413 at once, one that turns out longer fails
// its handler's read (which answers 413 or 400).
func limitBodies(h http.Handler, limit int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > limit {
			w.Header().Set("Connection", "close")
			writeError(w, http.StatusRequestEntityTooLarge, "the request body is %d bytes, over the limit of %d", r.ContentLength, limit)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, limit)
		}
		h.ServeHTTP(w, r)
	})
}
