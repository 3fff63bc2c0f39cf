"""The decoding modes' options: both spellings accepted, bad combinations refused up front,
and the CLIs (fsmt-translate, run_eval) passing prefixes, constraints, seeds and alignments."""

from __future__ import annotations

import json

import pytest
import torch

from fsmt_port import FSMTForConditionalGeneration, Translator
from fsmt_port.errors import ConfigError, InputError
from fsmt_port.generation import generate, resolve_generation_config
from fsmt_port.generation.config import GenerationConfig

SOURCE = torch.tensor([[243, 23, 138, 3077, 10, 4, 2], [1, 1, 1, 77, 138, 4, 2]])


@pytest.fixture(scope="module")
def model_dir(converted):
    return converted("tiny-en-de-joint")


@pytest.fixture(scope="module")
def tiny(model_dir):
    return FSMTForConditionalGeneration.from_pretrained(model_dir)


def test_transformers_names_map_to_fairseqs():
    config = resolve_generation_config(GenerationConfig(), do_sample=True, top_k=7, temperature=0.8, num_beams=2)
    assert (config.sampling, config.sampling_topk, config.temperature) == (True, 7, 0.8)
    config = resolve_generation_config(GenerationConfig(), do_sample=True, top_p=0.9, top_k=0)
    assert (config.sampling_topp, config.sampling_topk) == (0.9, -1)  # top_k=0: transformers' "off"
    config = resolve_generation_config(GenerationConfig(), num_beam_groups=2, diversity_penalty=1.5, num_beams=4)
    assert (config.diverse_beam_groups, config.diverse_beam_strength) == (2, 1.5)
    assert resolve_generation_config(GenerationConfig(), print_alignment=True).print_alignment == "hard"


def test_both_spellings_give_the_same_output(tiny):
    fairseq = generate([tiny], SOURCE, beam=4, diverse_beam_groups=2, diverse_beam_strength=1.0)
    hf = generate([tiny], SOURCE, num_beams=4, num_beam_groups=2, diversity_penalty=1.0)
    assert torch.equal(fairseq, hf)
    fairseq = generate([tiny], SOURCE, beam=2, sampling=True, sampling_topk=5, seed=3)
    hf = generate([tiny], SOURCE, num_beams=2, do_sample=True, top_k=5, seed=3)
    assert torch.equal(fairseq, hf)


@pytest.mark.parametrize("kwargs,message", [
    ({"do_sample": True, "num_beam_groups": 2, "num_beams": 4}, "cannot be combined"),
    ({"sampling": True, "match_source_len": True}, "cannot be combined"),
    ({"diversity_rate": 0.5, "constraints": "ordered"}, "cannot be combined"),
    ({"num_beam_groups": 3, "num_beams": 4}, "must divide num_beams=4"),
    ({"top_k": 5}, "need sampling=True"),
    ({"sampling": True, "top_k": 5, "top_p": 0.5}, "not both"),
    ({"sampling": True, "top_p": 1.5}, "top_p"),
    ({"temperature": 0.0}, "temperature must be > 0"),
    ({"constraints": "sideways"}, "'ordered' or 'unordered'"),
    ({"print_alignment": "fuzzy"}, "'hard' or 'soft'"),
    ({"seed": -1}, "seed"),
])
def test_invalid_combinations_are_one_config_error(kwargs, message, tiny):
    with pytest.raises(ConfigError, match=message):
        generate([tiny], SOURCE, **kwargs)


def test_prefix_longer_than_max_len_is_refused(tiny):
    with pytest.raises(ConfigError, match="prefix_tokens has 4 tokens, more than the maximum output length 3"):
        generate([tiny], SOURCE, max_len_b=3, prefix_tokens=[[8, 16, 13, 9], [8]])


def test_constraints_need_vocabulary_tokens_and_the_lists(tiny):
    with pytest.raises(ConfigError, match="not target-vocabulary words"):
        generate([tiny], SOURCE, constraints=[[[8, 3]], []])  # 3 = <unk>
    with pytest.raises(ConfigError, match="at least one token"):
        generate([tiny], SOURCE, constraints=[[[]], []])
    with pytest.raises(ConfigError, match="needs the constraints themselves"):
        generate([tiny], SOURCE, constraints="ordered")
    with pytest.raises(InputError, match="one list per input"):
        generate([tiny], SOURCE, constraints="unordered", constraint_ids=[[[8]]])


def test_constraint_lists_and_mode_via_either_keyword(tiny):
    wanted = [[[1009, 128, 15]], [[523]]]
    by_lists = generate([tiny], SOURCE, num_beams=3, constraints=wanted, return_dict_in_generate=True)
    by_mode = generate([tiny], SOURCE, num_beams=3, constraints="ordered", constraint_ids=wanted,
                       return_dict_in_generate=True)
    for lists, mode, constraint in zip(by_lists.hypotheses, by_mode.hypotheses, wanted):
        assert [h.tokens.tolist() for h in lists] == [h.tokens.tolist() for h in mode]
        for hypo in lists:
            tokens = hypo.tokens.tolist()
            need = constraint[0]
            assert any(tokens[i: i + len(need)] == need for i in range(len(tokens)))


def test_translator_text_api(model_dir):
    translator = Translator.from_pretrained(model_dir)
    lines = ["A man in an orange hat.", "Two dogs play in the snow."]
    first = translator.translate(lines, num_beams=2, do_sample=True, seed=11)
    again = translator.translate(lines, num_beams=2, do_sample=True, seed=11)
    assert [[h.tokens for h in t.hypotheses] for t in first] == [[h.tokens for h in t.hypotheses] for t in again]
    forced = translator.translate(lines, prefixes=["Ein Mann", "Zwei Hunde"], prefix_size=1)
    assert all(h.text.startswith(p) for t, p in zip(forced, ("Ein", "Zwei")) for h in t.hypotheses)
    constrained = translator.translate(lines, constraints=[["Boston"], []], num_beams=3)
    assert all("Boston" in h.text for h in constrained[0].hypotheses)
    aligned = translator.translate(lines[:1], print_alignment="hard", nbest=1)[0].hypotheses[0]
    assert len(aligned.alignment) == len(aligned.tokens) - 1  # one pair per non-EOS target token
    with pytest.raises(InputError, match="tokenizes to nothing"):
        translator.translate(lines, constraints=[[" "], []])


def _translate(args, capsys):
    from fsmt_port.translation.cli import main

    code = main(args + ["--quiet"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_translate_cli_modes(model_dir, tmp_path, capsys):
    source = tmp_path / "in.txt"
    source.write_text("A man in an orange hat.\tBoston\tTerrier\nTwo dogs play.\tHunde\n", encoding="utf-8")
    code, out, err = _translate([str(model_dir), "-i", str(source), "--constraints", "--format", "jsonl",
                                 "--print-alignment", "--beam", "3"], capsys)
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["source"] for r in records] == ["A man in an orange hat.", "Two dogs play."]
    for record, words in zip(records, (["Boston", "Terrier"], ["Hunde"])):
        for hypo in record["hypotheses"]:
            assert all(w in hypo["text"] for w in words)
            assert all(len(pair) == 2 for pair in hypo["alignment"])
    plain = tmp_path / "plain.txt"
    plain.write_text("A man in an orange hat.\nTwo dogs play.\n", encoding="utf-8")
    prefixes = tmp_path / "prefix.txt"
    prefixes.write_text("Ein Junge sitzt\nZwei Hunde\n", encoding="utf-8")
    code, out, err = _translate([str(model_dir), "-i", str(plain), "--prefix-file", str(prefixes),
                                 "--prefix-size", "2"], capsys)
    assert code == 0, err
    assert [line.split()[:2] for line in out.splitlines()] == [["Ein", "Junge"], ["Zwei", "Hunde"]]
    runs = [_translate([str(model_dir), "-i", str(plain), "--do-sample", "--top-p", "0.9", "--seed", "4"], capsys)
            for _ in range(2)]
    assert runs[0] == runs[1] and runs[0][0] == 0


@pytest.mark.parametrize("args,message", [
    (["--num-beam-groups", "2", "--beam", "3"], "must divide"),
    (["--prefix-size", "2"], "--prefix-size needs --prefix-file"),
    (["--sampling", "--diverse-beam-groups", "2", "--beam", "4"], "cannot be combined"),
])
def test_translate_cli_refuses_bad_modes(model_dir, tmp_path, capsys, args, message):
    source = tmp_path / "in.txt"
    source.write_text("Two dogs play.\n", encoding="utf-8")
    code, out, err = _translate([str(model_dir), "-i", str(source)] + args, capsys)
    assert code == 2 and out == ""
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_translate_cli_empty_constraint_says_so(model_dir, tmp_path, capsys):
    source = tmp_path / "in.txt"
    source.write_text("Two dogs play.\t \n", encoding="utf-8")
    code, _, err = _translate([str(model_dir), "-i", str(source), "--constraints"], capsys)
    assert code == 2 and "constraint ' ' tokenizes to nothing" in err


def test_run_eval_prefix_size_uses_the_reference(model_dir, tmp_path, capsys):
    from fsmt_port.evaluation.run_eval import main

    source, reference, output = tmp_path / "src.en", tmp_path / "ref.de", tmp_path / "hyp.de"
    source.write_text("A man in an orange hat.\nTwo dogs play.\n", encoding="utf-8")
    reference.write_text("Ein Junge mit Hut.\nZwei Hunde spielen.\n", encoding="utf-8")
    code = main([str(model_dir), str(source), str(output), "--reference-path", str(reference), "--prefix-size", "2",
                 "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert [line.split()[:2] for line in output.read_text(encoding="utf-8").splitlines()] == [
        ["Ein", "Junge"], ["Zwei", "Hunde"]]
    code = main([str(model_dir), str(source), str(tmp_path / "x.de"), "--reference-path", str(reference),
                 "--print-alignment", "--quiet"])
    assert code == 2 and "fsmt-translate --format jsonl" in capsys.readouterr().err
