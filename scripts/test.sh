#!/usr/bin/env bash
# README command 2: install everything the tests need, lint, type-check, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
echo "== ruff" >&2
.venv/bin/ruff check edge tui tests bench
.venv/bin/ruff format --check edge tui tests bench
echo "== mypy" >&2
.venv/bin/mypy
echo "== rootless Podman for docker-task tests" >&2
# The service user and its socket; idempotent, so a second run only checks.
BACEDGE_TEST_PODMAN_SOCKET=$(.venv/bin/bacedge setup podman --user bacedge-test --quiet)
export BACEDGE_TEST_PODMAN_SOCKET
echo "== pytest" >&2
.venv/bin/pytest -q -p no:cacheprovider "$@"
