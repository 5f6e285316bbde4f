package vpaytest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"html/template"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vonsung/vpay-go"
)

// The sandbox numbers. PhoneSuccess and PhoneSuccessAlt are documented by
// V-Pay; the others exist only in this emulator.
const (
	PhoneSuccess           = "0780000000"
	PhoneSuccessAlt        = "0790000000"
	PhoneInsufficientFunds = "0780000001"
	PhoneTimeout           = "0780000002"
	PhoneCancelled         = "0780000003"
	PhoneNetworkError      = "0780000004"
)

// Defaults of the options.
const (
	DefaultTokenLifetime = 300 * time.Second
	DefaultPaymentDelay  = 200 * time.Millisecond
	// DefaultPerMinute is high enough that an ordinary test never waits.
	DefaultPerMinute = 100000
)

// Server is a running V-Pay emulator. Its exported fields are set by
// NewServer and must not be changed.
type Server struct {
	// URL is the base URL to give vpay.WithBaseURL, e.g.
	// "http://127.0.0.1:41233/api/".
	URL string
	// APIUser and APIKey are the sandbox credentials the emulator accepts.
	APIUser, APIKey string
	// WebhookSecret signs the webhooks the emulator sends.
	WebhookSecret string

	cfg      config
	listener net.Listener
	srv      *http.Server
	ctx      context.Context // ends at Close: stops deliveries and timers
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	hooks    *http.Client

	mu        sync.Mutex
	tokens    map[string]time.Time // access token -> expiry
	issued    []string             // live access tokens, oldest first
	txs       map[string]*transaction
	order     []string            // transaction ids in creation order
	refs      map[string][]string // reference -> transaction ids
	links     map[string]*link
	slugs     map[string]*link  // a link's page by its slug
	checkouts map[string]string // checkout token -> transaction id
	changed   chan struct{}     // closed and replaced on every change (touch)
	csrf      string            // the pages' form token
	faults    map[string][]*Fault
	seq       int
	idBase    int64 // random per server: ids of two emulators, or two runs, never collide
	window    rateWindow
	requests  map[string]int // API path -> requests received; other paths are not counted

	closed bool    // set by Close under mu: no background work starts after it
	loss   float64 // share of webhooks lost on purpose (LoseWebhooks)

	pageBase string          // where pages, links and QR codes point: "http://192.0.2.2:8000/"
	hosts    map[string]bool // the Host names served; others get 421
	streams  atomic.Int64    // live-update streams open now
	tmplOnce sync.Once
	tmpl     *template.Template // the pages with this server's merchant name

	authCalls atomic.Int64
	throttled atomic.Int64
}

type config struct {
	addr           string
	user, key      string
	secret         string
	lifetime       time.Duration
	delay          time.Duration
	plan           vpay.Plan
	window         time.Duration
	hookAttempts   int
	hookBackoff    time.Duration
	synchronousPay bool
	maxTxs         int
	webhookURL     string
	logger         *slog.Logger
	manualPayer    bool
	promptTimeout  time.Duration
	publicURL      string
	merchant       string
}

// DefaultMaxTransactions is how many payments the emulator keeps by
// default: far more than a long manual test run makes.
const DefaultMaxTransactions = 100000

// maxLiveTokens caps the access tokens the emulator honours at once, so a
// client that fetches a token per call cannot grow its memory without
// bound; the oldest is revoked first.
const maxLiveTokens = 10000

// Option configures NewServer.
type Option func(*config)

// WithAddr listens on addr instead of a random loopback port.
func WithAddr(addr string) Option { return func(c *config) { c.addr = addr } }

// WithCredentials sets the API user, key and webhook secret instead of
// random sandbox ones. Empty values keep the random ones.
func WithCredentials(apiUser, apiKey, webhookSecret string) Option {
	return func(c *config) {
		if apiUser != "" {
			c.user = apiUser
		}
		if apiKey != "" {
			c.key = apiKey
		}
		if webhookSecret != "" {
			c.secret = webhookSecret
		}
	}
}

// WithTokenLifetime sets how long an access token lives (default 300 s).
func WithTokenLifetime(d time.Duration) Option { return func(c *config) { c.lifetime = d } }

// WithPaymentDelay sets how long a payment stays pending before it reaches
// its outcome (default 200 ms).
func WithPaymentDelay(d time.Duration) Option { return func(c *config) { c.delay = d } }

// WithPlan enforces a plan's limits: vpay.PlanStarter or vpay.PlanGrowth to
// see real waits. The default allows DefaultPerMinute and no daily cap.
func WithPlan(p vpay.Plan) Option { return func(c *config) { c.plan = p } }

// WithRateWindow shortens the rate-limit window (default one minute), so a
// test sees several windows in seconds; the plan's PerMinute is then the
// limit per window.
func WithRateWindow(d time.Duration) Option { return func(c *config) { c.window = d } }

// WithWebhookRetries sets how many times a webhook is delivered before the
// emulator gives up, and the first wait between attempts, doubled each time
// (default 5 attempts, 100 ms).
func WithWebhookRetries(attempts int, backoff time.Duration) Option {
	return func(c *config) { c.hookAttempts, c.hookBackoff = attempts, backoff }
}

// WithSynchronousPay makes /pay/ wait for the outcome and answer with the
// "self-hosted MoMo" shape: the completed transaction, or an error body at
// HTTP 200 (PAYMENT_TIMEOUT, INSUFFICIENT_FUNDS).
func WithSynchronousPay() Option { return func(c *config) { c.synchronousPay = true } }

// WithMaxTransactions caps the payments the emulator keeps (default
// DefaultMaxTransactions); past it the oldest is forgotten, with its
// reference, so that a standalone sandbox left running keeps bounded
// memory. n must be positive.
func WithMaxTransactions(n int) Option { return func(c *config) { c.maxTxs = n } }

// WithWebhookURL sends every transaction's webhooks to url too, as the
// webhook URL configured in V-Pay's dashboard does, besides each payment's
// own callback_url.
func WithWebhookURL(url string) Option { return func(c *config) { c.webhookURL = url } }

// WithManualPayer makes payments wait for a person: a MoMo prompt for the
// phone page (root()/phone/<number>) or Approve and Decline, a card
// payment for its checkout page. A payment nobody settles fails with
// PAYMENT_TIMEOUT after the prompt timeout (WithPromptTimeout). Without it,
// payments settle by themselves after the payment delay.
func WithManualPayer() Option { return func(c *config) { c.manualPayer = true } }

// DefaultPromptTimeout is how long a payment that awaits its payer stays
// pending: the three minutes of a MoMo prompt.
const DefaultPromptTimeout = 3 * time.Minute

// WithPromptTimeout sets how long a payment that awaits its payer (under
// WithManualPayer, or paid through a payment link's page) stays pending
// before it fails with PAYMENT_TIMEOUT.
func WithPromptTimeout(d time.Duration) Option { return func(c *config) { c.promptTimeout = d } }

// WithPublicURL sets the address the emulator's pages, payment links,
// payment_url and QR codes carry, e.g. "http://192.168.1.20:8000/" for a
// phone on the same network, or a tunnel's https address. Its host is
// also served (see Start). It must be an absolute http(s) URL with no
// path beyond "/". Without it, a server bound to all interfaces (0.0.0.0
// or [::]) uses one of the machine's own addresses, and any other the
// address it listens on.
func WithPublicURL(u string) Option { return func(c *config) { c.publicURL = u } }

// DefaultMerchant is the merchant name pages, prompts and webhooks show
// unless WithMerchant sets one.
const DefaultMerchant = "VONSUNG"

// WithMerchant sets the merchant name every page, MoMo prompt and webhook
// shows (default DefaultMerchant), so a rehearsal looks like the shop.
func WithMerchant(name string) Option { return func(c *config) { c.merchant = name } }

// WithLogger logs each request the emulator serves at debug level.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// NewServer starts an emulator on a loopback port. It panics if it cannot
// listen, like httptest.NewServer; use Start to get the error instead.
func NewServer(opts ...Option) *Server {
	s, err := Start(opts...)
	if err != nil {
		panic("vpaytest: " + err.Error())
	}
	return s
}

// Start starts an emulator and returns an error if it cannot listen or an
// option is invalid.
//
// It answers only requests whose Host names it (others get 421
// Misdirected Request, so a web page using DNS rebinding cannot drive
// it): loopback names and addresses, the address it is bound to unless
// that is unspecified, the public URL's host (WithPublicURL), and the
// machine's own addresses when it is bound to all interfaces.
func Start(opts ...Option) (*Server, error) {
	cfg := config{
		addr:          "127.0.0.1:0",
		user:          "vpay_sandbox_" + randomHex(8),
		key:           "sk_sandbox_" + randomHex(16),
		secret:        "whsec_sandbox_" + randomHex(16),
		lifetime:      DefaultTokenLifetime,
		delay:         DefaultPaymentDelay,
		plan:          vpay.Plan{PerMinute: DefaultPerMinute},
		window:        time.Minute,
		hookAttempts:  5,
		hookBackoff:   100 * time.Millisecond,
		maxTxs:        DefaultMaxTransactions,
		logger:        slog.New(slog.DiscardHandler),
		promptTimeout: DefaultPromptTimeout,
		merchant:      DefaultMerchant,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.lifetime <= 0 || cfg.window <= 0 || cfg.plan.PerMinute <= 0 || cfg.hookAttempts <= 0 || cfg.maxTxs <= 0 || cfg.promptTimeout <= 0 {
		return nil, fmt.Errorf("token lifetime, rate window, PerMinute, webhook attempts, max transactions and prompt timeout must be positive")
	}
	if strings.TrimSpace(cfg.merchant) == "" {
		return nil, fmt.Errorf("merchant name must not be empty")
	}
	var public *url.URL
	if cfg.publicURL != "" {
		u, err := url.Parse(cfg.publicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("public URL %q: want an absolute http(s) URL with no path, e.g. http://192.168.1.20:8000/", cfg.publicURL)
		}
		u.Path = "/"
		public = u
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return nil, err
	}
	bound := ln.Addr().(*net.TCPAddr)
	apiHost := ln.Addr().String()
	if bound.IP.IsUnspecified() {
		// The SDK on this machine reaches a server bound to all
		// interfaces on loopback; an http base URL elsewhere is refused.
		apiHost = net.JoinHostPort("127.0.0.1", strconv.Itoa(bound.Port))
	}
	pageBase := "http://" + apiHost + "/"
	hosts := map[string]bool{"localhost": true}
	if !bound.IP.IsUnspecified() {
		hosts[bound.IP.String()] = true
	} else {
		own := ownAddresses()
		for _, ip := range own {
			hosts[ip.String()] = true
		}
		if ip := reachable(own); ip != nil {
			pageBase = "http://" + net.JoinHostPort(ip.String(), strconv.Itoa(bound.Port)) + "/"
		}
	}
	if public != nil {
		pageBase = public.String()
		hosts[strings.ToLower(public.Hostname())] = true
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		URL:           "http://" + apiHost + "/api/",
		pageBase:      pageBase,
		hosts:         hosts,
		APIUser:       cfg.user,
		APIKey:        cfg.key,
		WebhookSecret: cfg.secret,
		cfg:           cfg,
		listener:      ln,
		ctx:           ctx,
		cancel:        cancel,
		hooks:         &http.Client{Timeout: 10 * time.Second},
		tokens:        make(map[string]time.Time),
		txs:           make(map[string]*transaction),
		refs:          make(map[string][]string),
		links:         make(map[string]*link),
		slugs:         make(map[string]*link),
		checkouts:     make(map[string]string),
		changed:       make(chan struct{}),
		csrf:          randomHex(16),
		faults:        make(map[string][]*Fault),
		requests:      make(map[string]int),
		idBase:        10_000_000 + mrand.Int64N(80_000_000),
	}
	s.srv = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

// Close stops the emulator: pending payments stay pending, webhook
// deliveries in progress are abandoned.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	_ = s.srv.Close()
	s.wg.Wait()
}

// background runs f in a goroutine that Close waits for, unless Close has
// begun. The caller holds s.mu, so that no goroutine is added once Close
// has started waiting.
func (s *Server) background(f func()) {
	if s.closed {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// root is where the emulator's pages are, as links and QR codes carry it
// ("http://127.0.0.1:41233/", or the public URL).
func (s *Server) root() string { return s.pageBase }

// DashboardURL is the address of the emulator's dashboard: its
// transactions, their webhook deliveries (with Resend), its payment links
// and the rate-limit window, in a browser. It is on the public URL (see
// WithPublicURL) when there is one.
func (s *Server) DashboardURL() string { return s.root() }

// ownAddresses are the machine's interface addresses.
func ownAddresses() []net.IP {
	addrs, _ := net.InterfaceAddrs()
	var ips []net.IP
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			ips = append(ips, n.IP)
		}
	}
	return ips
}

// reachable picks the address another device on the network would use:
// the first IPv4 that is neither loopback nor link-local, else such an
// IPv6; nil when the machine has none.
func reachable(ips []net.IP) net.IP {
	var v6 net.IP
	for _, ip := range ips {
		if ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsUnspecified() || ip.IsMulticast() {
			continue
		}
		if ip.To4() != nil {
			return ip
		}
		if v6 == nil {
			v6 = ip
		}
	}
	return v6
}

// allowedHost reports whether the emulator serves requests whose Host
// header is host (with or without a port).
func (s *Server) allowedHost(host string) bool {
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	name = strings.ToLower(strings.TrimSuffix(strings.Trim(name, "[]"), "."))
	if ip := net.ParseIP(name); ip != nil {
		return ip.IsLoopback() || s.hosts[ip.String()]
	}
	return s.hosts[name]
}

// PhoneURL is the page of a payer's phone: the MoMo prompts waiting for
// the number, with Approve and Decline (see WithManualPayer).
func (s *Server) PhoneURL(phone string) string { return s.root() + "phone/" + url.PathEscape(phone) }

// Client returns a *vpay.Client pointed at the emulator with its
// credentials, its plan, a Wait that polls at a tenth of the payment delay
// (at least 10 ms), and the given options after those.
func (s *Server) Client(opts ...vpay.Option) *vpay.Client {
	poll := max(s.cfg.delay/10, 10*time.Millisecond)
	base := []vpay.Option{vpay.WithBaseURL(s.URL), vpay.WithPlan(s.cfg.plan), vpay.WithPollInterval(poll)}
	c, err := vpay.NewClient(s.APIUser, s.APIKey, append(base, opts...)...)
	if err != nil {
		panic("vpaytest: " + err.Error())
	}
	return c
}

// AuthCalls returns how many tokens the emulator has issued.
func (s *Server) AuthCalls() int { return int(s.authCalls.Load()) }

// Throttled returns how many requests the emulator answered with 429
// because the plan's limit was reached (injected 429s not included).
func (s *Server) Throttled() int { return int(s.throttled.Load()) }

// Requests returns how many requests reached path (e.g. "/pay/").
func (s *Server) Requests(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[path]
}

// RevokeTokens invalidates every access token issued so far: the next API
// call with one gets 401 INVALID_KEY.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
	s.issued = s.issued[:0]
}

// issueToken records a new access token, first dropping the expired ones
// and, past maxLiveTokens, the oldest. Tokens all live as long, so the
// oldest issued is the first to expire. The caller holds s.mu.
func (s *Server) issueToken(access string, now time.Time) {
	for len(s.issued) > 0 && (len(s.issued) >= maxLiveTokens || !now.Before(s.tokens[s.issued[0]])) {
		delete(s.tokens, s.issued[0])
		// Consumed from the front by reslicing: append moves the live part
		// to a new array when this one is full, so the queue stays bounded.
		s.issued[0], s.issued = "", s.issued[1:]
	}
	s.tokens[access] = now.Add(s.cfg.lifetime)
	s.issued = append(s.issued, access)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
