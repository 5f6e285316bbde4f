package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
