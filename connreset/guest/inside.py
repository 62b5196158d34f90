"""The guest's side: what ``vng --exec`` starts inside the guest.

It takes over the script I/O ports (virtme-ng's init finds them only through udev, which the
host's root may not have), reads the request the controller writes as the first line of stdin,
makes the kernel's modules loadable (``/proc/sys/kernel/modprobe``) and loads ``nf_conntrack``,
measures the guest's slowness, announces itself with one :data:`READY` line, then runs
connreset's command line. Later stdin lines ``interrupt`` are a Ctrl-C for that run. Its exit
code goes back through the ``virtme.ret`` port.

A *standing* guest (``connreset lab up --kernel K``, see :mod:`connreset.guest.keeper`) serves
instead: each later stdin line is a request (``{"argv": [...], "cwd": ...}``) run as its own
``python -m connreset`` process, its output passed through, its end marked by a :data:`DONE`
line on stdout and on stderr; ``{"shutdown": true}`` powers the guest off.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from connreset.guest.protocol import DONE, INTERRUPT, READY

__all__ = ["READY", "main"]
PORTS = Path("/sys/class/virtio-ports")


def _ports() -> dict[str, str]:
    found: dict[str, str] = {}
    if PORTS.is_dir():
        for port in PORTS.iterdir():
            try:
                found[(port / "name").read_text().strip()] = f"/dev/{port.name}"
            except OSError:
                continue
    return found


def _take_ports(ports: dict[str, str]) -> None:
    for name, fd, flags in (
        ("virtme.stdin", 0, os.O_RDONLY),
        ("virtme.stdout", 1, os.O_WRONLY),
        ("virtme.stderr", 2, os.O_WRONLY),
    ):
        if name in ports:
            opened = os.open(ports[name], flags)
            os.dup2(opened, fd)
            os.close(opened)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115


def _report_exit(ports: dict[str, str], code: int) -> None:
    if "virtme.ret" in ports:
        try:
            with open(ports["virtme.ret"], "w") as f:
                f.write(f"{code}\n")
        except OSError:
            pass


def _prepare_modules(modprobe: str) -> str:
    """Point the kernel's module loader at kmod's modprobe and load nf_conntrack; '' or why not."""
    try:
        Path("/proc/sys/kernel/modprobe").write_text(modprobe + "\n")
    except OSError as exc:
        return f"cannot set /proc/sys/kernel/modprobe: {exc}"
    for module in ("nf_conntrack", "veth"):
        out = subprocess.run([modprobe, module], capture_output=True, text=True, check=False)
        if out.returncode != 0:
            return f"modprobe {module}: {out.stderr.strip() or out.returncode}"
    if not Path("/proc/sys/net/netfilter/nf_conntrack_max").exists():
        return "nf_conntrack loaded but its sysctls are missing"
    return ""


def _listen(stdin: Any) -> None:
    """Each ``interrupt`` line from the controller is a Ctrl-C for the run."""
    for line in stdin:
        if line.strip() == INTERRUPT:
            os.kill(os.getpid(), signal.SIGINT)


def _copy(source: Any, to: Any) -> None:
    for line in iter(source.readline, ""):
        to.write(line)
        to.flush()


def _command(request: dict[str, Any]) -> subprocess.Popen[str]:
    """One request's ``python -m connreset ARGV``, its output copied to ours as it comes."""
    child = subprocess.Popen(
        [sys.executable, "-m", "connreset", *[str(a) for a in request["argv"]]],
        cwd=str(request.get("cwd") or "/"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    copies = [
        threading.Thread(target=_copy, args=(child.stdout, sys.stdout), daemon=True),
        threading.Thread(target=_copy, args=(child.stderr, sys.stderr), daemon=True),
    ]
    for t in copies:
        t.start()

    def finish() -> None:
        code = child.wait()
        for t in copies:
            t.join()
        for stream in (sys.stdout, sys.stderr):
            stream.write(f"{DONE}{code}\n")
            stream.flush()

    threading.Thread(target=finish, daemon=True).start()
    return child


def serve(stdin: Any) -> int:
    """A standing guest's loop: one request at a time (the keeper sends the next only after the
    last one's :data:`DONE`); ``interrupt`` is a SIGINT for the command under way."""
    child: subprocess.Popen[str] | None = None
    for line in stdin:
        text = line.strip()
        if not text:
            continue
        if text == INTERRUPT:
            if child is not None and child.poll() is None:
                child.send_signal(signal.SIGINT)
            continue
        request = json.loads(text)
        if request.get("shutdown"):
            break
        try:
            child = _command(request)
        except OSError as exc:
            sys.stderr.write(f"connreset: in the guest: {exc}\n")
            for stream in (sys.stdout, sys.stderr):
                stream.write(f"{DONE}3\n")
                stream.flush()
    if child is not None and child.poll() is None:
        child.send_signal(signal.SIGINT)
        child.wait()
    return 0


def main() -> int:
    from connreset.guest import timing

    started = time.monotonic()
    ports = _ports()
    _take_ports(ports)
    code = 3
    try:
        request = json.loads(sys.stdin.readline() or "{}")
        os.environ.update(request.get("env", {}))
        problem = _prepare_modules(request.get("modprobe", "/usr/sbin/modprobe"))
        slowness = timing.ratio(timing.calibrate(), float(request.get("host_calibration", 0.0)))
        os.environ[timing.ENV] = str(slowness)
        guest = json.loads(os.environ.get(timing.GUEST_ENV, "{}"))
        guest["slowness"] = slowness
        os.environ[timing.GUEST_ENV] = json.dumps(guest)
        print(
            READY
            + json.dumps({"slowness": slowness, "problem": problem, "python_s": time.monotonic() - started}),
            flush=True,
        )
        if problem:
            print(f"connreset: in the guest: {problem}", file=sys.stderr)
            return 3
        if request.get("probe"):
            return 0
        if request.get("serve"):
            return serve(sys.stdin)
        threading.Thread(target=_listen, args=(sys.stdin,), daemon=True).start()
        from connreset.ui.cli import main as cli_main

        code = cli_main(request["argv"])
        return code
    except KeyboardInterrupt:
        code = 130
        return code
    except Exception:  # said before the guest powers off (os._exit would swallow it)
        traceback.print_exc()
        return 3
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


if __name__ == "__main__":
    _code = 3
    try:
        _code = main()
    finally:
        _report_exit(_ports(), _code)
        os._exit(_code)
