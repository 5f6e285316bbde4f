package vpay

import (
	"fmt"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The checks that refuse input before anything is sent, shared by Pay and
// CreateLink. Each returns a *ValidationError naming the field.

// checkDescription refuses what V-Pay or MoMo would mangle. MTN MoMo drops
// emoji, ":)" and other special characters silently and the payment then
// fails at the network, so for MethodMTN only a safe set passes.
func checkDescription(d string, m PaymentMethod) error {
	const field = "PayRequest.Description"
	if err := checkText(field, d, MaxDescriptionLen, ErrInvalidDescription); err != nil || m != MethodMTN {
		return err
	}
	for _, r := range d {
		if !momoSafe(r) {
			return invalid(field, ErrInvalidDescription, "contains %q, which MTN MoMo drops silently; use letters, digits, space and .,-_'/#()", r)
		}
	}
	return nil
}

func momoSafe(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	}
	return strings.ContainsRune(" .,-_'/#()", r)
}

// MaxReferenceLen is the longest Reference the SDK sends.
const MaxReferenceLen = 64

func checkReference(ref string) error {
	if len(ref) > MaxReferenceLen {
		return invalid("PayRequest.Reference", ErrInvalidReference, "%d bytes, more than %d", len(ref), MaxReferenceLen)
	}
	for _, r := range ref {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.:/#", r)) {
			return invalid("PayRequest.Reference", ErrInvalidReference, "contains %q; use letters, digits and -_.:/#", r)
		}
	}
	return nil
}

// checkText refuses text V-Pay would mangle: invalid UTF-8, more than
// maxLen characters, control characters. kind is the field's sentinel, if
// it has one.
func checkText(field, s string, maxLen int, kind error) error {
	if !utf8.ValidString(s) {
		return invalid(field, kind, "not valid UTF-8")
	}
	if n := utf8.RuneCountInString(s); n > maxLen {
		return invalid(field, kind, "%d characters, more than the %d V-Pay allows", n, maxLen)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return invalid(field, kind, "contains control character %U", r)
		}
	}
	return nil
}

func checkURL(field, s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return invalid(field, nil, "%q is not an absolute http(s) URL", s)
	}
	return nil
}

// checkMetadata refuses Metadata that V-Pay cannot echo back intact: empty
// keys, invalid UTF-8, and NUL (U+0000), which V-Pay returns in every
// status and webhook of the payment, where no PostgreSQL text or jsonb
// column can hold it.
func checkMetadata(m map[string]string) error {
	for k, v := range m {
		if k == "" || !utf8.ValidString(k) || !utf8.ValidString(v) {
			return invalid("PayRequest.Metadata", nil, "keys must be non-empty and keys and values valid UTF-8")
		}
		// The field's name is built only for an error: a valid entry
		// costs no allocation.
		if strings.IndexByte(k, 0) >= 0 {
			return invalid(fmt.Sprintf("PayRequest.Metadata[%q]", k), nil, "the key contains NUL (U+0000)")
		}
		if strings.IndexByte(v, 0) >= 0 {
			return invalid(fmt.Sprintf("PayRequest.Metadata[%q]", k), nil, "the value contains NUL (U+0000)")
		}
	}
	return nil
}
