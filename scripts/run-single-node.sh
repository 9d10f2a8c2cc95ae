#!/usr/bin/env bash
# README command 1: set everything up, then run a single-node cluster (orchestrator +
# compute + embedded NATS + the local S3 store) in the foreground. API on
# http://127.0.0.1:1234, S3 on http://127.0.0.1:9000 (`bacedge store credentials`).
# Runs wasm and noop tasks, and docker tasks in rootless Podman (user `bacedge`, with a
# busybox task image loaded).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
if socket=$(.venv/bin/bacedge setup podman --user bacedge --quiet); then
  # The README's docker examples use localhost/busybox:latest: built offline from Debian's
  # busybox-static (no registry needed) and loaded once (`bacedge image load` is idempotent).
  .venv/bin/python - "$socket" <<'PY' || echo "could not load the busybox task image" >&2
import sys
from tests.podman_image import load_busybox
load_busybox(sys.argv[1])
PY
  exec .venv/bin/bacedge serve --orchestrator --compute --store --engines wasm,docker,noop \
    --podman-socket "$socket" "$@"
fi
echo "rootless Podman is not available here: serving wasm and noop tasks only" >&2
exec .venv/bin/bacedge serve --orchestrator --compute --store "$@"
