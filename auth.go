package vpay

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/vonsung/vpay-go/internal/wire"
	"golang.org/x/sync/singleflight"
)

// Token is a V-Pay access token. Printed with any fmt verb or logged with
// log/slog, a Token (value or pointer) shows no secret, so it can be logged;
// use the fields themselves only to send them. encoding/json, on the other
// hand, carries every field, secrets included, so that a custom TokenStore
// can persist a Token: keep such JSON where you keep the API key.
type Token struct {
	// AccessToken is sent as "Authorization: Bearer <AccessToken>".
	AccessToken string
	// RefreshToken is what /auth/ returned as "refresh"; the SDK does not
	// use it (the documentation names no refresh endpoint).
	RefreshToken string
	// Mode is the environment the server says the token belongs to.
	Mode Mode
	// Expiry is when the token stops working, on the local clock: the time
	// the /auth/ request was sent plus the lifetime the server announced.
	Expiry time.Time
	// IssuedAt is the local time the /auth/ request was sent.
	IssuedAt time.Time
}

// Valid reports whether t can still be used at now.
func (t *Token) Valid(now time.Time) bool {
	return t != nil && t.AccessToken != "" && now.Before(t.Expiry)
}

// RefreshDue reports whether t is close enough to expiry to be replaced in
// the background. The margin is a tenth of the token's lifetime, at most a
// minute: a 300-second token is refreshed 30 seconds early, a 2-second
// sandbox token 200 ms early, never on every call.
func (t *Token) RefreshDue(now time.Time) bool {
	if t == nil {
		return true
	}
	margin := min(t.Expiry.Sub(t.IssuedAt)/10, time.Minute)
	return !now.Before(t.Expiry.Add(-margin))
}

// String describes t without its secrets. It has a value receiver so that
// a Token value, and a struct field of type Token, print safely too.
func (t Token) String() string {
	return fmt.Sprintf("vpay.Token{AccessToken: %s, RefreshToken: %s, Mode: %q, Expiry: %s}",
		redact(t.AccessToken), redact(t.RefreshToken), t.Mode, t.Expiry.Format(time.RFC3339))
}

// GoString is String, so that %#v hides the secrets too.
func (t Token) GoString() string { return t.String() }

// Format makes every fmt verb (%s, %v, %+v, %#v, %q, %x, ...) print String.
func (t Token) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, t.String()) }

// LogValue makes log/slog, with any handler, log t without its secrets.
func (t Token) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("access_token", redact(t.AccessToken)),
		slog.String("mode", string(t.Mode)),
		slog.Time("expiry", t.Expiry),
	)
}

func redact(s string) string {
	if s == "" {
		return `""`
	}
	return "[redacted]"
}

// TokenStore holds the current access token for one API key. The default is
// in memory, per client (NewMemoryTokenStore); a store shared between
// processes (the redisstore module) lets a fleet of replicas make one /auth/
// call per token lifetime.
//
// Implementations must be safe for concurrent use.
type TokenStore interface {
	// Load returns the current token, or nil when there is none. It does not
	// check expiry: the client does.
	Load(ctx context.Context) (*Token, error)
	// Refresh replaces stale (nil when there was none) with a fresh token.
	// If the current token is already another one that is still valid
	// (someone else refreshed), Refresh returns it without calling fetch;
	// otherwise it calls fetch, stores the token and returns it. A shared
	// store lets one caller at a time fetch and makes the others wait for
	// its result, so that a fleet refreshes once, not once per process.
	Refresh(ctx context.Context, stale *Token, fetch func(context.Context) (*Token, error)) (*Token, error)
	// Invalidate drops tok, after the server refused it with a 401, but
	// only if it is still the current token: a token that someone has
	// already replaced stays replaced.
	Invalidate(ctx context.Context, tok *Token) error
}

// MemoryTokenStore is the default TokenStore: the token lives in the
// process. It may be shared by several clients with the same credentials.
type MemoryTokenStore struct {
	mu    sync.Mutex
	tok   *Token
	fetch chan struct{} // a one-slot lock that a waiter can leave on ctx
}

// NewMemoryTokenStore returns an empty in-memory TokenStore.
func NewMemoryTokenStore() *MemoryTokenStore {
	return &MemoryTokenStore{fetch: make(chan struct{}, 1)}
}

// String describes s without the token it holds.
func (s *MemoryTokenStore) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok == nil {
		return "vpay.MemoryTokenStore{empty}"
	}
	return "vpay.MemoryTokenStore{" + s.tok.String() + "}"
}

// Format makes every fmt verb print String, never the token.
func (s *MemoryTokenStore) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, s.String()) }

// Load implements TokenStore.
func (s *MemoryTokenStore) Load(context.Context) (*Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tok, nil
}

// Refresh implements TokenStore.
func (s *MemoryTokenStore) Refresh(ctx context.Context, stale *Token, fetch func(context.Context) (*Token, error)) (*Token, error) {
	select {
	case s.fetch <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-s.fetch }()
	// A token other than the stale one was stored while we waited for the
	// lock: someone else refreshed, and it is fresh.
	if cur, _ := s.Load(ctx); cur != nil && !sameToken(cur, stale) {
		return cur, nil
	}
	tok, err := fetch(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.tok = tok
	s.mu.Unlock()
	return tok, nil
}

// Invalidate implements TokenStore.
func (s *MemoryTokenStore) Invalidate(_ context.Context, tok *Token) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sameToken(s.tok, tok) {
		s.tok = nil
	}
	return nil
}

func sameToken(a, b *Token) bool {
	return a != nil && b != nil && a.AccessToken == b.AccessToken
}

// refreshTimeout bounds a token refresh that runs detached from the
// callers' contexts.
const refreshTimeout = 30 * time.Second

// Token returns a valid access token, fetching one from POST /auth/ when
// there is none or it has expired. A token near its expiry is returned at
// once and replaced in the background, so steady traffic never waits on
// /auth/. However many goroutines ask at once, one /auth/ call is made; a
// caller whose ctx ends stops waiting without cancelling that call for the
// others.
func (c *Client) Token(ctx context.Context) (*Token, error) {
	tok, _, err := c.tokenAt(ctx, c.clock.Now())
	return tok, err
}

// tokenAt is Token at now, the caller's reading of the clock. It returns
// the time after: now itself when the stored token served, a new reading
// when it had to wait for a refresh.
func (c *Client) tokenAt(ctx context.Context, now time.Time) (*Token, time.Time, error) {
	tok, err := c.store.Load(ctx)
	if err != nil {
		return nil, now, err
	}
	if tok.Valid(now) {
		if tok.RefreshDue(now) {
			c.startRefresh(ctx, tok)
		}
		return tok, now, nil
	}
	select {
	case r := <-c.startRefresh(ctx, tok):
		if r.Err != nil {
			return nil, c.clock.Now(), r.Err
		}
		return r.Val.(*Token), c.clock.Now(), nil
	case <-ctx.Done():
		return nil, c.clock.Now(), &Error{Method: c.auth.method, Path: c.auth.path, Message: "gave up waiting for a token", Err: context.Cause(ctx)}
	}
}

// startRefresh joins or starts the one refresh in flight. The refresh runs
// on a context detached from the caller's cancellation (but keeping its
// values), so one impatient caller cannot fail it for everyone.
func (c *Client) startRefresh(ctx context.Context, stale *Token) <-chan singleflight.Result {
	return c.refresh.DoChan("token", func() (any, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshTimeout)
		defer cancel()
		tok, err := c.store.Refresh(rctx, stale, c.fetchToken)
		if err != nil {
			c.logger.LogAttrs(ctx, slog.LevelWarn, "vpay: token refresh failed", slog.String("error", err.Error()))
			return nil, err
		}
		return tok, nil
	})
}

// fetchToken calls POST /auth/ through the one request loop (do), as a
// call marked fetchesToken: sent without a bearer token, its 401 final. It
// takes a rate-limit slot (it counts against the key) and is retried by the
// same rule as any call. The lifetime is counted from the moment the
// request is sent, on the local clock, so neither the server's clock nor
// the time the answer took can make the client use an expired token.
func (c *Client) fetchToken(ctx context.Context) (*Token, error) {
	cl := call{ep: &c.auth, body: []byte{}, fetchesToken: true}
	if c.obs == nil {
		return c.requestToken(ctx, &cl)
	}
	ctx, op := c.opStart(ctx, Operation{Op: OpToken})
	tok, err := c.requestToken(ctx, &cl)
	if f := c.obs.TokenRefresh; f != nil {
		tr := TokenRefresh{Duration: c.clock.Now().Sub(op.Start), Err: err}
		if tok != nil {
			tr.Lifetime = tok.Expiry.Sub(tok.IssuedAt)
		}
		f(ctx, tr)
	}
	c.opEnd(ctx, op, cl.attempts, "", err)
	return tok, err
}

// requestToken sends the token fetch and reads the token from its answer.
func (c *Client) requestToken(ctx context.Context, cl *call) (*Token, error) {
	var ar wire.AuthResponse
	if err := c.do(ctx, cl, nil, &ar); err != nil {
		return nil, err
	}
	if ar.Access == "" {
		return nil, c.annotate(*cl, &Error{Message: "response has no access token"}, false)
	}
	lifetime := time.Duration(ar.ExpiresIn)
	if lifetime <= 0 {
		// The documentation's value: better than treating the token as
		// expired on arrival and refreshing on every call.
		lifetime = 300 * time.Second
	}
	mode := Mode(strings.ToLower(strings.TrimSpace(string(ar.Mode))))
	c.mu.Lock()
	defer c.mu.Unlock()
	if mode != "" {
		if c.mode != "" && c.mode != mode {
			return nil, c.annotate(*cl, &Error{Code: CodeInvalidKey,
				Message: fmt.Sprintf("the credentials are %s but the server issued a %s token", c.mode, mode)}, false)
		}
		c.mode = mode
	}
	return &Token{
		AccessToken:  string(ar.Access),
		RefreshToken: string(ar.Refresh),
		Mode:         mode,
		IssuedAt:     cl.sent,
		Expiry:       cl.sent.Add(lifetime),
	}, nil
}
