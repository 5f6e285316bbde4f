package vpaytest

import (
	"bytes"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Drop says when an injected fault closes the connection.
type Drop int

// When to drop the connection.
const (
	// NoDrop answers normally.
	NoDrop Drop = iota
	// DropBefore closes the connection without processing the request: the
	// client cannot know that nothing happened.
	DropBefore
	// DropAfter processes the request (a payment is created) and closes
	// the connection instead of answering.
	DropAfter
	// ResetAfter processes the request (a payment is created) and resets
	// the connection (a TCP RST) instead of answering: the client, which
	// wrote its whole request, reads "connection reset by peer".
	ResetAfter
)

// Fault is a failure injected into the next requests to a path. Exactly one
// of Status, Drop, Delay and Truncate is expected.
type Fault struct {
	// Status answers with this HTTP status and a matching error body,
	// without processing the request: 502 is NETWORK_ERROR, 429 carries
	// Retry-After: 1.
	Status int
	// Drop closes the connection before or after processing.
	Drop Drop
	// Delay processes the request, then waits this long before answering.
	Delay time.Duration
	// Truncate processes the request and cuts the answer's body in half.
	Truncate bool
	// Count is how many requests the fault applies to (0 means 1).
	Count int
}

// Inject makes the next f.Count requests to path ("/pay/", "/auth/",
// "/transaction/status/", ...) fail as f says. Faults on one path apply in
// the order they were injected.
func (s *Server) Inject(path string, f Fault) {
	if f.Count <= 0 {
		f.Count = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[path] = append(s.faults[path], &f)
}

// takeFault returns the fault for the next request to path, if any. The
// caller holds the lock.
func (s *Server) takeFault(path string) *Fault {
	q := s.faults[path]
	if len(q) == 0 {
		return nil
	}
	f := q[0]
	f.Count--
	if f.Count == 0 {
		s.faults[path] = q[1:]
	}
	return f
}

// apply serves r under the fault and reports whether it did.
func (f *Fault) apply(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
	switch {
	case f.Status != 0:
		code, msg := "SERVER_ERROR", http.StatusText(f.Status)
		switch f.Status {
		case http.StatusBadGateway:
			code, msg = "NETWORK_ERROR", "The mobile money network returned an error. Retry."
		case http.StatusTooManyRequests:
			code = "RATE_LIMITED"
			w.Header().Set("Retry-After", "1")
			w.Header().Set("X-RateLimit-Remaining", "0")
			w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10))
		case http.StatusUnauthorized:
			code = "INVALID_KEY"
		}
		writeError(w, f.Status, code, msg)
		return true
	case f.Drop == DropBefore:
		// ErrAbortHandler makes net/http close the connection silently.
		panic(http.ErrAbortHandler)
	case f.Drop == ResetAfter:
		next.ServeHTTP(&recorder{header: http.Header{}, status: http.StatusOK}, r)
		reset(w)
		return true
	case f.Drop == DropAfter, f.Truncate, f.Delay > 0:
		rec := &recorder{header: http.Header{}, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		if f.Drop == DropAfter {
			panic(http.ErrAbortHandler)
		}
		if f.Delay > 0 {
			select {
			case <-time.After(f.Delay):
			case <-r.Context().Done():
				return true
			}
		}
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		body := rec.body.Bytes()
		if f.Truncate {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(rec.status)
			_, _ = w.Write(body[:len(body)/2])
			if fl, ok := w.(http.Flusher); ok {
				fl.Flush()
			}
			panic(http.ErrAbortHandler)
		}
		w.WriteHeader(rec.status)
		_, _ = w.Write(body)
		return true
	}
	return false
}

// reset closes the request's connection with a TCP RST: with SO_LINGER at
// zero, close discards what is unsent and resets the connection.
func reset(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // HTTP/2: no connection of its own to reset
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// recorder buffers a handler's answer so a fault can alter it.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(status int)      { r.status = status }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
