"""fairseq's other decoding modes reproduce ``expected_ext.json``: prefix, sampling, diverse beam,
diverse siblings, match_source_len, constraints and alignments, every config, on every model that
has the goldens (small-en-de on a subset of its calls). ``score_reference`` is tested with the
scoring API.

Tokens identical and in fairseq's order; scores within max(1e-4, |cumulative| * 2**-20); hard
alignments identical. Each call is one ``generate`` over the call's sentences in the call's order,
as the goldens' ``hub.generate`` calls were; rows are re-ordered inside as fairseq's hub batches
them where that matters (sampling draws, diverse beam search's overlap table).
"""

from __future__ import annotations

import pytest
import torch

import golden
from fsmt_port import FSMTForConditionalGeneration
from fsmt_port.generation import generate
from parity import left_padded, mismatches, our_kwargs

SECTIONS = ("prefix", "sampling", "diverse_beam", "diverse_siblings", "match_source_len", "constraints", "alignment")
SMALL_CALLS = 2  # small-en-de: the first calls of each config (CI time)
SOFT_DIGIT = 1e-6  # one unit in the last printed digit of a soft alignment weight ("{:.6f}")


def _cases():
    for name in golden.EXT_MODELS:
        ext = golden.load_ext(name)
        for section in SECTIONS:
            for config in ext[section]["configs"]:
                marks = [pytest.mark.slow] if name == golden.SMALL_MODEL else []
                yield pytest.param(name, section, config["name"], id=f"{name}-{config['name']}", marks=marks)


@pytest.fixture(scope="module")
def model(converted):
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = FSMTForConditionalGeneration.from_pretrained(converted(name))
        return cache[name]

    return get


def _ids(name):
    return {t["index"]: t["ids"] for t in golden.load_expected(name)["tokenizer"]}


def _config(name, section, config_name):
    return next(c for c in golden.load_ext(name)[section]["configs"] if c["name"] == config_name)


def run_golden_calls(model, name, section, config, calls, seeding="seed"):
    """index -> our hypotheses, one ``generate`` per golden call, with the call's per-sentence inputs."""
    ids = _ids(name)
    ext = golden.load_ext(name)
    constraint_ids = {s["index"]: s["constraint_ids"] for s in ext["constraints"]["sentences"]}
    kwargs = our_kwargs(config["generate_kwargs"])
    ours = {}
    for call in calls:
        indices = call["sentence_indices"]
        extra = {}
        if section == "prefix":
            extra["prefix_tokens"] = [config["prefix_tokens"][str(i)] for i in indices]
        if section == "constraints":
            extra["constraint_ids"] = [constraint_ids[i] for i in indices]
        if "torch_manual_seed" in call:
            if seeding == "seed":
                extra["seed"] = call["torch_manual_seed"]
            else:  # what the golden generator did: seed torch's global RNG right before the call
                torch.manual_seed(call["torch_manual_seed"])
        result = generate([model], left_padded([ids[i] for i in indices]), return_dict_in_generate=True,
                          **kwargs, **extra)
        ours.update(zip(indices, result.hypotheses))
    return ours


def _soft_alignment_problems(ours, results):
    """Soft weights are printed with 6 decimals: equal strings, or (where float32's last bits put the
    value on the other side of a rounding boundary) one unit in the last digit apart."""
    problems, off_by_one, total = [], 0, 0
    for entry in results:
        for rank, (hypo, theirs) in enumerate(zip(ours[entry["index"]], entry["hypos"])):
            want = theirs["alignment"]
            shape = [len(r) for r in want]
            if [len(r) for r in hypo.alignment] != shape:
                problems.append(f"sentence {entry['index']} hypothesis {rank}: soft alignment shape differs")
                continue
            for got_row, want_row in zip(hypo.alignment, want):
                for got, expected in zip(got_row, want_row):
                    total += 1
                    if got != expected:
                        off_by_one += 1
                        if abs(float(got) - float(expected)) > SOFT_DIGIT * 1.5:
                            problems.append(f"sentence {entry['index']} hypothesis {rank}: {got} != {expected}")
    return problems, off_by_one, total


@pytest.mark.parametrize("name,section,config_name", list(_cases()))
def test_mode_matches_fairseq(name, section, config_name, model):
    config = _config(name, section, config_name)
    calls = config["calls"][:SMALL_CALLS] if name == golden.SMALL_MODEL else config["calls"]
    covered = {i for call in calls for i in call["sentence_indices"]}
    results = [r for r in config["results"] if r["index"] in covered]
    ours = run_golden_calls(model(name), name, section, config, calls)
    soft = config["generate_kwargs"].get("print_alignment") == "soft"
    if soft:  # weights compared below, as printed numbers
        problems, _ = mismatches(ours, results, alignments=False)
        align_problems, off_by_one, total = _soft_alignment_problems(ours, results)
        assert off_by_one < 0.02 * total, f"{off_by_one} of {total} soft weights differ in the last digit"
        problems += align_problems
    else:
        problems, _ = mismatches(ours, results)
    assert not problems, problems[:5]
    assert len(results) == len(covered) and results


@pytest.mark.parametrize("name", [n for n in golden.EXT_MODELS if n != golden.SMALL_MODEL])
def test_sampling_with_torch_global_seed(name, model):
    """``torch.manual_seed(s)`` before ``generate`` (the goldens' protocol) draws what ``seed=s`` draws."""
    config = _config(name, "sampling", "sample_beam4_pure")
    ours = run_golden_calls(model(name), name, "sampling", config, config["calls"][:3], seeding="global")
    covered = {i for call in config["calls"][:3] for i in call["sentence_indices"]}
    problems, _ = mismatches(ours, [r for r in config["results"] if r["index"] in covered])
    assert not problems, problems[:5]


@pytest.mark.parametrize("name", [n for n in golden.EXT_MODELS if n != golden.SMALL_MODEL])
def test_match_source_len_alone_in_a_call(name, model):
    """fairseq's single-sentence calls for the sentences that got -inf hypotheses in a batch: none there."""
    single = golden.load_ext(name)["match_source_len"]["single_sentence_calls_for_sentences_with_-inf_hypotheses"]
    config = _config(name, "match_source_len", "match_source_len_beam5")
    ours = run_golden_calls(model(name), name, "match_source_len", config, single["calls"])
    problems, _ = mismatches(ours, single["results"])
    assert not problems, problems[:5]
    assert all(h.score != float("-inf") for hypos in ours.values() for h in hypos)


def test_prefix_hypotheses_start_with_the_prefix_and_constraints_are_met(model):
    """The goldens' guarantees, checked on our own output (not only by equality with fairseq)."""
    name = "tiny-en-de-joint"
    config = _config(name, "prefix", "prefix3_beam5")
    ours = run_golden_calls(model(name), name, "prefix", config, config["calls"][:2])
    for index, hypos in ours.items():
        prefix = config["prefix_tokens"][str(index)]
        assert all(h.tokens.tolist()[: len(prefix)] == prefix for h in hypos)
    config = _config(name, "constraints", "constraints_ordered_beam5")
    ours = run_golden_calls(model(name), name, "constraints", config, config["calls"][:2])
    wanted = {s["index"]: s["constraint_ids"] for s in golden.load_ext(name)["constraints"]["sentences"]}
    for index, hypos in ours.items():
        for hypo in hypos:
            tokens = hypo.tokens.tolist()
            position = 0
            for constraint in wanted[index]:  # in the listed order, contiguous
                starts = [p for p in range(position, len(tokens)) if tokens[p: p + len(constraint)] == constraint]
                assert starts, (index, constraint, tokens)
                position = starts[0] + len(constraint)
