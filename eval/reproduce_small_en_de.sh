#!/usr/bin/env bash
# Reproduce fairseq's BLEU for the golden small en-de model with fsmt_port alone:
# convert model1..4.pt, run run_eval for model4 and for the 4-checkpoint ensemble
# (beam 5, lenpen 1.0, as fairseq's hub.generate), diff the hypothesis files
# against fairseq's and print our BLEU next to fairseq's.
#
# usage:   eval/reproduce_small_en_de.sh GOLDEN_DIR [WORK_DIR]
# example: eval/reproduce_small_en_de.sh /work/shared/golden /tmp/reproduce
#   GOLDEN_DIR  holds small-en-de/{model1..4.pt,dict.*.txt,bpecodes,hyps/} and test_2016_flickr.{en,de}
#   WORK_DIR    converted models, translations and score JSONs (default: ./reproduce_small_en_de)
# environment: PYTHON (default: python), THREADS (default: 2, as the goldens were made),
#   CARD_DIR (when set, also write CARD_DIR/small-en-de/README.md with eval/make_small_en_de_card.sh)
# exit status: 0 when both hypothesis files are byte-identical to fairseq's and the BLEU matches.
set -euo pipefail

GOLDEN=${1:?usage: $0 GOLDEN_DIR [WORK_DIR]}
WORK=${2:-reproduce_small_en_de}
PY=${PYTHON:-python}
THREADS=${THREADS:-2}
ARCHIVE=$GOLDEN/small-en-de
SRC=$GOLDEN/test_2016_flickr.en
REF=$GOLDEN/test_2016_flickr.de
mkdir -p "$WORK"

for n in 1 2 3 4; do
  if [ ! -f "$WORK/model$n/model.safetensors" ]; then
    "$PY" -m fsmt_port.convert --fsmt-path "$ARCHIVE/model$n.pt" --output-dir "$WORK/model$n" \
      --src-lang en --tgt-lang de --force
  fi
done

evaluate() {  # NAME MODEL_DIR...: one run_eval with fairseq's settings (its hub batches by 2048 tokens)
  local name=$1; shift
  "$PY" -m fsmt_port.run_eval "$@" "$SRC" "$WORK/test_2016_flickr.$name.hyp.de" --reference-path "$REF" \
    --score-path "$WORK/$name.score.json" --num-beams 5 --length-penalty 1.0 --max-tokens 2048 \
    --device cpu --dtype fp32 --threads "$THREADS" --quiet --info "reproduce fairseq small-en-de $name"
}
evaluate model4 "$WORK/model4"
evaluate model1+model2+model3+model4 "$WORK/model1" "$WORK/model2" "$WORK/model3" "$WORK/model4"

"$PY" - "$ARCHIVE/hyps" "$WORK" "$REF" <<'PY'
"""Compare with fairseq: byte-identical hypotheses, BLEU to two decimals (fairseq's from its own file)."""
import json, sys
from pathlib import Path
import sacrebleu

golden, work, ref = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
refs = ref.read_text(encoding="utf-8").splitlines()
ok = True
print("| run | fairseq BLEU | fsmt_port BLEU | hypotheses vs fairseq | generate s | s/sentence | load s |")
print("|---|---:|---:|---|---:|---:|---:|")
for name in ("model4", "model1+model2+model3+model4"):
    theirs = (golden / f"test_2016_flickr.{name}.hyp.de").read_bytes()
    ours = (work / f"test_2016_flickr.{name}.hyp.de").read_bytes()
    differing = sum(a != b for a, b in zip(theirs.splitlines(), ours.splitlines()))
    same = theirs == ours
    verdict = "byte-identical" if same else f"DIFFER ({differing} lines)"
    fairseq_bleu = sacrebleu.BLEU().corpus_score(theirs.decode("utf-8").splitlines(), [refs]).score
    score = json.loads((work / f"{name}.score.json").read_text())
    ok &= same and f"{score['bleu']:.2f}" == f"{fairseq_bleu:.2f}"
    print(f"| {name} | {fairseq_bleu:.2f} | {score['bleu']:.2f} | {verdict} | {score['runtime']:.1f} "
          f"| {score['seconds_per_sample']:.4f} | {score['load_seconds']:.1f} |")
    print(f"<!-- {name}: {score['sacrebleu']} -->")
print("REPRODUCED" if ok else "NOT REPRODUCED")
sys.exit(0 if ok else 1)
PY

if [ -n "${CARD_DIR:-}" ]; then
  PYTHON=$PY "$(dirname "$0")/make_small_en_de_card.sh" "$GOLDEN" "$WORK" "$CARD_DIR"
fi
