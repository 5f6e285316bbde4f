package vpay

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPayRefusesNULInMetadata: V-Pay echoes Metadata in every status and
// webhook of the payment, and no PostgreSQL text or jsonb column holds a
// NUL, so a tracker could never store that payment. Pay refuses it before
// sending, naming the key.
func TestPayRefusesNULInMetadata(t *testing.T) {
	var sent atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sent.Add(1)
		http.Error(w, "no request expected", http.StatusTeapot)
	}))
	t.Cleanup(srv.Close)
	c, err := NewClient(testUser, testKey, WithBaseURL(srv.URL+"/"), WithMaxRetries(0))
	require.NoError(t, err)
	for _, tt := range []struct {
		name  string
		meta  map[string]string
		field string
	}{
		{"NUL in a value", map[string]string{"cart": "77\x00"}, `PayRequest.Metadata["cart"]`},
		{"NUL alone", map[string]string{"k": "\x00"}, `PayRequest.Metadata["k"]`},
		{"NUL in a key", map[string]string{"ca\x00rt": "77"}, `PayRequest.Metadata["ca\x00rt"]`},
		{"NUL first in a key", map[string]string{"\x00cart": "77"}, `PayRequest.Metadata["\x00cart"]`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := &PayRequest{Amount: 100, Phone: "0780000000", Metadata: tt.meta}
			_, err := c.Pay(context.Background(), req)
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, tt.field, ve.Field)
			assert.Contains(t, ve.Reason, "NUL")
			assert.ErrorIs(t, err, ErrInvalidRequest)
			assert.ErrorAs(t, req.Validate(), &ve, "Validate refuses it too")
		})
	}
	assert.Zero(t, sent.Load(), "nothing is sent for input the SDK refuses")
	_, err = c.Pay(context.Background(), &PayRequest{Amount: 100, Phone: "0780000000", Metadata: map[string]string{"cart": "77 \t"}})
	assert.NotErrorAs(t, err, new(*ValidationError), "other text is sent as before")
}
