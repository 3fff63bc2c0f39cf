"""The evaluation pair: source lines and their references, checked before any model is loaded.

Failing here costs nothing; failing after an hour of decoding (or on one rank
of a torchrun job) costs a lot.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fsmt_port.errors import ConfigError, InputError
from fsmt_port.files import read_lines


@dataclass(frozen=True)
class EvalData:
    sources: list[str]
    references: list[str]
    input_path: Path
    reference_path: Path


def load_eval_data(input_path: str | Path, reference_path: str | Path, errors: str = "strict",
                   n_obs: int | None = None) -> EvalData:
    """Read both files with the project's text policy; they must be non-empty and line-aligned.

    ``n_obs`` > 0 keeps the first ``n_obs`` pairs (transformers' run_eval ``--n_obs``)."""
    sources = read_lines(input_path, errors=errors, what="input")
    references = read_lines(reference_path, errors=errors, what="reference")
    for path, lines, what in ((input_path, sources, "input"), (reference_path, references, "reference")):
        if not lines:
            raise InputError(f"{path}: {what} file is empty; give a file with one sentence per line")
    if len(sources) != len(references):
        raise InputError(f"{reference_path}: the reference has {len(references)} lines but the input "
                         f"{input_path} has {len(sources)}; they must align line by line")
    if n_obs is not None and n_obs > 0:
        sources, references = sources[:n_obs], references[:n_obs]
    return EvalData(sources, references, Path(input_path), Path(reference_path))


def check_output_path(path: str | Path, what: str = "output") -> Path:
    """Fail now, not after decoding, when ``path`` cannot be written."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: {what} is a folder; give a file path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"{path}: cannot create the {what}'s folder ({err.strerror})") from None
    return path
