package vpay

import (
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// Version is the SDK's version, sent in the User-Agent.
const Version = "0.2.0"

// Mode is the environment an API key belongs to.
type Mode string

// The two V-Pay environments.
const (
	ModeSandbox Mode = "sandbox"
	ModeLive    Mode = "live"
)

// Client calls the V-Pay API. Create one with NewClient and share it: a
// *Client is safe for concurrent use by any number of goroutines, and it
// keeps one access token and one rate-limit budget for all of them.
type Client struct {
	apiUser string
	apiKey  secret
	baseURL *url.URL
	http    *http.Client
	logger  *slog.Logger
	retries int
	rate    *rateGate
	obs     *Observer // nil: nobody is told, at no cost
	store   TokenStore
	clock   clock
	poll    time.Duration

	// The API's endpoints, their URLs built once.
	auth, pay, status, links endpoint
	// Header values every request sends, built once.
	uaValue, userValue []string
	keyValue           secretHeader
	// bearer is the Authorization value of the last token used, built once
	// per token rather than once per request.
	bearer atomic.Pointer[secretHeader]

	refresh singleflight.Group

	mu   sync.Mutex
	mode Mode
}

// NewClient returns a client for the API user and key from the V-Pay
// dashboard. It refuses empty credentials, a bad option, and a sandbox user
// with a live key (or the reverse). The mode comes from the prefixes
// (sk_sandbox_/sk_live_ keys, vpay_sandbox_/vpay_live_ users); credentials
// without a known prefix take it from the first token.
//
// NewClient makes no network call: the first token is fetched by the first
// call that needs it.
func NewClient(apiUser, apiKey string, opts ...Option) (*Client, error) {
	apiUser, apiKey = strings.TrimSpace(apiUser), strings.TrimSpace(apiKey)
	if apiUser == "" {
		return nil, invalid("apiUser", ErrInvalidKey, "empty")
	}
	if apiKey == "" {
		return nil, invalid("apiKey", ErrInvalidKey, "empty")
	}
	if strings.ContainsAny(apiUser+apiKey, "\r\n\x00") {
		return nil, invalid("apiKey", ErrInvalidKey, "contains a control character")
	}
	userMode := modeFromPrefix(apiUser, "vpay_")
	keyMode := modeFromPrefix(apiKey, "sk_")
	if userMode != "" && keyMode != "" && userMode != keyMode {
		return nil, invalid("apiKey", ErrInvalidKey, "a %s key cannot be used with a %s user", keyMode, userMode)
	}
	cfg := config{
		baseURL:    DefaultBaseURL,
		maxRetries: DefaultMaxRetries,
		// Starter's pace for a client that has seen no header yet, but no
		// daily cap unless the merchant names the plan: a Growth merchant
		// who forgot WithPlan must not be cut off at Starter's 1,000.
		plan:     Plan{PerMinute: PlanStarter.PerMinute},
		maxWait:  DefaultMaxWait,
		lowShare: DefaultLowPriorityShare,
		clock:    realClock{},
		poll:     DefaultPollInterval,
	}
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("vpay: nil Option")
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	base, err := parseBaseURL(cfg.baseURL)
	if err != nil {
		return nil, err
	}
	c := &Client{
		apiUser:   apiUser,
		apiKey:    secret(apiKey),
		baseURL:   base,
		http:      cfg.httpClient,
		logger:    cfg.logger,
		retries:   cfg.maxRetries,
		store:     cfg.store,
		clock:     cfg.clock,
		poll:      cfg.poll,
		obs:       joinObservers(cfg.observers),
		mode:      userMode,
		userValue: []string{apiUser},
		keyValue:  secretHeader{apiKey},
	}
	if keyMode != "" {
		c.mode = keyMode
	}
	ua := "vpay-go/" + Version
	if cfg.userAgent != "" {
		ua += " " + cfg.userAgent
	}
	c.uaValue = []string{ua}
	for _, e := range []struct {
		ep           *endpoint
		op           Op
		method, path string
	}{
		{&c.auth, OpToken, http.MethodPost, "auth/"},
		{&c.pay, OpPay, http.MethodPost, "pay/"},
		{&c.status, OpStatus, http.MethodGet, "transaction/status/"},
		{&c.links, OpCreateLink, http.MethodPost, "payment-links/"},
	} {
		*e.ep = endpoint{op: e.op, method: e.method, path: "/" + e.path, url: base.ResolveReference(&url.URL{Path: e.path}).String()}
	}
	if c.http == nil {
		c.http = defaultHTTPClient()
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	limiter := cfg.limiter
	if limiter == nil {
		limiter = newLocalLimiter(cfg.plan, cfg.planSet, c.clock)
	}
	c.rate = newRateGate(limiter, c.clock, cfg.maxWait, cfg.lowShare, c.logger)
	if c.store == nil {
		c.store = NewMemoryTokenStore()
	}
	return c, nil
}

func modeFromPrefix(s, family string) Mode {
	switch {
	case strings.HasPrefix(s, family+"sandbox_"):
		return ModeSandbox
	case strings.HasPrefix(s, family+"live_"):
		return ModeLive
	}
	return ""
}

// parseBaseURL accepts https URLs, and http ones only on a loopback host, so
// that credentials never cross a network in the clear.
//
// Its errors never repeat a password the URL carries.
func parseBaseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("vpay: WithBaseURL: %q is not an absolute URL", redactURL(raw))
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return nil, fmt.Errorf("vpay: WithBaseURL: %q is not https; plain http is only allowed on loopback", u.Redacted())
		}
	default:
		return nil, fmt.Errorf("vpay: WithBaseURL: %q: scheme must be https", u.Redacted())
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		// Neither echoed: a query can carry a key as well as user info can.
		return nil, fmt.Errorf("vpay: WithBaseURL: %q must not carry user info, a query or a fragment", u.Scheme+"://"+u.Host+u.Path)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	u.RawPath = ""
	return u, nil
}

// redactURL masks the user info of a URL that url.Parse could not make
// sense of: everything before the last "@" of its authority.
func redactURL(raw string) string {
	rest, scheme := raw, ""
	if i := strings.Index(raw, "//"); i >= 0 {
		scheme, rest = raw[:i+2], raw[i+2:]
	}
	authority := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority = rest[:i]
	}
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		return scheme + "xxxxx" + rest[at:]
	}
	return raw
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// defaultTransport is shared by every Client made without WithHTTPClient,
// as net/http shares http.DefaultTransport, and is the package's one
// global: a connection pool per Client would leak idle connections (and
// their goroutines) in a program that makes a Client per request, and
// would make every new Client pay a new TLS handshake. Sized for hundreds
// of concurrent callers to one API host; HTTP/2 when the server offers it.
var defaultTransport = &http.Transport{
	Proxy:                 http.ProxyFromEnvironment,
	DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	ForceAttemptHTTP2:     true,
	MaxIdleConns:          512,
	MaxIdleConnsPerHost:   256,
	IdleConnTimeout:       90 * time.Second,
	TLSHandshakeTimeout:   10 * time.Second,
	ExpectContinueTimeout: time.Second,
	ResponseHeaderTimeout: DefaultTimeout,
	TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
}

func defaultHTTPClient() *http.Client {
	return &http.Client{Timeout: DefaultTimeout, Transport: defaultTransport, CheckRedirect: noRedirect}
}

// noRedirect answers a redirect with the redirect itself: following it would
// resend the apiKey, the token and the body to wherever it points.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Mode returns the client's environment: from the credentials' prefixes, or
// from the first token when they have none ("" until then).
func (c *Client) Mode() Mode {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mode
}

// RateLimit returns the latest rate-limit state the server announced (the
// zero value before any response).
func (c *Client) RateLimit() RateLimit { return c.rate.Latest() }

// String describes the client without its credentials.
func (c *Client) String() string {
	return fmt.Sprintf("vpay.Client{mode: %q, baseURL: %q, apiUser: %q}", c.Mode(), c.baseURL.String(), c.apiUser)
}

// GoString is String, so that %#v does not print the key either.
func (c *Client) GoString() string { return c.String() }

// Format makes every fmt verb print String, never the key.
func (c *Client) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

// secret holds the API key so that no fmt verb can print it, even of a
// copied Client value or a struct that embeds one.
type secret string

func (secret) String() string               { return "[redacted]" }
func (secret) GoString() string             { return `"[redacted]"` }
func (secret) Format(f fmt.State, _ rune)   { _, _ = io.WriteString(f, "[redacted]") }
func (secret) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }

// secretHeader is a header value that holds a secret (the key, a bearer
// token), built once and shared by every request; printed, it says
// [redacted] like secret.
type secretHeader []string

func (secretHeader) String() string             { return "[redacted]" }
func (secretHeader) GoString() string           { return `"[redacted]"` }
func (secretHeader) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, "[redacted]") }

// bearerHeader returns the Authorization value for tok, built once per
// token: every request of a token's life sends the same string.
func (c *Client) bearerHeader(tok *Token) []string {
	const scheme = "Bearer "
	if b := c.bearer.Load(); b != nil && (*b)[0][len(scheme):] == tok.AccessToken {
		return *b
	}
	b := secretHeader{scheme + tok.AccessToken}
	c.bearer.Store(&b)
	return b
}
