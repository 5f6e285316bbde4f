package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/openapi"
	"github.com/vonsung/vpay-go/vpaytest"
)

// Scripts read --json by its keys: they are pinned here as literals, not
// through checkResult's tags, so renaming a tag breaks this test. The run
// is against a server that sends no Date header: the clock check has
// nothing to compare, so it is skipped and the run still passes.
func TestDoctorJSONKeysAndAnAnswerWithoutDate(t *testing.T) {
	f := newFakeAPI(t, breakage{
		intercept: func(w http.ResponseWriter, _ *http.Request, _ []byte) bool {
			w.Header()["Date"] = nil // net/http then writes no Date
			return false
		},
		rewrite: func(_ string, h http.Header, _ map[string]any) { h.Del("Date") },
	})
	r, rep := runDoctorJSON(t, f, f.env())
	assert.Equal(t, 0, r.code, "a skipped check is a passing run: %s", r.stderr)
	assertOnly(t, rep, "clock", resultSkipped, "Server clock")
	assert.Contains(t, rep.byName()["clock"].Detail, "no Date header")

	var out map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out), r.stdout)
	assert.ElementsMatch(t, []string{"checks", "ok"}, mapKeys(out))
	assert.Equal(t, true, out["ok"])
	checks, ok := out["checks"].([]any)
	require.True(t, ok, "checks is a list: %s", r.stdout)
	require.NotEmpty(t, checks)
	for _, c := range checks {
		m, ok := c.(map[string]any)
		require.True(t, ok, "a check is an object: %v", c)
		assert.ElementsMatch(t, []string{"name", "reading", "result", "detail"}, mapKeys(m))
		for k, v := range m {
			assert.IsType(t, "", v, "%s is a string", k)
		}
	}
	first := checks[0].(map[string]any)
	assert.Equal(t, "credentials", first["name"])
	assert.Equal(t, resultPassed, first["result"])
	assert.NotEmpty(t, first["reading"])
}

func mapKeys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Any answer outside 2xx from the merchant's endpoint fails the check and
// names the status: V-Pay would retry (or give up on) such a delivery.
func TestDoctorFailsAWebhookEndpointAnsweringOutside2xx(t *testing.T) {
	for _, status := range []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusNotFound, http.StatusInternalServerError} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			f := newFakeAPI(t, breakage{})
			endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(status)
			}))
			defer endpoint.Close()
			r, rep := runDoctorJSON(t, f, f.env(), "--webhook-url", endpoint.URL)
			assert.Equal(t, 1, r.code, r.stderr)
			assert.False(t, rep.OK)
			assertOnly(t, rep, "webhook-endpoint", resultFailed, "Webhook payload and event names")
			assert.Contains(t, rep.byName()["webhook-endpoint"].Detail, strconv.Itoa(status))
		})
	}
}

// An endpoint may well repeat the secret in its answer (a debug page, an
// error naming the expected signature's key): the transcript records that
// answer, and must not carry the secret on.
func TestDoctorTranscriptRedactsTheWebhookSecretFromAnswers(t *testing.T) {
	f := newFakeAPI(t, breakage{})
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "debug: verified with secret %s\n", f.s.WebhookSecret)
	}))
	defer endpoint.Close()
	// runDoctorJSON asserts the transcript holds neither the key nor the
	// webhook secret.
	r, rep := runDoctorJSON(t, f, f.env(), "--webhook-url", endpoint.URL)
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, resultPassed, rep.byName()["webhook-endpoint"].Result)
}

// validated judges the SDK's requests too, not only the answers: a
// request the spec does not allow fails the check and says so.
func TestDoctorValidatedChecksTheRequests(t *testing.T) {
	spec, err := loadContract(openapi.Spec)
	require.NoError(t, err)
	s := vpaytest.NewServer()
	defer s.Close()
	rec := &recorder{next: http.DefaultTransport}
	c := s.Client(vpay.WithHTTPClient(&http.Client{Transport: rec}))
	_, err = c.Pay(context.Background(), &vpay.PayRequest{Amount: 100, Phone: vpaytest.PhoneSuccess, Reference: "doctor-1"})
	require.NoError(t, err)
	exs := rec.since(0)
	var pay *exchange
	for _, ex := range exs {
		if ex.req.Method == http.MethodPost && ex.req.URL.Path == "/api/pay/" {
			pay = ex
		}
	}
	require.NotNil(t, pay, "no Pay request recorded")
	base, err := url.Parse(s.URL) // the emulator serves under /api/
	require.NoError(t, err)
	d := &doctor{spec: spec, base: base}

	result, detail := d.validated(exs, "fine")
	require.Equal(t, resultPassed, result, "the SDK's own exchanges: %s", detail)

	var body map[string]any
	require.NoError(t, json.Unmarshal(pay.reqBody, &body))
	body["amount"] = "a hundred"
	pay.reqBody, err = json.Marshal(body)
	require.NoError(t, err)
	result, detail = d.validated(exs, "fine")
	assert.Equal(t, resultFailed, result)
	assert.Contains(t, detail, "request field amount")
}
