package wire

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// The fast path must take the bodies it is for (else it is no fast path),
// refuse what it cannot read exactly as encoding/json does, and never
// read past the end of a cut body.
func TestDecodeFlatTakesPlainBodiesOnly(t *testing.T) {
	for _, tt := range []struct {
		body string
		fast bool
	}{
		{`{}`, true}, {" \t\n{ }\r\n", true}, {`{"status":"x","transaction_id":"VP1"}`, true},
		{`{ "status" : "x" , "mode" : "live" }`, true}, {`{"amount":240}`, true}, {`{"amount":"240.00"}`, true},
		{`{"amount":-0}`, true}, {`{"amount":1e3}`, true}, {`{"amount":19.90}`, true},
		{`{"x":true,"y":false,"z":null}`, true}, {`{"status":null}`, true}, {`{"metadata":null}`, true},
		{`{"status_code":200,"status":"pending"}`, true},
		// encoding/json's job, or refused by it:
		{`{"status":"a\"b"}`, false}, {`{"STATUS":"x"}`, false}, {`{"transaction_id":1}`, false},
		{`{"x":true}x`, false}, {`{"x":tru}`, false}, {`{"x":fals}`, false}, {`{"x":nul}`, false},
		{`{"status":true}`, false}, {`{"metadata":"x"}`, false}, {`{"metadata":1}`, false},
		{`{"amount":1.}`, false}, {`{"amount":"1."}`, false}, {`{"x":[1]}`, false}, {`{"x":{}}`, false},
		{`{"a" "b"}`, false}, {`{"a":"b" "c":"d"}`, false}, {`{"a":"b",}`, false}, {`{,}`, false}, {`[]`, false},
		// Cut bodies: every point at which one can end.
		{``, false}, {` `, false}, {`{`, false}, {`{ `, false}, {`{"`, false}, {`{"status`, false}, {`{"status"`, false},
		{`{"status" `, false}, {`{"status":`, false}, {`{"status": `, false}, {`{"status":"x`, false}, {`{"status":"x"`, false},
		{`{"status":"x" `, false}, {`{"status":"x",`, false}, {`{"amount":1`, false}, {`{"amount":12`, false},
		{`{"amount":1.5e`, false}, {`{"x":t`, false}, {`{"x":tr`, false}, {`{"x":f`, false}, {`{"x":n`, false}, {`{"x":true`, false},
	} {
		var fast, std plainTransaction
		got := decodeFlat([]byte(tt.body), &fast)
		if got != tt.fast {
			t.Errorf("decodeFlat(%q) = %v, want %v", tt.body, got, tt.fast)
			continue
		}
		if got {
			if err := json.Unmarshal([]byte(tt.body), &std); err != nil || !reflect.DeepEqual(fast, std) {
				t.Errorf("decodeFlat(%q) = %+v; encoding/json = %+v, %v", tt.body, fast, std, err)
			}
		}
	}
	var p plainTransaction
	if !decodeFlat([]byte(`{"x":true,"y":false,"amount":"240.00","status":"ok"}`), &p) || p.Amount != "240.00" || p.Status != "ok" {
		t.Errorf("decodeFlat lost a value after true/false: %+v", p)
	}
}

// parseClock12 reads the documentation's own date shape, and refuses, for
// time.Parse to judge, anything else.
func TestParseClock12(t *testing.T) {
	k := Kigali()
	for s, want := range map[string]time.Time{
		"2026-05-30 08:03:32 PM": time.Date(2026, 5, 30, 20, 3, 32, 0, k),
		"2026-05-30 12:03:32 AM": time.Date(2026, 5, 30, 0, 3, 32, 0, k),
		"2026-05-30 12:03:32 PM": time.Date(2026, 5, 30, 12, 3, 32, 0, k),
		"2029-09-19 09:59:59 AM": time.Date(2029, 9, 19, 9, 59, 59, 0, k),
		"2026-12-31 11:00:00 PM": time.Date(2026, 12, 31, 23, 0, 0, 0, k),
		"2026-01-01 01:00:00 AM": time.Date(2026, 1, 1, 1, 0, 0, 0, k),
		"0000-01-01 01:00:00 AM": time.Date(0, 1, 1, 1, 0, 0, 0, k),
	} {
		got, ok := parseClock12(s, k)
		if !ok || !got.Equal(want) {
			t.Errorf("parseClock12(%q) = %v, %v; want %v", s, got, ok, want)
		}
	}
	for _, s := range []string{
		"2026-05-30 08:03:32 P", "2026-05-30 08:03:32 PMX", "2026/05-30 08:03:32 PM", "2026-05/30 08:03:32 PM",
		"2026-05-30T08:03:32 PM", "2026-05-30 08-03:32 PM", "2026-05-30 08:03-32 PM", "2026-05-30 08:03:32-PM",
		"2026-05-30 08:03:32 PX", "2026-05-30 08:03:32 XM", "2026-05-30 13:03:32 PM", "2026-05-30 00:03:32 PM",
		"2026-13-30 08:03:32 PM", "2026-00-30 08:03:32 PM", "2026-05-00 08:03:32 PM", "2026-05-32 08:03:32 PM",
		"2026-04-31 08:03:32 PM", "2026-02-30 08:03:32 PM", "2026-05-30 08:60:32 PM", "2026-05-30 08:03:60 PM",
		"2026-0a-30 08:03:32 PM", "2026-05-30 08:03:3/ PM", "2026-05-30 08:03:3: PM", "-026-05-30 08:03:32 PM",
	} {
		if got, ok := parseClock12(s, k); ok {
			t.Errorf("parseClock12(%q) = %v, want refused", s, got)
		}
	}
}

func TestParseTimeLayouts(t *testing.T) {
	utc := time.UTC
	for s, want := range map[string]time.Time{
		"2026-05-30T18:03:32Z":      time.Date(2026, 5, 30, 18, 3, 32, 0, utc),
		"2026-05-30T20:03:32+02:00": time.Date(2026, 5, 30, 18, 3, 32, 0, utc),
		"2026-05-30T16:03:32-02:00": time.Date(2026, 5, 30, 18, 3, 32, 0, utc),
		"2026-05-30T18:03:32":       time.Date(2026, 5, 30, 18, 3, 32, 0, utc), // in loc
		"2026-05-30 18:03:32":       time.Date(2026, 5, 30, 18, 3, 32, 0, utc),
		"2026-05-30":                time.Date(2026, 5, 30, 0, 0, 0, 0, utc),
		" 2026-05-30 06:03:32 PM ":  time.Date(2026, 5, 30, 18, 3, 32, 0, utc),
	} {
		got, ok := ParseTime(s, utc)
		if !ok || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", s, got, ok, want)
		}
	}
	if got, ok := ParseTime("2026-05-30 08:03:32 PM", nil); !ok || !got.Equal(time.Date(2026, 5, 30, 18, 3, 32, 0, utc)) {
		t.Errorf("ParseTime without a zone reads Kigali time: %v, %v", got, ok)
	}
	for _, s := range []string{"", "  ", "yesterday", "2026-05-30T18:03:32+0200x"} {
		if got, ok := ParseTime(s, utc); ok {
			t.Errorf("ParseTime(%q) = %v, want refused", s, got)
		}
	}
}

// The lenient types read escapes right (the fast unquote takes only
// strings without them) and refuse what is not theirs.
func TestLenientTypes(t *testing.T) {
	for in, want := range map[string]Text{`"abc"`: "abc", `"a\"b"`: `a"b`, `"caf\u00e9"`: "café", `"a\\b"`: `a\b`,
		`""`: "", `null`: "", `12`: "12", `true`: "true", ` "x" `: "x"} {
		var got Text
		if err := got.UnmarshalJSON([]byte(in)); err != nil || got != want {
			t.Errorf("Text(%s) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{`{}`, `[1]`, `"\x"`} {
		var got Text
		if err := got.UnmarshalJSON([]byte(in)); err == nil {
			t.Errorf("Text(%s) = %q, want an error", in, got)
		}
	}
	for in, want := range map[string]Amount{`240`: 240, `"240.00"`: 240, `" 1,500.00 "`: 1500, `null`: 0, `""`: 0, `"  "`: 0, `"24\u0030"`: 240} {
		var got Amount
		if err := got.UnmarshalJSON([]byte(in)); err != nil || got != want {
			t.Errorf("Amount(%s) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{``, `12.5`, `"12.50"`, `"abc"`, `"1."`, `"1.x"`, `true`} {
		var got Amount
		if err := got.UnmarshalJSON([]byte(in)); err == nil {
			t.Errorf("Amount(%s) = %d, want an error", in, got)
		}
	}
	for in, want := range map[string]Bool{`true`: true, `"TRUE"`: true, `1`: true, `"yes"`: true, `false`: false, `0`: false, `"no"`: false, `null`: false} {
		got := Bool(!want)
		if err := got.UnmarshalJSON([]byte(in)); err != nil || got != want {
			t.Errorf("Bool(%s) = %v, %v; want %v", in, got, err, want)
		}
	}
	var b Bool
	if err := b.UnmarshalJSON([]byte(`"maybe"`)); err == nil {
		t.Error("Bool(maybe): want an error")
	}
	for in, want := range map[string]time.Duration{`"16 sec"`: 16 * time.Second, `30`: 30 * time.Second, `"2 min"`: 2 * time.Minute,
		`"1.5s"`: 1500 * time.Millisecond, `"250 ms"`: 250 * time.Millisecond, `"1 hour"`: time.Hour, `" "`: 0, `null`: 0,
		`"9 sec"`: 9 * time.Second, `"19.9 s"`: 19900 * time.Millisecond, `"0 sec"`: 0} {
		var got Duration
		if err := got.UnmarshalJSON([]byte(in)); err != nil || time.Duration(got) != want {
			t.Errorf("Duration(%s) = %v, %v; want %v", in, time.Duration(got), err, want)
		}
	}
	for _, in := range []string{`"soon"`, `"5 fortnights"`, `"-1 sec"`, `"1e400 sec"`, `"10000000 hours"`, `{}`} {
		var got Duration
		if err := got.UnmarshalJSON([]byte(in)); err == nil {
			t.Errorf("Duration(%s) = %v, want an error", in, time.Duration(got))
		}
	}
}
