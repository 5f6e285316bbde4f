package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/webhook"
)

// journalEntry is one delivery as listen records it, one JSON line each.
type journalEntry struct {
	ReceivedAt    time.Time `json:"received_at"`
	Path          string    `json:"path"`
	Signature     string    `json:"signature"`
	Verified      bool      `json:"verified"`
	Event         string    `json:"event,omitempty"`
	TransactionID string    `json:"transaction_id,omitempty"`
	Reference     string    `json:"reference,omitempty"`
	Amount        int64     `json:"amount,omitempty"`
	Status        string    `json:"status,omitempty"`
	Forwarded     int       `json:"forwarded_status,omitempty"` // the merchant's answer, 0 when not forwarded
	ForwardError  string    `json:"forward_error,omitempty"`
	// Body is the body as text, for reading; invalid UTF-8 in it is
	// replaced. RawBody is the exact bytes, which resend sends.
	Body    string `json:"body"`
	RawBody []byte `json:"body_base64,omitempty"`
}

// bytes is the delivery's exact body: RawBody, or Body in journals
// written before RawBody existed.
func (en *journalEntry) bytes() []byte {
	if en.RawBody != nil {
		return en.RawBody
	}
	return []byte(en.Body)
}

func listenCmd(e *env) *cobra.Command {
	var addr, forward, journal string
	cmd := &cobra.Command{
		Use:   "listen",
		Short: "Receive webhooks locally: verify, print, forward and journal every delivery",
		Example: `  export VPAY_WEBHOOK_SECRET=whsec_sandbox_demo     # what "vpay sandbox" prints
  vpay listen --forward-to http://localhost:3000/webhooks/vpay --journal deliveries.jsonl
  vpay listen --addr 0.0.0.0:4242 --json`,
		Args: args(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			secret, err := e.secret()
			if err != nil {
				return err
			}
			var jf *os.File
			if journal != "" {
				if jf, err = os.OpenFile(journal, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600); err != nil {
					return &exitError{exitUsage, err}
				}
				defer jf.Close()
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return &exitError{exitUsage, err}
			}
			l := &listener{e: e, secret: secret, forward: forward, journal: jf, hc: &http.Client{Timeout: 30 * time.Second,
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
			srv := &http.Server{Handler: l, ReadHeaderTimeout: 10 * time.Second}
			e.emit(map[string]any{"listening": "http://" + ln.Addr().String(), "forward_to": forward, "journal": journal}, func(w io.Writer) {
				fmt.Fprintf(w, "Listening on http://%s (any path)", ln.Addr())
				if forward != "" {
					fmt.Fprintf(w, ", forwarding verified deliveries to %s", forward)
				}
				fmt.Fprintln(w)
			})
			go func() {
				<-cmd.Context().Done()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = srv.Shutdown(ctx)
			}()
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return &exitError{exitAPI, err}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:4242", "address to listen on")
	cmd.Flags().StringVar(&forward, "forward-to", "", "forward each verified delivery (exact body and signature) to this URL")
	cmd.Flags().StringVar(&journal, "journal", "", "append every delivery to this JSON-lines file")
	return cmd
}

type listener struct {
	e       *env
	secret  string
	forward string
	journal *os.File
	hc      *http.Client
	mu      sync.Mutex // one delivery printed and journaled at a time
}

func (l *listener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, webhook.DefaultMaxBodyBytes))
	if err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	sig := r.Header.Get(webhook.SignatureHeader)
	en := journalEntry{ReceivedAt: time.Now().UTC(), Path: r.URL.Path, Signature: sig, Body: string(body), RawBody: body}
	en.Verified = webhook.Verify(body, sig, l.secret) == nil
	if ev, err := vpay.ParseEvent(body); err == nil {
		en.Event, en.TransactionID, en.Reference = string(ev.Type), ev.Transaction.TransactionID, ev.Transaction.Reference
		en.Amount, en.Status = ev.Transaction.Amount, string(ev.Transaction.Status)
	}
	answer := http.StatusOK
	switch {
	case !en.Verified:
		answer = http.StatusUnauthorized // shown, never forwarded
	case l.forward != "":
		en.Forwarded, err = l.pass(r.Context(), body, sig)
		switch {
		case err != nil:
			en.ForwardError = err.Error()
			answer = http.StatusBadGateway
		case en.Forwarded >= 200 && en.Forwarded < 300:
			answer = en.Forwarded
		case en.Forwarded >= 400:
			answer = en.Forwarded // V-Pay retries what the merchant refused
		default:
			// Anything else (a redirect, a 1xx) is no acceptance either;
			// V-Pay must retry, whatever it makes of a 3xx.
			answer = http.StatusBadGateway
		}
	}
	l.record(en)
	w.WriteHeader(answer)
}

// pass forwards the exact body and signature and returns the answer's
// status.
func (l *listener) pass(ctx context.Context, body []byte, sig string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.forward, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.SignatureHeader, sig)
	resp, err := l.hc.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func (l *listener) record(en journalEntry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.journal != nil {
		b, _ := json.Marshal(en)
		_, _ = l.journal.Write(append(b, '\n'))
	}
	// Whatever a sender put in a delivery reaches the terminal escaped:
	// an unsigned POST must not clear it, retitle it or plant links.
	if l.e.json {
		b, _ := json.Marshal(en)
		fmt.Fprintln(l.e.stdout, escapeJSON(b))
		return
	}
	mark := l.e.colour("32", "signature ok")
	if !en.Verified {
		mark = l.e.colour("31", "BAD SIGNATURE (not forwarded)")
	}
	w := l.e.stdout
	fmt.Fprintf(w, "%s  %s  %s  %s  ref %s  %d RWF  %s  [%s]", en.ReceivedAt.Local().Format("15:04:05"), escape(en.Path),
		escape(en.Event), escape(en.TransactionID), escape(en.Reference), en.Amount, escape(en.Status), mark)
	switch {
	case en.ForwardError != "":
		fmt.Fprintf(w, "  -> forward failed: %s", escape(en.ForwardError))
	case en.Forwarded != 0:
		fmt.Fprintf(w, "  -> %d", en.Forwarded)
	}
	fmt.Fprintln(w)
}

// eventNames are the events trigger sends, in a stable order.
func eventNames() []string {
	names := make([]string, 0, len(eventStatus))
	for ev := range eventStatus {
		names = append(names, string(ev))
	}
	slices.Sort(names)
	return names
}

// eventStatus is the status a synthetic event carries.
var eventStatus = map[vpay.EventType]string{
	vpay.EventPaymentSuccessful: "SUCCESSFUL", vpay.EventPaymentFailed: "FAILED", vpay.EventPaymentCancelled: "CANCELLED",
	vpay.EventPaymentRefunded: "REFUNDED", vpay.EventPaymentDisputed: "DISPUTED", vpay.EventPaymentPending: "PENNDING",
}

func triggerCmd(e *env) *cobra.Command {
	var to, ref string
	var amount int64
	cmd := &cobra.Command{
		Use:   "trigger EVENT --to URL",
		Short: "Send a correctly signed synthetic delivery (payment.successful, payment.failed, ...) to an endpoint",
		Example: `  vpay trigger payment.successful --to http://localhost:3000/webhooks/vpay
  vpay trigger payment.failed --to http://localhost:4242/ --reference order-42 --amount 1500`,
		Args: args(1),
		ValidArgsFunction: func(_ *cobra.Command, a []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(a) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return eventNames(), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, a []string) error {
			secret, err := e.secret()
			if err != nil {
				return err
			}
			ev := vpay.EventType(strings.ToLower(a[0]))
			status, ok := eventStatus[ev]
			if !ok {
				return usageError("unknown event %q; one of %s", a[0], strings.Join(eventNames(), ", "))
			}
			if to == "" {
				return usageError("--to is required")
			}
			var rnd [4]byte
			_, _ = rand.Read(rnd[:])
			if ref == "" {
				ref = "test-" + hex.EncodeToString(rnd[:])
			}
			body, _ := json.Marshal(map[string]any{
				"event": ev, "status": status, "transaction_id": "VPTEST" + strings.ToUpper(hex.EncodeToString(rnd[:])),
				"external_id": ref, "amount": fmt.Sprintf("%d.00", amount), "currency": "RWF", "mode": "sandbox",
				"payer_phone": "250780000000", "merchant": "VPAY-CLI",
				"transaction_date_gmt": time.Now().UTC().Format("2006-01-02 03:04:05 PM"),
			})
			return send(cmd.Context(), e, to, body, webhook.Sign(body, secret))
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the endpoint to deliver to")
	cmd.Flags().StringVar(&ref, "reference", "", "the order id the event names (default: a new test one)")
	cmd.Flags().Int64Var(&amount, "amount", 1000, "amount in RWF")
	return cmd
}

func resendCmd(e *env) *cobra.Command {
	var journal, to string
	var line int
	cmd := &cobra.Command{
		Use:   "resend --journal FILE --to URL",
		Short: "Send a delivery recorded by listen again, byte for byte, with its signature",
		Example: `  vpay resend --journal deliveries.jsonl --to http://localhost:3000/webhooks/vpay            # the last one
  vpay resend --journal deliveries.jsonl --line 3 --to http://localhost:3000/webhooks/vpay`,
		Args: args(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if journal == "" || to == "" {
				return usageError("--journal and --to are required")
			}
			en, err := readJournal(journal, line)
			if err != nil {
				return err
			}
			return send(cmd.Context(), e, to, en.bytes(), en.Signature)
		},
	}
	cmd.Flags().StringVar(&journal, "journal", "", "the journal listen wrote")
	cmd.Flags().IntVar(&line, "line", 0, "which delivery (1 is the first; 0, the last)")
	cmd.Flags().StringVar(&to, "to", "", "the endpoint to deliver to")
	return cmd
}

func readJournal(path string, line int) (journalEntry, error) {
	var en journalEntry
	f, err := os.Open(path)
	if err != nil {
		return en, &exitError{exitUsage, err}
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	n, found := 0, false
	for sc.Scan() {
		n++
		if line == 0 || n == line {
			if err := json.Unmarshal(sc.Bytes(), &en); err != nil {
				return en, &exitError{exitUsage, fmt.Errorf("%s line %d: %w", path, n, err)}
			}
			found = true
			if line != 0 {
				break
			}
		}
	}
	if !found {
		return en, usageError("%s has no delivery %d (it has %d)", path, line, n)
	}
	return en, sc.Err()
}

// send POSTs a signed delivery and reports the endpoint's answer.
func send(ctx context.Context, e *env, to string, body []byte, sig string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, to, bytes.NewReader(body))
	if err != nil {
		return usageError("--to: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.SignatureHeader, sig)
	req.Header.Set("User-Agent", "vpay-cli/"+vpay.Version)
	resp, err := (&http.Client{Timeout: 30 * time.Second, CheckRedirect: refuseRedirects}).Do(req)
	if err != nil {
		return &exitError{exitAPI, err}
	}
	resp.Body.Close()
	e.emit(map[string]any{"to": to, "status": resp.StatusCode}, func(w io.Writer) {
		fmt.Fprintf(w, "Delivered to %s: %s\n", to, resp.Status)
	})
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &exitError{exitAPI, fmt.Errorf("the endpoint answered %s", resp.Status)}
	}
	return nil
}
