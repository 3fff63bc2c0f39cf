"""On-disk cache of one search combination's translations, so an interrupted search resumes.

The key covers everything that changes the output: each model folder (path,
and name/size/mtime of every file but ``generation_config.json``, whose values
are part of the resolved arguments), the input file's sha256 plus the reading
policy, the fully resolved generation arguments, and dtype/quantization/device
type. Batch size is left out: results do not depend on batching. Each entry is
written atomically as soon as its combination is done.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from fsmt_port.files import atomic_file, sha256
from fsmt_port.translation.resume import model_fingerprint

def base_key_fields(model_dirs: list[str], input_path: str | Path, reading: dict, runtime: dict) -> dict:
    """The part of the key shared by every combination (hashes the input once)."""
    return {
        "models": [model_fingerprint(d) for d in model_dirs],
        "input_sha256": sha256(Path(input_path)),
        "reading": reading,
        "runtime": runtime,
    }


class TranslationCache:
    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    @staticmethod
    def key(fields: dict) -> str:
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode("utf-8")).hexdigest()

    def path(self, key: str) -> Path:
        return self.folder / f"{key[:32]}.json"

    def get(self, fields: dict, n_lines: int) -> dict | None:
        """The stored entry (hypotheses, seconds) or None; unreadable or foreign entries are misses."""
        path = self.path(self.key(fields))
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if entry.get("key_fields") != fields or len(entry.get("hypotheses", ())) != n_lines:
            return None
        return entry

    def put(self, fields: dict, hypotheses: list[str], seconds: float) -> Path:
        path = self.path(self.key(fields))
        with atomic_file(path) as handle:
            json.dump({"key_fields": fields, "hypotheses": hypotheses, "seconds": seconds}, handle,
                      ensure_ascii=False)
        return path
