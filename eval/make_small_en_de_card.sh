#!/usr/bin/env bash
# Write model_cards/small-en-de/README.md from the score JSONs of eval/reproduce_small_en_de.sh.
# usage:   eval/make_small_en_de_card.sh GOLDEN_DIR WORK_DIR [OUT_DIR]
# example: eval/make_small_en_de_card.sh /work/shared/golden /tmp/reproduce model_cards
#   GOLDEN_DIR  the fairseq golden folder (fairseq's hypotheses give the fairseq BLEU column)
#   WORK_DIR    the reproduce script's WORK_DIR (converted models + score JSONs)
# environment: PYTHON (default: python)
set -euo pipefail
GOLDEN=${1:?usage: $0 GOLDEN_DIR WORK_DIR [OUT_DIR]}
WORK=${2:?usage: $0 GOLDEN_DIR WORK_DIR [OUT_DIR]}
OUT=${3:-model_cards}
PY=${PYTHON:-python}
RUNS=(model4 model1+model2+model3+model4)

fairseq_bleu=()
for run in "${RUNS[@]}"; do
  fairseq_bleu+=("$("$PY" -m sacrebleu "$GOLDEN/test_2016_flickr.de" -i "$GOLDEN/small-en-de/hyps/test_2016_flickr.$run.hyp.de" \
    -m bleu -b -w 2)")
done
"$PY" -m fsmt_port.model_card "$WORK/model4" --name small-en-de --out-dir "$OUT" --license mit --datasets multi30k \
  --scores "$WORK/${RUNS[0]}.score.json" "$WORK/${RUNS[1]}.score.json" --fairseq-bleu "${fairseq_bleu[@]}" \
  --example "Two dogs are playing in the snow." \
  --note "Both hypothesis files are byte-identical to fairseq's (\`eval/reproduce_small_en_de.sh\`, recorded in \
\`eval/RESULTS.md\`). The model is a small test model trained on Multi30k (29k image-caption pairs): \
it translates short scene descriptions, not general text. Timings were taken on a shared, busy 2-core machine \
(fairseq needed 9.7 s and 44.4 s on 2 idle threads)."
