package vpay

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/vonsung/vpay-go/internal/wire"
)

// Status is a transaction's state. The server's spelling varies
// ("PENNDING", "SUCCESSFUL"); the SDK normalises the known values and keeps
// an unknown one as it came, lower-cased.
type Status string

// The documented statuses.
const (
	StatusPending    Status = "pending"
	StatusSuccessful Status = "successful"
	StatusFailed     Status = "failed"
	StatusCancelled  Status = "cancelled"
	StatusRefunded   Status = "refunded"
	StatusDisputed   Status = "disputed"
)

// Final reports whether s will not change by itself: every documented
// status but pending (FinalStatuses). An unknown status is not final, so
// Wait keeps polling rather than guess.
func (s Status) Final() bool {
	for _, f := range finalStatuses() {
		if s == f {
			return true
		}
	}
	return false
}

// FinalStatuses returns the final statuses, those Final reports true for,
// in a new slice: the one list that Final and the tracker's SQL (its
// queries and the index that serves them) are built from.
func FinalStatuses() []Status {
	all := finalStatuses()
	return all[:]
}

// finalStatuses is the list, as a value: no package variable to change.
func finalStatuses() [5]Status {
	return [5]Status{StatusSuccessful, StatusFailed, StatusCancelled, StatusRefunded, StatusDisputed}
}

// Transaction is a payment as V-Pay knows it: the answer of Status, the
// completed result of some Pay calls, and the body of a webhook.
type Transaction struct {
	// TransactionID is V-Pay's id of the payment (VP...).
	TransactionID string
	// Reference is your order id, the external_id you paid with.
	Reference string
	// Status is where the payment stands; Status.Final says whether it
	// can still change on its own.
	Status Status
	// Amount in whole RWF.
	Amount int64
	// Currency is the currency paid in (RWF unless converted).
	Currency string
	// PayerName and PayerEmail are the payer's, as V-Pay knows them.
	PayerName, PayerEmail string
	// PayerPhone is kept as the server sent it (e.g. 250790000000).
	PayerPhone string
	// Method is how the payer paid.
	Method PaymentMethod
	// Mode says whether the payment is a sandbox or a live one.
	Mode Mode
	// Merchant is the merchant name V-Pay shows the payer.
	Merchant string
	// Message is V-Pay's description of the state, for logs.
	Message string
	// FailureCode says why a failed payment failed, when the server says
	// (PAYMENT_TIMEOUT, INSUFFICIENT_FUNDS, ...).
	FailureCode ErrorCode
	// TransactionDate is when the payment completed. When the server's
	// text could not be read it is zero and TransactionDateText keeps it.
	TransactionDate     time.Time
	TransactionDateText string // the server's text, when TransactionDate could not be read
	// CreatedAt is when V-Pay created the payment.
	CreatedAt time.Time
	// TimeTaken is how long the payer took to confirm.
	TimeTaken time.Duration
	// Metadata is the PayRequest's Metadata, as V-Pay returns it.
	Metadata map[string]string
}

// Status fetches a transaction: GET /transaction/status/?transaction_id=.
func (c *Client) Status(ctx context.Context, transactionID string) (*Transaction, error) {
	var cl call
	if c.obs == nil {
		return c.getStatus(ctx, transactionID, &cl)
	}
	ctx, op := c.opStart(ctx, Operation{Op: OpStatus, TransactionID: transactionID})
	t, err := c.getStatus(ctx, transactionID, &cl)
	c.opEnd(ctx, op, cl.attempts, statusOf(t), err)
	return t, err
}

func statusOf(t *Transaction) Status {
	if t == nil {
		return ""
	}
	return t.Status
}

func (c *Client) getStatus(ctx context.Context, transactionID string, cl *call) (*Transaction, error) {
	id := strings.TrimSpace(transactionID)
	if id == "" || strings.ContainsFunc(id, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return nil, invalid("transactionID", nil, "%q is not a transaction id", transactionID)
	}
	var w wire.Transaction
	*cl = call{ep: &c.status, query: "transaction_id=" + url.QueryEscape(id)}
	err := c.do(ctx, cl, &w, nil)
	if err != nil {
		return nil, err
	}
	t := transactionFromWire(&w)
	if t.TransactionID != id {
		// A cache that ignores the query string would otherwise confirm an
		// unpaid order with another order's "successful"; an answer that
		// names no transaction cannot confirm anything either.
		about := t.TransactionID
		if about == "" {
			about = "no transaction"
		}
		return nil, c.annotate(*cl, &Error{Message: fmt.Sprintf("asked for transaction %s, the answer is about %s", id, about)}, false)
	}
	return t, nil
}

// Wait's polls spread out up to waitMaxPoll, to spare the rate limit (the
// first interval is WithPollInterval's, default DefaultPollInterval).
const (
	waitMaxPoll = 15 * time.Second
	// WaitTimeout is how long Wait polls when ctx has no deadline: the
	// three minutes a payer has to answer the MoMo prompt, plus a margin
	// for the network to report.
	WaitTimeout = 3*time.Minute + 30*time.Second
)

// Wait polls Status until the transaction reaches a final status, and
// returns it (a failed payment is a result, not an error). It backs off
// between polls (from WithPollInterval, default 2 s, up to 15 s) and waits on the client's rate limit. With no deadline on
// ctx it gives up after WaitTimeout; then, or when ctx ends, it returns the
// last transaction seen with an error that matches context.DeadlineExceeded
// (or ctx's own error).
func (c *Client) Wait(ctx context.Context, transactionID string) (*Transaction, error) {
	if c.obs == nil {
		return c.wait(ctx, transactionID, new(int))
	}
	ctx, op := c.opStart(ctx, Operation{Op: OpWait, TransactionID: transactionID})
	var polls int
	t, err := c.wait(ctx, transactionID, &polls)
	c.opEnd(ctx, op, polls, statusOf(t), err)
	return t, err
}

// wait is Wait; it counts its Status calls in polls.
func (c *Client) wait(ctx context.Context, transactionID string, polls *int) (*Transaction, error) {
	// One clock: the deadline is measured on the client's clock, a ctx
	// deadline converted to the time it leaves, so that the loop's sense of
	// "how long is left" never compares two clocks.
	limit := WaitTimeout
	if dl, ok := ctx.Deadline(); ok {
		limit = time.Until(dl)
	}
	deadline := c.clock.Now().Add(limit)
	interval := c.poll
	var last *Transaction
	notFinal := func(cause error) error {
		return &Error{Method: c.status.method, Path: c.status.path, Message: "transaction " + transactionID + " still not final", Err: cause}
	}
	for {
		t, err := c.Status(ctx, transactionID)
		*polls++
		switch {
		case err == nil:
			last = t
			if t.Status.Final() {
				return t, nil
			}
		case ctx.Err() != nil:
			return last, err
		default:
			var e *Error
			// A transient failure is polled through; anything else (an
			// unknown id, a bad key) will not get better.
			if !errors.As(err, &e) || !e.Retryable() {
				return last, err
			}
		}
		left := deadline.Sub(c.clock.Now())
		if left <= 0 {
			return last, notFinal(context.DeadlineExceeded)
		}
		if err := c.clock.Sleep(ctx, min(interval, left)); err != nil {
			return last, notFinal(err)
		}
		interval = min(interval*3/2, max(waitMaxPoll, c.poll))
	}
}
