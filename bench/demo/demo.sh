#!/usr/bin/env bash
# make demo: start the embedded dev cluster, run a Deployment on simulated nodes, scale it, show each step.
# Ctrl-C stops the cluster and cleans up.
set -euo pipefail
BIN=${TIDAL_BIN:-bin}
dir=$(mktemp -d "${TMPDIR:-/tmp}/tidal-demo.XXXXXX")
"$BIN/tidal-dev" up --nodes 3 --data-dir "$dir/data" --kubeconfig "$dir/kubeconfig" >"$dir/ready" 2>"$dir/tidal-dev.log" &
pid=$!
cleanup() {
	kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "starting the embedded dev cluster (etcd, kube-apiserver, controller-manager, scheduler, kwok nodes)"
start=$(date +%s.%N)
until grep -q ready "$dir/ready" 2>/dev/null; do
	kill -0 "$pid" 2>/dev/null || { tail -n 20 "$dir/tidal-dev.log"; exit 1; }
	sleep 0.2
done
cat "$dir/ready"
k() { kubectl --kubeconfig "$dir/kubeconfig" "$@"; }
k get nodes -o wide

step "applying examples/deployment.yaml (3 replicas)"
k apply -f examples/deployment.yaml
k rollout status deployment/web --timeout=120s
k get pods -o wide

step "scaling to 8 replicas"
k scale deployment/web --replicas=8
k rollout status deployment/web --timeout=120s
k get pods -o wide

step "scaling to 0 replicas"
k scale deployment/web --replicas=0
until [ -z "$(k get pods -l app=web -o name)" ]; do sleep 0.5; done
k get deployment web
awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "\ndemo finished in %.1fs\n", e - s }'
