package webhook

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/vonsung/vpay-go"
)

// TestHandlerRefusedEventGets4xxAndIsReleased: a function that can never
// process an event says so with Refuse; V-Pay gets a 4xx it need not
// retry (not the 500 that asks for a redelivery), the observer sees a
// refusal, and the event is not left claimed: a later delivery reaches the
// function again.
func TestHandlerRefusedEventGets4xxAndIsReleased(t *testing.T) {
	tooLong := errors.New("transaction id longer than the database stores")
	var calls int
	var seen []Delivery
	h := Handler(secret, func(context.Context, *vpay.Event) error {
		calls++
		if calls == 1 {
			return Refuse(tooLong)
		}
		return nil
	}, WithObserver(func(_ context.Context, d Delivery) { seen = append(seen, d) }))
	rec := deliver(h, payload, pythonSig)
	assert.Equal(t, http.StatusUnprocessableEntity, rec.Code)
	assert.Equal(t, RefusedStatus, rec.Code)
	if assert.Len(t, seen, 1) {
		assert.Equal(t, DeliveryRefused, seen[0].Result)
		assert.Equal(t, "refused", seen[0].Reason)
		assert.ErrorIs(t, seen[0].Err, tooLong, "errors.Is sees through Refuse")
	}
	assert.Equal(t, http.StatusOK, deliver(h, payload, pythonSig).Code, "released: the next delivery is processed")
	assert.Equal(t, 2, calls)

	plain := Handler(secret, func(context.Context, *vpay.Event) error { return tooLong })
	assert.Equal(t, http.StatusInternalServerError, deliver(plain, payload, pythonSig).Code, "any other error asks for a redelivery")
}

func TestRefuse(t *testing.T) {
	base := errors.New("cannot store")
	assert.True(t, IsRefused(Refuse(base)))
	assert.True(t, IsRefused(errors.Join(errors.New("wrapped"), Refuse(base))))
	assert.False(t, IsRefused(base))
	assert.False(t, IsRefused(nil))
	assert.Equal(t, "cannot store", Refuse(base).Error())
	assert.True(t, IsRefused(Refuse(nil)), "Refuse(nil) still refuses")
	assert.NotEmpty(t, Refuse(nil).Error())
}
