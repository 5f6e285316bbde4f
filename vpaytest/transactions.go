package vpaytest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/webhook"
)

// kigali is Rwanda's time zone, in which the API writes transaction_date.
var kigali = time.FixedZone("CAT", 2*60*60)

type transaction struct {
	ID, Reference, Method, Phone, Currency string
	PayerName, PayerEmail, Description     string
	CallbackURL, PaymentURL                string
	Amount                                 int64
	Metadata                               map[string]string
	Status                                 string // pending, successful, failed
	FailureCode, Message                   string
	Created, Completed                     time.Time
	hookAttempts                           int
	hookDelivered                          bool
	hookLost                               int
	// LinkID is the payment link the payer paid through, if any.
	LinkID string
	// checkout is the token of the payment's checkout page, if it has one.
	checkout string
	// awaitsPayer: a person settles it (the checkout page, the phone
	// page, Approve or Decline), not the payment delay.
	awaitsPayer bool
	// prompted: a MoMo prompt waits on Phone (a mtnrw payment, or one
	// whose payer chose MoMo on its checkout), which the phone page
	// answers. A card payment may carry a phone and is no prompt.
	prompted   bool
	deliveries []deliveryRecord
}

// deliveryRecord is one webhook delivery attempt, as the dashboard shows it.
type deliveryRecord struct {
	Attempt int
	At      time.Time
	URL     string
	Status  int    // the merchant's HTTP status; 0 when no answer came
	Answer  string // the first bytes of its answer, or the transport error
}

// maxDeliveryRecords caps what a transaction keeps of its deliveries.
const maxDeliveryRecords = 50

// createTransaction records a payment, unless its reference was used: then
// dup is true and nothing is created.
func (s *Server) createTransaction(b *payBody, amount int64) (tx *transaction, dup bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.refs[b.ExternalID]) > 0 {
		return nil, true
	}
	tx = &transaction{
		Reference:   b.ExternalID,
		Method:      b.PaymentMethod,
		Phone:       b.PayerPhone,
		Currency:    b.Currency,
		PayerName:   b.PayerName,
		PayerEmail:  b.PayerEmail,
		Description: b.PayeeMessage,
		CallbackURL: b.CallbackURL,
		Amount:      amount,
		Metadata:    b.Metadata,
		Message:     "Prompt sent. Waiting for the customer to confirm.",
		awaitsPayer: s.cfg.manualPayer,
	}
	s.add(tx)
	if !s.cfg.synchronousPay {
		s.schedule(tx)
	}
	return tx, false
}

// add records a new pending payment, made by the API or on a link's page:
// it gives it its id, its creation time and either a MoMo prompt (mtnrw)
// or a checkout page. The caller holds s.mu.
func (s *Server) add(tx *transaction) {
	s.seq++
	tx.ID = fmt.Sprintf("VP%08d", s.idBase+int64(s.seq))
	tx.Status, tx.Created = "pending", time.Now()
	tx.prompted = tx.Method == "mtnrw"
	if !tx.prompted {
		tx.checkout = randomHex(16)
		tx.PaymentURL = s.root() + "checkout/" + tx.checkout
	}
	s.txs[tx.ID] = tx
	s.order = append(s.order, tx.ID)
	s.refs[tx.Reference] = append(s.refs[tx.Reference], tx.ID)
	if tx.checkout != "" {
		s.checkouts[tx.checkout] = tx.ID
	}
	s.forgetOldest()
	s.touch()
}

// schedule starts what settles a pending transaction without a person:
// the payment delay, or for one that awaits its payer the prompt timeout.
// The caller holds s.mu.
func (s *Server) schedule(tx *transaction) {
	id := tx.ID
	if tx.awaitsPayer {
		s.background(func() {
			select {
			case <-time.After(s.cfg.promptTimeout):
				s.settle(id, outcomeTimeout)
			case <-s.ctx.Done():
			}
		})
		return
	}
	s.background(func() {
		select {
		case <-time.After(s.cfg.delay):
			s.complete(id)
		case <-s.ctx.Done():
		}
	})
}

// touch tells the pages' live views that something changed. The caller
// holds s.mu.
func (s *Server) touch() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// forgetOldest drops the oldest transactions past the cap. The caller holds
// s.mu.
func (s *Server) forgetOldest() {
	n := len(s.order) - s.cfg.maxTxs
	if n <= 0 {
		return
	}
	for i, id := range s.order[:n] {
		if tx := s.txs[id]; tx != nil {
			delete(s.refs, tx.Reference)
			delete(s.checkouts, tx.checkout)
		}
		delete(s.txs, id)
		s.order[i] = ""
	}
	// Consumed from the front: append moves the live part to a new array
	// when this one is full.
	s.order = s.order[n:]
}

// outcome is how a payment ends.
type outcome struct {
	status, code, message string
}

var (
	outcomeSuccess      = outcome{"successful", "", "Transaction completed successfully."}
	outcomeInsufficient = outcome{"failed", "INSUFFICIENT_FUNDS", "Customer's mobile wallet has insufficient balance."}
	outcomeTimeout      = outcome{"failed", "PAYMENT_TIMEOUT", "Customer did not respond to the MoMo prompt within 3 minutes."}
	outcomeCancelled    = outcome{"failed", "", "Customer cancelled the payment."}
	outcomeDeclined     = outcome{"failed", "", "Customer declined the payment."}
	outcomeCardDeclined = outcome{"failed", "INSUFFICIENT_FUNDS", "The card was declined: insufficient funds."}
)

// byPhone is the outcome the sandbox numbers decide.
func byPhone(phone string) outcome {
	switch phone {
	case PhoneInsufficientFunds:
		return outcomeInsufficient
	case PhoneTimeout:
		return outcomeTimeout
	case PhoneCancelled:
		return outcomeCancelled
	}
	return outcomeSuccess
}

// complete moves a pending transaction to the outcome its phone number
// decides, and starts its webhook.
func (s *Server) complete(id string) {
	s.mu.Lock()
	tx := s.txs[id]
	phone := ""
	if tx != nil {
		phone = tx.Phone
	}
	s.mu.Unlock()
	s.settle(id, byPhone(phone))
}

// settle ends a pending transaction with o and starts its webhook; a
// transaction already final is left as it is. It reports whether it
// settled the transaction.
func (s *Server) settle(id string, o outcome) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx := s.txs[id]
	if tx == nil || tx.Status != "pending" {
		return false
	}
	tx.Completed = time.Now()
	tx.Status, tx.FailureCode, tx.Message = o.status, o.code, o.message
	if l := s.links[tx.LinkID]; l != nil && o.status == "successful" {
		l.paid++
	}
	s.sendWebhook(tx)
	s.touch()
	return true
}

// sendWebhook starts the delivery of tx's webhook, unless the emulator was
// told to lose it. The caller holds s.mu.
func (s *Server) sendWebhook(tx *transaction) {
	targets := s.webhookTargets(tx)
	if len(targets) == 0 {
		return
	}
	if s.loss > 0 && rand.Float64() < s.loss {
		tx.hookLost++
		return
	}
	for _, url := range targets {
		s.background(func() { s.deliver(tx.ID, url) })
	}
}

// webhookTargets are where a transaction's webhooks go: the payment's
// callback_url and the dashboard's webhook URL (WithWebhookURL). The
// caller holds s.mu.
func (s *Server) webhookTargets(tx *transaction) []string {
	var targets []string
	if tx.CallbackURL != "" {
		targets = append(targets, tx.CallbackURL)
	}
	if u := s.cfg.webhookURL; u != "" && u != tx.CallbackURL {
		targets = append(targets, u)
	}
	return targets
}

// LoseWebhooks makes the emulator lose a share of the webhooks it would
// send from now on (0: none, the default; 1: all), as a deploy, a crashed
// load balancer or a wrong callback URL would: they are never delivered
// and never retried. Resend delivers one anyway.
func (s *Server) LoseWebhooks(share float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loss = min(max(share, 0), 1)
}

// Resend delivers a transaction's webhook again, with its current status,
// whether it was delivered or lost before.
func (s *Server) Resend(transactionID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx := s.txs[transactionID]
	if tx == nil {
		return fmt.Errorf("vpaytest: no transaction %q", transactionID)
	}
	targets := s.webhookTargets(tx)
	if len(targets) == 0 {
		return fmt.Errorf("vpaytest: transaction %q has no callback URL and the emulator no webhook URL", transactionID)
	}
	for _, url := range targets {
		s.background(func() { s.deliver(transactionID, url) })
	}
	return nil
}

// SetStatus changes a transaction's status later, as a refund or a
// dispute does after a successful payment, and sends its webhook (subject
// to LoseWebhooks).
func (s *Server) SetStatus(transactionID string, status vpay.Status) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx := s.txs[transactionID]
	if tx == nil {
		return fmt.Errorf("vpaytest: no transaction %q", transactionID)
	}
	tx.Status = string(status)
	if tx.Completed.IsZero() {
		tx.Completed = time.Now()
	}
	tx.hookAttempts, tx.hookDelivered = 0, false
	s.sendWebhook(tx)
	s.touch()
	return nil
}

// WebhooksLost returns how many of a transaction's webhooks LoseWebhooks
// dropped.
func (s *Server) WebhooksLost(transactionID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tx := s.txs[transactionID]; tx != nil {
		return tx.hookLost
	}
	return 0
}

// deliver POSTs the signed webhook for a transaction until the merchant
// answers 2xx or the attempts run out, backing off between attempts.
func (s *Server) deliver(id, url string) {
	view := s.view(id)
	if view == nil {
		return
	}
	s.mu.Lock()
	if tx := s.txs[id]; tx != nil {
		// The canonical status names the event: the body's status keeps
		// the API's "PENNDING" spelling, the event type does not.
		view["event"] = "payment." + strings.ToLower(tx.Status)
	}
	s.mu.Unlock()
	body, _ := json.Marshal(view)
	sig := webhook.Sign(body, s.WebhookSecret)
	backoff := s.cfg.hookBackoff
	for attempt := 1; attempt <= s.cfg.hookAttempts; attempt++ {
		rec := s.post(url, body, sig)
		rec.Attempt = attempt
		ok := rec.Status >= 200 && rec.Status < 300
		s.mu.Lock()
		if tx := s.txs[id]; tx != nil {
			// Webhook reports the payment's own callback (or the
			// dashboard's URL when it has none).
			if url == tx.CallbackURL || tx.CallbackURL == "" {
				tx.hookAttempts, tx.hookDelivered = attempt, ok
			}
			if len(tx.deliveries) >= maxDeliveryRecords {
				tx.deliveries = tx.deliveries[1:]
			}
			tx.deliveries = append(tx.deliveries, rec)
			s.touch()
		}
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-time.After(backoff):
			backoff *= 2
		case <-s.ctx.Done():
			return
		}
	}
}

// answerPreview is how much of the merchant's answer a delivery record
// keeps.
const answerPreview = 200

// post sends one webhook and records what the merchant answered.
func (s *Server) post(url string, body []byte, sig string) deliveryRecord {
	rec := deliveryRecord{At: time.Now(), URL: url}
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		rec.Answer = err.Error()
		return rec
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.SignatureHeader, sig)
	req.Header.Set("User-Agent", "V-Pay-Webhooks (vpaytest)")
	resp, err := s.hooks.Do(req)
	if err != nil {
		rec.Answer = err.Error()
		return rec
	}
	defer resp.Body.Close()
	preview, _ := io.ReadAll(io.LimitReader(resp.Body, answerPreview))
	rec.Status, rec.Answer = resp.StatusCode, strings.ToValidUTF8(string(preview), "?")
	return rec
}

// view is a transaction as /transaction/status/ and webhooks show it: the
// documentation's "self-hosted MoMo" shape with its quirks (upper-case
// status, "PENNDING", the amount as a "240.00" string, Kigali dates).
func (s *Server) view(id string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx := s.txs[id]
	if tx == nil {
		return nil
	}
	status := strings.ToUpper(tx.Status)
	if status == "PENDING" {
		status = "PENNDING"
	}
	v := map[string]any{
		"status_code":    200,
		"status":         status,
		"message":        tx.Message,
		"amount":         fmt.Sprintf("%d.00", tx.Amount),
		"currency":       tx.Currency,
		"payer_name":     tx.PayerName,
		"payer_phone":    "250" + strings.TrimPrefix(tx.Phone, "0"),
		"payment_method": tx.Method,
		"mode":           "sandbox",
		"transaction_id": tx.ID,
		"merchant":       s.cfg.merchant,
		"external_id":    tx.Reference,
		"created_at":     tx.Created.UTC().Format(time.RFC3339),
	}
	if tx.Phone == "" {
		v["payer_phone"] = ""
	}
	if !tx.Completed.IsZero() {
		v["transaction_date"] = tx.Completed.In(kigali).Format("2006-01-02 03:04:05 PM")
		v["timezone"] = "Africa/Kigali"
		v["transaction_date_gmt"] = tx.Completed.UTC().Format("2006-01-02 03:04:05 PM")
		v["time_taken"] = fmt.Sprintf("%d sec", int(tx.Completed.Sub(tx.Created).Seconds()))
	}
	if tx.FailureCode != "" {
		v["failure_code"] = tx.FailureCode
	}
	if len(tx.Metadata) > 0 {
		v["metadata"] = maps.Clone(tx.Metadata)
	}
	return v
}

// Transactions returns every payment the emulator holds, oldest first.
func (s *Server) Transactions() []vpay.Transaction {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]vpay.Transaction, 0, len(s.order))
	for _, id := range s.order {
		tx := s.txs[id]
		out = append(out, vpay.Transaction{
			TransactionID: tx.ID, Reference: tx.Reference, Status: vpay.Status(tx.Status),
			Amount: tx.Amount, Currency: tx.Currency, PayerName: tx.PayerName, PayerEmail: tx.PayerEmail,
			PayerPhone: tx.Phone, Method: vpay.PaymentMethod(tx.Method), Mode: vpay.ModeSandbox,
			Merchant: s.cfg.merchant, Message: tx.Message, FailureCode: vpay.ErrorCode(tx.FailureCode),
			TransactionDate: tx.Completed, CreatedAt: tx.Created, Metadata: maps.Clone(tx.Metadata),
		})
	}
	return out
}

// PaymentsFor returns how many payments exist for reference: 0 or 1, since
// the emulator, like V-Pay, refuses a reused reference.
func (s *Server) PaymentsFor(reference string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.refs[reference])
}

// Webhook returns how many times the emulator has tried to deliver a
// transaction's webhook, and whether one attempt got a 2xx.
func (s *Server) Webhook(transactionID string) (attempts int, delivered bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tx := s.txs[transactionID]; tx != nil {
		return tx.hookAttempts, tx.hookDelivered
	}
	return 0, false
}

// Complete settles a pending transaction now instead of after the payment
// delay, with the outcome its phone number decides.
func (s *Server) Complete(transactionID string) { s.complete(transactionID) }

// Approve settles a pending payment as successful, as the payer approving
// the MoMo prompt (or paying on the checkout page) would, and sends its
// webhook. It fails when there is no such payment or it is final already.
func (s *Server) Approve(transactionID string) error {
	return s.decide(transactionID, outcomeSuccess)
}

// Decline settles a pending payment as failed, as the payer declining the
// MoMo prompt would, and sends its webhook.
func (s *Server) Decline(transactionID string) error {
	return s.decide(transactionID, outcomeDeclined)
}

func (s *Server) decide(id string, o outcome) error {
	if s.settle(id, o) {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if tx := s.txs[id]; tx != nil {
		return fmt.Errorf("vpaytest: transaction %q is %s already", id, tx.Status)
	}
	return fmt.Errorf("vpaytest: no transaction %q", id)
}
