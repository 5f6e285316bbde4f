// Package wire decodes the quirks of V-Pay's JSON: statuses in any case (and
// the documented "PENNDING" typo), amounts as numbers or decimal strings,
// Kigali-local date strings, "16 sec" durations and "300.0 seconds" lifetimes.
//
// Every type here decodes leniently where the documentation is loose and
// strictly where money is involved: an amount with a non-zero fraction is an
// error, never rounded.
package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Amount is a whole number of RWF that the server may send as 240, 240.0 or
// "240.00".
type Amount int64

// UnmarshalJSON implements json.Unmarshaler.
func (a *Amount) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		return nil
	}
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		var err error
		if s, err = unquote(b); err != nil {
			return err
		}
		s = strings.TrimSpace(s)
		if s == "" {
			return nil
		}
	}
	v, err := ParseAmount(s)
	if err != nil {
		return err
	}
	*a = Amount(v)
	return nil
}

// ParseAmount reads "240", "240.00" or "1,500.00" as whole RWF. A non-zero
// fraction or anything that is not a decimal number is an error.
func ParseAmount(s string) (int64, error) {
	orig := s
	s = strings.ReplaceAll(s, ",", "")
	intPart, frac, hasFrac := strings.Cut(s, ".")
	if hasFrac {
		if frac == "" || strings.Trim(frac, "0123456789") != "" {
			return 0, fmt.Errorf("amount %q is not a number", orig)
		}
		if strings.Trim(frac, "0") != "" {
			return 0, fmt.Errorf("amount %q has a fraction of a franc", orig)
		}
	}
	v, err := strconv.ParseInt(intPart, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("amount %q is not a whole number of RWF", orig)
	}
	return v, nil
}

// Text is a string that tolerates a number or boolean in its place (the API
// is loose about ids and codes); null decodes to "".
type Text string

// UnmarshalJSON implements json.Unmarshaler.
func (t *Text) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	if b[0] == '"' {
		s, err := unquote(b)
		if err != nil {
			return err
		}
		*t = Text(s)
		return nil
	}
	if b[0] == '{' || b[0] == '[' {
		return fmt.Errorf("expected a string, got %.20s", b)
	}
	*t = Text(b)
	return nil
}

// unquote returns the string a JSON string literal holds. The decoder has
// already checked the literal's syntax, so one without escapes and in valid
// UTF-8 is its own contents: taken as is, without a second decoder (the
// common case, and most of the cost of a lenient field). Anything else goes
// through encoding/json, which knows every escape.
func unquote(b []byte) (string, error) {
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' {
		inner := b[1 : len(b)-1]
		if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
			return string(inner), nil
		}
	}
	var s string
	err := json.Unmarshal(b, &s)
	return s, err
}

// NormalizeStatus maps the server's spellings of a status ("PENNDING",
// "Successful", "SUCCESS") to the documented lower-case values. An unknown
// status is returned lower-cased, never refused.
func NormalizeStatus(s string) string {
	s = strings.TrimSpace(s)
	for _, known := range statusSpellings {
		if strings.EqualFold(s, known.spelling) {
			return known.status // no lower-casing copy for the usual answers
		}
	}
	return strings.ToLower(s)
}

var statusSpellings = []struct{ spelling, status string }{
	{"pending", "pending"}, {"pennding", "pending"}, {"pendding", "pending"},
	{"successful", "successful"}, {"success", "successful"}, {"succeeded", "successful"}, {"completed", "successful"},
	{"failed", "failed"}, {"failure", "failed"},
	{"cancelled", "cancelled"}, {"canceled", "cancelled"},
	{"refunded", "refunded"}, {"disputed", "disputed"}, {"error", "error"},
}

// kigali is Rwanda's zone: UTC+2, no daylight saving. A fixed zone keeps the
// SDK independent of the host's tzdata.
var kigali = time.FixedZone("CAT", 2*60*60)

// layoutFor picks the one layout s can be in by its shape, so that a date
// is parsed once rather than tried against every layout in turn.
func layoutFor(s string) string {
	switch {
	case len(s) == len("2006-01-02"):
		return "2006-01-02"
	case len(s) > 10 && s[10] == 'T':
		if strings.HasSuffix(s, "Z") || strings.LastIndexAny(s, "+-") > 10 {
			return time.RFC3339Nano
		}
		return "2006-01-02T15:04:05.999999999"
	case strings.HasSuffix(s, "M"): // AM, PM
		return "2006-01-02 03:04:05 PM"
	}
	return "2006-01-02 15:04:05"
}

// ParseTime reads the API's date strings. ISO 8601 values carry their own
// zone; the others are read in loc (Kigali for transaction_date, UTC for
// transaction_date_gmt). ok is false when no layout fits.
func ParseTime(s string, loc *time.Location) (t time.Time, ok bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, false
	}
	if loc == nil {
		loc = kigali
	}
	if t, ok := parseClock12(s, loc); ok {
		return t, true
	}
	t, err := time.ParseInLocation(layoutFor(s), s, loc)
	return t, err == nil
}

// parseClock12 reads the documentation's own shape, "2006-01-02 03:04:05
// PM", which every status answer and webhook carries twice, by hand: ten
// times faster than time.Parse. Anything else is left to time.Parse.
func parseClock12(s string, loc *time.Location) (time.Time, bool) {
	if len(s) != len("2006-01-02 03:04:05 PM") || s[4] != '-' || s[7] != '-' || s[10] != ' ' ||
		s[13] != ':' || s[16] != ':' || s[19] != ' ' || s[21] != 'M' {
		return time.Time{}, false
	}
	num := func(i, n int) int {
		v := 0
		for _, c := range []byte(s[i : i+n]) {
			if c < '0' || c > '9' {
				return -1
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	y, mo, d, h, mi, sec := num(0, 4), num(5, 2), num(8, 2), num(11, 2), num(14, 2), num(17, 2)
	if y < 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 1 || h > 12 || mi < 0 || mi > 59 || sec < 0 || sec > 59 {
		return time.Time{}, false
	}
	switch s[20] {
	case 'A':
		if h == 12 {
			h = 0
		}
	case 'P':
		if h != 12 {
			h += 12
		}
	default:
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, 0, loc)
	if t.Day() != d { // 31 April, 30 February: time.Date would roll over
		return time.Time{}, false
	}
	return t, true
}

// Kigali returns Rwanda's time zone (UTC+2).
func Kigali() *time.Location { return kigali }

// ParseDuration reads "16 sec", "300.0 seconds", "2 min", "1.5s" or a bare
// number of seconds.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	num, unit := s[:i], strings.TrimSpace(s[i:])
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("duration %q is not a number of seconds", s)
	}
	var scale time.Duration
	switch unit {
	case "", "s", "sec", "secs", "second", "seconds":
		scale = time.Second
	case "ms", "msec", "millisecond", "milliseconds":
		scale = time.Millisecond
	case "m", "min", "mins", "minute", "minutes":
		scale = time.Minute
	case "h", "hr", "hour", "hours":
		scale = time.Hour
	default:
		return 0, fmt.Errorf("duration %q has unknown unit %q", s, unit)
	}
	if f > float64(1<<62)/float64(scale) {
		return 0, fmt.Errorf("duration %q is too long", s)
	}
	return time.Duration(f * float64(scale)), nil
}

// Duration decodes "16 sec", "300.0 seconds" or a number of seconds. An
// empty or blank string is no duration, as an empty amount is no amount.
type Duration time.Duration

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var t Text
	if err := t.UnmarshalJSON(b); err != nil {
		return err
	}
	if strings.TrimSpace(string(t)) == "" {
		return nil
	}
	v, err := ParseDuration(string(t))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Bool decodes true/false, "true"/"false" and 1/0.
type Bool bool

// UnmarshalJSON implements json.Unmarshaler.
func (v *Bool) UnmarshalJSON(b []byte) error {
	var t Text
	if err := t.UnmarshalJSON(b); err != nil {
		return err
	}
	switch strings.ToLower(string(t)) {
	case "true", "1", "yes":
		*v = true
	case "", "false", "0", "no":
		*v = false
	default:
		return fmt.Errorf("%q is not a boolean", string(t))
	}
	return nil
}

// Metadata decodes a JSON object whose values may be strings, numbers or
// booleans into string values; nested values are kept as their JSON text.
// Any other value (a string, a number, an array) is no metadata: the
// merchant's own echo is not worth refusing a payment's status or a
// webhook for, and the event's raw body keeps it.
type Metadata map[string]string

// UnmarshalJSON implements json.Unmarshaler.
func (m *Metadata) UnmarshalJSON(b []byte) error {
	if b = bytes.TrimSpace(b); len(b) == 0 || b[0] != '{' {
		return nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	out := make(Metadata, len(raw))
	for k, v := range raw {
		var s string
		if json.Unmarshal(v, &s) == nil {
			out[k] = s
		} else {
			out[k] = string(bytes.TrimSpace(v))
		}
	}
	*m = out
	return nil
}
