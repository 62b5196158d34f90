"""Boot a guest of another kernel with virtme-ng and run connreset's command line in it.

What the guest gets (see docs/kernels.md):

- the host's ``/`` over 9p, **read-only**; ``/etc``, ``/usr``, ``/var``, ``/tmp``… are overlays
  that live in the guest's memory, ``/run`` a tmpfs;
- the kernel's own ``lib/modules/RELEASE`` (virtme-ng links it in);
- one writable host directory (``--rwdir``), where the journal (or a sweep's results) is written;
- no network device (QEMU's ``-net none``): its traffic stays in namespaces inside it.

QEMU dies with the controller: ``vng --qemu`` starts :mod:`connreset.guest.watch`, which kills it
when the controller's pidfd says it is gone, even after ``kill -9``. vng runs in a session of its
own, so a terminal's Ctrl-C reaches only the controller, which passes it to the run in the guest.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

import attrs

from connreset._support.logs import get_logger
from connreset.errors import BackendError, ValidationError
from connreset.guest import timing, watch
from connreset.guest.kernels import Kernel, cache_root, tool
from connreset.guest.protocol import READY

log = get_logger("connreset.guest")

ACCELS = ("auto", "kvm", "tcg")
#: How long a KVM test boot may take before KVM is taken not to work (kvm_pvm hangs stock kernels).
PROBE_TIMEOUT = 90.0


def _memory(_inst: object, _attr: object, value: str) -> None:
    if not re.fullmatch(r"[1-9][0-9]*[MG]", value):
        raise ValidationError(f"--guest-memory {value!r}: expected a size such as 2G or 1536M")


def _cpus(_inst: object, _attr: object, value: int) -> None:
    if not 1 <= value <= 64:
        raise ValidationError(f"--guest-cpus {value}: expected 1 to 64")


def _accel(_inst: object, _attr: object, value: str) -> None:
    if value not in ACCELS:
        raise ValidationError(f"--accel {value!r}: expected one of {', '.join(ACCELS)}")


@attrs.frozen
class GuestOptions:
    """How to boot: memory, CPUs, and KVM or TCG (``auto``: KVM where a test boot works)."""

    memory: str = attrs.field(default="2G", validator=_memory)
    cpus: int = attrs.field(default=2, validator=_cpus)
    accel: str = attrs.field(default="auto", validator=_accel)
    console: bool = False  # show the guest's kernel console (vng -v), for a guest that will not start


@attrs.frozen
class GuestRun:
    """How a guest run went: its exit code, the accelerator, boot time to the first command, slowness."""

    exit_code: int
    accel: str
    boot_s: float | None
    slowness: float | None
    wall_s: float


def _vng() -> str:
    here = Path(sys.executable).parent / "vng"
    if here.exists():
        return str(here)
    from shutil import which

    found = which("vng")
    if found is None:
        raise BackendError("virtme-ng is not installed (pip install virtme-ng; see docs/kernels.md)")
    return found


def _qemu() -> str:
    from shutil import which

    found = which("qemu-system-x86_64")
    if found is None:
        raise BackendError("QEMU is not installed (Debian: apt-get install qemu-system-x86)")
    return found


def watch_script() -> Path:
    """The ``--qemu`` wrapper, written once per Python (the path must have no spaces: vng passes
    it through a shell)."""
    digest = hashlib.sha256(sys.executable.encode()).hexdigest()[:12]
    path = cache_root() / "bin" / f"qemu-watch-{digest}"
    text = f"#!{sys.executable}\nfrom connreset.guest.watch import main\nmain()\n"
    if not path.exists() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.chmod(0o755)
        tmp.rename(path)
    if " " in str(path):
        raise BackendError(f"the cache path {path} has a space; set XDG_CACHE_HOME to one without")
    return path


def vng_argv(
    kernel: Kernel, accel: str, options: GuestOptions, rwdirs: Sequence[Path], command: str
) -> list[str]:
    """The vng command line (no network device: vng's default is ``-net none``)."""
    argv = [_vng()]
    if accel == "tcg":
        argv.append("--disable-kvm")
    if options.console:
        argv.append("-v")
    argv += [
        "--run", str(kernel.vmlinuz),
        "--force-9p",
        "--busybox", tool("busybox"),
        "--qemu", str(watch_script()),
        "--memory", options.memory,
        "--cpus", str(options.cpus),
        "--overlay-rwdir", "/tmp",
        "--cwd", os.getcwd(),
    ]  # fmt: skip
    for d in rwdirs:
        argv += ["--rwdir", str(d)]
    return [*argv, "--exec", command]


def host_env() -> dict[str, str]:
    env = dict(os.environ)
    env[watch.OWNER_ENV] = watch.owner_token()
    env[watch.QEMU_ENV] = _qemu()
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "/usr/bin:/bin")])
    return env


def guest_env(kernel: Kernel, accel: str, *, standing: bool = False) -> dict[str, str]:
    describe = {"kernel": kernel.release, "package": kernel.package or "(own kernel)", "accel": accel}
    if standing:
        describe["standing"] = "yes"
    if kernel.version:
        describe["version"] = kernel.version
    return {
        timing.GUEST_ENV: json.dumps(describe),
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/sbin:/usr/bin:/sbin:/bin"]),
        "HOME": "/root" if os.geteuid() == 0 else os.environ.get("HOME", "/tmp"),
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLCONFIGDIR": "/tmp/connreset-matplotlib",  # the home directory is read-only there
        "PYTHONUNBUFFERED": "1",
        "TERM": "dumb",
        "COLUMNS": os.environ.get("COLUMNS", "110"),
    }


async def _kill_session(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    await proc.wait()


async def boot(
    kernel: Kernel,
    argv: Sequence[str] | None,
    *,
    rwdirs: Sequence[Path] = (),
    options: GuestOptions = GuestOptions(),
    accel: str = "tcg",
    out: TextIO | None = None,
    err: TextIO | None = None,
    on_ready: Callable[[float, float], None] | None = None,
    timeout: float | None = None,
    handle_signals: bool = False,
    on_line: Callable[[str], bool] | None = None,
    on_started: Callable[[Callable[[], None]], None] | None = None,
) -> GuestRun:
    """Boot ``kernel`` and run ``connreset ARGV`` in it (``argv=None``: only boot, a probe); its
    stdout and stderr are copied to ``out``/``err`` line by line, live.

    ``on_ready(boot_s, slowness)`` is called when the guest is up. With ``handle_signals``, SIGINT
    and SIGTERM are passed to the run in the guest (twice: stop waiting for its undos); a third
    kills the guest. ``timeout``: kill the guest after that many seconds (exit code 124).

    ``on_line(line)`` is offered each stdout line first (the run's event lines); a line it takes
    (True) is not copied to ``out``. ``on_started(interrupt)`` is called once the guest's process
    runs, with what a signal would do: ``interrupt()`` passes an interrupt to the run in the guest
    (a second: stop waiting for its undos; a third kills the guest).
    """
    out = out or sys.stdout
    err = err or sys.stderr
    command = f"exec {sys.executable} -m connreset.guest.inside"
    request = {
        "argv": list(argv or []),
        "probe": argv is None,
        "env": guest_env(kernel, accel),
        "modprobe": tool("modprobe"),
        "host_calibration": timing.calibrate(),
    }
    for d in rwdirs:
        d.mkdir(parents=True, exist_ok=True)
    full = vng_argv(kernel, accel, options, rwdirs, command)
    with await one_guest_at_a_time(err):
        return await _boot(
            kernel, full, request, accel, out, err, on_ready, timeout, handle_signals, on_line, on_started
        )


async def one_guest_at_a_time(err: TextIO) -> TextIO:
    """An exclusive lock on ``CACHE/guest.lock``, held while the guest runs: guests under
    emulation take every CPU they get, and two at once make both crawl."""
    path = cache_root() / "guest.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = open(path, "a")  # noqa: SIM115  (closed by the caller's with)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        err.write(f"guest: waiting for another guest to finish ({path})\n")
        err.flush()
        await asyncio.to_thread(fcntl.flock, lock, fcntl.LOCK_EX)
    return lock


async def _boot(
    kernel: Kernel,
    full: list[str],
    request: dict[str, object],
    accel: str,
    out: TextIO,
    err: TextIO,
    on_ready: Callable[[float, float], None] | None,
    timeout: float | None,
    handle_signals: bool,
    on_line: Callable[[str], bool] | None = None,
    on_started: Callable[[Callable[[], None]], None] | None = None,
) -> GuestRun:
    log.info("booting a guest", kernel=kernel.release, accel=accel, argv=full)
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *full,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=host_env(),
        start_new_session=True,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.write((json.dumps(request) + "\n").encode())
    await proc.stdin.drain()
    ready: dict[str, float] = {}

    async def pump(stream: asyncio.StreamReader, to: TextIO, markers: bool) -> None:
        while line := await stream.readline():
            text = line.decode(errors="replace")
            if markers and text.startswith(READY):
                found = json.loads(text[len(READY) :])
                ready["boot_s"] = time.monotonic() - started
                ready["slowness"] = float(found.get("slowness", 1.0))
                if on_ready is not None:
                    on_ready(ready["boot_s"], ready["slowness"])
                continue
            if markers and on_line is not None and on_line(text):
                continue
            to.write(text)
            to.flush()

    interrupts = 0

    def interrupted() -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts <= 2 and proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.write(b"interrupt\n")
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

    if on_started is not None:
        on_started(interrupted)
    loop = asyncio.get_running_loop()
    if handle_signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, interrupted)
    try:
        pumps = asyncio.gather(pump(proc.stdout, out, True), pump(proc.stderr, err, False))
        try:
            await asyncio.wait_for(asyncio.shield(pumps), timeout)
        except TimeoutError:
            await _kill_session(proc)
            await pumps
            return GuestRun(
                124, accel, ready.get("boot_s"), ready.get("slowness"), time.monotonic() - started
            )
        code = await proc.wait()
    finally:
        if handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        if proc.returncode is None:  # cancelled: the guest must not outlive us
            await asyncio.shield(_kill_session(proc))
    if "boot_s" not in ready and code != 0:
        raise BackendError(
            f"the guest of {kernel.release} ({accel.upper()}) did not start connreset (exit {code}); "
            "--guest-console shows its kernel's console"
        )
    return GuestRun(code, accel, ready.get("boot_s"), ready.get("slowness"), time.monotonic() - started)


# -- KVM or TCG -------------------------------------------------------------------------------


def _probe_cache() -> Path:
    return cache_root() / "accel.json"


def _cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def kvm_usable() -> tuple[bool, str]:
    """Whether KVM can be tried at all, and why not."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False, "no usable /dev/kvm"
    return True, "" if _cpu_flags() & {"vmx", "svm"} else "/dev/kvm without vmx/svm (a software hypervisor?)"


async def choose_accel(kernel: Kernel, options: GuestOptions, say: Callable[[str], None]) -> str:
    """``kvm`` or ``tcg``: as asked, or (``auto``) KVM where a test boot of this kernel came up
    within :data:`PROBE_TIMEOUT`; the answer is cached per host kernel and guest kernel."""
    if options.accel != "auto":
        return options.accel
    usable, why = kvm_usable()
    if not usable:
        return "tcg"
    key = f"{os.uname().release}|{kernel.release}|{kernel.vmlinuz}"
    try:
        known = json.loads(_probe_cache().read_text())
    except (OSError, ValueError):
        known = {}
    if key in known:
        return str(known[key])
    say(f"guest: testing KVM with {kernel.release}{f' ({why})' if why else ''}…")
    try:
        with open(os.devnull, "w") as null:
            probe = await boot(kernel, None, options=options, accel="kvm", timeout=PROBE_TIMEOUT, err=null)
        works = probe.exit_code == 0 and probe.boot_s is not None
    except BackendError:
        works = False
    accel = "kvm" if works else "tcg"
    say(f"guest: KVM {'works' if works else 'does not boot this kernel'}; using {accel.upper()}")
    known[key] = accel
    _probe_cache().parent.mkdir(parents=True, exist_ok=True)
    _probe_cache().write_text(json.dumps(known, indent=2) + "\n")
    return accel
