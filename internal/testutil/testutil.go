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

// Wait returns when ch yields a value or is closed, or reports a failure
// after 10 s and returns false. Unlike Recv it never stops the test, so it
// may wait on any goroutine: an HTTP handler, a function given to the code
// under test. The caller returns at once on false.
func Wait[T any](t testing.TB, ch <-chan T, what string) bool {
	t.Helper()
	select {
	case <-ch:
		return true
	case <-time.After(10 * time.Second):
		t.Errorf("timed out waiting for %s", what)
		return false
	}
}

// Send delivers v on ch, or fails the test after 10 s: a receiver that
// never comes (the code under test never called back) must fail the
// suite, not hang it. Call it from the test's goroutine.
func Send[T any](t testing.TB, ch chan<- T, v T, what string) {
	t.Helper()
	select {
	case ch <- v:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out handing over %s", what)
	}
}
