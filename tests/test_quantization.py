"""``--quantize int8``: per-row int8 weights and activations on ``torch._int_mm``, with no deprecated API."""

from __future__ import annotations

import subprocess
import sys
import warnings

import torch
from torch import nn

import golden
from fsmt_port import FSMTForConditionalGeneration
from fsmt_port.modeling.quantization import Int8Linear, quantize_int8
from fsmt_port.translation.translator import Translator


def test_per_row_scales_keep_small_rows_accurate():
    """A row 1000x smaller than another keeps ~1% relative error (a per-tensor scale rounds it to 0)."""
    torch.manual_seed(0)
    linear = nn.Linear(64, 2)
    with torch.no_grad():
        linear.weight[0].normal_(0, 1e-3)
        linear.weight[1].normal_(0, 1.0)
        linear.bias.zero_()
    x = torch.randn(16, 64)
    exact = linear(x)
    approx = Int8Linear(linear)(x)
    for row in range(2):
        error = (approx[:, row] - exact[:, row]).norm() / exact[:, row].norm()
        assert error < 0.02, (row, float(error))


def test_every_linear_is_quantized_and_outputs_stay_close(converted):
    model = quantize_int8(FSMTForConditionalGeneration.from_pretrained(converted(golden.SMALL_MODEL)))
    assert not any(isinstance(m, nn.Linear) for m in model.modules())
    assert sum(isinstance(m, Int8Linear) for m in model.modules()) == 3 * 4 + 3 * 7 + 1
    # The embedding tied to the output projection is still the fp32 one.
    assert model.model.decoder.embed_tokens.weight.dtype == torch.float32


def test_int8_translations_agree_with_fairseq_and_warn_nothing(converted):
    """Top-1 agreement with fairseq's fp32 golden hypotheses on 200 test sentences, and no warning
    (torch.ao.quantization's deprecation warning was printed on every --quantize int8 run)."""
    lines = golden.flickr_lines("en")[:200]
    reference = (golden.model_dir(golden.SMALL_MODEL) / "test_2016_flickr.model4.hyp.de")
    fairseq = reference.read_text(encoding="utf-8").splitlines()[:200]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        translator = Translator.from_pretrained(converted(golden.SMALL_MODEL), quantize="int8")
        ours = [t.hypotheses[0].text for t in translator.translate(lines, num_beams=5, batch_size=32, nbest=1)]
    assert [str(w.message)[:80] for w in caught] == []
    same = sum(a == b for a, b in zip(ours, fairseq))
    assert same >= 180, same  # CTranslate2 int8 on the same model: 914/1000


def test_int8_command_line_prints_no_warning(converted, tmp_path):
    source = tmp_path / "in.en"
    source.write_text("A man is riding a bike .\nTwo dogs play in the snow .\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "fsmt_port.translate", str(converted(golden.SMALL_MODEL)),
                           "--input", str(source), "--quantize", "int8", "--num-beams", "5", "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 2
    assert "warn" not in done.stderr.lower() and "deprecat" not in done.stderr.lower(), done.stderr
