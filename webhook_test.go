package vpay

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseEvent(t *testing.T) {
	tests := []struct {
		body string
		want EventType
	}{
		{`{"event":"payment.successful","transaction_id":"VP1","status":"successful"}`, EventPaymentSuccessful},
		{`{"transaction_id":"VP1","status":"FAILED"}`, EventPaymentFailed},
		{`{"transaction_id":"VP1","status":"PENNDING"}`, EventPaymentPending},
		{`{"transaction_id":"VP1","status":"refunded"}`, EventPaymentRefunded},
		{`{"event":"Payment.Disputed","transaction_id":"VP1"}`, EventPaymentDisputed},
		{`{"event":"payout.settled","transaction_id":"VP1","extra":{"a":1}}`, EventType("payout.settled")},
	}
	for _, tt := range tests {
		ev, err := ParseEvent([]byte(tt.body))
		require.NoError(t, err, tt.body)
		assert.Equal(t, tt.want, ev.Type, tt.body)
		assert.JSONEq(t, tt.body, string(ev.Raw), "Raw keeps every field")
	}
	for _, bad := range []string{``, `[]`, `"x"`, `{"status":"successful"}`, `{"transaction_id":"VP1","amount":"1.5"}`} {
		_, err := ParseEvent([]byte(bad))
		assert.ErrorIs(t, err, ErrInvalidEvent, bad)
	}
}
