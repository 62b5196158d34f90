"""Typed experiment parameters from a function signature."""

from __future__ import annotations

from typing import Literal

import pytest

from connreset import Experiment, Observe, ValidationError, Wait, build
from connreset.experiment.params import params_of, resolve


def exp(
    *, offset: int = 5, fix: Literal["none", "all"] = "all", ratio: float = 0.5, strict: bool = True
) -> Experiment:
    return Experiment.single(f"e-{offset}-{fix}", Wait(seconds=ratio if strict else 0))


def test_params_come_from_the_signature() -> None:
    declared = params_of(exp)
    assert {n: (p.type, p.default) for n, p in declared.items()} == {
        "offset": (int, 5),
        "fix": (str, "all"),
        "ratio": (float, 0.5),
        "strict": (bool, True),
    }
    assert declared["fix"].choices == ("none", "all")


def test_set_strings_are_parsed_to_their_types() -> None:
    values = resolve(params_of(exp), raw={"offset": "-100000", "ratio": "2", "strict": "false"})
    assert values == {"offset": -100000, "fix": "all", "ratio": 2.0, "strict": False}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"offset": "x"}, "parameter offset must be int"),
        ({"fix": "some"}, "must be one of none, all"),
        ({"strict": "maybe"}, "parameter strict must be bool"),
        ({"nope": "1"}, "unknown parameter 'nope'"),
    ],
)
def test_bad_values_are_validation_errors(raw: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        resolve(params_of(exp), raw=raw)


def test_build_applies_parameters() -> None:
    loaded = build(exp, {"offset": 7})
    assert loaded.experiment.name == "e-7-all"
    assert loaded.params["offset"] == 7


def test_parameters_need_defaults() -> None:
    def bad(*, x: int) -> Experiment:
        raise AssertionError

    with pytest.raises(ValidationError, match="needs a default"):
        params_of(bad)


@pytest.mark.parametrize(
    ("raw", "line"),
    [
        ({"offset": "ten"}, "parameter offset must be int (a whole number), got 'ten'"),
        ({"offset": "1.5"}, "parameter offset must be int (a whole number), got '1.5'"),
        ({"ratio": "half"}, "parameter ratio must be float (a number), got 'half'"),
        ({"strict": "maybe"}, "parameter strict must be bool (true or false), got 'maybe'"),
    ],
)
def test_a_value_that_does_not_parse_names_the_parameter_and_its_type(raw: dict[str, str], line: str) -> None:
    with pytest.raises(ValidationError) as info:
        resolve(params_of(exp), raw=raw)
    assert str(info.value) == line


def test_a_secret_value_that_does_not_parse_is_not_quoted() -> None:
    def secretive(*, api_token: int = 1) -> Experiment:
        return Experiment.single("s", Wait(seconds=0))

    with pytest.raises(ValidationError) as info:
        resolve(params_of(secretive), raw={"api_token": "hunter2"})
    assert str(info.value) == "parameter api_token must be int (a whole number)"


def observing(*, observe: float = 10.0, label: str = "x", api_token: str = "") -> Experiment:
    return Experiment.single(f"o-{label}", Observe(observe / 2))


def test_a_value_the_experiment_refuses_names_the_parameter_as_typed() -> None:
    with pytest.raises(ValidationError) as info:
        build(observing, raw={"observe": "-1"})
    assert str(info.value) == (
        "parameter observe=-1 (from --set): Observe duration must be a finite number > 0, got -0.5"
    )
    assert info.value.exit_code == 2


def test_every_value_given_is_named_as_given() -> None:
    with pytest.raises(ValidationError) as info:
        build(observing, {"observe": -1.0}, {"label": "y", "api_token": "hunter2"})
    assert str(info.value) == (
        "parameters observe=-1.0 (given); label=y, api_token=<redacted> (from --set): "
        "Observe duration must be a finite number > 0, got -0.5"
    )


def test_without_values_given_the_experiments_own_error_is_unchanged() -> None:
    def broken(*, observe: float = -1.0) -> Experiment:
        return Experiment.single("b", Observe(observe))

    with pytest.raises(ValueError, match=r"^duration must be a finite number > 0, got -1.0$"):
        build(broken)


def test_a_validation_error_keeps_its_step_and_is_not_named_twice() -> None:
    def refusing(*, n: int = 1) -> Experiment:
        raise ValidationError("Scale n is too many", step="scale app")

    with pytest.raises(ValidationError) as info:
        build(refusing, {"n": 3})
    assert info.value.step == "scale app"
    assert str(info.value) == "step 'scale app': parameter n=3 (given): Scale n is too many"
