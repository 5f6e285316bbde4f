module github.com/vonsung/vpay-go/internal/modpack

// A CI tool, never imported: it may follow the newest toolchain.
go 1.26.0

require golang.org/x/mod v0.43.0
