"""What the project measured, as data the checks compare a node with, each with where it comes from.

The kernel exposure table is package data (``exposure.json``): one row per measured kernel, with
where and by which experiment it was measured. docs/doctor.md says how to add a row.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any

import attrs

#: The largest safe ``nf_conntrack_max / nf_conntrack_buckets`` measured (docs/science.md §5).
HASH_RATIO_LIMIT = 5
HASH_RATIO_SOURCE = "the hash-ratio sweep (experiments/sweep_hash_ratio.py, docs/science.md §5)"
#: The table-size rule: max ≥ new connections/s × this + held connections (docs/science.md §3).
TABLE_RULE_SECONDS = 180
#: The kernel's TCP TIME_WAIT timeout (seconds): what each closed connection holds an entry for.
TIME_WAIT = 120
TABLE_RULE_SOURCE = "the table-size sweep (experiments/sweep_table_sizes.py, docs/science.md §3)"
#: A table this full is at risk: one burst from dropping new flows.
HEADROOM_AT_RISK = 0.8
#: kube-proxy's defaults (``KubeProxyConfiguration.conntrack``).
KUBE_PROXY_CLOSE_WAIT = 3600
KUBE_PROXY_ESTABLISHED = 86400
KUBE_PROXY_MAX_PER_CORE = 32768
KUBE_PROXY_MIN = 131072
#: The kernel release from which a segment behind the window is no longer INVALID.
IGNORE_BEHIND_WINDOW = (6, 1)


@attrs.frozen
class ExposureRow:
    """One measured kernel: does each forged shape reset a connection without a fix there."""

    kernel: str
    below: bool
    above: bool
    where: str
    experiments: tuple[str, ...] = attrs.field(converter=tuple)
    source: str
    #: Swept (experiments/sweep_boom_offset.py, no fix): the shortest distance behind and past the
    #: window at which a forged segment reset the connection; None: none did, or not swept.
    behind_from: int | None = None
    ahead_from: int | None = None

    @property
    def version(self) -> tuple[int, int]:
        parsed = parse_version(self.kernel)
        assert parsed is not None
        return parsed


@cache
def _exposure() -> dict[str, Any]:
    text = resources.files("connreset.doctor").joinpath("exposure.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def exposure_rows() -> tuple[ExposureRow, ...]:
    return tuple(ExposureRow(**row) for row in _exposure()["rows"])


def exposure_rule() -> str:
    return str(_exposure()["rule"])


def parse_version(release: str) -> tuple[int, int] | None:
    """``6.18.44-fc-v1252`` → ``(6, 18)``; None when it does not start with MAJOR.MINOR."""
    match = re.match(r"(\d+)\.(\d+)", release.strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


def measured(release: str) -> ExposureRow | None:
    """The row measured on this kernel's MAJOR.MINOR, if any."""
    version = parse_version(release)
    return next((r for r in exposure_rows() if r.version == version), None)


def shapes_that_reset(release: str) -> tuple[bool, bool] | None:
    """(below the window, above the window): which forged shapes reset without a fix on this
    kernel, from its measured row, else from the rule (before 6.1 both, from 6.1 only above)."""
    row = measured(release)
    if row is not None:
        return row.below, row.above
    version = parse_version(release)
    if version is None:
        return None
    return version < IGNORE_BEHIND_WINDOW, True
