package tracker_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/tracker"
	"github.com/vonsung/vpay-go/vpaytest"
)

// TestPostgresKilledMidRunLosesNothing (issue 19, point 2 and the chaos
// test): PostgreSQL is killed (pg_ctl -m immediate) three times while two
// tracker processes take payments, webhooks and refunds, a third of the
// webhooks lost. Every payment V-Pay holds reaches the shop's table with
// each of its statuses exactly once, in order, none missing.
func TestPostgresKilledMidRunLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("kills PostgreSQL three times: slow")
	}
	s := newShop(t)
	if !s.pg.CanKill() {
		t.Skip("VPAY_TEST_POSTGRES_DSN is set: this test kills its own server")
	}
	s.emulator.LoseWebhooks(0.3)
	slow := func(c *tracker.Config) {
		c.Schedule = []time.Duration{300 * time.Millisecond, 600 * time.Millisecond, 1200 * time.Millisecond,
			2400 * time.Millisecond, 5 * time.Second, 10 * time.Second, 20 * time.Second}
		c.GiveUp = 5 * time.Minute
	}
	procs := []*tracker.Tracker{s.process(slow), s.process(slow)}

	const n = 24
	phones := []string{vpaytest.PhoneSuccess, vpaytest.PhoneInsufficientFunds, vpaytest.PhoneSuccessAlt, vpaytest.PhoneCancelled}
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		for range 3 {
			time.Sleep(900 * time.Millisecond) // chaos: when the kill lands is the point, not a wait for a result
			s.pg.Kill(t)
			time.Sleep(300 * time.Millisecond)
			s.pg.Start(t)
		}
	}()
	var (
		paid     []string
		toRefund = map[string]string{} // reference: transaction id, refunded once its success reached the shop
		refunded = map[string]bool{}
	)
	// refund refunds the payments whose success reached the shop; the
	// database may be down: then later.
	refund := func() {
		for ref, id := range toRefund {
			var n int
			err := s.db.QueryRow(context.Background(), `SELECT count(*) FROM shop_updates WHERE reference = $1 AND status = 'successful'`, ref).Scan(&n)
			if err == nil && n == 1 {
				require.NoError(t, s.emulator.SetStatus(id, vpay.StatusRefunded))
				refunded[ref] = true
				delete(toRefund, ref)
			}
		}
	}
	for i := range n {
		ref := fmt.Sprintf("chaos-%02d", i)
		for try := 0; ; try++ {
			p, err := s.pay(procs[i%2], ref, phones[i%len(phones)])
			if err == nil || errors.Is(err, tracker.ErrNotRecorded) {
				paid = append(paid, ref)
				if i%8 == 0 && phones[i%len(phones)] == vpaytest.PhoneSuccess {
					toRefund[ref] = p.TransactionID
				}
				break
			}
			require.Zero(t, s.emulator.PaymentsFor(ref), "a Pay that failed with %v sent nothing", err)
			require.Less(t, try, 200, "the database never came back")
			time.Sleep(50 * time.Millisecond) // the shop retries its order a little later
		}
		refund()
		time.Sleep(150 * time.Millisecond) // orders trickle in over the kills
	}
	<-killed
	for deadline := time.Now().Add(time.Minute); len(toRefund) > 0; time.Sleep(50 * time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "payments never settled: %v", toRefund)
		refund()
	}

	// Webhooks lost while PostgreSQL was down are made up by polls; the
	// refunds' webhooks, by V-Pay's redelivery (here, a Resend of each).
	// Everything is resent once more: nothing may come twice.
	for _, tx := range s.emulator.Transactions() {
		require.NoError(t, s.emulator.Resend(tx.TransactionID))
	}
	want := map[string][]string{}
	for _, tx := range s.emulator.Transactions() {
		if refunded[tx.Reference] {
			want[tx.Reference] = []string{"successful", "refunded"}
		} else {
			want[tx.Reference] = []string{string(tx.Status)}
		}
	}
	require.Len(t, want, len(paid), "one V-Pay payment per order")
	deadline := time.Now().Add(2 * time.Minute)
	var got map[string][]string
	for {
		got = map[string][]string{}
		for ref, ds := range s.updates() {
			for _, d := range ds {
				got[ref] = append(got[ref], d.status)
			}
		}
		if mapsEqual(got, want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	assert.Equal(t, want, got, "each (payment, status) exactly once, in order, none missing")
	var polled int
	for _, ds := range s.updates() {
		for _, d := range ds {
			if d.source == "poll" {
				polled++
			}
		}
	}
	t.Logf("%d payments, %d refunds, 3 kills; %d statuses found by polling", len(want), len(refunded), polled)
}

func mapsEqual(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}
