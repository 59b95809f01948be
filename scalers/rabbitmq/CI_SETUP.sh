#!/bin/sh
# CI setup for scalers/rabbitmq tests: the broker on 127.0.0.1:5672 (guest/guest) with the management plugin,
# whose HTTP API on :15672 the http protocol, MessageRate and useRegex tests read.
# Idempotent: starting a running broker is skipped and enabling an enabled plugin is a no-op; safe to re-run.
set -eu

wait_for() { # wait_for <seconds> <description> <command...>
	secs=$1 what=$2
	shift 2
	i=0
	until "$@" >/dev/null 2>&1; do
		i=$((i + 1))
		if [ "$i" -gt "$secs" ]; then
			echo "rabbitmq CI setup: $what not ready after ${secs}s" >&2
			exit 1
		fi
		sleep 1
	done
}

if ! rabbitmqctl -q status >/dev/null 2>&1; then
	rabbitmq-server -detached
fi
wait_for 120 "broker" rabbitmqctl -q await_startup

rabbitmq-plugins enable rabbitmq_management

wait_for 120 "management listener on :15672" rabbitmq-diagnostics -q check_port_listener 15672
if command -v curl >/dev/null 2>&1; then
	wait_for 60 "management API" curl -fsS -u guest:guest http://127.0.0.1:15672/api/overview
fi
