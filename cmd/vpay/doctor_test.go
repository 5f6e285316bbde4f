package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/openapi"
	"github.com/vonsung/vpay-go/vpaytest"
	"github.com/vonsung/vpay-go/webhook"
)

// fakeAPI is the emulator behind a proxy that breaks one reading of the
// documentation at a time, as the real API might.
type fakeAPI struct {
	s   *vpaytest.Server
	srv *httptest.Server
	URL string // base URL, as VPAY_BASE_URL

	mu     sync.Mutex
	hits   map[string]int // "POST /pay/" -> requests that reached the proxy
	tokens []string       // every token /auth/ handed out

	// intercept answers a request itself when it returns true.
	intercept func(w http.ResponseWriter, r *http.Request, body []byte) bool
	// rewrite alters an answer's JSON body (nil: unchanged) and headers.
	rewrite func(path string, h http.Header, body map[string]any)
}

// breakage is how a fakeAPI differs from the emulator.
type breakage struct {
	intercept func(w http.ResponseWriter, r *http.Request, body []byte) bool
	rewrite   func(path string, h http.Header, body map[string]any)
}

func newFakeAPI(t *testing.T, b breakage, opts ...vpaytest.Option) *fakeAPI {
	t.Helper()
	f := &fakeAPI{s: vpaytest.NewServer(opts...), hits: map[string]int{}, intercept: b.intercept, rewrite: b.rewrite}
	t.Cleanup(f.s.Close)
	target, err := url.Parse(f.s.URL)
	require.NoError(t, err)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(&url.URL{Scheme: target.Scheme, Host: target.Host}) },
		ModifyResponse: func(resp *http.Response) error {
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			path := strings.TrimPrefix(resp.Request.URL.Path, "/api")
			var m map[string]any
			if json.Unmarshal(body, &m) == nil {
				f.mu.Lock()
				for _, k := range []string{"access", "refresh"} {
					if s, ok := m[k].(string); ok {
						f.tokens = append(f.tokens, s)
					}
				}
				f.mu.Unlock()
				if f.rewrite != nil {
					f.rewrite(path, resp.Header, m)
					body, _ = json.Marshal(m)
				}
			} else if f.rewrite != nil {
				f.rewrite(path, resp.Header, nil)
			}
			resp.Body = io.NopCloser(bytes.NewReader(body))
			resp.ContentLength = int64(len(body))
			resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
			return nil
		},
	}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.hits[r.Method+" "+strings.TrimPrefix(r.URL.Path, "/api")]++
		f.mu.Unlock()
		if f.intercept != nil && f.intercept(w, r, body) {
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	f.URL = f.srv.URL + "/api/"
	return f
}

func (f *fakeAPI) env() []string {
	return []string{"VPAY_BASE_URL=" + f.URL, "VPAY_API_USER=" + f.s.APIUser, "VPAY_API_KEY=" + f.s.APIKey, "VPAY_WEBHOOK_SECRET=" + f.s.WebhookSecret}
}

func (f *fakeAPI) hit(route string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits[route]
}

func writeAPIError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"status": "error", "error_code": code, "message": msg})
}

type doctorReport struct {
	Checks []checkResult `json:"checks"`
	OK     bool          `json:"ok"`
}

func (r doctorReport) byName() map[string]checkResult {
	m := map[string]checkResult{}
	for _, c := range r.Checks {
		m[c.Name] = c
	}
	return m
}

// runDoctor runs `vpay doctor --json` with a transcript, and checks that
// the transcript holds no secret and no phone number.
func runDoctorJSON(t *testing.T, f *fakeAPI, env []string, extra ...string) (result, doctorReport) {
	t.Helper()
	transcript := filepath.Join(t.TempDir(), "transcript.txt")
	r := vpayRun(t, env, append([]string{"doctor", "--json", "--timeout", "20s", "--transcript", transcript}, extra...)...)
	var rep doctorReport
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep), "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	b, err := os.ReadFile(transcript)
	require.NoError(t, err)
	assertRedacted(t, f, string(b))
	return r, rep
}

var anyPhone = regexp.MustCompile(`(\+?250[ -]?|0)7[0-9]([ -]?[0-9]){7}`)

func assertRedacted(t *testing.T, f *fakeAPI, transcript string) {
	t.Helper()
	require.Contains(t, transcript, "POST", "the transcript records the run")
	secrets := map[string]string{"API key": f.s.APIKey, "webhook secret": f.s.WebhookSecret}
	f.mu.Lock()
	for _, tok := range f.tokens {
		secrets["token "+tok[:6]] = tok
	}
	f.mu.Unlock()
	for what, s := range secrets {
		assert.NotContains(t, transcript, s, "the transcript contains the %s", what)
	}
	assert.Empty(t, anyPhone.FindAllString(transcript, -1), "the transcript contains phone numbers")
}

// assertOnly checks that exactly the named check failed (or warned), that
// the dependent ones were skipped, and that every other check passed.
func assertOnly(t *testing.T, rep doctorReport, name, result, reading string, skipped ...string) {
	t.Helper()
	checks := rep.byName()
	require.Contains(t, checks, name, "%+v", rep.Checks)
	assert.Equal(t, result, checks[name].Result, "%s: %s", name, checks[name].Detail)
	assert.Equal(t, reading, checks[name].Reading, "the check names the reading it refutes")
	for _, c := range rep.Checks {
		switch {
		case c.Name == name:
		case contains(skipped, c.Name):
			assert.Equal(t, resultSkipped, c.Result, "%s depends on %s: %s", c.Name, name, c.Detail)
		default:
			assert.Equal(t, resultPassed, c.Result, "%s (%s) should not be affected: %s", c.Name, c.Reading, c.Detail)
		}
	}
	for _, s := range skipped {
		assert.Contains(t, checks, s)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestDoctorAgainstTheEmulatorPassesEveryCheck(t *testing.T) {
	f := newFakeAPI(t, breakage{})
	var received []string
	var mu sync.Mutex
	endpoint := httptest.NewServer(webhook.Handler(f.s.WebhookSecret, func(_ context.Context, ev *vpay.Event) error {
		mu.Lock()
		defer mu.Unlock()
		received = append(received, string(ev.Type)+" "+ev.Transaction.Reference)
		return nil
	}))
	defer endpoint.Close()
	addr := freeAddr(t)
	r, rep := runDoctorJSON(t, f, f.env(), "--webhook-url", endpoint.URL, "--listen", addr, "--callback-url", "http://"+addr+"/vpay")
	require.Equal(t, 0, r.code, "stderr: %s\n%+v", r.stderr, rep.Checks)
	assert.True(t, rep.OK)
	want := []string{"credentials", "mode", "token-lifetime", "clock", "rate-limit", "webhook-endpoint", "pay", "status", "final-status", "duplicate", "callback", "link"}
	var got []string
	for _, c := range rep.Checks {
		got = append(got, c.Name)
		assert.Equal(t, resultPassed, c.Result, "%s: %s", c.Name, c.Detail)
		assert.NotEmpty(t, c.Reading, "%s names no reading", c.Name)
	}
	assert.Equal(t, want, got)
	mu.Lock()
	require.Len(t, received, 1, "one test delivery reached the endpoint")
	assert.Regexp(t, `^payment\.pending doctor-[0-9a-f]+$`, received[0], "a pending event under a doctor- reference, never a fake success")
	mu.Unlock()
	assert.Equal(t, 2, f.hit("POST /pay/"), "one payment and one duplicate")
	checks := rep.byName()
	assert.Contains(t, checks["rate-limit"].Detail, "Limit 100000")
	assert.Contains(t, checks["token-lifetime"].Detail, "5m0s")

	// The same run as text: one line per check and a summary.
	r = vpayRun(t, f.env(), "doctor", "--timeout", "20s")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Regexp(t, `(?m)^passed +pay +Pay's field names: VP[0-9]+ pending under reference doctor-`, r.stdout)
	assert.Contains(t, r.stdout, "10 passed, 0 failed, 0 skipped, 0 warnings")
}

func TestDoctorNamesTheBrokenReading(t *testing.T) {
	tableNames := func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		if r.Method != http.MethodPost || r.URL.Path != "/api/pay/" {
			return false
		}
		var m map[string]any
		_ = json.Unmarshal(body, &m)
		for _, name := range []string{"method", "phone", "reference"} {
			if _, ok := m[name]; !ok {
				writeAPIError(w, http.StatusBadRequest, "INVALID_REQUEST", name+" is required.")
				return true
			}
		}
		return false
	}
	statusByPost := func(w http.ResponseWriter, r *http.Request, _ []byte) bool {
		if r.URL.Path == "/api/transaction/status/" && r.Method != http.MethodPost {
			writeAPIError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "Use POST.")
			return true
		}
		return false
	}
	statusByID := func(w http.ResponseWriter, r *http.Request, _ []byte) bool {
		if r.URL.Path == "/api/transaction/status/" && r.URL.Query().Get("id") == "" {
			writeAPIError(w, http.StatusBadRequest, "INVALID_REQUEST", "id is required.")
			return true
		}
		return false
	}
	linksElsewhere := func(w http.ResponseWriter, r *http.Request, _ []byte) bool {
		if r.URL.Path == "/api/payment-links/" {
			writeAPIError(w, http.StatusNotFound, "NOT_FOUND", "No such endpoint.")
			return true
		}
		return false
	}
	noRateLimit := func(_ string, h http.Header, _ map[string]any) {
		for k := range h {
			if strings.HasPrefix(strings.ToLower(k), "x-ratelimit-") {
				h.Del(k)
			}
		}
	}
	clockOff := func(_ string, h http.Header, _ map[string]any) {
		h.Set("Date", time.Now().Add(10*time.Minute).UTC().Format(http.TimeFormat))
	}
	clockBehind := func(_ string, h http.Header, _ map[string]any) {
		h.Set("Date", time.Now().Add(-10*time.Minute).UTC().Format(http.TimeFormat))
	}
	merchantNumber := func(path string, _ http.Header, m map[string]any) {
		if path == "/pay/" && m != nil && m["transaction_id"] != nil {
			m["merchant"] = 42
		}
	}
	noLinkID := func(path string, _ http.Header, m map[string]any) {
		if path == "/payment-links/" && m != nil {
			delete(m, "link_id")
		}
	}
	var seenMu sync.Mutex
	seen := map[string]bool{}
	acceptsDuplicates := func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		if r.URL.Path != "/api/pay/" {
			return false
		}
		var m map[string]any
		_ = json.Unmarshal(body, &m)
		ref, _ := m["external_id"].(string)
		seenMu.Lock()
		defer seenMu.Unlock()
		if !seen[ref] {
			seen[ref] = true
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"PENNDING","message":"Prompt sent.","transaction_id":"VP99999999","merchant":"VONSUNG"}`))
		return true
	}
	for _, tc := range []struct {
		name      string
		intercept func(http.ResponseWriter, *http.Request, []byte) bool
		rewrite   func(string, http.Header, map[string]any)
		check     string
		reading   string
		detail    string
		skipped   []string
	}{
		{"Pay takes only the table's names", tableNames, nil, "pay", "Pay's field names", "method is required", []string{"status", "final-status", "duplicate"}},
		{"status only by POST", statusByPost, nil, "status", "The status call", "METHOD_NOT_ALLOWED", []string{"final-status"}},
		{"status under another parameter", statusByID, nil, "status", "The status call", "id is required", []string{"final-status"}},
		{"links on another path", linksElsewhere, nil, "link", "Payment links", "NOT_FOUND", nil},
		{"no rate-limit headers", nil, noRateLimit, "rate-limit", "Rate-limit headers", "X-RateLimit-Limit", nil},
		{"server clock 10 minutes off", nil, clockOff, "clock", "Server clock", "more than 1m0s", nil},
		{"server clock 10 minutes behind", nil, clockBehind, "clock", "Server clock", "more than 1m0s", nil},
		{"a field of another type in Pay's answer", nil, merchantNumber, "pay", "Pay's field names", "merchant", nil},
		{"a link answer without link_id", nil, noLinkID, "link", "Payment links", "link_id", nil},
		{"a reused reference accepted", acceptsDuplicates, nil, "duplicate", "Error codes", "accepted twice", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAPI(t, breakage{tc.intercept, tc.rewrite})
			r, rep := runDoctorJSON(t, f, f.env())
			assert.Equal(t, 1, r.code, "a failed check exits 1: %s", r.stderr)
			assert.False(t, rep.OK)
			assertOnly(t, rep, tc.check, resultFailed, tc.reading, tc.skipped...)
			assert.Contains(t, rep.byName()[tc.check].Detail, tc.detail)
		})
	}
}

func TestDoctorFailsCallbacksWithoutEvent(t *testing.T) {
	testBrokenCallback(t, "event", func(m map[string]any) { delete(m, "event") }, "")
}

func TestDoctorFailsBadlySignedCallbacks(t *testing.T) {
	testBrokenCallback(t, "X-VPay-Signature", func(map[string]any) {}, "not the secret")
}

// testBrokenCallback relays the emulator's callbacks to the doctor's
// listener after alter, signed with secret (the emulator's if empty).
func testBrokenCallback(t *testing.T, want string, alter func(map[string]any), secret string) {
	f := newFakeAPI(t, breakage{})
	addr := freeAddr(t)
	secret = cmp.Or(secret, f.s.WebhookSecret)
	relay := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		alter(m)
		body, _ = json.Marshal(m)
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/vpay", bytes.NewReader(body))
		req.Header.Set(webhook.SignatureHeader, webhook.Sign(body, secret))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
	}))
	defer relay.Close()
	r, rep := runDoctorJSON(t, f, f.env(), "--listen", addr, "--callback-url", relay.URL)
	assert.Equal(t, 1, r.code, r.stderr)
	assertOnly(t, rep, "callback", resultFailed, "Webhook payload and event names")
	assert.Contains(t, rep.byName()["callback"].Detail, want)
}

func TestDoctorWarnsOfAnUnknownField(t *testing.T) {
	f := newFakeAPI(t, breakage{rewrite: func(path string, _ http.Header, m map[string]any) {
		if path == "/pay/" && m != nil && m["transaction_id"] != nil {
			m["fee_rwf"] = 3
		}
	}})
	r, rep := runDoctorJSON(t, f, f.env())
	assert.Equal(t, 0, r.code, "a warning is a passing run: %s", r.stderr)
	assert.True(t, rep.OK)
	assertOnly(t, rep, "pay", resultWarning, "Pay's field names")
	assert.Contains(t, rep.byName()["pay"].Detail, "fee_rwf")
}

func TestDoctorNeverPaysInLiveMode(t *testing.T) {
	liveAnswer := func(path string, _ http.Header, m map[string]any) {
		if path == "/auth/" && m != nil {
			m["mode"] = "live"
		}
	}
	for _, tc := range []struct {
		name       string
		user, key  string
		rewrite    func(string, http.Header, map[string]any)
		modeResult string
	}{
		{"live key, live answer", "vpay_live_doctor", "sk_live_doctor0123456789", liveAnswer, resultPassed},
		{"sandbox key, live answer", "vpay_sandbox_doctor", "sk_sandbox_doctor0123456789", liveAnswer, resultFailed},
		{"live key, sandbox answer", "vpay_live_doctor", "sk_live_doctor0123456789", nil, resultFailed},
		{"no prefix, sandbox answer", "doctor", "k0123456789doctor", nil, resultPassed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAPI(t, breakage{rewrite: tc.rewrite}, vpaytest.WithCredentials(tc.user, tc.key, ""))
			r, rep := runDoctorJSON(t, f, f.env())
			assert.Zero(t, f.hit("POST /pay/"), "no payment in live mode")
			assert.Zero(t, f.hit("POST /payment-links/"), "no link in live mode")
			assert.Zero(t, f.s.Requests("/pay/")+f.s.Requests("/payment-links/"))
			checks := rep.byName()
			assert.Equal(t, tc.modeResult, checks["mode"].Result, checks["mode"].Detail)
			for _, name := range []string{"pay", "status", "final-status", "duplicate", "link"} {
				assert.Equal(t, resultSkipped, checks[name].Result, name)
				assert.Contains(t, checks[name].Detail, "live mode", name)
			}
			assert.Equal(t, tc.modeResult == resultFailed, r.code == 1, "exit %d: %s", r.code, r.stderr)
		})
	}
	f := newFakeAPI(t, breakage{rewrite: liveAnswer}, vpaytest.WithCredentials("vpay_live_doctor", "sk_live_doctor0123456789", ""))
	r := vpayRun(t, f.env(), "doctor")
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "no payment or link was sent, only read-only checks ran")
}

func TestDoctorExitCodes(t *testing.T) {
	r := vpayRun(t, []string{"VPAY_BASE_URL=http://" + freeAddr(t) + "/api/", "VPAY_API_USER=vpay_sandbox_u", "VPAY_API_KEY=sk_sandbox_k", "VPAY_WEBHOOK_SECRET=s"},
		"doctor", "--json")
	assert.Equal(t, 3, r.code, "an unreachable API exits 3: %s", r.stderr)
	var rep doctorReport
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep), r.stdout)
	assert.Equal(t, resultFailed, rep.Checks[0].Result)
	assert.Contains(t, rep.Checks[0].Detail, "could not be reached")

	f := newFakeAPI(t, breakage{})
	r = vpayRun(t, f.env(), "doctor", "--listen", "127.0.0.1:0")
	assert.Equal(t, 2, r.code, "--listen without --callback-url is a usage error")
	env := []string{"VPAY_BASE_URL=" + f.URL, "VPAY_API_USER=" + f.s.APIUser, "VPAY_API_KEY=sk_sandbox_wrong"}
	r = vpayRun(t, env, "doctor", "--json")
	assert.Equal(t, 1, r.code, "refused credentials fail a check: %s", r.stderr)
	assert.Zero(t, f.hit("POST /pay/"))
	r = vpayRun(t, env, "doctor", "--webhook-url", "http://127.0.0.1:1/")
	assert.Equal(t, 2, r.code, "--webhook-url needs the webhook secret")
}

// The bodies the CLI signs and sends are what the spec says V-Pay sends.
func TestTriggerAndDoctorDeliveriesMatchTheSpec(t *testing.T) {
	spec, err := loadContract(openapi.Spec)
	require.NoError(t, err)
	var mu sync.Mutex
	var bodies [][]byte
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, b)
		mu.Unlock()
	}))
	defer sink.Close()
	for ev := range eventStatus {
		r := vpayRun(t, []string{"VPAY_WEBHOOK_SECRET=s"}, "trigger", string(ev), "--to", sink.URL)
		require.Equal(t, 0, r.code, r.stderr)
	}
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, bodies, len(eventStatus))
	bodies = append(bodies, doctorDelivery("doctor-1"))
	for _, b := range bodies {
		v := spec.webhookBody(b)
		assert.Empty(t, v.problems, "%s", b)
		assert.Empty(t, v.unknown, "%s", b)
	}
	// And the check has teeth: a renamed field is caught.
	v := spec.webhookBody(bytes.Replace(bodies[0], []byte(`"external_id"`), []byte(`"reference"`), 1))
	assert.Contains(t, strings.Join(v.problems, " "), "external_id")
}
