"""``--update-config``: the search's best values become the model folder's defaults, with a paper trail.

The file is rewritten atomically; keys we do not own (special token ids) are
kept; ``fsmt_port_provenance`` says where the values came from and keeps the
previous provenance under ``previous``.
"""

from __future__ import annotations

import json
from pathlib import Path

from fsmt_port.generation.config import GenerationConfig
from fsmt_port.files import write_json

OWN_KEYS = {"max_length", "fsmt_port_provenance"}


def update_generation_config(model_dir: str | Path, best: dict, provenance: dict) -> Path:
    path = Path(model_dir) / "generation_config.json"
    config = GenerationConfig.from_pretrained(model_dir).update(**best)  # validates the file and the values
    existing = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    kept = {k: v for k, v in existing.items() if k not in config.to_dict() and k not in OWN_KEYS}
    previous = existing.get("fsmt_port_provenance")
    record = {**provenance, **({"previous": previous} if previous else {})}
    write_json(path, config.to_file_dict(provenance=record, special=kept))
    return path
