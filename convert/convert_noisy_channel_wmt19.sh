#!/usr/bin/env bash
# Convert what noisy-channel reranking of the WMT19 systems needs: the four directions (each one is the
# channel model of its reverse) and the three WMT19 language models (transformer_lm.wmt19.{en,de,ru}).
# usage:   convert/convert_noisy_channel_wmt19.sh DATA_DIR [OUT_DIR]
#   DATA_DIR holds the extracted archives: wmt19.en-de.joined-dict.ensemble/, ..., wmt19.de/, wmt19.en/, wmt19.ru/
# Then, e.g. for en->de:
#   fsmt-rerank --input test.en --output test.de --gen-model OUT/wmt19-en-de --score-model1 OUT/wmt19-de-en \
#     --backwards1 --score-model2 OUT/wmt19-en-de --language-model OUT/wmt19-lm-de --num-rescore 50 \
#     --weight1 W1 --weight2 W2 --weight3 W3 --lenpen L    # weights tuned with --tune on a dev set
# Archives missing from DATA_DIR are skipped; environment: PYTHON (default: python).
set -euo pipefail
DATA=${1:?usage: $0 DATA_DIR [OUT_DIR]}
OUT=${2:-.}
HERE=$(cd "$(dirname "$0")" && pwd)
for recipe in wmt19-en-de wmt19-de-en wmt19-en-ru wmt19-ru-en wmt19-lm-en wmt19-lm-de wmt19-lm-ru; do
  "${PYTHON:-python}" "$HERE/recipes.py" "$recipe" "$DATA" "$OUT/$recipe" || echo "skipped $recipe" >&2
done
