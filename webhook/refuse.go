package webhook

import (
	"errors"
	"net/http"
)

// RefusedStatus is what Handler answers for an event its function refused
// with Refuse: a 4xx that says the event will never be processed, so
// V-Pay need not deliver it again (unlike the 500 of any other error).
const RefusedStatus = http.StatusUnprocessableEntity

// Refuse marks err as final: returned by Handler's function, it makes
// Handler answer RefusedStatus (422) instead of 500, release the event in
// the Deduper (a later delivery is processed, and refused, again) and
// report the delivery as DeliveryRefused with Reason "refused".
//
// Use it only for an event that no retry can ever process (an id longer
// than your database stores, a field your storage cannot hold): a refused
// event is lost to your code unless you log it. A transient failure (the
// database is down) must stay a plain error, so V-Pay delivers again.
// errors.Is and errors.As see through it to err.
func Refuse(err error) error {
	if err == nil {
		err = errors.New("webhook: event refused")
	}
	return &refusal{err: err}
}

// refusal is an error that Handler answers with RefusedStatus.
type refusal struct{ err error }

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

// IsRefused reports whether err, or an error it wraps, was made by Refuse.
func IsRefused(err error) bool {
	var r *refusal
	return errors.As(err, &r)
}
