package webhook

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vonsung/vpay-go"
)

// The de-duplication contract between Handler and a store (Deduper), and
// the in-memory store for one process (MemoryDeduper). Shared stores live
// in the redisstore and pgstore modules.

// DefaultDedupeTTL is how long the in-memory Deduper remembers an event:
// longer than V-Pay keeps redelivering.
const DefaultDedupeTTL = 24 * time.Hour

// Deduper remembers which events were processed, so that a redelivered
// event reaches the handler's function once. The signature has no
// timestamp, so this is also the protection against replayed requests.
//
// An event goes through two states: in progress, held by one delivery
// (its owner) under a lease that the handler renews while fn runs, and
// done, remembered for the Deduper's TTL. The lease is what lets a
// redelivery tell "being processed right now" (answer non-2xx: the first
// delivery may still fail) from "processed" (answer 200), and what frees
// the event when the process holding it crashed.
//
// Implementations must be safe for concurrent use.
type Deduper interface {
	// Claim takes key for owner for lease, unless the event is done
	// (Done) or another owner holds a lease that has not expired
	// (InProgress). An expired lease is taken over.
	Claim(ctx context.Context, key, owner string, lease time.Duration) (ClaimState, error)
	// Extend renews owner's lease on key for another lease from now. It
	// returns ErrLeaseLost when owner no longer holds key.
	Extend(ctx context.Context, key, owner string, lease time.Duration) error
	// Complete records key as done, whoever holds it: the event was
	// processed.
	Complete(ctx context.Context, key, owner string) error
	// Release drops owner's claim after processing failed, so that the
	// next delivery is processed. A claim owner no longer holds is left
	// alone.
	Release(ctx context.Context, key, owner string) error
}

// ClaimState is what Deduper.Claim found.
type ClaimState int

// The states of Claim.
const (
	// Claimed: the caller now holds the event; it processes it, then
	// calls Complete or Release.
	Claimed ClaimState = iota + 1
	// InProgress: another delivery holds a live lease on the event.
	InProgress
	// Done: the event was processed.
	Done
)

// String names the state, for logs.
func (s ClaimState) String() string {
	switch s {
	case Claimed:
		return "claimed"
	case InProgress:
		return "in progress"
	case Done:
		return "done"
	}
	return fmt.Sprintf("ClaimState(%d)", int(s))
}

// ErrLeaseLost is returned by Deduper.Extend when the owner no longer holds
// the event.
var ErrLeaseLost = errors.New("webhook: lease lost")

// DedupeKey identifies an event for de-duplication: the same transaction in
// the same status is the same event.
func DedupeKey(ev *vpay.Event) string {
	return ev.Transaction.TransactionID + ":" + string(ev.Transaction.Status)
}

// MemoryDeduper is the default Deduper: a map with a TTL, for one process.
// Behind several replicas, use a shared one (redisstore.NewDeduper).
type MemoryDeduper struct {
	ttl  time.Duration
	now  func() time.Time
	seed maphash.Seed

	nextSweep atomic.Int64 // Unix nanoseconds after which a Claim sweeps
	shards    [dedupeShards]dedupeShard
}

// dedupeShards spreads the keys over this many maps, each with its lock: a
// burst of redeliveries on many connections would otherwise queue on one
// lock, and a delivery whose goroutine waits there holds its connection.
const dedupeShards = 32

type dedupeShard struct {
	mu   sync.Mutex
	seen map[string]claim
}

type claim struct {
	owner string    // "" once done
	until time.Time // end of the lease, or of the TTL once done
}

// NewMemoryDeduper returns a Deduper that remembers a processed event for
// ttl (DefaultDedupeTTL when ttl is not positive).
func NewMemoryDeduper(ttl time.Duration) *MemoryDeduper {
	if ttl <= 0 {
		ttl = DefaultDedupeTTL
	}
	d := &MemoryDeduper{ttl: ttl, now: time.Now, seed: maphash.MakeSeed()}
	for i := range d.shards {
		d.shards[i].seen = make(map[string]claim)
	}
	return d
}

// shard is key's map, locked; the caller unlocks it.
func (d *MemoryDeduper) shard(key string) *dedupeShard {
	s := &d.shards[maphash.String(d.seed, key)%dedupeShards]
	s.mu.Lock()
	return s
}

// sweep drops expired keys now and then, so memory follows the traffic of
// one TTL, not of the process's life. One Claim sweeps every shard, one
// lock at a time; the others go on.
func (d *MemoryDeduper) sweep(now time.Time) {
	next := d.nextSweep.Load()
	if now.UnixNano() <= next || !d.nextSweep.CompareAndSwap(next, now.Add(d.ttl/10).UnixNano()) {
		return
	}
	for i := range d.shards {
		s := &d.shards[i]
		s.mu.Lock()
		for k, c := range s.seen {
			if !now.Before(c.until) {
				delete(s.seen, k)
			}
		}
		s.mu.Unlock()
	}
}

// Claim implements Deduper.
func (d *MemoryDeduper) Claim(_ context.Context, key, owner string, lease time.Duration) (ClaimState, error) {
	now := d.now()
	d.sweep(now)
	s := d.shard(key)
	defer s.mu.Unlock()
	if c, ok := s.seen[key]; ok && now.Before(c.until) {
		if c.owner == "" {
			return Done, nil
		}
		return InProgress, nil
	}
	s.seen[key] = claim{owner: owner, until: now.Add(lease)}
	return Claimed, nil
}

// Extend implements Deduper.
func (d *MemoryDeduper) Extend(_ context.Context, key, owner string, lease time.Duration) error {
	now := d.now()
	s := d.shard(key)
	defer s.mu.Unlock()
	c, ok := s.seen[key]
	if !ok || c.owner != owner || !now.Before(c.until) {
		// An expired lease is lost, as a shared store's key expires: any
		// delivery may have claimed the event since.
		return ErrLeaseLost
	}
	c.until = now.Add(lease)
	s.seen[key] = c
	return nil
}

// Complete implements Deduper.
func (d *MemoryDeduper) Complete(_ context.Context, key, _ string) error {
	now := d.now()
	s := d.shard(key)
	defer s.mu.Unlock()
	s.seen[key] = claim{until: now.Add(d.ttl)}
	return nil
}

// Release implements Deduper.
func (d *MemoryDeduper) Release(_ context.Context, key, owner string) error {
	s := d.shard(key)
	defer s.mu.Unlock()
	if c, ok := s.seen[key]; ok && c.owner == owner && owner != "" {
		delete(s.seen, key)
	}
	return nil
}
