package vpay

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"net/mail"
	"strings"
	"time"

	"github.com/vonsung/vpay-go/internal/wire"
)

// PaymentMethod is how the payer pays.
type PaymentMethod string

// The documented payment methods.
const (
	// MethodMTN sends a USSD prompt to an MTN MoMo number.
	MethodMTN PaymentMethod = "mtnrw"
	// MethodCard returns a payment_url where the payer enters a card.
	MethodCard PaymentMethod = "card"
	// MethodAll returns a payment_url where the payer chooses.
	MethodAll PaymentMethod = "all"
)

// MinAmount is the smallest payment V-Pay accepts, in RWF.
const MinAmount = 100

// MaxDescriptionLen is the longest description V-Pay shows, in characters.
const MaxDescriptionLen = 80

// PayRequest is a payment to collect. Only Amount, and Phone for MethodMTN,
// are required.
type PayRequest struct {
	// Amount in whole RWF, at least MinAmount.
	Amount int64
	// Currency defaults to "RWF". Another code is converted by V-Pay at its
	// exchange rate.
	Currency string
	// Method defaults to MethodMTN.
	Method PaymentMethod
	// Phone is the payer's number in any common form (0781234567,
	// 250781234567, +250 78 123 4567); it is sent as 07XXXXXXXX. MethodMTN
	// needs an MTN number (078, 079).
	Phone string
	// Reference is your unique id for this order; V-Pay refuses a second
	// payment with the same one, which is what makes retries safe. If
	// empty, the SDK makes an unguessable one and returns it in
	// Payment.Reference: store it before you show the customer anything.
	Reference string
	// Description is shown to the payer: at most 80 characters; for
	// MethodMTN only letters, digits, space and .,-_'/#() (MoMo silently
	// fails on the rest).
	Description string
	// PayerName is the payer's name, for V-Pay's receipt (optional).
	PayerName string
	// PayerEmail is where V-Pay sends the receipt (optional).
	PayerEmail string
	// SendReceipt nil leaves the server's default (true).
	SendReceipt *bool
	// CallbackURL receives the webhooks for this payment: an absolute
	// http(s) URL.
	CallbackURL string
	// Metadata comes back in webhook payloads.
	Metadata map[string]string
}

// Payment is V-Pay's answer to Pay.
type Payment struct {
	// TransactionID is V-Pay's id of the payment (VP...), for Status and
	// Wait.
	TransactionID string
	// Reference is the request's Reference, or the one the SDK made.
	Reference string
	// Status is pending, unless the server completed the payment at once.
	Status Status
	// Message is V-Pay's description of the state, for logs.
	Message string
	// PaymentURL is where to send the payer, for card and "all" payments.
	PaymentURL string
	// Merchant is the merchant name V-Pay shows the payer.
	Merchant string
	// CreatedAt is when V-Pay created the payment.
	CreatedAt time.Time
	// Transaction is the full result when the server completed the payment
	// before answering (the self-hosted MoMo response), nil otherwise.
	Transaction *Transaction
}

// Pay starts a payment: POST /pay/. For MethodMTN the payer gets a USSD
// prompt and the Payment is pending; follow it with a webhook, Status or
// Wait. Invalid input is refused before anything is sent, with a
// *ValidationError that names the field.
//
// Pay is retried on transient failures with the same Reference, so it never
// charges twice: if a retry is refused as a duplicate, or the outcome of the
// last attempt is unknown, the error matches ErrOutcomeUnknown.
func (c *Client) Pay(ctx context.Context, req *PayRequest) (*Payment, error) {
	var cl call
	if c.obs == nil {
		return c.doPay(ctx, req, &cl)
	}
	op := Operation{Op: OpPay}
	if req != nil {
		op.Reference = req.Reference
	}
	ctx, op = c.opStart(ctx, op)
	p, err := c.doPay(ctx, req, &cl)
	var st Status
	if p != nil {
		op.Reference, op.TransactionID, st = p.Reference, p.TransactionID, p.Status
	} else if e, ok := err.(*Error); ok && e.Reference != "" {
		op.Reference = e.Reference
	}
	c.opEnd(ctx, op, cl.attempts, st, err)
	return p, err
}

func (c *Client) doPay(ctx context.Context, req *PayRequest, cl *call) (*Payment, error) {
	body, ref, err := req.wire()
	if err != nil {
		return nil, err
	}
	raw := body.AppendJSON(make([]byte, 0, 256)) // the usual body fits: one allocation
	var tx wire.Transaction
	*cl = call{ep: &c.pay, body: raw, reference: ref, createsPayment: true}
	if err := c.do(ctx, cl, &tx, nil); err != nil {
		return nil, err
	}
	if tx.TransactionID == "" {
		// A 2xx that names no transaction ({}, null, a proxy's page of
		// JSON) proves nothing: the payment may exist or not.
		return nil, c.annotate(*cl, &Error{Message: "the answer names no transaction"}, true)
	}
	return paymentFromWire(&tx, ref), nil
}

// Validate checks r as Pay would, without sending anything.
func (r *PayRequest) Validate() error {
	_, _, err := r.wire()
	return err
}

func (r *PayRequest) wire() (wire.PayRequest, string, error) {
	var none wire.PayRequest
	if r == nil {
		return none, "", invalid("PayRequest", nil, "nil request")
	}
	if r.Amount < MinAmount {
		return none, "", invalid("PayRequest.Amount", ErrInvalidAmount, "%d RWF is below the minimum of %d RWF", r.Amount, MinAmount)
	}
	currency := strings.ToUpper(strings.TrimSpace(r.Currency))
	if currency == "" {
		currency = "RWF"
	}
	if len(currency) != 3 || strings.Trim(currency, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
		return none, "", invalid("PayRequest.Currency", nil, "%q is not a three-letter currency code", r.Currency)
	}
	method := r.Method
	if method == "" {
		method = MethodMTN
	}
	switch method {
	case MethodMTN, MethodCard, MethodAll:
	default:
		return none, "", invalid("PayRequest.Method", nil, "%q is not one of mtnrw, card, all", string(r.Method))
	}
	var phone string
	if r.Phone != "" || method == MethodMTN {
		p, network, err := NormalizePhone(r.Phone)
		if err != nil {
			return none, "", err
		}
		if method == MethodMTN && network != NetworkMTN {
			return none, "", invalid("PayRequest.Phone", ErrInvalidPhone, "%s is an %s number; MethodMTN needs an MTN number (078, 079)", p, network)
		}
		phone = p
	}
	if err := checkDescription(r.Description, method); err != nil {
		return none, "", err
	}
	ref := strings.TrimSpace(r.Reference)
	if ref == "" {
		ref = NewReference()
	} else if err := checkReference(ref); err != nil {
		return none, "", err
	}
	if err := checkText("PayRequest.PayerName", r.PayerName, 100, nil); err != nil {
		return none, "", err
	}
	if r.PayerEmail != "" {
		if a, err := mail.ParseAddress(r.PayerEmail); err != nil || a.Address != r.PayerEmail {
			return none, "", invalid("PayRequest.PayerEmail", nil, "%q is not an email address", r.PayerEmail)
		}
	}
	if err := checkURL("PayRequest.CallbackURL", r.CallbackURL); err != nil {
		return none, "", err
	}
	if err := checkMetadata(r.Metadata); err != nil {
		return none, "", err
	}
	return wire.PayRequest{
		Amount:        r.Amount,
		Currency:      currency,
		PaymentMethod: string(method),
		PayerPhone:    phone,
		ExternalID:    ref,
		PayeeMessage:  r.Description,
		PayerName:     r.PayerName,
		PayerEmail:    r.PayerEmail,
		SendReceipt:   r.SendReceipt,
		CallbackURL:   r.CallbackURL,
		Metadata:      r.Metadata,
	}, ref, nil
}

// Network is a Rwandan mobile network.
type Network string

// The networks a Rwandan mobile number can belong to.
const (
	NetworkMTN    Network = "MTN"
	NetworkAirtel Network = "Airtel"
)

// NormalizePhone reads a Rwandan mobile number in any common form
// (0781234567, 250781234567, +250 78 123 4567, 781234567) and returns it as
// 07XXXXXXXX with its network. Anything else is a *ValidationError matching
// ErrInvalidPhone.
func NormalizePhone(s string) (string, Network, error) {
	// The digits go to a buffer on the stack, and the answer is s itself
	// when s is already in the canonical form: a phone number normalised
	// on every Pay costs no allocation.
	var buf [16]byte
	n := 0
	trimmed := strings.TrimSpace(s)
	for i, r := range trimmed {
		switch {
		case r >= '0' && r <= '9':
			if n < len(buf) {
				buf[n] = byte(r)
			}
			n++ // past the buffer: too many digits for any number
		case r == '+' && i == 0, r == ' ', r == '-', r == '.', r == '(', r == ')':
		default:
			return "", "", invalid("PayRequest.Phone", ErrInvalidPhone, "%q contains %q", s, r)
		}
	}
	d := buf[:min(n, len(buf))]
	if n > len(buf) {
		d = nil
	}
	switch {
	case len(d) == 12 && string(d[:3]) == "250":
		d = buf[2:n]
		d[0] = '0'
	case len(d) == 9 && d[0] == '7':
		copy(buf[1:], buf[:n])
		buf[0] = '0'
		d = buf[:n+1]
	}
	if len(d) != 10 || d[0] != '0' || d[1] != '7' {
		if s == "" {
			return "", "", invalid("PayRequest.Phone", ErrInvalidPhone, "required for MethodMTN")
		}
		return "", "", invalid("PayRequest.Phone", ErrInvalidPhone, "%q is not a Rwandan mobile number (07XXXXXXXX)", s)
	}
	var network Network
	switch d[2] {
	case '8', '9':
		network = NetworkMTN
	case '2', '3':
		network = NetworkAirtel
	default:
		return "", "", invalid("PayRequest.Phone", ErrInvalidPhone, "%s is on no mobile money network (MTN 078/079, Airtel 072/073)", string(d))
	}
	if trimmed == string(d) {
		return trimmed, network, nil
	}
	return string(d), network, nil
}

// NewReference returns a fresh, unguessable payment reference: "vp_"
// followed by 128 random bits in lower-case base32.
func NewReference() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return "vp_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}
