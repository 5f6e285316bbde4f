package webhook_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/webhook"
)

func ExampleVerify() {
	body := []byte(`{"event":"payment.successful","transaction_id":"VP1","status":"successful"}`)
	sig := webhook.Sign(body, "whsec_demo") // what V-Pay sends in X-VPay-Signature

	fmt.Println(webhook.Verify(body, sig, "whsec_demo"))
	fmt.Println(webhook.Verify(body, sig, "whsec_wrong"))
	// Output:
	// <nil>
	// webhook: signature does not match
}

func ExampleConstructEvent() {
	// In a handler of your own router: read the raw body, then verify and
	// parse it in one step. Handler does this (and de-duplication) for you.
	handle := func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, webhook.DefaultMaxBodyBytes))
		if err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		ev, err := webhook.ConstructEvent(body, r.Header.Get(webhook.SignatureHeader), "whsec_demo")
		if err != nil {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		fmt.Println(ev.Type, ev.Transaction.TransactionID, ev.Transaction.Status)
	}

	body := `{"event":"payment.failed","transaction_id":"VP2","status":"failed","failure_code":"INSUFFICIENT_FUNDS"}`
	for _, sig := range []string{webhook.Sign([]byte(body), "whsec_demo"), webhook.Sign([]byte(body), "whsec_forged")} {
		req := httptest.NewRequest(http.MethodPost, "/webhooks/vpay", strings.NewReader(body))
		req.Header.Set(webhook.SignatureHeader, sig)
		w := httptest.NewRecorder()
		handle(w, req)
		fmt.Println(w.Code)
	}
	// Output:
	// payment.failed VP2 failed
	// 200
	// 401
}

func ExampleHandler() {
	h := webhook.Handler("whsec_demo", func(ctx context.Context, ev *vpay.Event) error {
		fmt.Println(ev.Type, ev.Transaction.TransactionID, ev.Transaction.Reference)
		return nil
	})

	body := `{"event":"payment.successful","transaction_id":"VP1","status":"successful","external_id":"order-7"}`
	for range 2 { // the second delivery is a duplicate and does not reach fn
		req := httptest.NewRequest(http.MethodPost, "/webhooks/vpay", strings.NewReader(body))
		req.Header.Set(webhook.SignatureHeader, webhook.Sign([]byte(body), "whsec_demo"))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		fmt.Println(w.Code)
	}
	// Output:
	// payment.successful VP1 order-7
	// 200
	// 200
}
