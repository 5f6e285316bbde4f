package vpay

import (
	"strings"
	"time"

	"github.com/vonsung/vpay-go/internal/wire"
)

// The conversions from the wire's lenient shapes to the public types, all
// in one place: what the SDK makes of each field of the documentation.

func parseStatus(s string) Status { return Status(wire.NormalizeStatus(s)) }

func transactionFromWire(w *wire.Transaction) *Transaction {
	t := new(Transaction)
	fillTransaction(t, w)
	return t
}

// fillTransaction sets t from w, in place: an Event holds its Transaction
// by value, and filling it there saves a webhook a copy.
func fillTransaction(t *Transaction, w *wire.Transaction) {
	*t = Transaction{
		TransactionID: string(w.TransactionID),
		Reference:     string(w.ExternalID),
		Status:        parseStatus(string(w.Status)),
		Amount:        int64(w.Amount),
		Currency:      string(w.Currency),
		PayerName:     string(w.PayerName),
		PayerEmail:    string(w.PayerEmail),
		PayerPhone:    string(w.PayerPhone),
		Method:        PaymentMethod(strings.ToLower(string(w.PaymentMethod))),
		Mode:          Mode(strings.ToLower(string(w.Mode))),
		Merchant:      string(w.Merchant),
		Message:       string(w.Message),
		FailureCode:   ErrorCode(strings.ToUpper(string(w.FailureCode))),
		TimeTaken:     time.Duration(w.TimeTaken),
		Metadata:      w.Metadata,
	}
	if t.Reference == "" {
		t.Reference = string(w.Reference)
	}
	if w.ErrorCode != "" && t.FailureCode == "" {
		t.FailureCode = ErrorCode(strings.ToUpper(string(w.ErrorCode)))
	}
	// The GMT form is unambiguous; the local one is read in the zone the
	// body names, Kigali by default.
	if d, ok := wire.ParseTime(string(w.TransactionDateGMT), time.UTC); ok {
		t.TransactionDate = d
	} else if w.TransactionDate != "" {
		loc := wire.Kigali()
		if tz := string(w.Timezone); tz != "" && tz != "Africa/Kigali" {
			// Loading a zone reads tzdata: only for a zone other than
			// the one every documented answer names.
			if l, err := time.LoadLocation(tz); err == nil {
				loc = l
			}
		}
		if d, ok := wire.ParseTime(string(w.TransactionDate), loc); ok {
			t.TransactionDate = d
		} else {
			t.TransactionDateText = string(w.TransactionDate)
		}
	}
	t.CreatedAt, _ = wire.ParseTime(string(w.CreatedAt), time.UTC)
}

// paymentFromWire is Pay's answer. ref is the reference sent, which the
// answer may not repeat.
func paymentFromWire(tx *wire.Transaction, ref string) *Payment {
	p := &Payment{
		TransactionID: string(tx.TransactionID),
		Reference:     ref,
		Status:        parseStatus(string(tx.Status)),
		Message:       string(tx.Message),
		PaymentURL:    string(tx.PaymentURL),
		Merchant:      string(tx.Merchant),
	}
	p.CreatedAt, _ = wire.ParseTime(string(tx.CreatedAt), time.UTC)
	if tx.Amount != 0 || tx.TransactionDate != "" || tx.PayerPhone != "" {
		// The self-hosted MoMo shape: the payment completed before the
		// answer, which carries the whole transaction.
		t := transactionFromWire(tx)
		if t.Reference == "" {
			t.Reference = ref
		}
		p.Transaction = t
	}
	return p
}

// linkFromWire is CreateLink's answer; the id comes as link_id or id.
func linkFromWire(w *wire.Link) *Link {
	l := &Link{
		ID:        string(w.LinkID),
		Slug:      string(w.Slug),
		URL:       string(w.URL),
		QRCodeURL: string(w.QRCode),
		Amount:    int64(w.Amount),
		Type:      LinkType(strings.ToLower(string(w.Type))),
		Active:    bool(w.Active),
	}
	if l.ID == "" {
		l.ID = string(w.ID)
	}
	return l
}
