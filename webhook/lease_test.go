package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/vonsung/vpay-go"
)

func TestHandlerRefusesATimeoutBelowTheMinimum(t *testing.T) {
	fn := func(context.Context, *vpay.Event) error { return nil }
	for _, d := range []time.Duration{-time.Second, 0, time.Millisecond, 2 * time.Millisecond, MinTimeout - 1} {
		assert.Panics(t, func() { Handler(secret, fn, WithTimeout(d)) }, "WithTimeout(%s)", d)
	}
	assert.NotPanics(t, func() { Handler(secret, fn, WithTimeout(MinTimeout)) })
	assert.NotPanics(t, func() { Handler(secret, fn) }, "the default")
}

// scriptedDeduper is a MemoryDeduper whose Claim or Extend can be made to
// fail, and that counts what the handler asked of it.
type scriptedDeduper struct {
	*MemoryDeduper
	claimErr  atomic.Pointer[error]
	extendErr atomic.Pointer[error]
	extended  chan struct{}
	completed atomic.Int64
}

func newScriptedDeduper() *scriptedDeduper {
	return &scriptedDeduper{MemoryDeduper: NewMemoryDeduper(time.Hour), extended: make(chan struct{}, 100)}
}

func (d *scriptedDeduper) Claim(ctx context.Context, key, owner string, lease time.Duration) (ClaimState, error) {
	if err := d.claimErr.Load(); err != nil {
		return 0, *err
	}
	return d.MemoryDeduper.Claim(ctx, key, owner, lease)
}

func (d *scriptedDeduper) Extend(ctx context.Context, key, owner string, lease time.Duration) error {
	defer func() {
		select {
		case d.extended <- struct{}{}:
		default: // nobody counts renewals any more: never block the handler
		}
	}()
	if err := d.extendErr.Load(); err != nil {
		return *err
	}
	return d.MemoryDeduper.Extend(ctx, key, owner, lease)
}

func (d *scriptedDeduper) Complete(ctx context.Context, key, owner string) error {
	d.completed.Add(1)
	return d.MemoryDeduper.Complete(ctx, key, owner)
}

func fail(err error) *error { return &err }

// A store outage is never taken for "already done": the delivery is not
// acknowledged (so V-Pay delivers it again) and fn does not run without
// the event held.
func TestHandlerDeduperErrorIsNotAcknowledged(t *testing.T) {
	d := newScriptedDeduper()
	var calls atomic.Int64
	var got Delivery
	h := Handler(secret, func(context.Context, *vpay.Event) error {
		calls.Add(1)
		return nil
	}, WithDeduper(d), WithObserver(func(_ context.Context, dl Delivery) { got = dl }))

	d.claimErr.Store(fail(errors.New("dial tcp 10.0.0.5:6379: connection refused")))
	w := deliver(h, payload, pythonSig)
	assert.Equal(t, http.StatusServiceUnavailable, w.Code, "a store outage is no acknowledgement")
	assert.Equal(t, "30", w.Header().Get("Retry-After"))
	assert.Zero(t, calls.Load(), "fn does not run on an event nobody holds")
	assert.Equal(t, DeliveryFailed, got.Result)
	assert.Equal(t, "deduper", got.Reason)
	assert.NotContains(t, w.Body.String(), "10.0.0.5", "answers carry no detail")

	d.claimErr.Store(nil) // the store is back: V-Pay's redelivery is processed
	assert.Equal(t, 200, deliver(h, payload, pythonSig).Code)
	assert.Equal(t, int64(1), calls.Load())
}

// When a renewal says the lease is lost, another delivery may hold the
// event: fn's ctx ends (with ErrLeaseLost as its cause), the event is not
// completed, and the delivery is not acknowledged. A Deduper may wrap
// ErrLeaseLost with its own detail: that is the same loss.
func TestHandlerLeaseLostStopsFnAndIsNotAcknowledged(t *testing.T) {
	for name, lost := range map[string]error{
		"ErrLeaseLost": ErrLeaseLost,
		"wrapped":      fmt.Errorf("redis deduper: key VP1:successful: %w", ErrLeaseLost),
	} {
		t.Run(name, func(t *testing.T) {
			d := newScriptedDeduper()
			d.extendErr.Store(fail(lost))
			cause := make(chan error, 1)
			h := Handler(secret, func(ctx context.Context, _ *vpay.Event) error {
				renewals := 0
				for {
					select {
					case <-ctx.Done():
						cause <- context.Cause(ctx)
						return nil // a fn that ignores its ctx's error must not be acknowledged either
					case <-d.extended:
						// A lost lease is not renewed again: a second
						// renewal means the loss went unnoticed.
						if renewals++; renewals == 2 {
							cause <- errors.New("fn's ctx never ended")
							return nil
						}
					case <-time.After(10 * time.Second):
						cause <- errors.New("fn's ctx never ended")
						return nil
					}
				}
			}, WithDeduper(d), WithTimeout(3*MinTimeout))

			assert.Equal(t, http.StatusInternalServerError, deliver(h, payload, pythonSig).Code)
			assert.ErrorIs(t, recv(t, cause, "fn's ctx cause"), ErrLeaseLost)
			assert.Zero(t, d.completed.Load(), "an event whose lease was lost is not completed")
		})
	}
}

// Any other error from Extend (a store that hiccups) is logged and the
// delivery goes on: fn finishes and the event is completed.
func TestHandlerKeepsGoingWhenARenewalFails(t *testing.T) {
	d := newScriptedDeduper()
	d.extendErr.Store(fail(errors.New("i/o timeout")))
	h := Handler(secret, func(ctx context.Context, _ *vpay.Event) error {
		recv(t, d.extended, "a failed renewal")
		recv(t, d.extended, "another failed renewal")
		if errors.Is(context.Cause(ctx), ErrLeaseLost) {
			return context.Cause(ctx)
		}
		return nil
	}, WithDeduper(d), WithTimeout(3*MinTimeout))
	assert.Equal(t, 200, deliver(h, payload, pythonSig).Code, "fn's ctx was not cancelled by a failed renewal")
	assert.Equal(t, int64(1), d.completed.Load())
}

// The lease is renewed well inside its length: a fn that runs for several
// leases keeps its event (an expired lease is lost) and is acknowledged.
func TestHandlerRenewsTheLeaseBeforeItEnds(t *testing.T) {
	d := newScriptedDeduper()
	h := Handler(secret, func(ctx context.Context, _ *vpay.Event) error {
		for range 4 {
			recv(t, d.extended, "a renewal")
		}
		return nil
	}, WithDeduper(d), WithTimeout(3*MinTimeout))
	assert.Equal(t, 200, deliver(h, payload, pythonSig).Code, "the lease was lost between two renewals")
	assert.Equal(t, int64(1), d.completed.Load())
}
