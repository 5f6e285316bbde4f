package vpay

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
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
	fields := struct{ Key secret }{c.apiKey} // as a copied Client value would print it
	for _, v := range []any{c, err, tok, fields} {
		fmt.Fprintf(&out, "%v %+v %#v %s\n", v, v, v, v)
	}
	out.WriteString(logs.String())
	assertNoSecret(t, out.String())
	assert.Contains(t, logs.String(), `"request_id":"req-42"`, "logs carry the request id")
	assert.Contains(t, logs.String(), `"status":502`)
	assert.Contains(t, logs.String(), "vpay: retrying")
	assert.Contains(t, out.String(), "vpay.Client{")
}

func TestRedirectNotFollowed(t *testing.T) {
	var leaked bool
	target := newRawServer(t, func(w http.ResponseWriter, r *http.Request) { leaked = r.Header.Get("apiKey") != "" })
	srv := newRawServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target+"/stolen", http.StatusFound)
	})
	c, err := NewClient(testUser, testKey, WithBaseURL(srv))
	require.NoError(t, err)
	_, err = c.Token(context.Background())
	require.Error(t, err)
	assert.False(t, leaked, "the key must not follow a redirect")
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
