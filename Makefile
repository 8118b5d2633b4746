# Postern: `make run` starts the demo, `make test` runs every test.
GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: build run test unit e2e vet fuzz bench clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/postern ./cmd/postern

# make run ARGS='--submission 127.0.0.1:2588 --admin off ...' passes flags to serve --demo.
ARGS ?=
run: build
	./bin/postern serve --demo $(ARGS)

# Every test: formatting, vet, unit tests (with the race detector), the
# end-to-end tests against the real binary, and a short run of each fuzz target.
test: vet
	$(GO) test -race -count=1 ./internal/... ./cmd/...
	$(GO) test -count=1 -timeout 15m ./e2e/
	$(MAKE) fuzz FUZZTIME=50000x

vet:
	@unformatted="$$(gofmt -l cmd internal e2e)"; if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...

# Each fuzz target for FUZZTIME (longer runs: make fuzz FUZZTIME=5m). make test
# gives a count, not a duration: with Go 1.26 a duration can end in a spurious
# "context deadline exceeded" failure (go.dev/issue/75804, fixed in Go 1.27).
FUZZTIME ?= 30s
fuzz:
	@set -e; for pkg in $$($(GO) list ./internal/...); do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$target"; \
	    $(GO) test -run='^$$' -fuzz="^$$target$$" -fuzztime=$(FUZZTIME) $$pkg; \
	  done; \
	done

bench: build
	$(GO) test -run='^$$' -bench=. -benchmem ./internal/...

clean:
	rm -rf bin
