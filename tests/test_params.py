"""Typed experiment parameters from a function signature."""

from __future__ import annotations

from typing import Literal

import pytest

from connreset import Experiment, ValidationError, Wait, build
from connreset.params import params_of, resolve


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
        ({"offset": "x"}, "invalid literal"),
        ({"fix": "some"}, "must be one of none, all"),
        ({"strict": "maybe"}, "not a boolean"),
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
