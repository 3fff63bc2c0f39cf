#!/usr/bin/env bash
# Create .venv and install fsmt_port with its test extras, once per pyproject.toml version.
# torch is pinned to the local CPU wheel first, so pip never resolves the multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
STAMP=".venv/.fsmt_port-installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
if [ ! -f "$STAMP" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet "torch==${TORCH_VERSION:-2.13.0}"
  .venv/bin/python -m pip install --quiet -e ".[test]"
  rm -f .venv/.fsmt_port-installed-*
  touch "$STAMP"
fi
