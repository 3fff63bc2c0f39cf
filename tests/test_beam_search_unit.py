"""Beam search on a scripted model: fixed log-probs per prefix, beams worked out by hand.

Vocabulary: 0 <s>, 1 <pad>, 2 </s>, 3 <unk>, 4 A, 5 B, 6 C. Every prefix not in
the script gives every token log(0.01).
"""

from __future__ import annotations

import math

import torch

from fsmt_port.generation import SequenceGenerator
from fsmt_port.generation.config import GenerationConfig

EOS, A, B, C = 2, 4, 5, 6
VOCAB = 7


class ScriptedDecoder:
    """Stands in for EnsembleDecoder: remembers each row's prefix and looks up its log-probs."""

    vocab_size = VOCAB
    max_target_positions = 1024
    max_source_positions = 1024

    def __init__(self, script: dict[tuple, dict[int, float]]) -> None:
        self.script = script
        self.calls = 0

    def start(self, input_ids, attention_mask, beam):
        self.prefixes = [() for _ in range(input_ids.size(0) * beam)]

    def step(self, last_tokens):
        self.calls += 1
        self.prefixes = [p + (int(t),) for p, t in zip(self.prefixes, last_tokens[:, 0])]
        out = torch.full((len(self.prefixes), VOCAB), math.log(0.01))
        for row, prefix in enumerate(self.prefixes):
            for token, prob in self.script.get(prefix[1:], {}).items():
                out[row, token] = math.log(prob)
        return out

    def reorder(self, rows, sentences):
        self.prefixes = [self.prefixes[r] for r in rows.tolist()]


def run(script, **config):
    decoder = ScriptedDecoder(script)
    generator = SequenceGenerator([], GenerationConfig(**config), decoder=decoder)
    return generator.generate(torch.tensor([[7, 2]])), decoder


def f32(*logs):
    """Cumulative float32 sum, as fairseq accumulates."""
    total = torch.zeros((), dtype=torch.float32)
    for value in logs:
        total = total + torch.tensor(math.log(value), dtype=torch.float32)
    return total.item()


def test_two_beams_finish_together_and_are_sorted_by_normalized_score():
    script = {(): {A: 0.5, B: 0.3, C: 0.15, EOS: 0.05},
              (A,): {EOS: 0.6, A: 0.1, B: 0.2, C: 0.1},
              (B,): {EOS: 0.9, A: 0.03, B: 0.03, C: 0.03}}
    [hypos], _ = run(script, num_beams=2, length_penalty=1.0)
    # step 0: </s> (0.05) is 4th of the 2*beam candidates, not in the top beam -> not final.
    # step 1: A</s> = log .5 + log .6 and B</s> = log .3 + log .9 are the top two -> both final.
    assert [h.tokens.tolist() for h in hypos] == [[A, EOS], [B, EOS]]
    assert math.isclose(hypos[0].score, f32(0.5, 0.6) / 2, rel_tol=1e-6)
    assert math.isclose(hypos[1].score, f32(0.3, 0.9) / 2, rel_tol=1e-6)
    assert torch.allclose(hypos[0].positional_scores, torch.tensor([math.log(0.5), math.log(0.6)]), atol=1e-6)


def test_eos_in_the_top_beam_at_step_zero_is_final_and_length_penalty_reorders():
    script = {(): {A: 0.5, EOS: 0.4, B: 0.1},
              (A,): {EOS: 0.9},
              (B,): {EOS: 0.9}}
    # min_len=0: fairseq's default min_len=1 bans </s> at step 0.
    [hypos], _ = run(script, num_beams=2, length_penalty=1.0, min_len=0)
    # step 0: </s> is 2nd -> finalized as [</s>] with score log .4; A and B stay live.
    # step 1: A</s> finalizes (2nd hypothesis); B</s> comes too late, the sentence has 2.
    assert [h.tokens.tolist() for h in hypos] == [[A, EOS], [EOS]]
    assert math.isclose(hypos[0].score, f32(0.5, 0.9) / 2, rel_tol=1e-6)
    assert math.isclose(hypos[1].score, math.log(0.4), rel_tol=1e-6)
    # Without length normalization the order stays (-0.80 > -0.92), with lenpen 0 too.
    [unnormalized], _ = run(script, num_beams=2, length_penalty=0.0, min_len=0)
    assert [h.tokens.tolist() for h in unnormalized] == [[A, EOS], [EOS]]


def test_early_stopping_false_keeps_searching_for_a_better_late_hypothesis():
    script = {(): {EOS: 0.5, A: 0.45}, (A,): {EOS: 0.99}}
    [default_min_len], _ = run(script, num_beams=1, max_len_b=3)
    assert default_min_len[0].tokens.tolist() == [A, EOS]  # min_len=1: </s> banned at step 0
    [greedy_early], _ = run(script, num_beams=1, max_len_b=3, min_len=0)
    assert [h.tokens.tolist() for h in greedy_early] == [[EOS]]  # fairseq: done at 1 final hypothesis
    [greedy_late], _ = run(script, num_beams=1, max_len_b=3, early_stopping=False, min_len=0)
    # A</s> scores (log .45 + log .99) / 2 = -0.40 > log .5 = -0.69: it replaces [</s>].
    assert [h.tokens.tolist() for h in greedy_late] == [[A, EOS]]
    assert math.isclose(greedy_late[0].score, f32(0.45, 0.99) / 2, rel_tol=1e-6)


def test_max_len_forces_eos_and_min_len_forbids_it():
    script = {(): {A: 0.9, EOS: 0.05}}
    [capped], _ = run(script, num_beams=1, max_len_b=2)
    assert [len(h.tokens) for h in capped] == [3]  # 2 tokens + forced </s>
    assert capped[0].tokens.tolist()[-1] == EOS
    [long], _ = run({(): {EOS: 0.9, A: 0.05}}, num_beams=1, min_len=2, max_len_b=5)
    assert len(long[0].tokens) >= 3  # </s> banned at steps 0 and 1


def test_unk_penalty_is_subtracted_from_the_unk_log_prob():
    script = {(): {3: 0.5, A: 0.4}, (3,): {EOS: 0.9}, (A,): {EOS: 0.9}}
    [plain], _ = run(script, num_beams=1)
    assert plain[0].tokens.tolist() == [3, EOS]
    [penalized], _ = run(script, num_beams=1, unk_penalty=1.0)
    assert penalized[0].tokens.tolist() == [A, EOS]
    [rewarded], _ = run(script, num_beams=1, unk_penalty=-10.0)
    assert math.isclose(rewarded[0].positional_scores[0].item(), math.log(0.5) + 10.0, rel_tol=1e-6)


def test_finished_sentences_leave_the_batch():
    decoder = ScriptedDecoder({(): {EOS: 0.9}})
    generator = SequenceGenerator([], GenerationConfig(num_beams=1, max_len_b=10, min_len=0),
                                  decoder=decoder)
    results = generator.generate(torch.tensor([[7, 2], [8, 2]]))
    assert [r[0].tokens.tolist() for r in results] == [[EOS], [EOS]]
    assert decoder.calls == 1  # both finished at step 0: no second step was run


def test_non_finite_or_oversized_settings_are_config_errors():
    """NaN/inf penalties would write NaN scores; more beams than symbols would fail deep in top-k."""
    import math

    import pytest

    from fsmt_port.errors import ConfigError
    from fsmt_port.generation.config import GenerationConfig

    for bad in ({"length_penalty": math.nan}, {"length_penalty": math.inf}, {"unk_penalty": math.nan},
                {"max_len_a": math.inf}):
        with pytest.raises(ConfigError, match="finite"):
            GenerationConfig().update(**bad)
    with pytest.raises(ConfigError, match="num_beams=7 exceeds the target vocabulary"):
        SequenceGenerator([], GenerationConfig(num_beams=VOCAB), decoder=ScriptedDecoder({}))
    SequenceGenerator([], GenerationConfig(num_beams=VOCAB - 1), decoder=ScriptedDecoder({}))  # the largest allowed
