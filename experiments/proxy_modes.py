"""Which kube-proxy is exposed to kubernetes#74839? The boom-server canary per mode, fix, shape, path.

Upstream's e2e test (see issue_74839.py) on three lab nodes: the boom-server on node-2 behind a
Service, its client on node-1. One phase per (fix, shape, path), each recording whether a RST
reached the boom-server (``rst``): the connection was exposed.

- fix: ``none``, ``be-liberal``, ``drop-invalid`` (only where the mode has that rule: iptables);
- shape: the forged segment's ``offset`` from the server's next seq: upstream's ``-100000``, and
  ``+1000000`` (above the window, still INVALID on kernels with "ignore overly delayed tcp
  packets", 6.1+);
- path: ``clusterip``, pod → ClusterIP (DNAT on node-1, no masquerade), and ``nodeport``, pod →
  node-3's address:NodePort, which DNATs *and masquerades* (the reply's reverse NAT happens on
  node-3, whose own address the un-NATed segment then reaches).

One run covers one mode, the lab's ``proxy`` option::

    python -m connreset experiments/proxy_modes.py --cluster-opt proxy=nftables --set fixes=none,be-liberal

Run as a script, it runs every mode this kernel can and prints the exposure table (Markdown), the
journals in ``--out``::

    python experiments/proxy_modes.py --out results/proxy-modes [--modes iptables,nftables]
    python experiments/proxy_modes.py --out results/proxy-modes --table   # from saved findings

The NodePort client dials ``node-3:30000``: the lab gives its first Service NodePort 30000, and
the boom-server is the only Service here (connreset.lab.addressing).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from connreset import (
    ApplyFix,
    AssertLogs,
    AssertRunning,
    Deploy,
    Experiment,
    Phase,
    workloads,
)
from connreset.lab import addressing
from connreset.lab.workloads import HERE as WORKLOADS
from connreset.testbed import Workload

#: kubelet's back-off scaled by 0.1; three nodes: client, server, and the NodePort's node.
cluster_options = {"lab": {"time_scale": 0.1, "nodes": 3}}

FIXES = ("none", "be-liberal", "drop-invalid")
SHAPES = (-100_000, 1_000_000)
PATHS = ("clusterip", "nodeport")


def client(path: str, every: float) -> Workload:
    """Upstream's nc loop, through the Service's ClusterIP or through node-3's NodePort."""
    if path == "clusterip":
        return workloads.nc_loop("boom-server", every=every)
    node_port = addressing.node_port(addressing.service_ip(0))
    return workloads.command(
        [
            sys.executable,
            "-S",
            "-u",
            str(WORKLOADS / "nc_loop.py"),
            addressing.node_ip(2),
            str(node_port),
            str(every),
        ]
    )


def phase_name(fix: str, offset: int, path: str) -> str:
    """``none.m100000.clusterip``: m for minus, p for plus (phase names are simple names)."""
    return f"{fix}.{'m' if offset < 0 else 'p'}{abs(offset)}.{path}"


def phase(fix: str, offset: int, path: str, every: float, window: float) -> Phase:
    steps = [ApplyFix(fix)] if fix != "none" else []
    steps += [
        Deploy("boom-server", workloads.boom_server(offset=offset), node="node-2", port=9000),
        AssertRunning("boom-server", within=10),
        Deploy("boom-client", client(path, every), node="node-1"),
        AssertLogs("boom-server", pattern="boom packet injected", within=window, record="injected"),
        AssertLogs("boom-server", pattern="RST received", within=window, expect=None, record="rst"),
    ]
    return Phase(
        phase_name(fix, offset, path),
        steps,
        expect="rst: whether a RST reached the boom-server (exposed)",
        restore=True,
    )


def _words(text: str, allowed: tuple[str, ...], what: str) -> list[str]:
    chosen = [w.strip() for w in text.split(",") if w.strip()]
    bad = [w for w in chosen if w not in allowed]
    if bad or not chosen:
        raise ValueError(f"{what}: choose from {', '.join(allowed)}, got {text!r}")
    return chosen


def experiment(
    *,
    fixes: str = ",".join(FIXES),
    paths: str = ",".join(PATHS),
    offsets: str = ",".join(map(str, SHAPES)),
    every: float = 0.5,
    window: float = 5.0,
) -> Experiment:
    """One mode's matrix. ``fixes``, ``paths``, ``offsets``: comma-separated subsets."""
    shapes = [int(o) for o in offsets.split(",") if o.strip()]
    return Experiment(
        "proxy-modes",
        [
            phase(f, o, p, every, window)
            for f in _words(fixes, FIXES, "fixes")
            for o in shapes
            for p in _words(paths, PATHS, "paths")
        ],
        description=__doc__ or "",
    )


# -- the whole table, as a script ---------------------------------------------------------------
def _table(rows: dict[str, dict[str, object]]) -> str:
    """Markdown: one row per mode and fix, one column per shape and path."""
    cols = [(o, p) for o in SHAPES for p in PATHS]
    head = "| mode | fix | " + " | ".join(f"{o:+d} {p}" for o, p in cols) + " |"
    out = [head, "|" + "---|" * (2 + len(cols))]
    for mode, findings in rows.items():
        for fix in FIXES:
            cells = []
            for o, p in cols:
                found = findings.get(phase_name(fix, o, p))
                if not isinstance(found, dict):
                    cells.append("—")
                    continue
                if not found.get("injected"):
                    cells.append("not injected")
                    continue
                cells.append("**reset**" if found.get("rst") else "no reset")
            out.append(f"| {mode} | {fix} | " + " | ".join(cells) + " |")
    return "\n".join(out)


async def _main(modes: list[str], out: Path) -> int:
    from connreset import run
    from connreset.errors import ValidationError
    from connreset.lab import proxier
    from connreset.lab import testbed as lab

    out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict[str, object]] = {}
    for name in modes:
        try:
            mode = proxier.mode(name)
        except ValidationError as exc:
            print(f"{name}: skipped: {exc}", file=sys.stderr)
            continue
        fixes = ",".join(f for f in FIXES if f != "drop-invalid" or mode.has_drop_invalid)
        result = await run(
            experiment(fixes=fixes),
            lab(nodes=3, time_scale=0.1, proxy=name),
            journal=out / f"{name}.json",
        )
        print(f"{name}: {result.outcome} ({result.journal})", file=sys.stderr)
        rows[name] = dict(result.findings)
        (out / f"{name}.findings.json").write_text(json.dumps(rows[name], indent=1, default=str))
    print(_table(rows))
    return 0


def _saved(out: Path) -> int:
    """The table from the findings earlier runs saved in ``out`` (one run per mode)."""
    from connreset.lab.proxier import MODES

    rows = {
        m: json.loads((out / f"{m}.findings.json").read_text())
        for m in MODES
        if (out / f"{m}.findings.json").exists()
    }
    print(_table(rows))
    return 0


if __name__ == "__main__":
    import argparse
    import asyncio

    from connreset.lab.proxier import MODES

    ap = argparse.ArgumentParser(description="the exposure table: every kube-proxy mode on the lab")
    ap.add_argument("--modes", default=",".join(MODES), help="comma-separated (default: all)")
    ap.add_argument("--out", type=Path, default=Path("results/proxy-modes"), help="journals go here")
    ap.add_argument("--table", action="store_true", help="only print the table from --out's findings")
    a = ap.parse_args()
    if a.table:
        sys.exit(_saved(a.out))
    sys.exit(asyncio.run(_main([m for m in a.modes.split(",") if m], a.out)))
