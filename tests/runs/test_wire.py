"""The wire codec: every engine event survives encode → decode unchanged (hypothesis, over every
event class; a class whose fields it cannot generate fails here, so a new event is covered)."""

from __future__ import annotations

import io
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connreset import events as ev
from connreset.engine.undo import UndoRecord
from connreset.runs import wire

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

#: The data an ``object``/``Any`` field may hold: JSON's, tuples, non-string keys, nested records.
_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(),
)


def _nested() -> st.SearchStrategy[object]:
    return st.one_of(
        st.builds(UndoRecord.from_json, _undo_json()),
        st.builds(ev.PodState, st.text(), st.text(), st.integers()),
    )


def _undo_json() -> st.SearchStrategy[dict[str, object]]:
    rule = st.fixed_dictionaries({"table": st.text(), "chain": st.text(), "args": st.lists(st.text())})
    return st.one_of(
        st.fixed_dictionaries(
            {"id": st.integers(0, 10**6), "action": st.just("sysctl"), "node": st.text(), "target": st.text(),
             "value": st.text(), "run_id": st.none() | st.text()}
        ),
        st.fixed_dictionaries(
            {"id": st.integers(0, 10**6), "action": st.just("rule"), "node": st.text(), "target": st.text(),
             "rule": rule}
        ),
        st.fixed_dictionaries(
            {"id": st.integers(0, 10**6), "action": st.just("delete-deployment"), "node": st.text(),
             "target": st.text()}
        ),
    )  # fmt: skip


ANY: st.SearchStrategy[object] = st.recursive(
    st.one_of(_leaves, _nested()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(st.text(max_size=6), inner, max_size=4),
        st.dictionaries(st.sampled_from(["$attrs", "$tuple", "$map", "$", "$$x"]), inner, max_size=3),
        st.dictionaries(st.integers() | st.none() | st.booleans(), inner, max_size=3),
    ),
    max_leaves=12,
)


def strategy(hint: Any, where: str) -> st.SearchStrategy[Any]:
    """Values of a field's type; an unknown type fails the test, so the codec is looked at."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    simple: dict[Any, st.SearchStrategy[Any]] = {
        str: st.text(),
        int: st.integers(),
        float: st.floats(allow_nan=False),
        bool: st.booleans(),
        type(None): st.none(),
        object: ANY,
        Any: ANY,
    }
    if hint in simple:
        return simple[hint]
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(strategy(a, where) for a in args))
    if origin is Literal:
        return st.sampled_from(args)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return st.lists(strategy(args[0], where), max_size=4).map(tuple)
    if origin is Mapping or origin is dict:
        return st.dictionaries(strategy(args[0], where), strategy(args[1], where), max_size=4)
    if attrs.has(hint):
        return of_class(hint)
    raise TypeError(f"{where}: no strategy for {hint!r}; teach the wire codec and this test about it")


def of_class(cls: type) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls)
    fields = {a.name: strategy(hints[a.name], f"{cls.__name__}.{a.name}") for a in attrs.fields(cls)}
    return st.builds(cls, **fields)


EVENT_CLASSES = sorted(
    (c for c in vars(ev).values() if isinstance(c, type) and attrs.has(c) and c.__module__ == ev.__name__),
    key=lambda c: c.__name__,
)


def test_every_attrs_class_of_the_events_module_travels() -> None:
    assert set(EVENT_CLASSES) <= set(wire.CLASSES.values())
    assert set(wire.EVENTS) <= set(EVENT_CLASSES)


@pytest.mark.parametrize("cls", wire.EVENTS, ids=lambda c: c.__name__)
def test_round_trip(cls: type) -> None:
    @SETTINGS
    @given(of_class(cls))
    def check(event: Any) -> None:
        line = wire.encode(event)
        assert "\n" not in line
        back = wire.decode(wire.PREFIX + line + "\n")
        assert type(back) is cls
        assert back == event
        assert wire.encode(back) == line

    check()


def test_an_undo_record_arrives_as_one() -> None:
    record = UndoRecord.from_json(
        {
            "id": 3,
            "action": "rule",
            "node": "n1",
            "target": "t",
            "rule": {"table": "filter", "chain": "C", "args": ["-j", "DROP"]},
        }
    )
    back = wire.decode(wire.encode(ev.UndoFinished(record, "done", True, "ok")))
    assert isinstance(back, ev.UndoFinished)
    assert isinstance(back.record, UndoRecord) and back.record.rule is not None
    assert back.record.rule.args == ("-j", "DROP") and back.record.describe() == "delete t"


def test_a_value_no_event_should_hold_arrives_as_its_repr() -> None:
    class Odd:
        def __repr__(self) -> str:
            return "<odd>"

    back = wire.decode(wire.encode(ev.FindingRecorded("p", "k", Odd())))
    assert back == ev.FindingRecorded("p", "k", "<odd>")


@pytest.mark.parametrize(
    "line",
    [
        "",
        "not json",
        "[]",
        '{"$attrs": "Nope", "fields": {}}',
        '{"$attrs": "PodState", "fields": {"name": "a", "phase": "b", "restarts": 0}}',
        '{"a": 1}',
    ],
)
def test_what_is_not_an_event_line_is_refused(line: str) -> None:
    with pytest.raises(wire.WireError):
        wire.decode(wire.PREFIX + line)


def test_only_events_are_encoded() -> None:
    with pytest.raises(TypeError):
        wire.encode(ev.PodState("a", "b", 0))  # type: ignore[arg-type]


def test_the_emitter_writes_one_marked_line_per_event() -> None:
    out = io.StringIO()
    emit = wire.Emitter(out)
    emit(ev.PhaseStarted("p", 1.5))
    emit(ev.StepNote("s", "p", "two\nlines"))
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and all(line.startswith(wire.PREFIX) for line in lines)
    assert [wire.decode(line) for line in lines] == [
        ev.PhaseStarted("p", 1.5),
        ev.StepNote("s", "p", "two\nlines"),
    ]
