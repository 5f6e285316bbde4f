package wire

import (
	"slices"
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends r as JSON to b: byte for byte what json.Marshal
// writes for r (FuzzPayRequestJSON holds it to that), without reflection
// and in one allocation for the caller's buffer. Pay encodes a body on
// every call; encoding/json's reflection was most of what the SDK added
// to a hand-written call.
func (r *PayRequest) AppendJSON(b []byte) []byte {
	b = append(b, `{"amount":`...)
	b = strconv.AppendInt(b, r.Amount, 10)
	b = appendField(b, "currency", r.Currency)
	b = appendField(b, "payment_method", r.PaymentMethod)
	if r.PayerPhone != "" {
		b = appendField(b, "payer_phone", r.PayerPhone)
	}
	b = appendField(b, "external_id", r.ExternalID)
	for _, f := range [...]struct{ name, value string }{
		{"payee_message", r.PayeeMessage},
		{"payer_name", r.PayerName},
		{"payer_email", r.PayerEmail},
	} {
		if f.value != "" {
			b = appendField(b, f.name, f.value)
		}
	}
	if r.SendReceipt != nil {
		b = append(b, `,"send_receipt":`...)
		b = strconv.AppendBool(b, *r.SendReceipt)
	}
	if r.CallbackURL != "" {
		b = appendField(b, "callback_url", r.CallbackURL)
	}
	if len(r.Metadata) > 0 {
		b = append(b, `,"metadata":{`...)
		keys := make([]string, 0, len(r.Metadata))
		for k := range r.Metadata {
			keys = append(keys, k)
		}
		slices.Sort(keys) // as encoding/json orders a map's keys
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, r.Metadata[k])
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

// appendField appends ,"name":"value"; name needs no escaping.
func appendField(b []byte, name, value string) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendString(b, value)
}

const hex = "0123456789abcdef"

// appendString appends s as a JSON string the way json.Marshal does: HTML
// characters, U+2028 and U+2029 escaped, invalid UTF-8 replaced by U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
