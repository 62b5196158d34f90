"""Typed experiment parameters, read from the signature of an experiment function.

An experiment file may expose a function instead of an :class:`~connreset.Experiment`::

    def experiment(*, offset: int = 100_000, fix: Literal["none", "all"] = "all") -> Experiment:
        ...

Its keyword-only parameters, with their annotations and defaults, are the experiment's typed
parameters: ``--set offset=5`` and sweeps vary them. A value that does not parse names the
parameter and its type (``parameter offset must be int (a whole number), got 'ten'``); a value
the function itself refuses names the parameter and the value as the user gave it
(``parameter observe=-1 (from --set): Observe duration must be a finite number > 0, got -0.5``).
"""

from __future__ import annotations

import inspect
import math
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs

from connreset._support.redact import REDACTED, is_secret
from connreset.errors import ValidationError

_SCALARS: dict[type, Callable[[str], object]] = {int: int, float: float, str: str}
#: How a ``--set`` value of each type is written, for the message when it does not parse.
_WRITTEN = {int: "int (a whole number)", float: "float (a number)", bool: "bool (true or false)"}


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
        except (KeyError, ValueError):
            kind = _WRITTEN.get(self.type, self.type.__name__)
            if is_secret(self.name):  # the message would quote the value
                raise ValidationError(f"parameter {self.name} must be {kind}") from None
            raise ValidationError(f"parameter {self.name} must be {kind}, got {text!r}") from None
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


def given(params: Mapping[str, object] | None, raw: Mapping[str, str] | None) -> str:
    """The values the user gave, as they gave them: ``observe=-1 (from --set)``, ``offset=5
    (given)``; a secret-looking parameter's value is never shown."""
    parts = []
    if params:
        shown = (f"{k}={REDACTED if is_secret(k) else repr(v)}" for k, v in params.items())
        parts.append(f"{', '.join(shown)} (given)")
    if raw:
        shown = (f"{k}={REDACTED if is_secret(k) else v}" for k, v in raw.items())
        parts.append(f"{', '.join(shown)} (from --set)")
    return "; ".join(parts)


def refused(
    exc: ValueError | ValidationError, params: Mapping[str, object] | None, raw: Mapping[str, str] | None
) -> ValidationError:
    """The error the experiment function raised with the user's values, naming those values.

    ``exc`` keeps its text, prefixed by the class it came from when it was one's validator (e.g.
    ``Observe``). The result carries ``exc``'s traceback, so the loader still finds the line of the
    experiment file it came from.
    """
    count = len(params or {}) + len(raw or {})
    message = exc.message if isinstance(exc, ValidationError) else str(exc)
    subject = _validated_class(exc)
    if subject and not message.startswith(subject):
        message = f"{subject} {message}"
    text = f"parameter{'s' if count > 1 else ''} {given(params, raw)}: {message}"
    step = exc.step if isinstance(exc, ValidationError) else None
    file = exc.file if isinstance(exc, ValidationError) else None
    return ValidationError(text, step=step, file=file).with_traceback(exc.__traceback__)


def _validated_class(exc: BaseException) -> str | None:
    """The attrs class whose ``__init__`` (its validators) raised ``exc``, if one did."""
    name = None
    tb: types.TracebackType | None = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_name == "__init__" and attrs.has(type(frame.f_locals.get("self"))):
            name = type(frame.f_locals["self"]).__name__  # the innermost one
        tb = tb.tb_next
    return name
