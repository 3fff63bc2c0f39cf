"""fairseq's own unit tests for the decoding modes, adapted to our generator.

From fairseq's ``tests/test_sequence_generator.py`` (TestDiverseBeamSearch,
TestDiverseSiblingsSearch, TestTopPSamplingSearch) and ``tests/test_constraints.py``
(the constraint states; its ``pack_constraints`` test has no counterpart: we take
constraints as lists, never packed). The model is fairseq's test decoder: fixed
probabilities per step, the same for every beam of a sentence.

Vocabulary (fairseq's ``dummy_dictionary(2)``): 0 <s>, 1 <pad>, 2 </s>, 3 <unk>, 4 w1, 5 w2.
"""

from __future__ import annotations

import math

import pytest
import torch

from fsmt_port.generation import SequenceGenerator
from fsmt_port.generation.config import GenerationConfig
from fsmt_port.generation.constraints import OrderedState, UnorderedState

EOS, W1, W2 = 2, 4, 5
VOCAB = 6
UNK = 0.0
# Two sentences; fairseq's test feeds the same source twice, we tell them apart by their source.
SOURCES = torch.tensor([[W1, W2, EOS], [W2, W1, EOS]])


class StepTableDecoder:
    """fairseq's ``TestIncrementalDecoder``: per step, each sentence's probabilities of
    (</s>, <unk>, w1, w2); after the table, </s> has probability 1."""

    vocab_size = VOCAB
    max_target_positions = 100  # fairseq's test default max_decoder_positions
    max_source_positions = 100

    def __init__(self, table: list[list[list[float]]]) -> None:
        self.table = table  # [step][sentence] -> 4 probabilities

    def start(self, input_ids, attention_mask, beam):
        self.step_number = 0
        self.row_sentence = [0 if int(row[0]) == W1 else 1 for row in input_ids]

    def step(self, last_tokens):
        out = torch.zeros(last_tokens.size(0), VOCAB)
        for row, sentence in enumerate(self.row_sentence[: last_tokens.size(0)]):
            if self.step_number < len(self.table):
                out[row, EOS:] = torch.tensor(self.table[self.step_number][sentence])
            else:
                out[row, EOS] = 1.0
        self.step_number += 1
        return out.log()

    def reorder(self, rows, sentences):
        self.row_sentence = [self.row_sentence[r] for r in rows.tolist()]


def run(table, **config):
    generator = SequenceGenerator([], GenerationConfig(**config), decoder=StepTableDecoder(table))
    return generator.generate(SOURCES)


def assert_hypo(hypo, tokens, probs, penalties=None):
    """fairseq's assertHypoTokens + assertHypoScore (positional within 1e-4, score within 1e-6)."""
    assert hypo.tokens.tolist() == tokens
    expected = torch.tensor(probs).log()
    if penalties is not None:
        expected = expected - torch.tensor(penalties)
    assert (hypo.positional_scores - expected).abs().max() < 1e-4
    assert abs(float(expected.sum()) / len(tokens) - hypo.score) < 1e-6


DIVERSE_TABLE = [
    [[0.0, UNK, 0.9, 0.1], [0.0, UNK, 0.7, 0.3]],  # step 0
    [[0.0, UNK, 0.6, 0.4], [0.25, UNK, 0.35, 0.4]],  # step 1
    [[1.0, UNK, 0.0, 0.0], [0.9, UNK, 0.1, 0.0]],  # step 2
]


def test_diverse_beam_search():
    """fairseq TestDiverseBeamSearch: 2 groups of 1 beam, strength 0 = two plain beam searches."""
    hypos = run(DIVERSE_TABLE, num_beams=2, diverse_beam_groups=2, diverse_beam_strength=0.0)
    assert_hypo(hypos[0][0], [W1, W1, EOS], [0.9, 0.6, 1.0])
    assert_hypo(hypos[0][1], [W1, W1, EOS], [0.9, 0.6, 1.0])
    assert_hypo(hypos[1][0], [W1, W2, EOS], [0.7, 0.4, 0.9])
    assert_hypo(hypos[1][1], [W1, W2, EOS], [0.7, 0.4, 0.9])


def test_diverse_beam_search_penalises_what_the_earlier_group_chose():
    """Strength 1: at step 0 group 1 may not take w1 for free (group 0 took it): it pays 1.0 and
    still takes w1 in sentence 0 (0.9 * e^-1 > 0.1) but w2 in sentence 1 (0.7 * e^-1 < 0.3)."""
    hypos = run(DIVERSE_TABLE, num_beams=2, diverse_beam_groups=2, diverse_beam_strength=1.0)
    firsts = sorted((h.tokens.tolist()[0], round(float(h.positional_scores[0]), 4)) for h in hypos[1])
    assert firsts == [(W1, round(math.log(0.7), 4)), (W2, round(math.log(0.3), 4))]
    penalised = [h for h in hypos[0] if abs(float(h.positional_scores[0]) - (math.log(0.9) - 1.0)) < 1e-4]
    assert len(penalised) == 1 and penalised[0].tokens.tolist()[0] == W1


def test_diverse_siblings_search():
    """fairseq TestDiverseSiblingsSearch: rate 0.5, penalties 0.5 * rank within each beam's top-k."""
    hypos = run(DIVERSE_TABLE, num_beams=2, diversity_rate=0.5)
    assert_hypo(hypos[0][0], [W1, W1, EOS], [0.9, 0.6, 1.0], [0, 0.5, 0.5])
    assert_hypo(hypos[0][1], [W1, W2, EOS], [0.9, 0.4, 1.0], [0, 1.0, 0.5])
    assert_hypo(hypos[1][0], [W1, W2, EOS], [0.7, 0.4, 0.9], [0, 0.5, 0.5])
    assert_hypo(hypos[1][1], [W1, W1, EOS], [0.7, 0.35, 0.9], [0, 1.0, 0.5])


MIN_TOP1, MIN_TOP2 = 0.4, 0.75
TOPP_ROW = [1 - MIN_TOP2, UNK, MIN_TOP1, MIN_TOP2 - MIN_TOP1]  # </s> 0.25, w1 0.4, w2 0.35
TOPP_TABLE = [[[0.0, UNK, 1.0, 0.0]] * 2, [TOPP_ROW] * 2, [[1.0, UNK, 0.0, 0.0]] * 2]


def test_topp_sampling_low_p_samples_only_the_top_token():
    """fairseq test_topp_sampling_search_low_prob: p below the top token's probability."""
    hypos = run(TOPP_TABLE, num_beams=2, sampling=True, sampling_topp=MIN_TOP1 / 2, seed=0)
    for sentence in hypos:
        for hypo in sentence:
            assert_hypo(hypo, [W1, W1, EOS], [1.0, 0.4, 1.0])


def test_topp_sampling_high_p_samples_the_top_two():
    """fairseq test_topp_sampling_search_high_prob: either of the top 2 tokens, never </s> (outside
    the nucleus); each path's score is its own token's log-prob. Over seeds both appear."""
    seen = set()
    for seed in range(20):
        hypos = run(TOPP_TABLE, num_beams=2, sampling=True, sampling_topp=(MIN_TOP1 + MIN_TOP2) / 2, seed=seed)
        for sentence in hypos:
            assert len(sentence) == 2
            for hypo in sentence:
                second = hypo.tokens.tolist()[1]
                assert second in (W1, W2)
                assert_hypo(hypo, [W1, second, EOS], [1.0, 0.4 if second == W1 else 0.35, 1.0])
                seen.add(second)
    assert seen == {W1, W2}


def test_same_seed_same_samples_and_other_seeds_differ():
    table = [[[0.1, UNK, 0.5, 0.4]] * 2] * 6
    first = [[h.tokens.tolist() for h in s] for s in run(table, num_beams=3, sampling=True, seed=11)]
    again = [[h.tokens.tolist() for h in s] for s in run(table, num_beams=3, sampling=True, seed=11)]
    others = [[[h.tokens.tolist() for h in s] for s in run(table, num_beams=3, sampling=True, seed=k)]
              for k in range(12, 16)]
    assert first == again
    assert any(o != first for o in others)


def test_prefix_is_forced_and_scored_with_the_models_log_probs():
    """The forced token keeps the model's log-prob (even at p=0.05) and counts in the length."""
    table = [[[0.25, UNK, 0.05, 0.7]] * 2, [[0.6, UNK, 0.2, 0.2]] * 2]
    generator = SequenceGenerator([], GenerationConfig(num_beams=2), decoder=StepTableDecoder(table))
    hypos = generator.generate(SOURCES, prefix_tokens=torch.tensor([[W1], [W2]]))
    by_tokens = [{tuple(h.tokens.tolist()): h for h in sentence} for sentence in hypos]
    assert_hypo(by_tokens[0][(W1, EOS)], [W1, EOS], [0.05, 0.6])
    assert_hypo(by_tokens[0][(W1, W1, EOS)], [W1, W1, EOS], [0.05, 0.2, 1.0])
    assert_hypo(by_tokens[1][(W2, EOS)], [W2, EOS], [0.7, 0.6])
    assert all(h.tokens[0] == (W1, W2)[i] for i, s in enumerate(hypos) for h in s)


def test_match_source_len_eos_gets_zero_at_the_source_length():
    """Sources have 3 tokens (incl. </s>): </s> is banned for steps 0-2 and costs 0 at step 3."""
    table = [[[0.5, UNK, 0.3, 0.2]] * 2] * 5
    hypos = run(table, num_beams=2, match_source_len=True)
    for sentence in hypos:
        best = sentence[0]
        assert len(best.tokens) == 4 and best.tokens[-1] == EOS
        assert float(best.positional_scores[-1]) == 0.0


def test_constrained_search_places_every_constraint_in_order():
    """The model wants w1 everywhere; every hypothesis still holds each constraint, contiguous and in
    the listed order, with the model's own log-probs (no bonus for constraint tokens)."""
    table = [[[0.1, UNK, 0.8, 0.1]] * 2] * 12
    constraints = [[[W2, W2]], [[W2], [W1, W2]]]
    generator = SequenceGenerator([], GenerationConfig(num_beams=2, constraints="ordered"),
                                  decoder=StepTableDecoder(table))
    hypos = generator.generate(SOURCES, constraints=constraints)
    for sentence, wanted in zip(hypos, constraints):
        assert sentence
        for hypo in sentence:
            assert _in_order(hypo.tokens.tolist(), wanted)
            probs = {EOS: 0.1, W1: 0.8, W2: 0.1}
            expected = [math.log(probs[t] if i < len(table) else float(t == EOS))
                        for i, t in enumerate(hypo.tokens.tolist())]
            assert max(abs(a - b) for a, b in zip(hypo.positional_scores.tolist(), expected)) < 1e-5


def _in_order(tokens, constraints):
    position = 0
    for constraint in constraints:
        starts = [p for p in range(position, len(tokens)) if tokens[p: p + len(constraint)] == constraint]
        if not starts:
            return False
        position = starts[0] + len(constraint)
    return True


# --- fairseq tests/test_constraints.py -----------------------------------------------------------

CONSTRAINTS = [[1, 2, 3], [1, 3], [1, 4], [4, 5, 6, 7], [1], [4, 5]]


def _graph(node) -> str:
    """fairseq's ConstraintNode.print_graph, from our trie's fields."""
    label = f"[{node.token}].{bool(node.terminal)}#{node.count}"
    if not node.children:
        return label
    return "(" + " ".join([label] + [_graph(child) for child in node.children.values()]) + ")"


@pytest.mark.parametrize("constraints,expected", [
    (CONSTRAINTS, "([None].False#6 ([1].True#4 ([2].False#1 [3].True#1) [3].True#1 [4].True#1) "
                  "([4].False#2 ([5].True#2 ([6].False#1 [7].True#1))))"),
    ([], "[None].False#0"),
    ([[0]], "([None].False#1 [0].True#1)"),
    ([[100000, 1, 2, 3, 4, 5]], "([None].False#1 ([100000].False#1 ([1].False#1 ([2].False#1 ([3].False#1 "
                                "([4].False#1 [5].True#1))))))"),
    ([[1, 2], [1, 2]], "([None].False#2 ([1].False#2 [2].True#2))"),
    ([[1, 2], [3, 4]], "([None].False#2 ([1].False#1 [2].True#1) ([3].False#1 [4].True#1))"),
])
def test_unordered_trie(constraints, expected):
    assert _graph(UnorderedState.create(constraints).root) == expected


@pytest.mark.parametrize("constraints", [CONSTRAINTS, [[1, 2], [1, 2]], [[1, 2], [3, 4]], [[0]]])
def test_unordered_next_tokens(constraints):
    """The root's children, plus the current node's children."""
    root_tokens = set(UnorderedState.create(constraints).root.children)
    for sequence in constraints:
        state = UnorderedState.create(constraints)
        for token in sequence:
            assert state.next_tokens() == root_tokens | set(state.node.children)
            state = state.advance(token)


UNORDERED_SEQUENCES = [
    (CONSTRAINTS, [], (0, 0, False, True)),
    (CONSTRAINTS, [1, 2], (2, 0, False, False)),
    (CONSTRAINTS, [1, 2, 94], (1, 1, False, True)),
    (CONSTRAINTS, [1, 3, 999, 1, 4], (4, 2, False, False)),
    (CONSTRAINTS, [1, 3, 999, 1, 4, 999], (4, 2, False, True)),
    (CONSTRAINTS, [4, 5, 6, 8], (2, 1, False, True)),
    (CONSTRAINTS, [1, 2, 3, 1, 3, 1, 4, 4, 5, 6, 7, 1, 4, 5], (14, 6, True, False)),
    (CONSTRAINTS, [1, 2, 3, 999, 1, 3, 1, 4, 4, 5, 6, 7, 1, 4, 5, 117], (14, 6, True, True)),
    ([[1], [2, 3]], [1, 1], (1, 1, False, True)),
    ([[1, 2], [1, 2]], [1, 2, 1, 2], (4, 2, True, False)),
    ([[1, 2], [1, 2]], [1, 2, 1, 2, 1], (4, 2, True, True)),
    ([[1, 2], [3, 4]], [1, 2, 3, 4, 5], (4, 2, True, True)),
]
ORDERED_SEQUENCES = [
    (CONSTRAINTS, [], (0, 0, False, True)),
    (CONSTRAINTS, [1, 2], (2, 0, False, False)),
    (CONSTRAINTS, [1, 2, 94], (0, 0, False, True)),
    (CONSTRAINTS, [1, 3, 999, 1, 4], (0, 0, False, True)),
    (CONSTRAINTS, [1, 2, 3, 999, 999], (3, 1, False, False)),
    (CONSTRAINTS, [1, 2, 3, 77, 1, 3, 1], (6, 2, False, False)),
    (CONSTRAINTS, [1, 2, 3, 1, 3, 1, 4, 4, 5, 6, 7, 1, 4, 5], (14, 6, True, False)),
    (CONSTRAINTS, [1, 2, 999, 1, 2, 3, 999, 1, 3, 1, 4, 4, 5, 6, 7, 1, 4, 5, 117], (14, 6, True, False)),
    ([[1], [2, 3]], [1, 1], (1, 1, False, False)),
    ([[1, 2], [1, 2]], [1, 2, 1, 2], (4, 2, True, False)),
    ([[1, 2], [1, 2]], [1, 2, 1, 2, 1], (4, 2, True, False)),
    ([[1, 2], [3, 4]], [1, 2, 3, 4, 5], (4, 2, True, False)),
]


@pytest.mark.parametrize("kind,constraints,tokens,expected",
                         [("unordered", *case) for case in UNORDERED_SEQUENCES]
                         + [("ordered", *case) for case in ORDERED_SEQUENCES])
def test_constraint_state_after_tokens(kind, constraints, tokens, expected):
    """fairseq's test_sequences: (bank, num_completed, finished, is_root) after the tokens."""
    state = (UnorderedState if kind == "unordered" else OrderedState).create(constraints)
    for token in tokens:
        state = state.advance(token)
    assert (state.bank, state.num_completed, state.finished, state.is_root) == expected


def test_constraints_that_cannot_be_met_end_without_hypotheses_instead_of_failing():
    """After the table only </s> has probability: constraint tokens are impossible, </s> stays banned
    for unconstrained beams, so nothing is finalized by max_len; fairseq would trip an assertion."""
    table = [[[0.1, UNK, 0.8, 0.1]] * 2] * 2
    generator = SequenceGenerator([], GenerationConfig(num_beams=2, constraints="ordered", max_len_b=5),
                                  decoder=StepTableDecoder(table))
    hypos = generator.generate(SOURCES, constraints=[[[W2, W2, W2, W2]], []])
    assert hypos[0] == []
    assert hypos[1] and all(h.tokens[-1] == EOS for h in hypos[1])
