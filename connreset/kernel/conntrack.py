"""Reading conntrack's own numbers: ``/proc/net/stat/nf_conntrack`` and the kernel's log lines."""

from __future__ import annotations

import re
from collections.abc import Iterable

STAT_PATH = "/proc/net/stat/nf_conntrack"

#: ``/proc/net/stat/nf_conntrack`` column → the name ``conntrack -S`` prints.
STAT_NAMES = {"chainlength": "chaintoolong", "clashres": "clash_resolve"}

_TABLE_FULL = re.compile(r"nf_conntrack: .*?table full(?: in netns (\d+))?")


def parse_stat(text: str) -> dict[str, int]:
    """The per-CPU rows (hex) summed by column; ``entries`` is the namespace's count."""
    header, *rows = text.strip().split("\n")
    names = [STAT_NAMES.get(n, n) for n in header.split()]
    values = [[int(x, 16) for x in r.split()] for r in rows if r.strip()]
    if not values:
        raise ValueError(f"no rows in {STAT_PATH}")
    totals = {name: sum(r[i] for r in values) for i, name in enumerate(names)}
    totals["entries"] = values[0][0]  # the count is the same number on every row
    return totals


def table_full_lines(lines: Iterable[str], netns: int | None) -> list[str]:
    """Lines saying the table was full; those naming another namespace than ``netns`` are left out."""
    out = []
    for line in lines:
        match = _TABLE_FULL.search(line)
        if match is None:
            continue
        named = match.group(1)
        if named is None or netns is None or int(named) == netns:
            out.append(line.strip())
    return out


def netns_of(line: str) -> int | None:
    """The namespace inode a table-full line names, if it names one."""
    match = _TABLE_FULL.search(line)
    return int(match.group(1)) if match and match.group(1) else None
