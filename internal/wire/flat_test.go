package wire

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestDecodeFlatAgreesWithEncodingJSON(t *testing.T) {
	for _, body := range flatSeeds(t) {
		var fast, std plainTransaction
		ok := decodeFlat([]byte(body), &fast)
		err := json.Unmarshal([]byte(body), &std)
		if ok && (err != nil || !reflect.DeepEqual(fast, std)) {
			t.Errorf("decodeFlat(%s) = %+v, encoding/json = %+v, %v", body, fast, std, err)
		}
	}
	// The documented answers take the fast path.
	for _, name := range []string{"pay_response_momo.json", "pay_response_standard.json"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		var p plainTransaction
		if !decodeFlat(b, &p) {
			t.Errorf("%s: not decoded by the fast path", name)
		}
	}
}

func flatSeeds(t testing.TB) []string {
	return []string{
		`{}`, ` { } `, `{"status":"PENNDING","transaction_id":"VP1"}`,
		`{"amount":"240.00","status_code":200,"x":true,"y":false,"z":null}`,
		`{"amount":240.5e1}`, `{"amount":-0}`, `{"amount":"1,500.00"}`, `{"amount":""}`, `{"amount":01}`,
		`{"transaction_id":123}`, `{"STATUS":"x"}`, `{"Transaction_ID":"VP1"}`, `{"ſtatus":"x"}`,
		`{"status":"a\"b"}`, `{"status":"caf\u00e9"}`, "{\"status\":\"\xff\"}", "{\"status\":\"a\tb\"}",
		`{"metadata":{"a":"b"}}`, `{"x":[1,2]}`, `{"status":"a",}`, `{"status":"a"} x`, `{"status" "a"}`,
		`{"status":"a","status":"b"}`, `{"status":null}`, `{"amount":null}`, `[]`, `null`, ``, `{`, `{"a`,
		// Every string is a slice of one copy of the body: spaces before
		// and between values move where each one starts.
		"{ \"status\" :  \"a\" ,\"amount\":  240 ,\n\t\"event\":\"\",\"mode\":\"b\" }",
		`{"amount":"240","x":"yy","transaction_id":"VP1","amount":12}`,
	}
}

func FuzzDecodeFlat(f *testing.F) {
	for _, s := range flatSeeds(f) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var fast, std plainTransaction
		if !decodeFlat(body, &fast) {
			return
		}
		if err := json.Unmarshal(body, &std); err != nil {
			t.Fatalf("decodeFlat accepted %q, encoding/json refuses it: %v", body, err)
		}
		if !reflect.DeepEqual(fast, std) {
			t.Fatalf("decodeFlat(%q) = %+v, encoding/json = %+v", body, fast, std)
		}
	})
}
