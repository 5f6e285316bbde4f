package tracker

import (
	"time"

	"github.com/riverqueue/river"
)

// PendingCountQuery is PendingCount's query, for the test that EXPLAINs it.
var PendingCountQuery = pendingCountQuery

// NewWithFetchCooldown is New with d between a process's fetches, and
// between River's own insert notifications, for the tests that must tell
// River's notifications from the tracker's wake-ups.
func NewWithFetchCooldown(cfg Config, d time.Duration) (*Tracker, error) { return newTracker(cfg, d) }

// RiverConfig is the configuration t gave River.
func RiverConfig(t *Tracker) *river.Config { return t.rcfg }
