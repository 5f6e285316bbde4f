package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vonsung/vpay-go"
)

const (
	secret  = "whsec_test_secret"
	payload = `{"event":"payment.successful","transaction_id":"VP86583387","status":"successful","amount":"240.00","external_id":"TXN_TDTAGD1HFJS"}`
	// pythonSig is what the documentation's Python verifier computes for
	// payload under secret:
	//   hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()
	pythonSig = "ceed4880aa7a1b81358c1e8a7a06cb32afb5398673f47f1fe40f30b04695c3e1"
)

// docReference is the documentation's Python algorithm, line for line.
func docReference(body []byte, sig, secret string) bool {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	expected := hex.EncodeToString(m.Sum(nil))
	return hmac.Equal([]byte(expected), []byte(sig))
}

func TestSignMatchesDocumentation(t *testing.T) {
	assert.Equal(t, pythonSig, Sign([]byte(payload), secret))
	assert.True(t, docReference([]byte(payload), Sign([]byte(payload), secret), secret))
}

func TestVerify(t *testing.T) {
	body := []byte(payload)
	tests := []struct {
		name         string
		body         []byte
		sig, secret  string
		want         error
		docAgreesNil bool
	}{
		{"valid", body, pythonSig, secret, nil, true},
		{"upper-case hex", body, strings.ToUpper(pythonSig), secret, nil, false},
		{"sha256= prefix", body, "sha256=" + pythonSig, secret, nil, false},
		{"tampered body", bytes.Replace(body, []byte("240.00"), []byte("24000.00"), 1), pythonSig, secret, ErrNoValidSignature, false},
		{"re-encoded JSON", []byte(strings.ReplaceAll(payload, ",", ", ")), pythonSig, secret, ErrNoValidSignature, false},
		{"wrong secret", body, pythonSig, "whsec_other", ErrNoValidSignature, false},
		{"truncated signature", body, pythonSig[:63], secret, ErrMalformedSignature, false},
		{"non-hex signature", body, strings.Repeat("zz", 32), secret, ErrMalformedSignature, false},
		{"missing signature", body, "", secret, ErrNotSigned, false},
		{"empty secret", body, Sign(body, ""), "", ErrNoSecret, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.body, tt.sig, tt.secret)
			if tt.want == nil {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, tt.want)
				assert.NotContains(t, err.Error(), secret)
			}
			if tt.docAgreesNil {
				assert.True(t, docReference(tt.body, tt.sig, tt.secret))
			}
		})
	}
}

func TestConstructEvent(t *testing.T) {
	ev, err := ConstructEvent([]byte(payload), pythonSig, secret)
	require.NoError(t, err)
	assert.Equal(t, vpay.EventPaymentSuccessful, ev.Type)
	assert.Equal(t, "VP86583387", ev.Transaction.TransactionID)
	assert.Equal(t, "TXN_TDTAGD1HFJS", ev.Transaction.Reference)
	assert.EqualValues(t, 240, ev.Transaction.Amount)
	assert.JSONEq(t, payload, string(ev.Raw))

	_, err = ConstructEvent([]byte(payload), pythonSig, "whsec_other")
	assert.ErrorIs(t, err, ErrNoValidSignature)

	for body, want := range map[string]vpay.EventType{
		`{"transaction_id":"VP1","status":"FAILED"}`:                        vpay.EventPaymentFailed,
		`{"transaction_id":"VP1","status":"PENNDING"}`:                      vpay.EventPaymentPending,
		`{"transaction_id":"VP1","event":"payout.sent","status":"x","y":1}`: vpay.EventType("payout.sent"),
	} {
		ev, err := ConstructEvent([]byte(body), Sign([]byte(body), secret), secret)
		require.NoError(t, err, body)
		assert.Equal(t, want, ev.Type, body)
	}
}

type recorder struct {
	mu     sync.Mutex
	events []*vpay.Event
	fail   atomic.Bool
}

func (r *recorder) fn(_ context.Context, ev *vpay.Event) error {
	if r.fail.Load() {
		return errors.New("database down")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	return nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

func deliver(h http.Handler, body, sig string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", "/webhooks/vpay", strings.NewReader(body))
	if sig != "" {
		req.Header.Set(SignatureHeader, sig)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestHandlerPaths(t *testing.T) {
	rec := &recorder{}
	h := Handler(secret, rec.fn, WithMaxBodyBytes(4096))

	w := deliver(h, payload, pythonSig)
	assert.Equal(t, 200, w.Code)
	assert.Equal(t, 1, rec.count())

	w = deliver(h, payload, "")
	assert.Equal(t, 401, w.Code)
	w = deliver(h, payload, Sign([]byte(payload), "whsec_other"))
	assert.Equal(t, 401, w.Code)
	assert.NotContains(t, w.Body.String(), "signature", "no detail that helps an attacker")

	big := `{"transaction_id":"VP1","pad":"` + strings.Repeat("x", 5000) + `"}`
	w = deliver(h, big, Sign([]byte(big), secret))
	assert.Equal(t, 413, w.Code)

	junk := `not json`
	w = deliver(h, junk, Sign([]byte(junk), secret))
	assert.Equal(t, 400, w.Code)
	noID := `{"status":"successful"}`
	w = deliver(h, noID, Sign([]byte(noID), secret))
	assert.Equal(t, 400, w.Code)

	req := httptest.NewRequest("GET", "/webhooks/vpay", nil)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, req)
	assert.Equal(t, 405, w.Code)
	assert.Equal(t, 1, rec.count(), "only the valid delivery reached fn")
}

func TestHandlerDeduplicatesAndRetriesFailures(t *testing.T) {
	rec := &recorder{}
	h := Handler(secret, rec.fn)

	rec.fail.Store(true)
	assert.Equal(t, 500, deliver(h, payload, pythonSig).Code, "a failing fn makes V-Pay deliver again")
	rec.fail.Store(false)
	assert.Equal(t, 200, deliver(h, payload, pythonSig).Code, "the redelivery after a failure is processed")
	assert.Equal(t, 1, rec.count())

	for range 5 {
		assert.Equal(t, 200, deliver(h, payload, pythonSig).Code)
	}
	assert.Equal(t, 1, rec.count(), "a redelivered event reaches fn once")

	// The same transaction in a new status is a new event.
	refunded := strings.Replace(payload, `"status":"successful"`, `"status":"refunded"`, 1)
	refunded = strings.Replace(refunded, `"event":"payment.successful"`, `"event":"payment.refunded"`, 1)
	assert.Equal(t, 200, deliver(h, refunded, Sign([]byte(refunded), secret)).Code)
	assert.Equal(t, 2, rec.count())
}

func TestHandlerConcurrentDuplicates(t *testing.T) {
	rec := &recorder{}
	h := Handler(secret, rec.fn)
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() { defer wg.Done(); deliver(h, payload, pythonSig) }()
	}
	wg.Wait()
	assert.Equal(t, 1, rec.count())
}

func TestHandlerSecretRotation(t *testing.T) {
	rec := &recorder{}
	h := Handler("whsec_new", rec.fn, WithSecrets(secret))
	assert.Equal(t, 200, deliver(h, payload, pythonSig).Code, "the old secret still verifies")
	other := `{"transaction_id":"VP2","status":"successful"}`
	assert.Equal(t, 200, deliver(h, other, Sign([]byte(other), "whsec_new")).Code)
	assert.Equal(t, 401, deliver(h, other, Sign([]byte(other), "whsec_retired")).Code)
	assert.Equal(t, 2, rec.count())

	// An empty extra secret (an unset environment variable) is ignored.
	h = Handler(secret, rec.fn, WithSecrets(""), WithDeduper(NewMemoryDeduper(time.Hour)))
	assert.Equal(t, 200, deliver(h, payload, pythonSig).Code)
}

func TestHandlerPassesRequestContext(t *testing.T) {
	type key struct{}
	var got any
	h := Handler(secret, func(ctx context.Context, ev *vpay.Event) error { got = ctx.Value(key{}); return nil })
	req := httptest.NewRequest("POST", "/", strings.NewReader(payload))
	req.Header.Set(SignatureHeader, pythonSig)
	req = req.WithContext(context.WithValue(req.Context(), key{}, "trace-1"))
	h.ServeHTTP(httptest.NewRecorder(), req)
	assert.Equal(t, "trace-1", got)
}

func TestVerifyRequestLeavesBodyReadable(t *testing.T) {
	req := httptest.NewRequest("POST", "/", strings.NewReader(payload))
	req.Header.Set(SignatureHeader, pythonSig)
	body, err := VerifyRequest(req, secret, 0)
	require.NoError(t, err)
	assert.Equal(t, payload, string(body))
	again, err := io.ReadAll(req.Body)
	require.NoError(t, err)
	assert.Equal(t, payload, string(again), "the next handler still sees the body")

	req = httptest.NewRequest("POST", "/", strings.NewReader(payload))
	req.Header.Set(SignatureHeader, pythonSig)
	_, err = VerifyRequest(req, "whsec_other", 0)
	assert.ErrorIs(t, err, ErrNoValidSignature)
	_, err = VerifyRequest(httptest.NewRequest("POST", "/", strings.NewReader(payload)), secret, 10)
	var tooBig *http.MaxBytesError
	assert.ErrorAs(t, err, &tooBig)
}

func FuzzVerify(f *testing.F) {
	f.Add([]byte(payload), pythonSig, secret)
	f.Add([]byte(""), "", "")
	f.Add([]byte("{}"), strings.ToUpper(pythonSig), "k")
	f.Fuzz(func(t *testing.T, body []byte, sig, key string) {
		if Verify(body, sig, key) == nil {
			want := Sign(body, key)
			got := strings.ToLower(strings.TrimSpace(sig))
			got = strings.TrimPrefix(got, "sha256=")
			if key == "" || got != want {
				t.Fatalf("accepted signature %q for key %q; want %q", sig, key, want)
			}
		}
	})
}

func FuzzConstructEvent(f *testing.F) {
	f.Add([]byte(payload), pythonSig)
	f.Add([]byte(`{"transaction_id":1}`), "00")
	f.Fuzz(func(t *testing.T, body []byte, sig string) {
		ev, err := ConstructEvent(body, sig, secret)
		if err == nil {
			if ev == nil || Verify(body, sig, secret) != nil {
				t.Fatal("event accepted without the right signature")
			}
		}
		// A correctly signed body must never panic either.
		_, _ = ConstructEvent(body, Sign(body, secret), secret)
	})
}

func BenchmarkVerify(b *testing.B) {
	body := bytes.Repeat([]byte("a"), 1024)
	sig := Sign(body, secret)
	b.Run("webhook.Verify", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if err := Verify(body, sig, secret); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("bare-hmac", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		want, _ := hex.DecodeString(sig)
		for b.Loop() {
			m := hmac.New(sha256.New, []byte(secret))
			m.Write(body)
			if !hmac.Equal(m.Sum(nil), want) {
				b.Fatal("mismatch")
			}
		}
	})
}
