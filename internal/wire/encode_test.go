package wire

import (
	"encoding/json"
	"testing"
)

// FuzzPayRequestJSON holds AppendJSON to json.Marshal's bytes, whatever
// the strings hold: escapes, HTML characters, invalid UTF-8, U+2028.
func FuzzPayRequestJSON(f *testing.F) {
	for i, s := range []string{"", "Order 1", "a\"b\\c", "<a&b>", "\x00\x01\b\f\n\r\t\x1f\x20\x7f", "\xff\xfe", "\x80", "\u2028\u2029", "é€😀", "a\xc3"} {
		for shape := range 8 {
			f.Add(int64(1500+i), s, s, s, shape%2 == 0, shape)
		}
	}
	f.Fuzz(func(t *testing.T, amount int64, s1, s2, s3 string, receipt bool, shape int) {
		r := PayRequest{Amount: amount, Currency: s1, PaymentMethod: s2, ExternalID: s3}
		if shape&1 != 0 {
			r.PayerPhone, r.PayeeMessage, r.PayerName = s1, s2, s3
		}
		if shape&2 != 0 {
			r.PayerEmail, r.CallbackURL = s2, s3
			r.SendReceipt = &receipt
			r.Metadata = map[string]string{s1: s2, s2: s3, "order": s1}
		}
		if shape&4 != 0 {
			r.Metadata = map[string]string{}
		}
		want, err := json.Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.AppendJSON(nil); string(got) != string(want) {
			t.Fatalf("AppendJSON(%+v)\n got %s\nwant %s", r, got, want)
		}
	})
}
