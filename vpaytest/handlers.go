package vpaytest

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"rsc.io/qr"
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/auth/", s.handleAuth)
	mux.HandleFunc("POST /api/pay/", s.authenticated(s.handlePay))
	mux.HandleFunc("GET /api/transaction/status/", s.authenticated(s.handleStatus))
	mux.HandleFunc("POST /api/payment-links/", s.authenticated(s.handleCreateLink))
	mux.HandleFunc("GET /api/payment-links/{id}/qr", s.handleQR)
	s.pageRoutes(mux)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "No such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return s.hostGuard(s.middleware(mux))
}

// hostGuard answers 421 to a request whose Host the emulator does not
// serve: a page on another site that rebinds its DNS name to this address
// would otherwise read the pages (their form token included) and drive
// them.
func (s *Server) hostGuard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.allowedHost(r.Host) {
			http.Error(w, "vpaytest: this sandbox does not serve the host "+strconv.Quote(r.Host)+"; use its own address, or name this one with WithPublicURL (-public-url)", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// apiPaths are the paths whose requests Requests counts.
var apiPaths = map[string]bool{"/auth/": true, "/pay/": true, "/transaction/status/": true, "/payment-links/": true}

// middleware counts an API request, applies an injected fault, enforces the
// rate limit and puts the rate-limit headers on every API answer. The
// pages (the dashboard, checkouts, the phone) are not the API: none of it
// applies to them.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path, isAPI := strings.CutPrefix(r.URL.Path, "/api")
		if !isAPI || path == "" || path[0] != '/' {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		s.mu.Lock()
		if apiPaths[path] {
			// Only the API's own paths: a scanner trying a million paths
			// must not grow a map by a million keys.
			s.requests[path]++
		}
		f := s.takeFault(path)
		rl, allowed := s.window.take(start, s.cfg.plan, s.cfg.window)
		s.mu.Unlock()
		rl.set(w.Header())
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		w = sw
		defer func() {
			s.cfg.logger.Debug("vpaytest: request", slog.String("method", r.Method), slog.String("path", r.URL.Path),
				slog.Int("status", sw.status), slog.Duration("duration", time.Since(start)))
		}()
		if f != nil && f.apply(w, r, next) {
			return
		}
		if !allowed {
			s.throttled.Add(1)
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int(time.Until(rl.reset).Seconds()+0.999))))
			writeError(w, http.StatusTooManyRequests, "RATE_LIMITED", "Too many requests. See rate limits.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) handleAuth(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("apiUser") != s.APIUser || r.Header.Get("apiKey") != s.APIKey {
		writeError(w, http.StatusUnauthorized, "INVALID_KEY", "API key is missing, expired, or does not match the environment.")
		return
	}
	access, refresh := "eyJ"+randomHex(24), "eyJ"+randomHex(24)
	s.mu.Lock()
	s.issueToken(access, time.Now())
	s.mu.Unlock()
	s.authCalls.Add(1)
	writeJSON(w, http.StatusOK, map[string]any{
		"access":     access,
		"refresh":    refresh,
		"mode":       "sandbox",
		"expires_in": fmt.Sprintf("%.1f seconds", s.cfg.lifetime.Seconds()),
	})
}

// authenticated requires the three headers the documentation sends with
// every API call: a valid bearer token, apiUser and apiKey.
func (s *Server) authenticated(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		s.mu.Lock()
		exp, known := s.tokens[tok]
		s.mu.Unlock()
		if !ok || !known || time.Now().After(exp) ||
			r.Header.Get("apiUser") != s.APIUser || r.Header.Get("apiKey") != s.APIKey {
			writeError(w, http.StatusUnauthorized, "INVALID_KEY", "API key is missing, expired, or does not match the environment.")
			return
		}
		h(w, r)
	}
}

type payBody struct {
	Amount        json.Number       `json:"amount"`
	Currency      string            `json:"currency"`
	PaymentMethod string            `json:"payment_method"`
	PayerPhone    string            `json:"payer_phone"`
	ExternalID    string            `json:"external_id"`
	PayeeMessage  string            `json:"payee_message"`
	PayerName     string            `json:"payer_name"`
	PayerEmail    string            `json:"payer_email"`
	SendReceipt   *bool             `json:"send_receipt"`
	CallbackURL   string            `json:"callback_url"`
	Metadata      map[string]string `json:"metadata"`
}

var localPhone = regexp.MustCompile(`^07[2389][0-9]{7}$`)

func (s *Server) handlePay(w http.ResponseWriter, r *http.Request) {
	var b payBody
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.UseNumber()
	if err := dec.Decode(&b); err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_REQUEST", "Body is not valid JSON.")
		return
	}
	amount, ok := parseAmount(b.Amount, false)
	if !ok {
		writeInvalidAmount(w)
		return
	}
	method := b.PaymentMethod
	switch method {
	case "mtnrw", "card", "all":
	default:
		writeError(w, http.StatusBadRequest, "INVALID_REQUEST", "payment_method must be mtnrw, card or all.")
		return
	}
	if method == "mtnrw" || b.PayerPhone != "" {
		if !localPhone.MatchString(b.PayerPhone) || (method == "mtnrw" && !strings.HasPrefix(b.PayerPhone, "078") && !strings.HasPrefix(b.PayerPhone, "079")) {
			writeError(w, http.StatusBadRequest, "INVALID_PHONE", "The phone number provided is not a valid MTN Rwanda number.")
			return
		}
	}
	if b.ExternalID == "" {
		writeError(w, http.StatusBadRequest, "INVALID_REQUEST", "external_id is required.")
		return
	}
	if utf8.RuneCountInString(b.PayeeMessage) > 80 {
		writeError(w, http.StatusBadRequest, "INVALID_REQUEST", "payee_message is longer than 80 characters.")
		return
	}
	if b.PayerPhone == PhoneNetworkError {
		writeError(w, http.StatusBadGateway, "NETWORK_ERROR", "The mobile money network returned an error. Retry.")
		return
	}
	if b.Currency == "" {
		b.Currency = "RWF"
	}
	tx, dup := s.createTransaction(&b, amount)
	if dup {
		writeError(w, http.StatusConflict, "DUPLICATE_REFERENCE", "The reference ID has already been used in another transaction.")
		return
	}
	if s.cfg.synchronousPay {
		select {
		case <-time.After(s.cfg.delay):
		case <-r.Context().Done():
			return
		}
		s.complete(tx.ID)
		view := s.view(tx.ID)
		// A failure with a code is an error body at 200, as documented; a
		// cancelled payment has none and is answered as the transaction.
		if code, _ := view["failure_code"].(string); view["status"] == "FAILED" && code != "" {
			writeError(w, http.StatusOK, code, view["message"].(string))
			return
		}
		writeJSON(w, http.StatusOK, view)
		return
	}
	resp := map[string]any{
		"status":         "PENNDING", // sic: the documentation's spelling
		"message":        "Prompt sent. Waiting for the customer to confirm.",
		"transaction_id": tx.ID,
		"merchant":       s.cfg.merchant,
		"created_at":     tx.Created.UTC().Format(time.RFC3339),
	}
	if tx.PaymentURL != "" {
		resp["message"] = "Payment link created. Redirect the customer to payment_url."
		resp["payment_url"] = tx.PaymentURL
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("transaction_id")
	view := s.view(id)
	if view == nil {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "No transaction "+strconv.Quote(id)+".")
		return
	}
	writeJSON(w, http.StatusOK, view)
}

type link struct {
	ID, Slug, Name, Type, Description, RedirectURL string
	URL, QR                                        string // its page, and a QR code of it
	Amount                                         int64  // 0: the payer chooses
	Created                                        time.Time
	paid                                           int // successful payments through it
	seq                                            int // payments started through it
}

// open reports whether the link still takes payments: a one-off link
// stops after its first success. The caller holds s.mu.
func (l *link) open() bool { return l.Type != "one_off" || l.paid == 0 }

func (s *Server) handleCreateLink(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Name        string      `json:"name"`
		Amount      json.Number `json:"amount"`
		Type        string      `json:"type"`
		Description string      `json:"description"`
		RedirectURL string      `json:"redirect_url"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.UseNumber()
	if err := dec.Decode(&b); err != nil || strings.TrimSpace(b.Name) == "" {
		writeError(w, http.StatusBadRequest, "INVALID_REQUEST", "name is required.")
		return
	}
	amount, ok := parseAmount(b.Amount, true)
	if !ok {
		writeInvalidAmount(w)
		return
	}
	if b.Type != "one_off" && b.Type != "multiple" {
		writeError(w, http.StatusBadRequest, "INVALID_REQUEST", "type must be one_off or multiple.")
		return
	}
	l := &link{ID: "lnk_" + randomHex(3), Name: b.Name, Type: b.Type, Description: b.Description, RedirectURL: b.RedirectURL, Amount: amount, Created: time.Now()}
	s.mu.Lock()
	// Two links may share a name: each gets its own page.
	l.Slug = slugify(b.Name)
	if l.Slug == "" {
		l.Slug = "link"
	}
	if s.slugs[l.Slug] != nil {
		l.Slug += "-" + strings.TrimPrefix(l.ID, "lnk_")
	}
	l.URL = s.root() + "pay/" + l.Slug
	l.QR = s.URL + "payment-links/" + l.ID + "/qr"
	s.links[l.ID] = l
	s.slugs[l.Slug] = l
	s.touch()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"status":  "success",
		"link_id": l.ID,
		"slug":    l.Slug,
		"url":     l.URL,
		"qr_code": l.QR,
		"amount":  l.Amount,
		"type":    l.Type,
		"active":  true,
	})
}

// handleQR serves a QR code of the link's page.
func (s *Server) handleQR(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	l, ok := s.links[r.PathValue("id")]
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "No such payment link.")
		return
	}
	code, err := qr.Encode(l.URL, qr.M)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "INTERNAL", "Cannot encode the QR code.")
		return
	}
	code.Scale = 8
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "public, max-age=86400")
	_, _ = w.Write(code.PNG())
}

// parseAmount applies V-Pay's rule: whole RWF, at least 100; a payment
// link may also leave it out or give 0 (the payer chooses).
func parseAmount(n json.Number, zeroAllowed bool) (int64, bool) {
	if n == "" {
		return 0, zeroAllowed
	}
	a, err := strconv.ParseInt(n.String(), 10, 64)
	return a, err == nil && (a >= 100 || zeroAllowed && a == 0)
}

func writeInvalidAmount(w http.ResponseWriter) {
	writeError(w, http.StatusBadRequest, "INVALID_AMOUNT", "Amount is below the minimum (100 RWF) or non-integer.")
}

func slugify(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String(), "-") + "-" + randomHex(2)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"status": "error", "error_code": code, "message": msg})
}

// statusWriter remembers the status code written, for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (faults hijack it).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
