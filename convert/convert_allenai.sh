#!/usr/bin/env bash
# Convert allenai's deep-shallow models (wmt16 en-de 12-1, dist-12-1, dist-6-1; wmt19 de-en 6-6 base/big).
# usage:   convert/convert_allenai.sh DATA_DIR [OUT_DIR]
# example: convert/convert_allenai.sh ~/data models
#   DATA_DIR holds the extracted archives (trans_ende_12-1_0.2/, wmt19_deen_base_dr0.1_1/, ...) next to their
#   companions with the dictionaries (wmt16.en-de.deep-shallow[.dist]/, wmt19.de-en/).
# Models missing from DATA_DIR are skipped; environment: PYTHON (default: python).
set -euo pipefail
DATA=${1:?usage: $0 DATA_DIR [OUT_DIR]}
OUT=${2:-.}
HERE=$(cd "$(dirname "$0")" && pwd)
for recipe in wmt16-en-de-12-1 wmt16-en-de-dist-12-1 wmt16-en-de-dist-6-1 wmt19-de-en-6-6-base wmt19-de-en-6-6-big; do
  "${PYTHON:-python}" "$HERE/recipes.py" "$recipe" "$DATA" "$OUT/$recipe" || echo "skipped $recipe" >&2
done
