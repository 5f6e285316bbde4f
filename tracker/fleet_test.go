package tracker_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/tracker"
	"github.com/vonsung/vpay-go/vpaytest"
)

// TestThreeProcessesHalfTheWebhooksLostOneStopped: 42 payments of mixed
// outcomes paid through three tracker processes on one database, half of
// the webhooks lost, one process stopped half-way: every payment's final
// status reaches the shop exactly once.
func TestThreeProcessesHalfTheWebhooksLostOneStopped(t *testing.T) {
	s := newShop(t)
	s.emulator.LoseWebhooks(0.5)
	procs := []*tracker.Tracker{s.process(), s.process(), s.process()}
	phones := []string{vpaytest.PhoneSuccess, vpaytest.PhoneSuccessAlt, vpaytest.PhoneInsufficientFunds, vpaytest.PhoneTimeout, vpaytest.PhoneCancelled}
	const n = 42
	want := map[string]string{}
	for i := range n {
		if i == n/2 {
			require.NoError(t, procs[1].Stop(context.Background()), "one process stops half-way")
		}
		tr := procs[i%3]
		if i >= n/2 && i%3 == 1 {
			tr = procs[0] // the stopped one takes no more orders
		}
		ref := fmt.Sprintf("order-%02d", i)
		_, err := s.pay(tr, ref, phones[i%len(phones)])
		require.NoError(t, err)
		want[ref] = ""
	}
	s.waitFor("every payment's final status", func(u map[string][]delivery) bool { return len(u) == n })
	time.Sleep(500 * time.Millisecond) // room for a duplicate to show; none may
	u := s.updates()
	final := map[string]vpay.Status{}
	for _, tx := range s.emulator.Transactions() {
		final[tx.Reference] = tx.Status
	}
	lost := 0
	for ref := range want {
		require.Len(t, u[ref], 1, "%s delivered exactly once: %v", ref, u[ref])
		assert.Equal(t, string(final[ref]), u[ref][0].status, ref)
		if u[ref][0].source == "poll" {
			lost++
		}
	}
	t.Logf("%d payments, %d of their statuses found by polling (webhook lost), %d status calls", n, lost, s.emulator.Requests("/transaction/status/"))
	assert.Positive(t, lost, "some webhooks were lost and made up for")
}

// TestPaymentsMadeBeforeEveryTrackerStoppedAreFinishedLater: every webhook
// lost, every process stopped right after paying; a process started later
// finishes them all.
func TestPaymentsMadeBeforeEveryTrackerStoppedAreFinishedLater(t *testing.T) {
	s := newShop(t)
	s.emulator.LoseWebhooks(1)
	first := s.process()
	for i := range 5 {
		_, err := s.pay(first, fmt.Sprintf("order-%d", i), vpaytest.PhoneSuccess)
		require.NoError(t, err)
	}
	require.NoError(t, first.Stop(context.Background()))
	time.Sleep(time.Second) // every check falls due while no tracker runs
	assert.Empty(t, s.updates())
	s.process()
	u := s.waitFor("the later tracker to finish them", func(u map[string][]delivery) bool { return len(u) == 5 })
	for ref, ds := range u {
		assert.Equal(t, []delivery{{"successful", "poll"}}, ds, ref)
	}
}

// TestKilledInsideOnUpdateDeliversOnce: a process is killed (SIGKILL) in
// the middle of OnUpdate, its transaction open; another process delivers
// the update once.
func TestKilledInsideOnUpdateDeliversOnce(t *testing.T) {
	if os.Getenv("VPAY_TRACKER_CRASH_HELPER") != "" {
		t.Skip("the helper runs TestCrashHelper only")
	}
	s := newShop(t)
	// A tracker that only records (not started): the webhook enqueues the
	// delivery, which the helper process then takes.
	idle := s.idle()
	_, err := s.pay(idle, "order-crash", vpaytest.PhoneSuccess)
	require.NoError(t, err)

	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.v")
	cmd.Env = append(os.Environ(), "VPAY_TRACKER_CRASH_HELPER=1", "VPAY_HELPER_DSN="+s.dsn,
		"VPAY_HELPER_URL="+s.emulator.URL, "VPAY_HELPER_USER="+s.emulator.APIUser, "VPAY_HELPER_KEY="+s.emulator.APIKey)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = cmd.Stdout
	require.NoError(t, cmd.Start())
	inside := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "inside OnUpdate") {
				close(inside)
			}
		}
	}()
	select {
	case <-inside:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("the helper never reached OnUpdate")
	}
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	assert.Empty(t, s.updates(), "the killed transaction was rolled back")

	// Another process rescues the job (after RescueAfter, at River's next
	// rescue pass) and delivers it.
	s.process(func(c *tracker.Config) { c.RescueAfter = 2 * time.Second })
	s.waitFor("the delivery after the crash", func(u map[string][]delivery) bool { return len(u["order-crash"]) == 1 })
	time.Sleep(time.Second)
	assert.Len(t, s.updates()["order-crash"], 1, "delivered exactly once")
}

// TestCrashHelper is the process TestKilledInsideOnUpdateDeliversOnce
// kills: it enters OnUpdate, writes to the shop's table, says so, and
// hangs there.
func TestCrashHelper(t *testing.T) {
	if os.Getenv("VPAY_TRACKER_CRASH_HELPER") == "" {
		t.Skip("run by TestKilledInsideOnUpdateDeliversOnce")
	}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("VPAY_HELPER_DSN"))
	require.NoError(t, err)
	c, err := vpay.NewClient(os.Getenv("VPAY_HELPER_USER"), os.Getenv("VPAY_HELPER_KEY"), vpay.WithBaseURL(os.Getenv("VPAY_HELPER_URL")))
	require.NoError(t, err)
	tr, err := tracker.New(tracker.Config{Client: c, Pool: pool, PollInterval: 50 * time.Millisecond, RescueAfter: 2 * time.Second,
		OnUpdate: func(ctx context.Context, tx pgx.Tx, u tracker.Update) error {
			if _, err := tx.Exec(ctx, `INSERT INTO shop_updates (reference, status, source, unresolved, transaction_id) VALUES ($1, $2, $3, $4, $5)`,
				u.Reference, string(u.Status), string(u.Source), u.Unresolved, u.TransactionID); err != nil {
				return err
			}
			fmt.Println("inside OnUpdate")
			select {} // killed here, the transaction open
		}})
	require.NoError(t, err)
	require.NoError(t, tr.Start(ctx))
	select {}
}
