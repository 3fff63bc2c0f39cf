#!/usr/bin/env bash
# The main job on the bundled default: convert the bundled fairseq checkpoint
# (tests/fixtures/small-en-de/model4.pt, a real fairseq en-de transformer trained on Multi30k),
# translate a few sentences, and score 200 test sentences with sacrebleu.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
OUT="${DEMO_OUT:-demo_out}"
mkdir -p "$OUT"
FIX=tests/fixtures
.venv/bin/python -m fsmt_port.convert --fsmt-path "$FIX/small-en-de/model4.pt" \
  --output-dir "$OUT/small-en-de" --src-lang en --tgt-lang de --force
echo "== translate (beam 5)"
printf 'A man in an orange hat starring at something.\nTwo dogs play in the snow.\nA woman is reading a book.\n' \
  | .venv/bin/fsmt-translate "$OUT/small-en-de" --num-beams 5 --quiet
echo "== score (first 200 lines of test_2016_flickr, beam 5)"
rm -f "$OUT"/test200.*
head -n 200 "$FIX/test_2016_flickr.en" > "$OUT/test200.en"
head -n 200 "$FIX/test_2016_flickr.de" > "$OUT/test200.de"
.venv/bin/run_eval "$OUT/small-en-de" "$OUT/test200.en" "$OUT/test200.hyp.de" \
  --reference-path "$OUT/test200.de" --score-path "$OUT/test200.score.json" --num-beams 5 --quiet
.venv/bin/python -c "import json,sys; s=json.load(open(sys.argv[1])); print('BLEU', s['bleu'], '|', s['signature'])" \
  "$OUT/test200.score.json"
