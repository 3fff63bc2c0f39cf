"""Beam search on a scripted model: fixed log-probs per prefix, beams worked out by hand.

Vocabulary: 0 <s>, 1 <pad>, 2 </s>, 3 <unk>, 4 A, 5 B, 6 C. Every prefix not in
the script gives every token log(0.01).
"""

from __future__ import annotations

import math

import pytest
import torch

from fsmt_port.generation import SequenceGenerator
from fsmt_port.generation.config import GenerationConfig
from fsmt_port.generation.search import BeamSearch

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


def test_early_stopping_false_drops_the_first_late_finisher_and_keeps_a_better_second_one():
    script = {(): {EOS: 0.5, A: 0.45}, (A,): {EOS: 0.6, B: 0.39}, (A, B): {EOS: 0.99}}
    [default_min_len], _ = run(script, num_beams=1, max_len_b=3)
    assert default_min_len[0].tokens.tolist() == [A, EOS]  # min_len=1: </s> banned at step 0
    [greedy_early], _ = run(script, num_beams=1, max_len_b=3, min_len=0)
    assert [h.tokens.tolist() for h in greedy_early] == [[EOS]]  # fairseq: done at 1 final hypothesis
    [greedy_late], decoder = run(script, num_beams=1, max_len_b=3, early_stopping=False, min_len=0)
    # fairseq 0.7.2: step 1's A</s> ((log .45 + log .6) / 2 = -0.65, better than [</s>]'s log .5 = -0.69)
    # is the first late finisher: dropped, it only records the worst kept score, -0.69. The best candidate
    # bound (-1.31 / max_len 3 = -0.44) is not beaten, so the search goes on; step 2's A B</s>
    # (log(.45 * .39 * .99) / 3 = -0.58) replaces [</s>] and, now the worst, equals the bound: done.
    assert [h.tokens.tolist() for h in greedy_late] == [[A, B, EOS]]
    assert math.isclose(greedy_late[0].score, f32(0.45, 0.39, 0.99) / 3, rel_tol=1e-6)
    assert decoder.calls == 3


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


class RowScriptedDecoder:
    """fairseq 0.7.2's ``TestIncrementalDecoder``: probabilities per step and per batch row.

    ``table[step]`` is (bsz * beam, V) probabilities for the rows in their current order; past the
    table every row gets ``</s>`` = 1 and everything else 0. Our first step decodes one row per
    sentence (its beams are identical), so it takes every ``beam``-th row of the table.
    """

    max_target_positions = 100  # fairseq's TestIncrementalDecoder: max_decoder_positions = 100
    max_source_positions = 1024

    def __init__(self, table: list[torch.Tensor], vocab_size: int) -> None:
        self.table, self.vocab_size, self.steps = table, vocab_size, 0

    def start(self, input_ids, attention_mask, beam):
        self.beam = beam

    def step(self, last_tokens):
        rows = last_tokens.size(0)
        if self.steps < len(self.table):
            probs = self.table[self.steps]
            if rows != probs.size(0):
                probs = probs[:: self.beam]
            assert probs.size(0) == rows, "the script assumes no sentence finished before its last step"
        else:
            probs = torch.zeros(rows, self.vocab_size)
            probs[:, EOS] = 1.0
        self.steps += 1
        return probs.log()

    def reorder(self, rows, sentences):
        pass  # the table is indexed by row position, as in fairseq's test decoder


def fairseq_072_sequence_generator_setup():
    """fairseq v0.7.2 ``tests/utils.py::sequence_generator_setup``: 2 sentences, words w1=4, w2=5."""
    w1, w2, unk = 4, 5, 0.0

    def rows(*probs):  # columns: </s>, <unk>, w1, w2 (ids 2..5); ids 0 and 1 get probability 0
        out = torch.zeros(len(probs), 6)
        out[:, EOS:] = torch.tensor(probs)
        return out

    table = [
        rows([0.0, unk, 0.9, 0.1], [0.0, unk, 0.9, 0.1], [0.0, unk, 0.7, 0.3], [0.0, unk, 0.7, 0.3]),
        rows([1.0, unk, 0.0, 0.0], [0.0, unk, 0.9, 0.1], [0.25, unk, 0.35, 0.4], [0.00, unk, 0.10, 0.9]),
        rows([0.0, unk, 0.1, 0.9], [0.6, unk, 0.2, 0.2], [0.60, unk, 0.4, 0.00], [0.01, unk, 0.0, 0.99]),
        rows([1.0, unk, 0.0, 0.0], [1.0, unk, 0.0, 0.0], [0.1, unk, 0.5, 0.4], [1.0, unk, 0.0, 0.0]),
    ]
    return w1, w2, RowScriptedDecoder(table, vocab_size=6), torch.tensor([[w1, w2, EOS], [w1, w2, EOS]])


def assert_hypo(hypo, tokens, probs, lenpen=1.0):
    """fairseq's assertHypoTokens + assertHypoScore."""
    assert hypo.tokens.tolist() == tokens
    pos_scores = torch.tensor(probs).log()
    assert (hypo.positional_scores - pos_scores).abs().max() < 1e-4
    assert abs(pos_scores.sum() / len(probs) ** lenpen - hypo.score) < 1e-6


def test_no_stop_early_reproduces_fairseq_0_7_2():
    """fairseq v0.7.2 ``test_sequence_generator.py::test_no_stop_early`` (``stop_early=False``, beam 2).

    Sentence 2 shows the 0.7.2 bookkeeping: [w1 w2 </s>] (step 2) and [w1 w2 w1 </s>] (step 3) fill the
    two places; [w2 w2 w2 </s>] (step 3, later in the candidate order) is the first late finisher and is
    dropped, only recording the worst kept score; [w2 w2 w2 w2 </s>] (step 4) beats it and replaces
    [w1 w2 </s>]. A search that replaces from the first late finisher on would keep [w2 w2 w2 </s>].
    """
    w1, w2, decoder, src = fairseq_072_sequence_generator_setup()
    generator = SequenceGenerator([], GenerationConfig(num_beams=2, early_stopping=False), decoder=decoder)
    hypos = generator.generate(src)
    assert_hypo(hypos[0][0], [w1, EOS], [0.9, 1.0])
    assert_hypo(hypos[0][1], [w2, w1, w2, EOS], [0.1, 0.9, 0.9, 1.0])
    assert_hypo(hypos[1][0], [w2, w2, w2, w2, EOS], [0.3, 0.9, 0.99, 0.4, 1.0])
    assert_hypo(hypos[1][1], [w1, w2, w1, EOS], [0.7, 0.4, 0.4, 1.0])


def test_fairseq_0_7_2_setup_with_early_stopping_matches_its_normalized_test():
    """The same script with the default (``test_with_normalization``): the decoder adaptation is faithful."""
    w1, w2, decoder, src = fairseq_072_sequence_generator_setup()
    hypos = SequenceGenerator([], GenerationConfig(num_beams=2), decoder=decoder).generate(src)
    assert_hypo(hypos[0][0], [w1, EOS], [0.9, 1.0])
    assert_hypo(hypos[0][1], [w2, w1, w2, EOS], [0.1, 0.9, 0.9, 1.0])
    assert_hypo(hypos[1][0], [w1, w2, w1, EOS], [0.7, 0.4, 0.4, 1.0])
    assert_hypo(hypos[1][1], [w1, w2, EOS], [0.7, 0.4, 0.6])


@pytest.mark.parametrize("direct_max_rows", [0, 10**6])  # the chunked search, then fairseq's own top-k
@pytest.mark.parametrize("sentences,beam,vocab,step", [(1, 1, 6048, 3), (3, 5, 6048, 0), (4, 5, 300, 2), (2, 2, 100, 1)])
def test_candidates_are_the_top_k_of_every_score(direct_max_rows, sentences, beam, vocab, step, monkeypatch):
    monkeypatch.setattr(BeamSearch, "DIRECT_MAX_ROWS", direct_max_rows)
    torch.manual_seed(vocab + step)
    lprobs = torch.randn(sentences, beam, vocab).log_softmax(-1)
    scores = torch.randn(sentences, beam, max(step, 1)) * 3
    got_scores, got_tokens, got_beams = BeamSearch(vocab).step(step, lprobs, scores)
    totals = lprobs[:, :1] if step == 0 else lprobs + scores[:, :, step - 1: step]
    want_scores, flat = torch.topk(totals.reshape(sentences, -1), 2 * beam)
    assert torch.equal(got_scores, want_scores)
    assert torch.equal(got_tokens, flat % vocab) and torch.equal(got_beams, flat // vocab)
