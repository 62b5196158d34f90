"""Backend options: declared once as a typed attrs class, parsed by one converter.

A cluster backend or node access declares its options as a frozen attrs class, each field made
with :func:`option` (a type, a default, one line of help, whether it is secret)::

    @attrs.frozen
    class LabOptions:
        nodes: int = option(2, "how many nodes (network namespaces)", validator=...)
        time_scale: float = option(1.0, "multiplies kubelet's restart back-off")

:func:`parse` turns what the command line gives (``--cluster-opt K=V``: strings) or what code
gives (typed values) into that class. One error names the option, the value and the valid
options; ``connreset plugins --options NAME`` lists them (:func:`describe`); the journal redacts
the options declared secret (:func:`secret_names`).
"""

from __future__ import annotations

import difflib
import math
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar

import attrs

from connreset.errors import ValidationError

T = TypeVar("T")

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def option(
    default: Any = attrs.NOTHING,
    help: str = "",
    *,
    secret: bool = False,
    parse: Callable[[str], Any] | None = None,
    validator: Any = None,
    metavar: str = "",
) -> Any:
    """A declared option: an attrs field with its help line, secrecy and (for types beyond int,
    float, bool, str and Literal) a parser from the command line's string."""
    return attrs.field(
        default=default,
        validator=validator,
        metadata={"help": help, "secret": secret, "parse": parse, "metavar": metavar},
    )


@attrs.frozen
class NoOptions:
    """For a backend that takes none."""


@attrs.frozen
class OptionInfo:
    """One option, for ``connreset plugins --options``."""

    name: str
    type: str
    default: str | None  # None: required
    help: str
    secret: bool


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _type_name(hint: Any, metavar: str) -> str:
    if metavar:
        return metavar
    if typing.get_origin(hint) is Literal:
        return "|".join(map(str, typing.get_args(hint)))
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1:
        return _type_name(args[0], "")
    return getattr(hint, "__name__", str(hint))


def describe(cls: type) -> list[OptionInfo]:
    """The options a class declares, in declaration order."""
    hints = _hints(cls)
    out = []
    for f in attrs.fields(cls):
        if f.default is attrs.NOTHING:
            default = None
        elif isinstance(f.default, attrs.Factory):  # type: ignore[arg-type]
            default = ""
        else:
            default = _shown(f.default)
        out.append(
            OptionInfo(
                f.name,
                _type_name(hints.get(f.name), f.metadata.get("metavar", "")),
                default,
                f.metadata.get("help", ""),
                bool(f.metadata.get("secret")),
            )
        )
    return out


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def secret_names(cls: type) -> frozenset[str]:
    """The names of the options declared secret (the journal keeps ``<redacted>`` for them)."""
    return frozenset(f.name for f in attrs.fields(cls) if f.metadata.get("secret"))


def _convert(hint: Any, text: str, parser: Callable[[str], Any] | None) -> Any:
    """A string as typed on the command line → the declared type (ValueError if it is not)."""
    if parser is not None:
        return parser(text)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if text.strip().lower() in ("", "none") and len(args) < len(typing.get_args(hint)):
            return None
        return _convert(args[0], text, None)
    if origin is Literal:
        choices = typing.get_args(hint)
        for choice in choices:
            if text == str(choice):
                return choice
        raise ValueError(f"must be one of {', '.join(map(str, choices))}")
    if hint is bool:
        lowered = text.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError("must be true or false")
    if hint is int:
        try:
            return int(text.strip())
        except ValueError:
            raise ValueError("must be a whole number") from None
    if hint is float:
        try:
            value = float(text.strip())
        except ValueError:
            raise ValueError("must be a number") from None
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value
    return text


def _message(exc: BaseException) -> str:
    """attrs' ``in_`` validator raises ValueError(msg, attribute, options, value): keep it short."""
    if len(exc.args) == 4 and isinstance(exc.args[1], attrs.Attribute):
        name, choices, value = exc.args[1].name, exc.args[2], exc.args[3]
        return f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}"
    return str(exc.args[0]) if exc.args else str(exc)


def listing(cls: type) -> str:
    """``nodes, time_scale`` — or ``none``."""
    return ", ".join(f.name for f in attrs.fields(cls)) or "none"


def parse(cls: type[T], given: Mapping[str, object], owner: str) -> T:
    """``given`` (strings from the command line, or typed values from code) as ``cls``.

    ``owner`` names who takes them, for messages (``cluster backend 'lab'``).

    Raises:
        ValidationError: one line naming the option, the value and the valid options.
    """
    fields = attrs.fields_dict(cls)  # type: ignore[arg-type]
    for name in given:
        if name not in fields:
            near = difflib.get_close_matches(name, list(fields), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ValidationError(f"{owner} has no option {name!r}{hint} (its options: {listing(cls)})")
    hints = _hints(cls)
    values: dict[str, Any] = {}
    for name, raw in given.items():
        f = fields[name]
        if isinstance(raw, str) and (hints.get(name) is not str or f.metadata.get("parse")):
            try:
                values[name] = _convert(hints.get(name), raw, f.metadata.get("parse"))
            except (ValueError, ValidationError) as exc:
                raise ValidationError(f"{owner}: option {name} {_message(exc)}, got {raw!r}") from None
        else:
            values[name] = raw
    missing = [n for n, f in fields.items() if f.default is attrs.NOTHING and n not in values]
    if missing:
        f = fields[missing[0]]
        why = f": {f.metadata['help']}" if f.metadata.get("help") else ""
        raise ValidationError(f"{owner} needs the option {missing[0]}=…{why}")
    try:
        return cls(**values)
    except ValidationError as exc:
        raise ValidationError(f"{owner}: {exc.message}") from None
    except (TypeError, ValueError) as exc:  # a validator's message names the option and its value
        raise ValidationError(f"{owner}: {_message(exc)}") from None
