package vpay

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewClientRefuses(t *testing.T) {
	tests := []struct {
		name      string
		user, key string
		opts      []Option
		want      string
	}{
		{"empty user", "", testKey, nil, "apiUser"},
		{"empty key", testUser, " ", nil, "apiKey"},
		{"sandbox user with live key", "vpay_sandbox_x", "sk_live_y", nil, "live key cannot be used with a sandbox user"},
		{"live user with sandbox key", "vpay_live_x", "sk_sandbox_y", nil, "sandbox key cannot be used with a live user"},
		{"plain http off loopback", testUser, testKey, []Option{WithBaseURL("http://vonsung.rw/api/")}, "not https"},
		{"relative base URL", testUser, testKey, []Option{WithBaseURL("/api/")}, "not an absolute URL"},
		{"ftp base URL", testUser, testKey, []Option{WithBaseURL("ftp://127.0.0.1/")}, "scheme"},
		{"nil http client", testUser, testKey, []Option{WithHTTPClient(nil)}, "nil *http.Client"},
		{"negative retries", testUser, testKey, []Option{WithMaxRetries(-1)}, "outside 0..10"},
		{"zero plan", testUser, testKey, []Option{WithPlan(Plan{})}, "PerMinute must be positive"},
		{"negative max wait", testUser, testKey, []Option{WithMaxWait(-time.Second)}, "negative"},
		{"nil limiter", testUser, testKey, []Option{WithLimiter(nil)}, "nil Limiter"},
		{"nil store", testUser, testKey, []Option{WithTokenStore(nil)}, "nil TokenStore"},
		{"nil logger", testUser, testKey, []Option{WithLogger(nil)}, "nil *slog.Logger"},
		{"user agent with newline", testUser, testKey, []Option{WithUserAgent("a\r\nX-Evil: 1")}, "line break"},
		{"nil option", testUser, testKey, []Option{nil}, "nil Option"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClient(tt.user, tt.key, tt.opts...)
			require.Error(t, err)
			assert.Nil(t, c)
			assert.Contains(t, err.Error(), tt.want)
			assert.NotContains(t, err.Error(), "sk_live_y")
		})
	}
}

func TestNewClientMode(t *testing.T) {
	tests := []struct {
		user, key string
		want      Mode
	}{
		{"vpay_sandbox_a", "sk_sandbox_b", ModeSandbox},
		{"vpay_live_a", "sk_live_b", ModeLive},
		{"merchant", "sk_live_b", ModeLive},
		{"vpay_sandbox_a", "opaque", ModeSandbox},
		{"merchant", "opaque", ""},
	}
	for _, tt := range tests {
		c, err := NewClient(tt.user, tt.key)
		require.NoError(t, err)
		assert.Equal(t, tt.want, c.Mode(), "%s/%s", tt.user, tt.key)
	}
}

func TestBaseURLAcceptsLoopbackHTTP(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:8080/api", "http://localhost/api/", "http://[::1]:9/", "https://example.com/v1/api/"} {
		_, err := NewClient(testUser, testKey, WithBaseURL(u))
		assert.NoError(t, err, u)
	}
}

func TestDefaultHTTPClient(t *testing.T) {
	c, err := NewClient(testUser, testKey)
	require.NoError(t, err)
	assert.Equal(t, DefaultTimeout, c.http.Timeout, "a client without a timeout can hang forever")
	tr := c.http.Transport.(*http.Transport)
	assert.GreaterOrEqual(t, tr.TLSClientConfig.MinVersion, uint16(0x0303), "TLS 1.2 at least")
	assert.False(t, tr.DisableKeepAlives)
	assert.GreaterOrEqual(t, tr.MaxIdleConnsPerHost, 100, "sized for many concurrent callers")
	assert.True(t, tr.ForceAttemptHTTP2)
	c2, err := NewClient(testUser, testKey)
	require.NoError(t, err)
	assert.Same(t, tr, c2.http.Transport, "one pool for every Client")
	assert.Equal(t, DefaultBaseURL, c.baseURL.String())
}

func TestUnknownPrefixTakesModeFromToken(t *testing.T) {
	srv := newRawServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"access":"a","refresh":"r","mode":"live","expires_in":300}`)
	})
	c, err := NewClient("merchant", "opaque-key", WithBaseURL(srv))
	require.NoError(t, err)
	assert.Equal(t, Mode(""), c.Mode(), "no prefix: unknown until the first token")
	tok, err := c.Token(context.Background())
	require.NoError(t, err)
	assert.Equal(t, ModeLive, tok.Mode)
	assert.Equal(t, ModeLive, c.Mode(), "the auth response's mode")
}

func TestWrongCredentialsAreInvalidKey(t *testing.T) {
	_, s := setup(t)
	c, err := NewClient("merchant", "opaque-key", WithBaseURL(s.URL+"/api/"))
	require.NoError(t, err)
	_, err = c.Token(context.Background())
	assert.ErrorIs(t, err, ErrInvalidKey)
}

func TestLiveTokenForSandboxKeyRefused(t *testing.T) {
	srv := newRawServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"access":"a","refresh":"r","mode":"live","expires_in":300}`)
	})
	c, err := NewClient(testUser, testKey, WithBaseURL(srv))
	require.NoError(t, err)
	_, err = c.Token(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "sandbox but the server issued a live token")
	assert.ErrorIs(t, err, ErrInvalidKey)
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Zero(t, e.HTTPStatus, "the server answered 200; no 401 is invented")
}

// secretsIn lists the secrets a test may have exposed.
func assertNoSecret(t *testing.T, s string) {
	t.Helper()
	for _, secret := range []string{testKey, "access-1", "access-2", "refresh-1", "s3cr3t"} {
		assert.NotContains(t, s, secret)
	}
}

func TestNoSecretInFormatLogsOrErrors(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, s := setup(t, WithLogger(logger), WithMaxRetries(1), withClock(newFakeClock()))
	s.mux.HandleFunc("/pay/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "req-42")
		writeJSON(w, 502, `{"status":"error","error_code":"NETWORK_ERROR","message":"MoMo down"}`)
	})
	_, err := c.Pay(context.Background(), &PayRequest{Amount: 500, Phone: "0780000000", Reference: "order-1"})
	require.Error(t, err)
	tok, _ := c.Token(context.Background())

	var out strings.Builder
	// As a copied Client value would print them.
	fields := struct {
		Key    secret
		Header secretHeader
		Bearer secretHeader
	}{c.apiKey, c.keyValue, *c.bearer.Load()}
	for _, v := range []any{c, err, tok, fields} {
		fmt.Fprintf(&out, "%v %+v %#v %s %d %x %q\n", v, v, v, v, v, v, v)
	}
	out.WriteString(logs.String())
	assertNoSecret(t, out.String())
	assert.Contains(t, logs.String(), `"request_id":"req-42"`, "logs carry the request id")
	assert.Contains(t, logs.String(), `"status":502`)
	assert.Contains(t, logs.String(), "vpay: retrying")
	assert.Contains(t, out.String(), "vpay.Client{")
}

func TestRedirectNotFollowed(t *testing.T) {
	follows := &http.Client{Timeout: 5 * time.Second} // net/http's default: follow up to 10
	var mine int
	counts := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { mine++; return nil }}
	for name, opts := range map[string][]Option{
		"default client":               nil,
		"caller's client that follows": {WithHTTPClient(follows)},
		"caller's own CheckRedirect":   {WithHTTPClient(counts)},
	} {
		t.Run(name, func(t *testing.T) {
			var leaked atomic.Int64
			target := newRawServer(t, func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("apiKey") != "" || r.Header.Get("Authorization") != "" {
					leaked.Add(1)
				}
				writeJSON(w, 200, `{"access":"attacker","mode":"sandbox","expires_in":300}`)
			})
			srv := newRawServer(t, func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, target+"/stolen", http.StatusTemporaryRedirect)
			})
			c, err := NewClient(testUser, testKey, append([]Option{WithBaseURL(srv)}, opts...)...)
			require.NoError(t, err)
			_, err = c.Token(context.Background())
			require.Error(t, err, "a redirect's answer is not accepted")
			assert.Zero(t, leaked.Load(), "the key must not follow a redirect")
		})
	}
	assert.Nil(t, follows.CheckRedirect, "the caller's client is not changed")
	assert.Zero(t, mine)
}

func TestTokenPrintsNoSecret(t *testing.T) {
	tok := Token{AccessToken: "access-1", RefreshToken: "refresh-1", Mode: ModeSandbox, Expiry: time.Unix(1e9, 0)}
	store := NewMemoryTokenStore()
	_, err := store.Refresh(context.Background(), nil, func(context.Context) (*Token, error) { return &tok, nil })
	require.NoError(t, err)
	type order struct {
		ID    string
		Token Token
		Ptr   *Token
	}
	var out strings.Builder
	for _, v := range []any{tok, &tok, order{"o1", tok, &tok}, &order{"o1", tok, &tok}, store} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
			fmt.Fprintf(&out, verb+"\n", v)
		}
	}
	for _, h := range []slog.Handler{
		slog.NewTextHandler(&out, nil), slog.NewJSONHandler(&out, nil),
	} {
		slog.New(h).Info("token", "tok", tok, "ptr", &tok, slog.Any("store", store))
	}
	assertNoSecret(t, out.String())
	assert.Contains(t, out.String(), "sandbox", "what is safe to print still is")

	b, err := json.Marshal(tok)
	require.NoError(t, err)
	var back Token
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, tok.AccessToken, back.AccessToken, "JSON keeps the token, for TokenStores that persist it")
	assert.Equal(t, tok.RefreshToken, back.RefreshToken)
}

func TestBaseURLErrorHidesPassword(t *testing.T) {
	for _, raw := range []string{
		"http://merchant:hunter2@vonsung.rw/api/",
		"ftp://merchant:hunter2@127.0.0.1/",
		"https://merchant:hunter2@127.0.0.1/api/",
		"merchant:hunter2@vonsung.rw",
		"https://merchant:hunter2@vonsung.rw:bad/api/",
		"https://vonsung.rw/api/?key=hunter2",
	} {
		_, err := NewClient(testUser, testKey, WithBaseURL(raw))
		require.Error(t, err, raw)
		assert.NotContains(t, err.Error(), "hunter2", raw)
	}
}

func TestUserAgent(t *testing.T) {
	var ua string
	srv := newRawServer(t, func(w http.ResponseWriter, r *http.Request) {
		ua = r.Header.Get("User-Agent")
		writeJSON(w, 200, `{"access":"a","mode":"sandbox","expires_in":300}`)
	})
	c, err := NewClient(testUser, testKey, WithBaseURL(srv), WithUserAgent("shop/1.2"))
	require.NoError(t, err)
	_, err = c.Token(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "vpay-go/"+Version+" shop/1.2", ua)
}

func TestClientPerRequestLeaksNoConnection(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/auth/" {
			writeJSON(w, 200, `{"access":"a","mode":"sandbox","expires_in":300}`)
			return
		}
		writeJSON(w, 200, `{"status":"pending","transaction_id":"VP1"}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	before := runtime.NumGoroutine()
	for range 100 {
		// The careless merchant: a new Client for every request.
		c, err := NewClient(testUser, testKey, WithBaseURL(srv.URL))
		require.NoError(t, err)
		_, err = c.Status(context.Background(), "VP1")
		require.NoError(t, err)
	}
	assert.LessOrEqual(t, conns.Load(), int64(2), "the Clients share one pool: connections are reused, not left idle per Client")
	assert.Less(t, runtime.NumGoroutine()-before, 20, "no goroutines left behind per Client")
}
