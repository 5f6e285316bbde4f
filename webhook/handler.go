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
	"sync"
	"time"

	"github.com/vonsung/vpay-go"
)

// DefaultMaxBodyBytes caps a webhook body: a V-Pay event is a few hundred
// bytes.
const DefaultMaxBodyBytes = 1 << 20

// DefaultDedupeTTL is how long the in-memory Deduper remembers an event:
// longer than V-Pay keeps redelivering.
const DefaultDedupeTTL = 24 * time.Hour

// Deduper remembers which events were processed, so that a redelivered
// event reaches the handler's function once. The signature has no
// timestamp, so this is also the protection against replayed requests.
//
// An event goes through two states: in progress, held by one delivery
// (its owner) under a lease that the handler renews while fn runs, and
// done, remembered for the Deduper's TTL. The lease is what lets a
// redelivery tell "being processed right now" (answer non-2xx: the first
// delivery may still fail) from "processed" (answer 200), and what frees
// the event when the process holding it crashed.
//
// Implementations must be safe for concurrent use.
type Deduper interface {
	// Claim takes key for owner for lease, unless the event is done
	// (Done) or another owner holds a lease that has not expired
	// (InProgress). An expired lease is taken over.
	Claim(ctx context.Context, key, owner string, lease time.Duration) (ClaimState, error)
	// Extend renews owner's lease on key for another lease from now. It
	// returns ErrLeaseLost when owner no longer holds key.
	Extend(ctx context.Context, key, owner string, lease time.Duration) error
	// Complete records key as done, whoever holds it: the event was
	// processed.
	Complete(ctx context.Context, key, owner string) error
	// Release drops owner's claim after processing failed, so that the
	// next delivery is processed. A claim owner no longer holds is left
	// alone.
	Release(ctx context.Context, key, owner string) error
}

// ClaimState is what Deduper.Claim found.
type ClaimState int

// The states of Claim.
const (
	// Claimed: the caller now holds the event; it processes it, then
	// calls Complete or Release.
	Claimed ClaimState = iota + 1
	// InProgress: another delivery holds a live lease on the event.
	InProgress
	// Done: the event was processed.
	Done
)

// String names the state, for logs.
func (s ClaimState) String() string {
	switch s {
	case Claimed:
		return "claimed"
	case InProgress:
		return "in progress"
	case Done:
		return "done"
	}
	return fmt.Sprintf("ClaimState(%d)", int(s))
}

// ErrLeaseLost is returned by Deduper.Extend when the owner no longer holds
// the event.
var ErrLeaseLost = errors.New("webhook: lease lost")

// DefaultTimeout is how long Handler gives fn by default: fn's ctx ends
// after it, and it is the lease a delivery holds on its event.
const DefaultTimeout = 30 * time.Second

// Option configures Handler.
type Option func(*handler)

// WithSecrets adds secrets that also verify, for rotation: during the
// switch, sign with the new secret and accept both.
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
func WithMaxBodyBytes(n int64) Option {
	return func(h *handler) {
		if n > 0 {
			h.maxBody = n
		}
	}
}

// WithDeduper replaces the in-memory Deduper, e.g. with one shared by all
// replicas (redisstore.NewDeduper).
func WithDeduper(d Deduper) Option {
	return func(h *handler) {
		if d != nil {
			h.dedupe = d
		}
	}
}

// WithTimeout sets the handler's time limit (default DefaultTimeout): fn's
// ctx ends after d, and d is the lease a delivery holds on its event,
// renewed while fn runs. A process that crashes mid-event frees it after d;
// a redelivery that arrives before is answered 409 with Retry-After.
func WithTimeout(d time.Duration) Option {
	return func(h *handler) {
		if d > 0 {
			h.timeout = d
		}
	}
}

// WithLogger logs refused deliveries and failures of fn (never the secret).
func WithLogger(l *slog.Logger) Option {
	return func(h *handler) {
		if l != nil {
			h.log = l
		}
	}
}

// Delivery is what Handler did with one request, for an observer (see
// WithObserver). It holds no secret and no payer's detail.
type Delivery struct {
	// Result is what Handler did with the delivery.
	Result DeliveryResult
	// Reason says why a delivery was refused ("bad_signature",
	// "too_large", "unreadable", "unparsable", "method") or why fn failed
	// ("error", "panic").
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
	// DeliveryFailed: fn returned an error or panicked (500 or the panic).
	DeliveryFailed DeliveryResult = "failed"
)

// WithObserver tells observe about every delivery when Handler has answered
// it (package vpayotel turns this into metrics). observe runs on the
// request's goroutine: it must be quick.
func WithObserver(observe func(ctx context.Context, d Delivery)) Option {
	return func(h *handler) {
		if observe != nil {
			h.observe = observe
		}
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
}

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
// Retry-After (the first may still fail, so V-Pay must come back). Then it
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
	if len(h.secrets) == 0 {
		panic("webhook: Handler: empty webhook secret (is VPAY_WEBHOOK_SECRET set?); an endpoint without one can verify nothing")
	}
	if h.dedupe == nil {
		h.dedupe = NewMemoryDeduper(DefaultDedupeTTL)
	}
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
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.log.WarnContext(ctx, "vpay webhook: body too large", slog.Int64("limit", h.maxBody))
			refuse(http.StatusRequestEntityTooLarge, "too_large", "payload too large", err)
			return
		}
		refuse(http.StatusBadRequest, "unreadable", "bad request", err)
		return
	}
	if err := verifyAny(body, r.Header.Get(SignatureHeader), h.secrets); err != nil {
		h.log.WarnContext(ctx, "vpay webhook: refused", slog.String("reason", err.Error()))
		refuse(http.StatusUnauthorized, "bad_signature", "unauthorized", err)
		return
	}
	ev, err := vpay.ParseEvent(body)
	if err != nil {
		h.log.WarnContext(ctx, "vpay webhook: unparsable event", slog.String("error", err.Error()))
		refuse(http.StatusBadRequest, "unparsable", "bad request", err)
		return
	}
	d.EventType, d.Status = ev.Type, ev.Transaction.Status
	d.TransactionID, d.Reference = ev.Transaction.TransactionID, ev.Transaction.Reference
	key, owner := DedupeKey(ev), newOwner()
	state, err := h.dedupe.Claim(ctx, key, owner, h.timeout)
	if err != nil {
		// Better twice than never: the store is down, process anyway.
		h.log.WarnContext(ctx, "vpay webhook: deduper failed; processing anyway", slog.String("error", err.Error()))
		state = Claimed
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

// process runs fn on a claimed event under the handler's time limit,
// renewing the lease while fn runs (even past the limit, if fn ignores its
// ctx: a slow fn must never run twice), and settles the claim: Complete
// after success, Release after a failure or a panic.
func (h *handler) process(ctx context.Context, ev *vpay.Event, key, owner string) (err error) {
	bg := context.WithoutCancel(ctx) // settling must survive the request's end
	stop := make(chan struct{})
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(max(h.timeout/3, time.Millisecond)) // a ticker needs a positive period
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if err := h.dedupe.Extend(bg, key, owner, h.timeout); err != nil {
					h.log.WarnContext(ctx, "vpay webhook: cannot renew the lease on an event in progress",
						slog.String("key", key), slog.String("error", err.Error()))
				}
			}
		}
	}()
	succeeded := false
	defer func() {
		close(stop)
		<-renewed
		settle, what := h.dedupe.Release, "release"
		if succeeded {
			settle, what = h.dedupe.Complete, "complete"
		}
		// On a panic this runs before the panic goes on up the stack.
		if serr := settle(bg, key, owner); serr != nil {
			h.log.WarnContext(ctx, "vpay webhook: cannot "+what+" event", slog.String("key", key), slog.String("error", serr.Error()))
		}
	}()
	fctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	if err := h.fn(fctx, ev); err != nil {
		return err
	}
	succeeded = true
	return nil
}

// newOwner returns a random id for one delivery's claim.
func newOwner() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// DedupeKey identifies an event for de-duplication: the same transaction in
// the same status is the same event.
func DedupeKey(ev *vpay.Event) string {
	return fmt.Sprintf("%s:%s", ev.Transaction.TransactionID, ev.Transaction.Status)
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

// MemoryDeduper is the default Deduper: a map with a TTL, for one process.
// Behind several replicas, use a shared one (redisstore.NewDeduper).
type MemoryDeduper struct {
	ttl time.Duration
	now func() time.Time

	mu    sync.Mutex
	seen  map[string]claim
	sweep time.Time
}

type claim struct {
	owner string    // "" once done
	until time.Time // end of the lease, or of the TTL once done
}

// NewMemoryDeduper returns a Deduper that remembers a processed event for
// ttl (DefaultDedupeTTL when ttl is not positive).
func NewMemoryDeduper(ttl time.Duration) *MemoryDeduper {
	if ttl <= 0 {
		ttl = DefaultDedupeTTL
	}
	return &MemoryDeduper{ttl: ttl, now: time.Now, seen: make(map[string]claim)}
}

// Claim implements Deduper.
func (d *MemoryDeduper) Claim(_ context.Context, key, owner string, lease time.Duration) (ClaimState, error) {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if now.After(d.sweep) {
		// Drop expired keys now and then, so memory follows the traffic of
		// one TTL, not of the process's life.
		for k, c := range d.seen {
			if !now.Before(c.until) {
				delete(d.seen, k)
			}
		}
		d.sweep = now.Add(d.ttl / 10)
	}
	if c, ok := d.seen[key]; ok && now.Before(c.until) {
		if c.owner == "" {
			return Done, nil
		}
		return InProgress, nil
	}
	d.seen[key] = claim{owner: owner, until: now.Add(lease)}
	return Claimed, nil
}

// Extend implements Deduper.
func (d *MemoryDeduper) Extend(_ context.Context, key, owner string, lease time.Duration) error {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	c, ok := d.seen[key]
	if !ok || c.owner != owner {
		return ErrLeaseLost
	}
	c.until = now.Add(lease)
	d.seen[key] = c
	return nil
}

// Complete implements Deduper.
func (d *MemoryDeduper) Complete(_ context.Context, key, _ string) error {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seen[key] = claim{until: now.Add(d.ttl)}
	return nil
}

// Release implements Deduper.
func (d *MemoryDeduper) Release(_ context.Context, key, owner string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if c, ok := d.seen[key]; ok && c.owner == owner && owner != "" {
		delete(d.seen, key)
	}
	return nil
}
