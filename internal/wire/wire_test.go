package wire

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseAmount(t *testing.T) {
	for in, want := range map[string]int64{"240": 240, "240.00": 240, "1,500.0": 1500, "0": 0} {
		got, err := ParseAmount(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"240.5", "240.", "2e3", "", "abc", "1.0x", "-"} {
		_, err := ParseAmount(in)
		assert.Error(t, err, in)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"16 sec": 16 * time.Second, "300.0 seconds": 300 * time.Second, "2 min": 2 * time.Minute,
		"1.5s": 1500 * time.Millisecond, "45": 45 * time.Second, "250 ms": 250 * time.Millisecond,
	} {
		got, err := ParseDuration(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "soon", "5 fortnights", "-3 sec", "1e400 seconds"} {
		_, err := ParseDuration(in)
		assert.Error(t, err, in)
	}
}

func TestParseTime(t *testing.T) {
	want := time.Date(2026, 5, 30, 18, 3, 32, 0, time.UTC)
	for in, loc := range map[string]*time.Location{
		"2026-05-30 08:03:32 PM":    Kigali(),
		"2026-05-30 06:03:32 PM":    time.UTC,
		"2026-05-30T20:03:32+02:00": time.UTC,
		"2026-05-30 18:03:32":       time.UTC,
	} {
		got, ok := ParseTime(in, loc)
		require.True(t, ok, in)
		assert.True(t, want.Equal(got), "%s: got %s", in, got)
	}
	_, ok := ParseTime("30/05/2026", nil)
	assert.False(t, ok)
}

func TestNormalizeStatus(t *testing.T) {
	for in, want := range map[string]string{"PENNDING": "pending", " Successful ": "successful", "CANCELED": "cancelled", "On_Hold": "on_hold"} {
		assert.Equal(t, want, NormalizeStatus(in), in)
	}
}

func TestTextTakesPlainStringsAsIsAndEscapesThroughJSON(t *testing.T) {
	for in, want := range map[string]string{
		`"VP86583387"`:        "VP86583387",
		`"Celestin \"Tino\""`: `Celestin "Tino"`,
		`"caf\u00e9"`:         "café",
		`"Kigali"`:            "Kigali",
		"\"\xff\"":            "\ufffd",
		`42`:                  "42",
		`null`:                "",
	} {
		var got Text
		require.NoError(t, got.UnmarshalJSON([]byte(in)), in)
		assert.Equal(t, want, string(got), in)
	}
}

func TestParseTimeByShape(t *testing.T) {
	for in, want := range map[string]time.Time{
		"2026-05-30 08:03:32 PM":    time.Date(2026, 5, 30, 18, 3, 32, 0, time.UTC),
		"2026-05-30 20:03:32":       time.Date(2026, 5, 30, 18, 3, 32, 0, time.UTC),
		"2026-05-30T18:03:32Z":      time.Date(2026, 5, 30, 18, 3, 32, 0, time.UTC),
		"2026-05-30T20:03:32+02:00": time.Date(2026, 5, 30, 18, 3, 32, 0, time.UTC),
		"2026-05-30T20:03:32.5":     time.Date(2026, 5, 30, 18, 3, 32, 5e8, time.UTC),
		"2026-05-30":                time.Date(2026, 5, 29, 22, 0, 0, 0, time.UTC),
	} {
		got, ok := ParseTime(in, Kigali())
		require.True(t, ok, in)
		assert.True(t, want.Equal(got), "%s: %s", in, got)
	}
	for _, bad := range []string{"yesterday", "2026-02-30 01:00:00 PM", "2026-05-30 13:03:32 PM", "2026-05-30 08:03:32 XM"} {
		_, ok := ParseTime(bad, Kigali())
		assert.False(t, ok, bad)
	}
	for in, want := range map[string]time.Time{
		"2026-05-30 12:03:32 AM": time.Date(2026, 5, 30, 0, 3, 32, 0, time.UTC),
		"2026-05-30 12:03:32 PM": time.Date(2026, 5, 30, 12, 3, 32, 0, time.UTC),
		"2026-05-30 01:03:32 AM": time.Date(2026, 5, 30, 1, 3, 32, 0, time.UTC),
	} {
		got, ok := ParseTime(in, time.UTC)
		require.True(t, ok, in)
		assert.True(t, want.Equal(got), "%s: %s", in, got)
		std, err := time.ParseInLocation("2006-01-02 03:04:05 PM", in, time.UTC)
		require.NoError(t, err)
		assert.True(t, std.Equal(got), "agrees with time.Parse on %s", in)
	}
}
