"""``GET /``: a page to try the server. One HTML document, inline CSS and JS, no external assets.

It reads ``/info`` for the language pair and the default beam, posts the text box (one sentence per
line) to ``/translate`` and shows each translation with its score; the n-best toggle asks for every
beam's hypothesis. Text from the server is inserted with ``textContent`` only, never as HTML.
"""

from __future__ import annotations

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fsmt-serve</title>
<style>
  body { font-family: system-ui, sans-serif; max-width: 48rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
  h1 { font-size: 1.4rem; margin-bottom: .2rem; }
  #pair { color: #555; margin-bottom: 1rem; }
  textarea { width: 100%; min-height: 6rem; font: inherit; padding: .5rem; box-sizing: border-box; }
  .controls { display: flex; gap: 1rem; align-items: center; margin: .6rem 0 1rem; }
  button { font: inherit; padding: .4rem 1.2rem; }
  .result { border-top: 1px solid #ddd; padding: .6rem 0; }
  .translation { font-size: 1.1rem; }
  .score, #status { color: #666; font-size: .9rem; }
  ol.nbest { margin: .3rem 0 0; padding-left: 1.4rem; color: #444; }
  #status.error { color: #b00020; }
</style>
</head>
<body>
<h1>fsmt-serve</h1>
<div id="pair">loading the model's language pair&hellip;</div>
<label for="source">Source text, one sentence per line</label>
<textarea id="source" placeholder="Type a sentence to translate"></textarea>
<div class="controls">
  <button id="translate" type="button">Translate</button>
  <label><input id="nbest-toggle" type="checkbox"> show n-best (every beam)</label>
  <span id="status" role="status"></span>
</div>
<div id="results" aria-live="polite"></div>
<script>
"use strict";
let beams = 1;
const $ = (id) => document.getElementById(id);

function element(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function scoreText(score) {
  return score === null ? "score: n/a" : "score: " + score.toFixed(4);
}

async function loadInfo() {
  try {
    const info = await (await fetch("/info")).json();
    $("pair").textContent = info.languages.source + " \\u2192 " + info.languages.target +
      " \\u00b7 beam " + info.generation_defaults.num_beams;
    beams = info.generation_defaults.num_beams;
  } catch (err) {
    $("pair").textContent = "could not read /info: " + err;
  }
}

async function translate() {
  const lines = $("source").value.split("\\n").filter((line) => line.trim() !== "");
  const status = $("status");
  const results = $("results");
  if (lines.length === 0) { status.textContent = "type a sentence first"; return; }
  status.className = ""; status.textContent = "translating\\u2026";
  $("translate").disabled = true;
  const body = {text: lines};
  if ($("nbest-toggle").checked) body.nbest = beams;
  try {
    const response = await fetch("/translate", {method: "POST", headers: {"Content-Type": "application/json"},
                                                body: JSON.stringify(body)});
    const data = await response.json();
    if (!response.ok) throw new Error(data.error || response.statusText);
    results.replaceChildren();
    data.hypotheses.forEach((hypos, index) => {
      const block = element("div", "result");
      block.appendChild(element("div", "source score", lines[index]));
      block.appendChild(element("div", "translation", hypos[0].text));
      block.appendChild(element("div", "score", scoreText(hypos[0].score)));
      if (hypos.length > 1) {
        const list = element("ol", "nbest");
        hypos.forEach((h) => list.appendChild(element("li", "", h.text + "  (" + scoreText(h.score) + ")")));
        block.appendChild(list);
      }
      results.appendChild(block);
    });
    status.textContent = "done";
  } catch (err) {
    status.className = "error"; status.textContent = "error: " + err.message;
  } finally {
    $("translate").disabled = false;
  }
}

$("translate").addEventListener("click", translate);
$("source").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) translate();
});
loadInfo();
</script>
</body>
</html>
"""


def render_page() -> str:
    return PAGE
