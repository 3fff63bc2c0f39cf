"""Convert a fairseq ``transformer_lm`` checkpoint (``model.pt`` + ``dict.txt`` + ``bpecodes``).

Called by ``python -m fsmt_port.convert`` when the checkpoint's task/arch is a
language model. The folder holds ``config.json`` (``model_type: fsmt_port_lm``),
``model.safetensors`` and the tokenizer files (the LM's one dictionary as both
vocabularies), written atomically.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from fsmt_port.errors import CheckpointError, ConfigError
from fsmt_port.fairseq.dictionary import FairseqDictionary, to_bpe_vocab
from fsmt_port.fairseq.lm_arch import lm_config_from_fairseq_args
from fsmt_port.files import atomic_directory
from fsmt_port.modeling.language_model import TransformerLM
from fsmt_port.tokenization.tokenizer import FSMTTokenizer

#: Keys fairseq itself discards on load, and why.
IGNORED = {
    r"^decoder\.version$": "format version marker (read for the final LayerNorm rule)",
    r"^decoder\.embed_positions\._float_tensor$": "sinusoidal placeholder buffer (2019 layout)",
}


def lm_state_dict(state: dict[str, torch.Tensor], share_embed: bool, learned_pos: bool,
                  source: str) -> tuple[dict[str, torch.Tensor], list[str]]:
    """fairseq LM keys -> file keys (``decoder.*``, q/k/v separate); returns (state, ignored keys)."""
    out: dict[str, torch.Tensor] = {}
    ignored: list[str] = []
    for key, tensor in state.items():
        sinusoidal_table = key == "decoder.embed_positions.weights" or (
            key == "decoder.embed_positions.weight" and not learned_pos)
        if sinusoidal_table or any(re.match(p, key) for p in IGNORED):
            ignored.append(key)
            continue
        key = "decoder.output_projection.weight" if key == "decoder.embed_out" else key
        match = re.match(r"^(.*)\.in_proj_(weight|bias)$", key)
        if match:  # 2019 fused projection: rows [q; k; v]
            for part, chunk in zip("qkv", tensor.chunk(3, dim=0)):
                out[f"{match.group(1)}.{part}_proj.{match.group(2)}"] = chunk
        else:
            out[key] = tensor
    if share_embed:
        output = out.pop("decoder.output_projection.weight", None)
        if output is not None and not torch.equal(output, out.get("decoder.embed_tokens.weight", output)):
            raise CheckpointError(f"{source}: decoder.output_projection.weight differs from decoder.embed_tokens.weight "
                                  "although share_decoder_input_output_embed is set")
    return out, ignored


def convert_language_model(ckpt: dict, fsmt_path: Path, output_dir: Path, *, dict_path: str | None,
                           bpecodes: Path, lang: str | None, tokenizer: str | None, force: bool,
                           storage_dtype: torch.dtype | None, provenance: dict) -> Path:
    args, state = ckpt["args"], ckpt["model"]
    dict_file = Path(dict_path) if dict_path else fsmt_path.parent / "dict.txt"
    if not dict_file.is_file():
        raise ConfigError(f"{dict_file}: the language model's dictionary (dict.txt) is not next to the checkpoint; "
                          "pass --tgt-dict PATH")
    dictionary = FairseqDictionary.load(dict_file, what="language model dictionary")
    rows = state.get("decoder.embed_tokens.weight")
    if rows is None or rows.shape[0] != len(dictionary):
        raise CheckpointError(f"{fsmt_path}: decoder.embed_tokens.weight has "
                              f"{None if rows is None else rows.shape[0]} rows but {dict_file} has "
                              f"{len(dictionary)} entries; pass the dictionary this model was trained with")
    tokenizer = tokenizer or ("moses" if ckpt.get("tokenizer") == "moses" else "none")
    if tokenizer == "moses" and not lang:
        lang = "en"  # fairseq's MosesTokenizerConfig.source_lang default, what its LM hub uses
    version = state.get("decoder.version")
    config = lm_config_from_fairseq_args(
        args, len(dictionary), float(version.reshape(-1)[0]) if version is not None and version.numel() else 1.0,
        str(fsmt_path), lang or "xx", tokenizer)
    file_state, ignored = lm_state_dict(state, config.share_decoder_input_output_embed, config.decoder_learned_pos,
                                        str(fsmt_path))
    dtypes = {t.dtype for t in file_state.values()}
    target = storage_dtype or (next(iter(dtypes)) if len(dtypes) == 1 else torch.float32)
    with torch.device("meta"):
        model = TransformerLM(config)
    model.load_file_state(file_state, str(fsmt_path), dtype=target)
    from fsmt_port.tokenization.bpe import read_bpecodes

    vocab = to_bpe_vocab(dictionary.symbols)
    text_tokenizer = FSMTTokenizer(vocab, vocab, read_bpecodes(bpecodes), [config.lang, config.lang],
                                   model_max_length=config.max_target_positions)
    provenance = {**provenance, "ignored_checkpoint_keys": ignored,
                  "checkpoint_dtypes": sorted(str(d).replace("torch.", "") for d in dtypes)}
    with atomic_directory(output_dir, force=force) as tmp:
        model.save_pretrained(tmp, storage_dtype=target)
        text_tokenizer.save_pretrained(tmp)
        (tmp / "fsmt_port_conversion.json").write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")
    return output_dir
