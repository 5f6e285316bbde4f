package vpay

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxAnnounced is the furthest ahead a response may move the client's
// rate-limit state: the longest documented window, a day. A Reset or a
// Retry-After further out (a bug, a proxy, an attacker) is clamped to it,
// so that no single response can stop a client for good.
const maxAnnounced = 24 * time.Hour

// resetMillisAfter is the X-RateLimit-Reset above which the value is read as
// milliseconds since the epoch: as seconds it would be after the year 5000.
const resetMillisAfter = 95617584000

// headerIssue is a set of things wrong with a response's rate-limit
// headers, each logged once per client.
type headerIssue uint32

const (
	issueResetTooFar headerIssue = 1 << iota
	issueRetryAfterTooFar
	issueDateTooFar
	issueBadValue
	issueNoHeaders
)

func (i headerIssue) String() string {
	switch i {
	case issueResetTooFar:
		return "X-RateLimit-Reset more than a day ahead; read as a day"
	case issueRetryAfterTooFar:
		return "Retry-After more than a day ahead; read as a day"
	case issueDateTooFar:
		return "Date more than a day away from the local clock; ignored for the clock-skew correction"
	case issueBadValue:
		return "a rate-limit header that is negative or not a number; ignored"
	case issueNoHeaders:
		return "the server sends no X-RateLimit-* headers; relying on 429s (and WithPlan, if set)"
	}
	return "rate-limit header issue"
}

// parseRateLimit reads the X-RateLimit-* headers. now is the local time the
// response arrived; when the response's Date disagrees with it by more than
// Date's one-second resolution (and less than a day), Reset is moved onto
// the local clock. A Reset in milliseconds is read as such, one more than a
// day ahead is clamped to a day, and without a Reset the Remaining counts
// against the current clock minute. The second result is false when the
// response carried none of the headers; the third says what was wrong.
func parseRateLimit(h http.Header, now time.Time, parseDate func(string) (time.Time, error)) (RateLimit, bool, headerIssue) {
	var issues headerIssue
	// Canonical keys, read straight from the map: Header.Get would
	// canonicalize "X-RateLimit-Limit" anew on every answer.
	limit, okL := headerInt(h, "X-Ratelimit-Limit", &issues)
	remaining, okR := headerInt(h, "X-Ratelimit-Remaining", &issues)
	reset, okT := headerInt(h, "X-Ratelimit-Reset", &issues)
	if !okL && !okR && !okT {
		return RateLimit{}, false, issues
	}
	rl := RateLimit{Limit: int(limit), Remaining: int(remaining)}
	switch {
	case okT && reset > resetMillisAfter:
		rl.Reset = time.UnixMilli(reset)
	case okT:
		rl.Reset = time.Unix(reset, 0)
	case okR:
		// Remaining without a Reset still says something: count it against
		// a one-minute window, the documented one, on the clock's minutes.
		rl.Reset = now.Truncate(time.Minute).Add(time.Minute)
	}
	if okT {
		skew, skewIssue := clockSkew(h, now, parseDate)
		issues |= skewIssue
		rl.Reset = rl.Reset.Add(skew)
	}
	if rl.Reset.Sub(now) > maxAnnounced {
		rl.Reset = now.Add(maxAnnounced)
		issues |= issueResetTooFar
	}
	return rl, true, issues
}

// clockSkew returns how far the local clock is ahead of the server's, or 0
// when the difference is within the Date header's resolution, or more than
// a day (a broken Date, not a skewed clock).
func clockSkew(h http.Header, now time.Time, parseDate func(string) (time.Time, error)) (time.Duration, headerIssue) {
	var v string
	if vs := h["Date"]; len(vs) > 0 {
		v = vs[0]
	}
	if v == "" {
		return 0, 0
	}
	d, err := parseDate(v)
	if err != nil {
		return 0, 0
	}
	skew := now.Sub(d)
	switch {
	case skew > -2*time.Second && skew < 2*time.Second:
		return 0, 0
	case skew > maxAnnounced || skew < -maxAnnounced:
		return 0, issueDateTooFar
	}
	return skew, 0
}

// retryAfter reads a Retry-After header, in seconds or as an HTTP date, as a
// duration from now, at most a day.
func retryAfter(h http.Header, now time.Time, parseDate func(string) (time.Time, error)) (time.Duration, bool, headerIssue) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false, 0
	}
	var d time.Duration
	var issues headerIssue
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if !(secs >= 0) { // negative or NaN
			return 0, false, issueBadValue
		}
		// Bounded before the conversion, which would overflow past 292 years.
		d = time.Duration(min(secs, 2*maxAnnounced.Seconds()) * float64(time.Second))
	} else if t, err := http.ParseTime(v); err == nil {
		skew, issue := clockSkew(h, now, parseDate)
		issues |= issue
		d = max(t.Add(skew).Sub(now), 0)
	} else {
		return 0, false, issueBadValue
	}
	if d > maxAnnounced {
		d, issues = maxAnnounced, issues|issueRetryAfterTooFar
	}
	return d, true, issues
}

// headerInt reads a non-negative integer header. Integers are what the
// documentation shows; "118.0" is read too. A value that is present but
// negative, NaN, infinite or not a number adds issueBadValue and is not ok.
func headerInt(h http.Header, key string, issues *headerIssue) (int64, bool) {
	vs := h[key]
	if len(vs) == 0 {
		return 0, false
	}
	v := strings.TrimSpace(vs[0])
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 && n <= 1<<53 {
		return n, true // the documented form, without a float's detour
	}
	// The bound is where float64 stops holding integers exactly, far past
	// any unix time in milliseconds.
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || !(f >= 0 && f <= 1<<53) {
		*issues |= issueBadValue
		return 0, false
	}
	return int64(f), true
}
