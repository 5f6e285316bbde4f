package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

// exchange is one request and its answer, as the doctor saw them.
type exchange struct {
	at       time.Time
	req      *http.Request
	reqBody  []byte
	resp     *http.Response // nil when no answer came
	respBody []byte
	err      error
	label    string // what it was, for the transcript ("webhook delivery", ...)
}

// specRequest is ex's request as if sent to the spec's server, with its
// body, ready for the validator.
func (ex *exchange) specRequest(base *url.URL) *http.Request {
	u := *ex.req.URL
	if base != nil {
		rel := strings.TrimPrefix(u.Path, strings.TrimSuffix(base.Path, "/"))
		su, _ := url.Parse(specServer + rel)
		su.RawQuery = u.RawQuery
		u = *su
	}
	r := ex.req.Clone(ex.req.Context())
	r.URL = &u
	r.Host = u.Host
	r.Body = io.NopCloser(bytes.NewReader(ex.reqBody))
	return r
}

// maxRecordedBody caps what the doctor keeps of a body, as the SDK does.
const maxRecordedBody = 1 << 20

// recorder is an http.RoundTripper that keeps every exchange the SDK makes.
type recorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	exs  []*exchange
}

// RoundTrip implements http.RoundTripper.
func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	ex := &exchange{at: time.Now(), req: req}
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		ex.reqBody = b
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
		ex.req = req
	}
	resp, err := r.next.RoundTrip(req)
	if err == nil {
		var b []byte
		b, err = io.ReadAll(io.LimitReader(resp.Body, maxRecordedBody))
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(b))
		ex.resp, ex.respBody = resp, b
	}
	ex.err = err
	r.add(ex)
	return resp, err
}

func (r *recorder) add(ex *exchange) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.exs = append(r.exs, ex)
}

// since returns the exchanges recorded from index i on.
func (r *recorder) since(i int) []*exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*exchange(nil), r.exs[min(i, len(r.exs)):]...)
}

// mark is the index the next exchange will have.
func (r *recorder) mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.exs)
}

// phonePattern matches Rwandan phone numbers as the API and people write
// them: 0781234567, 250781234567, +250 78 123 4567.
var phonePattern = regexp.MustCompile(`(\+?250[ -]?|\b0)7[0-9]([ -]?[0-9]){7}\b`)

// redactor removes the secrets of a run from the text of its transcript.
type redactor struct {
	secrets []string // the API key, the webhook secret, every token seen
}

// learn adds the tokens an answer carries.
func (d *redactor) learn(body []byte) {
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		return
	}
	for _, k := range []string{"access", "refresh", "access_token", "refresh_token", "token"} {
		if s, ok := m[k].(string); ok && s != "" {
			d.secrets = append(d.secrets, s)
		}
	}
}

func (d *redactor) text(s string) string {
	// Longest first, so a token containing another is replaced whole.
	sort.Slice(d.secrets, func(i, j int) bool { return len(d.secrets[i]) > len(d.secrets[j]) })
	for _, sec := range d.secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "[REDACTED]")
		}
	}
	return phonePattern.ReplaceAllString(s, "[PHONE]")
}

// redactedHeaders are never written, whatever their value.
var redactedHeaders = map[string]bool{"Authorization": true, "Apikey": true, "Cookie": true, "Set-Cookie": true}

// writeTranscript writes every exchange with the secrets and phone numbers
// removed.
func writeTranscript(w io.Writer, exs []*exchange, d *redactor) error {
	for _, ex := range exs {
		d.learn(ex.respBody)
	}
	var b strings.Builder
	for i, ex := range exs {
		fmt.Fprintf(&b, "### %d  %s", i+1, ex.at.UTC().Format(time.RFC3339Nano))
		if ex.label != "" {
			fmt.Fprintf(&b, "  (%s)", ex.label)
		}
		fmt.Fprintf(&b, "\n> %s %s\n", ex.req.Method, ex.req.URL.String())
		writeHeaders(&b, "> ", ex.req.Header)
		if len(ex.reqBody) > 0 {
			fmt.Fprintf(&b, ">\n%s\n", ex.reqBody)
		}
		switch {
		case ex.resp != nil:
			fmt.Fprintf(&b, "< %s\n", ex.resp.Status)
			writeHeaders(&b, "< ", ex.resp.Header)
			fmt.Fprintf(&b, "<\n%s\n", ex.respBody)
		case ex.err != nil:
			fmt.Fprintf(&b, "< no answer: %v\n", ex.err)
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, d.text(b.String()))
	return err
}

func writeHeaders(b *strings.Builder, prefix string, h http.Header) {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := strings.Join(h[k], ", ")
		if redactedHeaders[http.CanonicalHeaderKey(k)] {
			v = "[REDACTED]"
		}
		fmt.Fprintf(b, "%s%s: %s\n", prefix, k, v)
	}
}
