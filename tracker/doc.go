// Package tracker follows every payment until it reaches a final status,
// and hands each final status (and every later change: a refund, a
// dispute) to the merchant's code exactly once, inside the merchant's own
// PostgreSQL transaction, whatever webhooks are lost and whichever process
// dies.
//
// It runs on PostgreSQL through pgx v5, with its jobs on River
// (riverqueue/river): any number of processes share one database and its
// work, and a stopped or killed process loses nothing.
//
//	if err := tracker.Migrate(ctx, pool); err != nil { ... }
//	t, err := tracker.New(tracker.Config{
//		Client: client,
//		Pool:   pool,
//		OnUpdate: func(ctx context.Context, tx pgx.Tx, u tracker.Update) error {
//			_, err := tx.Exec(ctx, `UPDATE orders SET status = $1 WHERE id = $2`, u.Status, u.Reference)
//			return err
//		},
//	})
//	if err := t.Start(ctx); err != nil { ... }
//	defer t.Stop(context.Background())
//	http.Handle("POST /webhooks/vpay", t.Handler(os.Getenv("VPAY_WEBHOOK_SECRET")))
//	p, err := t.Pay(ctx, &vpay.PayRequest{Amount: 1500, Phone: "0780000000", Reference: "order-1042"})
//
// # Exactly once
//
// Each status learnt is added once to its payment's Updates (unique to
// (payment, status)), numbered in the order learnt. OnUpdate runs inside
// the transaction that marks its Update delivered, holding the payment's
// row lock. Commit means delivered; an error, a panic or a crash rolls
// back, and the delivery is tried again with backoff, with no attempt
// limit. River runs a job at least once; the delivered mark makes the
// merchant's side exactly once. Prune keeps a tombstone of each status
// delivered, so a webhook redelivered after it delivers nothing again.
//
// Pay records the payment before sending it and V-Pay's answer after; a
// write of the answer that keeps failing makes Pay return the Payment with
// ErrNotRecorded (the payment exists; do not pay again) and goes on in the
// background.
//
// # Late and out-of-order events
//
// A status already delivered for a payment is never delivered again. A
// final status is never replaced by pending (a late "pending" webhook or
// poll answer is recorded as seen and changes nothing). A change from one
// final status to another (successful to refunded or disputed) is a new
// Update. Updates of one payment reach OnUpdate one at a time, in the
// order the tracker learnt the statuses: a later one waits while an
// earlier one is undelivered (logged, and listed by Admin.Held). For
// webhooks that overtake each other that order may differ from the order
// V-Pay set them: Update.Transaction is always the latest the tracker saw.
//
// A payment that came without a reference is known by its transaction id
// alone, in a key space of its own (Update.Reference is "").
//
// # Polling only where webhooks failed
//
// After Pay, status checks run at Config.Schedule (default 45 s, 2 min,
// 4 min, 15 min, 1 h, 6 h, 24 h after the payment), each skipped once a
// final status is known. They are low-priority calls (vpay.WithLowPriority):
// they use at most half of each rate-limit window and never wait; a check
// that finds no room is snoozed until the window resets. After
// Config.GiveUp (default 72 h) without a final status, one Update with
// Unresolved set goes out, for a person to look at.
//
// A Pay whose outcome is unknown (vpay.ErrOutcomeUnknown) is never sent
// again: the API has no lookup by reference, so the tracker waits for the
// webhook that names the reference, or reports it Unresolved.
//
// # Cost
//
// With webhooks working, a payment costs the Pay and, when its webhook
// comes within 45 s, no status call. With every webhook lost it costs the
// Pay and one status call per scheduled check until the final status: one
// for a payment settled within 45 s, at most seven in all.
package tracker
