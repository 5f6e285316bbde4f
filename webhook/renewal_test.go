package webhook

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/internal/testutil"
)

// event is a signed body for transaction id, in status successful.
func event(id string) (body, sig string) {
	body = fmt.Sprintf(`{"event":"payment.successful","transaction_id":%q,"status":"successful","amount":"240.00","external_id":"TXN_%s"}`, id, id)
	return body, Sign([]byte(body), secret)
}

// keyedDeduper is a MemoryDeduper that records every Extend by key, in
// order with the settling calls, and can hold an Extend until released.
type keyedDeduper struct {
	*MemoryDeduper
	mu       sync.Mutex
	calls    []string      // "extend KEY", "extended KEY", "complete KEY", "release KEY"
	settled  []string      // settling calls made while an Extend ran
	extended chan string   // the key of each renewal, as it returns
	entered  chan struct{} // an Extend has started (when hold is set)
	hold     chan struct{} // when not nil, Extend waits for it to close
	inFlight atomic.Int64  // Extends running now
	lose     sync.Map      // keys whose Extend says ErrLeaseLost
}

func newKeyedDeduper() *keyedDeduper {
	return &keyedDeduper{MemoryDeduper: NewMemoryDeduper(time.Hour), extended: make(chan string, 100), entered: make(chan struct{}, 100)}
}

func (d *keyedDeduper) record(call string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, call)
}

func (d *keyedDeduper) Extend(ctx context.Context, key, owner string, lease time.Duration) error {
	d.inFlight.Add(1)
	d.record("extend " + key)
	if d.hold != nil {
		d.entered <- struct{}{}
		<-d.hold
	}
	err := d.MemoryDeduper.Extend(ctx, key, owner, lease)
	if _, lost := d.lose.Load(key); lost {
		err = ErrLeaseLost
	}
	d.record("extended " + key)
	d.inFlight.Add(-1)
	d.extended <- key
	return err
}

func (d *keyedDeduper) settle(what, key string) {
	if d.inFlight.Load() > 0 {
		d.mu.Lock()
		d.settled = append(d.settled, what+" "+key)
		d.mu.Unlock()
	}
	d.record(what + " " + key)
}

func (d *keyedDeduper) Complete(ctx context.Context, key, owner string) error {
	d.settle("complete", key)
	return d.MemoryDeduper.Complete(ctx, key, owner)
}

func (d *keyedDeduper) Release(ctx context.Context, key, owner string) error {
	d.settle("release", key)
	return d.MemoryDeduper.Release(ctx, key, owner)
}

func (d *keyedDeduper) log() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.calls...)
}

// A fn that returns at once never touches the store to renew: renewal
// starts only for a fn that outlives a third of its lease.
func TestHandlerDoesNotRenewForAShortFn(t *testing.T) {
	d := newKeyedDeduper()
	h := Handler(secret, func(context.Context, *vpay.Event) error {
		// Some work: the scheduler runs whatever timer is due meanwhile.
		for range 100 {
			runtime.Gosched()
		}
		return nil
	}, WithDeduper(d))
	for i := range 20 {
		body, sig := event(fmt.Sprintf("VP%d", i))
		require.Equal(t, 200, deliver(h, body, sig).Code)
	}
	for _, call := range d.log() {
		assert.NotContains(t, call, "extend", "a short fn's lease was renewed")
	}
}

// Once fn has returned, its lease is never renewed again: a renewal after
// Complete would be the store's business of another delivery. The second
// delivery's own renewals are the clock: they come a third of a lease
// apart, as the first's would, so two of them prove the first's time to
// renew came and went.
func TestHandlerStopsRenewingWhenFnReturns(t *testing.T) {
	d := newKeyedDeduper()
	renewed := make(chan struct{})
	h := Handler(secret, func(ctx context.Context, ev *vpay.Event) error {
		if ev.Transaction.TransactionID == "VP1" {
			return nil
		}
		for range 2 {
			if !waitKey(t, d.extended, "VP2:successful") {
				return nil
			}
		}
		close(renewed)
		return nil
	}, WithDeduper(d), WithTimeout(3*MinTimeout))

	body, sig := event("VP1")
	require.Equal(t, 200, deliver(h, body, sig).Code)
	body, sig = event("VP2")
	require.Equal(t, 200, deliver(h, body, sig).Code)
	recv(t, renewed, "two renewals of the second delivery")
	for _, call := range d.log() {
		assert.NotContains(t, call, "extend VP1:", "the first delivery's lease was renewed after it settled")
	}
}

// waitKey waits for a renewal of key, skipping others.
func waitKey(t *testing.T, ch <-chan string, key string) bool {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case k := <-ch:
			if k == key {
				return true
			}
			t.Errorf("renewal of %s while waiting for %s", k, key)
		case <-deadline:
			t.Errorf("timed out waiting for a renewal of %s", key)
			return false
		}
	}
}

// A renewal still running when fn returns finishes before the event is
// settled: never Complete and then Extend.
func TestHandlerSettlesOnlyAfterARenewalInFlight(t *testing.T) {
	d := newKeyedDeduper()
	d.hold = make(chan struct{})
	returned := make(chan struct{})
	h := Handler(secret, func(ctx context.Context, ev *vpay.Event) error {
		defer close(returned)
		testutil.Wait(t, d.entered, "a renewal to start")
		return nil
	}, WithDeduper(d), WithTimeout(3*MinTimeout))
	body, sig := event("VP1")
	answered := make(chan int, 1)
	go func() { answered <- deliver(h, body, sig).Code }()
	recv(t, returned, "fn to return while its renewal is held")
	select {
	case <-answered:
		t.Fatal("answered while a renewal of the event was still running")
	default:
	}
	close(d.hold)
	assert.Equal(t, 200, recv(t, answered, "the delivery's answer"))
	assert.Empty(t, d.settled, "settled while a renewal ran")
	assert.Equal(t, []string{"extend VP1:successful", "extended VP1:successful", "complete VP1:successful"}, d.log())
}

// A claim whose holder died (no renewal, no settling) frees the event when
// its lease ends: the next delivery is processed, not answered 409 forever.
func TestHandlerTakesOverAnExpiredLease(t *testing.T) {
	now := time.Now()
	d := NewMemoryDeduper(time.Hour)
	d.now = func() time.Time { return now }
	var calls atomic.Int64
	h := Handler(secret, func(context.Context, *vpay.Event) error {
		calls.Add(1)
		return nil
	}, WithDeduper(d), WithTimeout(time.Minute))
	body, sig := event("VP1")
	st, err := d.Claim(context.Background(), "VP1:successful", "crashed replica", time.Minute)
	require.NoError(t, err)
	require.Equal(t, Claimed, st)

	now = now.Add(59 * time.Second)
	assert.Equal(t, http.StatusConflict, deliver(h, body, sig).Code, "the lease still runs")
	now = now.Add(2 * time.Second)
	assert.Equal(t, 200, deliver(h, body, sig).Code, "the expired lease is taken over")
	assert.Equal(t, int64(1), calls.Load())
	assert.Equal(t, 200, deliver(h, body, sig).Code)
	assert.Equal(t, int64(1), calls.Load(), "and then done")
}

// Handler reads bodies into buffers it reuses: an Event fn keeps must not
// change when the next delivery is read into the same buffer.
func TestHandlerEventOutlivesItsBuffer(t *testing.T) {
	var kept []*vpay.Event
	h := Handler(secret, func(_ context.Context, ev *vpay.Event) error {
		kept = append(kept, ev)
		return nil
	})
	first, sig := event("VP1")
	require.Equal(t, 200, deliver(h, first, sig).Code)
	for i := 2; i < 10; i++ {
		body, sig := event(fmt.Sprintf("VQ%d", i)) // as long as the first
		require.Equal(t, 200, deliver(h, body, sig).Code)
	}
	require.Len(t, kept, 9)
	assert.Equal(t, first, string(kept[0].Raw))
	assert.Equal(t, "VP1", kept[0].Transaction.TransactionID)
	assert.Equal(t, "TXN_VP1", kept[0].Transaction.Reference)
	assert.Equal(t, vpay.EventPaymentSuccessful, kept[0].Type)
}

// ParseEvent keeps nothing of the payload it is given: the caller may
// reuse it (Handler does).
func TestParseEventCopiesThePayload(t *testing.T) {
	body, _ := event("VP1")
	buf := []byte(body)
	ev, err := vpay.ParseEvent(buf)
	require.NoError(t, err)
	for i := range buf {
		buf[i] = 'x'
	}
	assert.Equal(t, body, string(ev.Raw))
	assert.Equal(t, "VP1", ev.Transaction.TransactionID)
	assert.Equal(t, "TXN_VP1", ev.Transaction.Reference)
	assert.Equal(t, int64(240), ev.Transaction.Amount)
}

// The handler reads the signature from the header map under net/http's
// canonical form of SignatureHeader.
func TestSignatureKeyIsCanonical(t *testing.T) {
	assert.Equal(t, http.CanonicalHeaderKey(SignatureHeader), signatureKey)
}

// decodeSignature reads hex exactly as encoding/hex does, in either case,
// at every position.
func TestDecodeSignatureIsHex(t *testing.T) {
	base := strings.Repeat("0", 64)
	for _, pos := range []int{0, 1, 62, 63} {
		for c := range 256 {
			s := base[:pos] + string(rune(c)) + base[pos+1:]
			if len(s) != 64 {
				continue // a multi-byte rune: not a signature's length
			}
			want, werr := hex.DecodeString(s)
			got, err := decodeSignature(s)
			if (werr == nil) != (err == nil) {
				t.Errorf("%q: decodeSignature error %v, encoding/hex error %v", s, err, werr)
				continue
			}
			if err == nil {
				assert.Equal(t, want, got[:], "%q", s)
			}
		}
	}
}

// Every claim has its own owner, across handlers (replicas sharing a
// store) too: a stale delivery's Release or Extend must never pass for
// another's.
func TestOwnersAreUnique(t *testing.T) {
	fn := func(context.Context, *vpay.Event) error { return nil }
	seen := make(map[string]bool)
	for range 2 {
		h := Handler(secret, fn).(*handler)
		for range 1000 {
			o := h.newOwner()
			require.False(t, seen[o], "owner %s given twice", o)
			seen[o] = true
		}
	}
}

// Once a renewal finds the lease lost, the lease is never renewed again,
// even while a fn that ignores its ctx goes on: the event is another
// delivery's now. A second delivery's renewals are the clock.
func TestHandlerDoesNotRenewALostLease(t *testing.T) {
	d := newKeyedDeduper()
	d.lose.Store("VP1:successful", true)
	lostSeen, done := make(chan struct{}), make(chan struct{})
	h := Handler(secret, func(ctx context.Context, ev *vpay.Event) error {
		if ev.Transaction.TransactionID == "VP1" {
			testutil.Wait(t, ctx.Done(), "the lost lease to end fn's ctx")
			close(lostSeen)
			testutil.Wait(t, done, "the other delivery's renewals")
			return nil // ignores its ctx: must still not be acknowledged
		}
		for range 3 {
			if !waitKey(t, d.extended, "VP2:successful") {
				break
			}
		}
		close(done)
		return nil
	}, WithDeduper(d), WithTimeout(3*MinTimeout))

	first := make(chan int, 1)
	body, sig := event("VP1")
	go func() { first <- deliver(h, body, sig).Code }()
	recv(t, lostSeen, "fn of the event whose lease was lost")
	assert.Equal(t, "VP1:successful", recv(t, d.extended, "the renewal that found the lease lost"))
	body, sig = event("VP2")
	assert.Equal(t, 200, deliver(h, body, sig).Code)
	assert.Equal(t, http.StatusInternalServerError, recv(t, first, "the first delivery's answer"))
	n := 0
	for _, call := range d.log() {
		if call == "extend VP1:successful" {
			n++
		}
	}
	assert.Equal(t, 1, n, "renewals of the lost lease: %v", d.log())
}

// Two signature headers: the first is the signature, as Header.Get reads
// it (a proxy that appends its own cannot replace V-Pay's).
func TestHandlerReadsTheFirstSignatureHeader(t *testing.T) {
	h := Handler(secret, func(context.Context, *vpay.Event) error { return nil })
	body, sig := event("VP1")
	for _, tt := range []struct {
		sigs []string
		code int
	}{
		{[]string{sig, strings.Repeat("0", 64)}, 200},
		{[]string{strings.Repeat("0", 64), sig}, 401},
	} {
		r := httptest.NewRequest(http.MethodPost, "/webhooks/vpay", strings.NewReader(body))
		r.Header[signatureKey] = tt.sigs
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		assert.Equal(t, tt.code, w.Code, "signatures %v", tt.sigs)
	}
}

// slowDeduper's renewals take a while, as a store under load answers.
type slowDeduper struct {
	*MemoryDeduper
	took     time.Duration
	extended chan error
}

func (d *slowDeduper) Extend(ctx context.Context, key, owner string, lease time.Duration) error {
	time.Sleep(d.took) // the store's work, not a wait for the test
	err := d.MemoryDeduper.Extend(ctx, key, owner, lease)
	d.extended <- err
	return err
}

// Renewals come every third of the lease from the start of the last one,
// as a ticker's would: a store that takes longer than that to answer does
// not add its time to the gap, which would let the lease end between two
// renewals.
func TestHandlerRenewalCadenceIgnoresASlowStore(t *testing.T) {
	d := &slowDeduper{MemoryDeduper: NewMemoryDeduper(time.Hour), took: 3 * MinTimeout, extended: make(chan error, 10)}
	h := Handler(secret, func(ctx context.Context, _ *vpay.Event) error {
		for range 3 {
			if err := recv(t, d.extended, "a renewal"); err != nil {
				return err
			}
		}
		return nil
	}, WithDeduper(d), WithTimeout(6*MinTimeout)) // a renewal takes 1.5 times the gap between two
	body, sig := event("VP1")
	assert.Equal(t, 200, deliver(h, body, sig).Code, "the lease ended between two renewals")
}

// A body buffer that grew past maxPooledBody is dropped after its
// delivery, not kept: one large body must not pin its memory for good.
// (sync.Pool may drop what it is given, under -race at random: the pool
// can come back empty, never with the large buffer.)
func TestHandlerDoesNotPoolALargeBodyBuffer(t *testing.T) {
	h := Handler(secret, func(context.Context, *vpay.Event) error { return nil }, WithMaxBodyBytes(DefaultMaxBodyBytes)).(*handler)
	big := `{"transaction_id":"VP1","status":"successful","pad":"` + strings.Repeat("x", 2*maxPooledBody) + `"}`
	require.Equal(t, 200, deliver(h, big, Sign([]byte(big), secret)).Code)
	buf := h.bodies.Get().(*bytes.Buffer)
	assert.LessOrEqual(t, buf.Cap(), maxPooledBody, "the large body's buffer went back to the pool")
}

// A renewal whose timer fired as fn returned runs after stop: it must not
// reach the store (the event may be settled already) nor arm another.
func TestRenewalAfterStopDoesNothing(t *testing.T) {
	d := &countingDeduper{MemoryDeduper: NewMemoryDeduper(time.Hour), extended: make(chan struct{}, 1)}
	h := Handler(secret, func(context.Context, *vpay.Event) error { return nil }, WithDeduper(d)).(*handler)
	ctx := context.Background()
	l := &lease{h: h, ctx: ctx, bg: ctx, key: "k", owner: "o", lose: func(error) {}}
	l.timer = time.AfterFunc(time.Hour, func() {}) // the test fires the renewal itself
	assert.False(t, l.stop())
	l.renew() // the timer's late firing
	select {
	case <-d.extended:
		t.Fatal("a renewal after stop reached the store")
	default:
	}
	assert.False(t, l.timer.Stop(), "a renewal after stop armed another")
}

// A signature one hex pair too long is malformed, not read for its first
// 64 digits.
func TestDecodeSignatureRefusesExtraDigits(t *testing.T) {
	sig := Sign([]byte(payload), secret)
	for _, s := range []string{sig + "00", sig + "0", sig[:63]} {
		_, err := decodeSignature(s)
		assert.ErrorIs(t, err, ErrMalformedSignature, "%d digits", len(s))
	}
	assert.Equal(t, 401, deliver(Handler(secret, func(context.Context, *vpay.Event) error { return nil }), payload, sig+"00").Code)
}

// A body of exactly the pooling limit leaves a buffer that grew past it:
// the buffer's capacity, not the body's length, decides.
func TestHandlerDoesNotPoolABufferThatGrewPastTheLimit(t *testing.T) {
	h := Handler(secret, func(context.Context, *vpay.Event) error { return nil }, WithMaxBodyBytes(DefaultMaxBodyBytes)).(*handler)
	head := `{"transaction_id":"VP1","status":"successful","pad":"`
	body := head + strings.Repeat("x", maxPooledBody-len(head)-2) + `"}`
	require.Len(t, body, maxPooledBody)
	require.Equal(t, 200, deliver(h, body, Sign([]byte(body), secret)).Code)
	buf := h.bodies.Get().(*bytes.Buffer)
	assert.LessOrEqual(t, buf.Cap(), maxPooledBody, "a buffer past the limit went back to the pool")
}
