package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/internal/testutil"
	"github.com/vonsung/vpay-go/vpaytest"
	"github.com/vonsung/vpay-go/webhook"
)

// chromium finds Debian's Chromium: skipped without it, a failure under CI.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (apt-get install chromium); CI must run the browser tests")
	}
	t.Skip("chromium is not installed: apt-get install chromium")
	return ""
}

// browse starts a headless Chromium of its own for one test.
func browse(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.DisableGPU,
		// The machine has no network beyond loopback: nothing of
		// Chromium's own traffic may be tried.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.WindowSize(1280, 900),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root otherwise
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	require.NoError(t, chromedp.Do(ctx), "Chromium starts")
	return ctx
}

// shop is a merchant: a webhook endpoint that verifies with the sandbox's
// secret (webhook.Handler) and a thank-you page for redirects.
type shop struct {
	*httptest.Server
	events chan *vpay.Event
	posts  atomic.Int64 // every webhook POST, duplicates included
}

func newShop(t *testing.T, secret func() string) *shop {
	sh := &shop{events: make(chan *vpay.Event, 16)}
	mux := http.NewServeMux()
	mux.HandleFunc("/thanks", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "<!doctype html><title>Thanks</title><h1 id=thanks>Thank you for your order</h1>")
	})
	mux.HandleFunc("/webhooks/vpay", func(w http.ResponseWriter, r *http.Request) {
		sh.posts.Add(1)
		webhook.Handler(secret(), func(_ context.Context, ev *vpay.Event) error {
			sh.events <- ev
			return nil
		}).ServeHTTP(w, r)
	})
	sh.Server = httptest.NewServer(mux)
	t.Cleanup(sh.Close)
	return sh
}

// screenshot saves the page to $VPAY_SCREENSHOTS/name when that is set
// as PNG (how docs/ gets its pictures).
func screenshot(t *testing.T, ctx context.Context, name string) {
	dir := os.Getenv("VPAY_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), png, 0o644))
}

func location(t *testing.T, ctx context.Context) *url.URL {
	loc, err := chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	u, err := url.Parse(loc)
	require.NoError(t, err)
	return u
}

// TestCardCheckoutLandsOnTheRedirectURL: a payer opens a payment link, pays
// by card on the checkout page and lands on the shop's redirect URL; the
// shop's endpoint verifies the webhook.
func TestCardCheckoutLandsOnTheRedirectURL(t *testing.T) {
	var s *vpaytest.Server
	sh := newShop(t, func() string { return s.WebhookSecret })
	s = vpaytest.NewServer(vpaytest.WithWebhookURL(sh.URL + "/webhooks/vpay"))
	t.Cleanup(s.Close)
	l, err := s.Client().CreateLink(context.Background(), &vpay.LinkRequest{
		Name: "Kigali coffee, 1 kg", Amount: 12500, Type: vpay.LinkMultiple,
		Description: "Single-origin beans from Huye", RedirectURL: sh.URL + "/thanks",
	})
	require.NoError(t, err)

	ctx := browse(t)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(l.URL),
		chromedp.Click(chromedp.CSS("#continue")),
		chromedp.WaitVisible(chromedp.CSS("#card")),
		chromedp.SendKeys(chromedp.CSS("#card"), "4242 4242 4242 4242"),
		chromedp.SendKeys(chromedp.CSS(`input[name="expiry"]`), "12/34"),
		chromedp.SendKeys(chromedp.CSS(`input[name="cvc"]`), "123"),
	))
	screenshot(t, ctx, "checkout.png")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("#pay-card")),
		chromedp.WaitVisible(chromedp.CSS("#thanks")),
	))
	heading, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#thanks")))
	require.NoError(t, err)
	assert.Equal(t, "Thank you for your order", heading)
	at := location(t, ctx)
	assert.Equal(t, "/thanks", at.Path)
	assert.Equal(t, "successful", at.Query().Get("status"))

	ev := testutil.Recv(t, sh.events, "the verified webhook")
	assert.Equal(t, at.Query().Get("transaction_id"), ev.Transaction.TransactionID)
	assert.Equal(t, vpay.StatusSuccessful, ev.Transaction.Status)
	assert.Equal(t, int64(12500), ev.Transaction.Amount)
}

// TestDeclinedCard: a card payment made with Pay under the manual payer,
// declined on its checkout page.
func TestDeclinedCard(t *testing.T) {
	s := vpaytest.NewServer(vpaytest.WithManualPayer())
	t.Cleanup(s.Close)
	c := s.Client()
	p, err := c.Pay(context.Background(), &vpay.PayRequest{Amount: 4800, Method: vpay.MethodCard, Description: "Order 77"})
	require.NoError(t, err)

	ctx := browse(t)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(p.PaymentURL),
		chromedp.WaitVisible(chromedp.CSS("#card")),
		chromedp.SendKeys(chromedp.CSS("#card"), "4000 0000 0000 9995"),
		chromedp.Click(chromedp.CSS("#pay-card")),
		chromedp.WaitVisible(chromedp.CSS("#result")),
	))
	result, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#result")))
	require.NoError(t, err)
	assert.Contains(t, result, "Payment failed")
	assert.Contains(t, result, "insufficient funds")
	tx, err := c.Status(context.Background(), p.TransactionID)
	require.NoError(t, err)
	assert.Equal(t, vpay.StatusFailed, tx.Status)
	assert.Equal(t, vpay.CodeInsufficientFunds, tx.FailureCode)
}

// TestPayWhatYouWantLink: the payer types the amount into the link's page.
func TestPayWhatYouWantLink(t *testing.T) {
	var s *vpaytest.Server
	sh := newShop(t, func() string { return s.WebhookSecret })
	s = vpaytest.NewServer()
	t.Cleanup(s.Close)
	l, err := s.Client().CreateLink(context.Background(), &vpay.LinkRequest{Name: "Support the choir", Type: vpay.LinkOneOff, RedirectURL: sh.URL + "/thanks"})
	require.NoError(t, err)

	ctx := browse(t)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(l.URL),
		chromedp.WaitVisible(chromedp.CSS("#amount-input")),
		chromedp.SendKeys(chromedp.CSS("#amount-input"), "2750"),
		chromedp.Click(chromedp.CSS("#continue")),
		chromedp.WaitVisible(chromedp.CSS("#card")),
	))
	amount, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#amount")))
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#card"), vpaytest.CardSuccess),
		chromedp.Click(chromedp.CSS("#pay-card")),
		chromedp.WaitVisible(chromedp.CSS("#thanks")),
	))
	assert.Equal(t, "2,750 RWF", amount)
	id := location(t, ctx).Query().Get("transaction_id")
	tx, err := s.Client().Status(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, int64(2750), tx.Amount)
	assert.Equal(t, vpay.StatusSuccessful, tx.Status)

	// One-off: the link is closed now.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(l.URL), chromedp.WaitVisible(chromedp.CSS("#closed"))))
}

// TestMoMoPromptApprovedOnThePhone: under the manual payer a MoMo prompt
// waits until someone approves it on the phone page.
func TestMoMoPromptApprovedOnThePhone(t *testing.T) {
	s := vpaytest.NewServer(vpaytest.WithManualPayer())
	t.Cleanup(s.Close)
	c := s.Client(vpay.WithPollInterval(20 * time.Millisecond))
	p, err := c.Pay(context.Background(), &vpay.PayRequest{Amount: 1500, Phone: "0788123456", Description: "Sambaza top-up"})
	require.NoError(t, err)

	done := make(chan *vpay.Transaction, 1)
	go func() {
		tx, _ := c.Wait(context.Background(), p.TransactionID)
		done <- tx
	}()
	ctx := browse(t)
	sel := `.prompt[data-id="` + p.TransactionID + `"]`
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(s.PhoneURL("0788123456")),
		chromedp.WaitVisible(chromedp.CSS(sel)),
	))
	prompt, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	require.NoError(t, err)
	assert.Contains(t, prompt, "1,500 RWF")
	assert.Contains(t, prompt, "Sambaza top-up")
	tx, err := c.Status(context.Background(), p.TransactionID)
	require.NoError(t, err)
	require.Equal(t, vpay.StatusPending, tx.Status, "nobody answered yet")

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(sel+" button.approve")),
		chromedp.WaitVisible(chromedp.CSS("#no-prompts")),
	))
	tx = testutil.Recv(t, done, "Wait's result")
	require.NotNil(t, tx)
	assert.Equal(t, vpay.StatusSuccessful, tx.Status)
}

// TestResendFromTheDashboard: the Resend button delivers the webhook to
// the merchant's endpoint again.
func TestResendFromTheDashboard(t *testing.T) {
	var s *vpaytest.Server
	sh := newShop(t, func() string { return s.WebhookSecret })
	s = vpaytest.NewServer(vpaytest.WithPaymentDelay(20 * time.Millisecond))
	t.Cleanup(s.Close)
	c := s.Client()
	for i, phone := range []string{vpaytest.PhoneSuccess, vpaytest.PhoneInsufficientFunds} {
		_, err := c.Pay(context.Background(), &vpay.PayRequest{Amount: int64(1000 * (i + 1)), Phone: phone, CallbackURL: sh.URL + "/webhooks/vpay", Reference: "order-" + string(rune('A'+i))})
		require.NoError(t, err)
		testutil.Recv(t, sh.events, "the first webhook")
	}
	p, err := c.Pay(context.Background(), &vpay.PayRequest{Amount: 1500, Method: vpay.MethodCard, CallbackURL: sh.URL + "/webhooks/vpay", Reference: "order-C"})
	require.NoError(t, err)
	ev := testutil.Recv(t, sh.events, "the card payment's webhook")
	require.Equal(t, p.TransactionID, ev.Transaction.TransactionID)
	require.Eventually(t, func() bool { _, ok := s.Webhook(p.TransactionID); return ok }, 5*time.Second, 10*time.Millisecond)
	before := sh.posts.Load()

	ctx := browse(t)
	row := `tr[data-id="` + p.TransactionID + `"]`
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(s.DashboardURL()),
		chromedp.WaitVisible(chromedp.CSS(row)),
	))
	screenshot(t, ctx, "dashboard.png")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(row+" button.resend"))))
	require.Eventually(t, func() bool { return sh.posts.Load() == before+1 }, 10*time.Second, 10*time.Millisecond,
		"the resend reached the merchant's endpoint")
	// The dashboard the form went back to shows it (live: it reloads when
	// the delivery is recorded).
	require.Eventually(t, func() bool {
		text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(row)))
		return err == nil && strings.Contains(text, "2 sent, last 200")
	}, 10*time.Second, 50*time.Millisecond)

	// The transaction's page lists both deliveries with the shop's 200.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(s.DashboardURL()+"transactions/"+p.TransactionID),
		chromedp.WaitVisible(chromedp.CSS("#deliveries")),
	))
	deliveries, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#deliveries tbody")))
	require.NoError(t, err)
	assert.Equal(t, 2, strings.Count(deliveries, sh.URL+"/webhooks/vpay"), deliveries)
}

// TestDashboardIsLive: a payment made while the dashboard is open shows up
// on it, settled, without anyone reloading the page.
func TestDashboardIsLive(t *testing.T) {
	s := vpaytest.NewServer(vpaytest.WithPaymentDelay(50 * time.Millisecond))
	t.Cleanup(s.Close)
	ctx := browse(t)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(s.DashboardURL()), chromedp.WaitVisible(chromedp.CSS("h1"))))
	p, err := s.Client().Pay(context.Background(), &vpay.PayRequest{Amount: 1200, Phone: vpaytest.PhoneSuccess})
	require.NoError(t, err)
	row := `tr[data-id="` + p.TransactionID + `"]`
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(row))))
	require.Eventually(t, func() bool {
		text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(row+" .status")))
		return err == nil && text == "successful"
	}, 10*time.Second, 50*time.Millisecond)
}

// TestLinkOpenedByItsLANAddressIsPaid: a sandbox bound to all interfaces
// gives links on the machine's network address, as a phone on the same
// network would open them from a QR code; the browser opens the link there
// and pays it.
func TestLinkOpenedByItsLANAddressIsPaid(t *testing.T) {
	s, err := vpaytest.Start(vpaytest.WithAddr("0.0.0.0:0"), vpaytest.WithMerchant("Huye Coffee"))
	require.NoError(t, err)
	t.Cleanup(s.Close)
	l, err := s.Client().CreateLink(context.Background(), &vpay.LinkRequest{Name: "Beans, 500 g", Amount: 6500, Type: vpay.LinkMultiple})
	require.NoError(t, err)
	u, err := url.Parse(l.URL)
	require.NoError(t, err)
	ip := net.ParseIP(u.Hostname())
	require.NotNil(t, ip, l.URL)
	require.False(t, ip.IsUnspecified(), "a link on 0.0.0.0 opens nowhere: %s", l.URL)
	if !testutil.LANAddress() {
		t.Skip("this machine has no non-loopback address: the LAN URL cannot be told from the local one")
	}
	require.False(t, ip.IsLoopback(), "a phone cannot open a loopback address: %s", l.URL)

	ctx := browse(t)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(l.URL),
		chromedp.Click(chromedp.CSS("#continue")),
		chromedp.WaitVisible(chromedp.CSS("#card")),
	))
	at := location(t, ctx)
	assert.Equal(t, u.Host, at.Host, "the checkout stays on the LAN address")
	merchant, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#merchant")))
	require.NoError(t, err)
	assert.Equal(t, "Huye Coffee", merchant)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#card"), vpaytest.CardSuccess),
		chromedp.Click(chromedp.CSS("#pay-card")),
		chromedp.WaitVisible(chromedp.CSS("#result")),
	))
	result, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#result")))
	require.NoError(t, err)
	assert.Contains(t, result, "Payment successful")
	txs := s.Transactions()
	require.Len(t, txs, 1)
	assert.Equal(t, vpay.StatusSuccessful, txs[0].Status)
	assert.Equal(t, int64(6500), txs[0].Amount)
}
