package vpaytest_test

import (
	"bytes"
	"context"
	"image/png"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/internal/testutil"
	"github.com/vonsung/vpay-go/vpaytest"
	"github.com/vonsung/vpay-go/webhook"
)

// browser is a plain HTTP client that follows redirects only within the
// sandbox, and remembers where it landed.
type browser struct {
	t  *testing.T
	hc *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, hc: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

func (b *browser) get(u string) (int, string, *url.URL) {
	b.t.Helper()
	resp, err := b.hc.Get(u)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Request.URL
}

func (b *browser) post(u string, form url.Values) (int, string, *url.URL) {
	b.t.Helper()
	resp, err := b.hc.PostForm(u, form)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Request.URL
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

func csrfOf(t *testing.T, html string) string {
	t.Helper()
	m := csrfRe.FindStringSubmatch(html)
	require.NotNil(t, m, "the page has a form token")
	return m[1]
}

// shopEndpoint is a merchant's webhook endpoint that verifies and records.
func shopEndpoint(t *testing.T, secret string) (string, <-chan *vpay.Event) {
	events := make(chan *vpay.Event, 16)
	srv := httptest.NewServer(webhook.Handler(secret, func(_ context.Context, ev *vpay.Event) error {
		events <- ev
		return nil
	}))
	t.Cleanup(srv.Close)
	return srv.URL, events
}

func TestCardCheckoutPage(t *testing.T) {
	// A payment delay of a nanosecond: had the payment been left to it,
	// it would be settled before the first Status below.
	s := vpaytest.NewServer(vpaytest.WithManualPayer(), vpaytest.WithPaymentDelay(time.Nanosecond))
	t.Cleanup(s.Close)
	hook, events := shopEndpoint(t, s.WebhookSecret)
	c := s.Client()
	for _, tt := range []struct {
		card, status string
	}{{"4242 4242 4242 4242", "successful"}, {"4000-0000-0000-9995", "failed"}} {
		p, err := c.Pay(context.Background(), &vpay.PayRequest{Amount: 2500, Method: vpay.MethodCard, Description: "Two <b>mugs</b>", CallbackURL: hook})
		require.NoError(t, err)
		b := newBrowser(t)
		code, html, _ := b.get(p.PaymentURL)
		require.Equal(t, 200, code)
		assert.Contains(t, html, "2,500 RWF")
		assert.Contains(t, html, p.Reference)
		assert.Contains(t, html, "Two &lt;b&gt;mugs&lt;/b&gt;", "every value is escaped")

		// Under the manual payer nothing settles it but the page.
		tx, err := c.Status(context.Background(), p.TransactionID)
		require.NoError(t, err)
		require.Equal(t, vpay.StatusPending, tx.Status)

		code, _, _ = b.post(p.PaymentURL, url.Values{"with": {"card"}, "card": {tt.card}})
		assert.Equal(t, http.StatusForbidden, code, "a form without the token is refused")
		code, html, _ = b.post(p.PaymentURL, url.Values{"csrf": {csrfOf(t, html)}, "with": {"card"}, "card": {"1234"}})
		assert.Equal(t, http.StatusUnprocessableEntity, code)
		assert.Contains(t, html, "Use a test card")
		code, html, _ = b.post(p.PaymentURL, url.Values{"csrf": {csrfOf(t, html)}, "with": {"card"}, "card": {tt.card}})
		require.Equal(t, 200, code)
		assert.Contains(t, html, `id="result"`)
		ev := testutil.Recv(t, events, "the webhook")
		assert.Equal(t, p.TransactionID, ev.Transaction.TransactionID)
		assert.Equal(t, vpay.Status(tt.status), ev.Transaction.Status)
	}
}

func TestCardPaymentsStillSettleByThemselvesByDefault(t *testing.T) {
	s := vpaytest.NewServer(vpaytest.WithPaymentDelay(10 * time.Millisecond))
	t.Cleanup(s.Close)
	c := s.Client()
	p, err := c.Pay(context.Background(), &vpay.PayRequest{Amount: 500, Method: vpay.MethodCard})
	require.NoError(t, err)
	tx, err := c.Wait(context.Background(), p.TransactionID)
	require.NoError(t, err)
	assert.Equal(t, vpay.StatusSuccessful, tx.Status)
}

func TestManualPaymentTimesOutLikeAPrompt(t *testing.T) {
	s := vpaytest.NewServer(vpaytest.WithManualPayer(), vpaytest.WithPromptTimeout(50*time.Millisecond))
	t.Cleanup(s.Close)
	c := s.Client(vpay.WithPollInterval(10 * time.Millisecond))
	p, err := c.Pay(context.Background(), &vpay.PayRequest{Amount: 500, Phone: vpaytest.PhoneSuccess})
	require.NoError(t, err)
	tx, err := c.Wait(context.Background(), p.TransactionID)
	require.NoError(t, err)
	assert.Equal(t, vpay.StatusFailed, tx.Status)
	assert.Equal(t, vpay.ErrorCode("PAYMENT_TIMEOUT"), tx.FailureCode)
}

func TestPhonePageApprovesAndDeclines(t *testing.T) {
	s := vpaytest.NewServer(vpaytest.WithManualPayer())
	t.Cleanup(s.Close)
	c := s.Client()
	ctx := context.Background()
	p1, err := c.Pay(ctx, &vpay.PayRequest{Amount: 700, Phone: "0781112233", Description: "Bread"})
	require.NoError(t, err)
	p2, err := c.Pay(ctx, &vpay.PayRequest{Amount: 900, Phone: "+250 78 111 2233"})
	require.NoError(t, err)
	other, err := c.Pay(ctx, &vpay.PayRequest{Amount: 600, Phone: "0789998877"})
	require.NoError(t, err)

	b := newBrowser(t)
	code, html, at := b.get(s.DashboardURL() + "phone/250781112233")
	require.Equal(t, 200, code)
	assert.True(t, strings.HasSuffix(at.Path, "/phone/0781112233"), "any form of the number lands on its page")
	assert.Contains(t, html, p1.TransactionID)
	assert.Contains(t, html, p2.TransactionID)
	assert.Contains(t, html, "700 RWF")
	assert.NotContains(t, html, other.TransactionID, "another number's prompt is not on this phone")

	_, html, _ = b.post(s.DashboardURL()+"phone/0781112233/"+p1.TransactionID+"/approve", url.Values{"csrf": {csrfOf(t, html)}})
	assert.NotContains(t, html, p1.TransactionID, "an answered prompt leaves the phone")
	require.NoError(t, s.Decline(p2.TransactionID), "the same from Go")
	assert.Error(t, s.Approve(p2.TransactionID), "a settled payment cannot be approved")
	assert.Error(t, s.Approve("VP0"))

	for id, want := range map[string]vpay.Status{p1.TransactionID: vpay.StatusSuccessful, p2.TransactionID: vpay.StatusFailed} {
		tx, err := c.Status(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, want, tx.Status)
	}
	code, _, _ = b.post(s.DashboardURL()+"phone/0780000000/"+p1.TransactionID+"/approve", url.Values{"csrf": {csrfOf(t, html)}})
	assert.Equal(t, http.StatusNotFound, code, "another number cannot answer this prompt")
}

func TestLinkPages(t *testing.T) {
	s := vpaytest.NewServer()
	t.Cleanup(s.Close)
	c := s.Client()
	ctx := context.Background()
	shopDone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "thanks") }))
	t.Cleanup(shopDone.Close)

	// One-off, pay what you want, with a redirect.
	l, err := c.CreateLink(ctx, &vpay.LinkRequest{Name: "Tip <the> band", Type: vpay.LinkOneOff, RedirectURL: shopDone.URL + "/done"})
	require.NoError(t, err)
	b := newBrowser(t)
	code, html, _ := b.get(l.URL)
	require.Equal(t, 200, code)
	assert.Contains(t, html, "Tip &lt;the&gt; band")
	assert.Contains(t, html, `name="amount"`, "no fixed amount: the payer types one")
	code, html, _ = b.post(l.URL, url.Values{"csrf": {csrfOf(t, html)}, "amount": {"99"}})
	assert.Equal(t, http.StatusUnprocessableEntity, code, "below the minimum")
	code, html, at := b.post(l.URL, url.Values{"csrf": {csrfOf(t, html)}, "amount": {"1500"}})
	require.Equal(t, 200, code)
	require.Contains(t, at.Path, "/checkout/")
	assert.Contains(t, html, "1,500 RWF")
	code, body, at := b.post(at.String(), url.Values{"csrf": {csrfOf(t, html)}, "with": {"card"}, "card": {vpaytest.CardSuccess}})
	require.Equal(t, 200, code)
	assert.Equal(t, "thanks", body, "the payer lands on the link's redirect URL")
	assert.Equal(t, "/done", at.Path)
	assert.Equal(t, "successful", at.Query().Get("status"))
	id := at.Query().Get("transaction_id")
	tx, err := c.Status(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, int64(1500), tx.Amount)

	token := csrfOf(t, html)
	code, html, _ = b.get(l.URL)
	require.Equal(t, 200, code)
	assert.Contains(t, html, `id="closed"`, "a one-off link stops after its first success")
	code, _, _ = b.post(l.URL, url.Values{"csrf": {token}, "amount": {"1500"}})
	assert.Equal(t, http.StatusGone, code)

	// Fixed amount, paid with MoMo from the checkout.
	fixed, err := c.CreateLink(ctx, &vpay.LinkRequest{Name: "Tip the band", Amount: 3000, Type: vpay.LinkMultiple})
	require.NoError(t, err)
	assert.NotEqual(t, l.URL, fixed.URL, "two links with one name get two pages")
	_, html, _ = b.get(fixed.URL)
	assert.Contains(t, html, "3,000 RWF")
	assert.NotContains(t, html, `name="amount"`)
	_, html, at = b.post(fixed.URL, url.Values{"csrf": {csrfOf(t, html)}})
	_, html, _ = b.post(at.String(), url.Values{"csrf": {csrfOf(t, html)}, "with": {"momo"}, "phone": {vpaytest.PhoneSuccess}})
	assert.Contains(t, html, `id="waiting"`)
	require.Eventually(t, func() bool {
		_, html, _ = b.get(at.String())
		return strings.Contains(html, "Payment successful")
	}, 10*time.Second, 20*time.Millisecond)
	_, html, _ = b.get(fixed.URL)
	assert.NotContains(t, html, `id="closed"`, "a multiple-use link stays open")
}

func TestLinkQRIsARealQRCodeOfTheLink(t *testing.T) {
	s := vpaytest.NewServer()
	t.Cleanup(s.Close)
	l, err := s.Client().CreateLink(context.Background(), &vpay.LinkRequest{Name: "Coffee", Amount: 1000, Type: vpay.LinkMultiple})
	require.NoError(t, err)
	resp, err := http.Get(l.QRCodeURL)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, "image/png", resp.Header.Get("Content-Type"))
	img, err := png.Decode(resp.Body)
	require.NoError(t, err)
	// A QR code: a square of modules whose corners hold the 7-module
	// finder pattern (dark ring, light ring, dark 3x3 core).
	size := img.Bounds().Dx()
	require.Equal(t, size, img.Bounds().Dy())
	dark := func(x, y int) bool { r, _, _, _ := img.At(x, y).RGBA(); return r < 0x8000 }
	var quiet int
	for quiet = 0; quiet < size && !dark(quiet, quiet); quiet++ {
	}
	require.Less(t, quiet, size/2, "there are dark modules")
	// The finder's outer ring is 7 modules wide: find the module size.
	var w int
	for w = 0; dark(quiet+w, quiet); w++ {
	}
	mod := w / 7
	require.Positive(t, mod)
	at := func(mx, my int) bool { return dark(quiet+mx*mod+mod/2, quiet+my*mod+mod/2) }
	pattern := []string{"#######", "#.....#", "#.###.#", "#.###.#", "#.###.#", "#.....#", "#######"}
	for y, row := range pattern {
		for x, c := range row {
			assert.Equal(t, c == '#', at(x, y), "finder module %d,%d", x, y)
		}
	}
	modules := (size - 2*quiet) / mod
	assert.GreaterOrEqual(t, modules, 25, "version 2 or more: enough for a URL of %d bytes", len(l.URL))
	assert.Zero(t, (modules-21)%4, "a QR code's side is 21+4k modules")
}

// TestPagesShowNoSecretAndRefuseForeignForms visits every page with a
// payment, a link and deliveries in place.
func TestPagesShowNoSecretAndRefuseForeignForms(t *testing.T) {
	s := vpaytest.NewServer(vpaytest.WithPaymentDelay(10 * time.Millisecond))
	var deliveries atomic.Int64
	first := make(chan struct{}, 8)
	shop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if webhook.Verify(body, r.Header.Get(webhook.SignatureHeader), s.WebhookSecret) == nil {
			deliveries.Add(1)
			first <- struct{}{}
		}
		_, _ = io.WriteString(w, "ok <thanks>")
	}))
	t.Cleanup(shop.Close)
	c := s.Client()
	ctx := context.Background()
	p, err := c.Pay(ctx, &vpay.PayRequest{Amount: 800, Phone: vpaytest.PhoneSuccess, CallbackURL: shop.URL})
	require.NoError(t, err)
	testutil.Recv(t, first, "the webhook")
	// Recorded once the shop's answer is read.
	require.Eventually(t, func() bool { _, ok := s.Webhook(p.TransactionID); return ok }, 10*time.Second, 5*time.Millisecond)
	l, err := c.CreateLink(ctx, &vpay.LinkRequest{Name: "Coffee", Amount: 1000, Type: vpay.LinkMultiple})
	require.NoError(t, err)
	card, err := c.Pay(ctx, &vpay.PayRequest{Amount: 800, Method: vpay.MethodAll})
	require.NoError(t, err)

	b := newBrowser(t)
	var all bytes.Buffer
	for _, u := range []string{s.DashboardURL(), s.DashboardURL() + "transactions/" + p.TransactionID, l.URL, card.PaymentURL,
		s.PhoneURL(vpaytest.PhoneSuccess), s.DashboardURL() + "phone/", s.DashboardURL() + "nope"} {
		_, html, _ := b.get(u)
		all.WriteString(html)
	}
	for _, secret := range []string{s.APIKey, s.WebhookSecret, s.APIUser} {
		assert.NotContains(t, all.String(), secret)
	}
	assert.Contains(t, all.String(), p.TransactionID)

	// The transaction's page shows the delivery: the merchant's status
	// code and the first bytes of its answer, escaped.
	_, html, _ := b.get(s.DashboardURL() + "transactions/" + p.TransactionID)
	assert.Contains(t, html, shop.URL)
	assert.Contains(t, html, `<td class="code">200</td>`)
	assert.Contains(t, html, "ok &lt;thanks&gt;")
	// A foreign site's form cannot make the sandbox send a webhook; the
	// page's own can.
	code, _, _ := b.post(s.DashboardURL()+"transactions/"+p.TransactionID+"/resend", url.Values{"csrf": {"guess"}})
	assert.Equal(t, http.StatusForbidden, code)
	code, _, _ = b.post(s.DashboardURL()+"transactions/"+p.TransactionID+"/resend", url.Values{"csrf": {csrfOf(t, html)}})
	assert.Equal(t, 200, code)
	require.Eventually(t, func() bool { return deliveries.Load() >= 2 }, 10*time.Second, 5*time.Millisecond, "the resend arrives")
	s.Close() // waits for any other delivery it started (Close cancels those still in flight)
	assert.EqualValues(t, 2, deliveries.Load(), "the first delivery and the one resend: the refused form sent nothing")
}

func TestPagesDoNotSpendTheRateLimit(t *testing.T) {
	s := vpaytest.NewServer(vpaytest.WithPlan(vpay.Plan{PerMinute: 2}))
	t.Cleanup(s.Close)
	b := newBrowser(t)
	for range 5 {
		code, _, _ := b.get(s.DashboardURL())
		require.Equal(t, 200, code)
	}
	_, err := s.Client().Status(context.Background(), "VP1")
	var e *vpay.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, 404, e.HTTPStatus, "the API's window is untouched by the pages")
	_, html, _ := b.get(s.DashboardURL())
	assert.Contains(t, html, `<p class="big" id="ratelimit">0 / 2</p>`, "the dashboard shows the window: /auth/ and the Status spent it")
}

func TestDeliveryRecordsShowTheMerchantsAnswer(t *testing.T) {
	s := vpaytest.NewServer(vpaytest.WithPaymentDelay(time.Millisecond), vpaytest.WithWebhookRetries(2, time.Millisecond))
	t.Cleanup(s.Close)
	var calls atomic.Int64
	shop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			http.Error(w, "database down", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(shop.Close)
	p, err := s.Client().Pay(context.Background(), &vpay.PayRequest{Amount: 800, Phone: vpaytest.PhoneSuccess, CallbackURL: shop.URL})
	require.NoError(t, err)
	require.Eventually(t, func() bool { _, ok := s.Webhook(p.TransactionID); return ok }, 10*time.Second, 5*time.Millisecond)
	_, html, _ := newBrowser(t).get(s.DashboardURL() + "transactions/" + p.TransactionID)
	assert.Regexp(t, `(?s)<td>1</td>.*<td class="code">503</td><td><code>database down\n</code>.*<td>2</td>.*<td class="code">200</td><td><code>ok</code>`, html)
}

// TestCardPaymentWithAPhoneIsPaidOnItsCheckout: a card payment may carry
// the payer's phone; that makes it no MoMo prompt. Its checkout offers the
// card form, and the phone page does not list it.
func TestCardPaymentWithAPhoneIsPaidOnItsCheckout(t *testing.T) {
	s := vpaytest.NewServer(vpaytest.WithManualPayer())
	t.Cleanup(s.Close)
	p, err := s.Client().Pay(context.Background(), &vpay.PayRequest{Amount: 900, Method: vpay.MethodCard, Phone: "0781234567"})
	require.NoError(t, err)
	b := newBrowser(t)
	_, html, _ := b.get(p.PaymentURL)
	assert.Contains(t, html, `id="card-form"`)
	assert.NotContains(t, html, `id="waiting"`)
	token := csrfOf(t, html)
	_, html, _ = b.get(s.PhoneURL("0781234567"))
	assert.NotContains(t, html, p.TransactionID)
	code, _, _ := b.post(s.DashboardURL()+"phone/0781234567/"+p.TransactionID+"/approve", url.Values{"csrf": {token}})
	assert.Equal(t, http.StatusNotFound, code, "the phone cannot answer a card payment")
}
