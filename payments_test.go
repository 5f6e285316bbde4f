package vpay

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jarcoal/httpmock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPayWire(t *testing.T) {
	c, s := setup(t)
	s.mux.HandleFunc("/pay/", func(w http.ResponseWriter, r *http.Request) {
		testMethod(t, r, "POST")
		testHeader(t, r, "Authorization", "Bearer access-1")
		testHeader(t, r, "apiUser", testUser)
		testHeader(t, r, "apiKey", testKey)
		testHeader(t, r, "Content-Type", "application/json")
		testJSONBody(t, r, `{
			"amount": 1500, "currency": "RWF", "payment_method": "mtnrw",
			"payer_phone": "0781234567", "external_id": "order-77",
			"payee_message": "Order 77", "payer_name": "Aline", "payer_email": "aline@example.rw",
			"send_receipt": false, "callback_url": "https://shop.rw/hooks/vpay",
			"metadata": {"cart": "77"}
		}`)
		writeJSON(w, 200, `{"status":"PENNDING","message":"Prompt sent","transaction_id":"VP1","merchant":"VONSUNG","created_at":"2026-05-30T18:03:32Z"}`)
	})
	no := false
	p, err := c.Pay(context.Background(), &PayRequest{
		Amount: 1500, Method: MethodMTN, Phone: "+250 78 123 4567", Reference: "order-77",
		Description: "Order 77", PayerName: "Aline", PayerEmail: "aline@example.rw",
		SendReceipt: &no, CallbackURL: "https://shop.rw/hooks/vpay", Metadata: map[string]string{"cart": "77"},
	})
	require.NoError(t, err)
	assert.Equal(t, &Payment{
		TransactionID: "VP1", Reference: "order-77", Status: StatusPending, Message: "Prompt sent",
		Merchant: "VONSUNG", CreatedAt: time.Date(2026, 5, 30, 18, 3, 32, 0, time.UTC),
	}, p)
}

func TestPayMakesReference(t *testing.T) {
	c, s := setup(t)
	var sent string
	s.mux.HandleFunc("/pay/", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			ExternalID string `json:"external_id"`
		}
		require.NoError(t, jsonDecode(r, &body))
		sent = body.ExternalID
		writeJSON(w, 200, `{"status":"pending","transaction_id":"VP2"}`)
	})
	p, err := c.Pay(context.Background(), &PayRequest{Amount: 100, Phone: "0790000000"})
	require.NoError(t, err)
	assert.Regexp(t, `^vp_[a-z2-7]{26}$`, p.Reference)
	assert.Equal(t, sent, p.Reference, "the returned reference is the one sent")
	assert.NotEqual(t, NewReference(), NewReference())
}

func TestPaySelfHostedMoMoShape(t *testing.T) {
	c, s := setup(t)
	golden, err := os.ReadFile("testdata/pay_response_momo.json")
	require.NoError(t, err)
	s.mux.HandleFunc("/pay/", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, string(golden)) })
	p, err := c.Pay(context.Background(), &PayRequest{Amount: 240, Phone: "0790000000", Reference: "TXN_TDTAGD1HFJS"})
	require.NoError(t, err)
	assert.Equal(t, StatusSuccessful, p.Status)
	require.NotNil(t, p.Transaction)
	assert.EqualValues(t, 240, p.Transaction.Amount)
	assert.Equal(t, 16*time.Second, p.Transaction.TimeTaken)
	assert.Equal(t, "250790000000", p.Transaction.PayerPhone)
}

func TestPayValidation(t *testing.T) {
	ok := func() PayRequest { return PayRequest{Amount: 100, Phone: "0780000000"} }
	tests := []struct {
		name   string
		mutate func(*PayRequest)
		field  string
		is     error
	}{
		{"amount below minimum", func(r *PayRequest) { r.Amount = 99 }, "Amount", ErrInvalidAmount},
		{"negative amount", func(r *PayRequest) { r.Amount = -500 }, "Amount", ErrInvalidAmount},
		{"missing phone for MTN", func(r *PayRequest) { r.Phone = "" }, "Phone", ErrInvalidPhone},
		{"airtel number for MTN", func(r *PayRequest) { r.Phone = "0731234567" }, "Phone", ErrInvalidPhone},
		{"landline", func(r *PayRequest) { r.Phone = "0252123456" }, "Phone", ErrInvalidPhone},
		{"short number", func(r *PayRequest) { r.Phone = "078123456" }, "Phone", ErrInvalidPhone},
		{"letters in phone", func(r *PayRequest) { r.Phone = "078l234567" }, "Phone", ErrInvalidPhone},
		{"foreign number", func(r *PayRequest) { r.Phone = "+254712345678" }, "Phone", ErrInvalidPhone},
		{"description of 81 characters", func(r *PayRequest) { r.Description = strings.Repeat("a", 81) }, "Description", ErrInvalidDescription},
		{"emoji for MTN", func(r *PayRequest) { r.Description = "Thanks 🙏" }, "Description", ErrInvalidDescription},
		{"smiley for MTN", func(r *PayRequest) { r.Description = "Thanks :)" }, "Description", ErrInvalidDescription},
		{"control character", func(r *PayRequest) { r.Method = MethodCard; r.Description = "a\nb" }, "Description", ErrInvalidDescription},
		{"reference with space", func(r *PayRequest) { r.Reference = "order 1" }, "Reference", ErrInvalidReference},
		{"reference too long", func(r *PayRequest) { r.Reference = strings.Repeat("r", 65) }, "Reference", ErrInvalidReference},
		{"unknown method", func(r *PayRequest) { r.Method = "airtel" }, "Method", nil},
		{"bad currency", func(r *PayRequest) { r.Currency = "francs" }, "Currency", nil},
		{"bad email", func(r *PayRequest) { r.PayerEmail = "aline at example" }, "PayerEmail", nil},
		{"relative callback", func(r *PayRequest) { r.CallbackURL = "/hooks" }, "CallbackURL", nil},
		{"ftp callback", func(r *PayRequest) { r.CallbackURL = "ftp://shop.rw/h" }, "CallbackURL", nil},
		{"callback without a host", func(r *PayRequest) { r.CallbackURL = "https:///hooks" }, "CallbackURL", nil},
		{"empty metadata key", func(r *PayRequest) { r.Metadata = map[string]string{"": "x"} }, "Metadata", nil},
	}
	httpmock.Activate(t)
	httpmock.RegisterNoResponder(func(r *http.Request) (*http.Response, error) {
		t.Errorf("a request was sent for invalid input: %s %s", r.Method, r.URL)
		return nil, errors.New("unexpected request")
	})
	c, err := NewClient(testUser, testKey, WithHTTPClient(http.DefaultClient))
	require.NoError(t, err)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := ok()
			tt.mutate(&req)
			_, err := c.Pay(context.Background(), &req)
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, "PayRequest."+tt.field, ve.Field)
			assert.Contains(t, err.Error(), "PayRequest."+tt.field)
			assert.ErrorIs(t, err, ErrInvalidRequest)
			if tt.is != nil {
				assert.ErrorIs(t, err, tt.is)
			}
		})
	}
	_, err = c.Pay(context.Background(), nil)
	assert.ErrorIs(t, err, ErrInvalidRequest)
	assert.Zero(t, httpmock.GetTotalCallCount())
}

func TestPayAcceptsValidInput(t *testing.T) {
	for _, r := range []PayRequest{
		{Amount: 100, Phone: "0780000000"},
		{Amount: 100, Phone: "0731234567", Method: MethodAll},
		{Amount: 100, Method: MethodCard, Description: "Café crème: 2 🙂"},
		{Amount: 100, Phone: "0790000000", Description: strings.Repeat("a", 80)},
		{Amount: 100, Phone: "0790000000", Description: "Order #12 (shoes) - size 42, O'Neil/Kigali_1."},
		{Amount: 100, Phone: "0790000000", Currency: "usd", Reference: "A-1_b.2:c/3#4"},
	} {
		assert.NoError(t, r.Validate(), "%+v", r)
	}
}

func TestNormalizePhone(t *testing.T) {
	for in, want := range map[string]string{
		"0781234567":        "0781234567",
		"250781234567":      "0781234567",
		"+250781234567":     "0781234567",
		"+250 78 123 4567":  "0781234567",
		"(+250) 788-123-45": "",
		"781234567":         "0781234567",
		" 079-000-0000 ":    "0790000000",
		"0721234567":        "0721234567",
	} {
		got, _, err := NormalizePhone(in)
		if want == "" {
			assert.Error(t, err, in)
			continue
		}
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	_, network, _ := NormalizePhone("0731234567")
	assert.Equal(t, NetworkAirtel, network)
}

func TestPayAnswerWithFractionalAmountIsAnErrorNotRounded(t *testing.T) {
	c, s := setup(t)
	s.mux.HandleFunc("/pay/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"status":"SUCCESSFUL","transaction_id":"VP1","amount":"240.50","external_id":"order-5"}`)
	})
	p, err := c.Pay(context.Background(), &PayRequest{Amount: 240, Phone: "0780000000", Reference: "order-5"})
	assert.Nil(t, p)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "fraction")
	assert.ErrorIs(t, err, ErrOutcomeUnknown, "the server accepted it: the payment exists")
}
