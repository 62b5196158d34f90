"""``nox -s bench -- guest``: a guest's boot time (TCG, and KVM where it boots), and issue_74839's
wall time in a 5.10 guest against the same run on the host, and in a standing guest (no boot of
its own) against a fresh one, measured in the same run."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ISSUE = [
    "experiments/issue_74839.py",
    "--set", "offset=-100000", "--set", "fix=none", "--set", "require_reset=false", "--no-tui",
]  # fmt: skip


def _timed(argv: list[str]) -> tuple[float, int]:
    t0 = time.perf_counter()
    code = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False).returncode
    return time.perf_counter() - t0, code


async def bench_guest(row: Callable[[str, str, str, str], None]) -> None:
    from connreset.guest import kernels, vm

    kernel = kernels.find("5.10")
    if kernel is None:
        print("  guest: skipped (connreset kernels fetch 5.10 first)")
        return
    py = sys.executable
    host_start, _ = _timed([py, "-m", "connreset", "--version"])
    for accel in ("kvm", "tcg"):
        if accel == "kvm" and await vm.choose_accel(kernel, vm.GuestOptions(), print) != "kvm":
            row("guest boot, 5.10, KVM", "does not boot", "-", "TCG below (kvm_pvm: no vmx/svm)")
            continue
        booted = await vm.boot(kernel, None, accel=accel)
        row(
            f"guest boot, 5.10, {accel.upper()}",
            f"{booted.boot_s or 0:.1f} s to Python",
            "< 60 s",
            f"host starts connreset in {host_start:.2f} s; slowness ×{booted.slowness}",
        )
    with tempfile.TemporaryDirectory() as tmp:
        host, host_code = _timed([py, "-m", "connreset", *ISSUE, "--journal", str(Path(tmp) / "h.json")])
        guest, guest_code = _timed(
            [py, "-m", "connreset", *ISSUE, "--kernel", "5.10", "--journal", str(Path(tmp) / "g.json")]
        )
        row(
            "issue_74839 (no fix) in 5.10 guest",
            f"{guest:.0f} s (×{guest / host:.1f} host), exit {guest_code}",
            "< 10× host",
            f"host {host:.0f} s, exit {host_code}",
        )
        # the same run in a standing guest (`lab up --kernel 5.10`): no boot of its own
        up, up_code = _timed([py, "-m", "connreset", "lab", "up", "--kernel", "5.10"])
        try:
            standing, standing_code = _timed(
                [py, "-m", "connreset", *ISSUE, "--kernel", "5.10", "--journal", str(Path(tmp) / "s.json")]
            )
        finally:
            subprocess.run([py, "-m", "connreset", "lab", "down", "--kernel", "5.10"], capture_output=True)
        row(
            "issue_74839 (no fix) in a standing 5.10 guest",
            f"{standing:.0f} s (×{standing / host:.1f} host), exit {standing_code}",
            "< the fresh guest's",
            f"a fresh guest {guest:.0f} s; lab up --kernel 5.10 took {up:.0f} s once (exit {up_code})",
        )
