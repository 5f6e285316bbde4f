package wire

import (
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// decodeFlat reads the common answer, a flat JSON object of strings with
// an amount and a status_code, into p, in one pass without reflection. It
// handles only what it is sure of, the way encoding/json would read it
// into p, and says false for anything else (an escape, a nested value, a
// key that differs from a field's only in case, a number where a string
// belongs, a syntax error): the caller then leaves the body to
// encoding/json. FuzzDecodeFlat holds it to that.
//
// It earns its place: on the documented transaction answer it takes
// 2.2-5.1 us and 14 allocations where encoding/json into the same struct
// takes 13.7-24 us and 19 (go test -run XXX -bench DecodeStatusAnswer
// -benchmem -count 4 ./internal/wire, 2 cores at load 15; the issue's
// quieter run measured 2.7-3.2 us against 7.0-8.2 us). That is what puts a
// Status call at the speed of a hand-written net/http one, and it decodes
// webhook bodies too (ParseEvent), so both accept and refuse the same
// bodies.
//
// Every string it reads is a piece of one copy of the body, made at the
// first string: one allocation per answer rather than one per field (the
// copy lives as long as any field does; an answer is a few hundred bytes).
func decodeFlat(b []byte, p *plainTransaction) bool {
	var text string // b as a string, once a field needs it
	str := func(s []byte, at int) string {
		if text == "" {
			text = string(b)
		}
		return text[at : at+len(s)]
	}
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipSpace(b, i+1) == len(b)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return false
		}
		key, next, ok := plainString(b, i)
		if !ok {
			return false
		}
		i = skipSpace(b, next)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		if i >= len(b) {
			return false
		}
		field, known := p.field(key)
		if !known && foldsToField(key) {
			return false // encoding/json would match it case-insensitively
		}
		switch c := b[i]; {
		case c == '"':
			s, next, ok := plainString(b, i)
			if !ok {
				return false
			}
			switch {
			case field != nil:
				*field = str(s, i+1)
			case string(key) == "amount":
				if !isNumber(s) { // a json.Number takes a string only if it is a number
					return false
				}
				p.Amount = json.Number(str(s, i+1))
			case string(key) == "metadata":
				return false // not an object: encoding/json refuses it
			}
			i = next
		case c == 'n':
			if !hasWord(b, i, "null") {
				return false
			}
			i += len("null")
		case c == '-' || (c >= '0' && c <= '9'):
			j := i + 1
			for j < len(b) && strings.IndexByte("0123456789.eE+-", b[j]) >= 0 {
				j++
			}
			if !isNumber(b[i:j]) || field != nil || string(key) == "metadata" {
				// A number in a string field is the lenient types' job; in
				// metadata, encoding/json refuses it.
				return false
			}
			if string(key) == "amount" {
				p.Amount = json.Number(str(b[i:j], i))
			}
			i = j
		case c == 't' || c == 'f':
			w := "true"
			if c == 'f' {
				w = "false"
			}
			if !hasWord(b, i, w) || known {
				return false
			}
			i += len(w)
		default:
			return false // an object or an array: encoding/json's job
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return skipSpace(b, i+1) == len(b)
		default:
			return false
		}
	}
}

// field returns where the string field named key goes; known is true for
// every key of plainTransaction (amount and metadata included).
func (p *plainTransaction) field(key []byte) (field *string, known bool) {
	switch string(key) {
	case "status":
		return &p.Status, true
	case "error_code":
		return &p.ErrorCode, true
	case "message":
		return &p.Message, true
	case "event":
		return &p.Event, true
	case "transaction_id":
		return &p.TransactionID, true
	case "external_id":
		return &p.ExternalID, true
	case "reference":
		return &p.Reference, true
	case "merchant":
		return &p.Merchant, true
	case "payment_url":
		return &p.PaymentURL, true
	case "currency":
		return &p.Currency, true
	case "payer_name":
		return &p.PayerName, true
	case "payer_phone":
		return &p.PayerPhone, true
	case "payer_email":
		return &p.PayerEmail, true
	case "payment_method":
		return &p.PaymentMethod, true
	case "mode":
		return &p.Mode, true
	case "transaction_date":
		return &p.TransactionDate, true
	case "timezone":
		return &p.Timezone, true
	case "transaction_date_gmt":
		return &p.TransactionDateGMT, true
	case "created_at":
		return &p.CreatedAt, true
	case "time_taken":
		return &p.TimeTaken, true
	case "failure_code":
		return &p.FailureCode, true
	case "amount", "metadata":
		return nil, true
	}
	return nil, false
}

var flatKeys = []string{"status", "error_code", "message", "event", "transaction_id", "external_id", "reference",
	"merchant", "payment_url", "amount", "currency", "payer_name", "payer_phone", "payer_email", "payment_method",
	"mode", "transaction_date", "timezone", "transaction_date_gmt", "created_at", "time_taken", "failure_code", "metadata"}

// foldsToField reports whether key, not itself a field's name, matches one
// the way encoding/json matches names: without regard to case.
func foldsToField(key []byte) bool {
	for _, k := range flatKeys {
		if len(k) == len(key) && strings.EqualFold(k, string(key)) {
			return true
		}
	}
	// Unicode case folding can change a name's length (the Kelvin sign);
	// any key outside ASCII goes to encoding/json.
	for _, c := range key {
		if c >= utf8.RuneSelf {
			return true
		}
	}
	return false
}

// plainString reads the string literal at b[i] (a '"'): its contents when
// they need no unescaping and are valid UTF-8 without control characters,
// and the index after its closing quote.
func plainString(b []byte, i int) (s []byte, next int, ok bool) {
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			s = b[i+1 : j]
			return s, j + 1, utf8.Valid(s)
		case c == '\\' || c < 0x20:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

func hasWord(b []byte, i int, w string) bool {
	return len(b)-i >= len(w) && string(b[i:i+len(w)]) == w
}

// isNumber reports whether s is a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func isNumber(s []byte) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	return i == len(s)
}
