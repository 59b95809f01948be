# make bench: every scenario under bench/scenarios at full size on a fresh embedded dev cluster (or the one named
# by TIDAL_KUBECONFIG), results in bench/results/ (JSON, Markdown, PNG), and the combined table at the end.
#   make bench BENCH_SCENARIOS=bench/scenarios/burst.yaml
#   make bench-short                                  (each scenario's tiny sizes, a few minutes)
#   make bench BENCH_FLAGS="--compare-cmd 'bin/other-autoscaler --kubeconfig \$$KUBECONFIG'"
# node-scale-up and virtual-burst drive bin/tidal-node-autoscaler and bin/tidal-virtual-node as processes.
BENCH_SCENARIOS ?= $(sort $(wildcard bench/scenarios/*.yaml))
BENCH_FLAGS     ?=
BENCH_OUT       ?= bench/results

.PHONY: bench bench-short bench-bins

bench-bins: build-dev
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/tidal-bench ./cmd/tidal-node-autoscaler ./cmd/tidal-virtual-node

bench: bench-bins
	$(BIN)/tidal-bench run --tidal-dev $(BIN)/tidal-dev --out $(BENCH_OUT) \
		--node-autoscaler $(BIN)/tidal-node-autoscaler --virtual-node $(BIN)/tidal-virtual-node \
		$(BENCH_FLAGS) $(BENCH_SCENARIOS)

bench-short: BENCH_FLAGS += --short
bench-short: bench
