"""Comparing our hypotheses with fairseq's goldens, with the README's tolerance.

Tokens must be identical, in the same order. Scores and positional scores may
differ by max(1e-4, |cumulative score| * 2**-20): fairseq's own float32 running
sums move that much between batchings and thread counts.
"""

from __future__ import annotations

import math

import torch

import golden
from fsmt_port.generation import FAIRSEQ_NAMES, generate
from fsmt_port.translation.translator import pad_left as left_padded


def our_kwargs(generate_kwargs: dict) -> dict:
    kwargs = {FAIRSEQ_NAMES.get(k, k): v for k, v in generate_kwargs.items()}
    kwargs.pop("num_return_sequences", None)  # the hub returns all beams whatever nbest is
    return kwargs


def run_calls(models, ids_by_index: dict[int, list[int]], calls: list[list[int]], kwargs: dict) -> dict:
    """Generate call by call (each call one padded batch); index -> hypotheses."""
    out = {}
    for call in calls:
        result = generate(models, left_padded([ids_by_index[i] for i in call]), return_dict_in_generate=True,
                          **kwargs)
        out.update(zip(call, result.hypotheses))
    return out


def mismatches(ours: dict, golden_results: list[dict], alignments: bool = True) -> tuple[list[str], float]:
    """Human-readable problems, and the largest float difference seen (for reporting).

    ``alignments``: also require identical alignments where the golden has them (hard ones)."""
    problems, worst = [], 0.0
    for entry in golden_results:
        index, expected = entry["index"], entry["hypos"]
        got = ours[index]
        got_tokens = [h.tokens.tolist() for h in got]
        want_tokens = [h["tokens"] for h in expected]
        if got_tokens != want_tokens:
            problems.append(f"sentence {index}: tokens {got_tokens[:2]} != fairseq {want_tokens[:2]}")
            continue
        for rank, (ours_h, theirs) in enumerate(zip(got, expected)):
            tolerance = max(1e-4, abs(sum(theirs["positional_scores"])) * 2 ** -20)
            their_score = float(theirs["score"])  # "-inf" (match_source_len) is written as a string
            if math.isinf(their_score) or math.isinf(ours_h.score):
                score_diff = 0.0 if ours_h.score == their_score else math.inf
            else:
                score_diff = abs(ours_h.score - their_score)
            diffs = [score_diff] + [
                abs(a - b) for a, b in zip(ours_h.positional_scores.tolist(), theirs["positional_scores"])]
            worst = max(worst, max(diffs))
            if max(diffs) > tolerance:
                problems.append(f"sentence {index} hypothesis {rank}: score diff {max(diffs):.2e} > {tolerance:.1e}")
            if alignments and theirs.get("alignment") and ours_h.alignment != theirs["alignment"]:
                problems.append(f"sentence {index} hypothesis {rank}: alignment {str(ours_h.alignment)[:80]} != "
                                f"fairseq {str(theirs['alignment'])[:80]}")
    return problems, worst


def teacher_forced_worst(model, name: str) -> float:
    """Largest |log-prob - fairseq's| over ``name``'s teacher-forced goldens; asserts argmax, sums, encoder out."""
    worst = 0.0
    for case in golden.load_expected(name)["teacher_forced"]:
        src = torch.tensor([case["src_ids"]])
        with torch.inference_mode():
            out = model(input_ids=src, decoder_input_ids=torch.tensor([case["prev_output_tokens"]]))
        assert out.logits.shape == (1, len(case["tgt_ids"]), case["vocab_size"])
        lprobs = torch.log_softmax(out.logits.float(), dim=-1)[0].double()
        ref = lprobs.gather(1, torch.tensor(case["tgt_ids"])[:, None])[:, 0]
        worst = max(worst, (ref - torch.tensor(case["ref_token_log_probs"], dtype=torch.float64)).abs().max().item())
        for row, values in enumerate(case["full_log_probs_first3"]):
            worst = max(worst, (lprobs[row] - torch.tensor(values, dtype=torch.float64)).abs().max().item())
        assert lprobs.argmax(-1).tolist() == case["argmax_ids"]
        assert abs(ref.sum().item() - case["sum_ref_log_prob"]) < 1e-4
        if "encoder_out" in case:
            with torch.inference_mode():
                hidden = model.encode(src).hidden[0]
            assert list(hidden.shape) == case["encoder_out"]["shape"]
            expected = torch.tensor(case["encoder_out"]["values_row_major"], dtype=torch.float64)
            assert (hidden.flatten().double() - expected).abs().max().item() < 1e-5
    return worst
