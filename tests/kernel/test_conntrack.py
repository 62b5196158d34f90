"""Parsing conntrack's own numbers, as this kernel prints them."""

from __future__ import annotations

from connreset.kernel.conntrack import parse_stat, table_full_lines

# /proc/net/stat/nf_conntrack on 6.18, two CPUs (hex; the first column is the namespace's count)
HEADER = (
    "entries  clashres found new invalid ignore delete chainlength insert insert_failed drop "
    "early_drop icmp_error  expect_new expect_create expect_delete search_restart"
)
ROWS = [
    "000004a6  00000000 00000000 00000000 00000003 00000000 00000000 00000000 00000000 00000000 "
    "0000000a 00000000 00000000  00000000 00000000 00000000 00000000",
    "000004a6  00000001 00000000 00000000 00000002 00000000 00000000 00000004 00000000 00000000 "
    "00000005 00000000 00000000  00000000 00000000 00000000 00000000",
]
STAT = "\n".join([HEADER, *ROWS, ""])


def test_stat_rows_are_summed_and_named_as_conntrack_S_names_them() -> None:
    stats = parse_stat(STAT)
    assert stats["entries"] == 0x4A6  # not summed: every row repeats the count
    assert (stats["invalid"], stats["drop"], stats["clash_resolve"], stats["chaintoolong"]) == (5, 15, 1, 4)


def test_table_full_lines_are_those_of_the_nodes_namespace() -> None:
    lines = [
        "nf_conntrack: nf_conntrack: table full in netns 4026532247, dropping packet",
        "nf_conntrack: nf_conntrack: table full in netns 4026532999, dropping packet",
        "nf_conntrack: table full, dropping packet",  # an older kernel: no namespace named
        "eth0: link up",
    ]
    assert table_full_lines(lines, 4026532247) == [lines[0], lines[2]]
    assert table_full_lines(lines, None) == lines[:3]
