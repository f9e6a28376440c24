# sseconfd: make build | test | demo | bench | lint | install
GO      ?= go
BIN     ?= bin
PREFIX  ?= /usr/local
DESTDIR ?=
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: build test demo bench lint install clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/sseconfd ./cmd/configserver
	$(GO) build -o $(BIN)/legacyapp ./agent/testdata/legacyapp

test:
	$(GO) test -count=1 -timeout 10m ./...

demo: build
	$(GO) run ./demo -bin $(BIN)

bench: build
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./...

lint:
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)/etc/sseconfd/templates $(DESTDIR)/lib/systemd/system
	install -m 0755 $(BIN)/sseconfd $(DESTDIR)$(PREFIX)/bin/sseconfd
	install -m 0644 templates/*.tmpl $(DESTDIR)/etc/sseconfd/templates/
	install -m 0644 systemd/sseconfd.toml $(DESTDIR)/etc/sseconfd/sseconfd.toml.example
	sed 's|/usr/local/bin/sseconfd|$(PREFIX)/bin/sseconfd|' systemd/sseconfd.service > $(DESTDIR)/lib/systemd/system/sseconfd.service

clean:
	rm -rf $(BIN)
