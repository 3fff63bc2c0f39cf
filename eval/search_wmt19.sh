#!/usr/bin/env bash
# Grid-search generation arguments of a converted WMT model on a dev set with run_eval_search.
# usage:   eval/search_wmt19.sh MODEL_DIR SRC_FILE REF_FILE [run_eval_search options...]
# example: sacrebleu -t wmt18 -l en-de --echo src > newstest2018.en
#          sacrebleu -t wmt18 -l en-de --echo ref > newstest2018.de
#          eval/search_wmt19.sh wmt19-en-de newstest2018.en newstest2018.de --plot --update-config
# Environment: SEARCH (default: the grid below), OUT_DIR (default: eval_out), PYTHON (default: python),
# BS (default: 8), TORCHRUN (e.g. "torchrun --nproc_per_node 4"). Interrupted searches resume from the cache.
set -euo pipefail
MODEL=${1:?usage: $0 MODEL_DIR SRC_FILE REF_FILE [run_eval_search options...]}
SRC=${2:?usage: $0 MODEL_DIR SRC_FILE REF_FILE [run_eval_search options...]}
REF=${3:?usage: $0 MODEL_DIR SRC_FILE REF_FILE [run_eval_search options...]}
shift 3
SEARCH=${SEARCH:-"num_beams=5:8:15 length_penalty=0.6:0.8:1.0:1.1:1.15:1.2"}
OUT=${OUT_DIR:-eval_out}/$(basename "$MODEL")
NAME=$(basename "$SRC")
mkdir -p "$OUT"
# shellcheck disable=SC2086  # TORCHRUN is a command prefix
${TORCHRUN:-"${PYTHON:-python}"} -m fsmt_port.run_eval_search "$MODEL" "$SRC" "$OUT/$NAME.best.hyp" \
  --reference-path "$REF" --results-dir "$OUT/$NAME.search" --bs "${BS:-8}" --search "$SEARCH" "$@"
