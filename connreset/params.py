"""Typed experiment parameters, read from the signature of an experiment function.

An experiment file may expose a function instead of an :class:`~connreset.Experiment`::

    def experiment(*, offset: int = 100_000, fix: Literal["none", "all"] = "all") -> Experiment:
        ...

Its keyword-only parameters, with their annotations and defaults, are the experiment's typed
parameters: ``--set offset=5`` and sweeps vary them.
"""

from __future__ import annotations

import inspect
import math
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs

from connreset.errors import ValidationError
from connreset.redact import REDACTED, is_secret

_SCALARS: dict[type, Callable[[str], object]] = {int: int, float: float, str: str}


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"not a boolean: {text!r}")


@attrs.frozen
class Param:
    """One typed parameter: its name, scalar type, default and, for ``Literal``, its choices."""

    name: str
    type: type
    default: object
    choices: tuple[object, ...] | None = None

    def parse(self, text: str) -> object:
        """Turn a ``--set`` value into this parameter's type."""
        try:
            value = _parse_bool(text) if self.type is bool else _SCALARS[self.type](text)
        except (KeyError, ValueError) as exc:
            if is_secret(self.name):  # the message would quote the value
                raise ValidationError(f"parameter {self.name} must be {self.type.__name__}") from None
            raise ValidationError(f"parameter {self.name}: {exc}") from None
        return self.check(value)

    def check(self, value: object) -> object:
        """Validate an already-typed value. Messages never quote a secret-looking parameter's value."""
        shown = REDACTED if is_secret(self.name) else repr(value)
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, self.type) or (self.type is int and isinstance(value, bool)):
            raise ValidationError(f"parameter {self.name} must be {self.type.__name__}, got {shown}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValidationError(f"parameter {self.name} must be a finite number, got {shown}")
        if self.choices is not None and value not in self.choices:
            options = ", ".join(map(str, self.choices))
            raise ValidationError(f"parameter {self.name} must be one of {options}; got {shown}")
        return value


def params_of(fn: Callable[..., Any]) -> dict[str, Param]:
    """The typed parameters of an experiment function (keyword parameters with defaults)."""
    hints = typing.get_type_hints(fn)
    params: dict[str, Param] = {}
    for name, p in inspect.signature(fn).parameters.items():
        if p.kind not in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
            continue
        if p.default is p.empty:
            raise ValidationError(f"experiment parameter {name} needs a default")
        hint = hints.get(name, type(p.default))
        choices: tuple[object, ...] | None = None
        if typing.get_origin(hint) is Literal:
            choices = typing.get_args(hint)
            hint = type(choices[0])
        if hint not in (*_SCALARS, bool):
            raise ValidationError(f"experiment parameter {name}: unsupported type {hint!r}")
        params[name] = Param(name, hint, p.default, choices)
    return params


def resolve(
    declared: Mapping[str, Param],
    given: Mapping[str, object] | None = None,
    raw: Mapping[str, str] | None = None,
) -> dict[str, object]:
    """Merge defaults, typed values (``given``) and ``--set`` strings (``raw``), checked."""
    values = {name: p.default for name, p in declared.items()}
    for source, convert in ((given or {}, "check"), (raw or {}, "parse")):
        for name, value in source.items():
            if name not in declared:
                known = ", ".join(sorted(declared)) or "none"
                raise ValidationError(f"unknown parameter {name!r} (known: {known})")
            values[name] = getattr(declared[name], convert)(value)
    return values
