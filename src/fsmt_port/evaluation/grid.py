"""The search grid: ``"num_beams=5:8 length_penalty=0.6:1.1 early_stopping=true:false"``.

Space-separated ``name=value:value:...`` terms; any field of ``GenerationConfig``
(or its fairseq alias: beam, lenpen, nbest, unkpen; dashes allowed) can be
searched. Values are typed like the field (int, float, bool). The grid is the
Cartesian product, in the order written: the last name varies fastest.
"""

from __future__ import annotations

import itertools
from dataclasses import fields

from fsmt_port.cli import parse_bool
from fsmt_port.errors import ConfigError
from fsmt_port.generation import FAIRSEQ_NAMES
from fsmt_port.generation.config import GenerationConfig

FIELD_TYPES = {f.name: type(f.default) for f in fields(GenerationConfig)}


def _typed(name: str, text: str, field_types: dict | None = None):
    kind = (field_types or FIELD_TYPES)[name]
    lowered = text.strip().lower()
    if kind is bool:
        value = parse_bool(lowered)
        if value is None:
            raise ConfigError(f"--search {name}: {text!r} is not true or false")
        return value
    try:
        return kind(lowered) if kind is float else int(lowered)
    except ValueError:
        raise ConfigError(f"--search {name}: {text!r} is not a valid {kind.__name__}") from None


def parse_search(text: str, field_types: dict | None = None, aliases: dict | None = None) -> dict[str, list]:
    """``"a=1:2 b=x"`` -> ``{"a": [1, 2], "b": [x]}`` with typed values and canonical names.

    The names are generation arguments unless ``field_types`` (name -> type) says otherwise.
    """
    field_types = field_types or FIELD_TYPES
    aliases = FAIRSEQ_NAMES if aliases is None else aliases
    grid: dict[str, list] = {}
    for term in text.split():
        name, sep, values = term.partition("=")
        canonical = aliases.get(name.replace("-", "_"), name.replace("-", "_"))
        if not sep or not values:
            raise ConfigError(f"--search term {term!r} must look like name=value1:value2")
        if canonical not in field_types:
            what = "generation argument" if field_types is FIELD_TYPES else "argument"
            raise ConfigError(f"--search: unknown {what} {name!r}; expected one of {sorted(field_types)}")
        if canonical in grid:
            raise ConfigError(f"--search: {canonical} is given twice; list all its values in one term")
        typed = [_typed(canonical, v, field_types) for v in values.split(":") if v.strip()]
        if not typed:
            raise ConfigError(f"--search term {term!r} has no values")
        grid[canonical] = list(dict.fromkeys(typed))  # drop repeats, keep order
    if not grid:
        raise ConfigError("--search is empty; give e.g. \"num_beams=5:8 length_penalty=0.6:1.1\"")
    return grid


def expand(grid: dict[str, list]) -> list[dict]:
    """Every combination, as ``{name: value}`` dicts."""
    names = list(grid)
    return [dict(zip(names, values)) for values in itertools.product(*(grid[n] for n in names))]


def format_value(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def describe(combination: dict) -> str:
    """``num_beams=5 length_penalty=0.6``: the search syntax of one combination."""
    return " ".join(f"{k}={format_value(v)}" for k, v in combination.items())


def as_options(combination: dict) -> str:
    """``--num-beams 5 --length-penalty 0.6``: the same values as command-line options."""
    return " ".join(f"--{k.replace('_', '-')} {format_value(v)}" for k, v in combination.items())


def generation_fields(row: dict) -> list[str]:
    """The generation argument keys of ``row``, in GenerationConfig order."""
    return [name for name in FIELD_TYPES if name in row]
