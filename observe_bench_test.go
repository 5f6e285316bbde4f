package vpay

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// cannedTransport answers every request in memory with the fixed bodies of
// the overhead benchmarks: what is left to measure is the SDK's own work.
type cannedTransport struct{}

func (cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	body := statusBody
	switch {
	case strings.HasSuffix(r.URL.Path, "/auth/"):
		body = `{"access":"tok","refresh":"r","mode":"sandbox","expires_in":"3600.0 seconds"}`
	case strings.HasSuffix(r.URL.Path, "/pay/"):
		body = payBody
	}
	return &http.Response{StatusCode: 200, Request: r, ContentLength: int64(len(body)),
		Header: http.Header{"Content-Type": {"application/json"}, "X-Ratelimit-Limit": {"100000000"}, "X-Ratelimit-Remaining": {"99999999"}},
		Body:   io.NopCloser(bytes.NewReader([]byte(body)))}, nil
}

// BenchmarkObserverCost is Status on a canned transport with no observer,
// an Observer with no function set, and one that counts every event: the
// first two must allocate the same, and as much as before observers
// existed (compare "none" with BenchmarkOverhead's sdk allocations at the
// commit before). Run it with
//
//	go test -run XXX -bench ObserverCost -benchmem .
func BenchmarkObserverCost(b *testing.B) {
	var n atomic.Int64
	count := &Observer{
		OperationStart: func(ctx context.Context, _ Operation) context.Context { n.Add(1); return ctx },
		OperationEnd:   func(context.Context, OperationResult) { n.Add(1) },
		AttemptStart:   func(ctx context.Context, _ Attempt) context.Context { n.Add(1); return ctx },
		AttemptEnd:     func(context.Context, AttemptResult) { n.Add(1) },
	}
	for _, bc := range []struct {
		name string
		opts []Option
	}{
		{"none", nil},
		{"empty", []Option{WithObserver(&Observer{})}},
		{"counting", []Option{WithObserver(count)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			opts := append([]Option{WithHTTPClient(&http.Client{Transport: cannedTransport{}}), WithPlan(Plan{PerMinute: 1 << 30})}, bc.opts...)
			c, err := NewClient(testUser, testKey, opts...)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Status(ctx, "VP86583387"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
