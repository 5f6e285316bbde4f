package vpaytest_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/vpaytest"
)

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return ln
}

func payRaw(s *vpaytest.Server, tok, ref string, timeout time.Duration) (*http.Response, []byte, error) {
	body := `{"amount":500,"currency":"RWF","payment_method":"mtnrw","payer_phone":"0780000000","external_id":"` + ref + `"}`
	req, _ := http.NewRequest("POST", s.URL+"pay/", strings.NewReader(body))
	req.Header.Set("apiUser", s.APIUser)
	req.Header.Set("apiKey", s.APIKey)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := (&http.Client{Timeout: timeout}).Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func TestFaults(t *testing.T) {
	tests := []struct {
		name     string
		fault    vpaytest.Fault
		timeout  time.Duration
		status   int  // expected status when a response arrives
		fails    bool // the client sees a transport or read error
		payments int  // payments created
	}{
		{"status 503", vpaytest.Fault{Status: 503}, time.Second, 503, false, 0},
		{"status 502 is NETWORK_ERROR", vpaytest.Fault{Status: 502}, time.Second, 502, false, 0},
		{"drop before processing", vpaytest.Fault{Drop: vpaytest.DropBefore}, time.Second, 0, true, 0},
		{"drop after processing", vpaytest.Fault{Drop: vpaytest.DropAfter}, time.Second, 0, true, 1},
		{"reset after processing", vpaytest.Fault{Drop: vpaytest.ResetAfter}, time.Second, 0, true, 1},
		{"truncated body", vpaytest.Fault{Truncate: true}, time.Second, 0, true, 1},
		{"slow answer past the deadline", vpaytest.Fault{Delay: 2 * time.Second}, 100 * time.Millisecond, 0, true, 1},
		{"slow answer within the deadline", vpaytest.Fault{Delay: 20 * time.Millisecond}, time.Second, 200, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := vpaytest.NewServer()
			defer s.Close()
			tok := token(t, s)
			s.Inject("/pay/", tt.fault)
			resp, _, err := payRaw(s, tok, "ref-1", tt.timeout)
			if tt.fails {
				assert.Error(t, err)
			} else {
				require.NoError(t, err)
				assert.Equal(t, tt.status, resp.StatusCode)
			}
			assert.Equal(t, tt.payments, s.PaymentsFor("ref-1"))

			// The fault is spent: the next request is served normally.
			resp, _, err = payRaw(s, tok, "ref-2", time.Second)
			require.NoError(t, err)
			assert.Equal(t, 200, resp.StatusCode)
		})
	}
}

func TestFaultCount(t *testing.T) {
	s := vpaytest.NewServer()
	defer s.Close()
	s.Inject("/auth/", vpaytest.Fault{Status: 503, Count: 3})
	for range 3 {
		resp, _ := raw(t, s, "POST", "auth/", "", "")
		assert.Equal(t, 503, resp.StatusCode)
	}
	resp, _ := raw(t, s, "POST", "auth/", "", "")
	assert.Equal(t, 200, resp.StatusCode)
	// The SDK rides through /auth/ being down for a while.
	s.Inject("/auth/", vpaytest.Fault{Status: 503, Count: 2})
	_, err := s.Client().Token(context.Background())
	assert.NoError(t, err)
}

// A connection reset after the request was written may come after the
// server acted: a Pay that meets one is outcome-unknown, never "not sent".
func TestResetAfterTheRequestMakesAPayOutcomeUnknown(t *testing.T) {
	s := vpaytest.NewServer()
	defer s.Close()
	c := s.Client(vpay.WithMaxRetries(0))
	_, err := c.Token(context.Background())
	require.NoError(t, err)
	s.Inject("/pay/", vpaytest.Fault{Drop: vpaytest.ResetAfter})
	_, err = c.Pay(context.Background(), &vpay.PayRequest{Amount: 500, Phone: "0780000000", Reference: "ref-reset"})
	require.ErrorIs(t, err, syscall.ECONNRESET, "the fault is a reset, not an EOF")
	assert.ErrorIs(t, err, vpay.ErrOutcomeUnknown)
	assert.Equal(t, 1, s.PaymentsFor("ref-reset"), "the server did act")

	// With retries, the retry meets the payment the first attempt made.
	s.Inject("/pay/", vpaytest.Fault{Drop: vpaytest.ResetAfter})
	_, err = s.Client().Pay(context.Background(), &vpay.PayRequest{Amount: 500, Phone: "0780000000", Reference: "ref-reset-2"})
	assert.ErrorIs(t, err, vpay.ErrOutcomeUnknown)
	assert.ErrorIs(t, err, vpay.ErrDuplicateReference)
	assert.Equal(t, 1, s.PaymentsFor("ref-reset-2"))
}
