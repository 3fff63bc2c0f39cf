"""Sampling draws from the right distribution: top-k and nucleus supports, and temperature.

The goldens show the draws equal fairseq's draw for draw; these tests check the
distributions themselves, with enough draws that a wrong support or temperature
fails by a wide margin (thresholds are several standard errors away from both).
"""

from __future__ import annotations

import pytest
import torch

from fsmt_port import FSMTForConditionalGeneration
from fsmt_port.generation import generate
from fsmt_port.generation.sampling import Sampling

PROBS = torch.tensor([0.30, 0.20, 0.15, 0.12, 0.08, 0.06, 0.05, 0.04])  # sorted, sums to 1
DRAWS = 40_000


def draw(search: Sampling) -> torch.Tensor:
    """Token counts of DRAWS independent draws (one step > 0 over DRAWS rows)."""
    lprobs = PROBS.log().expand(DRAWS, 1, -1).clone()
    _, tokens, _ = search.step(1, lprobs, torch.zeros(DRAWS, 1, 1))
    return torch.bincount(tokens.view(-1), minlength=len(PROBS)).double()


def total_variation(counts: torch.Tensor, expected: torch.Tensor) -> float:
    return 0.5 * float((counts / counts.sum() - expected / expected.sum()).abs().sum())


@pytest.mark.parametrize("k", [1, 3, 5])
def test_top_k_support_and_renormalised_shares(k):
    counts = draw(Sampling(topk=k, rng=torch.Generator().manual_seed(k)))
    assert counts[k:].sum() == 0, "a token outside the top-k was drawn"
    assert (counts[:k] > 0).all()
    assert total_variation(counts[:k], PROBS[:k]) < 0.01  # ~0.003 expected from sampling noise


@pytest.mark.parametrize("p,size", [(0.25, 1), (0.4, 2), (0.6, 3), (0.7, 4), (0.9, 6)])
def test_nucleus_is_the_smallest_set_reaching_p(p, size):
    """fairseq's rule: tokens whose cumulative mass before them is < p, i.e. the set until it reaches p."""
    counts = draw(Sampling(topp=p, rng=torch.Generator().manual_seed(size)))
    assert counts[size:].sum() == 0, "a token outside the nucleus was drawn"
    assert (counts[:size] > 0).all()
    assert total_variation(counts[:size], PROBS[:size]) < 0.01


def test_plain_sampling_covers_the_vocabulary_in_proportion():
    counts = draw(Sampling(rng=torch.Generator().manual_seed(0)))
    assert (counts > 0).all()
    assert total_variation(counts, PROBS) < 0.01


def test_drawn_tokens_score_their_own_log_prob():
    """Scores are log(exp(lprob)) of the drawn token, not renormalised over the top-k set."""
    lprobs = PROBS.log().expand(64, 1, -1).clone()
    scores, tokens, _ = Sampling(topk=3, rng=torch.Generator().manual_seed(1)).step(1, lprobs, torch.zeros(64, 1, 1))
    assert torch.allclose(scores.view(-1), PROBS.log()[tokens.view(-1)], atol=1e-6)


@pytest.fixture(scope="module")
def tiny(converted):
    return FSMTForConditionalGeneration.from_pretrained(converted("tiny-en-de-joint"))


def _first_token_distribution(model, source, temperature):
    with torch.inference_mode():
        out = model(source, decoder_input_ids=torch.tensor([[2]]))
    return torch.softmax(out.logits[0, -1].double() / temperature, dim=-1)


def _binned(distribution: torch.Tensor, top: torch.Tensor) -> torch.Tensor:
    """The ``top`` tokens' shares and one bin for everything else."""
    return torch.cat((distribution[top], (distribution.sum() - distribution[top].sum()).view(1)))


@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_temperature_scales_the_logits(tiny, temperature):
    """First tokens of 1000 one-token samples of one sentence follow softmax(logits / T), not
    softmax(logits): compared over the 20 likeliest tokens plus one bin for the rest."""
    source = torch.tensor([[243, 23, 138, 3077, 10, 4, 2]])
    out = generate([tiny], source.expand(1000, -1), num_beams=1, sampling=True, temperature=temperature, seed=5,
                   max_len_b=1, return_dict_in_generate=True)
    first = torch.tensor([h[0].tokens[0].item() for h in out.hypotheses])
    counts = torch.bincount(first, minlength=tiny.config.tgt_vocab_size).double()
    right = _first_token_distribution(tiny, source, temperature)
    wrong = _first_token_distribution(tiny, source, 1.0)
    for distribution in (right, wrong):
        distribution[2] = 0  # </s> is banned at step 0 (min_len)
    top = right.topk(20).indices
    tv_right = total_variation(_binned(counts, top), _binned(right, top))
    tv_wrong = total_variation(_binned(counts, top), _binned(wrong, top))
    assert tv_right < 0.08, tv_right  # sampling noise: ~0.04
    assert tv_wrong > 2 * tv_right, (tv_right, tv_wrong)
