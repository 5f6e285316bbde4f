// Package testutil holds the helpers the core module's tests share.
package testutil

import (
	"testing"
	"time"
)

// Recv returns the next value from ch, or fails the test after 10 s: a
// broken promise must fail the suite, not hang it.
func Recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}
