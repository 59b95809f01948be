#!/bin/sh
# Setup the redis scaler tests need on a fresh machine; idempotent, safe to re-run.
# - redis-server (Debian's build, with TLS): the cluster, sentinel (redis-server --sentinel) and TLS tests start
#   private servers from it on free ports. redis-cli (redis-tools, pulled in by redis-server) checks the server.
# - the shared server on 127.0.0.1:6379 for the standalone tests.
set -eu
if ! command -v redis-server >/dev/null 2>&1; then
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
	mkdir -p /var/lib/redis /var/log/redis
	redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
		--dir /var/lib/redis --logfile /var/log/redis/ci.log
fi
