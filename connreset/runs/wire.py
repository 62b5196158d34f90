"""Engine events on the wire: one JSON line per event, for a run in a guest to publish its events
on its stdout and the host to re-emit them on its own bus (``connreset.ui.relay``).

:func:`encode` and :func:`decode` are generic over the classes of :mod:`connreset.events` (the
class's name and its fields), and over the plain data those hold, so that what is decoded equals
what was encoded:

- ``None``, booleans, numbers and strings are themselves (floats stay floats);
- a list is a JSON list, a tuple ``{"$tuple": [...]}``;
- a mapping with string keys is a JSON object (``$``-keys escaped), any other ``{"$map": [[k, v], ...]}``;
- an instance of a known attrs class (every event class, :class:`~connreset.events.PodState`,
  the undo records the undo events carry) is ``{"$attrs": NAME, "fields": {...}}``;
- anything else (a value no event is meant to hold) is sent as its ``repr`` and arrives as that
  string, as the journal keeps it.

:class:`Emitter` is the subscriber the guest's run publishes through: each event is one line,
:data:`PREFIX` then the JSON, so that the host tells event lines from the run's other output.
"""

from __future__ import annotations

import json
import sys
import typing
from collections.abc import Mapping
from typing import Any, TextIO

import attrs

from connreset import events as ev
from connreset.engine.undo import UndoRecord
from connreset.kernel.node import Rule

PREFIX = "@@connreset-event "  # starts each event line (as the guest's READY line does)

#: The attrs classes that travel: every event, and what events hold.
EVENTS: tuple[type, ...] = typing.get_args(ev.Event)
CLASSES: dict[str, type] = {c.__name__: c for c in (*EVENTS, ev.PodState, UndoRecord, Rule)}


class WireError(ValueError):
    """A line that is not an encoded event."""


def encode(event: ev.Event) -> str:
    """One line of JSON (no newline) for ``event``."""
    if type(event) not in EVENTS:
        raise TypeError(f"not an engine event: {type(event).__name__}")
    return json.dumps(_out(event), separators=(",", ":"))  # ASCII: one line, whatever splits it


def decode(line: str) -> ev.Event:
    """The event :func:`encode` made ``line`` of (with or without :data:`PREFIX`).

    Raises:
        WireError: ``line`` is not one.
    """
    text = line.removeprefix(PREFIX).strip()
    try:
        event = _in(json.loads(text))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise WireError(f"not an event line ({exc}): {text[:200]!r}") from None
    if type(event) not in EVENTS:
        raise WireError(f"not an event line: {text[:200]!r}")
    return typing.cast(ev.Event, event)


def _out(value: object) -> object:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    cls = type(value)
    if attrs.has(cls) and cls.__name__ in CLASSES:
        fields = {a.name: _out(getattr(value, a.name)) for a in attrs.fields(cls)}
        return {"$attrs": cls.__name__, "fields": fields}
    if isinstance(value, tuple):
        return {"$tuple": [_out(v) for v in value]}
    if isinstance(value, list):
        return [_out(v) for v in value]
    if isinstance(value, Mapping):
        if all(isinstance(k, str) for k in value):
            return {("$" + k if k.startswith("$") else k): _out(v) for k, v in value.items()}
        return {"$map": [[_out(k), _out(v)] for k, v in value.items()]}
    return repr(value)


def _in(value: object) -> object:
    if isinstance(value, list):
        return [_in(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "$attrs" in value:
        cls = CLASSES[value["$attrs"]]
        return cls(**{k: _in(v) for k, v in value["fields"].items()})
    if "$tuple" in value:
        return tuple(_in(v) for v in value["$tuple"])
    if "$map" in value:
        return {_hashable(_in(k)): _in(v) for k, v in value["$map"]}
    return {(k[1:] if k.startswith("$") else k): _in(v) for k, v in value.items()}


def _hashable(key: object) -> Any:
    if isinstance(key, (list, dict)):
        raise WireError(f"a mapping key that cannot be one: {key!r}")
    return key


class Emitter:
    """The subscriber a run publishes its events through: each a :data:`PREFIX` line on ``out``
    (default: this process's stdout, looked up at each event)."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out

    def __call__(self, event: ev.Event) -> None:
        out = self._out or sys.stdout
        out.write(PREFIX + encode(event) + "\n")
        out.flush()
