#!/usr/bin/env bash
# README command 1: set everything up, then run a single-node cluster (orchestrator +
# compute + embedded NATS) in the foreground. API on http://127.0.0.1:1234.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/bacedge serve --orchestrator --compute "$@"
