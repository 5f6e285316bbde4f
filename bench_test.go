package vpay

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkPay runs the same payment through the SDK and through a
// hand-written net/http + encoding/json call against one local server, so
// the SDK's overhead (validation, token, limiter, lenient decoding) shows
// as the ratio of the two.
func BenchmarkPay(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/auth/" {
			writeJSON(w, 200, `{"access":"tok","refresh":"r","mode":"sandbox","expires_in":"300.0 seconds"}`)
			return
		}
		w.Header().Set("X-RateLimit-Limit", "1000000")
		w.Header().Set("X-RateLimit-Remaining", "999999")
		writeJSON(w, 200, `{"status":"PENNDING","message":"Prompt sent","transaction_id":"VP86583387","merchant":"VONSUNG"}`)
	}))
	defer srv.Close()
	ctx := context.Background()

	b.Run("sdk", func(b *testing.B) {
		c, err := NewClient(testUser, testKey, WithBaseURL(srv.URL), WithPlan(Plan{PerMinute: 1 << 30}))
		if err != nil {
			b.Fatal(err)
		}
		req := &PayRequest{Amount: 1500, Phone: "0780000000", Reference: "order-1", Description: "Order 1"}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Pay(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("raw", func(b *testing.B) {
		hc := &http.Client{}
		b.ReportAllocs()
		for b.Loop() {
			body, _ := json.Marshal(map[string]any{
				"amount": 1500, "currency": "RWF", "payment_method": "mtnrw", "payer_phone": "0780000000",
				"external_id": "order-1", "payee_message": "Order 1",
			})
			req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/pay/", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer tok")
			req.Header.Set("apiUser", testUser)
			req.Header.Set("apiKey", testKey)
			req.Header.Set("Content-Type", "application/json")
			resp, err := hc.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			var out struct {
				Status        string `json:"status"`
				TransactionID string `json:"transaction_id"`
			}
			err = json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if err != nil || out.TransactionID == "" {
				b.Fatal(err)
			}
		}
	})
}
