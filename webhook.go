package vpay

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/vonsung/vpay-go/internal/wire"
)

// EventType names a webhook event.
type EventType string

// The event types V-Pay sends. A payload without an event field gets the
// type of its status; an unknown type is delivered as it came.
const (
	EventPaymentPending    EventType = "payment.pending"
	EventPaymentSuccessful EventType = "payment.successful"
	EventPaymentFailed     EventType = "payment.failed"
	EventPaymentCancelled  EventType = "payment.cancelled"
	EventPaymentRefunded   EventType = "payment.refunded"
	EventPaymentDisputed   EventType = "payment.disputed"
)

// Event is a webhook delivery.
type Event struct {
	// Type is the event's type (payment.successful, ...), from its event
	// field or, without one, from its status.
	Type EventType
	// Transaction is the payment the event is about, as Status returns it.
	Transaction Transaction
	// Raw is the payload exactly as received, for fields the SDK does not
	// know yet.
	Raw json.RawMessage
}

// ErrInvalidEvent matches a payload that is not a V-Pay event.
var ErrInvalidEvent = errors.New("vpay: invalid webhook event")

// ParseEvent reads a webhook payload whose signature was already verified:
// after webhook.VerifyRequest in a router's middleware, or by a queue that
// stored the verified body. It does not verify anything itself: on a body
// that came over a network, use webhook.ConstructEvent (or webhook.Handler),
// which verifies and then calls ParseEvent. The event type comes from the
// payload's "event" field or, without one, from its status; an unknown type
// is delivered, and Event.Raw keeps every field.
func ParseEvent(payload []byte) (*Event, error) {
	trimmed := bytes.TrimSpace(payload)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, fmt.Errorf("%w: not a JSON object", ErrInvalidEvent)
	}
	// The decoder of every API answer: a body Status accepts, ParseEvent
	// accepts, and the reverse.
	var w wire.Transaction
	if err := wire.DecodeTransaction(trimmed, &w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidEvent, err)
	}
	ev := new(Event)
	t := &ev.Transaction
	fillTransaction(t, &w)
	if t.TransactionID == "" {
		return nil, fmt.Errorf("%w: no transaction_id", ErrInvalidEvent)
	}
	ev.Type = EventType(strings.ToLower(strings.TrimSpace(string(w.Event))))
	if ev.Type == "" && t.Status != "" {
		ev.Type = EventType("payment." + string(t.Status))
	}
	ev.Raw = append(json.RawMessage(nil), payload...)
	return ev, nil
}
