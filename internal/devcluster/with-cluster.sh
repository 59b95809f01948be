#!/usr/bin/env bash
# with-cluster.sh CMD...: start one embedded dev cluster, run CMD with TIDAL_KUBECONFIG pointing at it, stop the
# cluster whatever CMD does, and exit with CMD's status. Used by `make test` and `make bench`.
set -uo pipefail
TIDAL_DEV=${TIDAL_DEV:-bin/tidal-dev}
NODES=${NODES:-3}
dir=$(mktemp -d "${TMPDIR:-/tmp}/tidal-test.XXXXXX")
log="$dir/tidal-dev.log"
"$TIDAL_DEV" up --nodes "$NODES" --data-dir "$dir/data" --kubeconfig "$dir/kubeconfig" >"$dir/ready" 2>"$log" &
pid=$!
stop() {
	kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$dir"
}
trap stop EXIT
trap 'exit 130' INT TERM
for _ in $(seq 1 600); do
	grep -q ready "$dir/ready" 2>/dev/null && break
	if ! kill -0 "$pid" 2>/dev/null; then
		echo "tidal-dev exited before it was ready:" >&2
		tail -n 30 "$log" >&2
		exit 1
	fi
	sleep 0.2
done
if ! grep -q ready "$dir/ready"; then
	echo "tidal-dev was not ready after 120 s:" >&2
	tail -n 30 "$log" >&2
	exit 1
fi
cat "$dir/ready"
export TIDAL_KUBECONFIG="$dir/kubeconfig"
"$@"
status=$?
exit $status
