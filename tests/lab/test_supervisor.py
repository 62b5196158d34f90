"""kubelet's restart back-off, as the lab's supervisor applies it (no root needed)."""

from __future__ import annotations

from connreset.lab.supervisor import backoff


def test_backoff_starts_at_10s_doubles_and_caps_at_300s() -> None:
    assert [backoff(n) for n in range(1, 8)] == [10, 20, 40, 80, 160, 300, 300]


def test_time_scale_multiplies_the_backoff() -> None:
    assert [backoff(n, 0.1) for n in (1, 2, 6)] == [1.0, 2.0, 30.0]
