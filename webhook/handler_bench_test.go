package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
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

	"github.com/vonsung/vpay-go"
)

// benchEvent is a webhook body of the documented transaction's shape
// (testdata/pay_response_momo.json with its event), one transaction id per
// delivery so that every delivery is a new event for Handler's Deduper.
const benchEvent = `{"event":"payment.successful","status":"SUCCESSFUL","message":"Transaction completed successfully.",` +
	`"amount":"240.00","currency":"RWF","transaction_date":"2026-05-30 08:03:32 PM","timezone":"Africa/Kigali",` +
	`"transaction_date_gmt":"2026-05-30 06:03:32 PM","time_taken":"16 sec","payer_name":"Celestin Niyomugabo",` +
	`"payer_phone":"250790000000","mode":"live","transaction_id":"VP%08d","merchant":"VONSUNG","external_id":"TXN_%08d"}`

// bareEvent is what a merchant writing a handler by hand decodes the body
// into: the event's fields, with encoding/json.
type bareEvent struct {
	Event              string `json:"event"`
	Status             string `json:"status"`
	Message            string `json:"message"`
	Amount             string `json:"amount"`
	Currency           string `json:"currency"`
	TransactionDate    string `json:"transaction_date"`
	Timezone           string `json:"timezone"`
	TransactionDateGMT string `json:"transaction_date_gmt"`
	TimeTaken          string `json:"time_taken"`
	PayerName          string `json:"payer_name"`
	PayerPhone         string `json:"payer_phone"`
	Mode               string `json:"mode"`
	TransactionID      string `json:"transaction_id"`
	Merchant           string `json:"merchant"`
	ExternalID         string `json:"external_id"`
}

// bareHandler is the baseline: the documentation's verification (hex HMAC
// of the raw body, compared in constant time), encoding/json into the
// event's fields, 200.
func bareHandler(secret string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, DefaultMaxBodyBytes))
		if err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(body)
		if !hmac.Equal([]byte(hex.EncodeToString(m.Sum(nil))), []byte(r.Header.Get(SignatureHeader))) {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		var ev bareEvent
		if err := json.Unmarshal(body, &ev); err != nil || ev.TransactionID == "" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}

// benchDelivery is one signed body.
type benchDelivery struct {
	body []byte
	sig  string
}

// benchDeliveries are n new events (ids from *next on), signed.
func benchDeliveries(next *int, n int) []benchDelivery {
	out := make([]benchDelivery, n)
	for i := range out {
		*next++
		body := fmt.Appendf(nil, benchEvent, *next, *next)
		out[i] = benchDelivery{body: body, sig: Sign(body, secret)}
	}
	return out
}

// benchSides are the two handlers compared: webhook.Handler with a
// function that does nothing, and the bare one.
func benchSides() (handler, bare http.Handler) {
	return Handler(secret, func(context.Context, *vpay.Event) error { return nil }), bareHandler(secret)
}

// roundResult is one side's round: deliveries per second, and allocations
// and bytes per delivery (the whole process's: over HTTP, the client's and
// net/http's share with the handler's, the same on both sides).
type roundResult struct {
	rate, cpu, allocs, bytes float64
}

// measureRound runs f over ds from senders goroutines and times it.
func measureRound(b *testing.B, ds []benchDelivery, senders int, f func(benchDelivery) error) roundResult {
	b.Helper()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var next atomic.Int64
	var wg sync.WaitGroup
	cpu0, start := cpuTime(), time.Now()
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(ds) {
					return
				}
				if err := f(ds[i]); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	runtime.ReadMemStats(&after)
	n := float64(len(ds))
	return roundResult{
		rate:   n / elapsed.Seconds(),
		cpu:    float64(cpu.Microseconds()) / n,
		allocs: float64(after.Mallocs-before.Mallocs) / n,
		bytes:  float64(after.TotalAlloc-before.TotalAlloc) / n,
	}
}

func medianOf(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// reportRounds reports the medians of both sides' rounds, their ratios
// (handler/bare) and the range of the deliveries/s ratio.
func reportRounds(b *testing.B, hs, bs []roundResult) {
	var ratio, cpuRatio, allocRatio, hRate, bRate, hAllocs, bAllocs, hBytes, bBytes []float64
	for i := range hs {
		ratio = append(ratio, hs[i].rate/bs[i].rate)
		cpuRatio = append(cpuRatio, hs[i].cpu/bs[i].cpu)
		allocRatio = append(allocRatio, hs[i].allocs/bs[i].allocs)
		hRate, bRate = append(hRate, hs[i].rate), append(bRate, bs[i].rate)
		hAllocs, bAllocs = append(hAllocs, hs[i].allocs), append(bAllocs, bs[i].allocs)
		hBytes, bBytes = append(hBytes, hs[i].bytes), append(bBytes, bs[i].bytes)
	}
	b.ReportMetric(medianOf(ratio), "rate-ratio")
	b.ReportMetric(slices.Min(ratio), "rate-ratio-min")
	b.ReportMetric(slices.Max(ratio), "rate-ratio-max")
	b.ReportMetric(medianOf(cpuRatio), "cpu-ratio")
	b.ReportMetric(medianOf(allocRatio), "alloc-ratio")
	b.ReportMetric(medianOf(hRate), "handler-deliveries/s")
	b.ReportMetric(medianOf(bRate), "bare-deliveries/s")
	b.ReportMetric(medianOf(hAllocs), "handler-allocs/delivery")
	b.ReportMetric(medianOf(bAllocs), "bare-allocs/delivery")
	b.ReportMetric(medianOf(hBytes), "handler-B/delivery")
	b.ReportMetric(medianOf(bBytes), "bare-B/delivery")
}

// interleave runs rounds of n deliveries on each side, alternating which
// goes first, with a fresh handler per round (so its Deduper starts empty
// and every delivery is a new event), and reports them.
func interleave(b *testing.B, n, senders int, side func(h http.Handler, bare bool) func(benchDelivery) error) {
	const rounds = 31
	next := 0
	warm, _ := benchSides()
	_, bare := benchSides()
	measureRound(b, benchDeliveries(&next, n/4), senders, side(warm, false)) // connections, pools
	measureRound(b, benchDeliveries(&next, n/4), senders, side(bare, true))
	var hs, bs []roundResult
	for range b.N {
		for i := range rounds {
			h, bare := benchSides()
			hd, bd := benchDeliveries(&next, n), benchDeliveries(&next, n)
			var hr, br roundResult
			if i%2 == 0 {
				hr = measureRound(b, hd, senders, side(h, false))
				br = measureRound(b, bd, senders, side(bare, true))
			} else {
				br = measureRound(b, bd, senders, side(bare, true))
				hr = measureRound(b, hd, senders, side(h, false))
			}
			hs, bs = append(hs, hr), append(bs, br)
		}
	}
	reportRounds(b, hs, bs)
}

// swappable serves with whichever handler the round set, so that one
// server (and one client's connections) carries every round.
type swappable struct{ h atomic.Pointer[http.Handler] }

func (s *swappable) ServeHTTP(w http.ResponseWriter, r *http.Request) { (*s.h.Load()).ServeHTTP(w, r) }

// BenchmarkHandlerVsBare: webhook.Handler against a bare handler (the
// documentation's HMAC check, encoding/json into the event's fields, 200),
// in 31 interleaved rounds per case, the order alternating, each delivery a
// new event. Over real HTTP (an httptest server, a keep-alive client) at 1
// and 64 concurrent senders, and calling ServeHTTP directly. Reports the
// median handler/bare ratio of deliveries per second (and its range), of
// the process's CPU time per delivery (which other processes' load does
// not distort, where it spreads the rate's range) and of allocations per
// delivery:
//
//	go test -run XXX -bench HandlerVsBare -benchtime 1x ./webhook
func BenchmarkHandlerVsBare(b *testing.B) {
	for _, senders := range []int{1, 64} {
		b.Run(fmt.Sprintf("http/senders=%d", senders), func(b *testing.B) {
			var hs, bs swappable
			hsrv, bsrv := httptest.NewServer(&hs), httptest.NewServer(&bs)
			defer hsrv.Close()
			defer bsrv.Close()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: senders, MaxConnsPerHost: senders}}
			defer client.CloseIdleConnections()
			side := func(h http.Handler, bare bool) func(benchDelivery) error {
				url, sw := hsrv.URL, &hs
				if bare {
					url, sw = bsrv.URL, &bs
				}
				sw.h.Store(&h)
				return func(d benchDelivery) error {
					req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(d.body))
					if err != nil {
						return err
					}
					req.Header.Set(SignatureHeader, d.sig)
					req.Header.Set("Content-Type", "application/json")
					resp, err := client.Do(req)
					if err != nil {
						return err
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						return fmt.Errorf("%s answered %d", url, resp.StatusCode)
					}
					return nil
				}
			}
			interleave(b, 1000, senders, side)
		})
	}
	b.Run("direct", func(b *testing.B) {
		side := func(h http.Handler, _ bool) func(benchDelivery) error {
			return func(d benchDelivery) error {
				r := httptest.NewRequest(http.MethodPost, "/webhook", bytes.NewReader(d.body))
				r.Header.Set(SignatureHeader, d.sig)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					return fmt.Errorf("answered %d", w.Code)
				}
				return nil
			}
		}
		interleave(b, 2000, 1, side)
	})
}
