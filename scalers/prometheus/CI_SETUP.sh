#!/bin/sh
# Extra setup for scalers/prometheus tests: a real Prometheus server binary (TestRealPrometheus starts it itself,
# on a free port with a temporary storage dir; no service needs to run). Idempotent.
set -e
if [ ! -x /usr/bin/prometheus ]; then
	DEBIAN_FRONTEND=noninteractive apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus
fi
