"""How much slower this machine runs than the host that started it, and waits scaled by that.

A guest under emulation (TCG) runs 2–10× slower than its host. The controller times a fixed piece
of work on the host before it boots the guest; the guest times the same work at boot; their ratio
is the *slowness*, put in ``CONNRESET_SLOWNESS`` for the run inside. The engine's waits (a step's
``within``, a log wait, a step timeout) are multiplied by it, so an experiment that passes on the
host passes in the guest. No sleep is added: only deadlines move.

On the host (no variable set) the slowness is 1 and nothing changes.
"""

from __future__ import annotations

import json
import math
import os
import time

ENV = "CONNRESET_SLOWNESS"
GUEST_ENV = "CONNRESET_GUEST"
#: The slowness is clamped to this range: below 1 a guest would get shorter windows than the host.
RANGE = (1.0, 12.0)


def calibrate(rounds: int = 5) -> float:
    """Seconds a fixed piece of pure-Python work takes here (the fastest of ``rounds``)."""
    best = math.inf
    for _ in range(rounds):
        start = time.perf_counter()
        total = 0
        for i in range(200_000):
            total += (i * i) % 7
        best = min(best, time.perf_counter() - start)
    return best


def ratio(guest: float, host: float) -> float:
    """The slowness from two :func:`calibrate` times, clamped to :data:`RANGE`."""
    if not (host > 0 and math.isfinite(guest)):
        return 1.0
    return round(min(max(guest / host, RANGE[0]), RANGE[1]), 2)


def slowness() -> float:
    """This process's slowness (``CONNRESET_SLOWNESS``, default 1)."""
    try:
        value = float(os.environ.get(ENV, "1"))
    except ValueError:
        return 1.0
    return min(max(value, RANGE[0]), RANGE[1]) if math.isfinite(value) else 1.0


def scaled(seconds: float) -> float:
    """``seconds`` stretched by the slowness (unchanged on the host)."""
    return seconds * slowness()


def environment() -> dict[str, str]:
    """What the run's environment fingerprint says of the guest (nothing on the host):
    ``guest_kernel``, ``guest_package``, ``guest_accel`` (tcg or kvm), ``guest_slowness``."""
    raw = os.environ.get(GUEST_ENV)
    if not raw:
        return {}
    try:
        found = json.loads(raw)
    except ValueError:
        return {"guest": raw}
    return {f"guest_{k}": str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def guest_note(env: object) -> str:
    """For ``restore``: a journal of a run in a guest needs nothing put back on this host (its
    changes were made in the guest's kernel, which stopped with it); '' for a host run."""
    if not isinstance(env, dict) or not env.get("guest_kernel"):
        return ""
    accel = str(env.get("guest_accel", "")).upper()
    if env.get("guest_standing") == "yes":
        here = environment()  # this process's, if it runs in a guest
        if here.get("guest_standing") == "yes" and here.get("guest_kernel") == env["guest_kernel"]:
            return ""  # restored in a standing guest of its kernel: its changes may still be here
        return (
            f"this run ran in the standing guest of kernel {env['guest_kernel']} ({accel}): "
            f"`connreset restore --kernel {env['guest_kernel']} JOURNAL` puts back in it what "
            "is pending, while it is up; once it is powered off, nothing of the run is left anywhere"
        )
    return (
        f"this run ran in a guest of kernel {env['guest_kernel']} ({accel}); everything it "
        "changed lived in that guest, which stopped with it: nothing to restore on this host"
    )
