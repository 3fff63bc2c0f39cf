"""Where a model lives: a local folder, or a Hugging Face hub repo id fetched into the hub cache.

Everything that accepts a model folder (``from_pretrained``, every CLI, the server) passes what the user gave
through :func:`resolve_model_dir`:

* an existing folder is used as it is;
* otherwise ``org/name`` is a hub repo id: ``huggingface_hub.snapshot_download`` fetches only the files the
  caller needs (tokenizer, config, weights: ``model.safetensors``, else transformers' ``pytorch_model.bin``,
  which the safe unpickler then loads) into huggingface_hub's standard cache (``HF_HUB_CACHE``/``HF_HOME``);
* ``HF_HUB_OFFLINE=1`` or ``local_files_only=True`` use the cache only;
* hub failures (missing repo, gated repo, unknown revision, no network, not cached) become one
  :class:`~fsmt_port.errors.HubError` line that says what to do.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from fsmt_port.errors import ConfigError, HubError, MissingFileError

TOKENIZER_FILES = ("vocab-src.json", "vocab-tgt.json", "merges.txt", "tokenizer_config.json")
CONFIG_FILES = ("config.json", "generation_config.json")
#: Weights in order of preference: the first one the repo has is the only one downloaded.
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
OPTIONAL_FILES = ("generation_config.json",)
MODEL_FILES = CONFIG_FILES + TOKENIZER_FILES + WEIGHT_FILES

# huggingface_hub's own rule for repo ids: "name" or "namespace/name", letters, digits, "-", "_", "."
_REPO_ID = re.compile(r"^(?:[A-Za-z0-9][\w.-]*/)?[A-Za-z0-9][\w.-]*$")


def is_repo_id(name: str) -> bool:
    """``org/name`` that is not an existing path: what the user means as a hub id."""
    return "/" in name and bool(_REPO_ID.match(name)) and ".." not in name and not name.endswith(".")


def resolve_model_dir(name_or_path: str | os.PathLike, *, revision: str | None = None,
                      local_files_only: bool = False, files: tuple[str, ...] = MODEL_FILES,
                      cache_dir: str | os.PathLike | None = None) -> Path:
    """The local folder holding ``files`` of ``name_or_path`` (downloading them if it is a hub id)."""
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.is_dir():
        return path
    if not is_repo_id(text):
        raise MissingFileError(f"{text}: model folder not found, and not a hub repo id (org/name); convert a checkpoint "
                          "first (python -m fsmt_port.convert --fsmt-path MODEL.pt --output-dir DIR) or give e.g. "
                          "facebook/wmt19-en-de")
    return _snapshot(text, revision, local_files_only or _offline(), files, cache_dir)


def _offline() -> bool:
    """huggingface_hub reads HF_HUB_OFFLINE once, at import; a later change of the variable counts too."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE")


def _snapshot(repo_id: str, revision: str | None, local_only: bool, files: tuple[str, ...],
              cache_dir: str | os.PathLike | None) -> Path:
    wanted = [f for f in files if f not in WEIGHT_FILES]
    weights = [f for f in WEIGHT_FILES if f in files]
    folder = _download(repo_id, revision, local_only, wanted + weights[:1], cache_dir)
    for fallback in weights[1:]:  # e.g. facebook/wmt19-*: no model.safetensors, a pytorch_model.bin
        if any((folder / w).is_file() for w in weights):
            break
        folder = _download(repo_id, revision, local_only, wanted + [fallback], cache_dir)
    where = f"{repo_id}" + (f" (revision {revision})" if revision else "")
    missing = [f for f in wanted if f not in OPTIONAL_FILES and not (folder / f).is_file()]
    if weights and not any((folder / w).is_file() for w in weights):
        missing.append(" or ".join(weights))
    if missing and local_only:
        raise HubError(f"{where}: the cached snapshot lacks {', '.join(missing)}; run once with network access "
                       "(HF_HUB_OFFLINE unset) to complete it")
    if missing:
        raise HubError(f"{where}: the repo has no {', '.join(missing)}; is it an FSMT model repo "
                       "(like facebook/wmt19-en-de)?")
    return folder


def _download(repo_id: str, revision: str | None, local_only: bool, patterns: list[str],
              cache_dir: str | os.PathLike | None) -> Path:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=patterns,
                                      local_files_only=local_only, cache_dir=cache_dir))
    except Exception as err:  # noqa: BLE001 - mapped to one line below; anything unknown is re-raised
        raise hub_error(repo_id, revision, local_only, err) from None


def hub_error(repo_id: str, revision: str | None, local_only: bool, err: Exception) -> Exception:
    """One clear line for what huggingface_hub raised (``err`` itself if it is not a hub failure)."""
    from huggingface_hub import errors

    where = f"{repo_id}" + (f" (revision {revision})" if revision else "")
    if isinstance(err, errors.GatedRepoError):  # before RepositoryNotFoundError: it is a subclass
        return HubError(f"{where}: the repo is gated; accept its terms on https://huggingface.co/{repo_id} "
                        "and log in (hf auth login or HF_TOKEN)")
    status = getattr(getattr(err, "response", None), "status_code", None)
    if isinstance(err, errors.RepositoryNotFoundError) or (isinstance(err, errors.HfHubHTTPError) and status == 401):
        return HubError(f"{where}: no such repo on the hub (or it is private: log in with hf auth login or "
                        "HF_TOKEN); check the id, or give a local model folder")
    if isinstance(err, errors.RevisionNotFoundError):
        return HubError(f"{repo_id}: revision {revision!r} not found on the hub; give a branch, tag or commit "
                        "that exists")
    if isinstance(err, errors.LocalEntryNotFoundError):
        if local_only:
            return HubError(f"{where}: not in the local hub cache and downloads are off (HF_HUB_OFFLINE=1 or "
                            "local_files_only); run once with network access, or give a local model folder")
        return HubError(f"{where}: the hub cannot be reached and the repo is not in the local hub cache; "
                        "check the network connection (or proxy) and retry")
    if isinstance(err, (errors.HfHubHTTPError, ConnectionError, TimeoutError)) or _is_network_error(err):
        return HubError(f"{where}: download failed ({type(err).__name__}: {str(err).splitlines()[0][:200]}); "
                        "check the network connection and retry")
    if isinstance(err, errors.HFValidationError):
        return ConfigError(f"{repo_id}: not a valid hub repo id ({str(err).splitlines()[0]})")
    return err


def _is_network_error(err: Exception) -> bool:
    """httpx / requests transport errors, without importing either (huggingface_hub uses one of them)."""
    return any(cls.__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "requests", "urllib3")
               for cls in type(err).__mro__)
