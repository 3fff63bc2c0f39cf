"""Teacher-forced log-probs and encoder output equal fairseq's, for every fixture model."""

from __future__ import annotations

import pytest
import torch

import golden
from fsmt_port import FSMTForConditionalGeneration
from parity import teacher_forced_worst


@pytest.mark.parametrize("name", golden.ALL_MODELS)
def test_teacher_forced_log_probs_match_fairseq(name, converted):
    model = FSMTForConditionalGeneration.from_pretrained(converted(name))
    worst = teacher_forced_worst(model, name)
    assert worst < 1e-5, f"{name}: teacher-forced log-probs differ by {worst:.2e}"


def test_left_and_right_padding_give_the_same_logits(converted):
    """Positions skip padding (fairseq's make_positions), so padding never changes a sentence."""
    model = FSMTForConditionalGeneration.from_pretrained(converted("tiny-en-cs-variant"))
    case = golden.load_expected("tiny-en-cs-variant")["teacher_forced"][0]
    src, prev = case["src_ids"], torch.tensor([case["prev_output_tokens"]])
    with torch.inference_mode():
        alone = model(input_ids=torch.tensor([src]), decoder_input_ids=prev).logits
        padded = model(input_ids=torch.tensor([[1, 1, 1] + src]), decoder_input_ids=prev).logits
        right = model(input_ids=torch.tensor([src + [1, 1]]), attention_mask=torch.tensor([[1] * len(src) + [0, 0]]),
                      decoder_input_ids=prev).logits
    assert (alone - padded).abs().max() < 1e-5
    assert (alone - right).abs().max() < 1e-5


def test_sinusoidal_positions_follow_fairseq_layout():
    from fsmt_port.modeling.positions import make_positions, sinusoidal_table

    table = sinusoidal_table(10, 6, padding_idx=1)
    assert torch.all(table[1] == 0)
    # sin half then cos half: position 2, first frequency is 1.0
    assert torch.isclose(table[2, 0], torch.sin(torch.tensor(2.0)))
    assert torch.isclose(table[2, 3], torch.cos(torch.tensor(2.0)))
    assert make_positions(torch.tensor([[1, 1, 5, 6, 2]]), 1).tolist() == [[1, 1, 2, 3, 4]]
