package vpay

import (
	"strings"
	"testing"
)

// referenceNormalizePhone is NormalizePhone as it was before it stopped
// allocating: the allocation-free one must answer exactly as it did.
func referenceNormalizePhone(s string) (string, Network, error) {
	var digits strings.Builder
	for i, r := range strings.TrimSpace(s) {
		switch {
		case r >= '0' && r <= '9':
			digits.WriteRune(r)
		case r == '+' && i == 0, r == ' ', r == '-', r == '.', r == '(', r == ')':
		default:
			return "", "", invalid("PayRequest.Phone", ErrInvalidPhone, "%q contains %q", s, r)
		}
	}
	d := digits.String()
	switch {
	case len(d) == 12 && strings.HasPrefix(d, "250"):
		d = "0" + d[3:]
	case len(d) == 9 && d[0] == '7':
		d = "0" + d
	}
	if len(d) != 10 || !strings.HasPrefix(d, "07") {
		if s == "" {
			return "", "", invalid("PayRequest.Phone", ErrInvalidPhone, "required for MethodMTN")
		}
		return "", "", invalid("PayRequest.Phone", ErrInvalidPhone, "%q is not a Rwandan mobile number (07XXXXXXXX)", s)
	}
	switch d[:3] {
	case "078", "079":
		return d, NetworkMTN, nil
	case "072", "073":
		return d, NetworkAirtel, nil
	}
	return "", "", invalid("PayRequest.Phone", ErrInvalidPhone, "%s is on no mobile money network (MTN 078/079, Airtel 072/073)", d)
}

// FuzzNormalizePhone holds NormalizePhone to its reference: the same
// number, network and error for any input.
func FuzzNormalizePhone(f *testing.F) {
	for _, s := range []string{"", "0781234567", " 0781234567 ", "250781234567", "+250 78 123 4567", "781234567",
		"0721234567", "0741234567", "07812345678", "1234567890123456789", "078-123-4567", "(078) 123.4567", "++250", "07٣1234567", "0781234567x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, gotNet, gotErr := NormalizePhone(s)
		want, wantNet, wantErr := referenceNormalizePhone(s)
		if got != want || gotNet != wantNet || (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
			t.Fatalf("NormalizePhone(%q) = %q, %q, %v; want %q, %q, %v", s, got, gotNet, gotErr, want, wantNet, wantErr)
		}
	})
}

// A number already in the canonical form costs Pay no allocation: it is
// returned as given.
func TestNormalizePhoneKeepsACanonicalNumber(t *testing.T) {
	for _, s := range []string{"0781234567", " 0791234567 ", "0721234567"} {
		var got string
		allocs := testing.AllocsPerRun(100, func() { got, _, _ = NormalizePhone(s) })
		if got != strings.TrimSpace(s) || allocs != 0 {
			t.Errorf("NormalizePhone(%q) = %q with %.0f allocations; want %q with none", s, got, allocs, strings.TrimSpace(s))
		}
	}
}
