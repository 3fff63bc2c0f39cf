"""A damaged or hostile model folder fails in one line naming the file and the field, fast.

config.json is checked for every field's type and range and against the safetensors
header before any module is built; generation_config.json and tokenizer_config.json
for their types; the vocab files for their form. The fuzz test mutates all of them
and accepts a clean ``FSMTPortError`` or a working load, nothing else, within a few
seconds per case.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsmt_port import Translator
from fsmt_port.errors import ConfigError, FSMTPortError
from fsmt_port.modeling.configuration import FSMTConfig
from fsmt_port.modeling.validation import check_weights_fit, read_weight_shapes
from fsmt_port.translation.cli import main as translate_main

MODEL = "tiny-en-de-joint"
SECONDS_PER_CASE = 20  # a case that builds modules for 10^8 layers would take minutes


@contextlib.contextmanager
def time_limit(seconds: int):
    def expire(signum, frame):  # noqa: ARG001
        raise TimeoutError(f"loading took more than {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def folder(converted, tmp_path):
    out = tmp_path / "model"
    shutil.copytree(converted(MODEL), out)
    return out


def edit_json(path, **changes):
    data = json.loads(path.read_text(encoding="utf-8"))
    data.update(changes)
    path.write_text(json.dumps(data), encoding="utf-8")


def translate_cli(folder, tmp_path, capsys) -> tuple[int, str]:
    source = tmp_path / "in.txt"
    source.write_text("Hello world.\n", encoding="utf-8")
    with time_limit(SECONDS_PER_CASE):
        code = translate_main([str(folder), "--input", str(source), "--quiet"])
    return code, capsys.readouterr().err.strip()


@pytest.mark.parametrize("field,value,message", [
    ("encoder_layers", 100_000_000, "encoder_layers=100000000 does not match the weights (they hold"),
    ("decoder_layers", 1, "decoder_layers=1 does not match the weights"),
    ("encoder_embed_dim", -5, "encoder_embed_dim=-5 must be a positive integer"),
    ("decoder_ffn_dim", "64", "decoder_ffn_dim='64' must be an integer"),
    ("encoder_attention_heads", 3, "is not divisible by encoder_attention_heads=3"),
    ("fairseq_activation_fn", "sigmoid", "activation_function='sigmoid' is not supported"),
    ("max_source_positions", 10**12, "max_source_positions=1000000000000 must be between 1 and"),
    ("share_all_embeddings", "yes", "share_all_embeddings='yes' must be true or false"),
    ("pad_token_id", 0, "pad_token_id=0 must be 1"),
    ("layer_norm_eps", 10**400, "layer_norm_eps="),
])
def test_bad_config_fields_are_one_line_naming_file_and_field(folder, tmp_path, capsys, field, value, message):
    edit_json(folder / "config.json", **{field: value})
    code, err = translate_cli(folder, tmp_path, capsys)
    assert code == 2 and "\n" not in err and err.startswith("error: "), err
    assert str(folder / "config.json") in err and message in err, err


def test_a_transformers_style_config_with_a_negative_d_model(folder, tmp_path, capsys):
    data = json.loads((folder / "config.json").read_text())
    for key in ("encoder_embed_dim", "decoder_embed_dim"):
        del data[key]
    data["d_model"] = -5
    (folder / "config.json").write_text(json.dumps(data))
    code, err = translate_cli(folder, tmp_path, capsys)
    assert code == 2 and "config.json" in err and "encoder_embed_dim=-5 must be a positive integer" in err, err


def test_the_header_is_checked_before_anything_is_built(folder, monkeypatch):
    """The layer count comes from the safetensors header: no module is built for a wrong one."""
    import fsmt_port.modeling.model as model_module

    edit_json(folder / "config.json", encoder_layers=100_000_000)
    built = []
    monkeypatch.setattr(model_module, "FSMTModel", lambda config: built.append(config))
    with pytest.raises(ConfigError, match="encoder_layers"):
        model_module.FSMTForConditionalGeneration.from_pretrained(folder)
    assert built == []
    shapes = read_weight_shapes(folder / "model.safetensors")
    config = json.loads((folder / "config.json").read_text())
    layers = {int(k.split(".")[3]) for k in shapes if k.startswith("model.encoder.layers.")}
    config["encoder_layers"] = len(layers)
    check_weights_fit(FSMTConfig.from_dict(config), shapes)  # the real count passes


def test_generation_and_tokenizer_config_types(folder, tmp_path, capsys):
    edit_json(folder / "generation_config.json", num_beams="5")
    code, err = translate_cli(folder, tmp_path, capsys)
    assert code == 2 and "generation_config.json" in err and "num_beams='5' must be an integer" in err, err
    edit_json(folder / "generation_config.json", num_beams=5)
    edit_json(folder / "tokenizer_config.json", model_max_length="1024")
    code, err = translate_cli(folder, tmp_path, capsys)
    assert code == 2 and "tokenizer_config.json" in err and "model_max_length='1024'" in err, err


def test_hostile_fairseq_args_do_not_build_a_huge_model(tmp_path, capsys):
    """The converter checks the checkpoint's args against its tensors before building anything."""
    import golden
    from fsmt_port.fairseq.convert import main as convert_main

    archive = tmp_path / "archive"
    shutil.copytree(golden.checkpoint_path(MODEL).parent, archive)
    checkpoint = archive / golden.CHECKPOINT[MODEL]
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    if state.get("args") is not None:
        state["args"].encoder_layers = 100_000_000
    else:
        state["cfg"]["model"].encoder_layers = 100_000_000
    torch.save(state, checkpoint)
    src, tgt = golden.langs(MODEL)
    with time_limit(SECONDS_PER_CASE):
        code = convert_main(["--fsmt-path", str(checkpoint), "--output-dir", str(tmp_path / "out"),
                             "--src-lang", src, "--tgt-lang", tgt, "--trust-checkpoint"])
    err = capsys.readouterr().err
    assert code == 2 and "encoder_layers=100000000 does not match the weights" in err, err
    assert not (tmp_path / "out").exists()


# --- fuzzing -----------------------------------------------------------------------------------------

JSON_FILES = ("config.json", "generation_config.json", "tokenizer_config.json", "vocab-src.json", "vocab-tgt.json")
SPECIAL_VALUES = [0, -1, 1, 2, 3, 4, 7, 10**8, 2**63, 10**400, 1e-300, 0.5, "", "relu", "x", None, True, False,
                  [], {}, ["en"], ["en", "de", "fr"], float("nan"), float("inf")]
json_values = st.one_of(
    st.sampled_from(SPECIAL_VALUES),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.lists(st.integers(-3, 8), max_size=3),
)
mutations = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(JSON_FILES), st.integers(0, 200), json_values),
    st.tuples(st.just("delete"), st.sampled_from(JSON_FILES), st.integers(0, 200), st.none()),
    st.tuples(st.just("replace"), st.sampled_from(JSON_FILES + ("merges.txt",)), st.integers(0, 0), json_values),
    st.tuples(st.just("truncate"), st.sampled_from(JSON_FILES + ("merges.txt",)), st.integers(0, 10**6),
              st.none()),
    st.tuples(st.just("garble"), st.sampled_from(JSON_FILES + ("merges.txt",)), st.integers(0, 10**6),
              st.binary(min_size=1, max_size=4)),
)


def mutate(folder, mutation) -> None:
    kind, name, position, value = mutation
    path = folder / name
    if kind in ("truncate", "garble"):
        data = path.read_bytes()
        cut = position % (len(data) + 1)
        path.write_bytes(data[:cut] if kind == "truncate" else data[:cut] + value + data[cut + len(value):])
        return
    if kind == "replace":
        path.write_text(json.dumps(value), encoding="utf-8")
        return
    data = json.loads(path.read_text(encoding="utf-8"))
    keys = sorted(data)
    key = keys[position % len(keys)] if position < 150 or kind == "delete" else f"new_key_{position}"
    if kind == "delete":
        data.pop(key)
    else:
        data[key] = value
    path.write_text(json.dumps(data), encoding="utf-8")


@settings(max_examples=50, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(mutation=mutations)
def test_fuzzed_model_folders_load_or_fail_cleanly(converted, tmp_path_factory, mutation):
    folder = tmp_path_factory.mktemp("fuzz") / "model"
    shutil.copytree(converted(MODEL), folder)
    mutate(folder, mutation)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny model, one sentence: no gain from a thread team, only its start-up
    try:
        with time_limit(SECONDS_PER_CASE):
            translator = Translator.from_pretrained(folder)
            [result] = translator.translate(["Hello world."], max_len_b=5, min_len=1)
    except FSMTPortError as err:
        message = str(err)
        assert message and "\n" not in message, message
        return
    finally:
        torch.set_num_threads(threads)
        shutil.rmtree(folder.parent, ignore_errors=True)
    assert result.hypotheses and all(isinstance(h.text, str) for h in result.hypotheses)
