#!/bin/sh
# CI setup for scalers/beanstalkd tests: Debian's beanstalkd binary. The tests start their own server on a free
# loopback port; no service needs to run (the package's own service is not needed). Idempotent.
set -eu
if ! command -v beanstalkd >/dev/null 2>&1; then
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends beanstalkd
fi
