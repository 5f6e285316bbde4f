package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Headers that carry credentials are redacted by name, even when the
// redactor never saw the token (one from a shared token store, say).
func TestTranscriptRedactsCredentialHeadersByName(t *testing.T) {
	req := &http.Request{Method: http.MethodGet, URL: &url.URL{Scheme: "https", Host: "vonsung.rw", Path: "/api/transaction/status/"},
		Header: http.Header{"Authorization": {"Bearer eyJunseen"}, "Apikey": {"sk_sandbox_unseen"}, "Apiuser": {"vpay_sandbox_user"}}}
	resp := &http.Response{Status: "200 OK", StatusCode: http.StatusOK, Header: http.Header{"Set-Cookie": {"session=unseen"}}}
	var b strings.Builder
	require.NoError(t, writeTranscript(&b, []*exchange{{at: time.Now(), req: req, resp: resp,
		respBody: []byte(`{"payer_phone":"250780000000","phone":"+250 78 000 0000"}`)}}, &redactor{}))
	out := b.String()
	for _, secret := range []string{"eyJunseen", "sk_sandbox_unseen", "session=unseen", "780000000", "78 000 0000"} {
		assert.NotContains(t, out, secret)
	}
	assert.Contains(t, out, "vpay_sandbox_user", "the API user is not a secret: V-Pay needs it to find the account")
}
