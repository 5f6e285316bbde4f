package vpay

import (
	"encoding/json"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vonsung/vpay-go/internal/wire"
)

func readGolden(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}

func TestGoldenAuthResponse(t *testing.T) {
	var ar wire.AuthResponse
	require.NoError(t, json.Unmarshal(readGolden(t, "auth_response.json"), &ar))
	assert.Equal(t, 300*time.Second, time.Duration(ar.ExpiresIn))
	assert.Equal(t, "live", string(ar.Mode))
}

func TestGoldenPayStandard(t *testing.T) {
	var w wire.Transaction
	require.NoError(t, json.Unmarshal(readGolden(t, "pay_response_standard.json"), &w))
	tx := transactionFromWire(&w)
	assert.Equal(t, StatusPending, tx.Status, "PENNDING reads as pending")
	assert.Equal(t, "VP86583387", tx.TransactionID)
	assert.Equal(t, "https://vonsung.rw/api/checkout/3f9aab1b-39e6-4188-a239-81a4xxxxxxx", string(w.PaymentURL))
}

func TestGoldenPayMoMo(t *testing.T) {
	var w wire.Transaction
	require.NoError(t, json.Unmarshal(readGolden(t, "pay_response_momo.json"), &w))
	tx := transactionFromWire(&w)
	want := &Transaction{
		TransactionID: "VP86583387", Reference: "TXN_TDTAGD1HFJS", Status: StatusSuccessful,
		Amount: 240, Currency: "RWF", PayerName: "Celestin Niyomugabo", PayerPhone: "250790000000",
		Mode: ModeLive, Merchant: "VONSUNG", Message: "Transaction completed successfully.",
		TransactionDate: time.Date(2026, 5, 30, 18, 3, 32, 0, time.UTC), TimeTaken: 16 * time.Second,
	}
	assert.True(t, want.TransactionDate.Equal(tx.TransactionDate))
	tx.TransactionDate = want.TransactionDate
	assert.Equal(t, want, tx)
}

func TestGoldenLinkAndError(t *testing.T) {
	var l wire.Link
	require.NoError(t, json.Unmarshal(readGolden(t, "payment_link_response.json"), &l))
	assert.False(t, l.IsError())
	assert.EqualValues(t, 10000, l.Amount)
	var e wire.Envelope
	require.NoError(t, json.Unmarshal(readGolden(t, "error_response.json"), &e))
	assert.True(t, e.IsError())
	assert.Equal(t, "INVALID_PHONE", string(e.ErrorCode))
}

func TestDecodeQuirks(t *testing.T) {
	tests := []struct {
		name string
		body string
		want func(t *testing.T, tx *Transaction)
		err  bool
	}{
		{"pending upper", `{"status":"PENDING"}`, func(t *testing.T, tx *Transaction) { assert.Equal(t, StatusPending, tx.Status) }, false},
		{"mixed case", `{"status":"Successful"}`, func(t *testing.T, tx *Transaction) { assert.Equal(t, StatusSuccessful, tx.Status) }, false},
		{"unknown status kept", `{"status":"ON_HOLD"}`, func(t *testing.T, tx *Transaction) {
			assert.Equal(t, Status("on_hold"), tx.Status)
			assert.False(t, tx.Status.Final())
		}, false},
		{"amount number", `{"amount":240}`, func(t *testing.T, tx *Transaction) { assert.EqualValues(t, 240, tx.Amount) }, false},
		{"amount float zero fraction", `{"amount":240.0}`, func(t *testing.T, tx *Transaction) { assert.EqualValues(t, 240, tx.Amount) }, false},
		{"amount string", `{"amount":"1,500.00"}`, func(t *testing.T, tx *Transaction) { assert.EqualValues(t, 1500, tx.Amount) }, false},
		{"amount with fraction refused", `{"amount":"240.50"}`, nil, true},
		{"amount number with fraction refused", `{"amount":240.5}`, nil, true},
		{"amount garbage refused", `{"amount":"lots"}`, nil, true},
		{"kigali date without gmt", `{"transaction_date":"2026-05-30 08:03:32 PM","timezone":"Africa/Kigali"}`, func(t *testing.T, tx *Transaction) {
			assert.True(t, time.Date(2026, 5, 30, 18, 3, 32, 0, time.UTC).Equal(tx.TransactionDate))
		}, false},
		{"unparsable date kept as text", `{"transaction_date":"yesterday"}`, func(t *testing.T, tx *Transaction) {
			assert.True(t, tx.TransactionDate.IsZero())
			assert.Equal(t, "yesterday", tx.TransactionDateText)
		}, false},
		{"iso created_at", `{"created_at":"2026-05-30T20:03:32+02:00"}`, func(t *testing.T, tx *Transaction) {
			assert.True(t, time.Date(2026, 5, 30, 18, 3, 32, 0, time.UTC).Equal(tx.CreatedAt))
		}, false},
		{"time taken", `{"time_taken":"16 sec"}`, func(t *testing.T, tx *Transaction) { assert.Equal(t, 16*time.Second, tx.TimeTaken) }, false},
		{"numeric id", `{"transaction_id":86583387}`, func(t *testing.T, tx *Transaction) { assert.Equal(t, "86583387", tx.TransactionID) }, false},
		{"metadata numbers", `{"metadata":{"cart":77,"gift":true}}`, func(t *testing.T, tx *Transaction) {
			assert.Equal(t, map[string]string{"cart": "77", "gift": "true"}, tx.Metadata)
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w wire.Transaction
			err := json.Unmarshal([]byte(tt.body), &w)
			if tt.err {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			tt.want(t, transactionFromWire(&w))
		})
	}
}

// FuzzDecodeResponse feeds arbitrary bodies to every decoder of server
// responses: none may panic, and an amount that decodes is never rounded.
func FuzzDecodeResponse(f *testing.F) {
	for _, name := range []string{"auth_response.json", "pay_response_standard.json", "pay_response_momo.json", "payment_link_response.json", "error_response.json"} {
		f.Add(readGolden(f, name))
	}
	f.Add([]byte(`{"amount":"99999999999999999999"}`))
	f.Add([]byte(`{"expires_in":"1e400 seconds"}`))
	f.Add([]byte(`1,500.00`))
	f.Add([]byte(`240.50`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var tx wire.Transaction
		if json.Unmarshal(body, &tx) == nil {
			_ = transactionFromWire(&tx)
		}
		var ar wire.AuthResponse
		_ = json.Unmarshal(body, &ar)
		var l wire.Link
		_ = json.Unmarshal(body, &l)
		_, _ = ParseEvent(body)

		// Money is never rounded: whatever ParseAmount accepts is exactly
		// the decimal it read.
		if v, err := wire.ParseAmount(string(body)); err == nil {
			exact, ok := new(big.Rat).SetString(strings.ReplaceAll(string(body), ",", ""))
			if !ok || exact.Cmp(new(big.Rat).SetInt64(v)) != 0 {
				t.Fatalf("ParseAmount(%q) = %d, not the exact value", body, v)
			}
		}
	})
}
