package vpay

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAuthRequest(t *testing.T) {
	var got *http.Request
	var body []byte
	srv := newRawServer(t, func(w http.ResponseWriter, r *http.Request) {
		got = r.Clone(context.Background())
		body = make([]byte, 10)
		n, _ := r.Body.Read(body)
		body = body[:n]
		writeJSON(w, 200, `{"access":"a1","refresh":"r1","mode":"sandbox","expires_in":"300.0 seconds"}`)
	})
	clk := newFakeClock()
	c, err := NewClient(testUser, testKey, WithBaseURL(srv+"/api"), withClock(clk))
	require.NoError(t, err)
	sent := clk.Now()
	tok, err := c.Token(context.Background())
	require.NoError(t, err)
	testMethod(t, got, "POST")
	assert.Equal(t, "/api/auth/", got.URL.Path, "the base URL's path is kept")
	testHeader(t, got, "apiUser", testUser)
	testHeader(t, got, "apiKey", testKey)
	testHeader(t, got, "Authorization", "")
	assert.Empty(t, body)
	assert.Equal(t, "a1", tok.AccessToken)
	assert.Equal(t, "r1", tok.RefreshToken)
	assert.Equal(t, sent.Add(300*time.Second), tok.Expiry, "expiry counts from the local send time")
}

func TestExpiresInForms(t *testing.T) {
	for in, want := range map[string]time.Duration{
		`"300.0 seconds"`: 300 * time.Second,
		`"60 sec"`:        60 * time.Second,
		`120`:             120 * time.Second,
		`2.5`:             2500 * time.Millisecond,
		`"5 min"`:         5 * time.Minute,
	} {
		c, s := setup(t, withClock(newFakeClock()))
		s.lifetime = in
		tok, err := c.Token(context.Background())
		require.NoError(t, err, in)
		assert.Equal(t, want, tok.Expiry.Sub(tok.IssuedAt), in)
	}
}

func TestTokenCachedUntilRefreshDue(t *testing.T) {
	c, s, clk := setupClock(t)
	ctx := context.Background()
	first, err := c.Token(ctx)
	require.NoError(t, err)

	clk.Advance(269 * time.Second) // outside the 30 s margin of a 300 s token
	tok, err := c.Token(ctx)
	require.NoError(t, err)
	assert.Same(t, first, tok)
	assert.EqualValues(t, 1, s.authCalls.Load())

	clk.Advance(2 * time.Second) // inside the margin: still served, refreshed behind
	tok, err = c.Token(ctx)
	require.NoError(t, err)
	assert.Equal(t, first.AccessToken, tok.AccessToken, "a due token is still returned at once")
	require.Eventually(t, func() bool {
		cur, _ := c.store.Load(ctx)
		return cur.AccessToken == "access-2"
	}, 5*time.Second, time.Millisecond, "the background refresh stores a new token")
	assert.EqualValues(t, 2, s.authCalls.Load())

	clk.Advance(301 * time.Second) // past expiry: the caller waits for a new one
	tok, err = c.Token(ctx)
	require.NoError(t, err)
	assert.Equal(t, "access-3", tok.AccessToken)
}

func TestRefreshMarginScalesWithLifetime(t *testing.T) {
	now := time.Now()
	short := &Token{AccessToken: "x", IssuedAt: now, Expiry: now.Add(2 * time.Second)}
	assert.False(t, short.RefreshDue(now.Add(time.Second)), "a 2 s token is not refreshed on every call")
	assert.True(t, short.RefreshDue(now.Add(1850*time.Millisecond)))
	long := &Token{AccessToken: "x", IssuedAt: now, Expiry: now.Add(time.Hour)}
	assert.False(t, long.RefreshDue(now.Add(58*time.Minute)), "the margin is capped at a minute")
	assert.True(t, long.RefreshDue(now.Add(59*time.Minute)))
}

func TestColdClientMakesOneAuthCall(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int64
	srv := newRawServer(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if !await(t, release, "the test to release the refresh") { // every goroutine is waiting on it
			return
		}
		writeJSON(w, 200, `{"access":"a1","mode":"sandbox","expires_in":300}`)
	})
	c, err := NewClient(testUser, testKey, WithBaseURL(srv))
	require.NoError(t, err)
	const n = 200
	var wg sync.WaitGroup
	var started sync.WaitGroup
	errs := make(chan error, n)
	started.Add(n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			started.Done()
			tok, err := c.Token(context.Background())
			if err == nil && tok.AccessToken != "a1" {
				err = errors.New("wrong token " + tok.AccessToken)
			}
			errs <- err
		}()
	}
	started.Wait()
	require.Eventually(t, func() bool { return calls.Load() == 1 }, 5*time.Second, time.Millisecond)
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.EqualValues(t, 1, calls.Load())
}

func TestWaiterLeavingDoesNotCancelRefresh(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	srv := newRawServer(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
			return // the refresh was cancelled: the test fails below
		}
		writeJSON(w, 200, `{"access":"a1","mode":"sandbox","expires_in":300}`)
	})
	c, err := NewClient(testUser, testKey, WithBaseURL(srv))
	require.NoError(t, err)

	impatient, cancel := context.WithCancel(context.Background())
	leftErr := make(chan error)
	go func() { _, err := c.Token(impatient); leftErr <- err }()
	recv(t, arrived, "the refresh to reach the server")
	patient := make(chan *Token)
	go func() { tok, _ := c.Token(context.Background()); patient <- tok }()

	cancel()
	err = recv(t, leftErr, "the impatient caller to leave")
	assert.ErrorIs(t, err, context.Canceled, "the impatient caller leaves at once")
	close(release)
	tok := recv(t, patient, "the patient caller's token")
	require.NotNil(t, tok, "the patient caller still gets the token")
	assert.Equal(t, "a1", tok.AccessToken)
}

func TestRevokedTokenReplacedOnce(t *testing.T) {
	c, s := setup(t)
	const n = 50
	var stale, payCalls atomic.Int64
	allStale := make(chan struct{})
	s.mux.HandleFunc("POST /pay/", func(w http.ResponseWriter, r *http.Request) {
		payCalls.Add(1)
		if r.Header.Get("Authorization") == "Bearer access-1" {
			// Hold every request until all n carry the revoked token, so
			// that all n see the 401 at once.
			if stale.Add(1) == n {
				close(allStale)
			}
			if !await(t, allStale, "all requests to carry the revoked token") {
				return
			}
			writeJSON(w, 401, `{"status":"error","error_code":"INVALID_KEY","message":"token revoked"}`)
			return
		}
		writeJSON(w, 200, `{"status":"pending","transaction_id":"VP1"}`)
	})
	ctx := context.Background()
	_, err := c.Token(ctx) // access-1 is now current
	require.NoError(t, err)

	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Pay(ctx, &PayRequest{Amount: 100, Phone: "0780000000"})
			assert.NoError(t, err)
		}()
	}
	wg.Wait()
	assert.EqualValues(t, 2, s.authCalls.Load(), "one call for the first token, one to replace it")
	assert.EqualValues(t, 2*n, payCalls.Load(), "each call retried exactly once")
}

func TestSecond401Returned(t *testing.T) {
	c, s := setup(t)
	var payCalls atomic.Int64
	s.mux.HandleFunc("POST /pay/", func(w http.ResponseWriter, r *http.Request) {
		payCalls.Add(1)
		writeJSON(w, 401, `{"status":"error","error_code":"INVALID_KEY","message":"nope"}`)
	})
	_, err := c.Pay(context.Background(), &PayRequest{Amount: 100, Phone: "0780000000"})
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrInvalidKey)
	assert.ErrorIs(t, err, ErrUnauthorized)
	assert.EqualValues(t, 2, payCalls.Load())
	assert.EqualValues(t, 2, s.authCalls.Load())
}

func TestInvalidateKeepsNewerToken(t *testing.T) {
	s := NewMemoryTokenStore()
	ctx := context.Background()
	old := &Token{AccessToken: "old"}
	_, err := s.Refresh(ctx, nil, func(context.Context) (*Token, error) { return old, nil })
	require.NoError(t, err)
	newer, err := s.Refresh(ctx, old, func(context.Context) (*Token, error) { return &Token{AccessToken: "new"}, nil })
	require.NoError(t, err)
	require.NoError(t, s.Invalidate(ctx, old))
	cur, _ := s.Load(ctx)
	assert.Same(t, newer, cur, "a 401 on the old token must not drop its replacement")
	require.NoError(t, s.Invalidate(ctx, newer))
	cur, _ = s.Load(ctx)
	assert.Nil(t, cur)
}

func TestRefreshSkipsFetchWhenSomeoneElseRefreshed(t *testing.T) {
	s := NewMemoryTokenStore()
	ctx := context.Background()
	fresh, _ := s.Refresh(ctx, nil, func(context.Context) (*Token, error) { return &Token{AccessToken: "fresh"}, nil })
	got, err := s.Refresh(ctx, &Token{AccessToken: "stale"}, func(context.Context) (*Token, error) {
		t.Fatal("fetch called although the token was already replaced")
		return nil, nil
	})
	require.NoError(t, err)
	assert.Same(t, fresh, got)
}

func TestExpiryCountsFromTheSendTimeNotTheAnswer(t *testing.T) {
	clk := newFakeClock()
	srv := newRawServer(t, func(w http.ResponseWriter, r *http.Request) {
		clk.Advance(7 * time.Second) // a slow answer
		writeJSON(w, 200, `{"access":"a1","mode":"sandbox","expires_in":300}`)
	})
	c, err := NewClient(testUser, testKey, WithBaseURL(srv), withClock(clk))
	require.NoError(t, err)
	sent := clk.Now()
	tok, err := c.Token(context.Background())
	require.NoError(t, err)
	assert.Equal(t, sent.Add(300*time.Second), tok.Expiry, "the 7 s the answer took are not added to the token's life")
	assert.Equal(t, sent, tok.IssuedAt)
}

// countingStore counts Refresh calls on a MemoryTokenStore, and holds each
// until release is closed.
type countingStore struct {
	*MemoryTokenStore
	refreshes atomic.Int64
	entered   chan struct{}
	release   chan struct{}
}

func (s *countingStore) Refresh(ctx context.Context, stale *Token, fetch func(context.Context) (*Token, error)) (*Token, error) {
	if s.refreshes.Add(1) == 1 {
		close(s.entered)
	}
	select {
	case <-s.release:
	case <-time.After(10 * time.Second):
		return nil, errors.New("countingStore: the test never released the refresh")
	}
	return s.MemoryTokenStore.Refresh(ctx, stale, fetch)
}

func TestOneStoreRefreshPerClientHoweverManyCallers(t *testing.T) {
	store := &countingStore{MemoryTokenStore: NewMemoryTokenStore(), entered: make(chan struct{}), release: make(chan struct{})}
	c, s := setup(t, WithTokenStore(store))
	const n = 100
	var wg sync.WaitGroup
	var started sync.WaitGroup
	started.Add(n)
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			started.Done()
			_, err := c.Token(context.Background())
			errs <- err
		}()
	}
	started.Wait()
	recv(t, store.entered, "the first refresh")
	// Every caller is either waiting on the refresh in flight or about to
	// join it; none may start a second one. Give the stragglers the
	// scheduler's time to try.
	for range 1000 {
		runtime.Gosched()
	}
	inFlight := store.refreshes.Load()
	close(store.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.EqualValues(t, 1, inFlight, "one owner of refresh de-duplication: while a refresh runs, the store is not asked again")
	// A straggler that read the empty store just before the refresh ended
	// may ask the store once more; the store then returns the new token
	// without fetching.
	assert.EqualValues(t, 1, s.authCalls.Load())
}

// TestTokenFetchGoesThroughTheOneLoopWithoutAToken: the token fetch is one
// more call through the request loop, with what differs stated on the
// call: it carries no bearer token (it is how one is got), and its 401
// means the credentials are refused, so it is final: no second /auth/.
func TestTokenFetchGoesThroughTheOneLoopWithoutAToken(t *testing.T) {
	var authCalls atomic.Int64
	url := newRawServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/auth/" {
			t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
			return
		}
		authCalls.Add(1)
		assert.Empty(t, r.Header.Get("Authorization"), "the token fetch carries no bearer token")
		writeJSON(w, 401, `{"status":"error","error_code":"INVALID_KEY","message":"bad key"}`)
	})
	c, err := NewClient(testUser, testKey, WithBaseURL(url+"/"), WithMaxRetries(3))
	require.NoError(t, err)
	_, err = c.Status(context.Background(), "VP1")
	require.ErrorIs(t, err, ErrInvalidKey)
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, "/auth/", e.Path, "the error names the token fetch")
	assert.False(t, e.OutcomeUnknown)
	assert.EqualValues(t, 1, authCalls.Load(), "a refused key is not asked again")
}
