"""Did-you-mean hints: the nearest name, or nothing."""

from __future__ import annotations

import pytest

from connreset._support.suggest import hint, nearest


@pytest.mark.parametrize(
    ("word", "candidates", "found"),
    [
        ("labb", ["kubernetes", "lab", "lab3"], "lab"),
        ("sh", ["docker", "kubectl-debug", "lab", "ssh"], "ssh"),
        ("Lab", ["kubernetes", "lab"], "lab"),  # case aside
        ("k8s", ["kubernetes", "lab"], None),  # nothing near enough
        ("x", [], None),
    ],
)
def test_nearest(word: str, candidates: list[str], found: str | None) -> None:
    assert nearest(word, candidates) == found


def test_hint_is_a_phrase_to_end_a_line_with() -> None:
    assert hint("labb", ["lab", "kubernetes"]) == "; did you mean 'lab'?"
    assert hint("issue_7483.py", ["issue_74839.py"], render=lambda n: f"experiments/{n}") == (
        "; did you mean experiments/issue_74839.py?"
    )
    assert hint("k8s", ["lab"]) == ""
    assert hint("lab", ["lab"]) == ""  # the name itself is no suggestion
