"""README.md's examples run, so they cannot rot.

* Every ```python block is executed (in a temporary folder where each model name it passes to
  ``from_pretrained`` is a tiny converted model, and each hub repo id it names is in an offline hub cache)
  and must print something.
* Every line of the ```bash blocks that runs one of our command lines (``fsmt-translate``, ``run_eval``,
  ``run_eval_search``, ``fsmt-convert``, ``python -m fsmt_port.*``, possibly fed by ``echo``/``cat``) is run
  in order in one temporary folder holding the files the README names (a fairseq archive, ``m1``..``m4``,
  ``news.en``, ``test.en``/``test.de``, ``val.source``/``val.target``, and any other ``--input``/reference
  file a command names) and must exit 0. Lines of other
  programs (``bash scripts/...``, ``torchrun``, benchmarks) are left to their own tests.

Put ``<!-- readme-test: skip -->`` on the line before a block that cannot run in such a folder.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import fsmt_port
import golden
from hub_cache import add_snapshot, folder_files, hub_env, use_cache
from fsmt_port.hub import is_repo_id

REPO = Path(__file__).resolve().parents[1]
TINY = "tiny-en-de-joint"
SKIP_MARK = "<!-- readme-test: skip -->"
PROGRAMS = {"fsmt-translate": "fsmt_port.translate", "run_eval": "fsmt_port.run_eval",
            "run_eval_search": "fsmt_port.run_eval_search", "fsmt-convert": "fsmt_port.convert"}
FEEDERS = {"echo", "cat"}
DATA = {"news.en": "en", "test.en": "en", "test.de": "de", "val.source": "en", "val.target": "de"}


def readme_blocks(language: str) -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = []
    for match in re.finditer(r"^```(\w*)\n(.*?)^```", text, flags=re.S | re.M):
        before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        if match.group(1) == language and SKIP_MARK not in before:
            blocks.append(match.group(2))
    return blocks


def shell_commands() -> list[str]:
    commands = []
    for block in readme_blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"(^|\s)#.*$", "", line)  # comments
            line = re.sub(r"\s\[[^\]]*\]", "", line).strip()  # [optional arguments]
            if line and _is_ours(line):
                commands.append(line)
    return commands


def _is_ours(line: str) -> bool:
    segments = [shlex.split(s) for s in re.split(r"\|", line.split(">")[0])]
    ours = [s for s in segments if s and (s[0] in PROGRAMS or s[:2] == ["python", "-m"] and
                                          s[2].startswith("fsmt_port."))]
    return bool(ours) and all(s and (s in ours or s[0] in FEEDERS) for s in segments)


def _repo_ids(text: str) -> set[str]:
    return {s for s in re.findall(r"""["'\s]([\w.-]+/[\w.-]+)(?=["'\s])""", text) if is_repo_id(s)
            and not s.endswith((".txt", ".json", ".pt", ".en", ".de"))}


def _hub_cache(root: Path, ids: set[str], folder: Path) -> Path:
    cache = root / ".hub"
    for repo_id in sorted(ids):
        add_snapshot(cache, repo_id, folder_files(folder))
    return cache


def _write_data(folder: Path, names: dict[str, str] = DATA) -> None:
    for name, lang in names.items():
        (folder / name).write_text("".join(x + "\n" for x in golden.flickr_lines(lang)[:3]), encoding="utf-8")


def _inputs_named(command: str) -> dict[str, str]:
    """Text files a command reads (``--input``, references, ``cat FILE |``) -> their language, by extension."""
    tokens = shlex.split(command.replace("|", " | "))
    named = [value for option, value in zip(tokens, tokens[1:])
             if option in ("--input", "-i", "--reference-path", "--reference_path", "cat") and value != "-"]
    return {name: "de" if name.endswith((".de", ".target")) else "en" for name in named}


@pytest.mark.parametrize("index", range(len(readme_blocks("python"))))
def test_readme_python_block_runs(index, converted, tmp_path, monkeypatch, capsys):
    code = readme_blocks("python")[index]
    folder = converted(TINY)
    for call in re.findall(r"from_pretrained\(([^)]*)\)", code):
        for name in re.findall(r"""["']([^"']+)["']""", call):
            if not is_repo_id(name) and not (tmp_path / name).exists():
                (tmp_path / name).symlink_to(folder, target_is_directory=True)
    use_cache(monkeypatch, _hub_cache(tmp_path, _repo_ids(code), folder))
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"README.md python block {index + 1}", "exec"), {})
    assert capsys.readouterr().out.strip(), "a README example should show its result"


def _fairseq_archive(folder: Path) -> None:
    """wmt19.en-de.joined-dict.ensemble/: the tiny fixture, its checkpoint recording en-de as WMT19's do."""
    folder.mkdir()
    source = golden.model_dir(TINY)
    for name in ("dict.en.txt", "dict.de.txt", "bpecodes"):
        shutil.copy(source / name, folder / name)
    checkpoint = torch.load(golden.checkpoint_path(TINY), map_location="cpu", weights_only=False)
    checkpoint["cfg"]["task"].update(source_lang="en", target_lang="de")
    torch.save(checkpoint, folder / "model4.pt")


@pytest.mark.slow
def test_readme_shell_commands_run(converted, tmp_path):
    commands = shell_commands()
    assert any(c.startswith("run_eval_search") for c in commands)  # the extraction found the examples
    scene = tmp_path / "scene"
    scene.mkdir()
    _write_data(scene)
    _fairseq_archive(scene / "wmt19.en-de.joined-dict.ensemble")
    for name in ("m1", "m2", "m3", "m4"):
        shutil.copytree(converted(TINY), scene / name)
    shims = tmp_path / "bin"
    shims.mkdir()
    for program, module in {**PROGRAMS, "python": None}.items():
        target = f'exec {shlex.quote(sys.executable)} {"-m " + module if module else ""} "$@"\n'
        (shims / program).write_text("#!/bin/sh\n" + target)
        (shims / program).chmod(0o755)
    env = hub_env(_hub_cache(tmp_path, _repo_ids("\n".join(commands)), converted(TINY)))
    env["PATH"] = f"{shims}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = str(Path(fsmt_port.__file__).resolve().parents[1])
    for command in commands:
        _write_data(scene, {n: lang for n, lang in _inputs_named(command).items() if not (scene / n).exists()})
        run = subprocess.run(["bash", "-c", command], cwd=scene, env=env, capture_output=True, text=True,
                             timeout=600)
        assert run.returncode == 0, f"README command failed: {command}\n{run.stderr[-2000:]}"
