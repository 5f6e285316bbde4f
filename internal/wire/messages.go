package wire

import (
	"encoding/json"
	"strings"
	"time"
)

// Envelope holds the fields every V-Pay body may carry. A body whose status
// is "error" is a failure whatever the HTTP status.
type Envelope struct {
	Status    Text `json:"status"`
	ErrorCode Text `json:"error_code"`
	Message   Text `json:"message"`
}

// IsError reports whether the body says it is an error.
func (e *Envelope) IsError() bool {
	return e.ErrorCode != "" || strings.EqualFold(strings.TrimSpace(string(e.Status)), "error")
}

// AuthResponse is the body of POST /auth/.
type AuthResponse struct {
	Envelope
	Access    Text     `json:"access"`
	Refresh   Text     `json:"refresh"`
	Mode      Text     `json:"mode"`
	ExpiresIn Duration `json:"expires_in"`
}

// PayRequest is the body of POST /pay/, with the code samples' field names.
type PayRequest struct {
	Amount        int64             `json:"amount"`
	Currency      string            `json:"currency"`
	PaymentMethod string            `json:"payment_method"`
	PayerPhone    string            `json:"payer_phone,omitempty"`
	ExternalID    string            `json:"external_id"`
	PayeeMessage  string            `json:"payee_message,omitempty"`
	PayerName     string            `json:"payer_name,omitempty"`
	PayerEmail    string            `json:"payer_email,omitempty"`
	SendReceipt   *bool             `json:"send_receipt,omitempty"`
	CallbackURL   string            `json:"callback_url,omitempty"`
	Metadata      map[string]string `json:"metadata,omitempty"`
}

// Transaction is the union of the pay response (both shapes), the status
// response and the webhook payload.
type Transaction struct {
	Envelope
	Event              Text     `json:"event"`
	TransactionID      Text     `json:"transaction_id"`
	ExternalID         Text     `json:"external_id"`
	Reference          Text     `json:"reference"`
	Merchant           Text     `json:"merchant"`
	PaymentURL         Text     `json:"payment_url"`
	Amount             Amount   `json:"amount"`
	Currency           Text     `json:"currency"`
	PayerName          Text     `json:"payer_name"`
	PayerPhone         Text     `json:"payer_phone"`
	PayerEmail         Text     `json:"payer_email"`
	PaymentMethod      Text     `json:"payment_method"`
	Mode               Text     `json:"mode"`
	TransactionDate    Text     `json:"transaction_date"`
	Timezone           Text     `json:"timezone"`
	TransactionDateGMT Text     `json:"transaction_date_gmt"`
	CreatedAt          Text     `json:"created_at"`
	TimeTaken          Duration `json:"time_taken"`
	FailureCode        Text     `json:"failure_code"`
	Metadata           Metadata `json:"metadata"`
}

// LinkRequest is the body of POST /payment-links/.
type LinkRequest struct {
	Name        string `json:"name"`
	Amount      int64  `json:"amount,omitempty"`
	Type        string `json:"type"`
	Description string `json:"description,omitempty"`
	RedirectURL string `json:"redirect_url,omitempty"`
}

// Link is the body answering POST /payment-links/.
type Link struct {
	Envelope
	LinkID Text   `json:"link_id"`
	ID     Text   `json:"id"`
	Slug   Text   `json:"slug"`
	URL    Text   `json:"url"`
	QRCode Text   `json:"qr_code"`
	Amount Amount `json:"amount"`
	Type   Text   `json:"type"`
	Active Bool   `json:"active"`
}

// Decode unmarshals body into v. It exists so that every decode of a server
// body goes through one place, and so that a Transaction, the answer to
// nearly every call, is decoded by its fast path.
func Decode(body []byte, v any) error {
	if t, ok := v.(*Transaction); ok {
		return t.decode(body)
	}
	return json.Unmarshal(body, v)
}

// DecodeTransaction is Decode for a Transaction, where the caller knows
// the type: t does not escape through an any, so it can live on the
// caller's stack (ParseEvent's does, once per webhook).
func DecodeTransaction(body []byte, t *Transaction) error {
	return t.decode(body)
}

// plainTransaction is a Transaction as the documentation shows it: every
// field a string, the amount a number or a decimal string. encoding/json
// decodes it without calling a method per field, which is most of the cost
// of the lenient types; an answer that does not fit it (an id sent as a
// number, a metadata value that is not a string, "1,500.00") falls back to
// them.
type plainTransaction struct {
	Status             string            `json:"status"`
	ErrorCode          string            `json:"error_code"`
	Message            string            `json:"message"`
	Event              string            `json:"event"`
	TransactionID      string            `json:"transaction_id"`
	ExternalID         string            `json:"external_id"`
	Reference          string            `json:"reference"`
	Merchant           string            `json:"merchant"`
	PaymentURL         string            `json:"payment_url"`
	Amount             json.Number       `json:"amount"`
	Currency           string            `json:"currency"`
	PayerName          string            `json:"payer_name"`
	PayerPhone         string            `json:"payer_phone"`
	PayerEmail         string            `json:"payer_email"`
	PaymentMethod      string            `json:"payment_method"`
	Mode               string            `json:"mode"`
	TransactionDate    string            `json:"transaction_date"`
	Timezone           string            `json:"timezone"`
	TransactionDateGMT string            `json:"transaction_date_gmt"`
	CreatedAt          string            `json:"created_at"`
	TimeTaken          string            `json:"time_taken"`
	FailureCode        string            `json:"failure_code"`
	Metadata           map[string]string `json:"metadata"`
}

// decode reads body into t: the plain shape when it fits, the lenient
// types otherwise. Both agree on every body the plain shape accepts.
//
// Neither t nor the plain copy escapes on the fast path: encoding/json,
// which keeps what it is given on the heap, gets a value of its own.
func (t *Transaction) decode(body []byte) error {
	var p plainTransaction
	plain := decodeFlat(body, &p)
	if !plain {
		q := new(plainTransaction)
		if plain = json.Unmarshal(body, q) == nil; plain {
			p = *q
		}
	}
	if plain {
		var amount int64
		var took time.Duration
		var err error
		if p.Amount != "" {
			amount, err = ParseAmount(string(p.Amount))
		}
		if err == nil && strings.TrimSpace(p.TimeTaken) != "" {
			took, err = ParseDuration(p.TimeTaken)
		}
		if err == nil {
			*t = Transaction{
				Envelope:           Envelope{Status: Text(p.Status), ErrorCode: Text(p.ErrorCode), Message: Text(p.Message)},
				Event:              Text(p.Event),
				TransactionID:      Text(p.TransactionID),
				ExternalID:         Text(p.ExternalID),
				Reference:          Text(p.Reference),
				Merchant:           Text(p.Merchant),
				PaymentURL:         Text(p.PaymentURL),
				Amount:             Amount(amount),
				Currency:           Text(p.Currency),
				PayerName:          Text(p.PayerName),
				PayerPhone:         Text(p.PayerPhone),
				PayerEmail:         Text(p.PayerEmail),
				PaymentMethod:      Text(p.PaymentMethod),
				Mode:               Text(p.Mode),
				TransactionDate:    Text(p.TransactionDate),
				Timezone:           Text(p.Timezone),
				TransactionDateGMT: Text(p.TransactionDateGMT),
				CreatedAt:          Text(p.CreatedAt),
				TimeTaken:          Duration(took),
				FailureCode:        Text(p.FailureCode),
				Metadata:           Metadata(p.Metadata),
			}
			return nil
		}
	}
	lenient := new(Transaction)
	err := json.Unmarshal(body, lenient)
	*t = *lenient
	return err
}
