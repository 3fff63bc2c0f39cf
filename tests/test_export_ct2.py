"""``fsmt_port.export.ct2``: CTranslate2's greedy output on the export equals ours, token for token.

Every fixture model (post-norm and pre-norm, sinusoidal and learned positions,
shared and separate vocabularies, 2019 layout) on all 153 golden sentences, and
random models for the options the fixtures do not cover (mixed norm placement,
different head counts per side, no positions, other activations). What
CTranslate2 cannot run is refused with every reason.
"""

from __future__ import annotations

import shutil
import sys

import pytest
import torch

import golden
from fsmt_port import FSMTConfig, FSMTForConditionalGeneration
from fsmt_port.errors import ConfigError
from fsmt_port.export.ct2 import export_ct2, ids_to_tokens, main, tokens_to_ids, unsupported_features, vocabulary
from fsmt_port.tokenization.tokenizer import FSMTTokenizer
from parity import left_padded

MAX_LEN = 200


def _ctranslate2():
    """The optional package, or skip the test that needs it (the others still run without it)."""
    return pytest.importorskip("ctranslate2")


def _comparable(tokens: list[int]) -> list[int]:
    """Without the final </s>; at the length limit fairseq forces </s> where CTranslate2 just stops."""
    body = tokens[:-1] if tokens and tokens[-1] == 2 else tokens
    return body[:MAX_LEN]


def _ours(model, sources: list[list[int]], beam: int) -> list[list[int]]:
    out = model.generate(left_padded(sources), num_beams=beam, max_len_b=MAX_LEN, return_dict_in_generate=True)
    return [_comparable(h[0].tokens.tolist()) for h in out.hypotheses]


def _theirs(ct2_dir, model_dir, sources: list[list[int]], beam: int) -> list[list[int]]:
    tokenizer = FSMTTokenizer.from_pretrained(model_dir)
    src_tokens = vocabulary(tokenizer.src_dict.symbols)
    tgt_index = {t: i for i, t in enumerate(vocabulary(tokenizer.tgt_dict.symbols))}
    translator = _ctranslate2().Translator(str(ct2_dir), device="cpu", intra_threads=2)
    results = translator.translate_batch([ids_to_tokens(s, src_tokens) for s in sources], beam_size=beam,
                                         max_decoding_length=MAX_LEN, return_end_token=True)
    return [_comparable(tokens_to_ids(r.hypotheses[0], tgt_index)) for r in results]


@pytest.mark.parametrize("name", golden.ALL_MODELS)
def test_greedy_output_of_the_export_equals_ours(name, converted, tmp_path):
    _ctranslate2()
    model_dir = converted(name)
    export_ct2(model_dir, tmp_path / "ct2")
    sources = [t["ids"] for t in golden.load_expected(name)["tokenizer"]]
    model = FSMTForConditionalGeneration.from_pretrained(model_dir)
    ours, theirs = _ours(model, sources, 1), _theirs(tmp_path / "ct2", model_dir, sources, 1)
    empty = [i for i, s in enumerate(sources) if s == [2]]
    assert len(empty) == 2 and all(theirs[i] == [] != ours[i] for i in empty)  # CTranslate2 limitation
    different = [i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b and i not in empty]
    assert not different, f"{len(different)}/{len(sources)} differ, e.g. sentence {different[0]}"


def test_beam_search_of_the_export_mostly_agrees(converted, tmp_path):
    """Beam 5: CTranslate2's search differs from fairseq's in details, so agreement is high, not total."""
    _ctranslate2()
    model_dir = converted(golden.SMALL_MODEL)
    export_ct2(model_dir, tmp_path / "ct2")
    sources = [t["ids"] for t in golden.load_expected(golden.SMALL_MODEL)["tokenizer"]][:100]
    model = FSMTForConditionalGeneration.from_pretrained(model_dir)
    ours, theirs = _ours(model, sources, 5), _theirs(tmp_path / "ct2", model_dir, sources, 5)
    assert sum(a == b for a, b in zip(ours, theirs)) >= 97


def _random_model(tmp_path, converted, **overrides):
    """A random model with the small-en-de vocabularies, saved as a converted folder."""
    small = converted(golden.SMALL_MODEL)
    config = FSMTConfig(**{"src_vocab_size": 6048, "tgt_vocab_size": 6048, "encoder_embed_dim": 32,
                           "decoder_embed_dim": 32, "encoder_ffn_dim": 64, "decoder_ffn_dim": 64,
                           "encoder_layers": 2, "decoder_layers": 2, "encoder_attention_heads": 4,
                           "decoder_attention_heads": 4, **overrides})
    torch.manual_seed(0)
    model = FSMTForConditionalGeneration(config)
    with torch.no_grad():  # large enough logits that argmax is never a near-tie
        model.model.decoder.output_projection.weight.normal_(0, 1.0)
    folder = tmp_path / "model"
    folder.mkdir()
    model.save_pretrained(folder)  # config.json, generation_config.json, model.safetensors
    for name in ("vocab-src.json", "vocab-tgt.json", "merges.txt", "tokenizer_config.json"):
        shutil.copy(small / name, folder / name)
    return folder


VARIANTS = {
    "pre-norm encoder, post-norm decoder": {"encoder_normalize_before": True, "encoder_final_layer_norm": True},
    "post-norm encoder, pre-norm decoder without final norm": {"decoder_normalize_before": True},
    "different heads and ffn per side": {"encoder_attention_heads": 2, "decoder_attention_heads": 8,
                                         "encoder_ffn_dim": 48},
    "no positions, tanh": {"no_token_positional_embeddings": True, "activation_function": "tanh"},
    "learned decoder positions, swish, unscaled": {"decoder_learned_pos": True, "activation_function": "swish",
                                                   "scale_embedding": False},
    "gelu_accurate, layernorm_embedding, shared": {"activation_function": "gelu_accurate",
                                                   "layernorm_embedding": True, "share_all_embeddings": True,
                                                   "share_decoder_input_output_embed": True},
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_architecture_options_export_exactly(variant, tmp_path, converted):
    _ctranslate2()
    model_dir = _random_model(tmp_path, converted, **VARIANTS[variant])
    export_ct2(model_dir, tmp_path / "ct2")
    sources = [t["ids"] for t in golden.load_expected(golden.SMALL_MODEL)["tokenizer"]][:40]
    model = FSMTForConditionalGeneration.from_pretrained(model_dir)
    ours = _ours(model, sources, 1)
    theirs = _theirs(tmp_path / "ct2", model_dir, sources, 1)
    assert sum(a == b for a, b in zip(ours, theirs)) == len(sources)


def test_what_ctranslate2_cannot_run_is_refused_with_every_reason(tmp_path, converted):
    config = FSMTConfig(activation_function="relu_squared", encoder_final_layer_norm=True)
    reasons = unsupported_features(config)
    assert len(reasons) == 2 and "relu_squared" in reasons[0] and "post-norm encoder" in reasons[1]
    _ctranslate2()  # export_ct2 looks for the package before anything else
    model_dir = _random_model(tmp_path, converted, activation_function="linear")
    with pytest.raises(ConfigError, match="CTranslate2 cannot run this model: activation 'linear'"):
        export_ct2(model_dir, tmp_path / "ct2")
    assert not (tmp_path / "ct2").exists()


def test_cli_quantized_export_and_force(tmp_path, converted, capsys):
    _ctranslate2()
    model_dir = converted("tiny-en-de-joint")
    out = tmp_path / "ct2"
    assert main([str(model_dir), str(out), "--quantization", "int8"]) == 0
    assert (out / "model.bin").is_file() and (out / "shared_vocabulary.json").is_file()
    assert _ctranslate2().Translator(str(out), compute_type="int8").translate_batch([["▁x", "</s>"]])
    assert main([str(model_dir), str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main([str(model_dir), str(out), "--force"]) == 0


def test_missing_ctranslate2_is_a_clear_error(tmp_path, converted, monkeypatch):
    monkeypatch.setitem(sys.modules, "ctranslate2", None)
    with pytest.raises(ConfigError, match=r"pip install 'fsmt_port\[ct2\]'"):
        export_ct2(converted("tiny-en-de-joint"), tmp_path / "ct2")
