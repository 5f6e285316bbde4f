// Package vpayotel reports what a vpay.Client and a webhook.Handler do to
// OpenTelemetry: a span per operation (Pay, Status, Wait, CreateLink, the
// token fetch) with a child span per HTTP attempt following the HTTP client
// semantic conventions, span events for retries, rate-limit waits and
// refusals, and these metrics:
//
//	vpay.client.operation.duration      histogram, s   vpay.operation, vpay.outcome
//	vpay.client.retries                 counter        vpay.operation, vpay.retry.reason
//	vpay.client.ratelimit.wait.duration histogram, s   vpay.operation, vpay.ratelimit.reason
//	vpay.client.ratelimit.remaining     gauge          (requests left in the window, last answer seen)
//	vpay.client.token.refreshes         counter        vpay.result (success, failure)
//	vpay.webhook.deliveries             counter        vpay.webhook.result, vpay.webhook.reason, vpay.event.type
//
// No attribute holds a phone number, a name, an email, a key, a token or a
// secret, nor the text of an error (which may quote a refused input); a
// merchant's reference and the transaction id only with WithReferences.
//
//	otelObs, err := vpayotel.New() // the global providers, or WithTracerProvider/WithMeterProvider
//	client, err := vpay.NewClient(user, key, vpay.WithObserver(otelObs.Observer()))
//	h := webhook.Handler(secret, fn, webhook.WithObserver(otelObs.WebhookObserver()))
package vpayotel

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/webhook"
)

// ScopeName is the instrumentation scope of the spans and metrics.
const ScopeName = "github.com/vonsung/vpay-go/vpayotel"

// Attribute keys of this package's own (the rest are semantic conventions).
const (
	OperationKey       = attribute.Key("vpay.operation")
	OutcomeKey         = attribute.Key("vpay.outcome")
	AttemptsKey        = attribute.Key("vpay.attempts")
	StatusKey          = attribute.Key("vpay.transaction.status")
	LowPriorityKey     = attribute.Key("vpay.low_priority")
	ReferenceKey       = attribute.Key("vpay.reference")
	TransactionIDKey   = attribute.Key("vpay.transaction_id")
	RequestIDKey       = attribute.Key("vpay.request_id")
	ErrorCodeKey       = attribute.Key("vpay.error_code")
	RetryReasonKey     = attribute.Key("vpay.retry.reason")
	RetryAgainKey      = attribute.Key("vpay.retry.again")
	WaitKey            = attribute.Key("vpay.wait_seconds")
	RateLimitReasonKey = attribute.Key("vpay.ratelimit.reason")
	RemainingKey       = attribute.Key("vpay.ratelimit.remaining")
	FieldKey           = attribute.Key("vpay.field")
	ResultKey          = attribute.Key("vpay.result")
	LifetimeKey        = attribute.Key("vpay.token.lifetime_seconds")
	WebhookResultKey   = attribute.Key("vpay.webhook.result")
	WebhookReasonKey   = attribute.Key("vpay.webhook.reason")
	EventTypeKey       = attribute.Key("vpay.event.type")
)

// Option configures New.
type Option func(*config)

type config struct {
	tp         trace.TracerProvider
	mp         metric.MeterProvider
	references bool
}

// WithTracerProvider sets the TracerProvider (default: otel's global one).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) {
		if tp != nil {
			c.tp = tp
		}
	}
}

// WithMeterProvider sets the MeterProvider (default: otel's global one).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) {
		if mp != nil {
			c.mp = mp
		}
	}
}

// WithReferences records the merchant's references and V-Pay's transaction
// ids on spans (never on metrics: one series per payment would swamp any
// backend). Off by default: a reference can be an order number a merchant
// considers private.
func WithReferences() Option { return func(c *config) { c.references = true } }

// Instrumentation turns a Client's and a webhook Handler's events into
// spans and metrics. One may serve several Clients; its ratelimit gauge
// then shows the last answer any of them saw.
type Instrumentation struct {
	tracer     trace.Tracer
	references bool

	opDuration metric.Float64Histogram
	retries    metric.Int64Counter
	rateWait   metric.Float64Histogram
	refreshes  metric.Int64Counter
	deliveries metric.Int64Counter

	remaining atomic.Int64 // -1 until an answer announced it

	// Metric attribute sets are few (operation × outcome, say): each is
	// built once, not on every measurement.
	mu   sync.RWMutex
	sets map[setKey]metric.MeasurementOption
}

type setKey struct {
	k1, v1, k2, v2 string
}

// attrs returns the measurement option for the attributes k1=v1, k2=v2.
func (in *Instrumentation) attrs(k1 attribute.Key, v1 string, k2 attribute.Key, v2 string) metric.MeasurementOption {
	key := setKey{string(k1), v1, string(k2), v2}
	in.mu.RLock()
	o, ok := in.sets[key]
	in.mu.RUnlock()
	if ok {
		return o
	}
	o = metric.WithAttributeSet(attribute.NewSet(k1.String(v1), k2.String(v2)))
	in.mu.Lock()
	if len(in.sets) < 4096 { // values come from small fixed sets; the cap is a guard
		in.sets[key] = o
	}
	in.mu.Unlock()
	return o
}

// New creates the instruments.
func New(opts ...Option) (*Instrumentation, error) {
	cfg := config{}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.tp == nil {
		cfg.tp = otel.GetTracerProvider()
	}
	if cfg.mp == nil {
		cfg.mp = otel.GetMeterProvider()
	}
	in := &Instrumentation{
		tracer:     cfg.tp.Tracer(ScopeName, trace.WithInstrumentationVersion(vpay.Version)),
		references: cfg.references,
		sets:       map[setKey]metric.MeasurementOption{},
	}
	in.remaining.Store(-1)
	m := cfg.mp.Meter(ScopeName, metric.WithInstrumentationVersion(vpay.Version))
	var err, e error
	// Buckets for calls that take from milliseconds to a MoMo prompt's
	// minutes (Wait).
	secs := metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
	in.opDuration, e = m.Float64Histogram("vpay.client.operation.duration", metric.WithUnit("s"), secs,
		metric.WithDescription("Duration of V-Pay operations (Pay, Status, Wait, CreateLink, token), by outcome."))
	err = errors.Join(err, e)
	in.retries, e = m.Int64Counter("vpay.client.retries", metric.WithUnit("{retry}"),
		metric.WithDescription("Requests sent again after a failed attempt, by reason."))
	err = errors.Join(err, e)
	in.rateWait, e = m.Float64Histogram("vpay.client.ratelimit.wait.duration", metric.WithUnit("s"), secs,
		metric.WithDescription("Time spent waiting for the V-Pay rate limit."))
	err = errors.Join(err, e)
	in.refreshes, e = m.Int64Counter("vpay.client.token.refreshes", metric.WithUnit("{refresh}"),
		metric.WithDescription("Access token fetches from POST /auth/, by result."))
	err = errors.Join(err, e)
	in.deliveries, e = m.Int64Counter("vpay.webhook.deliveries", metric.WithUnit("{delivery}"),
		metric.WithDescription("Webhook deliveries answered, by result."))
	err = errors.Join(err, e)
	_, e = m.Int64ObservableGauge("vpay.client.ratelimit.remaining", metric.WithUnit("{request}"),
		metric.WithDescription("Requests left in the rate-limit window, as the last answer announced."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			if v := in.remaining.Load(); v >= 0 {
				o.Observe(v)
			}
			return nil
		}))
	err = errors.Join(err, e)
	if err != nil {
		return nil, err
	}
	return in, nil
}

// Observer returns the vpay.Observer to give vpay.WithObserver.
func (in *Instrumentation) Observer() *vpay.Observer {
	return &vpay.Observer{
		OperationStart: in.operationStart,
		OperationEnd:   in.operationEnd,
		AttemptStart:   in.attemptStart,
		AttemptEnd:     in.attemptEnd,
		Retry:          in.retry,
		RateLimitWait:  in.rateLimitWait,
		Refused:        in.refused,
		TokenRefresh:   in.tokenRefresh,
	}
}

func (in *Instrumentation) operationStart(ctx context.Context, op vpay.Operation) context.Context {
	var buf [3]attribute.KeyValue // on the stack unless the SDK keeps it
	attrs := append(buf[:0], OperationKey.String(string(op.Op)))
	if op.LowPriority {
		attrs = append(attrs, LowPriorityKey.Bool(true))
	}
	if in.references {
		if op.Reference != "" {
			attrs = append(attrs, ReferenceKey.String(op.Reference))
		}
		if op.TransactionID != "" {
			attrs = append(attrs, TransactionIDKey.String(op.TransactionID))
		}
	}
	ctx, _ = in.tracer.Start(ctx, "vpay."+string(op.Op), trace.WithTimestamp(op.Start), trace.WithAttributes(attrs...))
	return ctx
}

func (in *Instrumentation) operationEnd(ctx context.Context, r vpay.OperationResult) {
	outcome := r.Outcome()
	in.opDuration.Record(ctx, r.Duration.Seconds(), in.attrs(OperationKey, string(r.Op), OutcomeKey, string(outcome)))
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		span.End()
		return
	}
	span.SetAttributes(OutcomeKey.String(string(outcome)), AttemptsKey.Int(r.Attempts))
	if r.Status != "" {
		span.SetAttributes(StatusKey.String(string(r.Status)))
	}
	if in.references {
		// Pay learns both only from the answer.
		if r.Reference != "" {
			span.SetAttributes(ReferenceKey.String(r.Reference))
		}
		if r.TransactionID != "" {
			span.SetAttributes(TransactionIDKey.String(r.TransactionID))
		}
	}
	if r.Err != nil {
		et := errorType(r.Err)
		span.SetAttributes(semconv.ErrorTypeKey.String(et))
		// The kind, never the text: it may quote a refused phone number.
		span.SetStatus(codes.Error, string(outcome)+": "+et)
	}
	span.End(trace.WithTimestamp(r.Start.Add(r.Duration)))
}

func (in *Instrumentation) attemptStart(ctx context.Context, a vpay.Attempt) context.Context {
	host, port := splitHostPort(a.Host, a.URL)
	ctx, _ = in.tracer.Start(ctx, a.Method+" "+a.Path,
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithTimestamp(a.Start),
		trace.WithAttributes(
			semconv.HTTPRequestMethodKey.String(a.Method),
			semconv.ServerAddress(host),
			semconv.ServerPort(port),
			semconv.URLFull(a.URL),
			semconv.URLTemplate(a.Path),
			OperationKey.String(string(a.Op)),
		))
	if a.Resend > 0 {
		trace.SpanFromContext(ctx).SetAttributes(semconv.HTTPRequestResendCount(a.Resend))
	}
	return ctx
}

func (in *Instrumentation) attemptEnd(ctx context.Context, r vpay.AttemptResult) {
	if r.RateLimit.Limit > 0 {
		in.remaining.Store(int64(r.RateLimit.Remaining))
	}
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		span.End()
		return
	}
	if r.HTTPStatus > 0 {
		span.SetAttributes(semconv.HTTPResponseStatusCode(r.HTTPStatus))
	}
	if r.RequestID != "" {
		span.SetAttributes(RequestIDKey.String(r.RequestID))
	}
	if r.Code != "" {
		span.SetAttributes(ErrorCodeKey.String(string(r.Code)))
	}
	if r.RateLimit.Limit > 0 {
		span.SetAttributes(RemainingKey.Int(r.RateLimit.Remaining))
	}
	if r.Err != nil {
		et := "no_answer"
		switch {
		case r.HTTPStatus >= 400:
			et = strconv.Itoa(r.HTTPStatus)
		case r.Code != "":
			et = string(r.Code)
		case r.HTTPStatus > 0:
			et = "unreadable_answer"
		}
		span.SetAttributes(semconv.ErrorTypeKey.String(et))
		span.SetStatus(codes.Error, et)
	}
	span.End(trace.WithTimestamp(r.Start.Add(r.Duration)))
}

func (in *Instrumentation) retry(ctx context.Context, r vpay.RetryDecision) {
	attrs := []attribute.KeyValue{
		RetryReasonKey.String(string(r.Reason)),
		RetryAgainKey.Bool(r.Again),
		WaitKey.Float64(r.Wait.Seconds()),
	}
	if r.HTTPStatus > 0 {
		attrs = append(attrs, semconv.HTTPResponseStatusCode(r.HTTPStatus))
	}
	name := "vpay.retry"
	if !r.Again {
		name = "vpay.retry.declined"
	}
	trace.SpanFromContext(ctx).AddEvent(name, trace.WithAttributes(attrs...))
	if r.Again {
		in.retries.Add(ctx, 1, in.attrs(OperationKey, string(r.Op), RetryReasonKey, string(r.Reason)))
	}
}

func (in *Instrumentation) rateLimitWait(ctx context.Context, w vpay.RateLimitWait) {
	trace.SpanFromContext(ctx).AddEvent("vpay.ratelimit.wait", trace.WithAttributes(
		RateLimitReasonKey.String(string(w.Reason)), WaitKey.Float64(w.Duration.Seconds())))
	in.rateWait.Record(ctx, w.Duration.Seconds(), in.attrs(OperationKey, string(w.Op), RateLimitReasonKey, string(w.Reason)))
}

func (in *Instrumentation) refused(ctx context.Context, r vpay.Refusal) {
	attrs := []attribute.KeyValue{semconv.ErrorTypeKey.String(errorType(r.Err))}
	if r.Field != "" {
		attrs = append(attrs, FieldKey.String(r.Field))
	}
	trace.SpanFromContext(ctx).AddEvent("vpay.refused", trace.WithAttributes(attrs...))
}

func (in *Instrumentation) tokenRefresh(ctx context.Context, t vpay.TokenRefresh) {
	result := "success"
	if t.Err != nil {
		result = "failure"
	} else {
		trace.SpanFromContext(ctx).SetAttributes(LifetimeKey.Float64(t.Lifetime.Seconds()))
	}
	in.refreshes.Add(ctx, 1, metric.WithAttributes(ResultKey.String(result)))
}

// WebhookObserver returns the function to give webhook.WithObserver: it
// counts deliveries and adds an event to the request's span, if a
// server instrumentation (otelhttp) made one.
func (in *Instrumentation) WebhookObserver() func(context.Context, webhook.Delivery) {
	return func(ctx context.Context, d webhook.Delivery) {
		attrs := []attribute.KeyValue{WebhookResultKey.String(string(d.Result))}
		if d.Reason != "" {
			attrs = append(attrs, WebhookReasonKey.String(d.Reason))
		}
		if d.EventType != "" {
			attrs = append(attrs, EventTypeKey.String(eventType(d.EventType)))
		}
		in.deliveries.Add(ctx, 1, metric.WithAttributes(attrs...))
		if span := trace.SpanFromContext(ctx); span.IsRecording() {
			attrs = append(attrs, semconv.HTTPResponseStatusCode(d.HTTPStatus))
			if in.references && d.TransactionID != "" {
				attrs = append(attrs, TransactionIDKey.String(d.TransactionID), ReferenceKey.String(d.Reference))
			}
			span.AddEvent("vpay.webhook.delivery", trace.WithAttributes(attrs...))
		}
	}
}

// eventType is an event's type as a metric attribute: one of the known
// types, or "other". The value comes from the body, and each distinct one
// would be a metric series of its own.
func eventType(t vpay.EventType) string {
	switch t {
	case vpay.EventPaymentPending, vpay.EventPaymentSuccessful, vpay.EventPaymentFailed,
		vpay.EventPaymentCancelled, vpay.EventPaymentRefunded, vpay.EventPaymentDisputed:
		return string(t)
	}
	return "other"
}

// errorType names an error's kind, never its text: the invalid field, the
// API's error code, the HTTP status, or the sentinel it matches.
func errorType(err error) string {
	var ve *vpay.ValidationError
	var e *vpay.Error
	switch {
	case errors.As(err, &ve):
		return "invalid:" + ve.Field
	case errors.Is(err, vpay.ErrOutcomeUnknown):
		return "outcome_unknown"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline_exceeded"
	case errors.As(err, &e) && e.Code != "":
		return string(e.Code)
	case errors.As(err, &e) && e.HTTPStatus != 0:
		return strconv.Itoa(e.HTTPStatus)
	}
	return "error"
}

// splitHostPort splits "host:port", taking the scheme's port when the
// base URL named none.
func splitHostPort(hostport, url string) (string, int) {
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
		if len(url) >= 5 && url[:5] == "http:" {
			return host, 80
		}
		return host, 443
	}
	port, _ := strconv.Atoi(p)
	return host, port
}
