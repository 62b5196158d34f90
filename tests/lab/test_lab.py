"""The lab on the real kernel: namespaces, kube-proxy rules, conntrack. Needs root."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from connreset import (
    AssertCrashLoop,
    Call,
    Deploy,
    Experiment,
    NeedsRoot,
    Observe,
    Phase,
    Scale,
    SetSysctl,
    StepContext,
    run,
    workloads,
)
from connreset.errors import BackendError
from connreset.events import PodLog
from connreset.experiment.loader import load
from connreset.lab import addressing, host
from connreset.lab import testbed as lab

pytestmark = pytest.mark.root
ROOT = Path(__file__).parent.parent.parent


async def test_service_vip_on_one_node_reaches_endpoints_on_the_other() -> None:
    seen: dict[str, object] = {}

    async def curl(ctx: StepContext) -> None:
        cluster = ctx.cluster
        (box,) = await cluster.pods("box")
        vip = cluster.service_addresses()["web"]  # type: ignore[attr-defined]
        result = await cluster.exec_in_pod(  # type: ignore[attr-defined]
            box.name,
            [
                "curl",
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{remote_ip}",
                f"http://{vip}/small-file.txt",
            ],
        )
        seen["curl"] = result.stdout
        conntrack = await ctx.nodes(["node-1"])[0].exec(["conntrack", "-L", "-p", "tcp", "--orig-dst", vip])
        seen["conntrack"] = conntrack.stdout
        seen["web"] = [p.ip for p in await cluster.pods("web")]

    exp = Experiment.single(
        "vip",
        Deploy("web", workloads.http_server(size=100), node="node-2", port=80)
        >> Deploy("box", workloads.command(["sleep", "infinity"]), node="node-1")
        >> Call(curl),
    )
    logs: list[tuple[str, str]] = []
    result = await run(
        exp,
        lab(),
        subscribers=[lambda e: logs.append((e.pod, e.line)) if isinstance(e, PodLog) else None],
    )
    assert result.passed, result.steps
    assert ("web-1", "listening on :80, serving 100 bytes") in logs  # pod logs stream as events
    code, remote = str(seen["curl"]).split()
    assert code == "200" and remote.startswith("198.19.128.")
    (web_ip,) = seen["web"]  # type: ignore[misc]
    assert web_ip in str(addressing.pod_cidr(1)).rsplit(".", 1)[0] or web_ip.startswith("198.18.4.")
    # node-1 DNATed the VIP to the pod on node-2: the reply tuple comes from the endpoint
    assert f"src={web_ip}" in str(seen["conntrack"])


def _sep_targets(rules: str) -> set[str]:
    return set(re.findall(r"--to-destination (\S+):80", rules))


async def test_scale_0_50_0_leaves_exactly_the_right_endpoints() -> None:
    snapshots: list[tuple[set[str], set[str], int]] = []

    async def snapshot(ctx: StepContext) -> None:
        pods = await ctx.cluster.pods("web")
        for node in ctx.nodes():
            rules = (await node.exec(["iptables-save", "-t", "nat"])).stdout
            snapshots.append(({p.ip for p in pods if p.phase == "Running"}, _sep_targets(rules), len(pods)))

    exp = Experiment.single(
        "scale",
        Deploy("web", workloads.command(["sleep", "infinity"]), replicas=0, port=80)
        >> Call(snapshot, name="at-0")
        >> Scale("web", 50)
        >> Call(snapshot, name="at-50")
        >> Scale("web", 0)
        >> Call(snapshot, name="at-0-again"),
    )
    result = await run(exp, lab())
    assert result.passed, result.steps
    counts = [n for _, _, n in snapshots]
    assert counts == [0, 0, 50, 50, 0, 0]
    for running, targets, _ in snapshots:
        assert targets == running
    assert len(snapshots[2][1]) == 50


async def test_table_full_count_stops_at_max_and_new_connections_fail() -> None:
    k = 40
    exp = Experiment(
        "full",
        [
            Phase(
                "fill",
                [
                    SetSysctl("nf_conntrack_max", k),
                    Deploy("web", workloads.http_server(size=100), node="node-2", port=80),
                    Deploy(
                        "client",
                        workloads.simple_app_client("web", connections=2 * k, hold=60),
                        node="node-1",
                    ),
                    Observe(7, nodes=["node-1"]),
                ],
            )
        ],
    )
    result = await run(exp, lab())
    assert result.passed, result.steps
    found = result.findings["fill"]
    assert found["count_peak"] == {"node-1": k}
    assert found["max"] == k
    assert found["drop"]["node-1"] > 0  # type: ignore[index]
    assert found["kernel_table_full_lines"]["node-1"] > 0  # type: ignore[index]
    assert result.undo[-1].verified


async def test_issue_74839_rst_and_crashloop_without_fix_and_none_with_each_fix() -> None:
    loaded = load(ROOT / "experiments/issue_74839.py", raw={"every": "1", "window": "6"})
    result = await run(loaded, lab(time_scale=0.1))
    assert result.passed, [s for s in result.steps if s.status != "ok"]
    f = result.findings
    assert (f["no-fix"]["rst"], f["no-fix"]["crashloop"]) == (True, True)
    for phase in ("fix-be-liberal", "fix-drop-invalid"):
        assert (f[phase]["injected"], f[phase]["rst"], f[phase]["crashloop"]) == (True, False, False)


async def test_failed_start_leaves_nothing_behind() -> None:
    """A deploy that fails half-way: the lab still removes every namespace and process."""
    exp = Experiment.single(
        "bad",
        Deploy("web", workloads.command(["sleep", "infinity"]), node="node-1")
        >> Deploy("web", workloads.command(["true"])),
    )
    result = await run(exp, lab())
    assert result.outcome == "error"
    assert "already exists" in result.steps[1].detail


def test_lab_down_cleans_up_after_kill_9() -> None:
    script = (
        "import asyncio, os\n"
        "from connreset import *\n"
        "from connreset.lab import testbed\n"
        "async def ready(ctx):\n"
        "    os.write(1, b'ready\\n'); await asyncio.Event().wait()\n"
        "exp = Experiment.single('k', SetSysctl('nf_conntrack_max', 777) >>"
        " Deploy('w', workloads.command(['sleep', 'infinity']), replicas=3) >> Call(ready))\n"
        "run_sync(exp, testbed())\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=ROOT)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
    finally:
        os.kill(proc.pid, 9)
        proc.wait()
    assert host.read_global("nf_conntrack_max") == "777"
    assert host.lab_namespaces()
    assert host.processes_in(host.lab_namespaces())
    down = subprocess.run(
        [sys.executable, "-m", "connreset", "lab", "down"], capture_output=True, text=True, cwd=ROOT
    )
    assert down.returncode == 0, down.stderr
    assert "restored net.netfilter.nf_conntrack_max: 777 → " in down.stdout
    assert host.lab_namespaces() == []


def test_non_root_cli_says_what_it_needs_and_changes_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from connreset.ui.cli import main

    before = (host.lab_namespaces(), host.read_global("nf_conntrack_max"), host.read_state())
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    code = main([str(ROOT / "experiments/issue_74839.py"), "--journal", str(tmp_path / "j.json")])
    assert code == 3
    err = capsys.readouterr().err
    assert "the lab needs root" in err and "Nothing was changed" in err
    assert (host.lab_namespaces(), host.read_global("nf_conntrack_max"), host.read_state()) == before


def _nobody_can_run_python() -> bool:
    probe = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        sys.executable,
        "-c",
        "import connreset",
    ]
    return subprocess.run(probe, capture_output=True, cwd=ROOT).returncode == 0


def test_non_root_gets_a_clear_message_and_nothing_changes() -> None:
    if not _nobody_can_run_python():
        pytest.skip("user nobody cannot read this checkout or its venv")
    before = (host.lab_namespaces(), host.read_global("nf_conntrack_max"))
    journal = f"/tmp/connreset-nonroot-{secrets.token_hex(4)}.json"
    proc = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            sys.executable,
            "-m",
            "connreset",
            "experiments/issue_74839.py",
            "--journal",
            journal,  # a place nobody may write, and new: the journal is tried before the lab
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "CONNRESET_STATE_DIR": "/tmp/cr-nonroot"},
    )
    Path(journal).unlink(missing_ok=True)
    assert proc.returncode == 3, proc.stderr
    assert "needs root" in proc.stderr and "Nothing was changed" in proc.stderr
    assert (host.lab_namespaces(), host.read_global("nf_conntrack_max")) == before


def _as_nobody(*argv: str, cwd: Path | str = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            sys.executable,
            "-m",
            "connreset",
            *argv,
        ],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},  # this checkout's code, from any directory
    )


def test_non_root_in_a_directory_it_cannot_write_gets_one_line_and_nothing_changes() -> None:
    """Issue 11: non-root, from a directory it cannot write (the default journal goes there): a
    PermissionError traceback with "needs root" buried in it. Now one line, exit 2, untouched."""
    if not _nobody_can_run_python():
        pytest.skip("user nobody cannot read this checkout or its venv")
    before = (host.lab_namespaces(), host.read_global("nf_conntrack_max"))
    proc = _as_nobody(str(ROOT / "experiments/issue_74839.py"), "--no-tui", cwd="/")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("connreset: journal .connreset/runs/") and proc.stderr.count("\n") == 1
    assert "cannot write it: Permission denied (choose another with --journal)" in proc.stderr
    assert (host.lab_namespaces(), host.read_global("nf_conntrack_max")) == before


def test_lab_status_as_non_root_reads_and_says_without_a_traceback() -> None:
    """Issue 11: `connreset lab status` as non-root gave a traceback on lab.lock."""
    if not _nobody_can_run_python():
        pytest.skip("user nobody cannot read this checkout or its venv")
    proc = _as_nobody("lab", "status")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("lab: ") and "Traceback" not in proc.stderr


def test_needs_root_is_raised_before_any_change(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(NeedsRoot):
        host.require_root()


def test_kernel_log_lines_are_attributed_by_namespace_inode() -> None:
    from connreset.lab.kmsg import KernelLog

    klog = KernelLog()
    klog.feed(
        "4,1302,1190337209,-;nf_conntrack: nf_conntrack: table full in netns 4026532247, dropping packet"
    )
    klog.feed("6,1303,1190337300,-;eth0: link up")
    assert klog.counts == {4026532247: 1}
    assert klog.lines[4026532247][0].endswith("table full in netns 4026532247, dropping packet")


def test_dry_run_on_the_lab_shows_current_values_and_changes_nothing() -> None:
    before = (
        host.lab_namespaces(),
        host.read_global("nf_conntrack_max"),
        host.read_global("nf_conntrack_buckets"),
    )
    proc = subprocess.run(
        [sys.executable, "-m", "connreset", "experiments/blog_repro.py", "--dry-run"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"node-1  net.netfilter.nf_conntrack_max  {before[1]} → 1200 (host-global)" in proc.stdout
    assert "node-1  net.netfilter.nf_conntrack_tcp_be_liberal  ? → 1" in proc.stdout
    after = (
        host.lab_namespaces(),
        host.read_global("nf_conntrack_max"),
        host.read_global("nf_conntrack_buckets"),
    )
    assert after == before


async def test_endpoints_follow_restarts() -> None:
    """A crash-looping pod is no endpoint; a Running one is."""
    seen: dict[str, object] = {}

    async def snapshot(ctx: StepContext) -> None:
        cluster = ctx.cluster
        await cluster.settle()  # type: ignore[attr-defined]  # kube-proxy's sync follows phase changes
        seen["ok"] = [p.ip for p in await cluster.pods("ok")]
        seen["crash"] = [p.ip for p in await cluster.pods("crash")]
        seen["rules"] = (await ctx.nodes()[0].exec(["iptables-save", "-t", "nat"])).stdout

    exp = Experiment.single(
        "restarts",
        Deploy("ok", workloads.command(["sleep", "infinity"]), port=80)
        >> Deploy("crash", workloads.command(["false"]), port=81)
        >> AssertCrashLoop("crash", within=10)
        >> Call(snapshot),
    )
    # kubelet's real 10 s back-off: the snapshot, taken right after, falls inside it
    result = await run(exp, lab(time_scale=1))
    assert result.passed, result.steps
    targets = _sep_targets(str(seen["rules"]))
    (ok_ip,) = seen["ok"]  # type: ignore[misc]
    (crash_ip,) = seen["crash"]  # type: ignore[misc]
    assert ok_ip in targets
    assert f"--to-destination {crash_ip}:81" not in str(seen["rules"])


async def test_a_failed_rule_sync_is_a_step_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """If iptables-restore rejects the rules, the step that needed them fails; nothing is left."""
    from connreset.lab import cluster, proxy

    bad = proxy.Service("web", "999.0.0.1", 80, 80, ("198.18.4.2",))  # iptables rejects this VIP
    monkeypatch.setattr(cluster.LabCluster, "services", lambda self: [bad])
    exp = Experiment.single("sync", Deploy("web", workloads.command(["sleep", "infinity"]), port=80))
    result = await run(exp, lab())
    assert result.outcome == "error"
    assert "kube-proxy rules could not be synced" in result.steps[0].detail


async def test_removing_a_pod_whose_making_was_interrupted_completes() -> None:
    """A Deploy interrupted (Ctrl-C) after a pod's namespace was made but before its veth: the
    undo deletes the pod all the same (found by tests/test_reliability.py: "Cannot find device")."""
    from connreset.lab import plumbing

    async with lab(nodes=1):
        half = plumbing.PodNet(999, 0, addressing.pod_ip(0, 999))
        await plumbing.ip_batch([f"netns add {half.ns}"])
        assert half.ns in host.lab_namespaces()
        await plumbing.remove_pods([half])  # no veth vp999 on the node: already gone, not an error
        assert half.ns not in host.lab_namespaces()
        with pytest.raises(BackendError, match="Cannot find device"):  # when not deleting, it still is
            await plumbing.ip_batch([f"link set {half.host_if} up"], addressing.node_ns(0))
