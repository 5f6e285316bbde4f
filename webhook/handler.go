package webhook

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vonsung/vpay-go"
)

// DefaultMaxBodyBytes caps a webhook body: a V-Pay event is a few hundred
// bytes.
const DefaultMaxBodyBytes = 1 << 20

// DefaultTimeout is how long Handler gives fn by default: fn's ctx ends
// after it, and it is the lease a delivery holds on its event.
const DefaultTimeout = 30 * time.Second

// MinTimeout is the shortest WithTimeout Handler accepts. The lease is
// renewed every third of it; a shorter one could end before a renewal
// reached a shared store, and a redelivery would run fn a second time for
// the same event.
const MinTimeout = 100 * time.Millisecond

// Option configures Handler. An invalid option (a nil Deduper, logger or
// observer, a body cap that is not positive, a time limit below
// MinTimeout) makes Handler panic at construction, as a missing secret
// does: Handler has no error to return, and a webhook endpoint that
// silently ran with another setting than the one written would be found
// only when an event was lost. The core's options are the same values
// refused through NewClient's error.
type Option func(*handler)

// refuse records an invalid option; Handler panics with every one.
func (h *handler) refuse(format string, args ...any) {
	h.invalid = append(h.invalid, fmt.Sprintf(format, args...))
}

// WithSecrets adds secrets that also verify, for rotation: during the
// switch, sign with the new secret and accept both. An empty string adds
// nothing (so WithSecrets(os.Getenv("VPAY_WEBHOOK_SECRET_OLD")) is safe
// outside a rotation) and never disables the other secrets.
func WithSecrets(more ...string) Option {
	return func(h *handler) {
		for _, s := range more {
			if s != "" { // an empty extra secret must not disable the others
				h.secrets = append(h.secrets, s)
			}
		}
	}
}

// WithMaxBodyBytes caps the body; a larger one gets 413 (default 1 MiB).
// n must be positive.
func WithMaxBodyBytes(n int64) Option {
	return func(h *handler) {
		if n <= 0 {
			h.refuse("WithMaxBodyBytes(%d): the cap must be positive", n)
			return
		}
		h.maxBody = n
	}
}

// WithDeduper replaces the in-memory Deduper, e.g. with one shared by all
// replicas (redisstore.NewDeduper).
func WithDeduper(d Deduper) Option {
	return func(h *handler) {
		if d == nil {
			h.refuse("WithDeduper(nil)")
			return
		}
		h.dedupe = d
	}
}

// WithTimeout sets the handler's time limit (default DefaultTimeout): fn's
// ctx ends after d, and d is the lease a delivery holds on its event,
// renewed every d/3 while fn runs. A process that crashes mid-event frees
// it after d; a redelivery that arrives before is answered 409 with
// Retry-After. Handler panics when d is below MinTimeout: refused, never
// clamped.
func WithTimeout(d time.Duration) Option {
	return func(h *handler) {
		h.timeout = d
	}
}

// WithLogger logs refused deliveries and failures of fn (never the secret).
func WithLogger(l *slog.Logger) Option {
	return func(h *handler) {
		if l == nil {
			h.refuse("WithLogger(nil)")
			return
		}
		h.log = l
	}
}

// Delivery is what Handler did with one request, for an observer (see
// WithObserver). It holds no secret and no payer's detail.
type Delivery struct {
	// Result is what Handler did with the delivery.
	Result DeliveryResult
	// Reason says why a delivery was refused ("bad_signature",
	// "too_large", "unreadable", "unparsable", "method"), why fn failed
	// ("error", "panic") or that the Deduper failed ("deduper").
	Reason string
	// The event's type, status, transaction and reference; empty when the
	// delivery was refused before the event could be read.
	EventType     vpay.EventType
	Status        vpay.Status // the status the event announces
	TransactionID string      // V-Pay's id of the payment
	Reference     string      // the merchant's reference (external_id)
	// HTTPStatus is what Handler answered.
	HTTPStatus int
	// Duration is how long Handler took, fn included.
	Duration time.Duration
	// Err is fn's error, or why the delivery was refused.
	Err error
}

// DeliveryResult is a delivery's result in a word fit for a metric label.
type DeliveryResult string

// The results of a delivery.
const (
	// DeliveryVerified: signed by a secret, processed by fn (200).
	DeliveryVerified DeliveryResult = "verified"
	// DeliveryRefused: not processed; see Reason (401, 400, 405, 413).
	DeliveryRefused DeliveryResult = "refused"
	// DeliveryDuplicate: an event already processed (200).
	DeliveryDuplicate DeliveryResult = "duplicate"
	// DeliveryInProgress: another delivery of the event is being processed
	// (409).
	DeliveryInProgress DeliveryResult = "in_progress"
	// DeliveryFailed: fn returned an error or panicked (500 or the panic),
	// or the Deduper failed (503, fn not called).
	DeliveryFailed DeliveryResult = "failed"
)

// WithObserver tells observe about every delivery when Handler has answered
// it (package vpayotel turns this into metrics). observe runs on the
// request's goroutine: it must be quick.
func WithObserver(observe func(ctx context.Context, d Delivery)) Option {
	return func(h *handler) {
		if observe == nil {
			h.refuse("WithObserver(nil)")
			return
		}
		h.observe = observe
	}
}

type handler struct {
	observe func(context.Context, Delivery)
	secrets []string
	fn      func(context.Context, *vpay.Event) error
	maxBody int64
	timeout time.Duration
	dedupe  Deduper
	log     *slog.Logger
	invalid []string // options refused, for Handler's panic

	macs   sync.Pool // *macSet keyed with secrets
	bodies sync.Pool // *bytes.Buffer a body is read into

	id         string        // random, the first part of every owner id
	deliveries atomic.Uint64 // claims made, the second part
}

// maxPooledBody is the largest body buffer kept for the next delivery: a
// rare large body must not pin its memory for the life of the process.
const maxPooledBody = 64 << 10

// signatureKey is SignatureHeader as net/http stores it (canonical form):
// read straight from the map, not canonicalised again on every delivery.
const signatureKey = "X-Vpay-Signature"

// String describes the handler without its secrets.
func (h *handler) String() string {
	return fmt.Sprintf("webhook.Handler{secrets: %d, maxBody: %d, timeout: %s}", len(h.secrets), h.maxBody, h.timeout)
}

// Format makes every fmt verb print String, never a secret.
func (h *handler) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, h.String()) }

// Handler returns an http.Handler for V-Pay's webhooks. It reads the body
// once under a cap (413 past it), verifies X-VPay-Signature against secret
// (401 when missing or wrong), parses the event (400 when it cannot), and
// claims the event in the Deduper: an event already processed gets 200 at
// once, one that another delivery is processing right now gets 409 with
// Retry-After (the first may still fail, so V-Pay must come back), and
// when the Deduper fails the delivery gets 503 with Retry-After and fn is
// not called (never a 2xx for an event nobody processed). Then it
// calls fn with the request's context, limited by WithTimeout: 500 when fn
// returns an error, so that V-Pay delivers again, 200 otherwise. If fn
// panics, the event is released before the panic goes on, so the next
// delivery is processed. Answers carry no detail.
//
// Handler panics when no usable secret is given (secret empty and no
// non-empty WithSecrets), as http.Handle does for a nil handler: such an
// endpoint could only refuse every event, and V-Pay would redeliver forever.
func Handler(secret string, fn func(context.Context, *vpay.Event) error, opts ...Option) http.Handler {
	if fn == nil {
		panic("webhook: Handler: nil fn")
	}
	h := &handler{
		fn:      fn,
		maxBody: DefaultMaxBodyBytes,
		timeout: DefaultTimeout,
		log:     slog.New(slog.DiscardHandler),
	}
	if secret != "" {
		h.secrets = append(h.secrets, secret)
	}
	for _, o := range opts {
		o(h)
	}
	if len(h.invalid) > 0 {
		panic("webhook: Handler: invalid option: " + strings.Join(h.invalid, "; "))
	}
	if len(h.secrets) == 0 {
		panic("webhook: Handler: empty webhook secret (is VPAY_WEBHOOK_SECRET set?); an endpoint without one can verify nothing")
	}
	if h.timeout < MinTimeout {
		panic(fmt.Sprintf("webhook: Handler: WithTimeout(%s) is below the minimum of %s: the lease on an event could end before it is renewed, and fn run twice for it", h.timeout, MinTimeout))
	}
	if h.dedupe == nil {
		h.dedupe = NewMemoryDeduper(DefaultDedupeTTL)
	}
	h.id = newHandlerID()
	h.macs.New = func() any { return newMACSet(h.secrets) }
	h.bodies.New = func() any { return new(bytes.Buffer) }
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var d Delivery
	if h.observe != nil {
		start := time.Now()
		defer func() {
			d.Duration = time.Since(start)
			if p := recover(); p != nil {
				d.Result, d.Reason, d.HTTPStatus = DeliveryFailed, "panic", http.StatusInternalServerError
				h.observe(r.Context(), d)
				panic(p)
			}
			h.observe(r.Context(), d)
		}()
	}
	h.serve(w, r, &d)
}

// serve handles one delivery and records what it did in d.
func (h *handler) serve(w http.ResponseWriter, r *http.Request, d *Delivery) {
	refuse := func(code int, reason, text string, err error) {
		d.Result, d.Reason, d.HTTPStatus, d.Err = DeliveryRefused, reason, code, err
		http.Error(w, text, code)
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		refuse(http.StatusMethodNotAllowed, "method", "method not allowed", nil)
		return
	}
	ctx := r.Context()
	ev := h.readEvent(w, r, refuse)
	if ev == nil {
		return
	}
	d.EventType, d.Status = ev.Type, ev.Transaction.Status
	d.TransactionID, d.Reference = ev.Transaction.TransactionID, ev.Transaction.Reference
	key, owner := DedupeKey(ev), h.newOwner()
	state, err := h.dedupe.Claim(ctx, key, owner, h.timeout)
	if err != nil {
		// The store cannot say whether the event was processed, or hold it
		// for this delivery alone: not a 2xx (V-Pay would not deliver it
		// again, and it could be lost), and not fn (another replica may be
		// running it). V-Pay delivers it again later.
		h.log.ErrorContext(ctx, "vpay webhook: deduper failed; asking V-Pay to deliver again", slog.String("error", err.Error()))
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(h.timeout.Seconds()))))
		d.Result, d.Reason, d.HTTPStatus, d.Err = DeliveryFailed, "deduper", http.StatusServiceUnavailable, err
		http.Error(w, "service unavailable", http.StatusServiceUnavailable)
		return
	}
	switch state {
	case Done:
		h.log.DebugContext(ctx, "vpay webhook: duplicate delivery", slog.String("key", key))
		d.Result, d.HTTPStatus = DeliveryDuplicate, http.StatusOK
		w.WriteHeader(http.StatusOK)
		return
	case InProgress:
		h.log.DebugContext(ctx, "vpay webhook: delivery of an event in progress; asking for a later one", slog.String("key", key))
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(h.timeout.Seconds()))))
		d.Result, d.HTTPStatus = DeliveryInProgress, http.StatusConflict
		http.Error(w, "in progress", http.StatusConflict)
		return
	}
	if err := h.process(ctx, ev, key, owner); err != nil {
		if IsRefused(err) {
			h.log.WarnContext(ctx, "vpay webhook: handler refused the event; V-Pay need not deliver it again",
				slog.String("transaction_id", ev.Transaction.TransactionID), slog.String("error", err.Error()))
			refuse(RefusedStatus, "refused", "unprocessable event", err)
			return
		}
		h.log.ErrorContext(ctx, "vpay webhook: handler failed; V-Pay will deliver again",
			slog.String("transaction_id", ev.Transaction.TransactionID), slog.String("error", err.Error()))
		d.Result, d.Reason, d.HTTPStatus, d.Err = DeliveryFailed, "error", http.StatusInternalServerError, err
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	d.Result, d.HTTPStatus = DeliveryVerified, http.StatusOK
	w.WriteHeader(http.StatusOK)
}

// readEvent reads the body under the cap into a pooled buffer, verifies
// it and parses it; nil when it refused the delivery. The buffer goes back
// to the pool here: ParseEvent copies what it keeps (Event.Raw, the
// strings), so nothing of the event points into it.
func (h *handler) readEvent(w http.ResponseWriter, r *http.Request, refuse func(code int, reason, text string, err error)) *vpay.Event {
	ctx := r.Context()
	buf := h.bodies.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= maxPooledBody {
			buf.Reset()
			h.bodies.Put(buf)
		}
	}()
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, h.maxBody)); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.log.WarnContext(ctx, "vpay webhook: body too large", slog.Int64("limit", h.maxBody))
			refuse(http.StatusRequestEntityTooLarge, "too_large", "payload too large", err)
			return nil
		}
		refuse(http.StatusBadRequest, "unreadable", "bad request", err)
		return nil
	}
	body := buf.Bytes()
	if err := h.verify(body, r.Header[signatureKey]); err != nil {
		h.log.WarnContext(ctx, "vpay webhook: refused", slog.String("reason", err.Error()))
		refuse(http.StatusUnauthorized, "bad_signature", "unauthorized", err)
		return nil
	}
	ev, err := vpay.ParseEvent(body)
	if err != nil {
		h.log.WarnContext(ctx, "vpay webhook: unparsable event", slog.String("error", err.Error()))
		refuse(http.StatusBadRequest, "unparsable", "bad request", err)
		return nil
	}
	return ev
}

// verify checks the signature header's first value (as Header.Get reads
// it) with a pooled set of HMACs.
func (h *handler) verify(body []byte, header []string) error {
	signature := ""
	if len(header) > 0 {
		signature = header[0]
	}
	sig, err := decodeSignature(signature)
	if err != nil {
		return err
	}
	m := h.macs.Get().(*macSet)
	defer h.macs.Put(m)
	return m.verify(body, &sig)
}

// process runs fn on a claimed event under the handler's time limit,
// renewing the lease every third of its length while fn runs (even past
// the limit, if fn ignores its ctx: a slow fn must never run twice), and
// settles the claim: Complete after success, Release after a failure or a
// panic. When a renewal finds the lease lost, another delivery may hold
// the event: fn's ctx is cancelled, and the event is neither completed nor
// acknowledged.
func (h *handler) process(ctx context.Context, ev *vpay.Event, key, owner string) (err error) {
	leaseCtx, loseLease := context.WithCancelCause(ctx)
	defer loseLease(nil)
	l := &lease{h: h, ctx: ctx, bg: context.WithoutCancel(ctx), key: key, owner: owner, lose: loseLease}
	l.start()
	succeeded := false
	defer func() {
		if l.stop() {
			// Not this delivery's event any more: Complete would mark done
			// what the new holder may still fail, and a 2xx would drop it.
			if err == nil {
				err = fmt.Errorf("webhook: %w while fn ran", ErrLeaseLost)
			}
			return
		}
		settle, what := h.dedupe.Release, "release"
		if succeeded {
			settle, what = h.dedupe.Complete, "complete"
		}
		// On a panic this runs before the panic goes on up the stack.
		if serr := settle(l.bg, key, owner); serr != nil {
			h.log.WarnContext(ctx, "vpay webhook: cannot "+what+" event", slog.String("key", key), slog.String("error", serr.Error()))
		}
	}()
	fctx, cancel := context.WithTimeout(leaseCtx, h.timeout)
	defer cancel()
	if err := h.fn(fctx, ev); err != nil {
		return err
	}
	succeeded = true
	return nil
}

// lease renews one delivery's claim every third of the handler's time
// limit while fn runs. It is one timer, not a goroutine: almost every fn
// returns long before the first renewal, which then never runs.
type lease struct {
	h          *handler
	ctx        context.Context // the request's, for logs
	bg         context.Context // the store's: renewing and settling outlive the request
	key, owner string
	lose       context.CancelCauseFunc

	mu    sync.Mutex // held by a renewal while it runs, so stop waits for it
	timer *time.Timer
	done  bool // fn returned: no renewal starts any more
	lost  bool // a renewal found the lease lost
}

func (l *lease) start() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.timer = time.AfterFunc(l.h.timeout/3, l.renew)
}

// renew extends the lease and arms the next renewal, until stop or until
// the store says the lease is lost: then fn's ctx ends with ErrLeaseLost.
func (l *lease) renew() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return
	}
	started := time.Now()
	err := l.h.dedupe.Extend(l.bg, l.key, l.owner, l.h.timeout)
	if errors.Is(err, ErrLeaseLost) {
		l.h.log.WarnContext(l.ctx, "vpay webhook: lost the lease on an event in progress; stopping fn, not acknowledging",
			slog.String("key", l.key))
		l.lost = true
		l.lose(ErrLeaseLost)
		return
	}
	if err != nil {
		// The store may be back at the next renewal: the lease still runs
		// until then.
		l.h.log.WarnContext(l.ctx, "vpay webhook: cannot renew the lease on an event in progress",
			slog.String("key", l.key), slog.String("error", err.Error()))
	}
	// Every third of the lease from this renewal's start, as a ticker
	// would: a slow store does not stretch the gap between renewals.
	l.timer.Reset(max(0, l.h.timeout/3-time.Since(started)))
}

// stop ends the renewals, after the one running (if any) has finished, so
// that no renewal reaches the store after the event is settled. It
// reports whether the lease was lost.
func (l *lease) stop() (lost bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.done = true
	l.timer.Stop()
	return l.lost
}

// newOwner returns an id for one delivery's claim, unique among every
// delivery that may share the Deduper: the handler's random id (other
// handlers and replicas draw their own) and a count of its deliveries.
// One read of the system's randomness per handler, not per delivery.
func (h *handler) newOwner() string {
	var b [64]byte
	id := append(b[:0], h.id...)
	id = append(id, '-')
	return string(strconv.AppendUint(id, h.deliveries.Add(1), 36))
}

// newHandlerID is a handler's random part of its owners' ids.
func newHandlerID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// VerifyRequest reads r's body (up to maxBytes; 0 means
// DefaultMaxBodyBytes), verifies its signature and puts the body back, so a
// handler further down the chain reads it again. Use it in a router's
// middleware when you do not use Handler.
func VerifyRequest(r *http.Request, secret string, maxBytes int64) ([]byte, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBodyBytes
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBytes+1))
	_ = r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > maxBytes {
		return nil, &http.MaxBytesError{Limit: maxBytes}
	}
	if err := Verify(body, r.Header.Get(SignatureHeader), secret); err != nil {
		return nil, err
	}
	return body, nil
}
