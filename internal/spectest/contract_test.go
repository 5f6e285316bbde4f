package spectest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	yaml "github.com/pb33f/go-yaml"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	"github.com/pb33f/libopenapi/datamodel/high/base"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/openapi"
	"github.com/vonsung/vpay-go/vpaytest"
	"github.com/vonsung/vpay-go/webhook"
)

// contract is the spec, ready to validate exchanges with.
type contract struct {
	v       validator.Validator
	webhook *base.Schema
}

func load(t *testing.T, spec []byte) *contract {
	t.Helper()
	doc, err := libopenapi.NewDocument(spec)
	if err != nil {
		t.Fatal(err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if ok, errs := v.ValidateDocument(); !ok {
		t.Fatalf("openapi/vpay.yaml is not a valid OpenAPI 3.1 document: %v", errs)
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		t.Fatal(err)
	}
	hook := model.Model.Webhooks.GetOrZero("payment")
	mt := hook.Post.RequestBody.Content.GetOrZero("application/json")
	return &contract{v: v, webhook: mt.Schema.Schema()}
}

// exchange is one request the SDK sent and the emulator's answer.
type exchange struct {
	req      *http.Request
	reqBody  []byte
	resp     *http.Response
	respBody []byte
}

// recorder keeps every exchange that goes through it.
type recorder struct {
	mu  sync.Mutex
	exs []exchange
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body.Close()
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err // a dropped connection: nothing to validate
	}
	rb, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(rb))
	if err != nil {
		return resp, nil // a truncated answer: the SDK sees the error itself
	}
	r.mu.Lock()
	r.exs = append(r.exs, exchange{req, body, resp, rb})
	r.mu.Unlock()
	return resp, nil
}

func (r *recorder) all() []exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]exchange(nil), r.exs...)
}

// check validates every exchange: the SDK's request and the emulator's
// answer, headers included, with no field the spec does not know.
func (c *contract) check(t *testing.T, exs []exchange) (routes map[string]bool) {
	t.Helper()
	routes = map[string]bool{}
	for _, ex := range exs {
		route := fmt.Sprintf("%s %s %d", ex.req.Method, ex.req.URL.Path, ex.resp.StatusCode)
		routes[route] = true
		req := ex.req.Clone(context.Background())
		req.Body = io.NopCloser(bytes.NewReader(ex.reqBody))
		if ok, errs := c.v.ValidateHttpRequest(req); !ok {
			t.Errorf("the SDK's request %s %s differs from openapi/vpay.yaml:\n%s\n%s", ex.req.Method, ex.req.URL, ex.reqBody, describe(errs))
		}
		req.Body = io.NopCloser(bytes.NewReader(ex.reqBody))
		resp := &http.Response{StatusCode: ex.resp.StatusCode, Header: ex.resp.Header, Body: io.NopCloser(bytes.NewReader(ex.respBody))}
		if ok, errs := c.v.ValidateHttpResponse(req, resp); !ok {
			t.Errorf("the emulator's answer to %s %s (%d) differs from openapi/vpay.yaml:\n%s\n%s", ex.req.Method, ex.req.URL, ex.resp.StatusCode, ex.respBody, describe(errs))
		}
	}
	return routes
}

func (c *contract) checkWebhook(t *testing.T, body []byte, sig string) {
	t.Helper()
	if ok, errs := schema_validation.NewSchemaValidator().ValidateSchemaBytes(c.webhook, body); !ok {
		t.Errorf("the emulator's webhook differs from openapi/vpay.yaml:\n%s\n%s", body, describe(errs))
	}
	if !regexp.MustCompile(`^[0-9a-fA-F]{64}$`).MatchString(sig) {
		t.Errorf("X-VPay-Signature %q is not a hex HMAC-SHA256", sig)
	}
}

func describe[E error](errs []E) string {
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "  %v\n", e)
	}
	return b.String()
}

// hookSink collects the webhooks the emulator sends.
type hookSink struct {
	srv  *httptest.Server
	mu   sync.Mutex
	got  []delivery
	seen chan struct{}
}

type delivery struct {
	body []byte
	sig  string
}

func newHookSink(t *testing.T) *hookSink {
	h := &hookSink{seen: make(chan struct{}, 1000)}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.got = append(h.got, delivery{b, r.Header.Get(webhook.SignatureHeader)})
		h.mu.Unlock()
		h.seen <- struct{}{}
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// wait receives n deliveries or fails.
func (h *hookSink) wait(t *testing.T, n int) []delivery {
	t.Helper()
	for i := 0; i < n; i++ {
		select {
		case <-h.seen:
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d webhooks arrived", i, n)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]delivery(nil), h.got...)
}

// script runs what a merchant does with the SDK, every call and every
// error the emulator can produce, and returns the webhooks it caused.
func script(t *testing.T, rec *recorder, sync bool) []delivery {
	t.Helper()
	sink := newHookSink(t)
	opts := []vpaytest.Option{vpaytest.WithPaymentDelay(20 * time.Millisecond), vpaytest.WithWebhookURL(sink.srv.URL)}
	if sync {
		opts = append(opts, vpaytest.WithSynchronousPay())
	}
	s := vpaytest.NewServer(opts...)
	defer s.Close()
	c := s.Client(vpay.WithHTTPClient(&http.Client{Transport: rec, Timeout: 10 * time.Second}),
		vpay.WithMaxRetries(0), vpay.WithPollInterval(10*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	yes := true
	hooks := 0
	pay := func(req vpay.PayRequest) *vpay.Payment {
		t.Helper()
		p, err := c.Pay(ctx, &req)
		var ae *vpay.Error
		if err != nil && !errors.As(err, &ae) {
			t.Fatalf("Pay %+v: %v", req, err)
		}
		if err == nil || ae.HTTPStatus == http.StatusOK {
			hooks++ // a payment was made: its webhook follows
		}
		return p
	}
	full := vpay.PayRequest{Amount: 1500, Method: vpay.MethodMTN, Phone: vpaytest.PhoneSuccess, Description: "Order 1",
		PayerName: "Celestin Niyomugabo", PayerEmail: "payer@example.com", SendReceipt: &yes,
		CallbackURL: sink.srv.URL, Metadata: map[string]string{"order": "1"}}
	p := pay(full)
	for _, phone := range []string{vpaytest.PhoneSuccessAlt, vpaytest.PhoneInsufficientFunds, vpaytest.PhoneTimeout, vpaytest.PhoneCancelled} {
		pay(vpay.PayRequest{Amount: 100, Method: vpay.MethodMTN, Phone: phone})
	}
	// 502 NETWORK_ERROR: no payment, no webhook.
	if _, err := c.Pay(ctx, &vpay.PayRequest{Amount: 100, Method: vpay.MethodMTN, Phone: vpaytest.PhoneNetworkError}); !errors.Is(err, vpay.ErrNetworkError) {
		t.Fatalf("network error number: %v", err)
	}
	pay(vpay.PayRequest{Amount: 2500, Method: vpay.MethodCard, PayerEmail: "payer@example.com"})
	pay(vpay.PayRequest{Amount: 2500, Method: vpay.MethodAll, Phone: "0720000000", Currency: "USD"})
	if p != nil {
		if _, err := c.Pay(ctx, &vpay.PayRequest{Amount: 100, Phone: vpaytest.PhoneSuccess, Reference: p.Reference}); !errors.Is(err, vpay.ErrDuplicateReference) {
			t.Fatalf("duplicate: %v", err)
		}
		if _, err := c.Status(ctx, p.TransactionID); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Wait(ctx, p.TransactionID); err != nil {
			t.Fatal(err)
		}
		for _, st := range []vpay.Status{vpay.StatusRefunded, vpay.StatusDisputed} {
			if err := s.SetStatus(p.TransactionID, st); err != nil {
				t.Fatal(err)
			}
			hooks++
		}
	}
	if _, err := c.Status(ctx, "VP00000000"); err == nil {
		t.Fatal("an unknown transaction was found")
	}
	for _, l := range []vpay.LinkRequest{{Name: "Monthly fee", Amount: 10000, Type: vpay.LinkMultiple, Description: "June", RedirectURL: "https://shop.example/thanks"},
		{Name: "Tip", Type: vpay.LinkOneOff}} {
		if _, err := c.CreateLink(ctx, &l); err != nil {
			t.Fatal(err)
		}
	}
	// Injected faults: every answer they produce is one the spec allows.
	for _, f := range []struct {
		path  string
		fault vpaytest.Fault
	}{
		{"/pay/", vpaytest.Fault{Status: http.StatusBadGateway}},
		{"/pay/", vpaytest.Fault{Status: http.StatusTooManyRequests}},
		{"/pay/", vpaytest.Fault{Status: http.StatusInternalServerError}},
		{"/pay/", vpaytest.Fault{Status: http.StatusServiceUnavailable}},
		{"/transaction/status/", vpaytest.Fault{Status: http.StatusUnauthorized}},
		{"/transaction/status/", vpaytest.Fault{Delay: time.Millisecond}},
		{"/payment-links/", vpaytest.Fault{Status: http.StatusGatewayTimeout}},
	} {
		s.Inject(f.path, f.fault)
		switch f.path {
		case "/pay/":
			_, _ = c.Pay(ctx, &vpay.PayRequest{Amount: 100, Phone: vpaytest.PhoneSuccess})
		case "/transaction/status/":
			if p != nil {
				_, _ = c.Status(ctx, p.TransactionID)
			}
		case "/payment-links/":
			_, _ = c.CreateLink(ctx, &vpay.LinkRequest{Name: "x", Type: vpay.LinkOneOff})
		}
	}
	return sink.wait(t, hooks)
}

func TestSDKRequestsEmulatorAnswersAndWebhooksMatchTheSpec(t *testing.T) {
	spec := load(t, openapi.Spec)
	for _, sync := range []bool{false, true} {
		t.Run(fmt.Sprintf("synchronous=%v", sync), func(t *testing.T) {
			rec := &recorder{}
			for _, d := range script(t, rec, sync) {
				spec.checkWebhook(t, d.body, d.sig)
			}
			routes := spec.check(t, rec.all())
			want := []string{"POST /api/auth/ 200", "POST /api/pay/ 200", "POST /api/pay/ 409", "POST /api/pay/ 502",
				"POST /api/pay/ 429", "POST /api/pay/ 500", "POST /api/pay/ 503", "GET /api/transaction/status/ 200",
				"GET /api/transaction/status/ 404", "GET /api/transaction/status/ 401", "POST /api/payment-links/ 200", "POST /api/payment-links/ 504"}
			for _, r := range want {
				if !routes[r] {
					t.Errorf("the script never produced %s (it produced %v)", r, keys(routes))
				}
			}
		})
	}
}

func TestEmulatorWebhooksMatchTheSpec(t *testing.T) {
	spec := load(t, openapi.Spec)
	sink := newHookSink(t)
	s := vpaytest.NewServer(vpaytest.WithPaymentDelay(time.Millisecond), vpaytest.WithWebhookURL(sink.srv.URL))
	defer s.Close()
	c := s.Client()
	ctx := context.Background()
	n, received := 0, 0
	for _, req := range []vpay.PayRequest{
		{Amount: 100, Phone: vpaytest.PhoneSuccess, Metadata: map[string]string{"order": "7"}},
		{Amount: 100, Phone: vpaytest.PhoneSuccessAlt},
		{Amount: 100, Phone: vpaytest.PhoneInsufficientFunds},
		{Amount: 100, Phone: vpaytest.PhoneTimeout},
		{Amount: 100, Phone: vpaytest.PhoneCancelled},
		{Amount: 100, Method: vpay.MethodCard},
	} {
		p, err := c.Pay(ctx, &req)
		if err != nil {
			t.Fatal(err)
		}
		n++
		if req.Method == vpay.MethodCard {
			if err := s.Approve(p.TransactionID); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if _, err := c.Wait(ctx, p.TransactionID); err != nil {
			t.Fatal(err)
		}
		if req.Phone == vpaytest.PhoneSuccess {
			// A delivery shows the status at the time it is sent: one
			// change at a time.
			sink.wait(t, n-received)
			received = n
			for _, st := range []vpay.Status{vpay.StatusRefunded, vpay.StatusDisputed, vpay.StatusCancelled} {
				if err := s.SetStatus(p.TransactionID, st); err != nil {
					t.Fatal(err)
				}
				n++
				sink.wait(t, 1)
				received++
			}
		}
	}
	events := map[string]bool{}
	for _, d := range sink.wait(t, n-received) {
		spec.checkWebhook(t, d.body, d.sig)
		events[string(regexp.MustCompile(`"event":"([^"]+)"`).FindSubmatch(d.body)[1])] = true
	}
	for _, ev := range []string{"payment.successful", "payment.failed", "payment.refunded", "payment.disputed", "payment.cancelled"} {
		if !events[ev] {
			t.Errorf("no %s webhook was checked (got %v)", ev, keys(events))
		}
	}
}

// The documentation's own examples (testdata/, verbatim) are answers the
// spec allows.
func TestDocumentationExamplesMatchTheSpec(t *testing.T) {
	spec := load(t, openapi.Spec)
	for file, route := range map[string]string{
		"auth_response.json":         "POST /api/auth/ 200",
		"pay_response_standard.json": "POST /api/pay/ 200",
		"pay_response_momo.json":     "POST /api/pay/ 200",
		"payment_link_response.json": "POST /api/payment-links/ 200",
		"error_response.json":        "POST /api/pay/ 400",
	} {
		body, err := os.ReadFile(filepath.Join("..", "..", "testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		var method, path string
		var status int
		fmt.Sscanf(route, "%s %s %d", &method, &path, &status)
		req := httptest.NewRequest(method, "https://vonsung.rw"+path, nil)
		h := http.Header{"Content-Type": {"application/json"}, "X-Ratelimit-Limit": {"120"}, "X-Ratelimit-Remaining": {"118"}, "X-Ratelimit-Reset": {"1716471600"}}
		resp := &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(bytes.NewReader(body))}
		if ok, errs := spec.v.ValidateHttpResponse(req, resp); !ok {
			t.Errorf("the documentation's %s differs from openapi/vpay.yaml:\n%s", file, describe(errs))
		}
	}
}

// Renaming one field of the spec makes the SDK's own request fail: the
// validation above has teeth.
func TestARenamedSpecFieldIsCaught(t *testing.T) {
	rec := &recorder{}
	s := vpaytest.NewServer()
	defer s.Close()
	c := s.Client(vpay.WithHTTPClient(&http.Client{Transport: rec}))
	if _, err := c.Pay(context.Background(), &vpay.PayRequest{Amount: 100, Phone: vpaytest.PhoneSuccess}); err != nil {
		t.Fatal(err)
	}
	renamed := bytes.Replace(openapi.Spec, []byte("        payer_phone: {type: string, pattern: \"^07"), []byte("        msisdn: {type: string, pattern: \"^07"), 1)
	if bytes.Equal(renamed, openapi.Spec) {
		t.Fatal("the spec no longer has PayRequest's payer_phone where this test renames it")
	}
	spec := load(t, renamed)
	var pays []exchange
	for _, ex := range rec.all() {
		if ex.req.URL.Path == "/api/pay/" {
			pays = append(pays, ex)
		}
	}
	if len(pays) != 1 {
		t.Fatalf("%d Pay requests recorded", len(pays))
	}
	req := pays[0].req.Clone(context.Background())
	req.Body = io.NopCloser(bytes.NewReader(pays[0].reqBody))
	if ok, _ := spec.v.ValidateHttpRequest(req); ok {
		t.Fatal("a Pay body with payer_phone validates against a spec that renamed it")
	}
}

// The README's table, doc.go and the spec's x-vpay-reading marks name the
// same readings.
func TestReadingsAgreeEverywhere(t *testing.T) {
	var tree any
	if err := yaml.Unmarshal(openapi.Spec, &tree); err != nil {
		t.Fatal(err)
	}
	spec := map[string]bool{}
	var walk func(any)
	walk = func(n any) {
		switch n := n.(type) {
		case map[string]any:
			for k, v := range n {
				if k == "x-vpay-reading" {
					r := v.(map[string]any)
					for _, field := range []string{"id", "topic", "documentation", "sdk", "wrong-if"} {
						if s, _ := r[field].(string); strings.TrimSpace(s) == "" {
							t.Errorf("reading %v has no %s", r["id"], field)
						}
					}
					topic, _ := r["topic"].(string)
					if spec[topic] {
						t.Errorf("reading %q appears twice", topic)
					}
					spec[topic] = true
				}
				walk(v)
			}
		case []any:
			for _, v := range n {
				walk(v)
			}
		}
	}
	walk(tree)
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	section := between(t, string(readme), "## What the documentation leaves open", "\n#")
	table := map[string]bool{}
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 || strings.HasPrefix(strings.TrimSpace(cells[1]), "---") || strings.TrimSpace(cells[1]) == "Open question" {
			continue
		}
		table[strings.TrimSpace(cells[1])] = true
	}
	docgo, err := os.ReadFile(filepath.Join("..", "..", "doc.go"))
	if err != nil {
		t.Fatal(err)
	}
	doc := map[string]bool{}
	for _, line := range strings.Split(between(t, string(docgo), "// # What the documentation leaves open", "\n//\n// #"), "\n") {
		if item, ok := strings.CutPrefix(line, "//   - "); ok {
			doc[strings.TrimSpace(item)] = true
		}
	}
	if len(spec) < 9 {
		t.Fatalf("only %d readings in the spec: %v", len(spec), keys(spec))
	}
	for name, got := range map[string]map[string]bool{"README.md's table": table, "doc.go": doc} {
		if strings.Join(keys(got), "\n") != strings.Join(keys(spec), "\n") {
			t.Errorf("%s lists other readings than openapi/vpay.yaml:\n%s:\n  %s\nspec:\n  %s", name, name,
				strings.Join(keys(got), "\n  "), strings.Join(keys(spec), "\n  "))
		}
	}
}

func between(t *testing.T, s, start, end string) string {
	t.Helper()
	_, after, ok := strings.Cut(s, start)
	if !ok {
		t.Fatalf("no %q", start)
	}
	before, _, _ := strings.Cut(after, end)
	return before
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
