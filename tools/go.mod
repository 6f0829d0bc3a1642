// The developer tools of `make lint`, in a module of their own so that the
// root go.mod (what a goslo user downloads) stays lean. staticcheck v0.8.1
// is release 2026.2.1 (tag in the module proxy's origin), built for Go 1.26.
// The Makefile builds it into .bin/ (gitignored).
module github.com/goslo/goslo/tools

go 1.26.0

tool honnef.co/go/tools/cmd/staticcheck

require (
	github.com/BurntSushi/toml v1.4.1-0.20240526193622-a339e1f7089c // indirect
	golang.org/x/exp/typeparams v0.0.0-20231108232855-2478ac86f678 // indirect
	golang.org/x/mod v0.35.0 // indirect
	golang.org/x/sync v0.20.0 // indirect
	golang.org/x/tools v0.44.1-0.20260420230617-19499e7caabc // indirect
	honnef.co/go/tools v0.8.1 // indirect
)
