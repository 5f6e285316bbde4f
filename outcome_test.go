package vpay

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Only a Pay can have an unknown outcome: a Status or a CreateLink that
// failed after reaching the server is an error, never ErrOutcomeUnknown,
// whatever the failure; the same failures on a Pay are.
func TestOnlyPayCanHaveAnUnknownOutcome(t *testing.T) {
	failures := map[string]http.HandlerFunc{
		"500": func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, 500, `{"status":"error","message":"boom"}`)
		},
		"dropped after reading": func(http.ResponseWriter, *http.Request) {
			panic(http.ErrAbortHandler)
		},
		"NETWORK_ERROR": func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, 502, `{"status":"error","error_code":"NETWORK_ERROR","message":"retry"}`)
		},
		// The header promises more body than arrives: the server failed
		// while it answered, after it may have acted.
		"5xx cut short": cutShort("503 Service Unavailable", `{"status":"err`),
		// A success the server began to send: it acted.
		"2xx cut short": cutShort("200 OK", `{"transaction_id":"VP1","sta`),
		"2xx that does not decode": func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, 200, `{"transaction_id":"VP1","amount":"12.50","link_id":"l","active":"perhaps"}`)
		},
	}
	calls := map[string]func(*Client) error{
		"Status": func(c *Client) error {
			_, err := c.Status(context.Background(), "VP1")
			return err
		},
		"CreateLink": func(c *Client) error {
			_, err := c.CreateLink(context.Background(), &LinkRequest{Name: "Fee", Amount: 1000, Type: LinkOneOff})
			return err
		},
		"Pay": func(c *Client) error {
			_, err := c.Pay(context.Background(), &PayRequest{Amount: 100, Phone: "0790000000", Reference: "R1"})
			return err
		},
	}
	for fname, h := range failures {
		for cname, call := range calls {
			t.Run(cname+"/"+fname, func(t *testing.T) {
				c, s := setup(t, WithMaxRetries(0))
				s.mux.HandleFunc("/", h)
				err := call(c)
				require.Error(t, err)
				var e *Error
				require.True(t, errors.As(err, &e), "%v is a *vpay.Error", err)
				if cname == "Pay" {
					assert.ErrorIs(t, err, ErrOutcomeUnknown, "the Pay may have been made")
					assert.True(t, e.OutcomeUnknown)
					return
				}
				assert.NotErrorIs(t, err, ErrOutcomeUnknown, "a %s creates no payment", cname)
				assert.False(t, e.OutcomeUnknown)
			})
		}
	}
}

// A 2xx body that says it is an error is one, however the server spells
// "error": V-Pay's documentation shows it lower case, its servers are not
// bound by that.
func TestErrorBodyIsAnErrorInAnyCase(t *testing.T) {
	for _, status := range []string{"error", "Error", "ERROR", " error "} {
		t.Run(status, func(t *testing.T) {
			c, s := setup(t, WithMaxRetries(0))
			s.mux.HandleFunc("/transaction/status/", func(w http.ResponseWriter, _ *http.Request) {
				writeJSON(w, 200, `{"status":"`+status+`","message":"no such transaction"}`)
			})
			tx, err := c.Status(context.Background(), "VP1")
			require.Error(t, err, "got %+v", tx)
			var e *Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, "no such transaction", e.Message)
		})
	}
}

// cutShort answers with status and the start of body, then closes the
// connection before the 100 bytes its Content-Length promised.
func cutShort(status, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			panic(err)
		}
		defer conn.Close()
		_, _ = io.WriteString(conn, "HTTP/1.1 "+status+"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"+body)
	}
}
