#!/usr/bin/env bash
# BLEU of the golden small en-de system's stages: model4, the 4-checkpoint ensemble, and noisy-channel
# reranking (direct model + de->en channel model + German transformer_lm) with weights tuned on a DEV split.
#
# Split of test_2016_flickr (1000 lines): DEV = lines 1-500 (tuning only), TEST = lines 501-1000 (every
# BLEU reported). Reranking: 50-best lists (fairseq rerank_generate: beam = nbest = --num-rescore 50),
# --score-model1 = channel (--backwards1), --score-model2 = the generation model(s), --language-model;
# fairseq's random search (rerank_tune.py, seed 1) over lenpen, weight1, weight3 (weight2 = 1) with
# 1000 trials, plus a small grid; the best dev weights are then applied once to TEST.
#
# usage:   eval/rerank_small_en_de.sh GOLDEN_DIR [WORK_DIR]
#   GOLDEN_DIR  holds small-en-de/, small-de-en-channel/, small-en-de-lm/ and test_2016_flickr.{en,de}
# environment: PYTHON (default: python), THREADS (default: 2), DEVICE (default: auto),
#   DEV (default 1-500) and TEST (default 501-1000): the line ranges; NBEST (default 50);
#   GENERATORS (default "model4 ensemble"): whose n-best lists are reranked; TRIALS (default 1000)
# Writes WORK_DIR/results.md (the table) and WORK_DIR/tune/ (trials.csv, best_weights.json, tuning.png).
set -euo pipefail

GOLDEN=${1:?usage: $0 GOLDEN_DIR [WORK_DIR]}
WORK=${2:-rerank_small_en_de}
PY=${PYTHON:-python}
THREADS=${THREADS:-2}
DEVICE=${DEVICE:-auto}
DEV=${DEV:-1-500}
TEST=${TEST:-501-1000}
NBEST=${NBEST:-50}
GENERATORS=${GENERATORS:-model4 ensemble}
TRIALS=${TRIALS:-1000}
mkdir -p "$WORK"

convert() {  # CHECKPOINT OUT [converter options]
  local ckpt=$1 out=$2; shift 2
  [ -f "$out/model.safetensors" ] || "$PY" -m fsmt_port.convert --fsmt-path "$ckpt" --output-dir "$out" --force "$@"
}
for n in 1 2 3 4; do convert "$GOLDEN/small-en-de/model$n.pt" "$WORK/model$n" --src-lang en --tgt-lang de; done
convert "$GOLDEN/small-de-en-channel/model1.pt" "$WORK/channel" --src-lang de --tgt-lang en
convert "$GOLDEN/small-en-de-lm/model.pt" "$WORK/lm"

for lang in en de; do
  sed -n "${DEV/-/,}p" "$GOLDEN/test_2016_flickr.$lang" > "$WORK/dev.$lang"
  sed -n "${TEST/-/,}p" "$GOLDEN/test_2016_flickr.$lang" > "$WORK/test.$lang"
done

evaluate() {  # NAME MODEL_DIR...: beam 5, lenpen 1.0 on TEST
  local name=$1; shift
  "$PY" -m fsmt_port.run_eval "$@" "$WORK/test.en" "$WORK/$name.test.hyp.de" --reference-path "$WORK/test.de" \
    --score-path "$WORK/$name.score.json" --num-beams 5 --length-penalty 1.0 --device "$DEVICE" \
    --threads "$THREADS" --quiet --info "small-en-de $name, test_2016_flickr lines $TEST"
}
evaluate model4 "$WORK/model4"
evaluate ensemble "$WORK/model1" "$WORK/model2" "$WORK/model3" "$WORK/model4"

rerank() {  # NAME GEN_MODELS(colon-separated) INPUT OUTPUT [options]
  local name=$1 gen=$2 input=$3 output=$4; shift 4
  "$PY" -m fsmt_port.rerank --input "$input" --output "$output" --force --quiet --num-rescore "$NBEST" \
    --gen-model "$gen" --score-model1 "$WORK/channel" --backwards1 --score-model2 "$gen" \
    --language-model "$WORK/lm" --cache-dir "$WORK/cache" --device "$DEVICE" --threads "$THREADS" "$@"
}
ENSEMBLE="$WORK/model1:$WORK/model2:$WORK/model3:$WORK/model4"
for name in $GENERATORS; do
  gen=$WORK/model4; [ "$name" = ensemble ] && gen=$ENSEMBLE
  rerank "$name" "$gen" "$WORK/dev.en" "$WORK/$name.dev.reranked.de" --reference "$WORK/dev.de" --tune \
    --weight1 1 --weight2 1 --weight3 0 --lenpen 1 --tune-param lenpen weight1 weight3 \
    --lower-bound 0 0 0 --upper-bound 2 2 2 --num-trials "$TRIALS" --search "weight1=0:0.5:1 weight3=0:0.3:0.6" \
    --results-dir "$WORK/tune-$name" > "$WORK/tune-$name.md"
  read -r W1 W2 W3 LP < <("$PY" -c "import json,sys; w=json.load(open(sys.argv[1]))['weights']; \
print(w['weight1'], w['weight2'], w['weight3'], w['lenpen'])" "$WORK/tune-$name/best_weights.json")
  rerank "$name" "$gen" "$WORK/test.en" "$WORK/$name.test.reranked.de" --reference "$WORK/test.de" \
    --weight1 "$W1" --weight2 "$W2" --weight3 "$W3" --lenpen "$LP" --jsonl "$WORK/$name.test.reranked.jsonl" \
    2> "$WORK/$name.test.rerank.log"
done

"$PY" - "$WORK" "$DEV" "$TEST" "$NBEST" <<'PY'
"""The results table: BLEU on TEST of each stage."""
import json, sys
from pathlib import Path
import sacrebleu

work, dev, test, nbest = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
refs = (work / "test.de").read_text(encoding="utf-8").splitlines()
metric = sacrebleu.BLEU()
def bleu(path):
    return metric.corpus_score(path.read_text(encoding="utf-8").splitlines(), [refs])
rows = [("model4, beam 5", work / "model4.test.hyp.de"),
        ("4-model ensemble, beam 5", work / "ensemble.test.hyp.de"),
        (f"model4 {nbest}-best, reranked (channel + LM, tuned on dev)", work / "model4.test.reranked.de"),
        (f"ensemble {nbest}-best, reranked (channel + LM, tuned on dev)", work / "ensemble.test.reranked.de")]
lines = [f"| system (test_2016_flickr lines {test}) | BLEU | weights (tuned on lines {dev}) |", "|---|---:|---|"]
for name, path in rows:
    if not path.is_file():
        continue
    weights = ""
    if "reranked" in name:
        best = json.loads((work / f"tune-{'model4' if name.startswith('model4') else 'ensemble'}" / "best_weights.json").read_text())
        weights = " ".join(f"{k}={v:.3g}" for k, v in best["weights"].items()) + f" (dev BLEU {best['bleu']:.2f}, dev top-1 {best['nbest_top1_bleu']:.2f})"
    lines.append(f"| {name} | {bleu(path).score:.2f} | {weights} |")
signature = metric.get_signature()
text = "\n".join(lines) + f"\n\nsacrebleu {signature}\n"
(work / "results.md").write_text(text, encoding="utf-8")
print(text)
PY
