package vpaytest_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/internal/testutil"
	"github.com/vonsung/vpay-go/vpaytest"
)

// getHost GETs u with the Host header set to host.
func getHost(t *testing.T, u, host string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(t, err)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

func TestServesOnlyItsOwnHosts(t *testing.T) {
	s := vpaytest.NewServer()
	t.Cleanup(s.Close)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(strings.TrimSuffix(s.DashboardURL(), "/"), "http://"))
	for host, want := range map[string]int{
		"127.0.0.1:" + port:        http.StatusOK,
		"localhost:" + port:        http.StatusOK,
		"LOCALHOST":                http.StatusOK,
		"[::1]:" + port:            http.StatusOK,
		"127.0.0.2:" + port:        http.StatusOK, // loopback, whatever the address
		"evil.example:" + port:     http.StatusMisdirectedRequest,
		"evil.example":             http.StatusMisdirectedRequest,
		"localhost.evil.example":   http.StatusMisdirectedRequest,
		"192.0.2.200:" + port:      http.StatusMisdirectedRequest,
		"127.0.0.1.evil.example:1": http.StatusMisdirectedRequest,
		// A single label is no more the sandbox's than a dotted name:
		// a rebinding attacker's DNS can answer for "evil" too.
		"evil":             http.StatusMisdirectedRequest,
		"evil:" + port:     http.StatusMisdirectedRequest,
		"EVIL.":            http.StatusMisdirectedRequest,
		"intranet:" + port: http.StatusMisdirectedRequest,
		"localhost2":       http.StatusMisdirectedRequest,
		"localhos":         http.StatusMisdirectedRequest,
	} {
		assert.Equal(t, want, getHost(t, s.DashboardURL(), host), "Host %s", host)
	}
	// The API too: a rebinding page must not pay with the sandbox's key.
	assert.Equal(t, http.StatusMisdirectedRequest, getHost(t, s.URL+"transaction/status/?transaction_id=VP1", "evil.example"))
}

func TestBoundToALANAddressServesThatAddress(t *testing.T) {
	ip := testutil.LANIP()
	if ip == nil {
		t.Skip("this machine has no non-loopback address to bind the sandbox to")
	}
	s, err := vpaytest.Start(vpaytest.WithAddr(net.JoinHostPort(ip.String(), "0")))
	require.NoError(t, err)
	t.Cleanup(s.Close)
	u, err := url.Parse(s.DashboardURL())
	require.NoError(t, err)
	require.Equal(t, ip.String(), u.Hostname(), "pages carry the address bound to")
	// A phone on the LAN opens the address the sandbox was bound to.
	assert.Equal(t, http.StatusOK, getHost(t, s.DashboardURL(), u.Host), "Host %s", u.Host)
	assert.Equal(t, http.StatusOK, getHost(t, s.DashboardURL(), ip.String()), "Host %s without the port", ip)
	assert.Equal(t, http.StatusMisdirectedRequest, getHost(t, s.DashboardURL(), "evil.example:"+u.Port()))
}

func TestPublicURLIsWhatPagesLinksAndQRCodesCarry(t *testing.T) {
	s := vpaytest.NewServer(vpaytest.WithPublicURL("http://Shop.Test:8000"), vpaytest.WithPaymentDelay(time.Hour))
	t.Cleanup(s.Close)
	assert.Equal(t, "http://Shop.Test:8000/", s.DashboardURL())
	assert.True(t, strings.HasPrefix(s.URL, "http://127.0.0.1:"), "the API stays where this machine's SDK reaches it: %s", s.URL)
	c := s.Client()
	l, err := c.CreateLink(context.Background(), &vpay.LinkRequest{Name: "Fees", Amount: 1000, Type: vpay.LinkMultiple})
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(l.URL, "http://Shop.Test:8000/pay/"), l.URL)
	p, err := c.Pay(context.Background(), &vpay.PayRequest{Amount: 1000, Method: vpay.MethodCard})
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(p.PaymentURL, "http://Shop.Test:8000/checkout/"), p.PaymentURL)
	local := strings.TrimSuffix(s.URL, "api/")
	assert.Equal(t, http.StatusOK, getHost(t, local, "shop.test:8000"), "the public URL's host is served")
	assert.Equal(t, http.StatusMisdirectedRequest, getHost(t, local, "other.test:8000"))

	for _, bad := range []string{"shop.test:8000", "ftp://shop.test/", "http:///x", "http://shop.test/sub/", "http://shop.test/?a=1"} {
		_, err := vpaytest.Start(vpaytest.WithPublicURL(bad))
		assert.Error(t, err, "public URL %q", bad)
	}
}

func TestBoundToAllInterfacesLinksCarryAReachableAddress(t *testing.T) {
	s, err := vpaytest.Start(vpaytest.WithAddr("0.0.0.0:0"))
	require.NoError(t, err)
	t.Cleanup(s.Close)
	assert.True(t, strings.HasPrefix(s.URL, "http://127.0.0.1:"), "the SDK on this machine uses loopback: %s", s.URL)
	u, err := url.Parse(s.DashboardURL())
	require.NoError(t, err)
	ip := net.ParseIP(u.Hostname())
	require.NotNil(t, ip, s.DashboardURL())
	assert.False(t, ip.IsUnspecified(), "0.0.0.0 is no address a phone can open: %s", s.DashboardURL())
	l, err := s.Client().CreateLink(context.Background(), &vpay.LinkRequest{Name: "Fees", Amount: 1000, Type: vpay.LinkMultiple})
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(l.URL, s.DashboardURL()), l.URL)
	if !testutil.LANAddress() {
		t.Skip("this machine has no non-loopback address to check the LAN URL with")
	}
	assert.False(t, ip.IsLoopback(), "a phone cannot open a loopback address: %s", l.URL)
	// The machine's own address is served, and the page answers there.
	resp, err := http.Get(l.URL)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestLiveStreamsAreCapped(t *testing.T) {
	s := vpaytest.NewServer()
	t.Cleanup(s.Close)
	open := func() *http.Response {
		resp, err := http.Get(s.DashboardURL() + "events")
		require.NoError(t, err)
		return resp
	}
	var streams []*http.Response
	t.Cleanup(func() {
		for _, r := range streams {
			r.Body.Close()
		}
	})
	for range vpaytest.MaxLiveStreams {
		r := open()
		require.Equal(t, http.StatusOK, r.StatusCode)
		_, err := bufio.NewReader(r.Body).ReadString('\n') // the stream is being served
		require.NoError(t, err)
		streams = append(streams, r)
	}
	r := open()
	r.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, r.StatusCode, "one stream past the cap is refused")
	streams[0].Body.Close()
	streams = streams[1:]
	require.Eventually(t, func() bool {
		r := open()
		defer r.Body.Close()
		if r.StatusCode == http.StatusOK {
			streams = append(streams, r)
			return true
		}
		return false
	}, 10*time.Second, 10*time.Millisecond, "a closed stream frees its place")
}

func TestPhoneAnswersNeedTheFormToken(t *testing.T) {
	s := vpaytest.NewServer(vpaytest.WithManualPayer())
	t.Cleanup(s.Close)
	c := s.Client()
	p, err := c.Pay(context.Background(), &vpay.PayRequest{Amount: 700, Phone: "0781112233"})
	require.NoError(t, err)
	b := newBrowser(t)
	for _, action := range []string{"approve", "decline"} {
		for _, form := range []url.Values{{}, {"csrf": {"0123456789abcdef0123456789abcdef"}}} {
			code, _, _ := b.post(s.DashboardURL()+"phone/0781112233/"+p.TransactionID+"/"+action, form)
			assert.Equal(t, http.StatusForbidden, code, "%s with form %v", action, form)
		}
	}
	tx, err := c.Status(context.Background(), p.TransactionID)
	require.NoError(t, err)
	assert.Equal(t, vpay.StatusPending, tx.Status, "no answer without the form's token")
}

// apiPost calls the emulator's API directly, past the SDK's own checks.
func apiPost(t *testing.T, s *vpaytest.Server, path string, body any) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL+"auth/", nil)
	req.Header.Set("apiUser", s.APIUser)
	req.Header.Set("apiKey", s.APIKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var tok struct{ Access string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&tok))
	resp.Body.Close()
	b, _ := json.Marshal(body)
	req, _ = http.NewRequest(http.MethodPost, s.URL+strings.TrimPrefix(path, "/"), strings.NewReader(string(b)))
	req.Header.Set("apiUser", s.APIUser)
	req.Header.Set("apiKey", s.APIKey)
	req.Header.Set("Authorization", "Bearer "+tok.Access)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return out
}

func TestAJavascriptRedirectURLIsNeverFollowed(t *testing.T) {
	s := vpaytest.NewServer()
	t.Cleanup(s.Close)
	for _, bad := range []string{"javascript:alert(document.domain)", "JavaScript:alert(1)", "data:text/html,hi", "//evil.example/x"} {
		l := apiPost(t, s, "payment-links/", map[string]any{"name": "Fees", "amount": 1000, "type": "multiple", "redirect_url": bad})
		b := newBrowser(t)
		_, html, _ := b.get(l["url"].(string))
		_, html, at := b.post(l["url"].(string), url.Values{"csrf": {csrfOf(t, html)}})
		require.Contains(t, at.Path, "/checkout/")
		code, html, at := b.post(at.String(), url.Values{"csrf": {csrfOf(t, html)}, "with": {"card"}, "card": {vpaytest.CardSuccess}})
		assert.Equal(t, http.StatusOK, code)
		assert.Contains(t, at.Path, "/checkout/", "%s: the payer stays on the sandbox", bad)
		assert.Contains(t, html, "Payment successful")
		assert.NotContains(t, strings.ToLower(html), "javascript:", bad)
		assert.NotContains(t, html, `id="continue"`, "%s: no link to it either", bad)
	}
}

func TestWebhookEventNamesComeFromTheCanonicalStatus(t *testing.T) {
	got := make(chan string, 4)
	hook := httpServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b struct{ Event, Status string }
		_ = json.NewDecoder(r.Body).Decode(&b)
		got <- b.Event + " " + b.Status
	}))
	s := vpaytest.NewServer(vpaytest.WithWebhookURL(hook+"/hook"), vpaytest.WithPaymentDelay(time.Hour))
	t.Cleanup(s.Close)
	p, err := s.Client().Pay(context.Background(), &vpay.PayRequest{Amount: 1000, Phone: vpaytest.PhoneSuccess})
	require.NoError(t, err)
	require.NoError(t, s.Resend(p.TransactionID))
	assert.Equal(t, "payment.pending PENNDING", testutil.Recv(t, got, "the pending payment's webhook"), "the body keeps the API's spelling, the event the canonical name")
	s.Complete(p.TransactionID)
	assert.Equal(t, "payment.successful SUCCESSFUL", testutil.Recv(t, got, "the final webhook"))
}

func TestMerchantNameOnEveryPage(t *testing.T) {
	const name = "Huye Coffee & Co"
	s := vpaytest.NewServer(vpaytest.WithMerchant(name), vpaytest.WithManualPayer())
	t.Cleanup(s.Close)
	c := s.Client()
	ctx := context.Background()
	card, err := c.Pay(ctx, &vpay.PayRequest{Amount: 1000, Method: vpay.MethodCard})
	require.NoError(t, err)
	momo, err := c.Pay(ctx, &vpay.PayRequest{Amount: 1000, Phone: "0781112233"})
	require.NoError(t, err)
	l, err := c.CreateLink(ctx, &vpay.LinkRequest{Name: "Beans", Amount: 1000, Type: vpay.LinkMultiple})
	require.NoError(t, err)
	b := newBrowser(t)
	for _, u := range []string{s.DashboardURL(), s.DashboardURL() + "transactions/" + card.TransactionID, card.PaymentURL, l.URL,
		s.PhoneURL("0781112233"), s.DashboardURL() + "phone/", s.DashboardURL() + "no/such/page"} {
		_, html, _ := b.get(u)
		assert.Contains(t, html, "Huye Coffee &amp; Co", u)
		assert.NotContains(t, html, vpaytest.DefaultMerchant, u)
	}
	tx := s.Transactions()
	require.Len(t, tx, 2)
	assert.Equal(t, name, tx[1].Merchant)
	_ = momo
	_, err = vpaytest.Start(vpaytest.WithMerchant(" "))
	assert.Error(t, err, "an empty merchant name is refused")
}

func TestDeclinedCheckoutOffersRetryAndAWayBack(t *testing.T) {
	s := vpaytest.NewServer()
	t.Cleanup(s.Close)
	l, err := s.Client().CreateLink(context.Background(), &vpay.LinkRequest{Name: "Fees", Amount: 1000, Type: vpay.LinkOneOff, RedirectURL: "https://shop.example/back"})
	require.NoError(t, err)
	b := newBrowser(t)
	_, html, _ := b.get(l.URL)
	_, html, at := b.post(l.URL, url.Values{"csrf": {csrfOf(t, html)}})
	code, html, at := b.post(at.String(), url.Values{"csrf": {csrfOf(t, html)}, "with": {"card"}, "card": {vpaytest.CardDeclined}})
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, at.Path, "/checkout/", "a declined card stays on the sandbox's page")
	assert.Contains(t, html, "Payment failed")
	slug := strings.TrimPrefix(must(url.Parse(l.URL)).Path, "/pay/")
	assert.Contains(t, html, `href="/pay/`+slug+`" id="retry"`, "try again: a new payment through the link")
	assert.Contains(t, html, `href="https://shop.example/back?reference=`, "and back to the shop")
	assert.Contains(t, html, "status=failed")
	// Try again works: the one-off link is still open after a decline.
	code, html, _ = b.get(s.DashboardURL() + "pay/" + slug)
	require.Equal(t, http.StatusOK, code)
	assert.NotContains(t, html, `id="closed"`)

	// A card payment made with Pay has no link: the page says how to go on.
	p, err := s.Client().Pay(context.Background(), &vpay.PayRequest{Amount: 1000, Method: vpay.MethodCard})
	require.NoError(t, err)
	_, html, _ = b.get(p.PaymentURL)
	_, html, _ = b.post(p.PaymentURL, url.Values{"csrf": {csrfOf(t, html)}, "with": {"card"}, "card": {vpaytest.CardDeclined}})
	assert.Contains(t, html, "Go back to "+vpaytest.DefaultMerchant+" to try again")
}

func TestDashboardLabelsTheWebhookTarget(t *testing.T) {
	s := vpaytest.NewServer(vpaytest.WithWebhookURL("http://127.0.0.1:9/hooks"))
	t.Cleanup(s.Close)
	_, html, _ := newBrowser(t).get(s.DashboardURL())
	assert.Contains(t, html, "Webhook URL (every payment's webhooks also go here): <code>http://127.0.0.1:9/hooks</code>")
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
