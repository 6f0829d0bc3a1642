# goslo: the two commands are `make demo` and `make test`.
SHELL   := /bin/bash
GO      ?= go
GOFLAGS ?=
export CGO_ENABLED := 1

# The repository holds three modules: the core (.), the command (cmd/goslo)
# and the Prometheus adapter (extra/gosloprom); go.work joins them, so that
# ./... below covers all three (GOWORK must not be off).
# Packages other than the interop suite, which `interop` runs on its own.
# ./... stays inside the module of the current directory, even in the go.work workspace: the
# command's and the Prometheus adapter's modules are named too.
PKGS      = ./... ./cmd/goslo/... ./extra/gosloprom/...
UNIT_PKGS = $(shell $(GO) list $(PKGS) | grep -v /interop)

.PHONY: all demo test deps deps-test vet lint lean unit interop docs-check fuzz bench bench-rabbit clean

all: test

## demo: run the main job in one process on the dummy matchmaker (zmq+dummy://; no Redis, no
## Python). Installs libzmq first when it is missing (apt-get as root; deps.sh --demo).
demo:
	./scripts/deps.sh --demo
	$(GO) run ./cmd/goslo demo

## deps: install what is missing (apt when root) and build the tox environments.
deps:
	./scripts/deps.sh

## test: deps, the deps script's own test, staticcheck, go vet, the lean-core check, the
## race-detected unit tests, then the interop suite.
test: deps deps-test lint vet lean unit interop docs-check

## deps-test: deps.sh's decisions against fake apt-get, pkg-config, systemctl (changes nothing).
deps-test:
	./scripts/deps-test.sh

vet:
	$(GO) vet $(PKGS)

## lint: staticcheck, pinned in tools/go.mod (a module of its own, so the root go.mod stays
## lean; outside go.work, hence GOWORK=off), built into .bin/ (a no-op rebuild from the build
## cache when nothing changed).
STATICCHECK = .bin/staticcheck
lint:
	GOWORK=off $(GO) build -C tools -o ../$(STATICCHECK) honnef.co/go/tools/cmd/staticcheck
	$(STATICCHECK) $(PKGS)

## lean: a consumer module importing only github.com/goslo/goslo has no Prometheus or protobuf
## in its module graph and builds no test-only module (scripts/lean-check.sh).
lean:
	./scripts/lean-check.sh

unit:
	$(GO) test -race -count=1 $(UNIT_PKGS)

## interop: the suite against the real Python oslo.messaging (never skipped in CI).
interop:
	$(GO) test -race -count=1 -v ./interop/

## docs-check: render every mermaid diagram of README.md and docs/ in headless Chromium.
docs-check:
	node scripts/mermaid-check/check.mjs

## fuzz: a short run of every fuzz target (FUZZTIME=10s each by default).
fuzz:
	./scripts/fuzz.sh

## bench: the Go benchmarks, then goslo against the raw zmq echo across processes.
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
	./scripts/bench-compare.sh
	./scripts/bench-proxy.sh

## bench-rabbit: on a private rabbitmq-server, goslo's rabbit driver (when built in), the raw
## amqp091-go echo and the Python 18.3.1 driver (DURATION seconds per measure, default 5).
bench-rabbit:
	./scripts/bench-rabbit.sh

clean:
	rm -rf .tox .bin
