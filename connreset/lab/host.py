"""What the lab does to the host itself: a lock, a state file, global sysctls, cleanup.

The kernel keeps ``nf_conntrack_max`` and ``nf_conntrack_buckets`` machine-wide, writable only in
the initial network namespace. So before the lab changes one, it writes the original value to the
state file; every exit path (and ``connreset lab down``, even after ``kill -9``) puts it back.
The lock (``flock``) makes sure two labs never run at once; the kernel drops it when the owner dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

from connreset._support.logs import get_logger
from connreset._support.private import private_dir, private_write
from connreset.errors import BackendError
from connreset.kernel import sysctl
from connreset.lab.addressing import FABRIC_NS, PREFIX, node_ns
from connreset.lab.errors import LabBusy, NeedsRoot
from connreset.watchdog import agent

log = get_logger("connreset.lab")

STATE_DIR = Path(os.environ.get("CONNRESET_STATE_DIR", "/run/connreset"))
NETNS_DIR = Path("/run/netns")
HASHSIZE = Path("/sys/module/nf_conntrack/parameters/hashsize")
TOOLS = ("ip", "nsenter", "iptables-restore", "iptables", "sysctl")


def require_root() -> None:
    """Raise NeedsRoot (having changed nothing) unless we can run the lab."""
    if os.geteuid() != 0:
        raise NeedsRoot(
            "the lab needs root: it creates network namespaces, programs iptables inside them, and "
            "may set the machine-wide nf_conntrack_max/nf_conntrack_buckets. Run it as root "
            "(e.g. with sudo). Nothing was changed."
        )
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        raise BackendError(
            f"the lab needs {', '.join(missing)} (Debian: iproute2, util-linux, iptables, procps). "
            "Nothing was changed."
        )


class HostLock:
    """The host-wide lab lock, held for the lab's whole life."""

    def __init__(self) -> None:
        self._fd: int | None = None

    def acquire(self) -> None:
        private_dir(STATE_DIR)
        fd = os.open(STATE_DIR / "lab.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            owner = read_state().get("owner_pid")
            who = f" (pid {owner})" if isinstance(owner, int) else ""
            raise LabBusy(
                f"another lab is running on this machine{who}; "
                "wait for it, or stop it and run `connreset lab down`"
            ) from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @staticmethod
    def held_by_other() -> bool:
        path = STATE_DIR / "lab.lock"
        if not path.exists():
            return False
        try:
            fd = os.open(path, os.O_RDONLY)  # flock needs no write access: `lab status` as anyone
        except PermissionError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False


# -- the state file -------------------------------------------------------------------------------
def _state_path() -> Path:
    return STATE_DIR / "lab.json"


def read_state() -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(_state_path().read_text())
        return data
    except (FileNotFoundError, PermissionError, json.JSONDecodeError):  # none, or not root's to read
        return {}


def write_state(state: dict[str, Any]) -> None:
    private_dir(STATE_DIR)
    private_write(_state_path(), json.dumps(state, indent=1))


def left_by_lab_up(nodes: int) -> bool:
    """True when the lab's namespaces are exactly the ``nodes`` nodes `connreset lab up` built
    (no pods, no run of its own since): a run may adopt them instead of building anew."""
    state = read_state()
    want = sorted([FABRIC_NS, *(node_ns(i) for i in range(nodes))])
    return state.get("made_by") == "lab up" and state.get("nodes") == nodes and lab_namespaces() == want


def clear_state() -> None:
    _state_path().unlink(missing_ok=True)


# -- global sysctls -------------------------------------------------------------------------------
def read_global(key: str) -> str:
    return Path(sysctl.proc_path(key)).read_text().strip()


def write_global(key: str, value: str) -> None:
    """Write a host-global key, first saving its original in the state file (once per lab)."""
    key = sysctl.full_name(key)
    state = read_state()
    originals = state.setdefault("sysctl_originals", {})
    if key not in originals:
        originals[key] = read_global(key)
        write_state(state)  # on disk before the change
    log.info("setting host-global sysctl", sysctl=key, value=value, original=originals[key])
    Path(sysctl.proc_path(key)).write_text(value)


def restore_globals() -> list[str]:
    """Put every recorded original back; return lines saying what was done."""
    state = read_state()
    originals: dict[str, str] = state.get("sysctl_originals", {})
    done = []
    # buckets before max, the reverse of how a fix sets them; order does not matter to the kernel.
    for key in sorted(originals, reverse=True):
        now = read_global(key)
        if now != originals[key]:
            Path(sysctl.proc_path(key)).write_text(originals[key])
            done.append(f"restored {key}: {now} → {originals[key]}")
        check = read_global(key)
        if check != originals[key]:
            raise BackendError(f"could not restore {key}: reads {check}, want {originals[key]}")
    if originals:
        state["sysctl_originals"] = {}
        write_state(state)
    return done


# -- namespaces and processes -----------------------------------------------------------------------
def lab_namespaces() -> list[str]:
    if not NETNS_DIR.is_dir():
        return []
    return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(PREFIX))


def processes_in(namespaces: list[str]) -> list[int]:
    """PIDs of processes living in the given namespaces (found by netns inode)."""
    inodes = set()
    for ns in namespaces:
        try:
            inodes.add(os.stat(NETNS_DIR / ns).st_ino)
        except FileNotFoundError:
            continue
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry.name}/ns/net").st_ino in inodes:
                pids.append(int(entry.name))
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            continue
    return pids


def kill_pids(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def delete_namespaces(namespaces: list[str]) -> None:
    if not namespaces:
        return
    batch = "".join(f"netns delete {ns}\n" for ns in namespaces)
    subprocess.run(["ip", "-force", "-batch", "-"], input=batch, text=True, capture_output=True, check=False)
    left = [ns for ns in namespaces if (NETNS_DIR / ns).exists()]
    if left:
        raise BackendError(f"could not delete namespaces: {', '.join(left)}")


# -- watchdogs ---------------------------------------------------------------------------------------
def watchdog_records() -> list[tuple[str, str, bool]]:
    """The lab watchdogs' directories: (run id, state, still running)."""
    root = watchdog_root()
    if not root.is_dir():
        return []
    found = []
    for d in sorted(root.iterdir()):
        state = (d / "state").read_text().strip() if (d / "state").exists() else "unknown"
        found.append((d.name, state, _running(d)))
    return found


def watchdog_root() -> Path:
    """Where the lab's runs keep their node watchdogs: ``STATE_DIR/watchdog/RUN_ID``."""
    return STATE_DIR / "watchdog"


def settle_watchdogs(*, remove_records: bool) -> list[str]:
    """Disarm the watchdogs earlier lab runs left armed (this teardown restores what they hold).

    One that fired keeps its directory, the record ``connreset restore`` reads, unless
    ``remove_records`` (``connreset lab down``); one still running (the watchdog calling this,
    through its ``lab down``) is left alone.
    """
    lines: list[str] = []
    root = watchdog_root()
    if not root.is_dir():
        return lines
    for d in sorted(root.iterdir()):
        if not (d / "config.json").exists():
            agent.remove(str(d))
            continue
        state = (d / "state").read_text().strip() if (d / "state").exists() else ""
        if state == "armed" and agent.restorer(str(d)) is not None:
            continue  # `connreset restore` renews it until it has put everything back
        if state == "armed":
            report = agent.disarm(str(d), 10.0)
            lines.append(f"disarmed the watchdog of run {d.name} (its undos are restored here)")
            if not report["running"]:
                agent.remove(str(d))
        elif state == "disarmed" or (remove_records and not _running(d)):
            agent.remove(str(d))
            if state != "disarmed":
                lines.append(f"removed the record of run {d.name}'s watchdog ({state or 'unknown'})")
    with contextlib.suppress(OSError):
        root.rmdir()
    return lines


def _running(d: Path) -> bool:
    pid = agent.pid_of(str(d))
    return pid is not None and agent.alive(pid)


def teardown(*, remove_records: bool = False) -> list[str]:
    """Remove everything a lab made (processes, namespaces, veths, armed watchdogs) and restore
    global sysctls."""
    lines = settle_watchdogs(remove_records=remove_records)
    namespaces = lab_namespaces()
    pids = processes_in(namespaces)
    if pids:
        kill_pids(pids)
        lines.append(f"killed {len(pids)} lab process(es)")
    if namespaces:
        delete_namespaces(namespaces)
        lines.append(f"deleted {len(namespaces)} namespace(s) and their veths")
    lines += restore_globals()
    clear_state()
    return lines
