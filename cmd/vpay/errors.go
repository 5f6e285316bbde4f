package main

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vonsung/vpay-go"
)

// strictTree makes every command group (a command with subcommands and
// nothing to run, the root included) refuse to run without a known
// subcommand, where cobra would print help and exit 0, and marks when a
// command's own RunE starts: an error before that is cobra refusing the
// command line. It covers commands added later by any file, so it runs on
// the finished tree.
func strictTree(root *cobra.Command, e *env) *bool {
	ran := new(bool)
	root.InitDefaultHelpCmd()
	var helpCmd *cobra.Command
	for _, c := range root.Commands() {
		if c.Name() == "help" {
			helpCmd = c
		}
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		switch {
		case c == helpCmd:
			// cobra answers an unknown help topic with the root's help
			// and exit 0.
			show := c.Run
			c.Run = nil
			c.RunE = func(cmd *cobra.Command, a []string) error {
				*ran = true
				if _, _, err := root.Find(a); len(a) > 0 && err != nil {
					return usageError("unknown help topic %q; see vpay help", strings.Join(a, " "))
				}
				show(cmd, a)
				return nil
			}
		case c.RunE != nil:
			run := c.RunE
			c.RunE = func(cmd *cobra.Command, a []string) error { *ran = true; return run(cmd, a) }
		case c.Run != nil:
			run := c.Run
			c.Run = func(cmd *cobra.Command, a []string) { *ran = true; run(cmd, a) }
		case c.HasSubCommands():
			c.RunE = func(cmd *cobra.Command, a []string) error {
				var names []string
				for _, sub := range cmd.Commands() {
					if sub.IsAvailableCommand() {
						names = append(names, sub.Name())
					}
				}
				if !e.json {
					cmd.SetOut(e.stderr)
					_ = cmd.Help()
				}
				if len(a) > 0 {
					return usageError("unknown command %q for %q; one of: %s", a[0], cmd.CommandPath(), strings.Join(names, ", "))
				}
				return usageError("%s needs a command: %s", cmd.CommandPath(), strings.Join(names, ", "))
			}
		}
	}
	walk(root)
	return ran
}

// flagNames are the flags (or environment variables, or arguments) the
// SDK's field names come from on this command line.
var flagNames = map[string]string{
	"PayRequest.Amount": "--amount", "PayRequest.Phone": "--phone", "PayRequest.Method": "--method",
	"PayRequest.Reference": "--reference", "PayRequest.Description": "--description", "PayRequest.CallbackURL": "--callback-url",
	"LinkRequest.Name": "--name", "LinkRequest.Amount": "--amount", "LinkRequest.Type": "--type",
	"LinkRequest.Description": "--description", "LinkRequest.RedirectURL": "--redirect-url",
	"transactionID": "TRANSACTION_ID", "apiUser": "VPAY_API_USER", "apiKey": "VPAY_API_KEY",
}

// goWords are the SDK's Go names in reasons, and what a person typed.
var goWords = strings.NewReplacer("MethodMTN", "--method mtnrw", "MethodCard", "--method card", "MethodAll", "--method all",
	" (use 0 to let the payer choose)", " (leave --amount out to let the payer choose)")

// message is err for a person at a terminal: flags rather than Go names,
// and a redirect said to be one.
func message(err error) string {
	var ve *vpay.ValidationError
	var re *redirectError
	switch {
	case errors.As(err, &ve):
		name, ok := flagNames[ve.Field]
		if !ok {
			name = ve.Field
		}
		if ve.Reason == "required" {
			return name + " is required"
		}
		if strings.HasPrefix(ve.Reason, "required for ") {
			return name + " is required with " + goWords.Replace(strings.TrimPrefix(ve.Reason, "required for "))
		}
		return name + ": " + goWords.Replace(ve.Reason)
	case errors.As(err, &re):
		return re.Error()
	}
	return strings.TrimPrefix(err.Error(), "vpay: ")
}

// errorCode is the "code" of a JSON error: the API's error code when it
// gave one, else what the exit code means.
func errorCode(err error, exit int) string {
	var ae *vpay.Error
	if errors.As(err, &ae) && ae.Code != "" && exit == exitAPI {
		return string(ae.Code)
	}
	switch exit {
	case exitUsage:
		return "usage"
	case exitTimeout:
		return "timeout"
	case exitUnknown:
		return "outcome_unknown"
	case exitInterrupted:
		return "interrupted"
	case exitNotPaid:
		return "not_successful"
	}
	if errors.As(err, new(*redirectError)) {
		return "redirect"
	}
	return "api_error"
}

// redirectError is a redirect the command line refused to follow: the key,
// the token, a payment or a signed webhook would go where it points.
type redirectError struct {
	status   int
	from, to string
}

func (e *redirectError) Error() string {
	return fmt.Sprintf("%s answered with a redirect (%d) to %s, which vpay does not follow; use the final address itself", e.from, e.status, e.to)
}

// refuseRedirects is a CheckRedirect that refuses with a redirectError.
func refuseRedirects(req *http.Request, via []*http.Request) error {
	last := via[len(via)-1]
	status := 0
	if req.Response != nil {
		status = req.Response.StatusCode
	}
	return &redirectError{status: status, from: last.URL.Redacted(), to: req.URL.Redacted()}
}

// redirectSeen remembers where the API's last redirect pointed: the SDK
// never follows one and reports only its status.
type redirectSeen struct {
	next http.RoundTripper
	to   chan string // capacity 1: the latest only
}

func (t *redirectSeen) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err == nil && resp.StatusCode >= 300 && resp.StatusCode < 400 {
		if loc, lerr := resp.Location(); lerr == nil {
			select {
			case <-t.to:
			default:
			}
			t.to <- loc.Redacted()
		}
	}
	return resp, err
}

// explainRedirect turns an API error that was a redirect into one that
// says so and where it pointed.
func (t *redirectSeen) explain(err error, base string) error {
	var ae *vpay.Error
	if !errors.As(err, &ae) || ae.HTTPStatus < 300 || ae.HTTPStatus > 399 {
		return err
	}
	to := "an address it did not give"
	select {
	case to = <-t.to:
	default:
	}
	return &exitError{exitAPI, &redirectError{status: ae.HTTPStatus, from: "the API at " + base, to: to}}
}

func (e *env) baseURL() string {
	if u := e.getenv("VPAY_BASE_URL"); u != "" {
		return u
	}
	return vpay.DefaultBaseURL
}
