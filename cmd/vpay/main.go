// Command vpay is the V-Pay command line: pay and follow a payment, check
// a status, create a payment link, receive and forward webhooks on a
// laptop, send signed test deliveries, reconcile a CSV of transactions,
// and run the sandbox emulator.
//
// Credentials come only from the environment (VPAY_API_USER, VPAY_API_KEY,
// VPAY_BASE_URL, VPAY_WEBHOOK_SECRET), never from flags, which end up in
// shell history.
//
// Exit codes: 0 success (for pay --wait and wait: the payment ended
// successful); 1 the payment ended in another final status, or reconcile
// found mismatches; 2 usage or configuration error; 3 API error; 4 timed
// out while still pending; 5 outcome unknown (the request may have created
// a payment, interrupted or not); 130 interrupted (Ctrl-C), except listen
// and sandbox, which are stopped that way and exit 0.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/vonsung/vpay-go"
)

// Exit codes.
const (
	exitOK         = 0
	exitNotPaid    = 1
	exitUsage      = 2
	exitAPI        = 3
	exitTimeout    = 4
	exitUnknown    = 5
	exitMismatches = 1
	// exitInterrupted is the shell's 128 + SIGINT.
	exitInterrupted = 130
)

// exitError carries the exit code a command's failure maps to.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageError(format string, args ...any) error {
	return &exitError{exitUsage, fmt.Errorf(format, args...)}
}

// exitCode maps an error to the documented exit codes.
func exitCode(err error) int {
	var ee *exitError
	var ve *vpay.ValidationError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, vpay.ErrOutcomeUnknown):
		return exitUnknown
	case errors.As(err, &ve):
		return exitUsage
	}
	return exitAPI
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// run is the whole program, for tests: args without the program name.
// ctx ends when the person interrupts (Ctrl-C).
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	e := &env{stdout: stdout, stderr: stderr, getenv: getenv}
	root := newRoot(e)
	root.InitDefaultCompletionCmd()
	completionExamples(root)
	ran := strictTree(root, e)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	if e.redirects != nil {
		err = e.redirects.explain(err, e.baseURL())
	}
	code := exitCode(err)
	if !*ran {
		// Refused before any command ran: cobra's unknown command,
		// missing required flag or bad arguments.
		code = exitUsage
	}
	if ctx.Err() != nil && code != exitUnknown {
		// Interrupted; an unknown outcome still says 5, which matters more.
		code = exitInterrupted
	}
	if e.json || slices.Contains(args, "--json") {
		b, _ := json.Marshal(map[string]any{"error": map[string]any{"code": errorCode(err, code), "message": message(err), "exit_code": code}})
		fmt.Fprintln(stderr, string(b))
	} else if code != exitNotPaid {
		fmt.Fprintln(stderr, "vpay: "+message(err))
	}
	return code
}
