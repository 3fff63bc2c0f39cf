#!/usr/bin/env bash
# The test command: set up (idempotent), then run the whole suite, slow tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/install_browser.sh   # chromium for the fsmt-serve page test
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
