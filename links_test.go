package vpay

import (
	"context"
	"net/http"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCreateLink(t *testing.T) {
	c, s := setup(t)
	golden, err := os.ReadFile("testdata/payment_link_response.json")
	require.NoError(t, err)
	s.mux.HandleFunc("/payment-links/", func(w http.ResponseWriter, r *http.Request) {
		testMethod(t, r, "POST")
		testHeader(t, r, "Authorization", "Bearer access-1")
		testJSONBody(t, r, `{"name":"Monthly fee","amount":10000,"type":"multiple","redirect_url":"https://school.rw/thanks"}`)
		writeJSON(w, 200, string(golden))
	})
	l, err := c.CreateLink(context.Background(), &LinkRequest{Name: "Monthly fee", Amount: 10000, Type: LinkMultiple, RedirectURL: "https://school.rw/thanks"})
	require.NoError(t, err)
	assert.Equal(t, &Link{ID: "lnk_9f3a2b", Slug: "monthly-fee-jun", URL: "https://pay.vpay.rw/monthly-fee-jun",
		QRCodeURL: "https://api.vpay.rw/v1/payment-links/lnk_9f3a2b/qr", Amount: 10000, Type: LinkMultiple, Active: true}, l)
}

func TestLinkValidation(t *testing.T) {
	for name, tt := range map[string]struct {
		req   LinkRequest
		field string
	}{
		"no name":         {LinkRequest{Amount: 500}, "Name"},
		"amount below":    {LinkRequest{Name: "x", Amount: 50}, "Amount"},
		"unknown type":    {LinkRequest{Name: "x", Type: "forever"}, "Type"},
		"relative return": {LinkRequest{Name: "x", RedirectURL: "thanks"}, "RedirectURL"},
	} {
		var ve *ValidationError
		require.ErrorAs(t, tt.req.Validate(), &ve, name)
		assert.Equal(t, "LinkRequest."+tt.field, ve.Field, name)
	}
	assert.NoError(t, (&LinkRequest{Name: "Donations"}).Validate(), "amount 0 lets the payer choose")
}

func TestCreateLinkAnswerWithoutIDIsAnError(t *testing.T) {
	c, s := setup(t)
	s.mux.HandleFunc("/payment-links/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"status":"success","slug":"fee","url":"https://pay.vpay.rw/fee"}`)
	})
	l, err := c.CreateLink(context.Background(), &LinkRequest{Name: "Fee"})
	assert.Nil(t, l)
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Contains(t, err.Error(), "names no link")
}
