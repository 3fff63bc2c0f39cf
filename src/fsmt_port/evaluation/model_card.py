"""Write a model card (README.md) for a converted model folder from real run_eval score files.

Example::

    python -m fsmt_port.evaluation.model_card wmt19-en-de --scores model4.score.json ensemble.score.json \\
        --fairseq-bleu 35.28 35.60 --name small-en-de --out-dir model_cards

The card has YAML front matter (languages, tags, license, datasets, metrics),
a usage snippet whose printed output was produced by the model while writing
the card, an evaluation table built from the score JSONs (next to fairseq's
BLEU where given), the defaults in generation_config.json, porting notes and
limitations.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from safetensors import safe_open

from fsmt_port.cli import add_hub_options, hub_kwargs, run_cli
from fsmt_port.modeling.configuration import FSMTConfig
from fsmt_port.errors import ConfigError, InputError
from fsmt_port.evaluation.report import markdown_table
from fsmt_port.files import atomic_file
from fsmt_port.generation.config import GenerationConfig
from fsmt_port.hub import resolve_model_dir
from fsmt_port.modeling.model import FSMTForConditionalGeneration, read_weights
from fsmt_port.tokenization.tokenizer import FSMTTokenizer

EXAMPLES = {
    "en": "Machine learning is great, isn't it?",
    "de": "Maschinelles Lernen ist großartig, oder?",
    "ru": "Машинное обучение - это здорово, не так ли?",
    "fr": "L'apprentissage automatique, c'est génial, n'est-ce pas ?",
    "cs": "Strojové učení je skvělé, že?",
}
KNOWN_DATASETS = ("wmt19", "wmt16", "wmt14")


def read_score(path: str | Path) -> dict:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise InputError(f"{path}: cannot read the score file ({err.strerror}); give a run_eval --score-path JSON") \
            from None
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON ({err}); give a run_eval --score-path JSON") from None
    missing = [k for k in ("bleu", "signature", "n_obs", "model_dirs", "input_path", "num_beams") if k not in data]
    if missing:
        raise InputError(f"{path}: missing {', '.join(missing)}; is this a run_eval --score-path JSON?")
    return data


def infer_datasets(name: str, scores: list[dict]) -> list[str]:
    known = [d for d in KNOWN_DATASETS if d in name.lower()]
    return known or sorted({Path(s["input_path"]).stem.rsplit(".", 1)[0] for s in scores})


def front_matter(config: FSMTConfig, name: str, license_id: str, datasets: list[str]) -> str:
    tags = ["translation", "fsmt", "fairseq"] + [d for d in ("wmt19", "wmt16") if d in name.lower()]
    lines = ["---", "language:", *[f"- {lang}" for lang in config.langs], "tags:", *[f"- {t}" for t in tags],
             f"license: {license_id}", "datasets:", *[f"- {d}" for d in datasets], "metrics:", "- bleu", "---"]
    return "\n".join(lines) + "\n"


def count_parameters(model_dir: Path) -> int:
    if not (model_dir / "model.safetensors").is_file():  # a transformers folder: pytorch_model.bin
        return sum(t.numel() for t in read_weights(model_dir).values())
    with safe_open(str(model_dir / "model.safetensors"), framework="pt") as handle:
        total = 0
        for key in handle.keys():
            shape = handle.get_slice(key).get_shape()
            size = 1
            for dim in shape:
                size *= dim
            total += size
        return total


def describe_model(config: FSMTConfig, model_dir: Path, name: str) -> str:
    conversion_path = model_dir / "fsmt_port_conversion.json"
    conversion = json.loads(conversion_path.read_text(encoding="utf-8")) if conversion_path.is_file() else {}
    source = conversion.get("converted_from", "a fairseq checkpoint")
    norm = "pre-norm" if config.encoder_normalize_before else "post-norm"
    positions = "learned" if config.encoder_learned_pos else "sinusoidal"
    sharing = ("all embeddings shared" if config.share_all_embeddings else
               "decoder input/output embeddings shared" if config.share_decoder_input_output_embed else
               "no shared embeddings")
    return (f"# {name}\n\n{config.src_lang}→{config.tgt_lang} translation: a fairseq transformer converted from "
            f"`{source}`" + (f" (sha256 `{conversion['checkpoint_sha256'][:16]}…`)" if "checkpoint_sha256" in
                             conversion else "") +
            " with fsmt_port; it runs without fairseq.\n\n"
            f"* {config.encoder_layers} encoder + {config.decoder_layers} decoder layers, d_model "
            f"{config.encoder_embed_dim}, ffn {config.encoder_ffn_dim}, {config.encoder_attention_heads} heads, "
            f"{norm}, {config.activation_function}, {positions} positions, {sharing}\n"
            f"* vocabularies: {config.src_vocab_size} source / {config.tgt_vocab_size} target (fairseq dictionaries, "
            f"fastBPE codes); {count_parameters(model_dir):,} stored parameters ({config.dtype})\n")


def usage(model_ref: str, config: FSMTConfig, example: str, output: str) -> str:
    """transformers' conventions (as on the facebook/wmt19-* cards), then the text API and the command lines."""
    ref = json.dumps(model_ref)
    return ("## Usage\n\n```python\nfrom fsmt_port import FSMTForConditionalGeneration, FSMTTokenizer\n\n"
            f"mname = {ref}  # the converted model folder, or its hub repo id\n"
            "tokenizer = FSMTTokenizer.from_pretrained(mname)\n"
            "model = FSMTForConditionalGeneration.from_pretrained(mname)\n\n"
            f"input = {json.dumps(example, ensure_ascii=False)}\n"
            "input_ids = tokenizer.encode(input, return_tensors=\"pt\")\n"
            "outputs = model.generate(input_ids)\n"
            "decoded = tokenizer.decode(outputs[0], skip_special_tokens=True)\n"
            f"print(decoded)  # {output}\n```\n\n"
            "Whole files, with length-sorted batching and ensembles, go through `Translator.from_pretrained(mname)"
            ".translate(lines)`; from the command line (`run_eval` scores a test set the same way):\n\n"
            f"```bash\necho {json.dumps(example, ensure_ascii=False)} | fsmt-translate {model_ref}\n"
            f"run_eval {model_ref} test.{config.src_lang} hyps.{config.tgt_lang} "
            f"--reference-path test.{config.tgt_lang} --score-path score.json\n```\n")


def model_names(score: dict) -> list[str]:
    """Hub ids as given, local folders by their name (older score files have only ``model_dirs``)."""
    given = score.get("models") or score["model_dirs"]
    return [ref if Path(ref).resolve() != Path(resolved).resolve() else Path(resolved).name
            for ref, resolved in zip(given, score["model_dirs"])]


def evaluation(scores: list[dict], fairseq_bleu: list[float | None], notes: list[str]) -> str:
    rows = []
    for score, theirs in zip(scores, fairseq_bleu):
        models = model_names(score)
        label = " + ".join(models) + (f" (ensemble of {len(models)})" if len(models) > 1 else "")
        rows.append({
            "models": label + reranked_by(score.get("reranking")),
            "test set": Path(score["input_path"]).name, "sentences": score["n_obs"],
            "num_beams": score["num_beams"], "length_penalty": str(score["length_penalty"]),
            "fairseq BLEU": theirs if theirs is not None else "–", "fsmt_port BLEU": score["bleu"],
            "s/sentence": score.get("seconds_per_sample"),
            "run on": f"{score.get('device', '?')} {score.get('dtype', '?')}, threads: {score.get('threads', '?')}",
        })
    columns = list(rows[0])
    signatures = sorted({s["signature"] for s in scores})
    text = ("## Evaluation\n\n" + markdown_table(rows, columns, formats={"fairseq BLEU": ".2f", "fsmt_port BLEU": ".2f",
                                                                           "s/sentence": ".4f"}) +
            "\nBLEU is sacrebleu on detokenized output, `" + "`, `".join(signatures) + "`; the fairseq column is "
            "what fairseq's own generation scored on the same test set.\n")
    return text + "".join(f"\n{note}\n" for note in notes)


def reranked_by(reranking: dict | None) -> str:
    """``, 50-best reranked: channel de-en, LM lm-de (weights ...)`` for an fsmt-rerank --score-path file."""
    if not reranking:
        return ""
    roles = []
    for n in ("1", "2"):
        dirs = reranking.get(f"score_model{n}")
        if dirs:
            kind = "channel" if reranking.get(f"backwards{n}") else "direct"
            roles.append(f"{kind} {' + '.join(Path(d).name for d in dirs)} (w{n} {reranking[f'weight{n}']:.3g})")
    if reranking.get("language_model"):
        roles.append(f"LM {' + '.join(Path(d).name for d in reranking['language_model'])} "
                     f"(w3 {reranking['weight3']:.3g})")
    return (f", {reranking['num_rescore']}-best reranked: " + ", ".join(roles)
            + f", lenpen {reranking['lenpen']:.3g}")


def defaults(model_dir: Path) -> str:
    config = GenerationConfig.from_pretrained(model_dir)
    path = model_dir / "generation_config.json"
    stored = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    # The beam-search settings always; the other decoding modes only where the folder changes them.
    plain = GenerationConfig().to_dict()
    beam_fields = list(plain)[: list(plain).index("temperature")]
    rows = [{"argument": k, "value": json.dumps(v)} for k, v in config.to_dict().items()
            if k in beam_fields or v != plain[k]]
    text = ("## Default generation settings\n\nFrom `generation_config.json` (every call can override them):\n\n"
            + markdown_table(rows, ["argument", "value"]))
    if "fsmt_port_provenance" in stored:
        text += ("\nWhere they come from:\n\n```json\n" + json.dumps(stored["fsmt_port_provenance"], indent=2,
                                                                    ensure_ascii=False) + "\n```\n")
    return text


def notes_and_limitations(config: FSMTConfig) -> str:
    compat = ("The folder also loads with transformers' `FSMTForConditionalGeneration` (`model_type: fsmt`)."
              if config.transformers_compatible else
              "transformers' FSMT cannot run this model (" + "; ".join(config.transformers_incompatibilities())
              + "); load it with fsmt_port.")
    return f"""## Porting notes

* Weights, dictionaries and BPE codes are read from the fairseq archive without fairseq and without running
  code from the checkpoint pickle; `model.safetensors` keeps the checkpoint's storage dtype, compute is fp32
  unless `--dtype` says otherwise.
* Tokenization is fairseq's hub pipeline: Moses (sacremoses, aggressive dash splits, escaping) + fastBPE,
  then BPE removal and Moses detokenization.
* Beam search reimplements fairseq 0.12's `SequenceGenerator` (length penalty counts `</s>`, early stopping
  at `num_beams` finished hypotheses); ensembles average probabilities as fairseq does.
* {compat}

## Limitations

* `no_repeat_ngram_size` follows fairseq's intended rule (2019 fairseq, its CUDA kernel); fairseq >= 0.12 on
  CPU silently ignores it, so outputs with it set differ from modern fairseq on CPU.
* `max_len_a` uses each sentence's own source length, fairseq the batch's padded length (identical when
  `max_len_a` is 0, the default).
* Scores can differ from fairseq's in the last float bits with other thread counts or batching; fp16/bf16
  compute is not bit-comparable with fairseq's fp32.
* The model is only as good as its training data and the scores above: check it on your own domain.
"""


def snippet_output(model_dir: Path, example: str) -> str:
    """What the usage snippet prints, computed the snippet's way."""
    tokenizer = FSMTTokenizer.from_pretrained(model_dir)
    model = FSMTForConditionalGeneration.from_pretrained(model_dir, device="cpu")
    return tokenizer.decode(model.generate(tokenizer.encode(example, return_tensors="pt"))[0], skip_special_tokens=True)


def build_card(model_dir: str | Path, score_paths: list[str], fairseq_bleu: list[float | None] | None = None,
               name: str | None = None, model_ref: str | None = None, license_id: str = "apache-2.0",
               datasets: list[str] | None = None, example: str | None = None, notes: list[str] | None = None) -> str:
    """The card's markdown text (loads the model once to produce the usage example's output)."""
    model_dir = Path(model_dir)
    config = FSMTConfig.from_pretrained(model_dir)
    name = name or model_dir.resolve().name
    scores = [read_score(p) for p in score_paths]
    if fairseq_bleu is None:
        fairseq_bleu = [None] * len(scores)
    if len(fairseq_bleu) != len(scores):
        raise ConfigError(f"--fairseq-bleu has {len(fairseq_bleu)} values for {len(scores)} --scores files; "
                          "give one per score file, in the same order ('-' for unknown)")
    example = example or EXAMPLES.get(config.src_lang, EXAMPLES["en"])
    output = snippet_output(model_dir, example)
    return "\n".join([
        front_matter(config, name, license_id, datasets or infer_datasets(name, scores)),
        describe_model(config, model_dir, name),
        usage(model_ref or name, config, example, output),
        evaluation(scores, fairseq_bleu, notes or []),
        defaults(model_dir),
        notes_and_limitations(config),
    ])


def _bleu_or_unknown(text: str) -> float | None:
    if text in ("-", "–", "none", "unknown"):
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a BLEU number or '-', got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fsmt_port.evaluation.model_card", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", metavar="MODEL", help="converted model folder (or hub repo id) the card describes")
    inputs = parser.add_argument_group("evaluation inputs")
    inputs.add_argument("--scores", nargs="+", required=True, metavar="SCORE.json",
                        help="run_eval --score-path files; one table row each")
    inputs.add_argument("--fairseq-bleu", nargs="+", type=_bleu_or_unknown, default=None, metavar="BLEU",
                        help="fairseq's BLEU for each score file, same order, '-' if unknown (default: none)")
    inputs.add_argument("--note", action="append", default=None,
                        help="a sentence added under the evaluation table; repeatable (default: none)")
    card = parser.add_argument_group("card")
    card.add_argument("--name", default=None, help="model name (default: the folder's name)")
    card.add_argument("--model-ref", default=None,
                      help="what the usage snippet passes to from_pretrained (default: the hub id if MODEL is "
                           "one, else the name)")
    card.add_argument("--out-dir", default="model_cards", help="cards go to OUT_DIR/NAME/README.md "
                                                               "(default: %(default)s)")
    card.add_argument("--license", default="apache-2.0", help="license id for the front matter (default: %(default)s)")
    card.add_argument("--datasets", nargs="+", default=None,
                      help="datasets for the front matter (default: wmt19/wmt16 from the name, else the test "
                           "files' names)")
    card.add_argument("--example", default=None, help="source sentence of the usage snippet (default: one per "
                                                      "source language)")
    add_hub_options(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def job() -> None:
        model_dir = resolve_model_dir(args.model_dir, **hub_kwargs(args))
        from_hub = model_dir != Path(args.model_dir).expanduser()
        name = args.name or (args.model_dir.split("/")[-1] if from_hub else model_dir.resolve().name)
        model_ref = args.model_ref or (args.model_dir if from_hub else None)
        text = build_card(model_dir, args.scores, args.fairseq_bleu, name=name, model_ref=model_ref,
                          license_id=args.license, datasets=args.datasets, example=args.example, notes=args.note)
        path = Path(args.out_dir) / name / "README.md"
        with atomic_file(path) as handle:
            handle.write(text)
        print(f"wrote {path}", file=sys.stderr)

    return run_cli(job)


if __name__ == "__main__":
    sys.exit(main())
