package vpaytest_test

import "os"

// fullTests reports whether the long tests run in full: in CI (CI=true)
// or when VPAY_FULL_TESTS=1. By default `go test ./...` runs their short
// versions, so that the whole core module's tests take seconds.
func fullTests() bool {
	return os.Getenv("CI") == "true" || os.Getenv("VPAY_FULL_TESTS") == "1"
}
