"""Did-you-mean hints for names a user typed: a phrase to end a one-line error with.

A leaf module (the standard library only), so that any layer may use it::

    raise ValidationError(f"unknown node access {name!r} (installed: …){suggest.hint(name, found)}")
    # unknown node access 'sh' (installed: docker, kubectl-debug, lab, ssh); did you mean 'ssh'?
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable

__all__ = ["hint", "nearest"]

#: How alike (difflib's ratio, 0..1) a candidate must be to be suggested.
CUTOFF = 0.6


def nearest(word: str, candidates: Iterable[str], *, cutoff: float = CUTOFF) -> str | None:
    """The candidate nearest to ``word`` (case aside), or None if none is near enough."""
    by_folded: dict[str, str] = {}
    for candidate in candidates:
        by_folded.setdefault(candidate.casefold(), candidate)
    found = difflib.get_close_matches(word.casefold(), list(by_folded), n=1, cutoff=cutoff)
    return by_folded[found[0]] if found else None


def hint(word: str, candidates: Iterable[str], *, render: Callable[[str], str] = repr) -> str:
    """``"; did you mean 'lab'?"`` for the nearest candidate, or ``""``; ``render`` shows it."""
    found = nearest(word, candidates)
    return f"; did you mean {render(found)}?" if found is not None and found != word else ""
