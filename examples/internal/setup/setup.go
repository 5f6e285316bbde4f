// Package setup gives the examples a client: against the real API when
// VPAY_API_USER and VPAY_API_KEY are set (base URL from VPAY_BASE_URL,
// default the documented one), otherwise against an in-process sandbox
// emulator, so every example runs with no setup.
package setup

import (
	"fmt"
	"os"
	"time"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/vpaytest"
)

// Client returns a client and a function to call when done. sandbox is
// nil against the real API.
//
// A half-set environment (a base URL or a user without a key) is an error
// naming the missing variable: falling back to the sandbox then would let
// someone believe they had reached the real API.
func Client(opts ...vpay.Option) (c *vpay.Client, sandbox *vpaytest.Server, done func(), err error) {
	user, key, base := os.Getenv("VPAY_API_USER"), os.Getenv("VPAY_API_KEY"), os.Getenv("VPAY_BASE_URL")
	switch {
	case user != "" && key == "":
		return nil, nil, nil, fmt.Errorf("VPAY_API_USER is set but VPAY_API_KEY is not: set both, or neither for the built-in sandbox")
	case key != "" && user == "":
		return nil, nil, nil, fmt.Errorf("VPAY_API_KEY is set but VPAY_API_USER is not: set both, or neither for the built-in sandbox")
	case base != "" && user == "":
		return nil, nil, nil, fmt.Errorf("VPAY_BASE_URL is set but VPAY_API_USER and VPAY_API_KEY are not: set them, or unset VPAY_BASE_URL for the built-in sandbox")
	}
	if user != "" && key != "" {
		if base != "" {
			opts = append([]vpay.Option{vpay.WithBaseURL(base)}, opts...)
		}
		c, err = vpay.NewClient(user, key, opts...)
		return c, nil, func() {}, err
	}
	s := vpaytest.NewServer(vpaytest.WithPaymentDelay(time.Second))
	fmt.Println("No VPAY_API_USER/VPAY_API_KEY: using the built-in sandbox at", s.URL)
	fmt.Println("   Its dashboard (transactions, webhook deliveries, Resend) is at", s.DashboardURL())
	return s.Client(opts...), s, s.Close, nil
}

// EnvOr returns the environment variable k, or def when it is unset.
func EnvOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
