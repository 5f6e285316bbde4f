package wire

import (
	"encoding/json"
	"strings"
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
// body goes through one place.
func Decode(body []byte, v any) error {
	return json.Unmarshal(body, v)
}
