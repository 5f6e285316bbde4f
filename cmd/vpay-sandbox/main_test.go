package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/internal/testutil"
)

// syncWriter hands what run prints to the test, line by line as written.
type syncWriter chan []byte

func (w syncWriter) Write(b []byte) (int, error) { w <- append([]byte(nil), b...); return len(b), nil }

func TestRunServesTheDocumentationCurl(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	ctx, cancel := context.WithCancel(context.Background())
	out := make(syncWriter, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", addr, "-user", "vpay_sandbox_ci", "-key", "sk_sandbox_ci"}, out, io.Discard)
	}()
	banner := string(recv(t, out, "the banner"))
	assert.Contains(t, banner, "apiKey          sk_sandbox_ci")
	assert.Regexp(t, regexp.MustCompile(`webhook secret  whsec_sandbox_demo`), banner)

	req, _ := http.NewRequest("POST", "http://"+addr+"/api/auth/", nil)
	req.Header.Set("apiUser", "vpay_sandbox_ci")
	req.Header.Set("apiKey", "sk_sandbox_ci")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)

	cancel()
	require.NoError(t, recv(t, done, "the sandbox to stop"))
	assert.Error(t, run(context.Background(), []string{"-plan", "platinum"}, io.Discard, io.Discard))
}

// recv is testutil.Recv.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	return testutil.Recv(t, ch, what)
}

func TestHelpExitsZeroAndVerboseLogsStatus(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "vpay-sandbox")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	// A -h that served instead of printing help must fail the test, not
	// hang it.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err = exec.CommandContext(ctx, bin, "-h").CombinedOutput()
	require.NoError(t, ctx.Err(), "-h printed its help and exited")
	require.NoError(t, err, "-h is not an error")
	assert.Contains(t, string(out), "-webhook-url")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "-addr", addr, "-v")
	var logs syncBuffer
	cmd.Stderr = &logs
	cmd.Stdout = io.Discard
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	require.Eventually(t, func() bool {
		resp, err := http.Post("http://"+addr+"/api/auth/", "application/json", nil)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	}, 10*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "status=401") }, 5*time.Second, 10*time.Millisecond,
		"-v logs each request's status code: %s", logs.String())
}

// syncBuffer is a bytes.Buffer safe for a process's writes and a test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestManualFlagMakesPaymentsWaitForAPerson: with -manual a payment stays
// pending past the delay, on the phone page the banner names; the
// dashboard's address is printed too.
func TestManualFlagMakesPaymentsWaitForAPerson(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := make(syncWriter, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", addr, "-manual", "-delay", "1ns", "-prompt-timeout", "1h"}, out, io.Discard)
	}()
	banner := string(recv(t, out, "the banner"))
	assert.Contains(t, banner, "dashboard       http://"+addr+"/")
	assert.Contains(t, banner, "payments wait for you there: -manual")

	c, err := vpay.NewClient("vpay_sandbox_demo", "sk_sandbox_demo", vpay.WithBaseURL("http://"+addr+"/api/"))
	require.NoError(t, err)
	p, err := c.Pay(ctx, &vpay.PayRequest{Amount: 500, Phone: "0780000000"})
	require.NoError(t, err)
	tx, err := c.Status(ctx, p.TransactionID)
	require.NoError(t, err)
	assert.Equal(t, vpay.StatusPending, tx.Status, "a 1 ns delay would have settled it without -manual")
	resp, err := http.Get("http://" + addr + "/phone/0780000000")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(body), p.TransactionID, "the prompt waits on the phone page")
	cancel()
	require.NoError(t, recv(t, done, "the sandbox to stop"))
}

func TestOnAllInterfacesItPrintsAddressesAPhoneCanOpen(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	out := make(syncWriter, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "0.0.0.0:0", "-merchant", "Huye Coffee", "-public-url", "http://192.0.2.77:8000/"}, out, io.Discard)
	}()
	banner := string(recv(t, out, "the banner"))
	assert.Contains(t, banner, "dashboard       http://192.0.2.77:8000/\n")
	assert.Regexp(t, `on this machine  http://127\.0\.0\.1:\d+/\n`, banner)
	assert.Regexp(t, `base URL        http://127\.0\.0\.1:\d+/api/`, banner, "the SDK on this machine refuses http elsewhere than loopback")
	assert.NotContains(t, banner, "0.0.0.0")
	cancel()
	require.NoError(t, recv(t, done, "the sandbox to stop"))
}
