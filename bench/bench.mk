# make bench: every scenario under bench/scenarios at full size on a fresh embedded dev cluster (or the one named
# by TIDAL_KUBECONFIG), results in bench/results/ (JSON, Markdown, PNG), and the combined table at the end.
#   make bench BENCH_SCENARIOS=bench/scenarios/burst.yaml
#   make bench-short                                  (each scenario's tiny sizes, a few minutes)
#   make bench BENCH_FLAGS="--compare-cmd 'bin/other-autoscaler --kubeconfig \$$KUBECONFIG'"
# node-scale-up and virtual-burst drive bin/tidal-node-autoscaler and bin/tidal-virtual-node as processes, fleet
# (fleet-30000, soak-10000) bin/tidal-operator.
#   make bench-compare BENCH_RESULTS="bench/results/a.json ..."   (fails when a p99 rose > 20 % over bench/baseline.json)
# Each scenario first waits (up to 3 min) for the 1-minute load average to fall to BENCH_QUIET_LOAD; one that
# starts above it says so in its notes. Every result records the load at its start and end.
BENCH_SCENARIOS  ?= $(sort $(wildcard bench/scenarios/*.yaml))
BENCH_FLAGS      ?=
BENCH_OUT        ?= bench/results
BENCH_QUIET_LOAD ?= 1.5
BENCH_RESULTS    ?=

.PHONY: bench bench-short bench-bins bench-compare

bench-bins: build-dev
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/tidal-bench ./cmd/tidal-node-autoscaler ./cmd/tidal-virtual-node ./cmd/tidal-operator

bench: bench-bins
	$(BIN)/tidal-bench run --tidal-dev $(BIN)/tidal-dev --out $(BENCH_OUT) --quiet-load $(BENCH_QUIET_LOAD) \
		--node-autoscaler $(BIN)/tidal-node-autoscaler --virtual-node $(BIN)/tidal-virtual-node \
		$(BENCH_FLAGS) $(BENCH_SCENARIOS)

bench-short: BENCH_FLAGS += --short
bench-short: bench

bench-compare:
	$(GO) run ./cmd/tidal-bench compare --baseline bench/baseline.json $(BENCH_RESULTS)
