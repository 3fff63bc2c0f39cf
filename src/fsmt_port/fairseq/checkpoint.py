"""Read fairseq checkpoints without fairseq and without running their code.

fairseq pickles a whole training state: ``args`` (an ``argparse.Namespace``) or
``cfg`` (plain containers), the ``model`` state_dict and a large optimizer state.
We unpickle with ``torch.load(weights_only=True)``, whose unpickler only builds
tensors, containers and the few classes we allow below. Anything else (a
``__reduce__`` payload, a fairseq class) is refused unless the caller passes
``trust=True``. Tensors are memory-mapped when the file allows it, so the
optimizer state is never read into memory; we simply drop it.
"""

from __future__ import annotations

import argparse
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from fsmt_port.errors import CheckpointError, MissingFileError, UnsafeCheckpointError

#: Top-level checkpoint keys that never matter for inference.
TRAINING_ONLY_KEYS = (
    "last_optimizer_state",
    "optimizer_history",
    "extra_state",
    "criterion",
    "task_state",
)


def _safe_globals() -> list:
    """Classes a fairseq checkpoint legitimately needs: data, never behaviour."""
    allowed: list = [argparse.Namespace]
    try:  # numpy scalars appear in extra_state (e.g. val_loss) of some checkpoints
        import numpy as np

        multiarray = getattr(getattr(np, "_core", None), "multiarray", None) or np.core.multiarray
        allowed += [np.dtype, multiarray.scalar]
        allowed += [type(np.dtype(t)) for t in ("float64", "float32", "int64", "int32", "bool")]
    except Exception:  # pragma: no cover - numpy is a torch dependency in practice
        pass
    return allowed


def load_torch_file(path: str | Path, trust: bool = False) -> Any:
    """``torch.load`` a file safely, turning every failure into one clear error."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: checkpoint file not found; pass the path of an existing model*.pt")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: file is empty; download the checkpoint again")
    # Zip-format files can be memory-mapped: tensors we never touch (optimizer
    # state) are then never read. Legacy (pre-1.6) files cannot; load them whole.
    mmap = zipfile.is_zipfile(path)
    try:
        if trust:  # the user vouched for the file: full unpickling, which can run code
            return torch.load(path, map_location="cpu", mmap=mmap, weights_only=False)
        with torch.serialization.safe_globals(_safe_globals()):
            return torch.load(path, map_location="cpu", mmap=mmap, weights_only=True)
    except pickle.UnpicklingError as err:
        msg = str(err)
        if "weights_only" in msg.lower() or "global" in msg.lower():
            needed = _unsafe_globals(path) or _globals_named_in(msg)
            what = ", ".join(needed) if needed else "a non-allow-listed object"
            if not needed and "unsupported operand" in msg.lower():  # e.g. protocol-4 FRAME: cannot be checked
                what = "a pickle opcode the safe loader cannot check (saved with pickle_protocol >= 4?)"
            raise UnsafeCheckpointError(
                f"{path}: refused to unpickle {what}: loading it could run code from the file. "
                "If you trust where this file came from, pass --trust-checkpoint (in Python: trust_checkpoint=True)."
            ) from None
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({_first_line(msg)}); "
                              "the file is corrupt or truncated, download it again") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError, AttributeError,
            ImportError, TypeError, IndexError) as err:
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({_first_line(str(err))}); "
                              "the file is corrupt or truncated, download it again") from None


def _unsafe_globals(path: Path) -> list[str]:
    try:
        allowed = {f"{g.__module__}.{g.__qualname__}" for g in _safe_globals()}
        return [g for g in torch.serialization.get_unsafe_globals_in_checkpoint(path) if g not in allowed]
    except Exception:
        return []


def _globals_named_in(message: str) -> list[str]:
    """Globals named by torch's refusal (legacy non-zip files, where the zip scan above cannot look)."""
    return list(dict.fromkeys(re.findall(r"GLOBAL ([\w.]+) (?:was not an allowed global|whose module)", message)))


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "unknown error"
    return line[:200]


def load_fairseq_checkpoint(path: str | Path, trust: bool = False) -> dict:
    """Load a fairseq checkpoint; return ``{"model": state_dict, "args": dict, "generation": dict}``.

    ``args`` merges the 2019 ``args`` Namespace and the modern ``cfg`` (model and
    task sections) into one flat dict of architecture options. The optimizer
    state and other training-only entries are dropped.
    """
    ckpt = load_torch_file(path, trust=trust)
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        keys = sorted(ckpt.keys())[:8] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(
            f"{path}: not a fairseq checkpoint (expected a dict with a 'model' state_dict, got {keys}); "
            "pass a fairseq model*.pt, or a folder written by fsmt_port.fairseq.convert / transformers"
        )
    for key in TRAINING_ONLY_KEYS:
        ckpt.pop(key, None)
    state = ckpt["model"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: 'model' is not a state_dict of tensors; is this a fairseq checkpoint?")
    args = flatten_fairseq_args(ckpt.get("args"), ckpt.get("cfg"))
    if not args:
        raise CheckpointError(f"{path}: has neither 'args' nor 'cfg'; cannot tell the architecture")
    generation = {}
    cfg = ckpt.get("cfg")
    if isinstance(cfg, dict) and isinstance(cfg.get("generation"), (dict, argparse.Namespace)):
        generation = _as_dict(cfg["generation"])
    return {"model": state, "args": args, "generation": generation, "tokenizer": _tokenizer_name(ckpt)}


def _tokenizer_name(ckpt: dict) -> str | None:
    """The text tokenizer the checkpoint was trained with (``cfg.tokenizer._name`` or 2019 ``args.tokenizer``)."""
    cfg = ckpt.get("cfg")
    if isinstance(cfg, dict) and cfg.get("tokenizer") is not None:
        return _as_dict(cfg["tokenizer"]).get("_name")
    name = _as_dict(ckpt.get("args")).get("tokenizer")
    return name if isinstance(name, str) else None


def _as_dict(obj: Any) -> dict:
    if obj is None:
        return {}
    if isinstance(obj, argparse.Namespace):
        return dict(vars(obj))
    if isinstance(obj, dict):
        return dict(obj)
    return {}


def flatten_fairseq_args(args: Any, cfg: Any) -> dict:
    """One dict of options: 2019 ``args`` first, then modern ``cfg.task``/``cfg.model`` on top.

    Modern fairseq stores ``args=None`` and ``cfg={"model": Namespace|dict, "task": ...}``;
    ``source_lang``/``target_lang`` live in ``cfg.task`` (and may be ``None``).
    """
    flat = _as_dict(args)
    if isinstance(cfg, dict):
        for section in ("task", "model"):
            for key, value in _as_dict(cfg.get(section)).items():
                if value is not None or key not in flat:
                    flat[key] = value
    return flat
