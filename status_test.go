package vpay

import (
	"context"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStatusRequest(t *testing.T) {
	c, s := setup(t)
	s.mux.HandleFunc("/transaction/status/", func(w http.ResponseWriter, r *http.Request) {
		testMethod(t, r, "GET")
		assert.Equal(t, "VP86583387", r.URL.Query().Get("transaction_id"))
		testHeader(t, r, "Authorization", "Bearer access-1")
		testHeader(t, r, "apiKey", testKey)
		golden, _ := os.ReadFile("testdata/pay_response_momo.json")
		writeJSON(w, 200, string(golden))
	})
	tx, err := c.Status(context.Background(), "VP86583387")
	require.NoError(t, err)
	assert.Equal(t, StatusSuccessful, tx.Status)
	assert.Equal(t, "TXN_TDTAGD1HFJS", tx.Reference)
	assert.True(t, time.Date(2026, 5, 30, 18, 3, 32, 0, time.UTC).Equal(tx.TransactionDate))

	_, err = c.Status(context.Background(), " ")
	assert.ErrorIs(t, err, ErrInvalidRequest)
}

func TestWaitPollsUntilFinal(t *testing.T) {
	c, s, clk := setupClock(t)
	var polls atomic.Int64
	s.mux.HandleFunc("/transaction/status/", func(w http.ResponseWriter, r *http.Request) {
		switch polls.Add(1) {
		case 1, 2, 3:
			writeJSON(w, 200, `{"status":"PENNDING","transaction_id":"VP1"}`)
		case 4:
			writeJSON(w, 503, `{"status":"error","message":"busy"}`)
		default:
			writeJSON(w, 200, `{"status":"FAILED","transaction_id":"VP1","failure_code":"INSUFFICIENT_FUNDS"}`)
		}
	})
	tx, err := c.Wait(context.Background(), "VP1")
	require.NoError(t, err, "a failed payment is a result, not an error")
	assert.Equal(t, StatusFailed, tx.Status)
	assert.Equal(t, CodeInsufficientFunds, tx.FailureCode)
	var polled []time.Duration
	for _, d := range clk.Sleeps() {
		if d >= DefaultPollInterval {
			polled = append(polled, d)
		}
	}
	require.Len(t, polled, 3, "one wait between each pending answer")
	assert.Equal(t, []time.Duration{2 * time.Second, 3 * time.Second, 4500 * time.Millisecond}, polled, "the interval backs off")
}

func TestWaitGivesUpAfterPromptTimeout(t *testing.T) {
	c, s, clk := setupClock(t)
	var polls atomic.Int64
	s.mux.HandleFunc("/transaction/status/", func(w http.ResponseWriter, r *http.Request) {
		polls.Add(1)
		writeJSON(w, 200, `{"status":"pending","transaction_id":"VP1"}`)
	})
	start := clk.Now()
	tx, err := c.Wait(context.Background(), "VP1")
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	require.NotNil(t, tx, "the last transaction seen comes back with the error")
	assert.Equal(t, StatusPending, tx.Status)
	// The fake clock moves only by the waits, and Wait's deadline is on the
	// same clock: it ends exactly at WaitTimeout, whatever today's date.
	assert.Equal(t, WaitTimeout, clk.Now().Sub(start))
	assert.Less(t, polls.Load(), int64(30), "polls are spread out")
}

func TestWaitHonoursCtxDeadlineOnTheClientClock(t *testing.T) {
	c, s, clk := setupClock(t)
	s.mux.HandleFunc("/transaction/status/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"status":"pending","transaction_id":"VP1"}`)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := clk.Now()
	_, err := c.Wait(ctx, "VP1")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.InDelta(t, (20 * time.Second).Seconds(), clk.Now().Sub(start).Seconds(), 1,
		"20 s of the client's clock, not of the wall's")
}

func TestWaitStopsOnCancel(t *testing.T) {
	c, s := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	s.mux.HandleFunc("/transaction/status/", func(w http.ResponseWriter, r *http.Request) {
		cancel()
		writeJSON(w, 200, `{"status":"pending","transaction_id":"VP1"}`)
	})
	_, err := c.Wait(ctx, "VP1")
	assert.ErrorIs(t, err, context.Canceled)
}

func TestWaitStopsOnPermanentError(t *testing.T) {
	c, s := setup(t)
	s.mux.HandleFunc("/transaction/status/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 404, `{"status":"error","message":"no such transaction"}`)
	})
	_, err := c.Wait(context.Background(), "VP404")
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, 404, e.HTTPStatus)
}

func TestStatusRefusesAnAnswerAboutAnotherTransaction(t *testing.T) {
	for name, body := range map[string]string{
		"another id": `{"status":"SUCCESSFUL","transaction_id":"VP_OTHER"}`,
		"no id":      `{"status":"SUCCESSFUL"}`,
	} {
		t.Run(name, func(t *testing.T) {
			c, s, _ := setupClock(t)
			// A cache in front of the API that ignores the query string.
			s.mux.HandleFunc("/transaction/status/", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, body) })
			tx, err := c.Status(context.Background(), "VP_MINE")
			assert.Nil(t, tx)
			var e *Error
			require.ErrorAs(t, err, &e)
			assert.Contains(t, err.Error(), "VP_MINE")
			assert.False(t, e.OutcomeUnknown, "a Status creates no payment")
			assert.NotErrorIs(t, err, ErrOutcomeUnknown)

			tx, err = c.Wait(context.Background(), "VP_MINE")
			require.Error(t, err, "Wait must not confirm an order with another's status")
			assert.Nil(t, tx)
		})
	}
}
