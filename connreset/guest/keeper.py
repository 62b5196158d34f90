"""A standing guest: one boot of a kernel that later commands share.

``connreset lab up --kernel K`` starts a *keeper*, a process of its own session that boots a
guest of K (its QEMU dies with the keeper, see :mod:`connreset.guest.watch`) and serves commands
on a Unix socket, ``CACHE/guests/RELEASE/socket`` (0600, in a 0700 directory). Each later command
with ``--kernel K`` (``run``, ``doctor``, ``sweep``, ``restore``, ``lab status|down``) finds the
keeper and runs in its guest, without a boot of its own; ``connreset lab down`` ends every keeper,
and with it every guest.

The guest's only writable host directory is ``CACHE/guests/RELEASE/work``. A command runs there,
in a directory of its own, with its files (journal, results) written there and moved to where the
caller asked when it ends.

On the socket, one JSON line per message. The client sends ``{"argv": [...], "cwd": DIR}``
(or ``{"shutdown": true}``), then ``interrupt`` lines for Ctrl-C; the keeper answers with
``{"out": LINE}``/``{"err": LINE}`` and ends with ``{"exit": CODE}``. One command runs at a time:
a second client waits, and is told so.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from connreset._support.logs import get_logger
from connreset.errors import BackendError
from connreset.guest import timing, watch
from connreset.guest.kernels import Kernel, cache_root, tool
from connreset.guest.protocol import DONE, INTERRUPT, READY

log = get_logger("connreset.guest.keeper")

#: What the keeper's argv says, so that a pid is known to be a keeper before it is signalled.
MODULE = "connreset.guest.keeper"


def guests_dir() -> Path:
    return cache_root() / "guests"


@attrs.frozen
class Standing:
    """A standing guest's files: ``pid`` (the keeper's "PID START"), ``socket``, ``about.json``
    (kernel, accel, since), ``keeper.log`` and the ``work`` directory the guest may write."""

    dir: Path

    @property
    def release(self) -> str:
        return self.dir.name

    @property
    def socket(self) -> Path:
        return self.dir / "socket"

    @property
    def pidfile(self) -> Path:
        return self.dir / "pid"

    @property
    def work(self) -> Path:
        return self.dir / "work"

    @property
    def log(self) -> Path:
        return self.dir / "keeper.log"

    def about(self) -> dict[str, Any]:
        try:
            found = json.loads((self.dir / "about.json").read_text())
        except (OSError, ValueError):
            return {}
        return found if isinstance(found, dict) else {}

    def serving(self) -> bool:
        """Its keeper is alive and listening."""
        return self.keeper_pid() is not None and self.socket.exists()

    def keeper_pid(self) -> int | None:
        """The keeper's pid, if that process is alive and is this keeper (not a reused pid)."""
        try:
            pid_text, _, start = self.pidfile.read_text().strip().partition(" ")
            pid = int(pid_text)
            if watch.start_time(pid) != start:
                return None
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        return pid if MODULE.encode() in cmdline else None


def standing_for(kernel: Kernel) -> Standing:
    return Standing(guests_dir() / kernel.release)


def find(kernel: Kernel) -> Standing | None:
    """The standing guest of ``kernel``, if its keeper is alive."""
    s = standing_for(kernel)
    return s if s.serving() else None


def every() -> list[Standing]:
    """Every standing guest with a live keeper (none that this user may not see)."""
    try:
        found = [Standing(d) for d in sorted(guests_dir().iterdir()) if d.is_dir()]
    except OSError:  # no cache yet, or another user's (`lab status` as non-root with HOME=/root)
        return []
    return [s for s in found if s.keeper_pid() is not None]


def forget_stale() -> list[str]:
    """Remove the files of keepers that are gone (killed): their guests died with them."""
    said: list[str] = []
    try:
        dirs = sorted(guests_dir().iterdir())
    except OSError:
        return said
    for d in dirs:
        s = Standing(d)
        if d.is_dir() and s.pidfile.exists() and s.keeper_pid() is None:
            for f in (s.pidfile, s.socket):
                f.unlink(missing_ok=True)
            said.append(f"guest {s.release}: its keeper is gone (and its guest with it); files cleared")
    return said


# -- starting and stopping --------------------------------------------------------------------


def start(
    kernel: Kernel,
    options: Any,
    accel: str,
    say: Callable[[str], None],
    *,
    guest_argv: Sequence[str] | None = None,
) -> Standing:
    """Start a keeper for ``kernel`` and wait until its guest is up (its progress is passed to
    ``say``); the keeper outlives this process. ``guest_argv`` replaces the guest's command line
    (vng): only for tests, where a process standing in for the guest speaks its protocol.

    Raises:
        BackendError: the guest did not come up (the keeper's log says why).
    """
    s = standing_for(kernel)
    s.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    s.dir.chmod(0o700)
    s.work.mkdir(exist_ok=True, mode=0o700)
    config = {
        "kernel": attrs.asdict(
            kernel, value_serializer=lambda _i, _a, v: str(v) if isinstance(v, Path) else v
        ),
        "options": attrs.asdict(options),
        "accel": accel,
        "guest_argv": list(guest_argv) if guest_argv is not None else None,
    }
    read_end, write_end = os.pipe()
    with open(s.log, "ab") as logfile:
        import subprocess

        proc = subprocess.Popen(
            [sys.executable, "-m", MODULE, json.dumps(config), str(write_end)],
            stdin=subprocess.DEVNULL,
            stdout=logfile,
            stderr=logfile,
            pass_fds=(write_end,),
            start_new_session=True,
            cwd=s.dir,
        )
    os.close(write_end)
    ready = False
    try:
        with os.fdopen(read_end) as status:
            for line in status:
                if line.startswith("ready"):
                    ready = True
                else:
                    say(line.rstrip("\n"))
    except KeyboardInterrupt:  # Ctrl-C while it boots: no standing guest after all
        proc.terminate()
        proc.wait()
        raise
    if not ready:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
        raise BackendError(f"the standing guest of {kernel.release} did not come up; see {s.log}")
    return s


def stop(s: Standing, timeout: float = 60.0) -> bool:
    """End a keeper (SIGTERM; SIGKILL after ``timeout``) and wait for it: its guest goes with it.
    False if it was not running."""
    pid = s.keeper_pid()
    if pid is None:
        forget_stale()
        return False
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return False
    try:
        os.kill(pid, signal.SIGTERM)
        import select

        if not select.select([fd], [], [], timeout)[0]:
            os.kill(pid, signal.SIGKILL)
            select.select([fd], [], [], 10)
    except ProcessLookupError:
        pass
    finally:
        os.close(fd)
    forget_stale()
    return True


# -- the client -------------------------------------------------------------------------------


async def request(
    s: Standing,
    argv: Sequence[str],
    *,
    cwd: Path,
    on_out: Callable[[str], None],
    on_err: Callable[[str], None],
    handle_signals: bool = False,
    on_started: Callable[[Callable[[], None]], None] | None = None,
) -> int:
    """Run ``connreset ARGV`` in the standing guest, from ``cwd`` (a directory the guest can see);
    its output lines go to ``on_out``/``on_err`` as they come. With ``handle_signals``, SIGINT
    and SIGTERM are passed to the command (a third: stop waiting for it, exit 130).
    ``on_started(interrupt)`` gets the same interrupt for others to call (a TUI's ``q``)."""
    reader, writer = await asyncio.open_unix_connection(str(s.socket), limit=1 << 20)
    writer.write((json.dumps({"argv": list(argv), "cwd": str(cwd)}) + "\n").encode())
    await writer.drain()
    interrupts = 0
    gone = asyncio.Event()

    def interrupted() -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts <= 2:
            writer.write(f"{INTERRUPT}\n".encode())
        else:
            gone.set()

    loop = asyncio.get_running_loop()
    if handle_signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, interrupted)
    if on_started is not None:
        on_started(interrupted)
    try:
        while True:
            line_task = asyncio.ensure_future(reader.readline())
            gone_task = asyncio.ensure_future(gone.wait())
            await asyncio.wait({line_task, gone_task}, return_when=asyncio.FIRST_COMPLETED)
            gone_task.cancel()
            if not line_task.done():
                line_task.cancel()
                return 130
            line = line_task.result()
            if not line:
                on_err(f"guest {s.release}: the standing guest went away during the command\n")
                return 3
            msg = json.loads(line)
            if "out" in msg:
                on_out(msg["out"])
            elif "err" in msg:
                on_err(msg["err"])
            elif "exit" in msg:
                return int(msg["exit"])
    finally:
        if handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def shutdown(s: Standing) -> None:
    """Ask the keeper to power its guest off and exit; wait for it."""
    pid = s.keeper_pid()
    if pid is None:
        forget_stale()
        return
    fd = os.pidfd_open(pid)
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(s.socket))
            sock.sendall(b'{"shutdown": true}\n')
            sock.recv(4096)  # the keeper closes it once the guest is off (or the keeper is gone)
        import select

        if not select.select([fd], [], [], 60)[0]:
            stop(s)
    except OSError:
        stop(s)
    finally:
        os.close(fd)
    forget_stale()


# -- the keeper -------------------------------------------------------------------------------


class Keeper:
    """The keeper's side: the guest's console and the socket's clients, one command at a time."""

    def __init__(self, s: Standing, proc: asyncio.subprocess.Process, closing: asyncio.Event) -> None:
        self.s = s
        self.proc = proc
        self.turn = asyncio.Lock()
        self.client: asyncio.StreamWriter | None = None
        self.done: dict[str, int] = {}
        self.finished = asyncio.Event()
        self.closing = closing  # set: power the guest off and exit

    def _send(self, msg: dict[str, Any]) -> None:
        if self.client is not None and not self.client.is_closing():
            self.client.write((json.dumps(msg) + "\n").encode())

    async def pump(self, stream: asyncio.StreamReader, key: str) -> None:
        while line := await stream.readline():
            text = line.decode(errors="replace")
            if text.startswith(DONE):
                self.done[key] = int(text[len(DONE) :].strip() or 3)
                if len(self.done) == 2:
                    self.finished.set()
                continue
            if self.client is not None:
                self._send({key: text})
            else:
                sys.stderr.write(f"[guest {key}] {text}")
                sys.stderr.flush()

    def _guest(self, text: str) -> None:
        assert self.proc.stdin is not None
        if not self.proc.stdin.is_closing():
            self.proc.stdin.write((text + "\n").encode())

    async def serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = await reader.readline()
        if not first:
            writer.close()
            return
        msg = json.loads(first)
        if msg.get("shutdown"):
            async with self.turn:
                print("keeper: asked to power the guest off", file=sys.stderr, flush=True)
                self.closing.set()
            return  # the socket stays open until the guest is off: the client waits on it
        if self.turn.locked():
            writer.write(
                (
                    json.dumps({"err": f"guest {self.s.release}: waiting for its command under way\n"}) + "\n"
                ).encode()
            )
        async with self.turn:
            self.client, self.done = writer, {}
            self.finished.clear()
            self._guest(json.dumps({"argv": msg["argv"], "cwd": msg["cwd"]}))

            async def listen() -> None:
                while line := await reader.readline():
                    if line.strip() == INTERRUPT.encode():
                        self._guest(INTERRUPT)
                self._guest(INTERRUPT)  # the client is gone: stop its command (it undoes itself)

            listener = asyncio.ensure_future(listen())
            try:
                await self.finished.wait()
                code = self.done.get("out", 3)
                self._send({"exit": code})
                with contextlib.suppress(ConnectionError):
                    await writer.drain()
            finally:
                listener.cancel()
                self.client = None
                writer.close()


def _group(pgid: int) -> list[int]:
    """Pidfds of the processes in process group ``pgid`` (opened now, so a pid reused later is
    never waited for)."""
    fds = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[2]) == pgid:
                fds.append(os.pidfd_open(int(stat.parent.name)))
        except (OSError, ValueError, IndexError):
            continue
    return fds


def _wait_gone(fds: list[int], timeout: float) -> None:
    import select

    deadline = time.monotonic() + timeout
    for fd in fds:
        with contextlib.suppress(OSError):
            select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        os.close(fd)


async def _ready(stdout: asyncio.StreamReader) -> dict[str, Any] | None:
    """The guest's :data:`READY` announcement (what it measured), or None if it ended first;
    its console lines before that go to the keeper's log."""
    while line := await stdout.readline():
        text = line.decode(errors="replace")
        if text.startswith(READY):
            found = json.loads(text[len(READY) :])
            return found if isinstance(found, dict) else {}
        sys.stderr.write(text)
    return None


async def _keep(config: dict[str, Any], status: Any) -> int:
    from connreset.guest import vm

    def say(text: str) -> None:
        status.write(text + "\n")
        status.flush()

    k = config["kernel"]
    kernel = Kernel(**{**k, "vmlinuz": Path(k["vmlinuz"]), "modules": Path(k["modules"])})
    options = vm.GuestOptions(**config["options"])
    accel = str(config["accel"])
    s = standing_for(kernel)
    s.pidfile.write_text(watch.owner_token() + "\n")
    closing = asyncio.Event()
    loop = asyncio.get_running_loop()

    def signalled(sig: signal.Signals) -> None:
        print(f"keeper: {sig.name}: powering the guest off", file=sys.stderr, flush=True)
        closing.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, signalled, sig)
    lock = await vm.one_guest_at_a_time(status)
    if closing.is_set():  # stopped while it waited for another guest to finish
        s.pidfile.unlink(missing_ok=True)
        lock.close()
        return 130
    request = {
        "serve": True,
        "env": vm.guest_env(kernel, accel, standing=True),
        "modprobe": tool("modprobe"),
        "host_calibration": timing.calibrate(),
    }
    stand_in = config.get("guest_argv")
    full = stand_in or vm.vng_argv(
        kernel, accel, options, [s.work], f"exec {sys.executable} -m connreset.guest.inside"
    )
    say(f"guest: {kernel.label}, {accel.upper()}, {options.cpus} CPU(s), {options.memory}; booting…")
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *full,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(os.environ) if stand_in else vm.host_env(),
        start_new_session=True,
        limit=1 << 20,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.write((json.dumps(request) + "\n").encode())
    keeper = Keeper(s, proc, closing)
    pumps = [asyncio.ensure_future(keeper.pump(proc.stderr, "err"))]  # to the log until a client comes
    server: asyncio.base_events.Server | None = None
    try:
        waiting = asyncio.ensure_future(_ready(proc.stdout))
        told = asyncio.ensure_future(closing.wait())
        await asyncio.wait({waiting, told}, return_when=asyncio.FIRST_COMPLETED)
        told.cancel()
        if not waiting.done():  # told to stop while it booted
            waiting.cancel()
            say(f"guest: stopped while it booted; {kernel.release} powered off")
            return 130
        found = waiting.result()
        if found is None:
            say(f"guest: {kernel.release} did not start connreset (exit {await proc.wait()}); see {s.log}")
            return 3
        if found.get("problem"):
            say(f"guest: {found['problem']}")
            return 3
        boot_s = time.monotonic() - started
        about = {
            "kernel": kernel.release,
            "label": kernel.label,
            "accel": accel,
            "boot_s": round(boot_s, 1),
            "slowness": found.get("slowness"),
            "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "cpus": options.cpus,
            "memory": options.memory,
        }
        (s.dir / "about.json").write_text(json.dumps(about) + "\n")
        s.socket.unlink(missing_ok=True)
        server = await asyncio.start_unix_server(keeper.serve_one, path=str(s.socket), limit=1 << 20)
        s.socket.chmod(0o600)
        pumps.append(asyncio.ensure_future(keeper.pump(proc.stdout, "out")))
        say(f"guest: up in {boot_s:.1f}s; slowness ×{found.get('slowness', 1.0):g} (waits scaled by it)")
        say("ready")
        status.close()
        exited = asyncio.ensure_future(proc.wait())
        told = asyncio.ensure_future(closing.wait())
        await asyncio.wait({exited, told}, return_when=asyncio.FIRST_COMPLETED)
        told.cancel()
        if exited.done():
            print(f"keeper: the guest ended by itself (exit {proc.returncode})", file=sys.stderr, flush=True)
        else:
            keeper._guest(json.dumps({"shutdown": True}))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(exited), 30)
        return 0
    finally:
        for p in pumps:
            p.cancel()
        if server is not None:
            server.close()
        s.socket.unlink(missing_ok=True)
        left = _group(proc.pid)  # vng's session: vng, the QEMU watch and QEMU
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        if proc.returncode is None:
            await proc.wait()
        await asyncio.to_thread(_wait_gone, left, 10.0)  # none outlives the keeper
        s.pidfile.unlink(missing_ok=True)
        lock.close()
        if not status.closed:
            status.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    config = json.loads(args[0])
    status = os.fdopen(int(args[1]), "w")
    return asyncio.run(_keep(config, status))


if __name__ == "__main__":
    sys.exit(main())
