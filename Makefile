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

# Release identity: the image tag, the commit and its time (SOURCE_DATE_EPOCH makes images reproducible).
VERSION           ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT            ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
# Repository prefix of the image names in bin/images (what the chart pulls by default); make push
# REGISTRY=host/owner pushes the same images elsewhere.
IMAGE_REPO        ?= ghcr.io/tidalscale
# Platforms of every image index (empty: tidal-release's default, linux/amd64 and linux/arm64).
IMAGE_PLATFORMS   ?=
IMAGE_FLAGS        = --version=$(VERSION) --commit=$(COMMIT) --source-date-epoch=$(SOURCE_DATE_EPOCH) --registry=$(IMAGE_REPO) $(if $(IMAGE_PLATFORMS),--platforms=$(IMAGE_PLATFORMS),)

.PHONY: all build build-dev tidy-check test test-unit e2e demo bench generate docs chaos vet fmt clean images push release

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

build-dev:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/tidal-dev ./cmd/tidal-dev

# make test: build tidal-dev once, start one dev cluster, run every test against it, stop it. The bench
# scenarios that drive the node autoscaler and virtual node as processes, and the chart's one-poller test
# (operator + adapter), get their binaries too.
test: tidy-check build-dev
	$(GO) build -o $(BIN)/ ./cmd/tidal-node-autoscaler ./cmd/tidal-virtual-node ./cmd/tidal-operator ./cmd/tidal-metrics-adapter
	@TIDAL_DEV=$(BIN)/tidal-dev NODES=$(NODES) TIDAL_NODE_AUTOSCALER_BIN=$(BIN)/tidal-node-autoscaler \
		TIDAL_VIRTUAL_NODE_BIN=$(BIN)/tidal-virtual-node TIDAL_OPERATOR_BIN=$(BIN)/tidal-operator \
		TIDAL_METRICS_ADAPTER_BIN=$(BIN)/tidal-metrics-adapter internal/devcluster/with-cluster.sh $(GO) test $(TESTFLAGS) $(PKGS)

# make e2e: the images (this machine's platform only) run as real containers on the dev cluster's container node
# (tidal-dev up --container-node: containerd + runc, root), installed by the chart with the Helm SDK; a ScaledObject
# on Redis (127.0.0.1:6379) scales the demo worker from zero and back; helm uninstall leaves nothing behind.
E2E_PLATFORM ?= linux/$(shell $(GO) env GOARCH)
e2e: build-dev
	$(MAKE) images IMAGE_PLATFORMS=$(E2E_PLATFORM)
	TIDAL_DEV_BIN=$(BIN)/tidal-dev $(GO) test -tags e2e -count=1 -timeout 30m -v ./internal/e2e/ $(E2E_FLAGS)

# go.mod and go.sum must be what `go mod tidy` makes them (direct dependencies not marked // indirect).
tidy-check:
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }

# Tests that need no cluster (handy while editing); packages that need one start their own.
test-unit:
	$(GO) test -short $(PKGS)

# make demo [DEMO_SHORT=1] [DEMO_CONTAINERS=1]: the dev cluster, Tidal all-in-one, a Redis work queue and a burst,
# with a live timeline and a plot in bench/results/. DEMO_CONTAINERS=1 runs the workers as real containers of the
# demo worker image (built for this machine's platform) on a container node: root, containerd and runc.
demo: build-dev
	$(GO) build -o $(BIN)/tidal-bench ./cmd/tidal-bench
	$(if $(DEMO_CONTAINERS),$(MAKE) images IMAGE_PLATFORMS=$(E2E_PLATFORM),)
	@$(BIN)/tidal-bench demo --tidal-dev $(BIN)/tidal-dev $(if $(DEMO_SHORT),--short,) $(if $(DEMO_CONTAINERS),--containers,)

# make images: one OCI image index (linux/amd64, linux/arm64) per deployable from static binaries, built with
# go-containerregistry (no container runtime): bin/images/<name>/ (OCI layout), bin/images/<name>.tar
# (oci-archive for `ctr images import`), bin/images/images.json (refs, digests, sizes).
images:
	$(GO) run ./cmd/tidal-release images $(IMAGE_FLAGS) --out=$(BIN)/images --build-dir=$(BIN)/build

# make push REGISTRY=host/owner: build the images and push each index with remote.WriteIndex.
push: images
	@test -n "$(REGISTRY)" || { echo "make push needs REGISTRY=host/owner"; exit 1; }
	$(GO) run ./cmd/tidal-release push --registry=$(REGISTRY) --out=$(BIN)/images

# make release VERSION=v0.2.0: the images, then bin/release/: the chart package (appVersion = image tag), the
# oci-archives, a CycloneDX SBOM of the binaries and SHA256SUMS.
release:
	@[[ "$(VERSION)" =~ ^v?[0-9]+\.[0-9]+\.[0-9]+ ]] || { echo "make release needs VERSION=vX.Y.Z (got $(VERSION))"; exit 1; }
	$(GO) run ./cmd/tidal-release release $(IMAGE_FLAGS) --out=$(BIN)/images --build-dir=$(BIN)/build --release-out=$(BIN)/release

# make chaos [CHAOS_RUNS=5]: every fault of internal/chaos against a fresh dev cluster, CHAOS_RUNS times each, with
# the table written to bench/results/chaos.md (make test runs each fault once).
CHAOS_RUNS ?= 5
chaos: build-dev
	$(GO) build -o $(BIN)/ ./cmd/tidal-operator ./cmd/tidal-metrics-adapter ./cmd/tidal-node-autoscaler ./cmd/tidal-virtual-node
	@mkdir -p bench/results
	@TIDAL_DEV=$(BIN)/tidal-dev NODES=$(NODES) TIDAL_OPERATOR_BIN=$(BIN)/tidal-operator \
		TIDAL_METRICS_ADAPTER_BIN=$(BIN)/tidal-metrics-adapter TIDAL_NODE_AUTOSCALER_BIN=$(BIN)/tidal-node-autoscaler \
		TIDAL_VIRTUAL_NODE_BIN=$(BIN)/tidal-virtual-node internal/devcluster/with-cluster.sh \
		$(GO) test ./internal/chaos/ -run TestChaos -v -timeout 60m -chaos.runs=$(CHAOS_RUNS) -chaos.report=$(CURDIR)/bench/results/chaos.md

# make docs: docs/scalers/<type>.md from each scaler's package documentation and struct tags, and docs/auth.md
# (internal/scalerdocs; its test fails when the pages are stale).
docs:
	$(GO) run ./internal/scalerdocs/gen --out docs/scalers

vet:
	$(GO) vet $(PKGS)

fmt:
	gofmt -l -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN)

-include api/generate.mk
-include bench/bench.mk
