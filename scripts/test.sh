#!/usr/bin/env bash
# Set up, then lint, type-check and run the default (fast) tests. Slow tests: scripts/test.sh -m slow
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-$PWD/.venv/numba-cache}"
# idle OpenMP threads sleep, as `import attnpotts` arranges (docs/conventions.md, "Threads")
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
.venv/bin/ruff check src tests benchmarks
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
