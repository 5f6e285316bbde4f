module github.com/vonsung/vpay-go

go 1.25

require (
	github.com/jarcoal/httpmock v1.4.1
	github.com/stretchr/testify v1.11.1
	golang.org/x/sync v0.18.0
	golang.org/x/time v0.14.0
	rsc.io/qr v0.2.0
)

require (
	github.com/davecgh/go-spew v1.1.1 // indirect
	github.com/pmezard/go-difflib v1.0.0 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
)
