package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
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
// Implementations must be safe for concurrent use.
type Deduper interface {
	// Claim records key and returns true if it was not already recorded:
	// the caller processes the event. false means a delivery of the same
	// event was, or is being, processed.
	Claim(ctx context.Context, key string) (bool, error)
	// Release forgets key after processing failed, so that the next
	// delivery is processed.
	Release(ctx context.Context, key string) error
}

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

// WithLogger logs refused deliveries and failures of fn (never the secret).
func WithLogger(l *slog.Logger) Option {
	return func(h *handler) {
		if l != nil {
			h.log = l
		}
	}
}

type handler struct {
	secrets []string
	fn      func(context.Context, *vpay.Event) error
	maxBody int64
	dedupe  Deduper
	log     *slog.Logger
}

// Handler returns an http.Handler for V-Pay's webhooks. It reads the body
// once under a cap (413 past it), verifies X-VPay-Signature against secret
// (401 when missing or wrong), parses the event (400 when it cannot), skips
// an event already processed (200), and calls fn with the request's context:
// 500 when fn returns an error, so that V-Pay delivers again, 200 otherwise.
// Answers carry no detail.
func Handler(secret string, fn func(context.Context, *vpay.Event) error, opts ...Option) http.Handler {
	h := &handler{
		secrets: []string{secret},
		fn:      fn,
		maxBody: DefaultMaxBodyBytes,
		log:     slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		o(h)
	}
	if h.dedupe == nil {
		h.dedupe = NewMemoryDeduper(DefaultDedupeTTL)
	}
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	ctx := r.Context()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.log.WarnContext(ctx, "vpay webhook: body too large", slog.Int64("limit", h.maxBody))
			http.Error(w, "payload too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	if err := verifyAny(body, r.Header.Get(SignatureHeader), h.secrets); err != nil {
		h.log.WarnContext(ctx, "vpay webhook: refused", slog.String("reason", err.Error()))
		if errors.Is(err, ErrNoSecret) {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	ev, err := vpay.ParseEvent(body)
	if err != nil {
		h.log.WarnContext(ctx, "vpay webhook: unparsable event", slog.String("error", err.Error()))
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	key := DedupeKey(ev)
	fresh, err := h.dedupe.Claim(ctx, key)
	if err != nil {
		// Better twice than never: the store is down, process anyway.
		h.log.WarnContext(ctx, "vpay webhook: deduper failed; processing anyway", slog.String("error", err.Error()))
		fresh = true
	}
	if !fresh {
		h.log.DebugContext(ctx, "vpay webhook: duplicate delivery", slog.String("key", key))
		w.WriteHeader(http.StatusOK)
		return
	}
	if err := h.fn(ctx, ev); err != nil {
		if rerr := h.dedupe.Release(context.WithoutCancel(ctx), key); rerr != nil {
			h.log.WarnContext(ctx, "vpay webhook: cannot release event", slog.String("error", rerr.Error()))
		}
		h.log.ErrorContext(ctx, "vpay webhook: handler failed; V-Pay will deliver again",
			slog.String("transaction_id", ev.Transaction.TransactionID), slog.String("error", err.Error()))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
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
	seen  map[string]time.Time // key -> expiry
	sweep time.Time
}

// NewMemoryDeduper returns a Deduper that remembers keys for ttl.
func NewMemoryDeduper(ttl time.Duration) *MemoryDeduper {
	if ttl <= 0 {
		ttl = DefaultDedupeTTL
	}
	return &MemoryDeduper{ttl: ttl, now: time.Now, seen: make(map[string]time.Time)}
}

// Claim implements Deduper.
func (d *MemoryDeduper) Claim(_ context.Context, key string) (bool, error) {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if now.After(d.sweep) {
		// Drop expired keys now and then, so memory follows the traffic of
		// one TTL, not of the process's life.
		for k, exp := range d.seen {
			if now.After(exp) {
				delete(d.seen, k)
			}
		}
		d.sweep = now.Add(d.ttl / 10)
	}
	if exp, ok := d.seen[key]; ok && now.Before(exp) {
		return false, nil
	}
	d.seen[key] = now.Add(d.ttl)
	return true, nil
}

// Release implements Deduper.
func (d *MemoryDeduper) Release(_ context.Context, key string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.seen, key)
	return nil
}
