package tracker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/vonsung/vpay-go"
)

// Source says where the tracker learnt a status.
type Source string

// The sources of an Update.
const (
	SourcePay     Source = "pay"     // the answer to Pay
	SourceWebhook Source = "webhook" // a webhook delivery
	SourcePoll    Source = "poll"    // a scheduled status check
	SourceManual  Source = "manual"  // Resolve, by a person
	SourceGiveUp  Source = "give_up" // no final status after Config.GiveUp
)

// ErrNotRecorded is returned by Tracker.Pay, with the *vpay.Payment, when
// V-Pay accepted the payment but the tracker could not write its answer
// (its transaction id) to the database, even after retrying: the payment
// exists; do not pay again. The tracker keeps trying to write it in the
// background until Stop, and the payment's webhook settles it in any case;
// keep the Payment's TransactionID for Resolve if both fail.
var ErrNotRecorded = errors.New("tracker: the payment exists but its answer was not recorded; do not pay again")

// Update is one status of one payment, handed to Config.OnUpdate once.
type Update struct {
	// Reference is the payment's reference (the order id); "" for a
	// payment that came without one (its webhook named only a transaction
	// id): such a payment is known by its TransactionID alone.
	Reference string
	// TransactionID is V-Pay's id, "" when it was never learnt (a Pay whose
	// answer was lost, then no webhook).
	TransactionID string
	// Status is the status this Update delivers.
	Status vpay.Status
	// Transaction is the latest the tracker saw of the payment; nil when
	// it saw none.
	Transaction *vpay.Transaction
	// Source is where the status came from.
	Source Source
	// Unresolved is true for the one Update sent when no final status was
	// known after Config.GiveUp: a person should look at the payment.
	Unresolved bool
}

// Config configures a Tracker. Client, Pool and OnUpdate are required.
type Config struct {
	// Client makes the Pay and status calls.
	Client *vpay.Client
	// Pool is the database of the tracker's tables and River's.
	Pool *pgxpool.Pool
	// OnUpdate receives each final status, and each later change, once,
	// inside tx, the transaction that records the delivery: write your
	// order's new state with tx. An error rolls everything back, and the
	// same Update comes again later.
	OnUpdate func(ctx context.Context, tx pgx.Tx, u Update) error
	// Schedule is when to check a payment's status after Pay, when no
	// final status is known by then (default 45 s, 2 min, 4 min, 15 min,
	// 1 h, 6 h, 24 h).
	Schedule []time.Duration
	// GiveUp is how long after Pay a payment without a final status is
	// reported Unresolved (default 72 h).
	GiveUp time.Duration
	// Logger receives the tracker's logs (default: discarded). No secret
	// is ever logged.
	Logger *slog.Logger
	// Workers is how many jobs a process runs at once (default 100): the
	// deliveries and status checks under way, most of them waiting for a
	// connection of Pool. It also caps the jobs one fetch takes, so it
	// bounds how fast a busy process drains its deliveries; see "Tuning"
	// in the README.
	Workers int
	// RescueAfter is how long a job may run before another process takes
	// it over, for a process that died mid-job (default 2 min).
	RescueAfter time.Duration
	// PollInterval is how often a process looks for due jobs besides
	// PostgreSQL's notifications (default 1 s): an idle process's cadence,
	// and how late a scheduled status check may start. A delivery does
	// not wait for it: the transaction that enqueues one wakes the
	// processes when it commits.
	PollInterval time.Duration
	// Observer is told of each delivered Update, for metrics (optional).
	Observer *Observer
}

// Observer is the tracker's hook for metrics: point it at OpenTelemetry (see
// the vpayotel module's README) or anything else. With PendingCount read by
// a gauge, it tells how many orders wait and how long they took.
type Observer struct {
	// Delivered is called once per Update, after the transaction that
	// delivered it to OnUpdate committed, with the time from the
	// payment's creation (its Pay, or the first webhook of a payment made
	// elsewhere) to that commit: for a final status, the time the order
	// took to settle. It must be quick; it runs on a River worker.
	Delivered func(ctx context.Context, u Update, sinceCreated time.Duration)
}

// DefaultSchedule is Config.Schedule's default.
var DefaultSchedule = []time.Duration{45 * time.Second, 2 * time.Minute, 4 * time.Minute, 15 * time.Minute, time.Hour, 6 * time.Hour, 24 * time.Hour}

// Defaults of Config.
const (
	DefaultGiveUp      = 72 * time.Hour
	DefaultWorkers     = 100
	DefaultRescueAfter = 2 * time.Minute
)

// fetchCooldown is the shortest time between two fetches of jobs by one
// process, and between two of River's own insert notifications. Each
// fetch takes up to Workers jobs, so a short cooldown lets a busy process
// keep pace with its deliveries; an idle one fetches only every
// PollInterval, or when woken.
const fetchCooldown = 10 * time.Millisecond

// queue is the River queue of the tracker's jobs.
const queue = "vpay_tracker"

// Tracker follows payments; see the package documentation. It is safe for
// concurrent use.
type Tracker struct {
	cfg   Config
	log   *slog.Logger
	river *river.Client[pgx.Tx]
	// rcfg is what River was configured with: the tests hold the defaults
	// a merchant gets to it.
	rcfg  *river.Config
	admin *Admin

	// Writes of Pay answers that failed while Pay waited, retried in the
	// background until they succeed or Stop ends them.
	later    sync.WaitGroup
	stopping chan struct{}
	stopOnce sync.Once
}

// New returns a Tracker for cfg. It does not start working jobs: Start
// does. Migrate must have run on cfg.Pool's database.
func New(cfg Config) (*Tracker, error) { return newTracker(cfg, fetchCooldown) }

// newTracker is New with the time between fetches (and between River's own
// insert notifications) as a parameter, for the tests that need River to
// notify as seldom as it can.
func newTracker(cfg Config, cooldown time.Duration) (*Tracker, error) {
	switch {
	case cfg.Client == nil:
		return nil, errors.New("tracker: Config.Client is required")
	case cfg.Pool == nil:
		return nil, errors.New("tracker: Config.Pool is required")
	case cfg.OnUpdate == nil:
		return nil, errors.New("tracker: Config.OnUpdate is required")
	}
	if cfg.Schedule == nil {
		cfg.Schedule = DefaultSchedule
	}
	for i, d := range cfg.Schedule {
		if d <= 0 || (i > 0 && d <= cfg.Schedule[i-1]) {
			return nil, fmt.Errorf("tracker: Config.Schedule must be positive and increasing, got %v", cfg.Schedule)
		}
	}
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"GiveUp", cfg.GiveUp}, {"RescueAfter", cfg.RescueAfter}, {"PollInterval", cfg.PollInterval}} {
		if f.d < 0 {
			return nil, fmt.Errorf("tracker: Config.%s must not be negative, got %v (0 means the default)", f.name, f.d)
		}
	}
	if cfg.Workers < 0 {
		return nil, fmt.Errorf("tracker: Config.Workers must not be negative, got %d (0 means the default)", cfg.Workers)
	}
	cfg.GiveUp = cmp.Or(cfg.GiveUp, DefaultGiveUp)
	if n := len(cfg.Schedule); n > 0 && cfg.GiveUp <= cfg.Schedule[n-1] {
		return nil, fmt.Errorf("tracker: Config.GiveUp (%v) must come after the last Schedule step (%v): the last check would never run", cfg.GiveUp, cfg.Schedule[n-1])
	}
	cfg.Workers = cmp.Or(cfg.Workers, DefaultWorkers)
	cfg.RescueAfter = cmp.Or(cfg.RescueAfter, DefaultRescueAfter)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	t := &Tracker{cfg: cfg, log: cfg.Logger, stopping: make(chan struct{})}
	workers := river.NewWorkers()
	river.AddWorker(workers, &checkWorker{t: t})
	river.AddWorker(workers, &deliverWorker{t: t})
	t.rcfg = &river.Config{
		Queues:  map[string]river.QueueConfig{queue: {MaxWorkers: cfg.Workers}},
		Workers: workers,
		Logger:  cfg.Logger,
		// A delivery is retried until it succeeds: River's default of 25
		// attempts would drop an Update after a long outage.
		MaxAttempts:          1 << 30,
		RetryPolicy:          retryPolicy{},
		JobTimeout:           min(time.Minute, cfg.RescueAfter/2),
		RescueStuckJobsAfter: cfg.RescueAfter,
		FetchPollInterval:    cmp.Or(cfg.PollInterval, time.Second),
		FetchCooldown:        min(cooldown, cmp.Or(cfg.PollInterval, time.Second)),
	}
	rc, err := river.NewClient(riverpgxv5.New(cfg.Pool), t.rcfg)
	if err != nil {
		return nil, fmt.Errorf("tracker: %w", err)
	}
	t.river = rc
	t.admin = &Admin{pool: cfg.Pool, river: rc, log: cfg.Logger}
	return t, nil
}

// Start works the tracker's jobs until Stop. Any number of processes may
// run on one database: they share the work.
func (t *Tracker) Start(ctx context.Context) error { return t.river.Start(ctx) }

// Stop stops taking jobs and waits for the running ones to finish, or for
// ctx to end. A job cut short is taken over by another process after
// Config.RescueAfter; nothing is lost. It also waits, until ctx ends, for
// the background writes of Pay answers that failed (see ErrNotRecorded),
// then ends them.
func (t *Tracker) Stop(ctx context.Context) error {
	err := t.river.Stop(ctx)
	done := make(chan struct{})
	go func() { t.later.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	t.stopOnce.Do(func() { close(t.stopping) })
	return err
}

// retryPolicy retries a failed job after 1 s, 2 s, 4 s ... up to 10 min,
// for ever.
type retryPolicy struct{}

func (retryPolicy) NextRetry(job *rivertype.JobRow) time.Time {
	d := time.Second << min(job.Attempt, 10)
	return time.Now().Add(min(d, 10*time.Minute))
}

// Pending lists the payments without a final status; see Admin.Pending.
func (t *Tracker) Pending(ctx context.Context, limit int) ([]Payment, error) {
	return t.admin.Pending(ctx, limit)
}

// PendingCount counts the payments without a final status; see
// Admin.PendingCount.
func (t *Tracker) PendingCount(ctx context.Context) (pending, unresolved int64, err error) {
	return t.admin.PendingCount(ctx)
}

// Unresolved lists the payments reported Unresolved; see Admin.Unresolved.
func (t *Tracker) Unresolved(ctx context.Context, limit int) ([]Payment, error) {
	return t.admin.Unresolved(ctx, limit)
}

// Held lists the payments whose Updates are held back; see Admin.Held.
func (t *Tracker) Held(ctx context.Context, limit int) ([]Payment, error) {
	return t.admin.Held(ctx, limit)
}

// Resolve settles a payment by hand; see Admin.Resolve.
func (t *Tracker) Resolve(ctx context.Context, reference string, status vpay.Status, note string) error {
	return t.admin.Resolve(ctx, reference, status, note)
}

// ResolveTransaction settles a payment named by its transaction id by
// hand; see Admin.ResolveTransaction.
func (t *Tracker) ResolveTransaction(ctx context.Context, transactionID string, status vpay.Status, note string) error {
	return t.admin.ResolveTransaction(ctx, transactionID, status, note)
}

// Prune deletes the records of settled payments, keeping tombstones; see
// Admin.Prune.
func (t *Tracker) Prune(ctx context.Context, before time.Time) (int64, error) {
	return t.admin.Prune(ctx, before)
}
