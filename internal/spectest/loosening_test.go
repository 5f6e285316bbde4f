package spectest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/pb33f/libopenapi-validator/schema_validation"

	"github.com/vonsung/vpay-go/openapi"
)

// The spec is the doctor's yardstick: a loosened schema would let a
// changed API pass unnoticed. Each body below breaks one constraint and
// must be refused; the unbroken body must be accepted, so a refusal is
// the constraint's doing.

func TestSpecRefusesWebhookBodiesItDoesNotDescribe(t *testing.T) {
	spec := load(t, openapi.Spec)
	valid := func() map[string]any {
		return map[string]any{"event": "payment.successful", "status": "SUCCESSFUL", "transaction_id": "VP86583387",
			"external_id": "order-1", "amount": "240.00", "currency": "RWF", "mode": "sandbox", "merchant": "VONSUNG"}
	}
	validate := func(m map[string]any) bool {
		body, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		ok, _ := schema_validation.NewSchemaValidator().ValidateSchemaBytes(spec.webhook, body)
		return ok
	}
	if !validate(valid()) {
		t.Fatal("the unbroken webhook body is refused: the cases below prove nothing")
	}
	for name, alter := range map[string]func(map[string]any){
		"an unknown field":               func(m map[string]any) { m["fee_rwf"] = 3 },
		"an amount with a fraction":      func(m map[string]any) { m["amount"] = "240.50" },
		"an amount with a long fraction": func(m map[string]any) { m["amount"] = "1,000.05" },
	} {
		m := valid()
		alter(m)
		if validate(m) {
			t.Errorf("a webhook body with %s validates against openapi/vpay.yaml: %v", name, m)
		}
	}
}

func TestSpecRefusesALinkAnswerWithoutLinkID(t *testing.T) {
	spec := load(t, openapi.Spec)
	m := readExample(t, "payment_link_response.json")
	if !validResponse(spec, "/api/payment-links/", rateLimitHeaders(), m) {
		t.Fatal("the documentation's link answer is refused: the case below proves nothing")
	}
	delete(m, "link_id")
	if validResponse(spec, "/api/payment-links/", rateLimitHeaders(), m) {
		t.Error("a link answer without link_id validates against openapi/vpay.yaml: the SDK could not name the link")
	}
}

func TestSpecRequiresEveryRateLimitHeader(t *testing.T) {
	spec := load(t, openapi.Spec)
	m := readExample(t, "pay_response_standard.json")
	if !validResponse(spec, "/api/pay/", rateLimitHeaders(), m) {
		t.Fatal("the documentation's pay answer is refused: the cases below prove nothing")
	}
	for _, name := range []string{"X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset"} {
		h := rateLimitHeaders()
		h.Del(name)
		if validResponse(spec, "/api/pay/", h, m) {
			t.Errorf("an answer without %s validates against openapi/vpay.yaml: the SDK could not see the limit coming", name)
		}
	}
}

func rateLimitHeaders() http.Header {
	return http.Header{"Content-Type": {"application/json"}, "X-Ratelimit-Limit": {"120"}, "X-Ratelimit-Remaining": {"118"}, "X-Ratelimit-Reset": {"1716471600"}}
}

// validResponse says whether m, answered 200 with h to POST path, is what
// the spec allows.
func validResponse(spec *contract, path string, h http.Header, m map[string]any) bool {
	body, _ := json.Marshal(m)
	req := httptest.NewRequest(http.MethodPost, "https://vonsung.rw"+path, nil)
	resp := &http.Response{StatusCode: http.StatusOK, Header: h, Body: io.NopCloser(bytes.NewReader(body))}
	ok, _ := spec.v.ValidateHttpResponse(req, resp)
	return ok
}

// readExample is one of the documentation's answers in testdata/.
func readExample(t *testing.T, file string) map[string]any {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("..", "..", "testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
