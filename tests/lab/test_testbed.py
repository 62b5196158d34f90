"""The lab as a testbed on the real kernel: runs sharing one open lab, the kernel verbs written
once, the journal on a file system that fills up. Needs root."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from connreset import (
    ApplyFix,
    AssertLogs,
    Call,
    CountLogs,
    Deploy,
    Experiment,
    NodeKernel,
    Rule,
    StepContext,
    run_on,
    workloads,
)
from connreset.experiment.loader import load
from connreset.lab import host
from connreset.lab import testbed as lab
from connreset.lab.access import LabKernel
from connreset.runs.journal import read

pytestmark = pytest.mark.root
ROOT = Path(__file__).parent.parent.parent
SHORT = {"every": "1", "window": "5"}


def _inodes(tb: object) -> dict[str, int]:
    return {name: node.ns_inode for name, node in tb.cluster.lab_nodes.items()}  # type: ignore[attr-defined]


async def test_two_runs_share_one_open_lab_without_rebuilding_it() -> None:
    plan = load(ROOT / "experiments/issue_74839.py", raw=SHORT)
    tb = lab(time_scale=0.1)
    async with tb:
        before = _inodes(tb)
        first = await run_on(tb, plan)
        between = _inodes(tb)
        second = await run_on(tb, plan)
        after = _inodes(tb)
    assert before == between == after
    for result in (first, second):
        assert result.passed, [s for s in result.steps if s.status != "ok"]
        assert result.findings["no-fix"]["rst"] is True
        assert all(u.verified for u in result.undo)
    assert first.run_id != second.run_id
    assert host.lab_namespaces() == []  # closed: gone, and (the fixture checks) sysctls restored


async def test_the_kernel_verbs_written_once_work_on_the_real_kernel() -> None:
    """The generic NodeKernel (dmesg, readlink, cat, iptables) on a lab node agrees with the lab's
    own faster paths."""
    seen: dict[str, object] = {}
    rule = Rule("filter", "KUBE-FORWARD", ("-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP"))

    async def compare(ctx: StepContext) -> None:
        fast = ctx.nodes(["node-1"])[0]
        assert isinstance(fast, LabKernel)
        plain = NodeKernel(ctx.testbed.access, "node-1")
        seen["inode"] = (await plain.netns_inode(), await fast.netns_inode())
        seen["kernel"] = await plain.kernel()
        seen["liberal"] = await plain.read_sysctl("nf_conntrack_tcp_be_liberal")
        seen["max"] = (await plain.read_sysctl("nf_conntrack_max"), host.read_global("nf_conntrack_max"))
        seen["rule"] = await plain.has_rule(rule)
        seen["stats"] = set(await plain.conntrack_stats()) >= {"entries", "drop", "invalid", "chaintoolong"}
        seen["lines"] = await plain.table_full_lines()

    exp = Experiment.single("verbs", ApplyFix("be-liberal") >> ApplyFix("drop-invalid") >> Call(compare))
    async with lab() as tb:
        result = await run_on(tb, load_plan(exp))
    assert result.passed, result.steps
    inode = seen["inode"]
    assert isinstance(inode, tuple) and inode[0] == inode[1]
    assert seen["kernel"] == platform.release()
    assert seen["liberal"] == "1" and seen["rule"] is True and seen["stats"] is True
    assert isinstance(seen["max"], tuple) and seen["max"][0] == seen["max"][1]
    assert isinstance(seen["lines"], list)


def load_plan(exp: Experiment) -> object:
    from connreset.experiment.plan import build

    return build(exp)


def test_lab_node_access_named_explicitly_gives_the_same_findings(tmp_path: Path) -> None:
    def findings(*extra: str) -> dict[str, dict[str, object]]:
        journal = tmp_path / f"j{len(extra)}.json"
        argv = [sys.executable, "-m", "connreset", "experiments/issue_74839.py", "--journal", str(journal)]
        argv += [f"--set={k}={v}" for k, v in SHORT.items()]
        proc = subprocess.run([*argv, *extra], cwd=ROOT, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        doc = read(journal)
        assert doc["spec"]["cluster"] == "lab" and doc["spec"]["node_access"] == "lab"
        # what each phase concluded; the pods' restart counts depend on timing, not on the access
        return {
            phase: {k: v for k, v in f.items() if k != "boom-server"} for phase, f in doc["findings"].items()
        }

    assert findings() == findings("--cluster", "lab", "--node-access", "lab")


FILL = '''
import os
from connreset import *

async def fill(ctx):
    """Fill the journal's file system to the last byte, then the journal's own last page."""
    fd = os.open(os.path.join(os.environ["JOURNAL_DIR"], "filler"), os.O_WRONLY | os.O_CREAT, 0o600)
    for size in (4096, 1):
        try:
            while True:
                os.write(fd, b"x" * size)
        except OSError:
            pass
    os.close(fd)
    for i in range(2000):  # the journal's last page has room left: use it up
        ctx.sample("node-1", "padding", i)

experiment = Experiment.single(
    "full",
    SetSysctl("nf_conntrack_tcp_be_liberal", 1) >> Call(fill) >> SetSysctl("nf_conntrack_max", 4321),
)
'''


def test_a_full_journal_file_system_stops_the_change_and_restores_the_machine(tmp_path: Path) -> None:
    """The journal is on a small tmpfs, mounted in a mount namespace of the run's own (nothing is
    mounted on the machine). When it fills, the change whose undo cannot be written is not made."""
    exp, where = tmp_path / "full.py", tmp_path / "j"
    exp.write_text(FILL)
    where.mkdir()
    script = (
        f"mount -t tmpfs -o size=64k connreset-test {where} && "
        f"exec {sys.executable} -m connreset {exp} --journal {where}/j.json --no-tui"
    )
    before = host.read_global("nf_conntrack_max")
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "unchanged", "sh", "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "JOURNAL_DIR": str(where)},
    )
    assert proc.returncode == 3, proc.stdout + proc.stderr
    failed = next(line for line in proc.stdout.splitlines() if "nf_conntrack_max=4321 [" in line)
    assert "No space left on device" in failed and "the change was not made" in failed
    assert "262144 → 4321" not in proc.stdout and f"{before} → 4321" not in proc.stdout  # never written
    undone = [line for line in proc.stdout.splitlines() if "↶" in line]
    assert len(undone) == 2 and not any("nf_conntrack_max" in line for line in undone)  # nothing to undo
    assert host.read_global("nf_conntrack_max") == before
    assert "↶ ✓ node-1: net.netfilter.nf_conntrack_tcp_be_liberal=0" in proc.stdout
    assert list(where.iterdir()) == []  # the tmpfs was the namespace's own


async def test_lines_of_earlier_containers_count(tmp_path: Path) -> None:
    """A pod that crashes and restarts keeps what each container said (``kubectl logs`` shows
    only the current one; the log index keeps them all)."""
    starts = tmp_path / "starts"
    say = f'echo up >> {starts}; echo "container $(wc -l < {starts})"; exit 1'
    exp = Experiment.single(
        "restarts",
        Deploy("crash", workloads.command(["sh", "-c", say]))
        >> AssertLogs("crash", pattern="^container 2$", within=20)  # the second container spoke
        >> CountLogs("crash", r"^container \d+$", record="lines"),
    )
    async with lab(time_scale=0.1) as tb:
        result = await run_on(tb, load_plan(exp))
    assert result.passed, result.steps
    lines = result.findings["main"]["lines"]
    assert isinstance(lines, int) and lines >= 2


def test_restore_reopens_the_lab_a_killed_run_named_and_puts_everything_back(tmp_path: Path) -> None:
    script = tmp_path / "k.py"
    script.write_text(
        "import asyncio, os\n"
        "from connreset import *\n"
        "async def ready(ctx):\n"
        "    os.write(2, b'ready\\n'); await asyncio.Event().wait()\n"
        "experiment = Experiment.single('k', SetSysctl('nf_conntrack_max', 777) >> ApplyFix('drop-invalid')"
        " >> Deploy('w', workloads.command(['sleep', 'infinity']), replicas=2) >> Call(ready))\n"
    )
    journal = tmp_path / "j.json"
    argv = [sys.executable, "-m", "connreset", str(script), "--journal", str(journal)]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stderr is not None
        assert proc.stderr.readline() == b"ready\n"
    finally:
        os.kill(proc.pid, 9)
        proc.wait()
    assert host.read_global("nf_conntrack_max") == "777" and host.lab_namespaces()
    out = subprocess.run(
        [sys.executable, "-m", "connreset", "restore", str(journal)], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "✓ node-1: net.netfilter.nf_conntrack_max=" in out.stdout
    assert "✓ cluster: delete deployment w" in out.stdout
    assert host.lab_namespaces() == [] and host.processes_in(host.lab_namespaces()) == []


def _lab_up(nodes: int) -> dict[str, int]:
    up = subprocess.run(
        [sys.executable, "-m", "connreset", "lab", "up", "--nodes", str(nodes)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert up.returncode == 0, up.stderr
    return {ns: os.stat(f"/run/netns/{ns}").st_ino for ns in host.lab_namespaces()}


async def test_a_run_adopts_the_nodes_lab_up_left_and_removes_them_at_its_end() -> None:
    """What was joined to the nodes' namespaces (a kind node container, an sshd's command) stays
    joined: the run uses the same namespaces, then removes them."""
    left = _lab_up(2)
    async with lab() as tb:
        during = {tb.cluster.lab_nodes[n].ns: i for n, i in _inodes(tb).items()}  # type: ignore[attr-defined]
    assert during == {ns: left[ns] for ns in during}
    assert host.lab_namespaces() == []


async def test_nodes_of_another_shape_are_removed_and_built_anew() -> None:
    assert "crlab-node-3" in _lab_up(3)
    async with lab():  # two nodes: not what `lab up` made
        namespaces = host.lab_namespaces()
    assert "crlab-node-3" not in namespaces and "crlab-node-1" in namespaces
    assert host.lab_namespaces() == []
