"""Composition and validation of experiments, before anything runs."""

from __future__ import annotations

import pytest

from connreset import (
    ApplyFix,
    AssertLogs,
    Call,
    Deploy,
    Experiment,
    Phase,
    Scale,
    SetSysctl,
    StepContext,
    ValidationError,
    Wait,
    workloads,
)


async def nothing(ctx: StepContext) -> None:
    return None


def test_sequence_and_parallel_flatten_into_a_dag() -> None:
    a, b, c, d = (Call(nothing, name=n) for n in "abcd")
    (phase,) = Experiment.single("x", a >> (b | c) >> d).compile()
    deps = {f.name: set(f.deps) for f in phase.steps}
    assert deps == {"a": set(), "b": {"a"}, "c": {"a"}, "d": {"b", "c"}}


def test_duplicate_names_in_a_phase_are_numbered() -> None:
    (phase,) = Experiment.single("x", Wait(seconds=0) >> Wait(seconds=0)).compile()
    assert [f.name for f in phase.steps] == ["wait 0s", "wait 0s#2"]


def test_cycle_is_rejected_naming_the_step() -> None:
    a = Call(nothing, name="a", after=("b",))
    b = Call(nothing, name="b")
    with pytest.raises(ValidationError, match="cycle") as info:
        Experiment.single("x", a >> b).compile()
    assert info.value.step in {"a", "b"}


def test_unknown_reference_is_rejected() -> None:
    with pytest.raises(ValidationError, match="unknown step 'ghost'") as info:
        Experiment.single("x", Call(nothing, name="a", after=("ghost",))).compile()
    assert info.value.step == "a"


def test_duplicate_phase_is_rejected() -> None:
    with pytest.raises(ValidationError, match="twice"):
        Experiment("x", [Phase("p", Wait(seconds=0)), Phase("p", Wait(seconds=0))]).compile()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: SetSysctl("nf_conntrack_max", 0), "from 1 to 2147483647"),
        (lambda: SetSysctl("nf_conntrack_max", -5), "from 1 to 2147483647"),
        (lambda: SetSysctl("nf_conntrack_max", "lots"), "from 1 to 2147483647"),
        (lambda: SetSysctl("nf_conntrack_tcp_be_liberal", 2), "0 or 1"),
        (lambda: SetSysctl("net.core.nonsense", 1), "unknown sysctl key"),
        (lambda: ApplyFix("turn-it-off"), "must be in"),
        (lambda: ApplyFix("bigger-table", max=10), "needs max= and buckets="),
        (lambda: Scale("app", -1), ">= 0"),
        (lambda: Deploy("Bad_Name", workloads.command(["true"])), "DNS label"),
        (lambda: Deploy("ok", workloads.command(["true"]), port=70000), "TCP port"),
        (lambda: Deploy("ok", workloads.command(["true"]), port=80.5), "TCP port"),  # found by fuzzing
        (lambda: AssertLogs("app", pattern="("), "not a regular expression"),
        (lambda: Wait(), "exactly one of"),
        (lambda: Wait(seconds=1, timeout=0), "timeout must be a finite number > 0"),
    ],
)
def test_invalid_steps_fail_on_construction(make: object, message: str) -> None:
    with pytest.raises((ValueError, ValidationError), match=message):
        make()  # type: ignore[operator]


def test_sysctl_short_names_expand() -> None:
    step = SetSysctl("nf_conntrack_max", 1200)
    assert (step.key, step.value) == ("net.netfilter.nf_conntrack_max", "1200")
