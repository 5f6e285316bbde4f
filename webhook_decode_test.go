package vpay

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
)

// A body Status accepts, ParseEvent accepts with the same transaction, and
// one Status refuses as undecodable, ParseEvent refuses: the two paths
// share one decoder, so a merchant cannot lose by webhook (400, never
// redelivered right) an event that polling would have read.
func TestStatusAndWebhookAcceptTheSameBodies(t *testing.T) {
	bodies := []string{
		`{"transaction_id":"VP1","status":"successful","amount":240,"metadata":{"order":"42"}}`,
		`{"transaction_id":"VP1","status":"successful","metadata":"x"}`,
		`{"transaction_id":"VP1","status":"successful","metadata":1}`,
		`{"transaction_id":"VP1","status":"successful","metadata":true}`,
		`{"transaction_id":"VP1","status":"successful","metadata":null}`,
		`{"transaction_id":"VP1","status":"successful","time_taken":" "}`,
		`{"transaction_id":"VP1","status":"successful","time_taken":"16 sec"}`,
		`{"transaction_id":"VP1","status":"successful","time_taken":"soon"}`,
		`{"transaction_id":"VP1","status":"successful","amount":"12.50"}`,
		`{"transaction_id":"VP1","status":"successful","amount":1.}`,
		`{"transaction_id":"VP1","status":"successful","amount":"1,500.00"}`,
		`{"transaction_id":"VP1","external_id":12345,"status":"SUCCESSFUL","payer_phone":250790000000}`,
		`{"transaction_id":"VP1","status":"successful","currency":["RWF"]}`,
		`{"transaction_id":"VP1","status":"successful","amount":"240.50"}`,
		`{"transaction_id":"VP1","status":"successful","amount":"240.00"}`,
		// Broken keywords: the fast path must refuse them as encoding/json
		// does, or Status (fast path) and a webhook would disagree.
		`{"transaction_id":"VP1","status":"successful","metadata":nulx}`,
		`{"transaction_id":"VP1","status":"successful","payer_name":nulx}`,
		`{"transaction_id":"VP1","status":"successful","unknown":trux}`,
		`{"transaction_id":"VP1","status":"successful","unknown":falsx}`,
		`{"transaction_id":"VP1","status":"successful","unknown":nul}`,
		`{"transaction_id":"VP1","status":"successful","payer_name":{"first":"A"}}`,
	}
	c, s := setup(t)
	var body string
	s.mux.HandleFunc("/transaction/status/", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, body)
	})
	for _, b := range bodies {
		body = b
		tx, statusErr := c.Status(context.Background(), "VP1")
		ev, eventErr := ParseEvent([]byte(b))
		if !assert.Equal(t, statusErr == nil, eventErr == nil, "%s: Status error %v, ParseEvent error %v", b, statusErr, eventErr) {
			continue
		}
		if statusErr == nil {
			assert.Equal(t, *tx, ev.Transaction, b)
		}
	}
}
