package vpay

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The overhead benchmarks compare the SDK with the same call written by
// hand with net/http and encoding/json, against one local server that
// answers a fixed body with generous rate-limit headers (not the emulator,
// whose own limits would cap only the SDK). Run them with
//
//	go test -run XXX -bench 'Overhead|Throughput' -benchtime 1x .
//
// Each reports medians of per-round ratios (sdk/raw), so that the noise of
// a shared machine hits both sides of a round alike.

const statusBody = `{"status_code":200,"status":"SUCCESSFUL","message":"Transaction completed successfully.",` +
	`"amount":"240.00","currency":"RWF","transaction_date":"2026-05-30 08:03:32 PM","timezone":"Africa/Kigali",` +
	`"transaction_date_gmt":"2026-05-30 06:03:32 PM","time_taken":"16 sec","payer_name":"Celestin Niyomugabo",` +
	`"payer_phone":"250790000000","mode":"live","transaction_id":"VP86583387","merchant":"VONSUNG","external_id":"TXN_TDTAGD1HFJS"}`

const payBody = `{"status":"PENNDING","message":"Prompt sent","transaction_id":"VP86583387","merchant":"VONSUNG","created_at":"2026-05-30T18:03:32Z"}`

// fixedServer answers every API call with a fixed body and generous
// rate-limit headers.
func fixedServer(tb testing.TB) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		h["X-Ratelimit-Limit"] = []string{"100000000"}
		h["X-Ratelimit-Remaining"] = []string{"99999999"}
		h["X-Ratelimit-Reset"] = []string{fmt.Sprint(time.Now().Add(time.Hour).Unix())}
		switch r.URL.Path {
		case "/auth/":
			_, _ = io.WriteString(w, `{"access":"tok","refresh":"r","mode":"sandbox","expires_in":"3600.0 seconds"}`)
		case "/pay/":
			_, _ = io.WriteString(w, payBody)
		default:
			_, _ = io.WriteString(w, statusBody)
		}
	}))
	tb.Cleanup(srv.Close)
	return srv
}

// rawTransaction holds every field the SDK's Transaction exposes, as a
// hand-written client would decode them.
type rawTransaction struct {
	Status             string            `json:"status"`
	Message            string            `json:"message"`
	Amount             string            `json:"amount"`
	Currency           string            `json:"currency"`
	TransactionDate    string            `json:"transaction_date"`
	Timezone           string            `json:"timezone"`
	TransactionDateGMT string            `json:"transaction_date_gmt"`
	TimeTaken          string            `json:"time_taken"`
	PayerName          string            `json:"payer_name"`
	PayerEmail         string            `json:"payer_email"`
	PayerPhone         string            `json:"payer_phone"`
	PaymentMethod      string            `json:"payment_method"`
	Mode               string            `json:"mode"`
	TransactionID      string            `json:"transaction_id"`
	Merchant           string            `json:"merchant"`
	ExternalID         string            `json:"external_id"`
	FailureCode        string            `json:"failure_code"`
	CreatedAt          string            `json:"created_at"`
	PaymentURL         string            `json:"payment_url"`
	Metadata           map[string]string `json:"metadata"`
}

// rawClient is the hand-written baseline: the same headers, a client with
// the SDK's default timeout and transport settings.
type rawClient struct {
	hc   *http.Client
	base string
}

func newRawClient(base string) *rawClient {
	return &rawClient{hc: &http.Client{Timeout: DefaultTimeout, Transport: newBenchTransport()}, base: base}
}

func newBenchTransport() *http.Transport {
	t := defaultHTTPClient().Transport.(*http.Transport).Clone()
	return t
}

func (r *rawClient) do(ctx context.Context, method, path string, body []byte) (*rawTransaction, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "vpay-go/"+Version)
	req.Header.Set("apiUser", testUser)
	req.Header.Set("apiKey", testKey)
	req.Header.Set("Authorization", "Bearer tok")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out rawTransaction
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	if out.TransactionID == "" {
		return nil, fmt.Errorf("no transaction id")
	}
	return &out, nil
}

func (r *rawClient) status(ctx context.Context) error {
	_, err := r.do(ctx, "GET", "/transaction/status/?transaction_id=VP86583387", nil)
	return err
}

// rawPayRequest and rawPayment are the minimal hand-written Pay: a struct
// body, and the answer's fields decoded with encoding/json.
type rawPayRequest struct {
	Amount        int64  `json:"amount"`
	Currency      string `json:"currency"`
	PaymentMethod string `json:"payment_method"`
	PayerPhone    string `json:"payer_phone"`
	ExternalID    string `json:"external_id"`
	PayeeMessage  string `json:"payee_message"`
}

type rawPayment struct {
	Status        string `json:"status"`
	Message       string `json:"message"`
	TransactionID string `json:"transaction_id"`
	Merchant      string `json:"merchant"`
	PaymentURL    string `json:"payment_url"`
	CreatedAt     string `json:"created_at"`
}

func (r *rawClient) pay(ctx context.Context) error {
	body, err := json.Marshal(&rawPayRequest{
		Amount: 1500, Currency: "RWF", PaymentMethod: "mtnrw", PayerPhone: "0780000000",
		ExternalID: "order-1", PayeeMessage: "Order 1",
	})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", r.base+"/pay/", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "vpay-go/"+Version)
	req.Header.Set("apiUser", testUser)
	req.Header.Set("apiKey", testKey)
	req.Header.Set("Authorization", "Bearer tok")
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var out rawPayment
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return err
	}
	if out.TransactionID == "" {
		return fmt.Errorf("no transaction id")
	}
	return nil
}

// benchPair builds the SDK and raw calls of one endpoint.
func benchPair(tb testing.TB, endpoint string) (sdk, raw func(context.Context) error) {
	srv := fixedServer(tb)
	c, err := NewClient(testUser, testKey, WithBaseURL(srv.URL), WithPlan(Plan{PerMinute: 1 << 30}))
	if err != nil {
		tb.Fatal(err)
	}
	rc := newRawClient(srv.URL)
	req := &PayRequest{Amount: 1500, Phone: "0780000000", Reference: "order-1", Description: "Order 1"}
	switch endpoint {
	case "Status":
		return func(ctx context.Context) error { _, err := c.Status(ctx, "VP86583387"); return err }, rc.status
	default:
		return func(ctx context.Context) error { _, err := c.Pay(ctx, req); return err }, rc.pay
	}
}

// measure runs f n times and returns the time and allocations per call.
func measure(tb testing.TB, n int, f func(context.Context) error) (time.Duration, float64) {
	ctx := context.Background()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	start := time.Now()
	for range n {
		if err := f(ctx); err != nil {
			tb.Fatal(err)
		}
	}
	d := time.Since(start)
	runtime.ReadMemStats(&m1)
	return d / time.Duration(n), float64(m1.Mallocs-m0.Mallocs) / float64(n)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// rounds is what interleaved rounds of sdk and raw measured: per round,
// the time and allocation ratios and each side's time and allocations.
type rounds struct{ timeRatio, allocRatio, sdkTime, rawTime, sdkAllocs, rawAllocs []float64 }

// interleave runs k rounds of n calls per side, the order alternating, so
// that the machine's noise hits both sides of a round alike.
func interleave(b *testing.B, k, n int, sdk, raw func(context.Context) error) rounds {
	var r rounds
	for range b.N {
		for i := range k {
			var sd, rd time.Duration
			var sa, ra float64
			if i%2 == 0 {
				sd, sa = measure(b, n, sdk)
				rd, ra = measure(b, n, raw)
			} else {
				rd, ra = measure(b, n, raw)
				sd, sa = measure(b, n, sdk)
			}
			r.timeRatio, r.allocRatio = append(r.timeRatio, float64(sd)/float64(rd)), append(r.allocRatio, sa/ra)
			r.sdkTime, r.rawTime = append(r.sdkTime, float64(sd)), append(r.rawTime, float64(rd))
			r.sdkAllocs, r.rawAllocs = append(r.sdkAllocs, sa), append(r.rawAllocs, ra)
		}
	}
	return r
}

// BenchmarkOverhead: 15 interleaved rounds of 2,000 calls per side;
// reports the median sdk/raw ratio of time and of allocations per call,
// and each side's median time.
func BenchmarkOverhead(b *testing.B) {
	for _, endpoint := range []string{"Status", "Pay"} {
		b.Run(endpoint, func(b *testing.B) {
			sdk, raw := benchPair(b, endpoint)
			measure(b, 500, sdk) // warm up: token, connections
			measure(b, 500, raw)
			r := interleave(b, 15, 2000, sdk, raw)
			b.ReportMetric(median(r.timeRatio), "time-ratio")
			b.ReportMetric(median(r.allocRatio), "alloc-ratio")
			b.ReportMetric(median(r.sdkTime)/1e3, "sdk-µs/op")
			b.ReportMetric(median(r.rawTime)/1e3, "raw-µs/op")
		})
	}
}

// BenchmarkThroughput: Status from 1, 8, 64 and 512 goroutines for a fixed
// time each, SDK and raw interleaved; reports calls per second of each,
// their ratio, and p50/p99 latency.
func BenchmarkThroughput(b *testing.B) {
	for _, g := range []int{1, 8, 64, 512} {
		b.Run(fmt.Sprintf("goroutines=%d", g), func(b *testing.B) {
			sdk, raw := benchPair(b, "Status")
			run := func(f func(context.Context) error, d time.Duration) (float64, []time.Duration) {
				var calls atomic.Int64
				lat := make([][]time.Duration, g)
				var wg sync.WaitGroup
				stop := time.Now().Add(d)
				for i := range g {
					wg.Add(1)
					go func() {
						defer wg.Done()
						ctx := context.Background()
						for time.Now().Before(stop) {
							t0 := time.Now()
							if err := f(ctx); err != nil {
								b.Error(err)
								return
							}
							lat[i] = append(lat[i], time.Since(t0))
							calls.Add(1)
						}
					}()
				}
				wg.Wait()
				var all []time.Duration
				for _, l := range lat {
					all = append(all, l...)
				}
				slices.Sort(all)
				return float64(calls.Load()) / d.Seconds(), all
			}
			run(sdk, 200*time.Millisecond) // warm up connections
			run(raw, 200*time.Millisecond)
			var ratios []float64
			var sdkRate, rawRate []float64
			var sdkLat, rawLat []time.Duration
			for range b.N {
				for i := range 6 {
					var sr, rr float64
					var sl, rl []time.Duration
					if i%2 == 0 {
						sr, sl = run(sdk, 300*time.Millisecond)
						rr, rl = run(raw, 300*time.Millisecond)
					} else {
						rr, rl = run(raw, 300*time.Millisecond)
						sr, sl = run(sdk, 300*time.Millisecond)
					}
					ratios = append(ratios, sr/rr)
					sdkRate, rawRate = append(sdkRate, sr), append(rawRate, rr)
					sdkLat, rawLat = append(sdkLat, sl...), append(rawLat, rl...)
				}
			}
			slices.Sort(sdkLat)
			slices.Sort(rawLat)
			pct := func(l []time.Duration, p float64) float64 { return float64(l[int(p*float64(len(l)-1))]) / 1e3 }
			b.ReportMetric(median(ratios), "throughput-ratio")
			b.ReportMetric(median(sdkRate), "sdk-calls/s")
			b.ReportMetric(median(rawRate), "raw-calls/s")
			b.ReportMetric(pct(sdkLat, 0.5), "sdk-p50-µs")
			b.ReportMetric(pct(rawLat, 0.5), "raw-p50-µs")
			b.ReportMetric(pct(sdkLat, 0.99), "sdk-p99-µs")
			b.ReportMetric(pct(rawLat, 0.99), "raw-p99-µs")
		})
	}
}

// BenchmarkClientCost: each endpoint's SDK call against the minimal
// hand-written one over an in-memory transport, 15 interleaved rounds of
// 5,000 calls per side; reports the median sdk/raw ratios of time and
// allocations per call and each side's median time and allocations. Over
// loopback (BenchmarkOverhead) the server and the kernel dominate; here
// only the client's own work counts.
//
//	go test -run XXX -bench ClientCost -benchtime 1x .
func BenchmarkClientCost(b *testing.B) {
	for _, endpoint := range []string{"Status", "Pay"} {
		b.Run(endpoint, func(b *testing.B) {
			hc := &http.Client{Transport: cannedTransport{}} // observe_bench_test.go
			c, err := NewClient(testUser, testKey, WithBaseURL("https://vpay.test"), WithHTTPClient(hc), WithPlan(Plan{PerMinute: 1 << 30}))
			if err != nil {
				b.Fatal(err)
			}
			rc := &rawClient{hc: hc, base: "https://vpay.test"}
			req := &PayRequest{Amount: 1500, Phone: "0780000000", Reference: "order-1", Description: "Order 1"}
			sdk, raw := func(ctx context.Context) error { _, err := c.Pay(ctx, req); return err }, rc.pay
			if endpoint == "Status" {
				sdk = func(ctx context.Context) error { _, err := c.Status(ctx, "VP86583387"); return err }
				raw = rc.status
			}
			measure(b, 1000, sdk)
			measure(b, 1000, raw)
			r := interleave(b, 15, 5000, sdk, raw)
			b.ReportMetric(median(r.timeRatio), "time-ratio")
			b.ReportMetric(median(r.allocRatio), "alloc-ratio")
			b.ReportMetric(median(r.sdkTime), "sdk-ns/op")
			b.ReportMetric(median(r.rawTime), "raw-ns/op")
			b.ReportMetric(median(r.sdkAllocs), "sdk-allocs/op")
			b.ReportMetric(median(r.rawAllocs), "raw-allocs/op")
		})
	}
}
