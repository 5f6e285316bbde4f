package openapi_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/vonsung/vpay-go/openapi"
)

// The embedded bytes are the file in the repository, so a merchant's copy
// and the one the tests check cannot differ.
func TestSpecIsTheFile(t *testing.T) {
	b, err := os.ReadFile("vpay.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, openapi.Spec) {
		t.Fatal("openapi.Spec differs from openapi/vpay.yaml")
	}
	if !bytes.HasPrefix(openapi.Spec, []byte("openapi: 3.1.")) {
		t.Fatalf("the spec does not start with its OpenAPI 3.1 version: %.40q", openapi.Spec)
	}
}
