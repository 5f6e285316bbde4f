package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/vpaytest"
	"github.com/vonsung/vpay-go/webhook"
)

// binary is the vpay command built once for all tests: they run it as a
// user would.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vpay-cli-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "vpay")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

// vpayRun runs the binary with env (and nothing of the test's own VPAY_*).
func vpayRun(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(cleanEnv(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, out.String(), errb.String()}
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VPAY_") {
			env = append(env, kv)
		}
	}
	return env
}

func creds(s *vpaytest.Server) []string {
	return []string{"VPAY_BASE_URL=" + s.URL, "VPAY_API_USER=" + s.APIUser, "VPAY_API_KEY=" + s.APIKey, "VPAY_WEBHOOK_SECRET=" + s.WebhookSecret}
}

func TestCredentialsOnlyFromTheEnvironment(t *testing.T) {
	r := vpayRun(t, nil, "status", "VP1")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "VPAY_API_USER is not set")
	r = vpayRun(t, []string{"VPAY_API_USER=vpay_sandbox_x"}, "status", "VP1")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "VPAY_API_KEY is not set", "a half-set environment names what is missing, never falls back to a sandbox")
	r = vpayRun(t, nil, "pay", "--amount", "100", "--api-key", "sk_live_x")
	assert.Equal(t, 2, r.code, "there is no flag for a key")
	r = vpayRun(t, nil, "--version")
	assert.Equal(t, 0, r.code)
	assert.Contains(t, r.stdout, vpay.Version)
	r = vpayRun(t, nil, "help", "pay")
	assert.Equal(t, 0, r.code)
	assert.Contains(t, r.stdout, "--amount")
	r = vpayRun(t, nil, "completion", "bash")
	assert.Equal(t, 0, r.code)
	assert.Contains(t, r.stdout, "bash completion")
}

func TestPayStatusWaitAndExitCodes(t *testing.T) {
	s := vpaytest.NewServer(vpaytest.WithPaymentDelay(100 * time.Millisecond))
	defer s.Close()
	env := creds(s)

	r := vpayRun(t, env, "pay", "--amount", "1500", "--phone", "+250 78 000 0000", "--reference", "order-1", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var p struct {
		TransactionID string `json:"transaction_id"`
		Reference     string `json:"reference"`
		Status        string `json:"status"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &p), r.stdout)
	assert.Equal(t, "order-1", p.Reference)
	assert.Equal(t, "pending", p.Status)

	r = vpayRun(t, env, "wait", p.TransactionID, "--interval", "20ms")
	assert.Equal(t, 0, r.code, "ended successful: %s", r.stderr)
	assert.Contains(t, r.stdout, "successful")
	assert.Contains(t, r.stdout, "of 4m0s]", "progress against wait's default --timeout")

	r = vpayRun(t, env, "status", p.TransactionID, "--json")
	require.Equal(t, 0, r.code)
	var tx struct {
		Status string `json:"status"`
		Amount int64  `json:"amount"`
		Final  bool   `json:"final"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &tx))
	assert.Equal(t, "successful", tx.Status)
	assert.EqualValues(t, 1500, tx.Amount)
	assert.True(t, tx.Final)

	r = vpayRun(t, env, "pay", "--amount", "1500", "--phone", vpaytest.PhoneInsufficientFunds, "--wait", "--interval", "20ms")
	assert.Equal(t, 1, r.code, "ended failed")
	assert.Contains(t, r.stdout, "INSUFFICIENT_FUNDS")

	slow := vpaytest.NewServer(vpaytest.WithPaymentDelay(time.Hour))
	defer slow.Close()
	r = vpayRun(t, creds(slow), "pay", "--amount", "1500", "--phone", vpaytest.PhoneSuccess, "--wait", "--timeout", "300ms", "--interval", "20ms")
	assert.Equal(t, 4, r.code, "timed out still pending")
	assert.Contains(t, r.stderr, "still pending")

	s.Inject("/pay/", vpaytest.Fault{Drop: vpaytest.DropAfter, Count: 3})
	r = vpayRun(t, env, "pay", "--amount", "1500", "--phone", vpaytest.PhoneSuccess, "--reference", "order-lost")
	assert.Equal(t, 5, r.code, "outcome unknown: %s", r.stderr)
	assert.Contains(t, r.stderr, "order-lost")

	s.Inject("/transaction/status/", vpaytest.Fault{Status: 404})
	r = vpayRun(t, env, "status", "VP00000000")
	assert.Equal(t, 3, r.code, "API error")

	r = vpayRun(t, env, "pay", "--amount", "1500", "--phone", "0721234567")
	assert.Equal(t, 2, r.code, "refused before sending: an Airtel number for MTN")
	assert.Contains(t, r.stderr, "vpay: --phone: 0721234567 is an Airtel number; --method mtnrw needs an MTN number (078, 079)", "in the flags' language")
	r = vpayRun(t, env, "pay", "--amount", "1500", "--phone", "0780000000", "--bogus")
	assert.Equal(t, 2, r.code)
}

func TestLinkWithQRCode(t *testing.T) {
	s := vpaytest.NewServer()
	defer s.Close()
	png := filepath.Join(t.TempDir(), "qr.png")
	r := vpayRun(t, creds(s), "link", "--name", "School fees", "--amount", "10000", "--type", "multiple", "--qr", "--png", png)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "Link lnk_")
	assert.Contains(t, r.stdout, "█", "the QR code is drawn")
	b, err := os.ReadFile(png)
	require.NoError(t, err)
	assert.True(t, bytes.HasPrefix(b, []byte("\x89PNG")), "a PNG file")

	r = vpayRun(t, creds(s), "link", "--name", "Fees", "--json")
	require.Equal(t, 0, r.code)
	var l map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &l))
	assert.NotEmpty(t, l["url"])
}

// start runs the binary in the background and returns its first output
// line (the address it serves) and a channel of the following ones.
func start(t *testing.T, env []string, args ...string) (first string, lines <-chan string, cmd *exec.Cmd) {
	t.Helper()
	cmd = exec.Command(binary, args...)
	cmd.Env = append(cleanEnv(), env...)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	ch := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			ch <- sc.Text()
		}
		close(ch)
	}()
	select {
	case first = <-ch:
	case <-time.After(20 * time.Second):
		t.Fatal("no output from", args)
	}
	return first, ch, cmd
}

func next(t *testing.T, lines <-chan string) string {
	t.Helper()
	select {
	case l := <-lines:
		return l
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for output")
		return ""
	}
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

func TestListenTriggerResendEndToEnd(t *testing.T) {
	const secret = "whsec_cli_test"
	env := []string{"VPAY_WEBHOOK_SECRET=" + secret}
	var received atomic.Int64
	merchant := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := webhook.VerifyRequest(r, secret, 0); err != nil {
			http.Error(w, "forged", http.StatusUnauthorized)
			return
		}
		received.Add(1)
	}), ReadHeaderTimeout: time.Second}
	mln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = merchant.Serve(mln) }()
	defer merchant.Close()
	merchantURL := "http://" + mln.Addr().String() + "/webhooks/vpay"

	journal := filepath.Join(t.TempDir(), "deliveries.jsonl")
	addr := freeAddr(t)
	first, lines, _ := start(t, env, "listen", "--addr", addr, "--forward-to", merchantURL, "--journal", journal, "--json")
	assert.Contains(t, first, addr)

	r := vpayRun(t, env, "trigger", "payment.successful", "--to", "http://"+addr+"/any/path", "--reference", "order-9", "--amount", "2500")
	require.Equal(t, 0, r.code, r.stderr)
	var en journalEntry
	require.NoError(t, json.Unmarshal([]byte(next(t, lines)), &en))
	assert.True(t, en.Verified)
	assert.Equal(t, "payment.successful", en.Event)
	assert.Equal(t, "order-9", en.Reference)
	assert.EqualValues(t, 2500, en.Amount)
	assert.Equal(t, 200, en.Forwarded, "the merchant's answer")
	assert.EqualValues(t, 1, received.Load())

	// A forged delivery: shown, refused, never forwarded.
	resp, err := http.Post("http://"+addr+"/hook", "application/json", strings.NewReader(`{"event":"payment.successful","transaction_id":"VPX"}`))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	en = journalEntry{}
	require.NoError(t, json.Unmarshal([]byte(next(t, lines)), &en))
	assert.False(t, en.Verified)
	assert.Zero(t, en.Forwarded)
	assert.EqualValues(t, 1, received.Load(), "the forged one never reached the merchant")

	// Both are in the journal; the first is sent again byte for byte.
	b, err := os.ReadFile(journal)
	require.NoError(t, err)
	assert.Equal(t, 2, strings.Count(string(b), "\n"))
	r = vpayRun(t, env, "resend", "--journal", journal, "--line", "1", "--to", merchantURL)
	require.Equal(t, 0, r.code, r.stderr)
	assert.EqualValues(t, 2, received.Load())
	r = vpayRun(t, env, "resend", "--journal", journal, "--line", "2", "--to", merchantURL)
	assert.Equal(t, 3, r.code, "the forged delivery's signature is refused by the merchant")
	r = vpayRun(t, env, "trigger", "payment.exploded", "--to", merchantURL)
	assert.Equal(t, 2, r.code)
}

func TestSandboxCommandServesTheAPI(t *testing.T) {
	addr := freeAddr(t)
	first, _, _ := start(t, nil, "sandbox", "--addr", addr, "--delay", "10ms", "--json")
	var sb struct {
		URL, APIUser, APIKey, WebhookSecret string `json:"-"`
	}
	var m map[string]string
	require.NoError(t, json.Unmarshal([]byte(first), &m), first)
	sb.URL, sb.APIUser, sb.APIKey = m["url"], m["api_user"], m["api_key"]
	env := []string{"VPAY_BASE_URL=" + sb.URL, "VPAY_API_USER=" + sb.APIUser, "VPAY_API_KEY=" + sb.APIKey}
	r := vpayRun(t, env, "pay", "--amount", "100", "--phone", vpaytest.PhoneSuccess, "--wait", "--interval", "20ms")
	assert.Equal(t, 0, r.code, r.stderr)
}

func TestSandboxCommandManualPayer(t *testing.T) {
	addr := freeAddr(t)
	first, _, _ := start(t, nil, "sandbox", "--addr", addr, "--delay", "1ns", "--manual", "--json")
	var m map[string]string
	require.NoError(t, json.Unmarshal([]byte(first), &m), first)
	assert.Equal(t, "http://"+addr+"/", m["dashboard_url"])
	c, err := vpay.NewClient(m["api_user"], m["api_key"], vpay.WithBaseURL(m["url"]))
	require.NoError(t, err)
	p, err := c.Pay(context.Background(), &vpay.PayRequest{Amount: 100, Phone: vpaytest.PhoneSuccess})
	require.NoError(t, err)
	tx, err := c.Status(context.Background(), p.TransactionID)
	require.NoError(t, err)
	assert.Equal(t, vpay.StatusPending, tx.Status, "--manual: the payment waits for a person past a 1 ns delay")
}

func TestReconcileWithinTheRateBudgetAndResumes(t *testing.T) {
	s := vpaytest.NewServer(vpaytest.WithPlan(vpay.PlanStarter), vpaytest.WithRateWindow(250*time.Millisecond), vpaytest.WithPaymentDelay(time.Millisecond))
	defer s.Close()
	c := s.Client()
	dir := t.TempDir()
	in := filepath.Join(dir, "payments.csv")
	var csvb strings.Builder
	csvb.WriteString("transaction_id,reference,amount\n")
	const rows = 200
	for i := range rows {
		phone := vpaytest.PhoneSuccess
		if i%50 == 7 {
			phone = vpaytest.PhoneInsufficientFunds
		}
		var p *vpay.Payment
		var err error
		for { // the plan is tight for the test's own payments too
			p, err = c.Pay(context.Background(), &vpay.PayRequest{Amount: 1000, Phone: phone, Reference: fmt.Sprintf("r-%d", i)})
			if !errors.Is(err, vpay.ErrRateLimited) {
				break
			}
		}
		require.NoError(t, err)
		want := "1000"
		if i == 3 {
			want = "999" // a mismatch in amount
		}
		fmt.Fprintf(&csvb, "%s,r-%d,%s\n", p.TransactionID, i, want)
	}
	require.NoError(t, os.WriteFile(in, []byte(csvb.String()), 0o644))
	time.Sleep(50 * time.Millisecond) // every payment settles (1 ms delay)
	throttledBefore := s.Throttled()

	out := filepath.Join(dir, "out.csv")
	cp := out + ".checkpoint"
	// Interrupted part-way (Ctrl-C)...
	cmd := exec.Command(binary, "reconcile", in, "--out", out)
	cmd.Env = append(cleanEnv(), creds(s)...)
	require.NoError(t, cmd.Start())
	deadline := time.Now().Add(30 * time.Second)
	for {
		var c checkpoint
		if b, err := os.ReadFile(cp); err == nil && json.Unmarshal(b, &c) == nil && c.Done >= 20 {
			break
		}
		require.True(t, time.Now().Before(deadline), "reconcile made no progress")
		time.Sleep(10 * time.Millisecond)
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	var ee *exec.ExitError
	require.ErrorAs(t, cmd.Wait(), &ee)
	assert.Equal(t, 130, ee.ExitCode(), "interrupted")
	// ...then run again: it resumes.
	r := vpayRun(t, creds(s), "reconcile", in, "--out", out, "--json")
	assert.Equal(t, 1, r.code, "mismatches found: %s", r.stderr)
	var sum struct{ Rows, Mismatches int }
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &sum), r.stdout)
	assert.Equal(t, rows, sum.Rows)
	assert.Equal(t, 5, sum.Mismatches, "four failed payments and one wrong amount")
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	assert.Len(t, lines, rows+1, "every row once, header once, across the interruption")
	assert.LessOrEqual(t, s.Requests("/transaction/status/"), rows+2, "the second run resumed: the rows checked before the interruption were not checked again")
	assert.Zero(t, s.Throttled()-throttledBefore, "reconcile earned no 429")
	_, err = os.Stat(cp)
	assert.True(t, os.IsNotExist(err), "a finished run leaves no checkpoint")
}
