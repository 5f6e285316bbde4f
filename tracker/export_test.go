package tracker

import "time"

// PendingCountQuery is PendingCount's query, for the test that EXPLAINs it.
var PendingCountQuery = pendingCountQuery

// SetFetchCooldown sets the time between a process's fetches, and between
// River's own insert notifications, for the test that must tell River's
// notifications from the tracker's wake-ups.
func SetFetchCooldown(cfg *Config, d time.Duration) { cfg.fetchCooldown = d }
