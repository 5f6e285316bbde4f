package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"strings"

	"github.com/vonsung/vpay-go"
)

// SignatureHeader is the header V-Pay signs its webhooks in.
const SignatureHeader = "X-VPay-Signature"

// Errors of Verify and ConstructEvent. Each is returned as is (compare with
// errors.Is); none says anything about the expected signature.
var (
	// ErrNoSecret: the secret is empty, which would make any signature
	// computable by anyone.
	ErrNoSecret = errors.New("webhook: empty webhook secret")
	// ErrNotSigned: the signature header is missing or empty.
	ErrNotSigned = errors.New("webhook: missing " + SignatureHeader)
	// ErrMalformedSignature: the signature is not 64 hex digits.
	ErrMalformedSignature = errors.New("webhook: malformed signature")
	// ErrNoValidSignature: the signature does not match the payload under
	// the secret (or any of the secrets).
	ErrNoValidSignature = errors.New("webhook: signature does not match")
)

// Sign returns the signature V-Pay sends for payload: the hex HMAC-SHA256 of
// the raw body under secret. Use it to sign test payloads.
func Sign(payload []byte, secret string) string {
	return hex.EncodeToString(mac(payload, secret))
}

// Verify checks that signature (the X-VPay-Signature header) is the HMAC of
// the raw payload under secret, in constant time. Hex case does not matter.
// Verify the bytes exactly as received: JSON that was parsed and encoded
// again does not verify.
func Verify(payload []byte, signature, secret string) error {
	return verifyAny(payload, signature, []string{secret})
}

func mac(payload []byte, secret string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(payload)
	return m.Sum(nil)
}

// macSet is one HMAC per secret, keyed once and reset for each payload:
// Handler keeps them in a pool, as keying an HMAC costs more than running
// it on a webhook's few hundred bytes.
type macSet struct {
	macs []hash.Hash
	sum  [sha256.Size]byte
}

func newMACSet(secrets []string) *macSet {
	m := &macSet{macs: make([]hash.Hash, len(secrets))}
	for i, s := range secrets {
		m.macs[i] = hmac.New(sha256.New, []byte(s))
	}
	return m
}

func verifyAny(payload []byte, signature string, secrets []string) error {
	sig, err := decodeSignature(signature)
	if err != nil {
		return err
	}
	if len(secrets) == 0 {
		return ErrNoSecret
	}
	for _, secret := range secrets {
		if secret == "" {
			return ErrNoSecret
		}
	}
	return newMACSet(secrets).verify(payload, &sig)
}

// verify reports whether sig is payload's HMAC under any of m's secrets.
func (m *macSet) verify(payload []byte, sig *[sha256.Size]byte) error {
	matched := false
	for _, h := range m.macs {
		// Every secret is tried, whatever matched, so the time taken does
		// not say which one did.
		h.Reset()
		h.Write(payload)
		if hmac.Equal(h.Sum(m.sum[:0]), sig[:]) {
			matched = true
		}
	}
	if !matched {
		return ErrNoValidSignature
	}
	return nil
}

func decodeSignature(s string) ([sha256.Size]byte, error) {
	var sig [sha256.Size]byte
	s = strings.TrimSpace(s)
	if s == "" {
		return sig, ErrNotSigned
	}
	// Tolerate the "sha256=" prefix other gateways use.
	if len(s) > 7 && strings.EqualFold(s[:7], "sha256=") {
		s = s[7:]
	}
	if len(s) != 2*sha256.Size {
		return sig, ErrMalformedSignature
	}
	for i := range sig {
		hi, okHi := fromHex(s[2*i])
		lo, okLo := fromHex(s[2*i+1])
		if !okHi || !okLo {
			return sig, ErrMalformedSignature
		}
		sig[i] = hi<<4 | lo
	}
	return sig, nil
}

// fromHex is a hex digit's value, in either case: encoding/hex's rule,
// without the copy of the header that hex.Decode needs.
func fromHex(c byte) (byte, bool) {
	if '0' <= c && c <= '9' {
		return c - '0', true
	}
	if 'a' <= c && c <= 'f' {
		return c - 'a' + 10, true
	}
	if 'A' <= c && c <= 'F' {
		return c - 'A' + 10, true
	}
	return 0, false
}

// ConstructEvent verifies payload's signature and then parses it. The event
// type comes from the payload's "event" field or, without one, from its
// status; an unknown type is delivered, and Event.Raw keeps every field.
func ConstructEvent(payload []byte, signature, secret string) (*vpay.Event, error) {
	if err := Verify(payload, signature, secret); err != nil {
		return nil, err
	}
	return vpay.ParseEvent(payload)
}
