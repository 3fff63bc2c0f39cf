"""Decoding settings, kept apart from the architecture (``generation_config.json``).

HF names map to fairseq's: ``num_beams``=beam, ``length_penalty``=lenpen,
``num_return_sequences``=nbest, ``unk_penalty``=unkpen, ``min_len``,
``max_len_a``/``max_len_b``, ``no_repeat_ngram_size``; ``early_stopping=True``
is fairseq's behaviour (False: fairseq 0.7.2's ``--no-early-stop``). See ``generation/generator.py``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from fsmt_port.config_fields import check_field_types, is_finite_number
from fsmt_port.errors import ConfigError
from fsmt_port.files import read_json

#: fairseq's generation option names -> ours (both are accepted everywhere; ours win when both are given).
FAIRSEQ_NAMES = {"beam": "num_beams", "lenpen": "length_penalty", "nbest": "num_return_sequences",
                 "unkpen": "unk_penalty"}


@dataclass(frozen=True)
class GenerationConfig:
    num_beams: int = 5
    length_penalty: float = 1.0
    num_return_sequences: int = 1
    early_stopping: bool = True
    no_repeat_ngram_size: int = 0
    max_len_a: float = 0.0
    max_len_b: int = 200
    min_len: int = 1
    unk_penalty: float = 0.0

    def __post_init__(self) -> None:
        check_field_types(self, "generation config")
        checks = [
            (self.num_beams >= 1, "num_beams must be >= 1"),
            (1 <= self.num_return_sequences <= self.num_beams, "num_return_sequences must be between 1 and num_beams"),
            (self.no_repeat_ngram_size >= 0, "no_repeat_ngram_size must be >= 0"),
            (self.no_repeat_ngram_size != 1,
             "no_repeat_ngram_size=1 would ban every token already generated, and the starting </s> bans </s> "
             "itself, so no hypothesis could ever end (fairseq 0.10 and its CUDA kernel fail there too); "
             "use 0 (off) or 2 and more"),
            (self.min_len >= 0, "min_len must be >= 0"),
            (self.max_len_b >= 0 and self.max_len_a >= 0, "max_len_a and max_len_b must be >= 0"),
            (all(is_finite_number(v) for v in (self.length_penalty, self.unk_penalty, self.max_len_a)),
             "length_penalty, unk_penalty and max_len_a must be finite numbers"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"invalid generation config: {message} (got {self})")

    def update(self, **kwargs) -> "GenerationConfig":
        known = {f.name for f in fields(self)}
        unknown = sorted(k for k in kwargs if k not in known)
        if unknown:
            raise ConfigError(f"unknown generation argument(s) {unknown}; expected some of {sorted(known)}")
        return replace(self, **{k: v for k, v in kwargs.items() if v is not None})

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "GenerationConfig":
        """Our fields from ``data`` (fairseq names accepted; unknown keys and ``None`` values ignored)."""
        known = {f.name for f in fields(cls)}
        renamed = {FAIRSEQ_NAMES[k]: v for k, v in data.items() if k in FAIRSEQ_NAMES}
        renamed.update((k, v) for k, v in data.items() if k in known)
        return cls(**{k: v for k, v in renamed.items() if v is not None})

    @classmethod
    def from_pretrained(cls, model_dir: str | Path) -> "GenerationConfig":
        path = Path(model_dir) / "generation_config.json"
        if not path.exists():
            return cls()
        data = read_json(path, "generation config")
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a JSON object, got {type(data).__name__}")
        try:
            return cls.from_dict(data)
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from None

    def to_file_dict(self, provenance: dict | None = None, special: dict | None = None) -> dict:
        """What ``generation_config.json`` holds: ours plus the HF keys transformers reads."""
        data = self.to_dict()
        data.update(special or {})
        data["max_length"] = self.max_len_b
        if provenance:
            data["fsmt_port_provenance"] = provenance
        return data
