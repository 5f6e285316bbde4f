package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"rsc.io/qr"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/internal/testutil"
	"github.com/vonsung/vpay-go/vpaytest"
	"github.com/vonsung/vpay-go/webhook"
)

// TestExitCodes runs the binary for every row of the README's exit-code
// table that a single command line reaches; the interrupt rows follow.
func TestExitCodes(t *testing.T) {
	s := vpaytest.NewServer(vpaytest.WithPaymentDelay(50 * time.Millisecond))
	defer s.Close()
	env := creds(s)
	for _, tt := range []struct {
		name string
		args []string
		want int
		say  string // in stderr
	}{
		{"success", []string{"pay", "--amount", "1000", "--phone", vpaytest.PhoneSuccess, "--wait", "--interval", "10ms"}, 0, ""},
		{"ended not successful", []string{"pay", "--amount", "1000", "--phone", vpaytest.PhoneCancelled, "--wait", "--interval", "10ms"}, 1, ""},
		{"missing required flag", []string{"pay", "--phone", vpaytest.PhoneSuccess}, 2, `required flag(s) "amount" not set`},
		{"unknown command", []string{"paty"}, 2, `unknown command "paty"`},
		{"bad flag value", []string{"pay", "--amount", "ten"}, 2, "--amount"},
		{"unknown flag", []string{"status", "--bogus", "VP1"}, 2, "--bogus"},
		{"no command at all", nil, 2, "vpay needs a command"},
		{"group without a subcommand", []string{"completion"}, 2, "vpay completion needs a command: bash"},
		{"group with an unknown subcommand", []string{"completion", "tcsh"}, 2, `unknown command "tcsh" for "vpay completion"`},
		{"wrong number of arguments", []string{"status"}, 2, "status takes 1 argument"},
		{"unknown help topic", []string{"help", "refund"}, 2, `unknown help topic "refund"`},
		{"help on a command", []string{"help", "pay"}, 0, ""},
		{"input the SDK refuses", []string{"pay", "--amount", "50", "--phone", vpaytest.PhoneSuccess}, 2, "--amount: 50 RWF is below the minimum"},
		{"phone required", []string{"pay", "--amount", "500"}, 2, "--phone is required with --method mtnrw"},
		{"bad --plan", []string{"sandbox", "--plan", "platinum"}, 2, `--plan "platinum"`},
		{"API error", []string{"status", "VP00000001"}, 3, "vpay: "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := vpayRun(t, env, tt.args...)
			assert.Equal(t, tt.want, r.code, "stderr: %s", r.stderr)
			assert.Contains(t, r.stderr, tt.say)
			assert.NotContains(t, r.stderr, "PayRequest", "flags, not Go names")
		})
	}
	slow := vpaytest.NewServer(vpaytest.WithPaymentDelay(time.Hour))
	defer slow.Close()
	r := vpayRun(t, creds(slow), "pay", "--amount", "1500", "--phone", vpaytest.PhoneSuccess, "--wait", "--timeout", "300ms", "--interval", "20ms")
	assert.Equal(t, 4, r.code, "timed out still pending: %s", r.stderr)
	assert.Contains(t, r.stdout, "waiting up to 300ms")
	assert.Contains(t, r.stdout, "of 300ms] ", "the progress shows the real --timeout")
	s.Inject("/pay/", vpaytest.Fault{Drop: vpaytest.DropAfter, Count: 3})
	r = vpayRun(t, env, "pay", "--amount", "1500", "--phone", vpaytest.PhoneSuccess, "--reference", "order-lost-2")
	assert.Equal(t, 5, r.code, "outcome unknown: %s", r.stderr)
}

// interrupt starts the binary, waits until ready says it is where the test
// wants it, sends SIGINT and returns the exit code and stderr.
func interrupt(t *testing.T, env []string, ready func(firstLine string) bool, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(cleanEnv(), env...)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	require.NoError(t, cmd.Start())
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	first := ""
	if ready != nil {
		first = testutil.Recv(t, lines, "the first line of "+args[0])
		require.Eventually(t, func() bool { return ready(first) }, 20*time.Second, 5*time.Millisecond, "%s never got ready", args[0])
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	exited := make(chan error, 1)
	go func() {
		for range lines { // drain, so the command never blocks on stdout
		}
		exited <- cmd.Wait()
	}()
	err = testutil.Recv(t, exited, args[0]+" to exit after Ctrl-C")
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), errb.String()
	}
	require.NoError(t, err)
	return 0, errb.String()
}

func TestInterruptExitCodes(t *testing.T) {
	slow := vpaytest.NewServer(vpaytest.WithPaymentDelay(time.Hour))
	defer slow.Close()
	env := creds(slow)

	code, stderr := interrupt(t, env, func(string) bool { return true }, "pay", "--amount", "1500", "--phone", vpaytest.PhoneSuccess, "--wait", "--interval", "20ms")
	assert.Equal(t, 130, code, "Ctrl-C while following a pending payment: %s", stderr)
	assert.Contains(t, stderr, "vpay wait VP", "it says how to follow the payment again")

	code, stderr = interrupt(t, append(env, "X=1"), func(string) bool { return true }, "pay", "--amount", "1500", "--phone", vpaytest.PhoneSuccess, "--wait", "--interval", "20ms", "--json")
	assert.Equal(t, 130, code)
	assert.Contains(t, stderr, `"code":"interrupted"`)

	// A Pay in flight: the payment exists, its answer never came.
	slow.Inject("/pay/", vpaytest.Fault{Delay: time.Hour})
	cmd := exec.Command(binary, "pay", "--amount", "1500", "--phone", vpaytest.PhoneSuccess, "--reference", "order-ctrl-c")
	cmd.Env = append(cleanEnv(), env...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	require.NoError(t, cmd.Start())
	require.Eventually(t, func() bool { return slow.PaymentsFor("order-ctrl-c") == 1 }, 20*time.Second, 5*time.Millisecond)
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	err := cmd.Wait()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 5, ee.ExitCode(), "an unknown outcome wins over the interrupt: %s", errb.String())
	assert.Contains(t, errb.String(), "order-ctrl-c")

	addr := freeAddr(t)
	code, stderr = interrupt(t, []string{"VPAY_WEBHOOK_SECRET=whsec_x"}, func(string) bool { return true }, "listen", "--addr", addr)
	assert.Equal(t, 0, code, "listen is stopped with Ctrl-C: %s", stderr)
	code, stderr = interrupt(t, nil, func(string) bool { return true }, "sandbox", "--addr", freeAddr(t))
	assert.Equal(t, 0, code, "sandbox is stopped with Ctrl-C: %s", stderr)
}

func TestJSONErrorsOnStderr(t *testing.T) {
	s := vpaytest.NewServer()
	defer s.Close()
	type jsonErr struct {
		Error struct {
			Code     string `json:"code"`
			Message  string `json:"message"`
			ExitCode int    `json:"exit_code"`
		} `json:"error"`
	}
	for _, tt := range []struct {
		args       []string
		code, exit int
		errCode    string
		msg        string
	}{
		{[]string{"pay", "--amount", "ten", "--json"}, 2, 2, "usage", "--amount"},
		{[]string{"--json", "pay", "--amount", "500"}, 2, 2, "usage", "--phone is required with --method mtnrw"},
		{[]string{"status", "VP00000009", "--json"}, 3, 3, "NOT_FOUND", "No transaction"},
	} {
		r := vpayRun(t, creds(s), tt.args...)
		assert.Equal(t, tt.code, r.code)
		assert.Empty(t, r.stdout, "errors go to stderr")
		var je jsonErr
		require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(r.stderr)), &je), "stderr is one JSON document: %q", r.stderr)
		assert.Equal(t, tt.errCode, je.Error.Code)
		assert.Equal(t, tt.exit, je.Error.ExitCode)
		assert.Contains(t, je.Error.Message, tt.msg)
	}
}

func TestARefusedRedirectSaysWhereItPointed(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://api.elsewhere.example"+r.URL.Path, http.StatusFound)
	}))
	defer api.Close()
	r := vpayRun(t, []string{"VPAY_BASE_URL=" + api.URL + "/api/", "VPAY_API_USER=vpay_sandbox_x", "VPAY_API_KEY=sk_sandbox_x"}, "status", "VP00000001")
	assert.Equal(t, 3, r.code)
	assert.Contains(t, r.stderr, "redirect (302) to https://api.elsewhere.example/api/auth/", r.stderr)

	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://127.0.0.1:9/stolen", http.StatusTemporaryRedirect)
	}))
	defer hook.Close()
	r = vpayRun(t, []string{"VPAY_WEBHOOK_SECRET=whsec_x"}, "trigger", "payment.successful", "--to", hook.URL+"/hooks")
	assert.Equal(t, 3, r.code)
	assert.Contains(t, r.stderr, "redirect (307) to http://127.0.0.1:9/stolen", "a signed delivery does not follow a redirect")
}

func TestListenWithoutASecretSaysHow(t *testing.T) {
	r := vpayRun(t, nil, "listen", "--addr", freeAddr(t))
	assert.Equal(t, 2, r.code)
	// Two hints, each checked on its own: one would hide the other's loss.
	assert.Equal(t, 2, strings.Count(r.stderr, "export VPAY_WEBHOOK_SECRET="), r.stderr)
	assert.Contains(t, r.stderr, "export VPAY_WEBHOOK_SECRET=<the webhook secret of your V-Pay dashboard>", "the live hint")
	assert.Contains(t, r.stderr, `"vpay sandbox" prints (export VPAY_WEBHOOK_SECRET=whsec_sandbox_demo)`, "the sandbox hint")
}

// hostile is what an attacker puts in a delivery: clear the screen,
// retitle the terminal, plant a hyperlink, a C1 CSI, a bidi override, a
// DEL (which encoding/json leaves raw).
const hostileText = "\x1b[2J\x1b]0;pwned\x07\x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\\u009b31m\u202e\x7f"

func TestListenPrintsHostileDeliveriesEscaped(t *testing.T) {
	const secret = "whsec_cli_test"
	env := []string{"VPAY_WEBHOOK_SECRET=" + secret}
	body, _ := json.Marshal(map[string]any{"event": "payment." + hostileText, "transaction_id": "VP1" + hostileText, "external_id": "order" + hostileText, "status": "SUCCESSFUL" + hostileText, "amount": "1000.00"})
	for _, mode := range []string{"text", "json"} {
		t.Run(mode, func(t *testing.T) {
			addr := freeAddr(t)
			args := []string{"listen", "--addr", addr}
			if mode == "json" {
				args = append(args, "--json")
			}
			_, lines, _ := start(t, env, args...)
			for _, signed := range []bool{false, true} {
				req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/hook/%1b%5d0;x%07", bytes.NewReader(body))
				if signed {
					req.Header.Set(webhook.SignatureHeader, webhook.Sign(body, secret))
				}
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				resp.Body.Close()
				line := next(t, lines)
				for _, c := range []string{"\x1b", "\x07", "\u009b", "\u202e", "\x7f"} {
					assert.NotContains(t, line, c, "signed=%v: %q reached the terminal", signed, c)
				}
				if mode == "text" {
					assert.Contains(t, line, `\x1b[2J\x1b]0;pwned\x07`, "shown, escaped")
					assert.Contains(t, line, `\u009b31m\u202e\x7f`)
				} else {
					assert.Contains(t, line, `\u009b31m\u202e\u007f`, "escaped in the JSON string")
					var en journalEntry
					require.NoError(t, json.Unmarshal([]byte(line), &en), "still JSON")
					assert.Equal(t, "order"+hostileText, en.Reference, "the same text once decoded")
				}
			}
		})
	}
}

func TestResendIsByteForByteEvenForInvalidUTF8(t *testing.T) {
	const secret = "whsec_cli_test"
	env := []string{"VPAY_WEBHOOK_SECRET=" + secret}
	got := make(chan []byte, 4)
	merchant := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if webhook.Verify(b, r.Header.Get(webhook.SignatureHeader), secret) != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
		}
		got <- b
	}))
	defer merchant.Close()
	journal := filepath.Join(t.TempDir(), "j.jsonl")
	addr := freeAddr(t)
	_, lines, _ := start(t, env, "listen", "--addr", addr, "--journal", journal, "--forward-to", merchant.URL)
	body := []byte("{\"event\":\"payment.successful\",\"transaction_id\":\"VP1\",\"payer_name\":\"\xff\xfe Mugisha \xc3\",\"status\":\"SUCCESSFUL\"}")
	require.Equal(t, http.StatusOK, deliverSigned(t, "http://"+addr+"/", body, secret))
	next(t, lines)
	assert.Equal(t, body, testutil.Recv(t, got, "the forwarded delivery"))

	r := vpayRun(t, env, "resend", "--journal", journal, "--to", merchant.URL)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, body, testutil.Recv(t, got, "the resent delivery"), "byte for byte, invalid UTF-8 included")

	// A journal written before body_base64 existed still resends its body.
	old := filepath.Join(t.TempDir(), "old.jsonl")
	plain := []byte(`{"event":"payment.failed","transaction_id":"VP2"}`)
	line, _ := json.Marshal(map[string]any{"signature": webhook.Sign(plain, secret), "body": string(plain)})
	require.NoError(t, os.WriteFile(old, append(line, '\n'), 0o600))
	r = vpayRun(t, env, "resend", "--journal", old, "--to", merchant.URL)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, plain, testutil.Recv(t, got, "the old journal's delivery"))
	var en journalEntry
	b, _ := os.ReadFile(journal)
	require.NoError(t, json.Unmarshal(bytes.TrimSpace(b), &en))
	assert.Equal(t, base64.StdEncoding.EncodeToString(body), base64.StdEncoding.EncodeToString(en.RawBody))
}

func TestListenNeverAcknowledgesWhatTheMerchantRefused(t *testing.T) {
	const secret = "whsec_cli_test"
	env := []string{"VPAY_WEBHOOK_SECRET=" + secret}
	answer := make(chan int, 1)
	merchant := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code := <-answer
		if code >= 300 && code < 400 {
			w.Header().Set("Location", "/elsewhere")
		}
		w.WriteHeader(code)
	}))
	defer merchant.Close()
	addr := freeAddr(t)
	_, lines, _ := start(t, env, "listen", "--addr", addr, "--forward-to", merchant.URL)
	body := []byte(`{"event":"payment.successful","transaction_id":"VP1","status":"SUCCESSFUL"}`)
	for merchantSays, want := range map[int]int{200: 200, 204: 204, 500: 500, 409: 409, 302: 502, 301: 502} {
		answer <- merchantSays
		code := deliverSigned(t, "http://"+addr+"/", body, secret)
		next(t, lines)
		assert.Equal(t, want, code, "the merchant answered %d: V-Pay must retry unless it was 2xx", merchantSays)
	}
	merchant.Close() // nobody answers: 502
	assert.Equal(t, http.StatusBadGateway, deliverSigned(t, "http://"+addr+"/", body, secret))
}

// deliverSigned POSTs body signed with secret, as V-Pay does, and returns
// the answer's status.
func deliverSigned(t *testing.T, url string, body []byte, secret string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set(webhook.SignatureHeader, webhook.Sign(body, secret))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

func TestReconcileBOMDuplicatesAndFormulaCells(t *testing.T) {
	s := vpaytest.NewServer(vpaytest.WithPaymentDelay(time.Millisecond))
	defer s.Close()
	c := s.Client()
	var ids []string
	for i := range 3 {
		p, err := c.Pay(t.Context(), &vpay.PayRequest{Amount: 1000, Phone: vpaytest.PhoneSuccess, Reference: fmt.Sprintf("ord-%d", i)})
		require.NoError(t, err)
		ids = append(ids, p.TransactionID)
	}
	for _, id := range ids {
		_, err := c.Wait(t.Context(), id)
		require.NoError(t, err)
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "excel.csv")
	csv := "\ufeffTransaction_ID,reference,amount\r\n" +
		ids[0] + ",ord-0,1000\r\n" +
		ids[1] + ",ord-1,1000\r\n" +
		ids[1] + ",ord-1-again,1000\r\n" + // the same payment claimed by a second order
		ids[2] + ",\"=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\",1000\r\n" +
		"@SUM(1+1),+cmd,-2\r\n"
	require.NoError(t, os.WriteFile(in, []byte(csv), 0o644))
	out := filepath.Join(dir, "out.csv")
	r := vpayRun(t, creds(s), "reconcile", in, "--out", out)
	assert.Equal(t, 1, r.code, r.stderr)
	assert.NotContains(t, r.stderr, "no transaction_id column", "the byte-order mark is not part of the header")
	assert.NotContains(t, r.stderr, "\r[", "no progress bar when stderr is no terminal")
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	rows := strings.Split(strings.TrimSpace(string(b)), "\n")
	require.Len(t, rows, 6, string(b))
	assert.Equal(t, ids[0]+",ord-0,1000,successful,1000,", rows[1], "a clean row")
	assert.Contains(t, rows[2], "transaction id also claimed by line 4")
	assert.Contains(t, rows[3], "transaction id also claimed by line 3")
	assert.Contains(t, rows[3], "reference ord-1 not ord-1-again")
	assert.Contains(t, rows[4], `"'=HYPERLINK(""http://evil.example"",""x"")"`, "a formula is written as text")
	assert.True(t, strings.HasPrefix(rows[5], "'@SUM(1+1),'+cmd,'-2,"), rows[5])
	for _, row := range rows {
		for _, cell := range strings.Split(row, ",") {
			cell = strings.TrimPrefix(cell, `"`)
			if cell != "" {
				assert.NotContains(t, "=+-@\t\r", cell[:1], "cell %q of %q", cell, row)
			}
		}
	}
	r = vpayRun(t, creds(s), "reconcile", in, "--out", out, "--json")
	assert.NotContains(t, r.stderr, "[#", "no progress under --json")
}

// TestReconcileNeutralisesATabOrCRLead calls neutralise itself: reconcile
// trims the cells it reads and the statuses it is told, so no input reaches
// it with a leading tab or CR today, yet a spreadsheet that skips one runs
// the formula after it, and the guard must not depend on that trimming.
func TestReconcileNeutralisesATabOrCRLead(t *testing.T) {
	got := neutralise([]string{"\r=1+1", "\t@SUM(A1)", "\r", "\t", "ok", " =x", ""})
	assert.Equal(t, []string{"'\r=1+1", "'\t@SUM(A1)", "'\r", "'\t", "ok", " =x", ""}, got)
}

func TestReconcileSaysWhenItWaitsForTheRateLimitWindow(t *testing.T) {
	s := vpaytest.NewServer(vpaytest.WithPlan(vpay.PlanStarter), vpaytest.WithRateWindow(400*time.Millisecond), vpaytest.WithPaymentDelay(time.Millisecond))
	defer s.Close()
	dir := t.TempDir()
	in := filepath.Join(dir, "in.csv")
	var csv strings.Builder
	csv.WriteString("transaction_id\n")
	for i := range 25 { // more than background work's share of a Starter window
		fmt.Fprintf(&csv, "VP%08d\n", i)
	}
	require.NoError(t, os.WriteFile(in, []byte(csv.String()), 0o644))
	r := vpayRun(t, creds(s), "reconcile", in, "--out", filepath.Join(dir, "out.csv"))
	assert.Equal(t, 1, r.code, "every row is not found")
	assert.Regexp(t, `waiting \d+(\.\d+)?m?s for the next rate-limit window`, r.stderr)
	assert.Zero(t, s.Throttled(), "it waited instead of earning a 429")

	r = vpayRun(t, creds(s), "reconcile", in, "--out", filepath.Join(dir, "out2.csv"), "--json")
	assert.Contains(t, r.stderr, `"reason":"rate_limit_window"`, "under --json the wait is a JSON line")
	assert.NotContains(t, r.stderr, "[#")
}

func TestPayWaitShowsWhyAPaymentFailed(t *testing.T) {
	s := vpaytest.NewServer(vpaytest.WithPaymentDelay(10 * time.Millisecond))
	defer s.Close()
	r := vpayRun(t, creds(s), "pay", "--amount", "1500", "--phone", vpaytest.PhoneInsufficientFunds, "--wait", "--interval", "10ms")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stdout, "(INSUFFICIENT_FUNDS: Customer's mobile wallet has insufficient balance.)")
	r = vpayRun(t, creds(s), "pay", "--amount", "1500", "--phone", vpaytest.PhoneCancelled, "--wait", "--interval", "10ms")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stdout, "failed  1500 RWF  (Customer cancelled the payment.)", "a reason without a code is shown too")
}

func TestEveryCommandHasExamples(t *testing.T) {
	root := newRoot(&env{stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }})
	root.InitDefaultCompletionCmd()
	completionExamples(root)
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		if c.Name() != "help" {
			assert.NotEmpty(t, c.Example, "vpay help %s has no Examples section", c.CommandPath())
			n++
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	assert.Greater(t, n, 10)
	r := vpayRun(t, nil, "help", "reconcile")
	assert.Contains(t, r.stdout, "Examples:\n  vpay reconcile payments.csv")
}

func TestCompletionOffersTheValues(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"pay", "--method", ""}, []string{"mtnrw", "card", "all"}},
		{[]string{"link", "--type", ""}, []string{"one_off", "multiple"}},
		{[]string{"trigger", ""}, []string{"payment.successful", "payment.failed", "payment.cancelled", "payment.refunded", "payment.disputed", "payment.pending"}},
		{[]string{"sandbox", "--plan", ""}, []string{"starter", "growth"}},
	} {
		r := vpayRun(t, nil, append([]string{"__complete"}, tt.args...)...)
		require.Equal(t, 0, r.code, r.stderr)
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			if !strings.HasPrefix(l, ":") {
				got = append(got, strings.SplitN(l, "\t", 2)[0])
			}
		}
		assert.ElementsMatch(t, tt.want, got, "vpay %s<TAB>", strings.Join(tt.args, " "))
	}
}

// modules reads a drawn QR code back, module by module, given which
// characters' halves are ink and whether ink is dark.
func modules(t *testing.T, drawing []string, inkIsDark bool) [][]bool {
	t.Helper()
	var grid [][]bool
	for _, line := range drawing {
		top, bottom := []bool{}, []bool{}
		for _, r := range line {
			var tInk, bInk bool
			switch r {
			case '█':
				tInk, bInk = true, true
			case '▀':
				tInk = true
			case '▄':
				bInk = true
			case ' ':
			default:
				t.Fatalf("unexpected %q in the drawing", r)
			}
			top, bottom = append(top, tInk == inkIsDark), append(bottom, bInk == inkIsDark)
		}
		grid = append(grid, top, bottom)
	}
	return grid
}

func TestLinkQRHasAQuietZoneOnLightAndDarkTerminals(t *testing.T) {
	s := vpaytest.NewServer()
	defer s.Close()
	for _, tt := range []struct {
		flag, colorfgbg string
		inkIsDark       bool
	}{{"light", "", true}, {"dark", "0;15", false}, {"auto", "15;0", false}, {"auto", "0;15", true}, {"auto", "0;7", true}, {"auto", "7;8", false}, {"auto", "", false}} {
		env := append(creds(s), "COLORFGBG="+tt.colorfgbg)
		r := vpayRun(t, env, "link", "--name", "Fees", "--qr", "--qr-background", tt.flag)
		require.Equal(t, 0, r.code, r.stderr)
		lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
		url := strings.TrimSpace(lines[0][strings.Index(lines[0], ": ")+2:])
		code, err := qr.Encode(url, qr.M)
		require.NoError(t, err)
		grid := modules(t, lines[1:], tt.inkIsDark)
		const q = 4
		size := code.Size + 2*q
		require.Len(t, grid, size+1, "%d rows of modules drawn two a line", size) // the last half line is the terminal's
		for y := range size {
			require.Len(t, grid[y], size, "row %d", y)
			for x := range size {
				want := x >= q && y >= q && x < q+code.Size && y < q+code.Size && code.Black(x-q, y-q)
				require.Equal(t, want, grid[y][x], "--qr-background %s COLORFGBG=%q: module (%d,%d), quiet zone %d", tt.flag, tt.colorfgbg, x, y, q)
			}
		}
	}
	r := vpayRun(t, creds(s), "link", "--name", "Fees", "--qr", "--qr-background", "purple")
	assert.Equal(t, 2, r.code)
}

func TestSandboxOnAllInterfacesPrintsReachableURLs(t *testing.T) {
	first, _, _ := start(t, nil, "sandbox", "--addr", "0.0.0.0:"+strings.Split(freeAddr(t), ":")[1], "--merchant", "Huye Coffee", "--json")
	var m map[string]string
	require.NoError(t, json.Unmarshal([]byte(first), &m), first)
	assert.NotContains(t, m["dashboard_url"], "0.0.0.0")
	assert.NotContains(t, m["url"], "0.0.0.0")
	assert.True(t, strings.HasPrefix(m["url"], "http://127.0.0.1:"), "the SDK here reaches the API on loopback")
	host, _, err := net.SplitHostPort(strings.TrimSuffix(strings.TrimPrefix(m["dashboard_url"], "http://"), "/"))
	require.NoError(t, err)
	ip := net.ParseIP(host)
	require.NotNil(t, ip)
	if !testutil.LANAddress() {
		t.Skip("no non-loopback address on this machine")
	}
	require.False(t, ip.IsLoopback(), "a phone cannot open a loopback address: %s", m["dashboard_url"])
	resp, err := http.Get(m["dashboard_url"])
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(body), "Huye Coffee")
}

func TestReconcileDrawsProgressOnATerminal(t *testing.T) {
	scriptBin, err := exec.LookPath("script") // util-linux: runs a command on a pseudo-terminal
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("script (util-linux) is missing; CI must run the terminal test")
		}
		t.Skip("script (apt-get install util-linux) is needed to run reconcile on a terminal")
	}
	s := vpaytest.NewServer()
	defer s.Close()
	dir := t.TempDir()
	in := filepath.Join(dir, "in.csv")
	require.NoError(t, os.WriteFile(in, []byte("transaction_id\nVP00000001\nVP00000002\n"), 0o644))
	for _, tt := range []struct {
		json bool
		want bool
	}{{false, true}, {true, false}} {
		line := binary + " reconcile " + in + " --out " + filepath.Join(dir, "out.csv")
		if tt.json {
			line += " --json"
		}
		cmd := exec.Command(scriptBin, "-qec", line, "/dev/null")
		cmd.Env = append(cleanEnv(), creds(s)...)
		out, _ := cmd.CombinedOutput()
		assert.Equal(t, tt.want, strings.Contains(string(out), "\r[##############################] 2/2"), "--json=%v on a terminal: %q", tt.json, out)
	}
}
