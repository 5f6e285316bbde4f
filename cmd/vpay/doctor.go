package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/openapi"
	"github.com/vonsung/vpay-go/vpaytest"
	"github.com/vonsung/vpay-go/webhook"
)

// The results a check can have.
const (
	resultPassed  = "passed"
	resultFailed  = "failed"
	resultSkipped = "skipped"
	resultWarning = "warning"
)

// maxClockSkew is the largest difference between the server's clock and the
// local one that rate-limit waits tolerate.
const maxClockSkew = 60 * time.Second

// doctorAmount is the payment the doctor makes in the sandbox, in RWF: the
// documented minimum.
const doctorAmount = 100

// checkResult is one line of the doctor's report.
type checkResult struct {
	Name    string `json:"name"`
	Reading string `json:"reading"`
	Result  string `json:"result"`
	Detail  string `json:"detail"`
}

type doctorFlags struct {
	webhookURL  string
	listen      string
	callbackURL string
	transcript  string
	timeout     time.Duration
}

func doctorCmd(e *env) *cobra.Command {
	var f doctorFlags
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check the API's answers against the SDK's reading of the documentation (never pays with a live key)",
		Long: `doctor runs a short script against the API in VPAY_BASE_URL with the environment's
credentials and prints one line per check, naming the reading of V-Pay's
documentation (openapi/vpay.yaml) that the check confirms or refutes.

In the sandbox it pays 100 RWF to the sandbox success number under a doctor-
reference, follows its status, pays the same reference again (it must be
refused) and creates a payment link. Unless both the key's prefix and the
auth answer say sandbox, it sends no payment and no link: only read-only checks.

Exit codes: 0 every check that ran passed (warnings allowed); 1 a check
failed; 2 usage error; 3 the API could not be reached.`,
		Example: `  VPAY_API_USER=... VPAY_API_KEY=sk_sandbox_... vpay doctor
  vpay doctor --json --transcript doctor.log
  vpay doctor --webhook-url https://shop.rw/webhooks/vpay
  vpay doctor --listen :8080 --callback-url https://shop.rw/webhooks/vpay`,
		Args: args(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDoctor(cmd.Context(), e, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.webhookURL, "webhook-url", "", "send a signed payment.pending test delivery to this endpoint of yours and check its answer")
	fl.StringVar(&f.listen, "listen", "", "listen on this address for V-Pay's callback of the doctor's payment (with --callback-url)")
	fl.StringVar(&f.callbackURL, "callback-url", "", "the public URL V-Pay will call, which reaches --listen")
	fl.StringVar(&f.transcript, "transcript", "", "write every request and answer, secrets and phone numbers removed, to this file")
	fl.DurationVar(&f.timeout, "timeout", 4*time.Minute, "how long to follow the payment and wait for its callback")
	return cmd
}

// doctor is one run of the script.
type doctor struct {
	e        *env
	f        doctorFlags
	spec     *contract
	rec      *recorder
	base     *url.URL
	c        *vpay.Client
	checks   []checkResult
	key      string
	secret   string
	failed   bool
	sandbox  bool
	hooks    chan delivery
	redactor *redactor
}

// delivery is a webhook the doctor's listener received.
type delivery struct {
	body []byte
	sig  string
}

func runDoctor(ctx context.Context, e *env, f doctorFlags) error {
	if (f.listen == "") != (f.callbackURL == "") {
		return usageError("--listen and --callback-url go together: --callback-url is the public URL that reaches --listen")
	}
	secret := e.getenv("VPAY_WEBHOOK_SECRET")
	if (f.webhookURL != "" || f.listen != "") && secret == "" {
		return usageError("VPAY_WEBHOOK_SECRET is not set (needed by --webhook-url and --listen)")
	}
	spec, err := loadContract(openapi.Spec)
	if err != nil {
		return &exitError{exitAPI, err}
	}
	d := &doctor{e: e, f: f, spec: spec, key: e.getenv("VPAY_API_KEY"), secret: secret,
		rec: &recorder{next: http.DefaultTransport.(*http.Transport).Clone()}}
	d.redactor = &redactor{secrets: []string{d.key, secret}}
	base := cmp.Or(e.getenv("VPAY_BASE_URL"), vpay.DefaultBaseURL)
	if d.base, err = url.Parse(base); err != nil {
		return usageError("VPAY_BASE_URL: %v", err)
	}
	hc := &http.Client{Transport: d.rec, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if d.c, err = e.client(vpay.WithHTTPClient(hc), vpay.WithMaxRetries(0), vpay.WithPollInterval(time.Second)); err != nil {
		return err
	}
	if f.listen != "" {
		stop, err := d.startListener(f.listen)
		if err != nil {
			return err
		}
		defer stop()
	}
	unreachable := d.run(ctx)
	if err := d.writeTranscript(); err != nil {
		return err
	}
	d.summary()
	switch {
	case unreachable != nil:
		return &exitError{exitAPI, unreachable}
	case d.failed:
		return &exitError{exitMismatches, errors.New("a check failed")}
	}
	return nil
}

// add records a check's result and prints it (as text; --json prints the
// whole report at the end).
func (d *doctor) add(name, reading, result, detail string) {
	topic, ok := d.spec.readings[reading]
	if !ok {
		panic("vpay doctor: no reading " + reading + " in openapi/vpay.yaml")
	}
	r := checkResult{Name: name, Reading: topic, Result: result, Detail: d.redactor.text(detail)}
	d.checks = append(d.checks, r)
	if result == resultFailed {
		d.failed = true
	}
	if d.e.json {
		return
	}
	colour := map[string]string{resultPassed: "32", resultFailed: "31", resultWarning: "33", resultSkipped: "90"}[result]
	fmt.Fprintf(d.e.stdout, "%s  %-15s %s: %s\n", d.e.colour(colour, fmt.Sprintf("%-7s", result)), name, topic, r.Detail)
}

// validated turns the spec's verdict on exs into a check result: problems
// fail, unknown fields warn.
func (d *doctor) validated(exs []*exchange, ok string) (result, detail string) {
	var v verdict
	for _, ex := range exs {
		if ex.label != "" {
			continue // a webhook, judged by its own check
		}
		v.add(d.spec.request(ex, d.base))
		v.add(d.spec.response(ex, d.base))
	}
	switch {
	case len(v.problems) > 0:
		return resultFailed, "the answer differs from openapi/vpay.yaml: " + strings.Join(v.problems, "; ")
	case len(v.unknown) > 0:
		return resultWarning, ok + "; fields openapi/vpay.yaml does not know (the SDK ignores them): " + strings.Join(v.unknown, ", ")
	}
	return resultPassed, ok
}

// explain is describe(err), with what the spec says of the answers that
// led to it: the SDK's error says what it could not use, the spec names
// the field.
func (d *doctor) explain(err error, exs []*exchange) string {
	var v verdict
	for _, ex := range exs {
		if ex.label == "" && ex.resp != nil && ex.resp.StatusCode < 300 {
			v.add(d.spec.response(ex, d.base))
		}
	}
	if len(v.problems) == 0 {
		return describe(err)
	}
	return describe(err) + " (" + strings.Join(v.problems, "; ") + ")"
}

// run runs every check and returns an error when the API could not be
// reached at all.
func (d *doctor) run(ctx context.Context) error {
	start := d.rec.mark()
	tok, err := d.c.Token(ctx)
	exs := d.rec.since(start)
	if len(exs) == 0 || exs[len(exs)-1].resp == nil {
		cause := err
		if len(exs) > 0 && exs[len(exs)-1].err != nil {
			cause = exs[len(exs)-1].err
		}
		d.add("credentials", "authentication", resultFailed, fmt.Sprintf("the API at %s could not be reached: %v", d.base, cause))
		d.skipAll("the API could not be reached")
		return fmt.Errorf("the API at %s could not be reached", d.base)
	}
	auth := exs[len(exs)-1]
	var answer struct {
		Access string `json:"access"`
		Mode   string `json:"mode"`
	}
	if auth.resp.StatusCode != http.StatusOK || json.Unmarshal(auth.respBody, &answer) != nil || answer.Access == "" {
		d.add("credentials", "authentication", resultFailed, "POST /auth/ refused the credentials: "+describe(err)+
			"; check VPAY_API_USER and VPAY_API_KEY belong to the environment of VPAY_BASE_URL")
		d.skipAll("the credentials were refused")
		return nil
	}
	r, detail := d.validated(exs, "POST /auth/ accepted the credentials")
	d.add("credentials", "authentication", r, detail)
	// The SDK refuses a token whose mode contradicts the key: the mode
	// check says why, from the answer itself.
	d.checkMode(vpay.Mode(answer.Mode), err)
	if err != nil {
		d.add("token-lifetime", "formats", resultSkipped, "the SDK refused the token: "+describe(err))
	} else {
		d.checkLifetime(tok)
	}
	d.checkClock(exs)
	d.checkRateLimit(exs)
	if d.f.webhookURL != "" {
		d.checkWebhookEndpoint(ctx)
	}
	if !d.sandbox {
		for _, c := range []struct{ name, reading string }{{"pay", "pay-fields"}, {"status", "status-call"},
			{"final-status", "status-spelling"}, {"duplicate", "error-codes"}, {"link", "links-path"}} {
			d.add(c.name, c.reading, resultSkipped, "live mode: the doctor moves no money and creates no link; only read-only checks ran")
		}
		if d.f.listen != "" {
			d.add("callback", "webhook-payload", resultSkipped, "live mode: no payment, so no callback")
		}
		return nil
	}
	d.checkPayment(ctx)
	d.checkLink(ctx)
	return nil
}

func (d *doctor) skipAll(why string) {
	for _, c := range []struct{ name, reading string }{{"mode", "key-prefixes"}, {"token-lifetime", "formats"},
		{"clock", "server-clock"}, {"rate-limit", "rate-limit-headers"}, {"pay", "pay-fields"}, {"status", "status-call"},
		{"final-status", "status-spelling"}, {"duplicate", "error-codes"}, {"link", "links-path"}} {
		d.add(c.name, c.reading, resultSkipped, why)
	}
}

// keyMode is the mode the credentials' prefixes announce, "" without one.
func keyMode(user, key string) vpay.Mode {
	for _, p := range []struct {
		prefix string
		mode   vpay.Mode
	}{{"sk_sandbox_", vpay.ModeSandbox}, {"sk_live_", vpay.ModeLive}, {"vpay_sandbox_", vpay.ModeSandbox}, {"vpay_live_", vpay.ModeLive}} {
		if strings.HasPrefix(key, p.prefix) || strings.HasPrefix(user, p.prefix) {
			return p.mode
		}
	}
	return ""
}

func (d *doctor) checkMode(answered vpay.Mode, tokenErr error) {
	byKey := keyMode(d.e.getenv("VPAY_API_USER"), d.key)
	// Real money is at stake: sandbox only when both sources say so.
	d.sandbox = byKey == vpay.ModeSandbox && answered == vpay.ModeSandbox && tokenErr == nil
	switch {
	case byKey == "":
		d.add("mode", "key-prefixes", resultPassed, fmt.Sprintf("the key has no known prefix; the auth answer says %q (treated as live: read-only checks only)", answered))
	case byKey != answered:
		d.add("mode", "key-prefixes", resultFailed, fmt.Sprintf("the key's prefix says %s, the auth answer says %q: check that the key belongs to VPAY_BASE_URL's environment", byKey, answered))
	case tokenErr != nil:
		d.add("mode", "key-prefixes", resultFailed, "the SDK refused the token: "+describe(tokenErr))
	default:
		d.add("mode", "key-prefixes", resultPassed, fmt.Sprintf("%s by the key's prefix and by the auth answer", byKey))
	}
}

func (d *doctor) checkLifetime(tok *vpay.Token) {
	life := tok.Expiry.Sub(tok.IssuedAt).Round(time.Second)
	if life <= 0 {
		d.add("token-lifetime", "formats", resultFailed, "expires_in gives the token no lifetime")
		return
	}
	d.add("token-lifetime", "formats", resultPassed, fmt.Sprintf("expires_in read as %s; the SDK renews the token ahead of that", life))
}

func (d *doctor) checkClock(exs []*exchange) {
	ex := exs[len(exs)-1]
	date := ex.resp.Header.Get("Date")
	server, err := http.ParseTime(date)
	if err != nil {
		d.add("clock", "server-clock", resultSkipped, "the answer has no Date header to compare with")
		return
	}
	// Date has a resolution of one second, far below the tolerance: the
	// time the request was sent is close enough.
	skew := server.Sub(ex.at).Round(time.Second)
	if skew.Abs() > maxClockSkew {
		d.add("clock", "server-clock", resultFailed, fmt.Sprintf("the server's clock is %s from this machine's (more than %s): synchronise this machine's clock (NTP), or report the server's to V-Pay", skew, maxClockSkew))
		return
	}
	d.add("clock", "server-clock", resultPassed, fmt.Sprintf("the server's clock is within %s of this machine's (%s)", maxClockSkew, skew))
}

func (d *doctor) checkRateLimit(exs []*exchange) {
	h := exs[len(exs)-1].resp.Header
	var missing []string
	vals := map[string]int64{}
	for _, name := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} {
		n, err := strconv.ParseInt(strings.TrimSpace(h.Get(name)), 10, 64)
		if err != nil {
			missing = append(missing, name)
			continue
		}
		vals[name] = n
	}
	if len(missing) > 0 {
		d.add("rate-limit", "rate-limit-headers", resultFailed, "the answer to POST /auth/ lacks or garbles "+strings.Join(missing, ", ")+
			": the SDK cannot see the limit coming; set the plan with vpay.WithPlan")
		return
	}
	reset := time.Unix(vals["X-RateLimit-Reset"], 0)
	if reset.Before(exs[len(exs)-1].at.Add(-maxClockSkew)) || reset.After(exs[len(exs)-1].at.Add(25*time.Hour)) {
		d.add("rate-limit", "rate-limit-headers", resultFailed, fmt.Sprintf("X-RateLimit-Reset %d is not a Unix time within a day: the SDK would wait wrongly", vals["X-RateLimit-Reset"]))
		return
	}
	plan := fmt.Sprintf("a custom plan (%d requests a minute)", vals["X-RateLimit-Limit"])
	switch vals["X-RateLimit-Limit"] {
	case int64(vpay.PlanStarter.PerMinute):
		plan = "the Starter plan (20 a minute): use vpay.WithPlan(vpay.PlanStarter)"
	case int64(vpay.PlanGrowth.PerMinute):
		plan = "the Growth plan (120 a minute): use vpay.WithPlan(vpay.PlanGrowth)"
	}
	d.add("rate-limit", "rate-limit-headers", resultPassed, fmt.Sprintf("present; Limit %d implies %s; %d left",
		vals["X-RateLimit-Limit"], plan, vals["X-RateLimit-Remaining"]))
}

// checkPayment pays in the sandbox, follows the payment and pays its
// reference again.
func (d *doctor) checkPayment(ctx context.Context) {
	ref := "doctor-" + randomHex(6)
	req := &vpay.PayRequest{Amount: doctorAmount, Method: vpay.MethodMTN, Phone: vpaytest.PhoneSuccess, Reference: ref,
		Description: "vpay doctor", CallbackURL: d.f.callbackURL}
	start := d.rec.mark()
	p, err := d.c.Pay(ctx, req)
	exs := d.rec.since(start)
	if err != nil {
		d.add("pay", "pay-fields", resultFailed, fmt.Sprintf("POST /pay/ refused a valid payment of %d RWF to %s: %s; the API may want the parameter table's names (method, phone, reference)",
			doctorAmount, vpaytest.PhoneSuccess, d.explain(err, exs)))
		for _, c := range []struct{ name, reading string }{{"status", "status-call"}, {"final-status", "status-spelling"}, {"duplicate", "error-codes"}} {
			d.add(c.name, c.reading, resultSkipped, "no payment to follow: the pay check failed")
		}
		if d.f.listen != "" {
			d.add("callback", "webhook-payload", resultSkipped, "no payment: the pay check failed")
		}
		return
	}
	r, detail := d.validated(exs, fmt.Sprintf("%s %s under reference %s", p.TransactionID, p.Status, ref))
	d.add("pay", "pay-fields", r, detail)

	start = d.rec.mark()
	_, err = d.c.Status(ctx, p.TransactionID)
	exs = d.rec.since(start)
	if err != nil {
		d.add("status", "status-call", resultFailed, "GET /transaction/status/?transaction_id= failed for the payment just made: "+d.explain(err, exs))
		d.add("final-status", "status-spelling", resultSkipped, "the status call failed")
	} else {
		r, detail := d.validated(exs, "GET /transaction/status/?transaction_id="+p.TransactionID+" answered")
		d.add("status", "status-call", r, detail)
		d.followStatus(ctx, p.TransactionID)
	}

	start = d.rec.mark()
	_, err = d.c.Pay(ctx, req)
	exs = d.rec.since(start)
	switch {
	case err == nil:
		d.add("duplicate", "error-codes", resultFailed, "the same reference was accepted twice: a retried Pay could charge twice")
	case errors.Is(err, vpay.ErrDuplicateReference):
		r, detail := d.validated(exs, "the same reference was refused: "+describe(err))
		d.add("duplicate", "error-codes", r, detail)
	default:
		d.add("duplicate", "error-codes", resultFailed, "the same reference was refused, but not as DUPLICATE_REFERENCE: "+describe(err))
	}
	if d.f.listen != "" {
		d.checkCallback(ctx, p.TransactionID)
	}
}

// followStatus polls the payment to a final status.
func (d *doctor) followStatus(ctx context.Context, id string) {
	wctx, cancel := context.WithTimeout(ctx, d.f.timeout)
	defer cancel()
	start := d.rec.mark()
	tx, err := d.c.Wait(wctx, id)
	exs := d.rec.since(start)
	switch {
	case err != nil && tx == nil:
		d.add("final-status", "status-spelling", resultFailed, "following the payment failed: "+describe(err))
	case err != nil:
		d.add("final-status", "status-spelling", resultFailed, fmt.Sprintf("still %q after %s: a status the SDK does not know never ends a Wait", tx.Status, d.f.timeout))
	case tx.Status != vpay.StatusSuccessful:
		d.add("final-status", "status-spelling", resultFailed, fmt.Sprintf("the sandbox success number ended %s, not successful", tx.Status))
	default:
		r, detail := d.validated(exs, "the payment ended successful")
		d.add("final-status", "status-spelling", r, detail)
	}
}

func (d *doctor) checkLink(ctx context.Context) {
	start := d.rec.mark()
	l, err := d.c.CreateLink(ctx, &vpay.LinkRequest{Name: "vpay doctor", Amount: doctorAmount, Type: vpay.LinkOneOff})
	exs := d.rec.since(start)
	if err != nil {
		d.add("link", "links-path", resultFailed, "POST /payment-links/ failed: "+d.explain(err, exs))
		return
	}
	r, detail := d.validated(exs, "created "+l.ID+" at "+l.URL)
	d.add("link", "links-path", r, detail)
}

// doctorDelivery is the test delivery --webhook-url sends: a pending
// payment, never a success a careless endpoint could ship an order on.
func doctorDelivery(ref string) []byte {
	body, _ := json.Marshal(map[string]any{
		"event": vpay.EventPaymentPending, "status": "PENNDING", "transaction_id": "VPDOCTOR" + strings.ToUpper(randomHex(4)),
		"external_id": ref, "amount": fmt.Sprintf("%d.00", doctorAmount), "currency": "RWF", "mode": "sandbox",
		"merchant": "VPAY-DOCTOR", "message": "A test delivery from vpay doctor: no payment exists.",
	})
	return body
}

func (d *doctor) checkWebhookEndpoint(ctx context.Context) {
	body := doctorDelivery("doctor-" + randomHex(6))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.f.webhookURL, strings.NewReader(string(body)))
	if err != nil {
		d.add("webhook-endpoint", "webhook-payload", resultFailed, "--webhook-url: "+err.Error())
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.SignatureHeader, webhook.Sign(body, d.secret))
	req.Header.Set("User-Agent", "vpay-doctor/"+vpay.Version)
	hc := &http.Client{Transport: d.rec, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	start := d.rec.mark()
	resp, err := hc.Do(req)
	for _, ex := range d.rec.since(start) {
		ex.label = "test delivery to --webhook-url"
	}
	if err != nil {
		d.add("webhook-endpoint", "webhook-payload", resultFailed, "your endpoint could not be reached: "+err.Error())
		return
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		d.add("webhook-endpoint", "webhook-payload", resultFailed, "your endpoint refused the signature (401): is it verifying with the same VPAY_WEBHOOK_SECRET?")
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		d.add("webhook-endpoint", "webhook-payload", resultFailed, fmt.Sprintf("your endpoint answered %s to a signed payment.pending delivery; V-Pay expects 2xx", resp.Status))
	default:
		d.add("webhook-endpoint", "webhook-payload", resultPassed, fmt.Sprintf("your endpoint answered %s to a signed payment.pending delivery", resp.Status))
	}
}

// startListener receives V-Pay's callbacks on addr.
func (d *doctor) startListener(addr string) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, &exitError{exitUsage, fmt.Errorf("--listen: %w", err)}
	}
	d.hooks = make(chan delivery, 16)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, webhook.DefaultMaxBodyBytes))
		if err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		rec := r.Clone(r.Context())
		rec.URL = &url.URL{Scheme: "http", Host: ln.Addr().String(), Path: r.URL.Path, RawQuery: r.URL.RawQuery}
		d.rec.add(&exchange{at: time.Now(), req: rec, reqBody: body, label: "callback received on --listen"})
		select {
		case d.hooks <- delivery{body: body, sig: r.Header.Get(webhook.SignatureHeader)}:
		default:
		}
		w.WriteHeader(http.StatusOK)
	})}
	go func() { _ = srv.Serve(ln) }()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

// checkCallback waits for V-Pay's delivery about the doctor's payment.
func (d *doctor) checkCallback(ctx context.Context, id string) {
	timer := time.NewTimer(d.f.timeout)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			d.add("callback", "webhook-payload", resultFailed, "interrupted while waiting for the callback")
			return
		case <-timer.C:
			d.add("callback", "webhook-payload", resultFailed, fmt.Sprintf("no callback naming %s reached %s within %s: check that --callback-url reaches --listen", id, d.f.listen, d.f.timeout))
			return
		case h := <-d.hooks:
			var m map[string]any
			if json.Unmarshal(h.body, &m) != nil || m["transaction_id"] != id {
				continue // another payment's, or not JSON: not ours to judge
			}
			if err := webhook.Verify(h.body, h.sig, d.secret); err != nil {
				d.add("callback", "webhook-payload", resultFailed, "the callback's X-VPay-Signature does not verify with VPAY_WEBHOOK_SECRET: "+err.Error())
				return
			}
			v := d.spec.webhookBody(h.body)
			switch {
			case len(v.problems) > 0:
				d.add("callback", "webhook-payload", resultFailed, "the callback differs from openapi/vpay.yaml: "+strings.Join(v.problems, "; "))
			case len(v.unknown) > 0:
				d.add("callback", "webhook-payload", resultWarning, "signed and as read, with fields openapi/vpay.yaml does not know: "+strings.Join(v.unknown, ", "))
			default:
				d.add("callback", "webhook-payload", resultPassed, fmt.Sprintf("signed, event %v, as openapi/vpay.yaml reads it", m["event"]))
			}
			return
		}
	}
}

func (d *doctor) writeTranscript() error {
	if d.f.transcript == "" {
		return nil
	}
	f, err := os.OpenFile(d.f.transcript, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return &exitError{exitUsage, fmt.Errorf("--transcript: %w", err)}
	}
	defer f.Close()
	if err := writeTranscript(f, d.rec.since(0), d.redactor); err != nil {
		return &exitError{exitUsage, fmt.Errorf("--transcript: %w", err)}
	}
	return f.Close()
}

func (d *doctor) summary() {
	counts := map[string]int{}
	for _, c := range d.checks {
		counts[c.Result]++
	}
	d.e.emit(map[string]any{"checks": d.checks, "ok": !d.failed}, func(w io.Writer) {
		fmt.Fprintf(w, "\n%d passed, %d failed, %d skipped, %d warnings\n", counts[resultPassed], counts[resultFailed], counts[resultSkipped], counts[resultWarning])
		if !d.sandbox {
			fmt.Fprintln(w, "Not the sandbox by both the key's prefix and the auth answer: no payment or link was sent, only read-only checks ran.")
		}
		if d.failed {
			fmt.Fprintln(w, "A failed check names the reading of V-Pay's documentation that the API contradicts: see \"Going live\" in the README.")
		}
	})
}

// describe is an API error in one line: its code, status and message.
func describe(err error) string {
	var ae *vpay.Error
	if errors.As(err, &ae) {
		if ae.Code != "" {
			return fmt.Sprintf("%s (HTTP %d): %s", ae.Code, ae.HTTPStatus, ae.Message)
		}
		return fmt.Sprintf("HTTP %d: %s", ae.HTTPStatus, ae.Message)
	}
	return err.Error()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
