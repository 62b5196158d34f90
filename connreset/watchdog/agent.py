"""connreset's node watchdog: a dead man's switch holding one run's pending undos on one node.

This file is standalone (Python >= 3.8, standard library only): connreset copies it to the node
and starts it there, and the controller uses the same functions, in process or through this
file's command line, so there is one implementation of the protocol. Its directory, ``DIR``
(0700, owned by the user the watchdog runs as):

``config.json``
    ``{"run_id", "lease", "poll", "final": [argv, ...]}``
``lease``
    touched by the controller; its mtime, on the node's own clock, is the lease
``armed``
    present while the watchdog guards; the controller disarms by renaming it to ``disarmed``
``pending/N.json``
    undo N, written before its change is made: ``{"id", "what", "apply": {"argv", "stdin"},
    "verify": {"argv", "stdout"} | {"argv", "fails": true}}``
``agent/N.json``, ``ctl/N.json``
    undo N claimed by the watchdog, or by a controller (the run, or ``connreset restore``). A
    claim is a ``rename`` out of ``pending/``: exactly one party wins, so each undo is applied
    at most once.
``done/N.json``
    ``{"id", "ok", "detail"}``: how the watchdog's application of undo N went, read back
``state``
    ``armed``, ``firing``, ``fired`` or ``disarmed``; ``pid``; ``log`` (JSON lines)
``restorer``
    the pid of a ``connreset restore`` that renews the lease until it has put everything back

If the lease is older than ``lease`` seconds while armed (the controller was killed, lost the
network, or its machine died), the watchdog claims every pending undo, newest first, applies it,
verifies it by reading back, runs the ``final`` argvs (the lab's teardown), and exits. Disarmed,
it exits at once.

Commands: ``start DIR`` (daemonize; prints the pid once guarding), ``hold DIR`` (an undo on
stdin), ``claim DIR N`` (exit 0: yours; 3: the watchdog's), ``result DIR N WAIT``, ``renew DIR``,
``disarm DIR WAIT`` (prints what the watchdog did, as JSON), ``remove DIR``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from typing import Any

RUN_TIMEOUT = 30.0
CLAIMED, TAKEN, GONE = 0, 3, 4  # claim's exit codes


def _path(d: str, *parts: str) -> str:
    return os.path.join(d, *parts)


def _write(path: str, text: str) -> None:
    """Write atomically and durably: a temporary file (never followed if it is a link), then rename."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)


def _log(d: str, event: str, **fields: Any) -> None:
    line = json.dumps({"t": time.time(), "event": event, **fields}) + "\n"
    fd = os.open(_path(d, "log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def _state(d: str) -> str:
    try:
        with open(_path(d, "state")) as f:
            return f.read().strip()
    except FileNotFoundError:
        return "absent"


def state_of(d: str) -> str:
    return _state(d)


def mark_restorer(d: str, pid: int) -> None:
    """``connreset restore`` (``pid``) renews this watchdog now, until it has put everything back."""
    _write(_path(d, "restorer"), str(pid))


def restorer(d: str) -> int | None:
    """The pid of a ``connreset restore`` renewing this watchdog, if it is still alive."""
    try:
        with open(_path(d, "restorer")) as f:
            pid = int(f.read().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if alive(pid) else None


# -- the controller's side -------------------------------------------------------------------------
def prepare(d: str, config: dict[str, Any]) -> None:
    """Make DIR (0700; refusing one that exists) with its config, a fresh lease, and armed."""
    os.makedirs(os.path.dirname(d), mode=0o700, exist_ok=True)
    os.mkdir(d, 0o700)
    for sub in ("pending", "agent", "ctl", "done"):
        os.mkdir(_path(d, sub), 0o700)
    _write(_path(d, "config.json"), json.dumps(config))
    _write(_path(d, "lease"), "")
    _write(_path(d, "armed"), "")
    _write(_path(d, "state"), "armed")


def hold(d: str, op: dict[str, Any]) -> None:
    """Hand undo ``op`` to the watchdog (durably, before its change is made)."""
    _write(_path(d, "pending", f"{int(op['id'])}.json"), json.dumps(op))


def renew(d: str) -> None:
    os.utime(_path(d, "lease"))


def claim(d: str, op_id: int, who: str = "ctl") -> int:
    """Take undo ``op_id`` out of pending: CLAIMED (it is ``who``'s to apply), TAKEN (the
    watchdog has it) or GONE (no such undo was held: it was never handed over, or a controller
    claimed it before)."""
    name = f"{op_id}.json"
    try:
        os.rename(_path(d, "pending", name), _path(d, who, name))
        return CLAIMED
    except FileNotFoundError:
        pass
    if os.path.exists(_path(d, "agent", name)):
        return TAKEN
    return GONE


def result(d: str, op_id: int, wait: float) -> dict[str, Any] | None:
    """How the watchdog's application of undo ``op_id`` went, waiting up to ``wait`` seconds."""
    deadline = time.monotonic() + wait
    path = _path(d, "done", f"{op_id}.json")
    while True:
        try:
            with open(path) as f:
                data: dict[str, Any] = json.load(f)
                return data
        except FileNotFoundError:
            if time.monotonic() >= deadline or _state(d) not in ("firing", "fired"):
                return None
        time.sleep(0.02)


def disarm(d: str, wait: float) -> dict[str, Any]:
    """Stop the watchdog (if it has not fired) and wait for it to exit; say what it did."""
    try:
        os.rename(_path(d, "armed"), _path(d, "disarmed"))
        _write(_path(d, "state"), "disarmed")
        disarmed = True
    except FileNotFoundError:
        disarmed = False
    deadline = time.monotonic() + wait
    pid = pid_of(d)
    while pid is not None and alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    done = []
    for name in sorted(os.listdir(_path(d, "done"))):
        if name.endswith(".json"):
            with open(_path(d, "done", name)) as f:
                done.append(json.load(f))
    return {
        "disarmed": disarmed,
        "state": _state(d),
        "running": pid is not None and alive(pid),
        "done": done,
        "pending": sorted(int(n[:-5]) for n in os.listdir(_path(d, "pending")) if n.endswith(".json")),
    }


def remove(d: str) -> None:
    shutil.rmtree(d, ignore_errors=True)


def pid_of(d: str) -> int | None:
    try:
        with open(_path(d, "pid")) as f:
            return int(f.read().strip())
    except (FileNotFoundError, ValueError):
        return None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has exited; it only waits for its parent
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


# -- the watchdog itself ---------------------------------------------------------------------------
def _run(argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


def _holds(verify: dict[str, Any]) -> tuple[bool, str]:
    try:
        got = _run(verify["argv"])
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"cannot read back: {exc}"
    if verify.get("fails"):
        return got.returncode != 0, "absent" if got.returncode != 0 else "still present"
    now = got.stdout.strip()
    return got.returncode == 0 and now == verify["stdout"], "reads %s" % (now or got.stderr.strip()[:200])


def apply(op: dict[str, Any]) -> tuple[bool, str]:
    """Apply one undo unless it already holds; verify by reading back."""
    ok, detail = _holds(op["verify"])
    if ok:
        return True, f"already so ({detail})"
    try:
        done = _run(op["apply"]["argv"], op["apply"].get("stdin"))
        error = "" if done.returncode == 0 else done.stderr.strip()[:200]
    except (OSError, subprocess.SubprocessError) as exc:
        error = str(exc)
    ok, detail = _holds(op["verify"])
    return ok, detail + ("; " + error if error and not ok else "")


def fire(d: str) -> None:
    """The lease expired: claim and apply every pending undo, newest first, then the finals."""
    try:
        os.rename(_path(d, "armed"), _path(d, "firing"))
    except FileNotFoundError:
        return  # disarmed at the last moment
    _write(_path(d, "state"), "firing")
    _log(d, "lease expired: restoring")
    with open(_path(d, "config.json")) as f:
        config = json.load(f)
    ids = sorted((int(n[:-5]) for n in os.listdir(_path(d, "pending")) if n.endswith(".json")), reverse=True)
    for op_id in ids:
        if claim(d, op_id, "agent") != CLAIMED:
            continue
        with open(_path(d, "agent", f"{op_id}.json")) as f:
            op = json.load(f)
        ok, detail = apply(op)
        _write(_path(d, "done", f"{op_id}.json"), json.dumps({"id": op_id, "ok": ok, "detail": detail}))
        _log(d, "undo", id=op_id, what=op.get("what"), ok=ok, detail=detail)
    _write(_path(d, "state"), "fired")
    for argv in config.get("final", []):
        try:
            got = _run(argv)
            _log(d, "final", argv=argv, code=got.returncode, stderr=got.stderr.strip()[-300:])
        except (OSError, subprocess.SubprocessError) as exc:
            _log(d, "final", argv=argv, error=str(exc))


def guard(d: str) -> None:
    """Watch the lease until disarmed (exit) or expired (fire, then exit)."""
    with open(_path(d, "config.json")) as f:
        config = json.load(f)
    lease, poll = float(config["lease"]), float(config.get("poll", 0.5))
    while os.path.exists(_path(d, "armed")):
        try:
            age = time.time() - os.stat(_path(d, "lease")).st_mtime
        except FileNotFoundError:
            age = float("inf")
        if age > lease:
            fire(d)
            break
        time.sleep(min(poll, max(lease - age, 0.0) + 0.01))
    _log(d, "exit", state=_state(d))


def start(d: str) -> int:
    """Daemonize (its own session, stdio on /dev/null) and return once the watchdog guards."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child:
        os.close(write_end)
        os.waitpid(child, 0)
        pid = os.read(read_end, 32).decode()
        os.close(read_end)
        if not pid:
            return 1
        print(pid)
        return 0
    os.close(read_end)
    os.setsid()
    if os.fork():
        os._exit(0)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.chdir("/")
    _write(_path(d, "pid"), str(os.getpid()))
    _log(d, "guarding", pid=os.getpid())
    os.write(write_end, str(os.getpid()).encode())
    os.close(write_end)
    try:
        guard(d)
    finally:
        os._exit(0)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    command, d = argv[0], argv[1]
    if command == "start":
        return start(d)
    if command == "hold":
        hold(d, json.loads(sys.stdin.read()))
        return 0
    if command == "renew":
        renew(d)
        return 0
    if command == "claim":
        return claim(d, int(argv[2]), "ctl")
    if command == "result":
        found = result(d, int(argv[2]), float(argv[3]))
        print(json.dumps(found))
        return 0 if found is not None else 1
    if command == "disarm":
        print(json.dumps(disarm(d, float(argv[2]))))
        return 0
    if command == "remove":
        remove(d)
        return 0
    print(f"unknown command {command!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
