#!/bin/sh
# CI setup for the Azure storage scaler tests (scalers/azurequeue, scalers/azureblob): Microsoft's Azurite
# emulator from npm. The tests start azurite-queue / azurite-blob themselves on free loopback ports (telemetry
# off, workspace in a temp dir); no service needs to run. Idempotent.
set -eu
if ! command -v azurite-queue >/dev/null 2>&1 || ! command -v azurite-blob >/dev/null 2>&1; then
	if ! command -v npm >/dev/null 2>&1; then
		apt-get update -q
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs npm
	fi
	npm install -g --no-fund --no-audit azurite
fi
azurite-queue --version >/dev/null
