"""Round trips with transformers' FSMT, both ways.

transformers reads our folders (post-norm, sinusoidal variants) and computes the
same logits; folders saved by transformers (the hub's ``facebook/wmt19-*`` format,
safetensors or ``pytorch_model.bin``) load in fsmt_port with the same logits.
Note: transformers 5.x's FSMT gives wrong logits for multi-token
``decoder_input_ids`` when its KV cache is on, so it is compared with ``use_cache=False``.
"""

from __future__ import annotations

import shutil

import pytest
import torch

import golden
from fsmt_port import FSMTForConditionalGeneration, FSMTTokenizer
from fsmt_port.errors import FSMTPortError

HF_EXPRESSIBLE = ("tiny-en-de-joint", "tiny-en-fr-separate", "tiny-en-de-joint-legacy", "small-en-de")


def _teacher_forced_inputs(name):
    case = golden.load_expected(name)["teacher_forced"][0]
    return torch.tensor([case["src_ids"]]), torch.tensor([case["prev_output_tokens"]])


def _logits(model, src, prev, **kwargs):
    with torch.no_grad():
        return model(input_ids=src, decoder_input_ids=prev, **kwargs).logits


@pytest.mark.parametrize("name", HF_EXPRESSIBLE)
def test_transformers_reads_our_folder_with_same_logits_and_ids(name, converted):
    transformers = pytest.importorskip("transformers")
    folder = converted(name)
    theirs = transformers.FSMTForConditionalGeneration.from_pretrained(folder, dtype=torch.float32)
    ours = FSMTForConditionalGeneration.from_pretrained(folder)
    src, prev = _teacher_forced_inputs(name)
    diff = (_logits(theirs, src, prev, use_cache=False) - _logits(ours, src, prev)).abs().max().item()
    assert diff < 1e-4, diff
    hf_tok = transformers.FSMTTokenizer.from_pretrained(folder)
    our_tok = FSMTTokenizer.from_pretrained(folder)
    for line in golden.flickr_lines("en")[:20]:
        assert hf_tok(line)["input_ids"] == our_tok.encode(line)


@pytest.mark.parametrize("name", ["tiny-en-fr-separate", "small-en-de"])
@pytest.mark.parametrize("fmt", ["safetensors", "pytorch_model.bin"])
def test_folder_saved_by_transformers_loads_in_fsmt_port(name, fmt, converted, tmp_path):
    transformers = pytest.importorskip("transformers")
    theirs = transformers.FSMTForConditionalGeneration.from_pretrained(converted(name), dtype=torch.float32)
    folder = tmp_path / "hf"
    theirs.save_pretrained(folder)
    if fmt == "pytorch_model.bin":  # the older hub format: a pickle, loaded with the safe loader
        (folder / "model.safetensors").unlink()
        torch.save(theirs.state_dict(), folder / "pytorch_model.bin")
    for extra in ("vocab-src.json", "vocab-tgt.json", "merges.txt", "tokenizer_config.json"):
        shutil.copy(converted(name) / extra, folder / extra)
    ours = FSMTForConditionalGeneration.from_pretrained(folder)
    src, prev = _teacher_forced_inputs(name)
    diff = (_logits(theirs, src, prev, use_cache=False) - _logits(ours, src, prev)).abs().max().item()
    assert diff < 1e-4, diff
    assert FSMTTokenizer.from_pretrained(folder).encode("A man.") == FSMTTokenizer.from_pretrained(
        converted(name)).encode("A man.")


def test_transformers_refuses_variants_it_cannot_compute(converted):
    """Pre-norm/learned/layernorm_embedding: ``model_type: fsmt_port``, which transformers' Auto classes refuse.

    (Forcing ``transformers.FSMTForConditionalGeneration`` on it still only warns: that is transformers' choice.)
    """
    transformers = pytest.importorskip("transformers")
    with pytest.raises(ValueError, match="fsmt_port"):
        transformers.AutoModelForSeq2SeqLM.from_pretrained(converted("tiny-en-cs-variant"))
    # ...while fsmt_port reads it.
    assert FSMTForConditionalGeneration.from_pretrained(converted("tiny-en-cs-variant")).config.layernorm_embedding


def test_weights_that_do_not_fit_the_config_are_refused(converted, tmp_path):
    folder = tmp_path / "broken"
    shutil.copytree(converted("tiny-en-de-joint"), folder)
    from safetensors.torch import load_file, save_file

    weights = load_file(str(folder / "model.safetensors"))
    weights.pop("model.decoder.layers.1.fc2.weight")
    weights["model.decoder.extra.weight"] = torch.zeros(2)
    save_file(weights, str(folder / "model.safetensors"))
    with pytest.raises(FSMTPortError, match="missing: .*fc2.*unexpected"):
        FSMTForConditionalGeneration.from_pretrained(folder)
