# Tidal — build, test and demo on the embedded dev cluster.
SHELL      := /bin/bash
GO         ?= go
BIN        := $(CURDIR)/bin
# Every package runs under the race detector; the dev cluster is shared by all test binaries.
TESTFLAGS  ?= -race -timeout 30m
PKGS       ?= ./...
NODES      ?= 3

.PHONY: all build build-dev test test-unit demo bench generate vet fmt clean

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/...

build-dev:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/tidal-dev ./cmd/tidal-dev

# make test: build tidal-dev once, start one dev cluster, run every test against it, stop it.
test: build-dev
	@TIDAL_DEV=$(BIN)/tidal-dev NODES=$(NODES) bench/devcluster/with-cluster.sh $(GO) test $(TESTFLAGS) $(PKGS)

# Tests that need no cluster (handy while editing); packages that need one start their own.
test-unit:
	$(GO) test -short $(PKGS)

demo: build
	@TIDAL_BIN=$(BIN) bench/demo/demo.sh

vet:
	$(GO) vet $(PKGS)

fmt:
	gofmt -l -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN)

-include api/generate.mk
