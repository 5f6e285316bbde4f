// Package openapi holds V-Pay's API as vpay-go reads it: an OpenAPI 3.1
// description, written by hand from V-Pay's documentation, with every guess
// marked by an x-vpay-reading extension (the documentation's words, the
// SDK's assumption, and what would show it wrong).
//
// It is the one contract the SDK, its emulator (vpaytest), the README and
// the `vpay doctor` command are checked against. Merchants can validate
// their own test traffic with it, using any OpenAPI 3.1 validator:
//
//	doc, err := libopenapi.NewDocument(openapi.Spec)
//
// The package has no dependencies.
package openapi

import _ "embed"

// Spec is openapi/vpay.yaml, the OpenAPI 3.1 description of the V-Pay API
// as vpay-go reads it. Treat it as read-only: it is shared by every user
// of the package in the process.
//
//go:embed vpay.yaml
var Spec []byte
