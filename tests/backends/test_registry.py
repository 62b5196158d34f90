"""Finding backends: entry points for the built-in lab, module:factory for the rest."""

from __future__ import annotations

import pytest

from connreset import ValidationError
from connreset.backends.lab import LabBackend
from connreset.backends.registry import available, load
from tests import support


def test_lab_is_an_entry_point_in_both_groups() -> None:
    assert load("lab") is LabBackend
    assert "lab" in available("connreset.node_backends")


def test_module_path_loads_a_factory() -> None:
    assert load("tests.support:factory") is support.factory


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("nope", "unknown backend 'nope'"),
        ("tests.support:nothing", "cannot load backend"),
        ("no.such.module:x", "cannot load backend"),
    ],
)
def test_unknown_backends_are_validation_errors(name: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        load(name)


def test_lab_options_are_validated_before_anything_happens() -> None:
    with pytest.raises(ValidationError, match="nodes must be"):
        LabBackend(nodes=0)
    with pytest.raises(ValidationError, match="time_scale"):
        LabBackend(time_scale="-1")
