module github.com/vonsung/vpay-go/cmd/vpay

go 1.25

require (
	github.com/spf13/cobra v1.10.2
	github.com/vonsung/vpay-go v0.2.0
	rsc.io/qr v0.2.0
)

require (
	github.com/davecgh/go-spew v1.1.1 // indirect
	github.com/pmezard/go-difflib v1.0.0 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
)

require (
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/spf13/pflag v1.0.9 // indirect
	github.com/stretchr/testify v1.11.1
	golang.org/x/sync v0.18.0 // indirect
	golang.org/x/time v0.14.0 // indirect
)
