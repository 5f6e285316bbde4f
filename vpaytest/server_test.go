package vpaytest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/internal/testutil"
	"github.com/vonsung/vpay-go/vpaytest"
	"github.com/vonsung/vpay-go/webhook"
)

// raw sends a request the way the documentation's curl samples do.
func raw(t *testing.T, s *vpaytest.Server, method, path, token, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("apiUser", s.APIUser)
	req.Header.Set("apiKey", s.APIKey)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &out)
	return resp, out
}

func token(t *testing.T, s *vpaytest.Server) string {
	t.Helper()
	resp, out := raw(t, s, "POST", "auth/", "", "")
	require.Equal(t, 200, resp.StatusCode)
	return out["access"].(string)
}

func TestDocumentationCurlSamples(t *testing.T) {
	s := vpaytest.NewServer()
	defer s.Close()

	resp, auth := raw(t, s, "POST", "auth/", "", "")
	require.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "300.0 seconds", auth["expires_in"])
	assert.Equal(t, "sandbox", auth["mode"])
	assert.NotEmpty(t, auth["refresh"])
	assert.NotEmpty(t, resp.Header.Get("X-RateLimit-Limit"), "rate-limit headers on every response")

	// The documentation's Pay sample, with its placeholders filled in.
	body := `{ "amount": 1500, "currency": "RWF", "payer_name": "Payer full name", "payer_email": "payer@example.com",
		"payer_phone": "0790000000", "external_id": "TXNID_5473", "payee_message": "Short message",
		"send_receipt": true, "payment_method": "card" }`
	resp, pay := raw(t, s, "POST", "pay/", auth["access"].(string), body)
	require.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "PENNDING", pay["status"], "the documented spelling")
	assert.Contains(t, pay["payment_url"], "/checkout/")
	assert.Regexp(t, `^VP\d{8}$`, pay["transaction_id"])

	resp, st := raw(t, s, "GET", "transaction/status/?transaction_id="+pay["transaction_id"].(string), auth["access"].(string), "")
	require.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "1500.00", st["amount"], "amounts as the documentation shows them")
	assert.Equal(t, "250790000000", st["payer_phone"])
	assert.Equal(t, "TXNID_5473", st["external_id"])
}

func TestAuthAndTokens(t *testing.T) {
	s := vpaytest.NewServer(vpaytest.WithTokenLifetime(2 * time.Second))
	defer s.Close()
	req, _ := http.NewRequest("POST", s.URL+"auth/", nil)
	req.Header.Set("apiUser", s.APIUser)
	req.Header.Set("apiKey", "sk_sandbox_wrong")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 401, resp.StatusCode)

	_, out := raw(t, s, "POST", "auth/", "", "")
	assert.Equal(t, "2.0 seconds", out["expires_in"])

	resp, out = raw(t, s, "GET", "transaction/status/?transaction_id=VP1", "not-a-token", "")
	assert.Equal(t, 401, resp.StatusCode)
	assert.Equal(t, "INVALID_KEY", out["error_code"])

	tok := token(t, s)
	s.RevokeTokens()
	resp, _ = raw(t, s, "GET", "transaction/status/?transaction_id=VP1", tok, "")
	assert.Equal(t, 401, resp.StatusCode, "a revoked token is refused")
}

func TestPayValidationAndDuplicates(t *testing.T) {
	s := vpaytest.NewServer()
	defer s.Close()
	tok := token(t, s)
	tests := []struct {
		body   string
		status int
		code   string
	}{
		{`{"amount":50,"payer_phone":"0780000000","external_id":"a","payment_method":"mtnrw"}`, 400, "INVALID_AMOUNT"},
		{`{"amount":150.5,"payer_phone":"0780000000","external_id":"a","payment_method":"mtnrw"}`, 400, "INVALID_AMOUNT"},
		{`{"amount":500,"payer_phone":"0731234567","external_id":"a","payment_method":"mtnrw"}`, 400, "INVALID_PHONE"},
		{`{"amount":500,"payer_phone":"250780000000","external_id":"a","payment_method":"mtnrw"}`, 400, "INVALID_PHONE"},
		{`{"amount":500,"payer_phone":"0780000000","payment_method":"mtnrw"}`, 400, "INVALID_REQUEST"},
		{`{"amount":500,"payer_phone":"0780000004","external_id":"n","payment_method":"mtnrw"}`, 502, "NETWORK_ERROR"},
		{`{"amount":500,"payer_phone":"0780000000","external_id":"dup","payment_method":"mtnrw"}`, 200, ""},
		{`{"amount":900,"payer_phone":"0790000000","external_id":"dup","payment_method":"mtnrw"}`, 409, "DUPLICATE_REFERENCE"},
	}
	for _, tt := range tests {
		resp, out := raw(t, s, "POST", "pay/", tok, tt.body)
		assert.Equal(t, tt.status, resp.StatusCode, tt.body)
		if tt.code != "" {
			assert.Equal(t, "error", out["status"], tt.body)
			assert.Equal(t, tt.code, out["error_code"], tt.body)
		}
	}
	assert.Equal(t, 1, s.PaymentsFor("dup"))
	assert.Zero(t, s.PaymentsFor("n"), "a network error creates nothing")
}

func TestOutcomesByPhone(t *testing.T) {
	s := vpaytest.NewServer(vpaytest.WithPaymentDelay(10 * time.Millisecond))
	defer s.Close()
	c := s.Client()
	ctx := context.Background()
	tests := []struct {
		phone   string
		status  vpay.Status
		failure vpay.ErrorCode
	}{
		{vpaytest.PhoneSuccess, vpay.StatusSuccessful, ""},
		{vpaytest.PhoneSuccessAlt, vpay.StatusSuccessful, ""},
		{vpaytest.PhoneInsufficientFunds, vpay.StatusFailed, vpay.CodeInsufficientFunds},
		{vpaytest.PhoneTimeout, vpay.StatusFailed, vpay.CodePaymentTimeout},
		{vpaytest.PhoneCancelled, vpay.StatusFailed, ""},
	}
	for _, tt := range tests {
		p, err := c.Pay(ctx, &vpay.PayRequest{Amount: 1000, Phone: tt.phone})
		require.NoError(t, err, tt.phone)
		assert.Equal(t, vpay.StatusPending, p.Status)
		tx, err := c.Wait(ctx, p.TransactionID)
		require.NoError(t, err, tt.phone)
		assert.Equal(t, tt.status, tx.Status, tt.phone)
		assert.Equal(t, tt.failure, tx.FailureCode, tt.phone)
		assert.Equal(t, p.Reference, tx.Reference)
		assert.EqualValues(t, 1000, tx.Amount)
		assert.False(t, tx.TransactionDate.IsZero(), "the Kigali date parses")
	}
	_, err := c.Pay(ctx, &vpay.PayRequest{Amount: 1000, Phone: vpaytest.PhoneNetworkError})
	assert.ErrorIs(t, err, vpay.ErrNetworkError)
	assert.Equal(t, 1+vpay.DefaultMaxRetries, s.Requests("/pay/")-len(tests), "NETWORK_ERROR is retried")
}

func TestSynchronousPay(t *testing.T) {
	s := vpaytest.NewServer(vpaytest.WithSynchronousPay(), vpaytest.WithPaymentDelay(5*time.Millisecond))
	defer s.Close()
	c := s.Client()
	p, err := c.Pay(context.Background(), &vpay.PayRequest{Amount: 240, Phone: vpaytest.PhoneSuccess})
	require.NoError(t, err)
	assert.Equal(t, vpay.StatusSuccessful, p.Status)
	require.NotNil(t, p.Transaction, "the self-hosted MoMo shape carries the result")
	assert.EqualValues(t, 240, p.Transaction.Amount)

	_, err = c.Pay(context.Background(), &vpay.PayRequest{Amount: 240, Phone: vpaytest.PhoneInsufficientFunds})
	assert.ErrorIs(t, err, vpay.ErrInsufficientFunds, "an error body at HTTP 200 is an error")
	var e *vpay.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, 200, e.HTTPStatus)

	p, err = c.Pay(context.Background(), &vpay.PayRequest{Amount: 240, Phone: vpaytest.PhoneCancelled})
	require.NoError(t, err, "a cancelled payment is answered, not a panic")
	assert.Equal(t, vpay.StatusFailed, p.Status)
}

func TestRetainedTransactionsAreCapped(t *testing.T) {
	s := vpaytest.NewServer(vpaytest.WithMaxTransactions(3), vpaytest.WithPaymentDelay(time.Hour))
	defer s.Close()
	c := s.Client()
	var ids []string
	for i := range 5 {
		p, err := c.Pay(context.Background(), &vpay.PayRequest{Amount: 100, Phone: vpaytest.PhoneSuccess, Reference: "order-" + string(rune('a'+i))})
		require.NoError(t, err)
		ids = append(ids, p.TransactionID)
	}
	txs := s.Transactions()
	require.Len(t, txs, 3, "the oldest are forgotten past the cap")
	assert.Equal(t, ids[2], txs[0].TransactionID)
	assert.Zero(t, s.PaymentsFor("order-a"))
	assert.Equal(t, 1, s.PaymentsFor("order-e"))
	_, err := c.Status(context.Background(), ids[0])
	assert.Error(t, err, "a forgotten transaction is not found")
	_, err = c.Status(context.Background(), ids[4])
	assert.NoError(t, err)
	_, err = vpaytest.Start(vpaytest.WithMaxTransactions(0))
	assert.Error(t, err)
}

func TestUnknownPathsAreNotCounted(t *testing.T) {
	s := vpaytest.NewServer()
	defer s.Close()
	for _, p := range []string{"wp-admin/", "../etc/passwd", "pay/x", "auth/"} {
		resp, _ := raw(t, s, "POST", p, "", "")
		_ = resp
	}
	assert.Equal(t, 1, s.Requests("/auth/"))
	assert.Zero(t, s.Requests("/wp-admin/"))
	assert.Zero(t, s.Requests("/pay/x"))
}

func TestOldestTokenRevokedPastTheCap(t *testing.T) {
	s := vpaytest.NewServer()
	defer s.Close()
	first := token(t, s)
	for range 10000 {
		token(t, s)
	}
	resp, _ := raw(t, s, "GET", "transaction/status/?transaction_id=VP1", first, "")
	assert.Equal(t, 401, resp.StatusCode, "the oldest token made room")
	resp, _ = raw(t, s, "GET", "transaction/status/?transaction_id=VP1", token(t, s), "")
	assert.Equal(t, 404, resp.StatusCode, "a new token works")
}

func TestLinks(t *testing.T) {
	s := vpaytest.NewServer()
	defer s.Close()
	c := s.Client()
	l, err := c.CreateLink(context.Background(), &vpay.LinkRequest{Name: "Monthly fee (June)", Amount: 10000, Type: vpay.LinkMultiple})
	require.NoError(t, err)
	assert.Regexp(t, `^lnk_`, l.ID)
	assert.Regexp(t, `^monthly-fee-june-`, l.Slug)
	assert.True(t, l.Active)
	assert.Equal(t, vpay.LinkMultiple, l.Type)
	resp, err := http.Get(l.QRCodeURL)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, "image/png", resp.Header.Get("Content-Type"))
}

func TestWebhookRetriedUntil200(t *testing.T) {
	s := vpaytest.NewServer(vpaytest.WithPaymentDelay(time.Millisecond), vpaytest.WithWebhookRetries(5, time.Millisecond))
	defer s.Close()
	var attempts atomic.Int64
	got := make(chan *vpay.Event, 1)
	merchant := webhook.Handler(s.WebhookSecret, func(ctx context.Context, ev *vpay.Event) error {
		if attempts.Add(1) < 3 {
			return errors.New("database busy") // 500: V-Pay must deliver again
		}
		select {
		case got <- ev:
		default:
			t.Error("the event reached fn again after it succeeded")
		}
		return nil
	})
	hs := httpServer(t, merchant)
	c := s.Client()
	p, err := c.Pay(context.Background(), &vpay.PayRequest{Amount: 500, Phone: vpaytest.PhoneSuccess,
		CallbackURL: hs + "/hook", Metadata: map[string]string{"order": "77"}})
	require.NoError(t, err)
	ev := recv(t, got, "the webhook")
	assert.Equal(t, vpay.EventPaymentSuccessful, ev.Type)
	assert.Equal(t, p.TransactionID, ev.Transaction.TransactionID)
	assert.Equal(t, "77", ev.Transaction.Metadata["order"])
	require.Eventually(t, func() bool { _, ok := s.Webhook(p.TransactionID); return ok }, 5*time.Second, time.Millisecond)
	n, _ := s.Webhook(p.TransactionID)
	assert.Equal(t, 3, n)
}

func TestRateLimitPlan(t *testing.T) {
	s := vpaytest.NewServer(vpaytest.WithPlan(vpay.PlanStarter))
	defer s.Close()
	tok := token(t, s) // 1 of 20
	var last *http.Response
	for range 19 {
		last, _ = raw(t, s, "GET", "transaction/status/?transaction_id=VP1", tok, "")
	}
	assert.Equal(t, "0", last.Header.Get("X-RateLimit-Remaining"))
	resp, out := raw(t, s, "GET", "transaction/status/?transaction_id=VP1", tok, "")
	assert.Equal(t, 429, resp.StatusCode)
	assert.Equal(t, "RATE_LIMITED", out["error_code"])
	assert.NotEmpty(t, resp.Header.Get("Retry-After"))
	assert.Equal(t, 1, s.Throttled())
}

func TestSDKNeverEarns429FromThePlan(t *testing.T) {
	// Starter's 20 requests per window, with the window shortened to a
	// second so the test sees several.
	s := vpaytest.NewServer(vpaytest.WithPlan(vpay.PlanStarter), vpaytest.WithRateWindow(time.Second), vpaytest.WithPaymentDelay(time.Millisecond))
	defer s.Close()
	c := s.Client()
	for range 50 {
		_, err := c.Pay(context.Background(), &vpay.PayRequest{Amount: 100, Phone: vpaytest.PhoneSuccess})
		require.NoError(t, err)
	}
	assert.Zero(t, s.Throttled())
	assert.Len(t, s.Transactions(), 50)
}

func httpServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: time.Second}
	ln := listen(t)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

func TestTokensExpire(t *testing.T) {
	s := vpaytest.NewServer(vpaytest.WithTokenLifetime(50 * time.Millisecond))
	defer s.Close()
	tok := token(t, s)
	resp, _ := raw(t, s, "GET", "transaction/status/?transaction_id=VP1", tok, "")
	assert.Equal(t, 404, resp.StatusCode, "a fresh token is accepted (the id is unknown)")
	require.Eventually(t, func() bool {
		resp, _ := raw(t, s, "GET", "transaction/status/?transaction_id=VP1", tok, "")
		return resp.StatusCode == 401
	}, 5*time.Second, 10*time.Millisecond, "the token expires after its lifetime")

	// An SDK client whose token expired gets a new one instead of failing.
	c := s.Client()
	ctx := context.Background()
	_, err := c.Pay(ctx, &vpay.PayRequest{Amount: 100, Phone: vpaytest.PhoneSuccess})
	require.NoError(t, err)
	issued := s.AuthCalls()
	held, err := c.Token(ctx)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return time.Now().After(held.Expiry) }, 5*time.Second, 5*time.Millisecond)
	_, err = c.Pay(ctx, &vpay.PayRequest{Amount: 100, Phone: vpaytest.PhoneSuccess})
	require.NoError(t, err)
	assert.Greater(t, s.AuthCalls(), issued)
}

// recv is testutil.Recv.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	return testutil.Recv(t, ch, what)
}

func TestLostWebhooksResendAndLaterStatus(t *testing.T) {
	s := vpaytest.NewServer(vpaytest.WithPaymentDelay(time.Hour), vpaytest.WithWebhookRetries(5, time.Millisecond))
	defer s.Close()
	got := make(chan *vpay.Event, 4)
	hs := httpServer(t, webhook.Handler(s.WebhookSecret, func(ctx context.Context, ev *vpay.Event) error { got <- ev; return nil }))
	c := s.Client()
	p, err := c.Pay(context.Background(), &vpay.PayRequest{Amount: 500, Phone: vpaytest.PhoneSuccess, CallbackURL: hs + "/hook"})
	require.NoError(t, err)

	s.LoseWebhooks(1)
	s.Complete(p.TransactionID)
	assert.Equal(t, 1, s.WebhooksLost(p.TransactionID), "the webhook was lost, not sent")
	select {
	case ev := <-got:
		t.Fatalf("a lost webhook arrived: %+v", ev)
	default:
	}

	require.NoError(t, s.Resend(p.TransactionID))
	ev := recv(t, got, "the resent webhook")
	assert.Equal(t, vpay.EventPaymentSuccessful, ev.Type)

	s.LoseWebhooks(0)
	require.NoError(t, s.SetStatus(p.TransactionID, vpay.StatusRefunded))
	ev = recv(t, got, "the refund's webhook")
	assert.Equal(t, vpay.EventPaymentRefunded, ev.Type)
	assert.Equal(t, vpay.StatusRefunded, ev.Transaction.Status)
	tx, err := c.Status(context.Background(), p.TransactionID)
	require.NoError(t, err)
	assert.Equal(t, vpay.StatusRefunded, tx.Status)

	assert.Error(t, s.Resend("VP_NONE"))
	assert.Error(t, s.SetStatus("VP_NONE", vpay.StatusDisputed))
}

func TestDashboardWebhookURLGetsEveryWebhook(t *testing.T) {
	got := make(chan *vpay.Event, 4)
	// Every delivery, redeliveries included (no de-duplication here).
	hs := httpServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := webhook.VerifyRequest(r, "whsec_dash", 0)
		if err != nil {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		ev, err := vpay.ParseEvent(body)
		if err == nil {
			got <- ev
		}
	}))
	s := vpaytest.NewServer(vpaytest.WithCredentials("", "", "whsec_dash"), vpaytest.WithWebhookURL(hs+"/dashboard"),
		vpaytest.WithPaymentDelay(time.Millisecond))
	defer s.Close()
	p, err := s.Client().Pay(context.Background(), &vpay.PayRequest{Amount: 500, Phone: vpaytest.PhoneSuccess}) // no callback_url
	require.NoError(t, err)
	ev := recv(t, got, "the dashboard URL's webhook")
	assert.Equal(t, p.TransactionID, ev.Transaction.TransactionID)
	require.NoError(t, s.Resend(p.TransactionID))
	assert.Equal(t, p.TransactionID, recv(t, got, "the resent webhook").Transaction.TransactionID)
}
