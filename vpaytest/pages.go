package vpaytest

import (
	"crypto/subtle"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vonsung/vpay-go"
)

// The emulator's pages: the dashboard, each transaction with its webhook
// deliveries, checkout pages, payment link pages and the payer's phone.
// Server-rendered with html/template (every value escaped), every form
// carries the server's token, and no page shows the API key or the
// webhook secret.

//go:embed web
var webFiles embed.FS

// pages are parsed once; each server clones them with its own merchant
// name behind the "merchant" function.
var pages = template.Must(template.New("").Funcs(template.FuncMap{"merchant": func() string { return DefaultMerchant }}).ParseFS(webFiles, "web/*.html"))

// templates returns the pages with this server's merchant name.
func (s *Server) templates() *template.Template {
	s.tmplOnce.Do(func() {
		name := s.cfg.merchant
		s.tmpl = template.Must(pages.Clone()).Funcs(template.FuncMap{"merchant": func() string { return name }})
	})
	return s.tmpl
}

// The sandbox's test cards.
const (
	CardSuccess  = "4242424242424242"
	CardDeclined = "4000000000009995"
)

// maxDashboardRows caps the transactions the dashboard lists, newest first.
const maxDashboardRows = 200

func (s *Server) pageRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", s.pageDashboard)
	mux.HandleFunc("GET /events", s.pageEvents)
	mux.HandleFunc("GET /static/{file}", pageStatic)
	mux.HandleFunc("GET /transactions/{id}", s.pageTransaction)
	mux.HandleFunc("POST /transactions/{id}/resend", s.guard(s.postResend))
	mux.HandleFunc("GET /checkout/{token}", s.pageCheckout)
	mux.HandleFunc("POST /checkout/{token}", s.guard(s.postCheckout))
	mux.HandleFunc("GET /pay/{slug}", s.pageLink)
	mux.HandleFunc("POST /pay/{slug}", s.guard(s.postLink))
	mux.HandleFunc("GET /phone/{$}", s.pagePhoneIndex)
	mux.HandleFunc("GET /phone/go", s.pagePhoneGo)
	mux.HandleFunc("GET /phone/{number}", s.pagePhone)
	mux.HandleFunc("POST /phone/{number}/{id}/{action}", s.guard(s.postPhone))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.pageError(w, http.StatusNotFound, "Not found", "There is no page at "+r.URL.Path+".")
	})
}

// page is what every template gets.
type page struct {
	Title string
	Nav   bool // the dashboard's navigation
	Live  bool // reload on changes
	CSRF  string
	Error string
}

func (s *Server) render(w http.ResponseWriter, status int, name string, data any) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// Scripts and styles only from the emulator's own files; no framing.
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := s.templates().ExecuteTemplate(w, name, data); err != nil {
		s.cfg.logger.Error("vpaytest: page", "template", name, "error", err.Error())
	}
}

func (s *Server) pageError(w http.ResponseWriter, status int, title, msg string) {
	s.render(w, status, "error.html", page{Title: title, Nav: true, Error: msg})
}

func pageStatic(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	var ctype string
	switch name {
	case "style.css":
		ctype = "text/css; charset=utf-8"
	case "app.js":
		ctype = "text/javascript; charset=utf-8"
	default:
		http.NotFound(w, r)
		return
	}
	b, err := webFiles.ReadFile("web/" + name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(b)
}

// guard refuses a form posted without the server's token: another site
// cannot make a visitor's browser settle payments or send webhooks.
func (s *Server) guard(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
		if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(s.csrf)) != 1 {
			s.pageError(w, http.StatusForbidden, "Refused", "This form is not from this sandbox (its token is missing or wrong). Reload the page and try again.")
			return
		}
		h(w, r)
	}
}

// maxLiveStreams caps the live-update streams open at once: each holds a
// connection and its buffers (3,000 took the emulator from 9.5 MB to
// 90 MB). A page past the cap still works; it just does not reload by
// itself.
const maxLiveStreams = 100

// pageEvents streams a server-sent event whenever something changes, at
// most a few times a second, for the live pages.
func (s *Server) pageEvents(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	if s.streams.Add(1) > maxLiveStreams {
		s.streams.Add(-1)
		w.Header().Set("Retry-After", "10")
		http.Error(w, "too many live pages open", http.StatusServiceUnavailable)
		return
	}
	defer s.streams.Add(-1)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = fmt.Fprint(w, ": live\n\n")
	fl.Flush()
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-r.Context().Done():
			return
		case <-s.ctx.Done():
			return
		}
		if _, err := fmt.Fprint(w, "data: change\n\n"); err != nil {
			return
		}
		fl.Flush()
		select { // coalesce a burst of changes into one reload
		case <-time.After(250 * time.Millisecond):
		case <-r.Context().Done():
			return
		case <-s.ctx.Done():
			return
		}
	}
}

// txView is a transaction as the pages show it.
type txView struct {
	ID, Reference, Method, Status, Message string
	Amount, Created, Webhook               string
	Description, Merchant, Phone, PhoneURL string
	PaymentURL                             string
	CanResend, MoMo, Prompted              bool
	Deliveries                             []deliveryView
}

type deliveryView struct {
	Attempt       int
	At, URL, Code string
	Answer        string
}

func rwf(n int64, currency string) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if currency == "" {
		currency = "RWF"
	}
	return b.String() + " " + currency
}

// viewOf describes tx. The caller holds s.mu.
func (s *Server) viewOf(tx *transaction, withDeliveries bool) txView {
	v := txView{
		ID: tx.ID, Reference: tx.Reference, Method: tx.Method, Status: tx.Status, Message: tx.Message,
		Amount: rwf(tx.Amount, tx.Currency), Created: tx.Created.Format("2006-01-02 15:04:05"),
		Description: tx.Description, Merchant: s.cfg.merchant, Phone: tx.Phone, PaymentURL: tx.PaymentURL,
		CanResend: len(s.webhookTargets(tx)) > 0, MoMo: tx.Method == "all", Prompted: tx.prompted,
	}
	if tx.Phone != "" {
		v.PhoneURL = s.PhoneURL(tx.Phone)
	}
	switch n := len(tx.deliveries); {
	case n > 0:
		last := tx.deliveries[n-1]
		v.Webhook = fmt.Sprintf("%d sent, last %s", n, codeText(last.Status))
	case tx.hookLost > 0:
		v.Webhook = "lost"
	case !v.CanResend:
		v.Webhook = "no URL"
	default:
		v.Webhook = "-"
	}
	if withDeliveries {
		for _, d := range tx.deliveries {
			v.Deliveries = append(v.Deliveries, deliveryView{Attempt: d.Attempt, At: d.At.Format("15:04:05.000"), URL: d.URL, Code: codeText(d.Status), Answer: d.Answer})
		}
	}
	return v
}

func codeText(status int) string {
	if status == 0 {
		return "no answer"
	}
	return strconv.Itoa(status)
}

type rateView struct {
	Limit, Remaining int
	Reset            string
}

type linkView struct {
	Name, Type, Amount, URL, QR string
	Paid                        int
}

func (s *Server) pageDashboard(w http.ResponseWriter, r *http.Request) {
	data := struct {
		page
		Rate         rateView
		WebhookURL   string
		Manual       bool
		Delay        time.Duration
		Transactions []txView
		Links        []linkView
	}{page: page{Title: "Dashboard", Nav: true, Live: true, CSRF: s.csrf}, WebhookURL: s.cfg.webhookURL, Manual: s.cfg.manualPayer, Delay: s.cfg.delay}
	s.mu.Lock()
	rs := s.window.peek(time.Now(), s.cfg.plan, s.cfg.window)
	data.Rate = rateView{Limit: rs.limit, Remaining: rs.remaining, Reset: rs.reset.Format("15:04:05")}
	for i := len(s.order) - 1; i >= 0 && len(data.Transactions) < maxDashboardRows; i-- {
		if tx := s.txs[s.order[i]]; tx != nil {
			data.Transactions = append(data.Transactions, s.viewOf(tx, false))
		}
	}
	links := make([]*link, 0, len(s.links))
	for _, l := range s.links {
		links = append(links, l)
	}
	slices.SortFunc(links, func(a, b *link) int { return b.Created.Compare(a.Created) })
	for _, l := range links {
		amount := "payer chooses"
		if l.Amount > 0 {
			amount = rwf(l.Amount, "")
		}
		data.Links = append(data.Links, linkView{Name: l.Name, Type: l.Type, Amount: amount, URL: l.URL, QR: l.QR, Paid: l.paid})
	}
	s.mu.Unlock()
	s.render(w, http.StatusOK, "dashboard.html", data)
}

func (s *Server) pageTransaction(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	tx := s.txs[r.PathValue("id")]
	var v txView
	if tx != nil {
		v = s.viewOf(tx, true)
	}
	s.mu.Unlock()
	if tx == nil {
		s.pageError(w, http.StatusNotFound, "No such transaction", "The sandbox holds no transaction "+r.PathValue("id")+".")
		return
	}
	s.render(w, http.StatusOK, "transaction.html", struct {
		page
		Tx txView
	}{page{Title: "Transaction " + v.ID, Nav: true, Live: true, CSRF: s.csrf}, v})
}

func (s *Server) postResend(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.Resend(id); err != nil {
		s.pageError(w, http.StatusNotFound, "Cannot resend", err.Error())
		return
	}
	back := "/"
	if ref := r.PostFormValue("back"); ref == "transaction" {
		back = "/transactions/" + url.PathEscape(id)
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// checkoutData is the checkout page's.
type checkoutData struct {
	page
	Tx       txView
	Continue string // back to the shop: the link's redirect URL
	Retry    string // a new payment through the same link, after a failure
}

// txByToken returns the transaction of a checkout token. The caller holds
// s.mu.
func (s *Server) txByToken(token string) *transaction {
	return s.txs[s.checkouts[token]]
}

func (s *Server) pageCheckout(w http.ResponseWriter, r *http.Request) {
	s.showCheckout(w, r, http.StatusOK, "")
}

// showCheckout renders a checkout page, or sends a payer whose link
// payment succeeded on to the link's redirect URL.
func (s *Server) showCheckout(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.mu.Lock()
	tx := s.txByToken(r.PathValue("token"))
	var v txView
	var next, retry string
	if tx != nil {
		v = s.viewOf(tx, false)
		if l := s.links[tx.LinkID]; l != nil && tx.Status != "pending" {
			next = redirectTo(l.RedirectURL, tx)
			if tx.Status != "successful" && l.open() {
				// A declined card is no dead end: the link takes a new
				// payment, and the shop hears of this one.
				retry = "/pay/" + url.PathEscape(l.Slug)
			}
		}
	}
	s.mu.Unlock()
	if tx == nil {
		s.pageError(w, http.StatusNotFound, "No such checkout", "This checkout does not exist (or the sandbox restarted).")
		return
	}
	if next != "" && msg == "" && v.Status == "successful" {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	s.render(w, status, "checkout.html", checkoutData{page: page{Title: "Pay " + v.Amount, Live: v.Status == "pending", CSRF: s.csrf, Error: msg}, Tx: v, Continue: next, Retry: retry})
}

// redirectTo is a link's redirect URL with the payment's id, reference and
// status added to its query; "" when the link has none (or not an http(s)
// one).
func redirectTo(raw string, tx *transaction) string {
	u, err := url.Parse(raw)
	if raw == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return ""
	}
	q := u.Query()
	q.Set("transaction_id", tx.ID)
	q.Set("reference", tx.Reference)
	q.Set("status", tx.Status)
	u.RawQuery = q.Encode()
	return u.String()
}

func (s *Server) postCheckout(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	s.mu.Lock()
	tx := s.txByToken(token)
	var id, method, status string
	if tx != nil {
		id, method, status = tx.ID, tx.Method, tx.Status
	}
	s.mu.Unlock()
	switch {
	case tx == nil:
		s.pageError(w, http.StatusNotFound, "No such checkout", "This checkout does not exist (or the sandbox restarted).")
		return
	case status != "pending":
		s.showCheckout(w, r, http.StatusConflict, "This payment is "+status+" already.")
		return
	}
	switch r.PostFormValue("with") {
	case "card":
		card := strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, r.PostFormValue("card"))
		switch card {
		case CardSuccess:
			s.settle(id, outcomeSuccess)
		case CardDeclined:
			s.settle(id, outcomeCardDeclined)
		default:
			s.showCheckout(w, r, http.StatusUnprocessableEntity, "Use a test card: 4242 4242 4242 4242 succeeds, 4000 0000 0000 9995 is declined.")
			return
		}
	case "momo":
		if method != "all" {
			s.showCheckout(w, r, http.StatusUnprocessableEntity, "This payment takes cards only.")
			return
		}
		phone, network, err := vpay.NormalizePhone(r.PostFormValue("phone"))
		if err != nil || network != vpay.NetworkMTN {
			s.showCheckout(w, r, http.StatusUnprocessableEntity, "Enter an MTN MoMo number (078 or 079), e.g. 0780000000.")
			return
		}
		s.mu.Lock()
		if tx.Status == "pending" && !tx.prompted {
			tx.Phone, tx.prompted = phone, true
			// The prompt now waits for the phone, as a MoMo payment does.
			tx.awaitsPayer = s.cfg.manualPayer
			if !tx.awaitsPayer {
				s.schedule(tx)
			}
			s.touch()
		}
		s.mu.Unlock()
	default:
		s.showCheckout(w, r, http.StatusBadRequest, "Choose how to pay.")
		return
	}
	http.Redirect(w, r, "/checkout/"+url.PathEscape(token), http.StatusSeeOther)
}

type linkData struct {
	page
	Link     *link
	Merchant string
	Amount   string
	QR       string
	Closed   bool
}

func (s *Server) linkPage(r *http.Request) (linkData, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.slugs[r.PathValue("slug")]
	if l == nil {
		return linkData{}, false
	}
	cp := *l
	return linkData{page: page{Title: l.Name, CSRF: s.csrf}, Link: &cp, Merchant: s.cfg.merchant,
		Amount: rwf(l.Amount, ""), QR: l.QR, Closed: !l.open()}, true
}

func (s *Server) pageLink(w http.ResponseWriter, r *http.Request) {
	d, ok := s.linkPage(r)
	if !ok {
		s.pageError(w, http.StatusNotFound, "No such payment link", "This payment link does not exist.")
		return
	}
	s.render(w, http.StatusOK, "link.html", d)
}

// postLink starts a payment through a link and sends the payer to its
// checkout. The payer is on the page: it waits for them (and times out
// like a prompt), whatever WithManualPayer says.
func (s *Server) postLink(w http.ResponseWriter, r *http.Request) {
	d, ok := s.linkPage(r)
	if !ok {
		s.pageError(w, http.StatusNotFound, "No such payment link", "This payment link does not exist.")
		return
	}
	if d.Closed {
		d.Error = "This link takes no more payments."
		s.render(w, http.StatusGone, "link.html", d)
		return
	}
	amount := d.Link.Amount
	if amount == 0 {
		a, err := strconv.ParseInt(strings.TrimSpace(r.PostFormValue("amount")), 10, 64)
		if err != nil || a < vpay.MinAmount {
			d.Error = fmt.Sprintf("Enter a whole amount of at least %d RWF.", vpay.MinAmount)
			s.render(w, http.StatusUnprocessableEntity, "link.html", d)
			return
		}
		amount = a
	}
	s.mu.Lock()
	l := s.links[d.Link.ID]
	l.seq++
	tx := &transaction{
		Reference:   fmt.Sprintf("%s-%d", l.ID, l.seq),
		Method:      "all",
		Currency:    "RWF",
		Description: l.Name,
		Amount:      amount,
		Message:     "Waiting for the payer on the checkout page.",
		LinkID:      l.ID,
		awaitsPayer: true,
	}
	s.add(tx)
	s.schedule(tx)
	s.mu.Unlock()
	http.Redirect(w, r, "/checkout/"+tx.checkout, http.StatusSeeOther)
}

type phoneData struct {
	page
	Phone   string
	Manual  bool
	Prompts []txView
	Waiting []string
}

func (s *Server) pagePhoneIndex(w http.ResponseWriter, r *http.Request) {
	d := phoneData{page: page{Title: "Phone", Nav: true, Live: true, CSRF: s.csrf}, Manual: s.cfg.manualPayer}
	s.mu.Lock()
	for _, id := range s.order {
		if tx := s.txs[id]; s.waitsOnPhone(tx, "") && !slices.Contains(d.Waiting, tx.Phone) {
			d.Waiting = append(d.Waiting, tx.Phone)
		}
	}
	s.mu.Unlock()
	s.render(w, http.StatusOK, "phone.html", d)
}

func (s *Server) pagePhoneGo(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/phone/"+url.PathEscape(strings.TrimSpace(r.URL.Query().Get("number"))), http.StatusSeeOther)
}

// pagePhone lists the prompts waiting for a number, oldest first.
func (s *Server) pagePhone(w http.ResponseWriter, r *http.Request) {
	phone, _, err := vpay.NormalizePhone(r.PathValue("number"))
	if err != nil {
		s.pageError(w, http.StatusNotFound, "Not a phone number", "Open the page of a Rwandan number, e.g. /phone/0780000000.")
		return
	}
	if phone != r.PathValue("number") {
		http.Redirect(w, r, "/phone/"+phone, http.StatusSeeOther)
		return
	}
	d := phoneData{page: page{Title: "Phone " + phone, Nav: true, Live: true, CSRF: s.csrf}, Phone: phone, Manual: s.cfg.manualPayer}
	s.mu.Lock()
	for _, id := range s.order {
		if tx := s.txs[id]; s.waitsOnPhone(tx, phone) {
			d.Prompts = append(d.Prompts, s.viewOf(tx, false))
		}
	}
	s.mu.Unlock()
	s.render(w, http.StatusOK, "phone.html", d)
}

// waitsOnPhone reports whether tx is a MoMo prompt waiting for a person
// on phone (on any phone, for ""). The caller holds s.mu.
func (s *Server) waitsOnPhone(tx *transaction, phone string) bool {
	return tx != nil && tx.prompted && tx.awaitsPayer && tx.Status == "pending" && (phone == "" || tx.Phone == phone)
}

func (s *Server) postPhone(w http.ResponseWriter, r *http.Request) {
	number, id := r.PathValue("number"), r.PathValue("id")
	s.mu.Lock()
	tx := s.txs[id]
	mine := s.waitsOnPhone(tx, number)
	s.mu.Unlock()
	if !mine {
		s.pageError(w, http.StatusNotFound, "No such prompt", "No prompt "+id+" for "+number+".")
		return
	}
	var err error
	switch r.PathValue("action") {
	case "approve":
		err = s.Approve(id)
	case "decline":
		err = s.Decline(id)
	default:
		s.pageError(w, http.StatusNotFound, "No such action", "Approve or decline.")
		return
	}
	if err != nil {
		s.pageError(w, http.StatusConflict, "Too late", err.Error())
		return
	}
	http.Redirect(w, r, "/phone/"+url.PathEscape(number), http.StatusSeeOther)
}
