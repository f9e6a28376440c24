# sseconfd: make build | test | demo | bench | lint | install
GO      ?= go
BIN     ?= bin
PREFIX  ?= /usr/local
DESTDIR ?=
# A system prefix puts the config in /etc and the unit where systemd looks
# for it; any other prefix (a trial install) keeps everything under it.
ifneq ($(filter /usr /usr/local,$(PREFIX)),)
SYSCONFDIR    ?= /etc
LOCALSTATEDIR ?= /var
UNITDIR       ?= /etc/systemd/system
else
SYSCONFDIR    ?= $(PREFIX)/etc
LOCALSTATEDIR ?= $(PREFIX)/var
UNITDIR       ?= $(PREFIX)/lib/systemd/system
endif
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION) -X main.defaultConfig=$(SYSCONFDIR)/sseconfd/sseconfd.toml

SHELL   := /bin/bash

.PHONY: build test demo bench lint install clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/sseconfd ./cmd/configserver
	$(GO) build -o $(BIN)/legacyapp ./agent/testdata/legacyapp

# Every test; testsummary lists each skipped test with its reason (nginx
# absent, not root) and the whole output of each failure.
test:
	set -o pipefail; $(GO) test -count=1 -timeout 15m -json ./... | $(GO) run ./internal/testsummary

demo: build
	$(GO) run ./demo -bin $(BIN)

# Builds its own binaries into a temp dir; prints a table, writes bench/results.json.
bench:
	$(GO) run ./bench/run -out bench/results.json

lint:
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

# install: the binary, the systemd unit, the example config (also as the
# config when there is none) and the example templates (those not there yet).
install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(SYSCONFDIR)/sseconfd/templates $(DESTDIR)$(UNITDIR)
	install -m 0755 $(BIN)/sseconfd $(DESTDIR)$(PREFIX)/bin/sseconfd
	for f in templates/*.tmpl; do \
		test -e $(DESTDIR)$(SYSCONFDIR)/sseconfd/$$f || install -m 0644 $$f $(DESTDIR)$(SYSCONFDIR)/sseconfd/templates/; \
	done
	sed -e 's|/etc/sseconfd/|$(SYSCONFDIR)/sseconfd/|g' -e 's|/var/lib/sseconfd/|$(LOCALSTATEDIR)/lib/sseconfd/|g' \
		systemd/sseconfd.toml > $(DESTDIR)$(SYSCONFDIR)/sseconfd/sseconfd.toml.example
	test -e $(DESTDIR)$(SYSCONFDIR)/sseconfd/sseconfd.toml || \
		install -m 0644 $(DESTDIR)$(SYSCONFDIR)/sseconfd/sseconfd.toml.example $(DESTDIR)$(SYSCONFDIR)/sseconfd/sseconfd.toml
	sed -e 's|/usr/local/bin/sseconfd|$(PREFIX)/bin/sseconfd|g' -e 's|/etc/sseconfd/|$(SYSCONFDIR)/sseconfd/|g' \
		systemd/sseconfd.service > $(DESTDIR)$(UNITDIR)/sseconfd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/sseconfd.service

clean:
	rm -rf $(BIN)
