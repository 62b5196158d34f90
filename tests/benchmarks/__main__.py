"""``nox -s bench``: connreset's speed goals, each measured next to its baseline in the same run.

Run as root for the lab benchmarks; without root only the engine benchmark runs. Pass names to
run a subset: ``nox -s bench -- engine lab``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

from connreset import Call, Deploy, Experiment, Observe, StepContext, events, run, run_on, workloads
from connreset.experiment.plan import build
from connreset.lab import testbed as lab
from connreset.runs.journal import JournalWriter
from connreset.testing import testbed

ROWS: list[tuple[str, str, str, str]] = []


def row(name: str, figure: str, goal: str, baseline: str) -> None:
    ROWS.append((name, figure, goal, baseline))
    print(f"  {name}: {figure}   (goal {goal}; baseline {baseline})", flush=True)


async def _noop(ctx: StepContext) -> None:
    return None


async def bench_engine() -> None:
    """Engine overhead per step on a 1,000-step graph of no-op steps (a chain, and 10 wide)."""
    n = 1000
    chain = Call(_noop, name="s0")
    for i in range(1, n):
        chain = chain >> Call(_noop, name=f"s{i}")
    t0 = time.perf_counter()
    await run(Experiment.single("chain", chain), testbed())
    per_chain = (time.perf_counter() - t0) / n * 1000
    wide = Call(_noop, name="w0")
    for i in range(1, n // 10):
        layer = Call(_noop, name=f"w{i}-0")
        for j in range(1, 10):
            layer = layer | Call(_noop, name=f"w{i}-{j}")
        wide = wide >> layer
    t0 = time.perf_counter()
    await run(Experiment.single("wide", wide), testbed())
    per_wide = (time.perf_counter() - t0) / n * 1000
    t0 = time.perf_counter()
    for _ in range(n):
        await _noop(None)  # type: ignore[arg-type]
    bare = (time.perf_counter() - t0) / n * 1000
    row("engine, 1,000-step chain", f"{per_chain:.3f} ms/step", "< 1 ms/step", f"bare await {bare:.4f} ms")
    row("engine, 1,000 steps 10 wide", f"{per_wide:.3f} ms/step", "< 1 ms/step", f"bare await {bare:.4f} ms")


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True)


def ip_baseline(pods: int) -> float:
    """The same plumbing with one ip(8) process per command: netns, veth, addresses, links up."""
    t0 = time.perf_counter()
    _ip("netns", "add", "crlab-bench-node")
    try:
        for i in range(pods):
            ns = f"crlab-bench-{i}"
            _ip("netns", "add", ns)
            _ip(
                "-n",
                "crlab-bench-node",
                "link",
                "add",
                f"vb{i}",
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                ns,
            )
            _ip("-n", "crlab-bench-node", "link", "set", f"vb{i}", "up")
            _ip("-n", ns, "addr", "add", f"198.18.200.{i % 250 + 2}/32", "dev", "eth0")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "link", "set", "eth0", "up")
        return time.perf_counter() - t0
    finally:
        batch = (
            "".join(f"netns delete crlab-bench-{i}\n" for i in range(pods))
            + "netns delete crlab-bench-node\n"
        )
        subprocess.run(["ip", "-force", "-batch", "-"], input=batch, text=True, check=False)


async def lab_up(pods: int) -> float:
    """Seconds from start until every pod is Running and its Service rules are in place."""
    stamps: dict[str, float] = {}

    async def done(ctx: StepContext) -> None:
        stamps["ready"] = time.perf_counter()

    exp = Experiment.single(
        "up", Deploy("web", workloads.command(["sleep", "infinity"]), replicas=pods, port=80) >> Call(done)
    )
    t0 = time.perf_counter()
    result = await run(exp, lab(nodes=2))
    assert result.passed, result.steps
    return stamps["ready"] - t0


async def bench_lab() -> None:
    base = ip_baseline(100)
    for pods in (100, 500):
        secs = await lab_up(pods)
        goal = "< 2 s" if pods == 100 else "< 15 s"
        row(
            f"lab up, 2 nodes × {pods // 2} pods",
            f"{secs:.2f} s",
            goal,
            f"ip(8) per command, 100 pods: {base:.2f} s",
        )


def _new_flows(nat: str) -> int:
    """Packets counted by KUBE-SERVICES jumps: the nat table sees only a flow's first packet."""
    total = 0
    for line in nat.splitlines():
        if line.startswith("[") and " -A KUBE-SERVICES " in line:
            total += int(line[1:].split(":", 1)[0])
    return total


async def connections_per_second(workload: Any, seconds: float, replicas: int = 1, servers: int = 1) -> float:
    """New tracked connections per second through a Service VIP, on the client's node.

    Measured by kube-proxy's own rule counters (``iptables-save -c``): the nat table is consulted
    only for the first packet of a new conntrack entry. (The count's growth undercounts: a client
    that closes second reuses its port at once, and conntrack reopens the old TIME_WAIT entry;
    ``conntrack -S``'s ``insert`` counter stays 0 on recent kernels.)
    """
    rate: dict[str, float] = {}

    async def measure(ctx: StepContext) -> None:
        (node,) = ctx.nodes(["node-1"])

        async def flows() -> int:
            return _new_flows((await node.exec(["iptables-save", "-c", "-t", "nat"])).stdout)

        await asyncio.sleep(1.0)  # let the clients ramp up; this is a measurement window, not a sync
        before, t0 = await flows(), time.perf_counter()
        await asyncio.sleep(seconds)
        after, t1 = await flows(), time.perf_counter()
        rate["r"] = (after - before) / (t1 - t0)

    exp = Experiment.single(
        "rate",
        Deploy("web", workloads.http_server(size=64), replicas=servers, node="node-2", port=80)
        >> Deploy("client", workload, replicas=replicas, node="node-1")
        >> Call(measure),
    )
    result = await run(exp, lab())
    assert result.passed, result.steps
    return rate["r"]


async def bench_simple_app() -> None:
    curl = await connections_per_second(workloads.curl_loop("web"), 5)
    # two client pods of 64 concurrent loops each (the blog ran ten), one server pod
    ours = await connections_per_second(workloads.simple_app_client("web", connections=64), 5, replicas=2)
    row(
        "simple-app, new tracked conn/s",
        f"{ours:,.0f}/s ({ours / max(curl, 1):.0f}× curl)",
        "≥ 10,000/s and ≥ 100× curl",
        f"blog's curl loop {curl:,.0f}/s",
    )


async def bench_sampling() -> None:
    """Observe's sampling rate, next to running ``conntrack -C`` in the node once per sample."""
    seen: list[Any] = []
    baseline: dict[str, float] = {}

    async def conntrack_cli(ctx: StepContext) -> None:
        (node,) = ctx.nodes(["node-1"])
        t0, n = time.perf_counter(), 0
        while time.perf_counter() - t0 < 2:
            await node.exec(["conntrack", "-C"])
            n += 1
        baseline["hz"] = n / (time.perf_counter() - t0)

    exp = Experiment.single("sample", Observe(3, every=0.001) >> Call(conntrack_cli))
    await run(exp, lab(), subscribers=[lambda e: seen.append(e) if type(e).__name__ == "Sample" else None])
    per_node = sum(1 for e in seen if e.metric == "conntrack_count" and e.node == "node-1") / 3
    row(
        "conntrack count sampling",
        f"{per_node:,.0f} Hz per node",
        "≥ 10 Hz",
        f"conntrack -C per sample: {baseline['hz']:,.0f} Hz",
    )


def _journal_cost(samples: int, path: str) -> float:
    """Seconds per event to journal one more sample after ``samples`` samples (the run so far)."""
    writer = JournalWriter(path)
    writer.write(events.RunStarted("bench", {}, "lab", "now", {}, ("p",), 1, "r", {}, 0.0))
    for i in range(samples):
        writer.write(events.Sample(i * 0.1, "node-1", "conntrack_count", i))
    n = 2000
    t0 = time.perf_counter()
    for i in range(n):
        writer.write(events.Sample(samples + i * 0.1, "node-1", "conntrack_count", i))
    per = (time.perf_counter() - t0) / n
    writer.close()
    return per


def _rewrite_cost(samples: int) -> float:
    """The old way, as a baseline: the whole document rewritten (and fsynced) per flush."""
    import json
    import tempfile

    doc = {
        "samples": [
            {"t": i * 0.1, "node": "node-1", "metric": "conntrack_count", "value": i} for i in range(samples)
        ]
    }
    with tempfile.NamedTemporaryFile("w", delete=True) as f:
        t0 = time.perf_counter()
        for _ in range(20):
            f.seek(0)
            json.dump(doc, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        return (time.perf_counter() - t0) / 20


async def bench_journal() -> None:
    """Journal cost per event at 100 and at 10,000 samples: flat, since lines are appended."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        small = _journal_cost(100, f"{d}/a.json")
        large = _journal_cost(10_000, f"{d}/b.json")
    row(
        "journal, µs per event",
        f"{small * 1e6:.1f} at 100, {large * 1e6:.1f} at 10,000 (×{large / small:.2f})",
        "ratio ≤ 1.5",
        f"rewriting the document: {_rewrite_cost(100) * 1e3:.2f} ms at 100, "
        f"{_rewrite_cost(10_000) * 1e3:.1f} ms at 10,000",
    )


async def bench_open_lab() -> None:
    """Time to the first step of a run: on a fresh lab, and the second run on an open lab."""
    stamps: list[float] = []

    async def first(ctx: StepContext) -> None:
        stamps.append(time.perf_counter())

    plan = build(Experiment.single("first", Call(first)))
    t0 = time.perf_counter()
    await run(plan, lab())
    fresh = stamps[-1] - t0
    async with lab() as tb:
        await run_on(tb, plan)
        t0 = time.perf_counter()
        await run_on(tb, plan)
        second = stamps[-1] - t0
    row(
        "time to first step, second run on an open lab",
        f"{second * 1e3:.1f} ms",
        "well under a fresh lab's",
        f"fresh lab: {fresh * 1e3:.0f} ms",
    )


SSH_TARGETS = 50
LIBERAL = "net.netfilter.nf_conntrack_tcp_be_liberal"


def _ssh_argv(farm: Any, port: int, value: int) -> list[str]:
    return [
        "ssh",
        "-F",
        "none",
        "-i",
        str(farm.key),
        "-p",
        str(port),
        "-o",
        f"UserKnownHostsFile={farm.known_hosts}",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "BatchMode=yes",
        "root@127.0.0.1",
        "sysctl",
        "-w",
        f"{LIBERAL}={value}",
    ]


def _wrong(namespaces: list[str], value: int) -> int:
    """Targets whose namespace does not hold ``value`` (read without SSH)."""
    path = "/proc/sys/" + LIBERAL.replace(".", "/")
    return sum(
        subprocess.run(
            ["ip", "netns", "exec", ns, "cat", path], capture_output=True, text=True
        ).stdout.strip()
        != str(value)
        for ns in namespaces
    )


async def bench_ssh() -> None:
    """SetSysctl's write on 50 sshd (each node a crssh-b* namespace), next to OpenSSH's client run
    in a loop and through ``xargs -P 50``; then conntrack sampling over SSH on the same 50."""
    import tempfile
    from pathlib import Path

    from connreset.ssh import SshNodeAccess
    from connreset.testbed import Testbed
    from connreset.testing import MemoryCluster
    from tests.ssh.sshd import SshFarm, add_netns, delete_netns

    namespaces = [f"crssh-b{i:02d}" for i in range(SSH_TARGETS)]
    nodes = {f"node-{i + 1}": ns for i, ns in enumerate(namespaces)}
    try:
        for ns in namespaces:
            add_netns(ns)
        with tempfile.TemporaryDirectory() as d, SshFarm(Path(d), nodes) as farm:
            ports = [farm.sshd[n].port for n in nodes]
            t0 = time.perf_counter()
            failed_seq = sum(
                subprocess.run(_ssh_argv(farm, p, 1), capture_output=True).returncode != 0 for p in ports
            )
            seq = time.perf_counter() - t0
            failed_seq += _wrong(namespaces, 1)

            script = '"$@" >/dev/null 2>&1 || echo failed'
            argv = _ssh_argv(farm, 0, 0)
            t0 = time.perf_counter()
            out = subprocess.run(
                [
                    "xargs",
                    "-P",
                    str(SSH_TARGETS),
                    "-I",
                    "{}",
                    "sh",
                    "-c",
                    script,
                    "sh",
                    *argv[:6],
                    "{}",
                    *argv[7:],
                ],
                input="\n".join(map(str, ports)) + "\n",
                capture_output=True,
                text=True,
            )
            par = time.perf_counter() - t0
            failed_par = out.stdout.count("failed") + _wrong(namespaces, 0)

            access = SshNodeAccess(str(farm.write_inventory()))
            testbed = Testbed(MemoryCluster(SSH_TARGETS), access)
            t0 = time.perf_counter()
            await testbed.open()
            try:
                opened = time.perf_counter()
                results = await asyncio.gather(
                    *(k.write_sysctl(LIBERAL, "1") for k in testbed.nodes()), return_exceptions=True
                )
                done = time.perf_counter()
                failed_ssh = sum(isinstance(r, BaseException) for r in results) + _wrong(namespaces, 1)
                connects = access.connects

                samples: dict[str, int] = {}

                async def sample(kernel: Any, until: float) -> None:
                    while time.perf_counter() < until:
                        await kernel.conntrack_count()
                        samples[kernel.name] = samples.get(kernel.name, 0) + 1

                seconds = 3.0
                until = time.perf_counter() + seconds
                await asyncio.gather(*(sample(k, until) for k in testbed.nodes()))
            finally:
                await testbed.close()
    finally:
        for ns in namespaces:
            delete_netns(ns)
    total = done - t0
    row(
        f"ssh: SetSysctl on {SSH_TARGETS} targets",
        f"{total:.2f} s ({(opened - t0):.2f} s connecting, {(done - opened) * 1e3:.0f} ms writing); "
        f"{failed_ssh} failed; {connects} connections",
        "≥ 10× faster than the loop, faster than xargs, 0 failures",
        f"ssh loop: {seq:.2f} s ({failed_seq} failed; ×{seq / total:.1f}); "
        f"xargs -P {SSH_TARGETS}: {par:.2f} s ({failed_par} failed; ×{par / total:.1f})",
    )
    rates = sorted(n / seconds for n in samples.values())
    row(
        f"ssh: conntrack count sampling, {SSH_TARGETS} nodes at once",
        f"{rates[0]:.0f} Hz per node at least (median {rates[len(rates) // 2]:.0f})",
        "≥ 10 Hz per node",
        f"sequential ssh per sample: {SSH_TARGETS / seq:.1f} Hz for one node",
    )


async def bench_sweep() -> None:
    """Trials per minute at the blog's scale: about 1,200 entries (12 pods holding 100 connections
    each) against a table searched over 64 sizes around it, on one open lab. Every run counts,
    the runs that confirm a value's verdict too."""
    from pathlib import Path

    import attrs

    from connreset.sweep import load_sweep, run_sweep

    shipped, _ = load_sweep(Path(__file__).parent.parent.parent / "experiments/sweep_table_sizes.py")
    spec = attrs.evolve(
        shipped,
        name="bench",
        space=tuple(range(1000, 1000 + 64 * 8, 8)),
        workloads=({"pods": 12, "rate": 0, "held": 100, "warmup": 0.3, "window": 0.5},),
        confirm=None,
        recommend=None,
    )
    async with lab(time_scale=0.1) as tb:
        t0 = time.perf_counter()
        result = await run_sweep(spec, tb, seed=1, database=None)
        seconds = time.perf_counter() - t0
    per_minute = len(result.trials) / seconds * 60
    grid = len(spec.space) * seconds / len(result.trials)
    values = len({t.params[spec.vary] for t in result.trials})
    row(
        "sweep, trials/min at ~1,200 entries",
        f"{per_minute:.0f}/min ({len(result.trials)} runs of {values} values, confirmations included, "
        f"in {seconds:.0f} s; {result.boundaries[0].confidence})",
        "≥ 30 trials/min",
        f"the exhaustive grid: {len(spec.space)} trials, about {grid:.0f} s",
    )


async def bench_guest() -> None:
    """A guest's boot time and issue_74839's wall time in a 5.10 guest against the host."""
    from tests.benchmarks.guest import bench_guest as run_guest_bench

    await run_guest_bench(row)


BENCHES: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
    "engine": bench_engine,
    "journal": bench_journal,
    "open-lab": bench_open_lab,
    "lab": bench_lab,
    "simple-app": bench_simple_app,
    "sampling": bench_sampling,
    "sweep": bench_sweep,
    "ssh": bench_ssh,
    "guest": bench_guest,
}
NEEDS_ROOT = {"lab", "open-lab", "simple-app", "sampling", "sweep", "ssh", "guest"}


def main(argv: list[str]) -> int:
    names = argv or list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)}; have {', '.join(BENCHES)}", file=sys.stderr)
        return 2
    for name in names:
        if name in NEEDS_ROOT and os.geteuid() != 0:
            print(f"{name}: skipped (needs root)")
            continue
        print(f"{name}:", flush=True)
        asyncio.run(BENCHES[name]())
    print("\nbenchmark                         figure                         goal                baseline")
    for name, figure, goal, baseline in ROWS:
        print(f"{name:<33} {figure:<30} {goal:<19} {baseline}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
