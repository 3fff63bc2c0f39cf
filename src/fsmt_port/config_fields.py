"""Type checks for the configs read from JSON (config.json, generation_config.json).

JSON gives any type anywhere; a string where an int belongs must be one clear
``ConfigError`` naming the field, not a ``TypeError`` deep inside torch. The
dataclass annotations are the specification: ``int`` (any integral number but a
bool), ``float`` (any real number but a bool), ``bool``, ``str``, ``list[str]`` and
``X | None``.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
import typing

from fsmt_port.errors import ConfigError


def check_field_types(config, source: str) -> None:
    """Raise ``ConfigError("{source}: field=value must be ...")`` for the first mistyped field."""
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        hint = hints[field.name]
        if not _matches(value, hint):
            raise ConfigError(f"{source}: {field.name}={_short(value)} must be {_describe(hint)}")


def is_finite_number(value) -> bool:
    """True for a finite int or float; False for inf, NaN and ints too large for a float."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _matches(value, hint) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:  # numbers.Integral: numpy's integers too
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (list, tuple):
        return isinstance(value, origin) and all(_matches(v, args[0]) for v in value) if args else True
    return True  # anything richer is checked by the config's own rules


def _describe(hint) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in args)
    if hint is type(None):
        return "null"
    if origin in (list, tuple):
        return f"a list of {_describe(args[0])}" if args else "a list"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(hint, str(hint))


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
