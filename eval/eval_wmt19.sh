#!/usr/bin/env bash
# Score a converted WMT model on a test set with run_eval (BLEU, translations, score JSON).
# The model folder's generation_config.json already holds the recipe's best length penalty.
# usage:   eval/eval_wmt19.sh MODEL_DIR SRC_FILE REF_FILE [run_eval options...]
# example: sacrebleu -t wmt19 -l en-de --echo src > newstest2019.en
#          sacrebleu -t wmt19 -l en-de --echo ref > newstest2019.de
#          eval/eval_wmt19.sh wmt19-en-de newstest2019.en newstest2019.de --num-beams 5
# Works the same for the allenai wmt16 models (sacrebleu -t wmt16 -l en-de).
# Writes OUT_DIR/<model>/<src>.hyp and <src>.score.json; environment: OUT_DIR (default: eval_out),
# PYTHON (default: python), BS (default: 8). Under torchrun: set TORCHRUN="torchrun --nproc_per_node 4".
set -euo pipefail
MODEL=${1:?usage: $0 MODEL_DIR SRC_FILE REF_FILE [run_eval options...]}
SRC=${2:?usage: $0 MODEL_DIR SRC_FILE REF_FILE [run_eval options...]}
REF=${3:?usage: $0 MODEL_DIR SRC_FILE REF_FILE [run_eval options...]}
shift 3
OUT=${OUT_DIR:-eval_out}/$(basename "$MODEL")
NAME=$(basename "$SRC")
mkdir -p "$OUT"
# shellcheck disable=SC2086  # TORCHRUN is a command prefix
${TORCHRUN:-"${PYTHON:-python}"} -m fsmt_port.run_eval "$MODEL" "$SRC" "$OUT/$NAME.hyp" --reference-path "$REF" \
  --score-path "$OUT/$NAME.score.json" --bs "${BS:-8}" --info "eval_wmt19.sh $NAME" "$@"
