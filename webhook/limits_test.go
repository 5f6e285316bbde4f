package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vonsung/vpay-go"
)

func TestVerifyRequestTakesABodyOfExactlyTheCap(t *testing.T) {
	body := []byte(payload)
	req := func() *http.Request {
		r := httptest.NewRequest("POST", "/", bytes.NewReader(body))
		r.Header.Set(SignatureHeader, pythonSig)
		return r
	}
	got, err := VerifyRequest(req(), secret, int64(len(body)))
	require.NoError(t, err, "a body of exactly the cap")
	assert.Equal(t, body, got)
	_, err = VerifyRequest(req(), secret, int64(len(body))-1)
	var tooBig *http.MaxBytesError
	assert.True(t, errors.As(err, &tooBig), "one byte over the cap: %v", err)
}

func TestWithMaxBodyBytesCapsTheBody(t *testing.T) {
	h := Handler(secret, func(context.Context, *vpay.Event) error { return nil }, WithMaxBodyBytes(int64(len(payload))))
	assert.Equal(t, 200, deliver(h, payload, pythonSig).Code, "a body of exactly the cap")
	one := payload + " " // still valid JSON, one byte over
	assert.Equal(t, http.StatusRequestEntityTooLarge, deliver(h, one, Sign([]byte(one), secret)).Code, "one byte over the cap")
	big := payload[:len(payload)-1] + `,"pad":"` + strings.Repeat("x", 64) + `"}`
	assert.Equal(t, http.StatusRequestEntityTooLarge, deliver(h, big, Sign([]byte(big), secret)).Code)
}

// TestInvalidOptionsAreRefused: an option with an invalid value makes
// Handler panic at construction, naming it, as the core's NewClient returns
// an error: never ignored, never replaced by a default.
func TestInvalidOptionsAreRefused(t *testing.T) {
	fn := func(context.Context, *vpay.Event) error { return nil }
	for _, tc := range []struct {
		name string
		opt  Option
		says string
	}{
		{"zero body cap", WithMaxBodyBytes(0), "WithMaxBodyBytes(0)"},
		{"negative body cap", WithMaxBodyBytes(-1), "WithMaxBodyBytes(-1)"},
		{"nil deduper", WithDeduper(nil), "WithDeduper(nil)"},
		{"nil logger", WithLogger(nil), "WithLogger(nil)"},
		{"nil observer", WithObserver(nil), "WithObserver(nil)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				r := recover()
				require.NotNil(t, r, "Handler accepted an invalid option")
				assert.Contains(t, fmt.Sprint(r), tc.says)
			}()
			Handler(secret, fn, tc.opt)
		})
	}
	assert.NotPanics(t, func() { Handler(secret, fn, WithSecrets(""), WithMaxBodyBytes(1)) },
		"an empty extra secret is no secret, and a cap of one byte is a cap")
}

// A TTL of 0 means the default, not "forget at once": a replay right
// after must not be processed again.
func TestMemoryDeduperZeroTTLRemembers(t *testing.T) {
	d := NewMemoryDeduper(0)
	ctx := context.Background()
	st, err := d.Claim(ctx, "VP1:successful", "a", MinTimeout)
	require.NoError(t, err)
	require.Equal(t, Claimed, st)
	require.NoError(t, d.Complete(ctx, "VP1:successful", "a"))
	st, _ = d.Claim(ctx, "VP1:successful", "b", MinTimeout)
	assert.Equal(t, Done, st)
	assert.Equal(t, DefaultDedupeTTL, d.ttl)
}

// An expired lease is lost even when nobody has claimed the event since,
// as a shared store's expired key is: the holder must not go on as if it
// still held the event.
func TestMemoryDeduperExpiredLeaseIsLost(t *testing.T) {
	now := time.Now()
	d := NewMemoryDeduper(time.Hour)
	d.now = func() time.Time { return now }
	ctx := context.Background()
	st, _ := d.Claim(ctx, "VP1:successful", "a", time.Minute)
	require.Equal(t, Claimed, st)
	now = now.Add(59 * time.Second)
	require.NoError(t, d.Extend(ctx, "VP1:successful", "a", time.Minute), "renewed inside the lease")
	now = now.Add(time.Minute)
	assert.ErrorIs(t, d.Extend(ctx, "VP1:successful", "a", time.Minute), ErrLeaseLost, "renewed as the lease ends")
}
