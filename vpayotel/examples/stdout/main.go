// Command stdout wires vpayotel to OpenTelemetry's stdout exporters and
// makes one payment against the built-in sandbox, with a failed first
// attempt and a 429 on the way, so the spans and metrics it prints show
// retries, a rate-limit wait and a webhook delivery:
//
//	cd vpayotel && go run ./examples/stdout
package main

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"os"
	"time"

	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/vpayotel"
	"github.com/vonsung/vpay-go/vpaytest"
	"github.com/vonsung/vpay-go/webhook"
)

func main() {
	if err := run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	spans, err := stdouttrace.New(stdouttrace.WithPrettyPrint())
	if err != nil {
		return err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	defer func() { _ = tp.Shutdown(ctx) }()
	metrics, err := stdoutmetric.New(stdoutmetric.WithPrettyPrint())
	if err != nil {
		return err
	}
	reader := sdkmetric.NewPeriodicReader(metrics, sdkmetric.WithInterval(time.Hour)) // exported once, at Shutdown
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(ctx) }()

	otelObs, err := vpayotel.New(vpayotel.WithTracerProvider(tp), vpayotel.WithMeterProvider(mp))
	if err != nil {
		return err
	}

	sandbox := vpaytest.NewServer(vpaytest.WithPaymentDelay(200 * time.Millisecond))
	defer sandbox.Close()
	sandbox.Inject("/pay/", vpaytest.Fault{Status: 502})
	sandbox.Inject("/pay/", vpaytest.Fault{Status: 429})

	done := make(chan struct{})
	shop := httptest.NewServer(webhook.Handler(sandbox.WebhookSecret,
		func(_ context.Context, ev *vpay.Event) error {
			fmt.Fprintln(os.Stderr, "webhook:", ev.Type, ev.Transaction.TransactionID)
			close(done)
			return nil
		},
		webhook.WithObserver(otelObs.WebhookObserver())))
	defer shop.Close()

	client, err := vpay.NewClient(sandbox.APIUser, sandbox.APIKey,
		vpay.WithBaseURL(sandbox.URL), vpay.WithObserver(otelObs.Observer()))
	if err != nil {
		return err
	}
	p, err := client.Pay(ctx, &vpay.PayRequest{Amount: 1500, Phone: "0781234567", CallbackURL: shop.URL})
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "paid:", p.TransactionID, p.Status)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("no webhook")
	}
	return nil
}
