"""Helpers for the fsmt-serve tests: building an in-process service, comparing answers with offline
translation, and running a real ``python -m fsmt_port.serve`` process on a free loopback port."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from fsmt_port.serving.batcher import BatchingSettings
from fsmt_port.serving.service import ServeLimits, TranslationService
from fsmt_port.translation.translator import Translator

SRC = Path(__file__).resolve().parents[1] / "src"


def make_service(translator: Translator, limits: ServeLimits = ServeLimits(), folder: Path | None = None,
                 **batching) -> TranslationService:
    sources = [(str(folder), str(folder))] if folder else []
    return TranslationService(translator, limits, BatchingSettings(**batching), model_sources=sources)


def assert_same_as_offline(hypotheses: list[dict], offline, nbest: int = 1) -> None:
    """One sentence's answer vs ``Translator.translate`` of that sentence alone: identical tokens and
    text, scores within the README's tolerance (batching moves only the last float bits)."""
    assert len(hypotheses) == nbest
    for got, want in zip(hypotheses, offline.hypotheses[:nbest]):
        assert got["text"] == want.text
        if "tokens" in got:
            assert got["tokens"] == want.tokens
        tolerance = max(1e-4, abs(sum(want.positional_scores)) * 2 ** -20)
        assert abs(got["score"] - want.score) <= tolerance, (got["score"], want.score)


class ServerProcess:
    """``python -m fsmt_port.serve ... --port 0`` on 127.0.0.1; the port is read from its first line."""

    def __init__(self, *args: str, timeout: float = 120, env: dict | None = None) -> None:
        env = {**(env or os.environ), "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.proc = subprocess.Popen([sys.executable, "-m", "fsmt_port.serve", *map(str, args), "--host", "127.0.0.1",
                                      "--port", "0", "--log-level", "warning"],
                                     stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
        deadline = time.monotonic() + timeout
        self.log: list[str] = []
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.log.append(line)
            match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if match:
                self.url = f"http://127.0.0.1:{match.group(1)}"
                self.port = int(match.group(1))
                return
        self.stop()
        raise RuntimeError("fsmt-serve did not start:\n" + "".join(self.log))

    def terminate(self, timeout: float = 60, send: bool = True) -> tuple[int, str]:
        """SIGTERM (unless already ``send``), then the exit code and the rest of stderr."""
        if send:
            self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, "".join(self.log) + err

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=30)
