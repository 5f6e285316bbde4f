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
func Client(opts ...vpay.Option) (c *vpay.Client, sandbox *vpaytest.Server, done func(), err error) {
	user, key := os.Getenv("VPAY_API_USER"), os.Getenv("VPAY_API_KEY")
	if user != "" && key != "" {
		if base := os.Getenv("VPAY_BASE_URL"); base != "" {
			opts = append([]vpay.Option{vpay.WithBaseURL(base)}, opts...)
		}
		c, err = vpay.NewClient(user, key, opts...)
		return c, nil, func() {}, err
	}
	s := vpaytest.NewServer(vpaytest.WithPaymentDelay(time.Second))
	fmt.Println("No VPAY_API_USER/VPAY_API_KEY: using the built-in sandbox at", s.URL)
	return s.Client(opts...), s, s.Close, nil
}

// EnvOr returns the environment variable k, or def when it is unset.
func EnvOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
