"""Decoding settings, kept apart from the architecture (``generation_config.json``).

HF names map to fairseq's: ``num_beams``=beam, ``length_penalty``=lenpen,
``num_return_sequences``=nbest, ``unk_penalty``=unkpen, ``min_len``,
``max_len_a``/``max_len_b``, ``no_repeat_ngram_size``; ``early_stopping=True``
is fairseq's behaviour (False: fairseq 0.7.2's ``--no-early-stop``). See ``generation/__init__.py`` and the README.
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
#: transformers' names for fairseq's options (GenerationConfig keeps fairseq's).
HF_NAMES = {"do_sample": "sampling", "top_k": "sampling_topk", "top_p": "sampling_topp",
            "num_beam_groups": "diverse_beam_groups", "diversity_penalty": "diverse_beam_strength"}


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
    # fairseq's other decoding modes (one search each; see generation/README section "Decoding modes")
    temperature: float = 1.0  # logits / temperature before the log-softmax, in every mode
    sampling: bool = False  # HF do_sample
    sampling_topk: int = -1  # HF top_k; -1 = whole vocabulary
    sampling_topp: float = -1.0  # HF top_p; -1 = off
    seed: int | None = None  # sampling draws from a torch.Generator seeded with this (None: torch's global one)
    diverse_beam_groups: int = -1  # HF num_beam_groups
    diverse_beam_strength: float = 0.5  # HF diversity_penalty
    diversity_rate: float = -1.0  # diverse siblings search when >= 0
    match_source_len: bool = False
    constraints: str | None = None  # "ordered" | "unordered": how per-sentence constraints are met
    print_alignment: str | None = None  # "hard" | "soft"
    lm_path: str | None = None  # shallow fusion: a converted transformer_lm folder (fairseq --lm-path)
    lm_weight: float = 0.0  # fusion: lprobs += lm_weight * LM log-probs (fairseq --lm-weight)

    def __post_init__(self) -> None:
        if self.print_alignment is True:  # fairseq's bare --print-alignment means hard
            object.__setattr__(self, "print_alignment", "hard")
        if self.print_alignment is False:
            object.__setattr__(self, "print_alignment", None)
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
            (all(is_finite_number(v) for v in (self.length_penalty, self.unk_penalty, self.max_len_a,
                                             self.temperature, self.sampling_topp, self.diverse_beam_strength,
                                             self.diversity_rate, self.lm_weight)),
             "length_penalty, unk_penalty, max_len_a, temperature, sampling_topp, diverse_beam_strength, "
             "diversity_rate and lm_weight must be finite numbers"),
            *_mode_checks(self),
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


def _mode_checks(cfg: GenerationConfig) -> list[tuple[bool, str]]:
    """The decoding modes' own rules, and the combinations fairseq refuses (or silently breaks)."""
    exclusive = [name for name, on in (("sampling", cfg.sampling), ("diverse_beam_groups", cfg.diverse_beam_groups > 0),
                                       ("match_source_len", cfg.match_source_len),
                                       ("diversity_rate", cfg.diversity_rate > 0),
                                       ("constraints", cfg.constraints is not None)) if on]
    return [
        (cfg.temperature > 0, "temperature must be > 0"),
        (cfg.sampling_topk == -1 or cfg.sampling_topk >= 1, "sampling_topk (top_k) must be >= 1, or -1 for off"),
        (cfg.sampling_topp == -1.0 or 0 < cfg.sampling_topp <= 1, "sampling_topp (top_p) must be in (0, 1], "
                                                                   "or -1 for off"),
        (cfg.sampling or (cfg.sampling_topk == -1 and cfg.sampling_topp == -1.0),
         "sampling_topk/sampling_topp need sampling=True (do_sample)"),
        (not (cfg.sampling_topk > 0 and cfg.sampling_topp > 0), "give sampling_topk or sampling_topp, not both"),
        (cfg.diverse_beam_groups == -1 or cfg.diverse_beam_groups >= 1, "diverse_beam_groups must be >= 1, or -1"),
        (cfg.diverse_beam_groups < 1 or cfg.num_beams % cfg.diverse_beam_groups == 0,
         f"diverse_beam_groups={cfg.diverse_beam_groups} must divide num_beams={cfg.num_beams}"),
        (cfg.diversity_rate == -1.0 or cfg.diversity_rate >= 0, "diversity_rate must be >= 0, or -1 for off"),
        (len(exclusive) <= 1 and not (cfg.constraints is not None and cfg.diversity_rate >= 0),
         f"decoding modes {exclusive} cannot be combined (fairseq runs one search at a time)"),
        (cfg.constraints in (None, "ordered", "unordered"), "constraints must be 'ordered' or 'unordered'"),
        (cfg.print_alignment in (None, "hard", "soft"), "print_alignment must be 'hard' or 'soft'"),
        (cfg.seed is None or (isinstance(cfg.seed, int) and cfg.seed >= 0), "seed must be an integer >= 0"),
    ]
