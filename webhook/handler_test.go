package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/internal/testutil"
)

// recv is testutil.Recv.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	return testutil.Recv(t, ch, what)
}

func TestHandlerPanicsWithoutUsableSecret(t *testing.T) {
	fn := func(context.Context, *vpay.Event) error { return nil }
	assert.PanicsWithValue(t, "webhook: Handler: empty webhook secret (is VPAY_WEBHOOK_SECRET set?); an endpoint without one can verify nothing",
		func() { Handler("", fn) })
	assert.Panics(t, func() { Handler("", fn, WithSecrets("", "")) }, "empty extra secrets are not usable either")
	assert.Panics(t, func() { Handler(secret, nil) })
	assert.NotPanics(t, func() { Handler("", fn, WithSecrets(secret)) }, "a rotated-in secret alone is usable")
}

func TestHandlerPrintsNoSecret(t *testing.T) {
	h := Handler(secret, func(context.Context, *vpay.Event) error { return nil }, WithSecrets("whsec_old_one"))
	var out strings.Builder
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		fmt.Fprintf(&out, verb+"\n", h)
		fmt.Fprintf(&out, verb+"\n", struct{ H http.Handler }{h})
	}
	assert.NotContains(t, out.String(), secret)
	assert.NotContains(t, out.String(), "whsec_old_one")
	assert.Contains(t, out.String(), "secrets: 2")
}

func TestHandlerPanicInFnReleasesEvent(t *testing.T) {
	var calls int
	h := Handler(secret, func(context.Context, *vpay.Event) error {
		calls++
		if calls == 1 {
			panic("nil map in the merchant's code")
		}
		return nil
	})
	assert.Panics(t, func() { deliver(h, payload, pythonSig) }, "the panic goes on to net/http")
	assert.Equal(t, 200, deliver(h, payload, pythonSig).Code)
	assert.Equal(t, 2, calls, "the redelivery after a panic is processed")
}

func TestHandlerRedeliveryWhileInProgressIsNotAcknowledged(t *testing.T) {
	entered, finish := make(chan struct{}), make(chan error)
	var calls int
	var mu sync.Mutex
	h := Handler(secret, func(ctx context.Context, ev *vpay.Event) error {
		mu.Lock()
		calls++
		mu.Unlock()
		entered <- struct{}{}
		select {
		case err := <-finish:
			return err
		case <-time.After(10 * time.Second):
			t.Error("timed out waiting for the test to finish fn")
			return errors.New("never finished")
		}
	}, WithTimeout(time.Hour))

	first := make(chan int)
	go func() { first <- deliver(h, payload, pythonSig).Code }()
	recv(t, entered, "fn to start")

	w := deliver(h, payload, pythonSig)
	assert.Equal(t, http.StatusConflict, w.Code, "the first delivery may still fail: no 2xx yet")
	assert.Equal(t, "3600", w.Header().Get("Retry-After"))

	testutil.Send(t, finish, errors.New("database down"), "fn's failure")
	assert.Equal(t, 500, recv(t, first, "the first delivery's answer"))

	go func() { first <- deliver(h, payload, pythonSig).Code }()
	recv(t, entered, "the redelivery to reach fn")
	testutil.Send(t, finish, nil, "fn's success")
	assert.Equal(t, 200, recv(t, first, "the redelivery's answer"))

	assert.Equal(t, 200, deliver(h, payload, pythonSig).Code, "done: acknowledged without fn")
	assert.Equal(t, 2, calls)
}

// countingDeduper reports each Extend on a channel.
type countingDeduper struct {
	*MemoryDeduper
	extended chan struct{}
}

func (d *countingDeduper) Extend(ctx context.Context, key, owner string, lease time.Duration) error {
	err := d.MemoryDeduper.Extend(ctx, key, owner, lease)
	select {
	case d.extended <- struct{}{}:
	default:
	}
	return err
}

func TestHandlerRenewsLeaseWhileSlowFnRuns(t *testing.T) {
	d := &countingDeduper{MemoryDeduper: NewMemoryDeduper(time.Hour), extended: make(chan struct{})}
	const limit = MinTimeout
	overran, release := make(chan struct{}), make(chan struct{})
	var calls int
	var mu sync.Mutex
	h := Handler(secret, func(ctx context.Context, ev *vpay.Event) error {
		mu.Lock()
		calls++
		mu.Unlock()
		_, has := ctx.Deadline()
		assert.True(t, has, "fn's ctx carries the handler's time limit")
		// The time limit passes; this fn ignores it and goes on.
		if !testutil.Wait(t, ctx.Done(), "fn's ctx to end") {
			return nil
		}
		close(overran)
		testutil.Wait(t, release, "the test to release fn")
		return nil
	}, WithDeduper(d), WithTimeout(limit))

	first := make(chan int)
	go func() { first <- deliver(h, payload, pythonSig).Code }()
	recv(t, overran, "fn's ctx to end")
	// Two renewals after the limit passed: the first lease has long ended.
	recv(t, d.extended, "a renewal")
	recv(t, d.extended, "another renewal")
	assert.Equal(t, http.StatusConflict, deliver(h, payload, pythonSig).Code, "a slow fn is never run twice")
	close(release)
	assert.Equal(t, 200, recv(t, first, "the first delivery's answer"))
	assert.Equal(t, 1, calls)
}

func TestMemoryDeduperLeaseAndTTL(t *testing.T) {
	now := time.Now()
	d := NewMemoryDeduper(time.Hour)
	d.now = func() time.Time { return now }
	ctx := context.Background()
	const key = "VP1:successful"

	st, _ := d.Claim(ctx, key, "a", time.Minute)
	assert.Equal(t, Claimed, st)
	st, _ = d.Claim(ctx, key, "b", time.Minute)
	assert.Equal(t, InProgress, st)

	now = now.Add(50 * time.Second)
	require.NoError(t, d.Extend(ctx, key, "a", time.Minute))
	now = now.Add(50 * time.Second)
	st, _ = d.Claim(ctx, key, "b", time.Minute)
	assert.Equal(t, InProgress, st, "a renewed lease holds past the first")

	now = now.Add(2 * time.Minute) // a crashed: no renewal
	st, _ = d.Claim(ctx, key, "b", time.Minute)
	assert.Equal(t, Claimed, st, "an expired lease is taken over")
	assert.ErrorIs(t, d.Extend(ctx, key, "a", time.Minute), ErrLeaseLost)
	require.NoError(t, d.Release(ctx, key, "a"))
	st, _ = d.Claim(ctx, key, "c", time.Minute)
	assert.Equal(t, InProgress, st, "a stale owner's Release leaves the new owner's claim")

	require.NoError(t, d.Complete(ctx, key, "b"))
	now = now.Add(30 * time.Minute)
	st, _ = d.Claim(ctx, key, "c", time.Minute)
	assert.Equal(t, Done, st, "done is remembered for the TTL, not the lease")
	require.NoError(t, d.Release(ctx, key, "c"))
	st, _ = d.Claim(ctx, key, "c", time.Minute)
	assert.Equal(t, Done, st, "Release does not undo done")

	now = now.Add(31 * time.Minute)
	st, _ = d.Claim(ctx, key, "d", time.Minute)
	assert.Equal(t, Claimed, st, "forgotten after the TTL")
	now = now.Add(2 * time.Hour)
	_, _ = d.Claim(ctx, "VP2:successful", "e", time.Minute)
	assert.Equal(t, 1, d.len(), "expired keys are swept")
}

// TestHandlerObserverSeesEveryDelivery: each answer Handler gives is
// reported once, with its result, reason and the event's identity.
func TestHandlerObserverSeesEveryDelivery(t *testing.T) {
	var got []string
	var fails int
	h := Handler(secret, func(context.Context, *vpay.Event) error {
		fails++
		switch fails {
		case 1:
			return errors.New("database down")
		case 2:
			panic("bug")
		}
		return nil
	}, WithObserver(func(_ context.Context, d Delivery) {
		got = append(got, fmt.Sprintf("%s %s %d %s %s %s %s err=%t", d.Result, d.Reason, d.HTTPStatus, d.EventType, d.Status, d.TransactionID, d.Reference, d.Err != nil))
	}))
	assert.Equal(t, 500, deliver(h, payload, pythonSig).Code)
	assert.Panics(t, func() { deliver(h, payload, pythonSig) })
	assert.Equal(t, 200, deliver(h, payload, pythonSig).Code)
	assert.Equal(t, 200, deliver(h, payload, pythonSig).Code)
	assert.Equal(t, 401, deliver(h, payload, strings.Repeat("0", 64)).Code)
	assert.Equal(t, 400, deliver(h, `{"no":"event"}`, Sign([]byte(`{"no":"event"}`), secret)).Code)
	get := httptest.NewRequest("GET", "/webhooks/vpay", nil)
	h.ServeHTTP(httptest.NewRecorder(), get)
	assert.Equal(t, []string{
		"failed error 500 payment.successful successful VP86583387 TXN_TDTAGD1HFJS err=true",
		"failed panic 500 payment.successful successful VP86583387 TXN_TDTAGD1HFJS err=false",
		"verified  200 payment.successful successful VP86583387 TXN_TDTAGD1HFJS err=false",
		"duplicate  200 payment.successful successful VP86583387 TXN_TDTAGD1HFJS err=false",
		"refused bad_signature 401     err=true",
		"refused unparsable 400     err=true",
		"refused method 405     err=false",
	}, got)
}

// len is how many keys d holds, expired or not.
func (d *MemoryDeduper) len() int {
	n := 0
	for i := range d.shards {
		s := &d.shards[i]
		s.mu.Lock()
		n += len(s.seen)
		s.mu.Unlock()
	}
	return n
}
