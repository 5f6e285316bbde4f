package vpayotel_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/vpayotel"
)

// canned answers in memory, so that the benchmark measures the SDK and the
// instrumentation, not loopback.
type canned struct{}

func (canned) RoundTrip(r *http.Request) (*http.Response, error) {
	body := `{"status":"SUCCESSFUL","amount":"240.00","currency":"RWF","transaction_id":"VP86583387","external_id":"TXN_1"}`
	if strings.HasSuffix(r.URL.Path, "/auth/") {
		body = `{"access":"tok","refresh":"r","mode":"sandbox","expires_in":"3600.0 seconds"}`
	}
	return &http.Response{StatusCode: 200, Request: r, ContentLength: int64(len(body)),
		Header: http.Header{"Content-Type": {"application/json"}, "X-Ratelimit-Limit": {"100000000"}, "X-Ratelimit-Remaining": {"99999999"}},
		Body:   io.NopCloser(bytes.NewReader([]byte(body)))}, nil
}

// BenchmarkStatus is Status with no observer and with vpayotel on the
// OpenTelemetry SDK (every span sampled and recorded, metrics on a manual
// reader): the cost of the instrumentation, side by side.
//
//	cd vpayotel && go test -run XXX -bench Status -benchmem .
func BenchmarkStatus(b *testing.B) {
	newOtel := func(sample sdktrace.Sampler) []vpay.Option {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sample)) // spans are recorded, exported nowhere
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		in, err := vpayotel.New(vpayotel.WithTracerProvider(tp), vpayotel.WithMeterProvider(mp))
		if err != nil {
			b.Fatal(err)
		}
		return []vpay.Option{vpay.WithObserver(in.Observer())}
	}
	for _, bc := range []struct {
		name string
		opts func() []vpay.Option
	}{
		{"none", func() []vpay.Option { return nil }},
		{"vpayotel-sampled", func() []vpay.Option { return newOtel(sdktrace.AlwaysSample()) }},
		{"vpayotel-unsampled", func() []vpay.Option { return newOtel(sdktrace.NeverSample()) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			opts := append([]vpay.Option{vpay.WithHTTPClient(&http.Client{Transport: canned{}}), vpay.WithPlan(vpay.Plan{PerMinute: 1 << 30})}, bc.opts()...)
			c, err := vpay.NewClient("vpay_sandbox_u", "sk_sandbox_k", opts...)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Status(ctx, "VP86583387"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
