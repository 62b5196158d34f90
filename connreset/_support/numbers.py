"""Numbers that must be finite: one check for step arguments, options and command-line values.

``float("nan")`` and ``float("inf")`` slip through a plain ``value <= 0`` test (NaN compares false
with everything), and so do bools (``True > 0``). Every duration, rate, count and scale goes
through here instead, so a NaN timeout is refused when the experiment is loaded rather than
making every step time out once the testbed has been built.
"""

from __future__ import annotations

import math
from typing import Any, TypeGuard

import attrs


def is_number(value: object) -> TypeGuard[int | float]:
    """An int or a float, not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _finite(value: object) -> float | None:
    """The number as a finite float, or None (not a number, NaN, infinite, or too big for a float)."""
    if not is_number(value):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int beyond any float
        return None
    return number if math.isfinite(number) else None


def positive(what: str, value: object) -> float:
    """``value`` as a float if it is a finite number > 0.

    Raises:
        ValueError: naming ``what`` and the value.
    """
    number = _finite(value)
    if number is None or number <= 0:
        raise ValueError(f"{what} must be a finite number > 0, got {value!r}")
    return number


def non_negative(what: str, value: object) -> float:
    """``value`` as a float if it is a finite number >= 0.

    Raises:
        ValueError: naming ``what`` and the value.
    """
    number = _finite(value)
    if number is None or number < 0:
        raise ValueError(f"{what} must be a finite number >= 0, got {value!r}")
    return number


def whole(what: str, value: object, minimum: int, maximum: int | None = None) -> int:
    """``value`` if it is an int (not a bool) from ``minimum`` to ``maximum``.

    Raises:
        ValueError: naming ``what``, the value and the range.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        bound = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
        raise ValueError(f"{what} must be an integer {bound}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{what} must be an integer from {minimum} to {maximum}, got {value!r}")
    return value


def parse_positive(what: str, text: str) -> float:
    """A string option (as typed on the command line) that must be a finite number > 0.

    Raises:
        ValueError: naming ``what`` and the text.
    """
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what} must be a finite number > 0, got {text!r}") from None
    try:
        return positive(what, value)
    except ValueError:
        raise ValueError(f"{what} must be a finite number > 0, got {text!r}") from None


# -- attrs validators ------------------------------------------------------------------------------
def positive_field(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """attrs validator: a finite number > 0."""
    positive(attribute.name, value)


def positive_or_none_field(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """attrs validator: None, or a finite number > 0."""
    if value is not None:
        positive(attribute.name, value)


def non_negative_field(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """attrs validator: a finite number >= 0."""
    non_negative(attribute.name, value)
