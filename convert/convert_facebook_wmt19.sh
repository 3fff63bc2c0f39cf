#!/usr/bin/env bash
# Convert facebook's four WMT19 ensembles (model4.pt of each) with their best length penalties.
# usage:   convert/convert_facebook_wmt19.sh DATA_DIR [OUT_DIR]
# example: convert/convert_facebook_wmt19.sh ~/data models   # DATA_DIR holds wmt19.en-de.joined-dict.ensemble/ etc.
# Pairs missing from DATA_DIR are skipped; environment: PYTHON (default: python).
set -euo pipefail
DATA=${1:?usage: $0 DATA_DIR [OUT_DIR]}
OUT=${2:-.}
HERE=$(cd "$(dirname "$0")" && pwd)
for recipe in wmt19-en-de wmt19-de-en wmt19-en-ru wmt19-ru-en; do
  "${PYTHON:-python}" "$HERE/recipes.py" "$recipe" "$DATA" "$OUT/$recipe" || echo "skipped $recipe" >&2
done
