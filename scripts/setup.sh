#!/usr/bin/env bash
# Create .venv and install attnpotts with its development tools.
#
# PyTorch is installed first, so that pip never picks its default Linux build (CUDA, several GB)
# just to satisfy attnpotts' requirement torch >= 2.2:
#   * a torch already in .venv is kept (install a CUDA build yourself first; README);
#   * else ATTNPOTTS_TORCH (default torch==2.13.0) from a local wheel if pip sees one
#     (pip's --find-links folders; no network), else from ATTNPOTTS_TORCH_INDEX, PyTorch's CPU
#     index by default (https://download.pytorch.org/whl/cpu; set it to a CUDA index, e.g.
#     https://download.pytorch.org/whl/cu126, for a GPU build).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH=${ATTNPOTTS_TORCH:-torch==2.13.0}
TORCH_INDEX=${ATTNPOTTS_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
if .venv/bin/python -c "import torch" 2>/dev/null; then
  echo "setup: keeping torch $(.venv/bin/python -c 'import torch; print(torch.__version__)')"
elif .venv/bin/python -m pip install --quiet --no-index --no-deps "$TORCH" 2>/dev/null; then
  echo "setup: installed $TORCH from a local wheel (its dependencies come with attnpotts)"
else
  echo "setup: installing $TORCH from $TORCH_INDEX"
  .venv/bin/python -m pip install --quiet "$TORCH" --index-url "$TORCH_INDEX" \
    --extra-index-url https://pypi.org/simple
fi
.venv/bin/python -m pip install --quiet -e ".[dev]"
