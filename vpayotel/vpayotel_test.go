package vpayotel_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/vpayotel"
	"github.com/vonsung/vpay-go/vpaytest"
	"github.com/vonsung/vpay-go/webhook"
)

type rig struct {
	spans   *tracetest.SpanRecorder
	metrics *sdkmetric.ManualReader
	in      *vpayotel.Instrumentation
}

func newRig(t *testing.T, opts ...vpayotel.Option) *rig {
	t.Helper()
	r := &rig{spans: tracetest.NewSpanRecorder(), metrics: sdkmetric.NewManualReader()}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(r.spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r.metrics))
	in, err := vpayotel.New(append([]vpayotel.Option{vpayotel.WithTracerProvider(tp), vpayotel.WithMeterProvider(mp)}, opts...)...)
	require.NoError(t, err)
	r.in = in
	return r
}

func (r *rig) collect(t *testing.T) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.metrics.Collect(context.Background(), &rm))
	return rm
}

func find(spans []sdktrace.ReadOnlySpan, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

func attr(kvs []attribute.KeyValue, k attribute.Key) (attribute.Value, bool) {
	for _, kv := range kvs {
		if kv.Key == k {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

const phone = "0781234567"

// payWithEverything makes a Pay whose first attempt gets a 502
// (NETWORK_ERROR), whose second gets a 429, and whose third succeeds, from
// a fresh client (so it fetches a token first); its webhook is delivered to
// a Handler observed by the same Instrumentation.
func payWithEverything(t *testing.T, r *rig) (*vpay.Payment, *vpaytest.Server) {
	t.Helper()
	s := vpaytest.NewServer(vpaytest.WithPaymentDelay(10 * time.Millisecond))
	t.Cleanup(s.Close)
	delivered := make(chan webhook.Delivery, 4)
	obs := r.in.WebhookObserver()
	h := webhook.Handler(s.WebhookSecret, func(context.Context, *vpay.Event) error { return nil },
		webhook.WithObserver(func(ctx context.Context, d webhook.Delivery) {
			obs(ctx, d)
			delivered <- d
		}))
	merchant := httptest.NewServer(h)
	t.Cleanup(merchant.Close)

	s.Inject("/pay/", vpaytest.Fault{Status: 502})
	s.Inject("/pay/", vpaytest.Fault{Status: 429})
	c := s.Client(vpay.WithObserver(r.in.Observer()))
	p, err := c.Pay(context.Background(), &vpay.PayRequest{
		Amount: 1500, Phone: phone, Reference: "order-1001", Description: "Order 1001",
		PayerName: "Aline Uwase", PayerEmail: "aline@example.rw", CallbackURL: merchant.URL,
	})
	require.NoError(t, err)
	select {
	case d := <-delivered:
		require.Equal(t, webhook.DeliveryVerified, d.Result)
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook delivered")
	}
	return p, s
}

func TestSpanTreeOfAPayWithARetryA429AndATokenFetch(t *testing.T) {
	r := newRig(t)
	payWithEverything(t, r)

	spans := r.spans.Ended()
	pays := find(spans, "vpay.pay")
	require.Len(t, pays, 1)
	pay := pays[0]
	assert.False(t, pay.Parent().IsValid(), "the operation is the root")
	out, _ := attr(pay.Attributes(), vpayotel.OutcomeKey)
	assert.Equal(t, "success", out.AsString())
	n, _ := attr(pay.Attributes(), vpayotel.AttemptsKey)
	assert.EqualValues(t, 3, n.AsInt64())

	token := find(spans, "vpay.token")
	require.Len(t, token, 1)
	assert.Equal(t, pay.SpanContext().SpanID(), token[0].Parent().SpanID(), "the token fetch is a child of the Pay that needed it")
	auth := find(spans, "POST /auth/")
	require.Len(t, auth, 1)
	assert.Equal(t, token[0].SpanContext().SpanID(), auth[0].Parent().SpanID())

	attempts := find(spans, "POST /pay/")
	require.Len(t, attempts, 3)
	var got []string
	for _, a := range attempts {
		assert.Equal(t, pay.SpanContext().SpanID(), a.Parent().SpanID(), "each attempt is a child of the operation")
		assert.Equal(t, "client", a.SpanKind().String())
		status, _ := attr(a.Attributes(), "http.response.status_code")
		resend, hasResend := attr(a.Attributes(), "http.request.resend_count")
		host, _ := attr(a.Attributes(), "server.address")
		port, _ := attr(a.Attributes(), "server.port")
		method, _ := attr(a.Attributes(), "http.request.method")
		assert.Equal(t, "127.0.0.1", host.AsString())
		assert.NotZero(t, port.AsInt64())
		assert.Equal(t, "POST", method.AsString())
		got = append(got, fmt.Sprintf("%d resend=%d/%t %s", status.AsInt64(), resend.AsInt64(), hasResend, a.Status().Code))
	}
	assert.Equal(t, []string{"502 resend=0/false Error", "429 resend=1/true Error", "200 resend=2/true Unset"}, got)

	var events []string
	for _, e := range pay.Events() {
		reason, _ := attr(e.Attributes, vpayotel.RetryReasonKey)
		if e.Name == "vpay.ratelimit.wait" {
			reason, _ = attr(e.Attributes, vpayotel.RateLimitReasonKey)
			wait, _ := attr(e.Attributes, vpayotel.WaitKey)
			assert.InDelta(t, 1.0, wait.AsFloat64(), 0.01, "the 429 said Retry-After: 1")
		}
		events = append(events, e.Name+" "+reason.AsString())
	}
	assert.Equal(t, []string{"vpay.retry network_error", "vpay.retry rate_limited", "vpay.ratelimit.wait throttled"}, events)
}

func TestMetricsOfAPayWithARetryA429AndATokenFetch(t *testing.T) {
	r := newRig(t)
	payWithEverything(t, r)
	rm := r.collect(t)
	m := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		assert.Equal(t, vpayotel.ScopeName, sm.Scope.Name)
		for _, x := range sm.Metrics {
			m[x.Name] = x.Data
		}
	}
	counts := func(name string) map[string]int64 {
		out := map[string]int64{}
		sum, ok := m[name].(metricdata.Sum[int64])
		require.True(t, ok, "%s is a sum: %T", name, m[name])
		for _, dp := range sum.DataPoints {
			out[dp.Attributes.Encoded(attribute.DefaultEncoder())] += dp.Value
		}
		return out
	}
	assert.Equal(t, map[string]int64{
		"vpay.operation=pay,vpay.retry.reason=network_error": 1,
		"vpay.operation=pay,vpay.retry.reason=rate_limited":  1,
	}, counts("vpay.client.retries"))
	assert.Equal(t, map[string]int64{"vpay.result=success": 1}, counts("vpay.client.token.refreshes"))
	assert.Equal(t, map[string]int64{"vpay.event.type=payment.successful,vpay.webhook.result=verified": 1}, counts("vpay.webhook.deliveries"))

	hist, ok := m["vpay.client.operation.duration"].(metricdata.Histogram[float64])
	require.True(t, ok)
	ops := map[string]uint64{}
	for _, dp := range hist.DataPoints {
		ops[dp.Attributes.Encoded(attribute.DefaultEncoder())] += dp.Count
		if v, _ := dp.Attributes.Value(vpayotel.OperationKey); v.AsString() == "pay" {
			assert.GreaterOrEqual(t, dp.Sum, 1.0, "the Pay took the 429's second")
		}
	}
	assert.Equal(t, map[string]uint64{"vpay.operation=pay,vpay.outcome=success": 1, "vpay.operation=token,vpay.outcome=success": 1}, ops)

	wait, ok := m["vpay.client.ratelimit.wait.duration"].(metricdata.Histogram[float64])
	require.True(t, ok)
	require.Len(t, wait.DataPoints, 1)
	assert.EqualValues(t, 1, wait.DataPoints[0].Count)
	assert.InDelta(t, 1.0, wait.DataPoints[0].Sum, 0.01)
	reason, _ := wait.DataPoints[0].Attributes.Value(vpayotel.RateLimitReasonKey)
	assert.Equal(t, "throttled", reason.AsString())

	gauge, ok := m["vpay.client.ratelimit.remaining"].(metricdata.Gauge[int64])
	require.True(t, ok)
	require.Len(t, gauge.DataPoints, 1)
	assert.Greater(t, gauge.DataPoints[0].Value, int64(0), "the emulator announces the requests left")
}

// every string in spans (names, attributes, events, status) and metrics
// (attribute sets) of a run.
func everything(t *testing.T, r *rig) string {
	var b strings.Builder
	for _, s := range r.spans.Ended() {
		fmt.Fprintln(&b, s.Name(), s.Status().Description)
		for _, kv := range s.Attributes() {
			fmt.Fprintln(&b, kv.Key, kv.Value.String())
		}
		for _, e := range s.Events() {
			fmt.Fprintln(&b, e.Name)
			for _, kv := range e.Attributes {
				fmt.Fprintln(&b, kv.Key, kv.Value.String())
			}
		}
	}
	rm := r.collect(t)
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			fmt.Fprintf(&b, "%s %+v\n", m.Name, m.Data)
		}
	}
	return b.String()
}

// TestNoAttributeHoldsAPayersDetailOrASecret scans every span, event and
// metric of a run that saw a refused phone number too.
func TestNoAttributeHoldsAPayersDetailOrASecret(t *testing.T) {
	r := newRig(t)
	p, s := payWithEverything(t, r)
	c := s.Client(vpay.WithObserver(r.in.Observer()))
	_, err := c.Pay(context.Background(), &vpay.PayRequest{Amount: 1500, Phone: "0731234567"}) // Airtel: refused
	require.Error(t, err)
	tok, err := c.Token(context.Background())
	require.NoError(t, err)
	all := everything(t, r)
	require.Contains(t, all, "invalid:PayRequest.Phone", "the refusal is recorded by its field")
	for _, secret := range []string{phone, "781234567", "0731234567", "731234567", "Aline", "aline@example.rw",
		s.APIKey, s.WebhookSecret, tok.AccessToken, tok.RefreshToken, "order-1001", p.TransactionID} {
		assert.NotContains(t, all, secret)
	}
}

func TestReferencesOnlyWhenOptedIn(t *testing.T) {
	r := newRig(t, vpayotel.WithReferences())
	p, _ := payWithEverything(t, r)
	pay := find(r.spans.Ended(), "vpay.pay")[0]
	ref, _ := attr(pay.Attributes(), vpayotel.ReferenceKey)
	id, _ := attr(pay.Attributes(), vpayotel.TransactionIDKey)
	assert.Equal(t, "order-1001", ref.AsString())
	assert.Equal(t, p.TransactionID, id.AsString())
	rm := r.collect(t)
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			assert.NotContains(t, fmt.Sprintf("%+v", m.Data), "order-1001", "never on a metric: one series per payment")
		}
	}
}

func TestWebhookRefusalsAreCounted(t *testing.T) {
	r := newRig(t)
	h := webhook.Handler("whsec_x", func(context.Context, *vpay.Event) error { return nil }, webhook.WithObserver(r.in.WebhookObserver()))
	for range 2 {
		req := httptest.NewRequest("POST", "/", strings.NewReader(`{"event":"payment.successful"}`))
		req.Header.Set(webhook.SignatureHeader, strings.Repeat("ab", 32))
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	rm := r.collect(t)
	var got []string
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "vpay.webhook.deliveries" {
				for _, dp := range sum.DataPoints {
					got = append(got, fmt.Sprintf("%s %d", dp.Attributes.Encoded(attribute.DefaultEncoder()), dp.Value))
				}
			}
		}
	}
	slices.Sort(got)
	assert.Equal(t, []string{"vpay.webhook.reason=bad_signature,vpay.webhook.result=refused 2"}, got)
}

// TestFailedTokenFetchAndDeclinedRetry: a refused key counts one failed
// refresh, and a declined retry is an event, not a retry.
func TestFailedTokenFetchAndDeclinedRetry(t *testing.T) {
	r := newRig(t)
	s := vpaytest.NewServer()
	t.Cleanup(s.Close)
	c, err := vpay.NewClient(s.APIUser, "sk_sandbox_wrong", vpay.WithBaseURL(s.URL), vpay.WithObserver(r.in.Observer()))
	require.NoError(t, err)
	_, err = c.Status(context.Background(), "VP1")
	require.Error(t, err)

	rm := r.collect(t)
	sums := map[string]string{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok {
				for _, dp := range sum.DataPoints {
					sums[m.Name] += fmt.Sprintf("%s=%d;", dp.Attributes.Encoded(attribute.DefaultEncoder()), dp.Value)
				}
			}
		}
	}
	assert.Equal(t, map[string]string{"vpay.client.token.refreshes": "vpay.result=failure=1;"}, sums, "no retry counted")
	token := find(r.spans.Ended(), "vpay.token")
	require.Len(t, token, 1)
	var events []string
	for _, e := range token[0].Events() {
		events = append(events, e.Name)
	}
	assert.Equal(t, []string{"vpay.retry.declined"}, events)
	assert.Equal(t, "Error", token[0].Status().Code.String())
}

// The event type comes from a signed body, but its values are not ours to
// bound: each distinct one must not become a metric series. The known
// types are kept, any other is "other".
func TestWebhookEventTypeAttributeIsBounded(t *testing.T) {
	r := newRig(t)
	h := webhook.Handler("whsec_x", func(context.Context, *vpay.Event) error { return nil }, webhook.WithObserver(r.in.WebhookObserver()))
	for i, ev := range []string{"payment.successful", "payment.refunded", "x1", "payment.weird", strings.Repeat("y", 200), "payment.successful"} {
		body := fmt.Sprintf(`{"event":%q,"transaction_id":"VP%d","status":"successful"}`, ev, i)
		req := httptest.NewRequest("POST", "/", strings.NewReader(body))
		req.Header.Set(webhook.SignatureHeader, webhook.Sign([]byte(body), "whsec_x"))
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	var got []string
	for _, sm := range r.collect(t).ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "vpay.webhook.deliveries" {
				for _, dp := range sum.DataPoints {
					v, _ := dp.Attributes.Value(vpayotel.EventTypeKey)
					got = append(got, fmt.Sprintf("%s %d", v.AsString(), dp.Value))
				}
			}
		}
	}
	slices.Sort(got)
	assert.Equal(t, []string{"other 3", "payment.refunded 1", "payment.successful 2"}, got)
}

// An event with no type of its own is counted without the attribute,
// never with an empty value (a series of its own): a body with neither
// event nor status, a blank event. A blank event with a status has the
// status's type, as ParseEvent gives it.
func TestWebhookEventWithoutATypeHasNoTypeAttribute(t *testing.T) {
	r := newRig(t)
	h := webhook.Handler("whsec_x", func(context.Context, *vpay.Event) error { return nil }, webhook.WithObserver(r.in.WebhookObserver()))
	for _, body := range []string{
		`{"transaction_id":"VP1"}`,
		`{"event":"","transaction_id":"VP2"}`,
		`{"event":"  ","transaction_id":"VP3"}`,
		`{"event":"","transaction_id":"VP4","status":"failed"}`,
	} {
		req := httptest.NewRequest("POST", "/", strings.NewReader(body))
		req.Header.Set(webhook.SignatureHeader, webhook.Sign([]byte(body), "whsec_x"))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		require.Equal(t, 200, w.Code, body)
	}
	var got []string
	for _, sm := range r.collect(t).ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "vpay.webhook.deliveries" {
				for _, dp := range sum.DataPoints {
					v, ok := dp.Attributes.Value(vpayotel.EventTypeKey)
					got = append(got, fmt.Sprintf("%t %q %d", ok, v.AsString(), dp.Value))
				}
			}
		}
	}
	slices.Sort(got)
	assert.Equal(t, []string{`false "" 3`, `true "payment.failed" 1`}, got)
}
