# Postern: `make run` starts the demo, `make test` runs every test.
GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: build run test unit e2e vet fuzz bench compare clean install

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

# Postern beside a private Postfix (+ Dovecot SASL) and smtp-sink, same client,
# alternating runs (root; Debian's postfix and dovecot-core). A benchmark, not
# a test: make test does not run it. make compare COMPARE_ARGS='8 3' (seconds, rounds).
COMPARE_ARGS ?=
compare: build
	scripts/compare.sh $(COMPARE_ARGS)

# Installs the binary, a configuration file with every setting commented out
# (postern config-example; an existing one is kept), the systemd unit and
# its sysusers.d entry. PREFIX and DESTDIR as usual (packagers:
# make install PREFIX=/usr DESTDIR=$$pkgdir UNITDIR=/usr/lib/systemd/system
# SYSUSERSDIR=/usr/lib/sysusers.d).
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
SYSCONFDIR  ?= /etc
UNITDIR     ?= $(SYSCONFDIR)/systemd/system
SYSUSERSDIR ?= $(SYSCONFDIR)/sysusers.d
install: build
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SYSCONFDIR)/postern $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR)
	install -m 0755 bin/postern $(DESTDIR)$(BINDIR)/postern
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/postern/postern.toml ]; then \
	  echo "keeping $(DESTDIR)$(SYSCONFDIR)/postern/postern.toml; the current defaults are in postern.toml.example"; \
	  ./bin/postern config-example > $(DESTDIR)$(SYSCONFDIR)/postern/postern.toml.example; \
	else \
	  ./bin/postern config-example > $(DESTDIR)$(SYSCONFDIR)/postern/postern.toml; \
	  chmod 0644 $(DESTDIR)$(SYSCONFDIR)/postern/postern.toml; \
	fi
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' dist/postern.service.in > $(DESTDIR)$(UNITDIR)/postern.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/postern.service
	install -m 0644 dist/postern.sysusers $(DESTDIR)$(SYSUSERSDIR)/postern.conf
	@echo "Installed. Next: systemd-sysusers; systemctl daemon-reload; edit $(SYSCONFDIR)/postern/postern.toml (hostname); systemctl enable --now postern"

clean:
	rm -rf bin
