"""The console's lines (no root)."""

from __future__ import annotations

import io

from connreset import events
from connreset.ui.console import ConsoleProgress


def test_a_runs_header_names_the_labs_kube_proxy() -> None:
    out = io.StringIO()
    env = {"kernel": "6.18", "cluster": {"kube_proxy": "nftables (kube-proxy v1.33+ ...)"}}
    ConsoleProgress(out)(events.RunStarted("issue-74839", {"fix": "none"}, "lab", "", env, ("no-fix",), 1))
    assert out.getvalue().splitlines() == [
        "▶ issue-74839 on lab  fix=none",
        "  kube-proxy: nftables (kube-proxy v1.33+ ...)",
    ]
