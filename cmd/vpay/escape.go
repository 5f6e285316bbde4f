package main

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// hostile reports whether a terminal could act on r instead of showing it:
// C0 and C1 controls, DEL, and the line and bidirectional controls that
// reorder or hide text.
func hostile(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' ||
		(r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069') || r == '\u200e' || r == '\u200f' || r == '\u061c'
}

// escape makes s safe to print on a terminal: what a terminal would act
// on, and invalid UTF-8, are shown as Go escapes (\x1b, \u009b, \xff).
func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < 0x80 && hostile(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case hostile(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		case r == '\\':
			b.WriteString(`\\`)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// escapeJSON escapes, in encoded JSON, what encoding/json leaves raw and a
// terminal could act on (DEL, C1 controls, bidirectional controls). They
// occur only inside strings, where \uXXXX means the same character.
func escapeJSON(b []byte) string {
	var out strings.Builder
	for _, r := range string(b) {
		if hostile(r) && r >= 0x7f {
			fmt.Fprintf(&out, `\u%04x`, r)
			continue
		}
		out.WriteRune(r)
	}
	return out.String()
}
