# Tidal — build, test and demo on the embedded dev cluster.
SHELL      := /bin/bash
GO         ?= go
BIN        := $(CURDIR)/bin
# Every package runs under the race detector; the dev cluster is shared by all test binaries.
TESTFLAGS  ?= -race -timeout 30m
PKGS       ?= ./...
NODES      ?= 3
# Version and commit linked into every binary (printed by --version).
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT     ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS    := -X github.com/tidalscale/tidal/internal/version.Version=$(VERSION) -X github.com/tidalscale/tidal/internal/version.Commit=$(COMMIT)

.PHONY: all build build-dev test test-unit demo bench generate vet fmt clean

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

build-dev:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/tidal-dev ./cmd/tidal-dev

# make test: build tidal-dev once, start one dev cluster, run every test against it, stop it. The bench
# scenarios that drive the node autoscaler and virtual node as processes get their binaries too.
test: build-dev
	$(GO) build -o $(BIN)/ ./cmd/tidal-node-autoscaler ./cmd/tidal-virtual-node
	@TIDAL_DEV=$(BIN)/tidal-dev NODES=$(NODES) TIDAL_NODE_AUTOSCALER_BIN=$(BIN)/tidal-node-autoscaler \
		TIDAL_VIRTUAL_NODE_BIN=$(BIN)/tidal-virtual-node internal/devcluster/with-cluster.sh $(GO) test $(TESTFLAGS) $(PKGS)

# Tests that need no cluster (handy while editing); packages that need one start their own.
test-unit:
	$(GO) test -short $(PKGS)

# make demo [DEMO_SHORT=1]: the dev cluster, Tidal all-in-one, a Redis work queue and a burst, with a live
# timeline and a plot in bench/results/.
demo: build-dev
	$(GO) build -o $(BIN)/tidal-bench ./cmd/tidal-bench
	@$(BIN)/tidal-bench demo --tidal-dev $(BIN)/tidal-dev $(if $(DEMO_SHORT),--short,)

vet:
	$(GO) vet $(PKGS)

fmt:
	gofmt -l -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN)

-include api/generate.mk
-include bench/bench.mk
