"""Experiments in a guest of Debian 11's kernel 5.10, under TCG where KVM does not boot it.

Like every root test, run them holding the lab lock (docs/testing.md): the host's global conntrack
sizes are watched while a guest runs, and only the lock keeps other labs from changing them.

They boot real guests: each takes minutes under emulation, so each test is one guest run, and the
tests that only read a run share it (a session fixture). Where no guest can start (no QEMU, no
virtme-ng, 5.10 not fetched), they skip and say why.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from connreset.guest import kernels
from connreset.runs import wire
from connreset.runs.journal import read

pytestmark = [pytest.mark.root, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
GLOBALS = ("nf_conntrack_max", "nf_conntrack_buckets")


def _why_no_guest() -> str:
    if os.geteuid() != 0:
        return "needs root"
    if shutil.which("qemu-system-x86_64") is None:
        return "QEMU is not installed (apt-get install qemu-system-x86)"
    if not (Path(sys.executable).parent / "vng").exists() and shutil.which("vng") is None:
        return "virtme-ng is not installed (pip install virtme-ng)"
    for tool in ("depmod", "modprobe", "busybox"):
        try:
            kernels.tool(tool)
        except Exception as exc:
            return str(exc)
    if kernels.find("5.10") is None:
        return "kernel 5.10 is not cached (connreset kernels fetch 5.10; .ci/setup does it)"
    return ""


@pytest.fixture(scope="session")
def guest_ok() -> None:
    why = _why_no_guest()
    if why:
        pytest.skip(f"no guest can start: {why}")


class HostWatch:
    """Samples, from outside the guest, what must not change on the host while it runs: the global
    conntrack sizes, and the network and mount namespaces of every process of the run."""

    def __init__(self, root_pid: int) -> None:
        self.root_pid = root_pid
        self.before = self._globals()
        self.mine = {ns: os.readlink(f"/proc/self/ns/{ns}") for ns in ("net", "mnt")}
        self.seen: list[str] = []
        self._odd: set[int] = set()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    @staticmethod
    def _globals() -> dict[str, str]:
        return {k: Path(f"/proc/sys/net/netfilter/{k}").read_text().strip() for k in GLOBALS}

    def _tree(self) -> list[int]:
        pids, todo = [], [self.root_pid]
        while todo:
            pid = todo.pop()
            pids.append(pid)
            for task in Path(f"/proc/{pid}/task").glob("*"):
                try:
                    todo += [int(p) for p in (task / "children").read_text().split()]
                except OSError:
                    continue
        return pids

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            now = self._globals()
            if now != self.before and f"globals changed: {now}" not in self.seen:
                self.seen.append(f"globals changed: {now}")
            for pid in self._tree():
                for ns, link in self.mine.items():
                    try:
                        if os.readlink(f"/proc/{pid}/ns/{ns}") != link and pid not in self._odd:
                            self._odd.add(pid)
                            self.seen.append(f"pid {pid} in another {ns} namespace")
                    except OSError:
                        continue
            self.samples += 1

    def stop(self) -> list[str]:
        self._stop.set()
        self._thread.join()
        return self.seen


def _connreset(*args: str, journal: Path) -> tuple[subprocess.CompletedProcess[str], HostWatch]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "connreset", *args, "--journal", str(journal)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watch = HostWatch(proc.pid)
    out, err = proc.communicate(timeout=1800)
    watch.stop()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), watch


@pytest.fixture(scope="session")
def upstream_shape_on_5_10(
    guest_ok: None, tmp_path_factory: pytest.TempPathFactory
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any], HostWatch]:
    """One guest run: upstream's own packet (offset −100000), no fix, on 5.10."""
    journal = tmp_path_factory.mktemp("guest") / "issue.json"
    done, watch = _connreset(
        "experiments/issue_74839.py",
        "--kernel", "5.10",
        "--set", "offset=-100000", "--set", "fix=none", "--set", "require_reset=false",
        journal=journal,
    )  # fmt: skip
    return done, read(journal), watch


def test_upstreams_packet_resets_on_5_10(
    upstream_shape_on_5_10: tuple[subprocess.CompletedProcess[str], dict[str, Any], HostWatch],
) -> None:
    done, journal, _ = upstream_shape_on_5_10
    assert done.returncode == 0, done.stderr[-2000:]
    assert journal["findings"]["no-fix"]["rst"] is True
    assert "rst: yes" in done.stdout


def test_the_journal_lands_on_the_host_and_names_the_guest(
    upstream_shape_on_5_10: tuple[subprocess.CompletedProcess[str], dict[str, Any], HostWatch],
) -> None:
    done, journal, _ = upstream_shape_on_5_10
    env = journal["environment"]
    k = kernels.find("5.10")
    assert k is not None
    assert env["kernel"] == env["guest_kernel"] == k.release
    assert env["guest_package"] == k.package and env["guest_accel"] in ("tcg", "kvm")
    assert float(env["guest_slowness"]) >= 1.0
    assert f"guest: {k.label}" in done.stderr and "guest: up in" in done.stderr


def test_the_runs_events_reach_the_host_live(
    upstream_shape_on_5_10: tuple[subprocess.CompletedProcess[str], dict[str, Any], HostWatch],
) -> None:
    """The run in the guest sends its events over the wire; the host's console renders them (a
    host run's lines), and the RunStarted it received names the guest's kernel."""
    done, _, _ = upstream_shape_on_5_10
    k = kernels.find("5.10")
    assert k is not None
    assert f"guest: the run is on kernel {k.release} (" in done.stderr
    assert wire.PREFIX not in done.stdout + done.stderr
    assert "▶ issue-74839 on lab" in done.stdout and "── phase no-fix" in done.stdout
    assert "  ✓ deploy boom-server" in done.stdout  # a step's line, rendered on the host


def test_the_host_is_untouched_while_the_guest_runs(
    upstream_shape_on_5_10: tuple[subprocess.CompletedProcess[str], dict[str, Any], HostWatch],
) -> None:
    _, _, watch = upstream_shape_on_5_10
    assert watch.samples > 10
    assert watch.seen == []


def test_restore_of_a_guest_journal_says_there_is_nothing_to_put_back(
    upstream_shape_on_5_10: tuple[subprocess.CompletedProcess[str], dict[str, Any], HostWatch],
    tmp_path: Path,
) -> None:
    _, journal, _ = upstream_shape_on_5_10
    path = tmp_path / "j.json"
    path.write_text(json.dumps(journal))
    out = subprocess.run(
        [sys.executable, "-m", "connreset", "restore", str(path)], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0 and "nothing to restore on this host" in out.stdout


def test_the_same_packet_does_not_reset_on_the_host(tmp_path: Path) -> None:
    """The host's kernel (≥ 6.1) ignores below-window segments (6e250dcbff1d)."""
    major, minor = (int(n) for n in os.uname().release.split(".")[:2])
    if (major, minor) < (6, 1):
        pytest.skip("the host's kernel is older than 6.1")
    done = subprocess.run(
        [
            sys.executable, "-m", "connreset", "experiments/issue_74839.py",
            "--set", "offset=-100000", "--set", "fix=none", "--set", "require_reset=false",
            "--journal", str(tmp_path / "host.json"),
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert read(tmp_path / "host.json")["findings"]["no-fix"]["rst"] is False


@pytest.mark.long  # a guest boot of its own and minutes of TCG: nox -s long, not CI
def test_the_blog_runs_on_5_10_without_touching_the_host(guest_ok: None, tmp_path: Path) -> None:
    """The blog's procedure with upstream's packet, on the blog's era of kernel: it changes the
    machine-wide conntrack sizes, but only the guest's."""
    done, watch = _connreset(
        "experiments/blog_repro.py",
        "--kernel",
        "5.10",
        "--set",
        "offset=-100000",
        journal=tmp_path / "blog.json",
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert watch.samples > 10 and watch.seen == []
    assert read(tmp_path / "blog.json")["environment"]["guest_kernel"].startswith("5.10.")


def _qemus_of(pid: int) -> list[int]:
    """QEMU processes whose environment names ``pid`` as their controller."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if b"qemu-system" not in (proc / "cmdline").read_bytes():
                continue
            env = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(e.startswith(f"CONNRESET_GUEST_OWNER={pid} ".encode()) for e in env):
            found.append(int(proc.name))
    return found


def test_kill_9_of_the_controller_leaves_nothing(guest_ok: None, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "connreset", "experiments/issue_74839.py", "--kernel", "5.10",
            "--journal", str(tmp_path / "killed.json"),
        ],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        for line in proc.stdout:  # the run is under way in the guest
            if line.startswith("──"):
                break
        qemus = _qemus_of(proc.pid)
        assert qemus, "no QEMU found for the run"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 20
        while any(Path(f"/proc/{q}").exists() for q in qemus) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = [q for q in qemus if Path(f"/proc/{q}").exists()]
        assert left == [], f"QEMU left running: {left}"
        assert _qemus_of(proc.pid) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.long  # a guest boot of its own and minutes of TCG: nox -s long, not CI
def test_ctrl_c_stops_the_run_in_the_guest_and_undoes_it(guest_ok: None, tmp_path: Path) -> None:
    """SIGINT to the controller reaches the run inside: it undoes what it made and exits 130."""
    journal = tmp_path / "interrupted.json"
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "connreset", "experiments/issue_74839.py", "--kernel", "5.10",
            "--set", "fix=none", "--journal", str(journal),
        ],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if "deploy boom-server" in line:  # something to undo
                break
        os.kill(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 130, "".join(seen) + out + err
        assert "interrupted" in err and "put back and verified" in err
        data = read(journal)
        assert data["cancelled"] is True and data["pending"] == []
        assert _qemus_of(proc.pid) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# -- a standing guest: one boot, several commands ---------------------------------------------


def _running(pid: int) -> bool:
    """Alive, and not a zombie (an exited process its new parent has not reaped yet)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _keepers() -> list[int]:
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if b"connreset.guest.keeper" in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


@pytest.fixture(scope="module")
def standing_5_10(guest_ok: None) -> Any:
    """`lab up --kernel 5.10`: one boot that the tests below share; powered off at the end."""
    from connreset.guest import keeper

    before = _keepers()
    up = subprocess.run(
        [sys.executable, "-m", "connreset", "lab", "up", "--kernel", "5.10"],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert up.returncode == 0, up.stdout + up.stderr
    kernel = kernels.find("5.10")
    assert kernel is not None
    s = keeper.find(kernel)
    assert s is not None and "the lab stays up in a standing guest" in up.stdout
    yield s, [k for k in _keepers() if k not in before]
    subprocess.run(
        [sys.executable, "-m", "connreset", "lab", "down", "--kernel", "5.10"], cwd=ROOT, timeout=300
    )


def test_a_standing_guest_serves_a_run_without_a_boot_and_ctrl_c_reaches_it(
    standing_5_10: Any, tmp_path: Path
) -> None:
    s, keepers = standing_5_10
    assert len(keepers) == 1 and _qemus_of(keepers[0]), "the standing guest's QEMU is the keeper's"
    journal = tmp_path / "in-standing.json"
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "connreset", "experiments/issue_74839.py", "--kernel", "5.10",
            "--set", "fix=none", "--journal", str(journal),
        ],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    watch = HostWatch(keepers[0])
    try:
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if "deploy boom-server" in line:
                break
        os.kill(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert watch.stop() == [] and watch.samples > 0
    assert proc.returncode == 130, "".join(seen) + out + err
    assert "no boot" in err and "booting" not in err
    data = read(journal)  # moved from the guest's work directory to where it was asked for
    assert data["cancelled"] is True and data["pending"] == []
    env = data["environment"]
    assert env["guest_standing"] == "yes" and env["guest_kernel"].startswith("5.10.")
    left = [p.name for p in s.work.iterdir() if p.name[:1].isdigit()]
    assert left == [], "a command's work directory is removed when it ends"
    restored = subprocess.run(
        [sys.executable, "-m", "connreset", "restore", str(journal)], cwd=ROOT, capture_output=True, text=True
    )
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "no boot" in restored.stderr  # it was restored in the standing guest, which is still up


def test_the_doctor_reads_the_standing_guests_lab(standing_5_10: Any, tmp_path: Path) -> None:
    up = subprocess.run(  # a run consumes the lab it found (as on the host); the guest stays up
        [sys.executable, "-m", "connreset", "lab", "up", "--kernel", "5.10"],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert up.returncode == 0 and "no boot" in up.stderr, up.stdout + up.stderr
    done = subprocess.run(
        [
            sys.executable, "-m", "connreset", "doctor", "--kernel", "5.10", "--window", "2", "--json",
            "--journal", str(tmp_path / "doctor.json"),
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["nodes"], report
    assert read(tmp_path / "doctor.json")["environment"]["guest_kernel"].startswith("5.10.")


def test_lab_down_powers_the_standing_guest_off_and_leaves_nothing(standing_5_10: Any) -> None:
    s, keepers = standing_5_10
    status = subprocess.run(
        [sys.executable, "-m", "connreset", "lab", "status"], cwd=ROOT, capture_output=True, text=True
    )
    assert any(line.startswith("standing guest 5.10.") for line in status.stdout.splitlines()), status.stdout
    qemus = _qemus_of(keepers[0])
    down = subprocess.run(
        [sys.executable, "-m", "connreset", "lab", "down"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert down.returncode == 0, down.stdout + down.stderr
    assert f"standing guest {s.release}: powered off" in down.stdout
    assert [p for p in [*keepers, *qemus] if _running(p)] == [], "lab down returned before they ended"
    assert not s.socket.exists() and not s.pidfile.exists()
