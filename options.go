package vpay

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// Option configures a Client. Each option validates its argument; a bad one
// makes NewClient return an error.
type Option func(*config) error

type config struct {
	baseURL    string
	httpClient *http.Client
	logger     *slog.Logger
	userAgent  string
	maxRetries int
	plan       Plan
	planSet    bool // WithPlan was given: the merchant declared the plan
	lowShare   float64
	observers  []*Observer
	maxWait    time.Duration
	limiter    Limiter
	store      TokenStore
	clock      clock
	poll       time.Duration
}

// DefaultBaseURL is the V-Pay API's documented base URL, for sandbox and
// live keys alike.
const DefaultBaseURL = "https://vonsung.rw/api/"

// Defaults for the options.
const (
	DefaultMaxRetries = 2
	DefaultMaxWait    = 60 * time.Second
	DefaultTimeout    = 30 * time.Second
	// DefaultPollInterval is Wait's first interval between polls
	// (WithPollInterval): soon, because sandbox numbers succeed in seconds.
	DefaultPollInterval = 2 * time.Second
)

// WithBaseURL points the client at another server, e.g. the vpaytest
// emulator. It must be https unless its host is loopback.
func WithBaseURL(u string) Option {
	return func(c *config) error {
		if _, err := parseBaseURL(u); err != nil {
			return err
		}
		c.baseURL = u
		return nil
	}
}

// WithHTTPClient makes the client send its requests through a copy of hc
// (its Transport, Timeout and Jar). The copy never follows a redirect,
// whatever hc's CheckRedirect says: a redirect would carry the apiKey, the
// token and the payment to another server. hc itself is not changed. Give
// hc a Timeout (or every call a ctx deadline): a client without one can
// hang.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *config) error {
		if hc == nil {
			return errors.New("vpay: WithHTTPClient: nil *http.Client")
		}
		cp := *hc
		cp.CheckRedirect = noRedirect
		c.httpClient = &cp
		return nil
	}
}

// WithLogger sends the client's logs to l: each request at debug level
// (method, path, status, duration, request id), retry decisions at debug,
// rate-limit waits over a second at info. No secret is ever logged.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("vpay: WithLogger: nil *slog.Logger")
		}
		c.logger = l
		return nil
	}
}

// WithUserAgent appends ua to the SDK's own User-Agent, vpay-go/<version>.
func WithUserAgent(ua string) Option {
	return func(c *config) error {
		if strings.ContainsAny(ua, "\r\n") {
			return errors.New("vpay: WithUserAgent: user agent contains a line break")
		}
		c.userAgent = strings.TrimSpace(ua)
		return nil
	}
}

// WithMaxRetries sets how many times a call is retried after a transient
// failure or a 429 (default 2; 0 disables retries). A 401 is always retried
// once with a fresh token, whatever this says.
func WithMaxRetries(n int) Option {
	return func(c *config) error {
		if n < 0 || n > 10 {
			return fmt.Errorf("vpay: WithMaxRetries: %d is outside 0..10", n)
		}
		c.maxRetries = n
		return nil
	}
}

// WithPlan sets the API key's plan, which seeds the default Limiter: its
// PerMinute paces a client that has seen no rate-limit header yet (the
// headers then decide; a server that sends none is paced by the plan for
// good), and its PerDay, when set, is a daily cap the client enforces
// itself. Without WithPlan the client paces at Starter's 20 a minute until
// the first response; if that has no rate-limit header, it stops pacing and
// relies on 429s. It applies no daily cap.
func WithPlan(p Plan) Option {
	return func(c *config) error {
		if err := p.validate(); err != nil {
			return err
		}
		c.plan, c.planSet = p, true
		return nil
	}
}

// WithMaxWait sets the longest the client waits for a rate-limit window
// before it returns ErrRateLimited instead (default 60 s, one window).
func WithMaxWait(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("vpay: WithMaxWait: negative duration %s", d)
		}
		c.maxWait = d
		return nil
	}
}

// WithLimiter replaces the default rate limiter, e.g. with one shared by
// many processes (redisstore.NewLimiter).
func WithLimiter(l Limiter) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("vpay: WithLimiter: nil Limiter")
		}
		c.limiter = l
		return nil
	}
}

// WithTokenStore replaces the in-memory token store, e.g. with one shared by
// many processes (redisstore.NewTokenStore).
func WithTokenStore(s TokenStore) Option {
	return func(c *config) error {
		if s == nil {
			return errors.New("vpay: WithTokenStore: nil TokenStore")
		}
		c.store = s
		return nil
	}
}

// WithPollInterval sets Wait's first interval between polls (default DefaultPollInterval, 2 s);
// later intervals grow by half each time, up to 15 s. A test against the
// vpaytest emulator can poll faster than a real MoMo prompt needs.
func WithPollInterval(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("vpay: WithPollInterval: %s is not positive", d)
		}
		c.poll = d
		return nil
	}
}

// withClock is for the package's own tests: a fake clock makes waits
// instantaneous and observable.
func withClock(cl clock) Option {
	return func(c *config) error { c.clock = cl; return nil }
}

// DefaultLowPriorityShare is the share of each rate-limit window that
// low-priority calls may use by default.
const DefaultLowPriorityShare = 0.5

// WithLowPriorityShare sets the share of each rate-limit window that calls
// marked with WithLowPriority may use (default 0.5): more than 0, at most
// 1. The rest stays free for the calls a customer waits on.
func WithLowPriorityShare(f float64) Option {
	return func(c *config) error {
		if !(f > 0 && f <= 1) {
			return fmt.Errorf("vpay: WithLowPriorityShare: %v is not in (0, 1]", f)
		}
		c.lowShare = f
		return nil
	}
}

// WithObserver sets an Observer told of each operation, attempt, retry,
// rate-limit wait, refusal and token refresh. Given more than once, every
// observer is told, in order; a nil one is ignored.
func WithObserver(o *Observer) Option {
	return func(c *config) error {
		if o != nil {
			c.observers = append(c.observers, o)
		}
		return nil
	}
}
