package vpaytest

import (
	"net/http"
	"strconv"
	"time"

	"github.com/vonsung/vpay-go"
)

// rateWindow is V-Pay's fixed-window limit for one key: windows aligned to
// multiples of their length, so X-RateLimit-Reset (whole unix seconds) is
// exact whenever the window is a whole number of seconds.
type rateWindow struct {
	index   int64 // which window the counts belong to
	used    int
	day     int64
	usedDay int
}

type rateState struct {
	limit, remaining int
	reset            time.Time
	millis           bool // Reset in milliseconds: a window shorter than whole seconds
}

func (s rateState) set(h http.Header) {
	h.Set("X-RateLimit-Limit", strconv.Itoa(s.limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(s.remaining))
	reset := s.reset.Unix()
	if s.millis {
		// Whole seconds would put the Reset of a 250 ms window in the
		// past; the SDK reads a value this large as milliseconds.
		reset = s.reset.UnixMilli()
	}
	h.Set("X-RateLimit-Reset", strconv.FormatInt(reset, 10))
}

// take counts one request at now and says whether it is within the limits.
// The caller holds the server's lock.
func (w *rateWindow) take(now time.Time, plan vpay.Plan, window time.Duration) (rateState, bool) {
	idx := now.UnixNano() / int64(window)
	if idx != w.index {
		w.index, w.used = idx, 0
	}
	day := now.UTC().Truncate(24 * time.Hour)
	if day.Unix() != w.day {
		w.day, w.usedDay = day.Unix(), 0
	}
	reset := time.Unix(0, (idx+1)*int64(window))
	millis := window%time.Second != 0
	if plan.PerDay > 0 && w.usedDay >= plan.PerDay {
		return rateState{limit: plan.PerMinute, remaining: 0, reset: day.Add(24 * time.Hour), millis: millis}, false
	}
	if w.used >= plan.PerMinute {
		return rateState{limit: plan.PerMinute, remaining: 0, reset: reset, millis: millis}, false
	}
	w.used++
	w.usedDay++
	return rateState{limit: plan.PerMinute, remaining: plan.PerMinute - w.used, reset: reset, millis: millis}, true
}

// peek is the state of the window at now, without counting a request. The
// caller holds the server's lock.
func (w *rateWindow) peek(now time.Time, plan vpay.Plan, window time.Duration) rateState {
	idx := now.UnixNano() / int64(window)
	used := w.used
	if idx != w.index {
		used = 0
	}
	return rateState{limit: plan.PerMinute, remaining: max(plan.PerMinute-used, 0), reset: time.Unix(0, (idx+1)*int64(window))}
}
