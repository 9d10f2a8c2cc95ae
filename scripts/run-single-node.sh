#!/usr/bin/env bash
# README command 1: set everything up, then run a single-node cluster (orchestrator +
# compute + embedded NATS) in the foreground. API on http://127.0.0.1:1234.
# Runs wasm and noop tasks, and docker tasks in rootless Podman (user `bacedge`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
if socket=$(.venv/bin/bacedge setup podman --user bacedge --quiet); then
  exec .venv/bin/bacedge serve --orchestrator --compute --engines wasm,docker,noop \
    --podman-socket "$socket" "$@"
fi
echo "rootless Podman is not available here: serving wasm and noop tasks only" >&2
exec .venv/bin/bacedge serve --orchestrator --compute "$@"
