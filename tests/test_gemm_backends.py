"""Every fp32 GEMM route (MKL, oneDNN packed, the mixed policy used off Intel) reproduces fairseq,
whichever this host picks by default."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import golden
from fsmt_port import FSMTForConditionalGeneration
from fsmt_port.errors import ConfigError
from fsmt_port.modeling import linear
from parity import mismatches, our_kwargs, run_calls, teacher_forced_worst

NGRAM_BUG_CONFIG = "beam5_norepeat2"  # see test_generation_parity


@pytest.fixture
def gemm(monkeypatch):
    """Select a GEMM route for one test: "mkl", "onednn" (every Linear, even one-row calls), "mixed"
    (oneDNN, one-row calls on MKL: the default off Intel) or "auto"."""

    def select(choice: str) -> None:
        monkeypatch.setenv(linear.GEMM_ENV, "onednn" if choice == "mixed" else choice)
        linear.onednn_gemm_enabled.cache_clear()
        if choice == "onednn":
            monkeypatch.setattr(linear, "mkl_layout", lambda rows, in_features, out_features: None)

    yield select
    monkeypatch.undo()
    linear.onednn_gemm_enabled.cache_clear()


def packed_modules(model: nn.Module) -> int:
    return sum(1 for module in model.modules() if module in linear._PACKED)


@pytest.mark.parametrize("choice", ["mkl", "onednn"])
@pytest.mark.parametrize("name", golden.ALL_MODELS)
def test_teacher_forced_log_probs_match_fairseq_on_each_library(name, choice, gemm, converted):
    gemm(choice)
    model = FSMTForConditionalGeneration.from_pretrained(converted(name))
    worst = teacher_forced_worst(model, name)
    assert worst < 1e-5, f"{name} on {choice}: teacher-forced log-probs differ by {worst:.2e}"
    linears = sum(1 for m in model.modules() if isinstance(m, linear.Linear))
    assert packed_modules(model) == (linears if choice == "onednn" else 0)


@pytest.mark.parametrize("choice", ["mkl", "onednn", "mixed"])
def test_small_model_beams_match_fairseq_on_each_library(choice, gemm, converted):
    gemm(choice)
    model = FSMTForConditionalGeneration.from_pretrained(converted(golden.SMALL_MODEL))
    expected = golden.load_expected(golden.SMALL_MODEL)
    ids = {t["index"]: t["ids"] for t in expected["tokenizer"]}
    calls = expected["generation"]["call_plan"]["calls"]
    for config in expected["generation"]["configs"]:
        if config["name"] == NGRAM_BUG_CONFIG:
            continue
        ours = run_calls([model], ids, calls, our_kwargs(config["generate_kwargs"]))
        problems, _ = mismatches(ours, config["results"])
        assert not problems, (choice, config["name"], problems[:5])
    assert (packed_modules(model) > 0) == (choice != "mkl")


@pytest.mark.parametrize("choice", ["mkl", "mixed"])
def test_one_sentence_greedy_calls_match_fairseq(choice, gemm, converted):
    """Batch-1 greedy decoding: every GEMM has one row, the MKL GEMV route of the mixed policy."""
    gemm(choice)
    model = FSMTForConditionalGeneration.from_pretrained(converted(golden.SMALL_MODEL))
    expected = golden.load_expected(golden.SMALL_MODEL)
    ids = {t["index"]: t["ids"] for t in expected["tokenizer"]}
    config = next(c for c in expected["generation"]["configs"] if c["name"] == "beam1")
    ours = run_calls([model], ids, [[entry["index"]] for entry in config["results"]],
                     our_kwargs(config["generate_kwargs"]))
    problems, _ = mismatches(ours, config["results"])
    assert not problems, (choice, problems[:5])
    relaid = sum(1 for module in model.modules() if module in linear._COLUMN_MAJOR)
    assert (relaid > 0) == (choice == "mixed")


def test_linear_is_a_drop_in_nn_linear():
    layer = linear.Linear(8, 5)
    assert isinstance(layer, nn.Linear)
    assert list(layer.state_dict()) == list(nn.Linear(8, 5).state_dict()) == ["weight", "bias"]


def test_packed_weight_follows_in_place_and_replaced_weights(gemm):
    gemm("onednn")
    torch.manual_seed(0)
    layer = linear.Linear(64, 48)
    x = torch.randn(3, 7, 64)
    with torch.inference_mode():
        first = layer(x)
        assert layer in linear._PACKED
        assert torch.allclose(first, F.linear(x, layer.weight, layer.bias), atol=1e-5)
        layer.weight.mul_(2)  # in place: version bump
        assert torch.allclose(layer(x), F.linear(x, layer.weight, layer.bias), atol=1e-5)
    layer.load_state_dict({"weight": torch.randn(48, 64), "bias": torch.zeros(48)})
    layer.weight = nn.Parameter(torch.randn(48, 64))  # a new tensor, maybe at the old address
    with torch.inference_mode():
        assert torch.allclose(layer(x), F.linear(x, layer.weight, layer.bias), atol=1e-5)
    assert layer(x).requires_grad  # training keeps torch's autograd path


def test_mkl_choice_never_packs(gemm):
    gemm("mkl")
    layer = linear.Linear(256, 6048, bias=False)
    with torch.inference_mode():
        layer(torch.randn(160, 256))
    assert layer not in linear._PACKED


def test_an_unknown_gemm_choice_is_one_clear_error(monkeypatch):
    monkeypatch.setenv(linear.GEMM_ENV, "openblas")
    linear.onednn_gemm_enabled.cache_clear()
    try:
        with pytest.raises(ConfigError, match=r"FSMT_PORT_GEMM='openblas' is not one of auto, mkl, onednn"):
            linear.onednn_gemm_enabled()
    finally:
        monkeypatch.undo()
        linear.onednn_gemm_enabled.cache_clear()


def test_one_row_calls_go_to_mkl_and_the_rest_to_onednn():
    assert linear.mkl_layout(1, 256, 768) == "column"  # small-en-de q/k/v, batch-1 greedy: a GEMV
    assert linear.mkl_layout(1, 1024, 256) == "row"  # fc2: wider than tall, MKL on the file's layout
    assert linear.mkl_layout(1, 1024, 4096) is None  # too wide for a column-major copy: packed oneDNN
    assert linear.mkl_layout(0, 256, 256) == "row"  # empty input: nothing for oneDNN to do
    assert all(linear.mkl_layout(rows, 256, 256) is None for rows in (2, 5, 160))


def test_gemm_heights_are_bucketed_with_little_padding():
    heights = {rows: linear.bucket_rows(rows) for rows in range(1, linear.MAX_BLOCK_ROWS + 1)}
    assert len(set(heights.values())) <= 43  # oneDNN keeps a kernel per height and weight shape
    assert all(0 <= height - rows < (16 if rows <= 256 else 64) for rows, height in heights.items())
    assert heights[160] == 160 and heights[640] == 640  # beam 5 over 32 and 128 sentences: no padding


@pytest.mark.parametrize("rows", [0, 1, 3, 17, 300, 700, 2100])
@pytest.mark.parametrize("shape", [(256, 768), (1024, 256), (64, 64)])
def test_every_route_computes_the_linear(rows, shape, gemm):
    gemm("mixed")
    torch.manual_seed(rows)
    layer = linear.Linear(*shape)
    x = torch.randn(rows, shape[0])
    with torch.inference_mode():
        assert torch.allclose(layer(x), F.linear(x, layer.weight, layer.bias), atol=1e-5)
        assert layer(x.view(rows, 1, shape[0])).shape == (rows, 1, shape[1])


@pytest.mark.parametrize("vendor,expected", [("GenuineIntel", False), ("AuthenticAMD", True), ("", False)])
def test_auto_picks_onednn_off_intel_x86(vendor, expected, monkeypatch):
    monkeypatch.setenv(linear.GEMM_ENV, "auto")
    monkeypatch.setattr(linear, "cpu_vendor", lambda: vendor)
    monkeypatch.setattr(linear.platform, "machine", lambda: "x86_64")
    linear.onednn_gemm_enabled.cache_clear()
    try:
        assert linear.onednn_gemm_enabled() is (expected and torch.backends.mkldnn.is_available())
    finally:
        monkeypatch.undo()
        linear.onednn_gemm_enabled.cache_clear()


def test_fsmt_translate_refuses_an_unknown_gemm_choice_before_any_work(monkeypatch, capsys, converted, tmp_path):
    from fsmt_port.translation.cli import main as translate_main

    source, out = tmp_path / "in.en", tmp_path / "out.de"
    source.write_text("A man.\n", encoding="utf-8")
    monkeypatch.setenv(linear.GEMM_ENV, "blas")
    linear.onednn_gemm_enabled.cache_clear()
    try:
        code = translate_main([str(converted("tiny-en-de-joint")), "--input", str(source), "--output", str(out)])
    finally:
        monkeypatch.undo()
        linear.onednn_gemm_enabled.cache_clear()
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "FSMT_PORT_GEMM='blas'" in err[0] and "Traceback" not in err[0]
    assert not out.exists()


@pytest.mark.parametrize("choice", ["onednn", "mixed"])
def test_a_model_built_under_inference_mode_runs(choice, gemm):
    gemm(choice)
    torch.manual_seed(1)
    with torch.inference_mode():  # its weights are inference tensors: no version counter to read
        layer = linear.Linear(256, 768)
        for rows in (1, 5):
            x = torch.randn(rows, 256)
            assert torch.allclose(layer(x), F.linear(x, layer.weight, layer.bias), atol=1e-5)
