"""Convert a fairseq transformer checkpoint folder into an fsmt_port / transformers FSMT folder.

Example::

    python -m fsmt_port.fairseq.convert --fsmt-path wmt19.en-de/model4.pt --output-dir wmt19-en-de

Reads ``model*.pt`` + ``dict.{src,tgt}.txt`` + ``bpecodes`` (or ``code``) without
fairseq, without running code from the pickle, and writes ``config.json``,
``model.safetensors``, ``vocab-src.json``, ``vocab-tgt.json``, ``merges.txt``,
``tokenizer_config.json`` and ``generation_config.json`` atomically.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from fsmt_port.fairseq.checkpoint import load_fairseq_checkpoint
from fsmt_port.cli import command_parser, run_cli
from fsmt_port.fairseq.dictionary import FairseqDictionary, to_bpe_vocab
from fsmt_port.tokenization.bpe import read_bpecodes
from fsmt_port.errors import CheckpointError, ConfigError, MissingFileError
from fsmt_port.fairseq.arch import config_from_fairseq_args
from fsmt_port.fairseq.convert_lm import convert_language_model
from fsmt_port.fairseq.lm_arch import is_language_model
from fsmt_port.fairseq.weights import convert_state_dict
from fsmt_port.files import atomic_directory, check_can_write, sha256, write_json
from fsmt_port.generation.config import GenerationConfig
from fsmt_port.modeling.validation import check_weights_fit
from fsmt_port.modeling.model import DTYPE_CHOICES, DTYPES, FSMTForConditionalGeneration, dtype_name
from fsmt_port.tokenization.tokenizer import FSMTTokenizer

STORAGE_DTYPES = {"keep": None, **{name: DTYPES[name] for name in DTYPE_CHOICES}}


def resolve_langs(args: dict, src_lang: str | None, tgt_lang: str | None, folder: Path) -> tuple[str, str]:
    """Languages from the flags, else from the checkpoint's args/cfg.task."""
    src = src_lang or args.get("source_lang")
    tgt = tgt_lang or args.get("target_lang")
    if not src or not tgt:
        found = sorted(p.name for p in folder.glob("dict.*.txt"))
        raise ConfigError(
            f"the checkpoint does not record its language pair (source_lang/target_lang are None, as "
            f"modern fairseq-train writes them); pass --src-lang and --tgt-lang. Dictionaries in {folder}: "
            f"{', '.join(found) if found else 'none'}")
    return str(src), str(tgt)


def find_bpecodes(folder: Path, override: str | None) -> Path:
    if override:
        return Path(override)
    for name in ("bpecodes", "code"):
        if (folder / name).is_file():
            return folder / name
    raise MissingFileError(f"{folder}: no bpecodes (or code) file next to the checkpoint; pass --bpecodes PATH")


def load_dictionary(path: Path, what: str) -> FairseqDictionary:
    if not path.is_file():
        raise MissingFileError(f"{path}: {what} not found; pass --{'src' if 'source' in what else 'tgt'}-dict PATH")
    return FairseqDictionary.load(path, what=what)


def convert(fsmt_path: str | Path, output_dir: str | Path, *, src_lang: str | None = None,
            tgt_lang: str | None = None, src_dict: str | None = None, tgt_dict: str | None = None,
            bpecodes: str | None = None, force: bool = False, trust_checkpoint: bool = False,
            storage_dtype: str = "keep", generation_overrides: dict | None = None,
            lang: str | None = None, tokenizer: str | None = None) -> Path:
    """Convert one checkpoint; returns the output folder. See the module docstring.

    A ``transformer_lm`` checkpoint (recognised from its task/arch) becomes a language
    model folder: ``dict.txt`` (or ``tgt_dict``) and ``bpecodes`` beside it, no language
    pair; ``lang``/``tokenizer`` say how its text is tokenized (``moses`` needs ``lang``).
    """
    fsmt_path, output_dir = Path(fsmt_path), Path(output_dir)
    check_can_write(output_dir, force, "output folder")
    folder = fsmt_path.parent
    ckpt = load_fairseq_checkpoint(fsmt_path, trust=trust_checkpoint)
    args, state = ckpt["args"], ckpt["model"]
    if is_language_model(args):
        return convert_language_model(
            ckpt, fsmt_path, output_dir, dict_path=tgt_dict, bpecodes=find_bpecodes(folder, bpecodes),
            lang=lang or tgt_lang, tokenizer=tokenizer, force=force, storage_dtype=STORAGE_DTYPES[storage_dtype],
            provenance={"converted_from": fsmt_path.name, "checkpoint_sha256": sha256(fsmt_path)})
    src, tgt = resolve_langs(args, src_lang, tgt_lang, folder)
    src_dictionary = load_dictionary(Path(src_dict) if src_dict else folder / f"dict.{src}.txt", "source dictionary")
    tgt_dictionary = load_dictionary(Path(tgt_dict) if tgt_dict else folder / f"dict.{tgt}.txt", "target dictionary")
    codes_path = find_bpecodes(folder, bpecodes)
    merges = read_bpecodes(codes_path)

    for side, dictionary, key in (("source", src_dictionary, "encoder.embed_tokens.weight"),
                                  ("target", tgt_dictionary, "decoder.embed_tokens.weight")):
        rows = state.get(key)
        if rows is None:
            raise CheckpointError(f"{fsmt_path}: no '{key}' in the model; is this a fairseq transformer?")
        if rows.shape[0] != len(dictionary):
            raise CheckpointError(
                f"{fsmt_path}: {key} has {rows.shape[0]} rows but the {side} dictionary has {len(dictionary)} "
                f"entries (4 specials + file lines); pass the dictionary this model was trained with")

    def version(name: str) -> float:
        tensor = state.get(f"{name}.version")
        return float(tensor.reshape(-1)[0]) if tensor is not None and tensor.numel() else 1.0

    config = config_from_fairseq_args(args, len(src_dictionary), len(tgt_dictionary), [src, tgt],
                                      version("encoder"), version("decoder"), str(fsmt_path))
    try:  # before any module is built: the args' layer counts and sizes are those of the weights
        check_weights_fit(config, {k: v.shape for k, v in state.items()}, f"{fsmt_path} (its args)")
    except ConfigError as err:
        raise CheckpointError(str(err)) from None
    file_state, ignored = convert_state_dict(state, config, str(fsmt_path))
    dtypes = {t.dtype for t in file_state.values()}
    target_dtype = STORAGE_DTYPES[storage_dtype]

    generation = GenerationConfig.from_dict(ckpt["generation"])  # fairseq's cfg.generation: beam 5, lenpen 1, ...
    generation = generation.update(**(generation_overrides or {}))
    if target_dtype is None:
        target_dtype = next(iter(dtypes)) if len(dtypes) == 1 else torch.float32
    # Built on meta, the model takes the (memory-mapped) checkpoint tensors as they are: the
    # weights are never copied in memory before they are written (peak RSS ~ the weights' size).
    with torch.device("meta"):
        model = FSMTForConditionalGeneration(config, generation)
    model.load_file_state(file_state, source=str(fsmt_path), dtype=target_dtype)
    tokenizer = FSMTTokenizer(to_bpe_vocab(src_dictionary.symbols), to_bpe_vocab(tgt_dictionary.symbols),
                              merges, [src, tgt], model_max_length=config.max_source_positions)
    provenance = {
        "converted_from": str(fsmt_path.name),
        "checkpoint_sha256": sha256(fsmt_path),
        "checkpoint_dtypes": sorted(dtype_name(d) for d in dtypes),
        "ignored_checkpoint_keys": ignored,
        "generation_overrides": generation_overrides or {},
    }
    with atomic_directory(output_dir, force=force) as tmp:
        model.save_pretrained(tmp, storage_dtype=target_dtype, generation_provenance={
            "source": "fairseq checkpoint cfg.generation" if ckpt["generation"] else "fairseq defaults",
            **({"overrides": generation_overrides} if generation_overrides else {})})
        tokenizer.save_pretrained(tmp)
        write_json(tmp / "fsmt_port_conversion.json", provenance)
    return output_dir


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("python -m fsmt_port.convert", __doc__, "python -m fsmt_port.convert --fsmt-path "
                            "wmt19.en-de.joined-dict.ensemble/model4.pt --output-dir wmt19-en-de")
    io = parser.add_argument_group("input and output")
    io.add_argument("--fsmt-path", required=True, help="fairseq checkpoint (model*.pt) in its archive folder")
    io.add_argument("--output-dir", required=True, help="folder to write (must not exist unless --force)")
    io.add_argument("--force", action="store_true", help="replace an existing output folder")
    files = parser.add_argument_group("archive files (default: next to the checkpoint)")
    files.add_argument("--src-dict", help="source dictionary (default: dict.SRC.txt)")
    files.add_argument("--tgt-dict", help="target dictionary (default: dict.TGT.txt)")
    files.add_argument("--bpecodes", help="fastBPE codes (default: bpecodes, or code)")
    files.add_argument("--src-lang", help="source language, when the checkpoint does not record it")
    files.add_argument("--tgt-lang", help="target language, when the checkpoint does not record it")
    lm = parser.add_argument_group("language models (fairseq transformer_lm: model.pt + dict.txt + bpecodes)")
    lm.add_argument("--lang", help="moses language of the LM's text (default: en, fairseq's MosesTokenizer "
                                   "default, which its hub uses for every LM)")
    lm.add_argument("--tokenizer", choices=["moses", "none"],
                    help="text tokenizer before BPE, as fairseq's hub `tokenizer=` (default: the checkpoint's, "
                         "else none); transformer_lm.wmt19.* use moses")
    opts = parser.add_argument_group("options")
    opts.add_argument("--dtype", choices=sorted(STORAGE_DTYPES), default="keep",
                      help="storage dtype of model.safetensors (default: %(default)s = as in the checkpoint)")
    opts.add_argument("--trust-checkpoint", action="store_true",
                      help="allow the pickle to run code (only for checkpoints you trust; default: refuse)")
    opts.add_argument("--num-beams", type=int, help="default beam size in generation_config.json")
    opts.add_argument("--length-penalty", type=float, help="default length penalty in generation_config.json")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def job() -> None:
        overrides = {k: v for k, v in (("num_beams", args.num_beams), ("length_penalty", args.length_penalty))
                     if v is not None}
        out = convert(args.fsmt_path, args.output_dir, src_lang=args.src_lang, tgt_lang=args.tgt_lang,
                      src_dict=args.src_dict, tgt_dict=args.tgt_dict, bpecodes=args.bpecodes, force=args.force,
                      trust_checkpoint=args.trust_checkpoint, storage_dtype=args.dtype,
                      generation_overrides=overrides, lang=args.lang, tokenizer=args.tokenizer)
        print(f"wrote {out}", file=sys.stderr)

    return run_cli(job)


if __name__ == "__main__":
    sys.exit(main())
