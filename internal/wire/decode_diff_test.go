package wire

import (
	"encoding/json"
	"reflect"
	"testing"
)

// decodeSeeds put every value type JSON has, and the API's quirks, in
// every field of a Transaction, alone and beside a plain status.
func decodeSeeds() [][]byte {
	values := []string{`"s"`, `""`, `" "`, `"240.00"`, `"1,500.00"`, `"12.50"`, `"16 sec"`, `"1."`, `"abc"`,
		`1`, `1.`, `1.0`, `1.5`, `-0`, `01`, `1e3`, `-1`, `true`, `false`, `null`,
		`nulx`, `trux`, `falsx`, `nul`, `tru`, `fals`, `nUll`, `True`, // broken keywords: refused
		`{}`, `{"a":"b"}`, `{"a":1}`, `{"a":null}`, `{"a":{"b":1}}`, `[]`, `["x"]`, `"caf\u00e9"`}
	keys := append([]string{"status_code", "unknown", "Metadata", "AMOUNT"}, flatKeys...)
	var out [][]byte
	for _, k := range keys {
		for _, v := range values {
			out = append(out, []byte(`{"`+k+`":`+v+`}`))
			out = append(out, []byte(`{"status":"PENNDING","transaction_id":"VP1","`+k+`":`+v+`}`))
		}
	}
	return out
}

// Transaction.decode, the fast path included, accepts and refuses exactly
// the bodies encoding/json accepts and refuses into the lenient types, and
// reads the same values from them: Status (which decodes with it) and a
// webhook (ParseEvent, the same) can never disagree about a body.
func FuzzDecodeTransaction(f *testing.F) {
	for _, s := range decodeSeeds() {
		f.Add(s)
	}
	for _, s := range flatSeeds(f) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var fast, std Transaction
		errFast := Decode(body, &fast)
		errStd := json.Unmarshal(body, &std)
		if (errFast == nil) != (errStd == nil) {
			t.Fatalf("%s: Decode error %v, encoding/json error %v", body, errFast, errStd)
		}
		if errFast == nil && !reflect.DeepEqual(fast, std) {
			t.Fatalf("%s: Decode = %+v, encoding/json = %+v", body, fast, std)
		}
	})
}

func TestDecodeSeedsAgree(t *testing.T) {
	for _, body := range decodeSeeds() {
		var fast, std Transaction
		errFast := Decode(body, &fast)
		errStd := json.Unmarshal(body, &std)
		if (errFast == nil) != (errStd == nil) || (errFast == nil && !reflect.DeepEqual(fast, std)) {
			t.Errorf("%s: Decode = %+v, %v; encoding/json = %+v, %v", body, fast, errFast, std, errStd)
		}
	}
}

// isNumber is JSON's number grammar, exactly: what encoding/json refuses
// as a number, it refuses.
func TestIsNumberIsJSONsGrammar(t *testing.T) {
	for _, s := range []string{"0", "-0", "1", "10", "19", "9", "1.5", "1.50", "1.09", "1e3", "1e9", "1E3", "1e+3", "1e-3", "1e19", "1e0", "1e10", "1E-0", "-1.5e-3", "0.0",
		"1.", "1.e3", ".5", "-", "+1", "01", "-01", "1e", "1e+", "1E-", "0x1", "1..2", "1.2.3", "--1", "1-", "", "e3", "1.5e3.2"} {
		var v any
		want := json.Unmarshal([]byte(s), &v) == nil
		if got := isNumber([]byte(s)); got != want {
			t.Errorf("isNumber(%q) = %v, encoding/json says %v", s, got, want)
		}
		if decodeFlat([]byte(`{"amount":`+s+`}`), &plainTransaction{}) && !want {
			t.Errorf("decodeFlat took amount %q, which is no JSON number", s)
		}
	}
}
