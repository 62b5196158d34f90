"""The sysctl keys connreset knows: full names, value checks, and which ones the kernel keeps global.

``nf_conntrack_max`` and ``nf_conntrack_buckets`` are global: writable only in the initial network
namespace, and the max is compared with each namespace's own ``nf_conntrack_count``. Every other
key here is per network namespace.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from connreset.errors import ValidationError

NETFILTER = "net.netfilter."


@attrs.frozen
class SysctlKey:
    """A known key: its full dotted name, a check of its value, and whether it is host-global."""

    name: str
    check: Callable[[int], bool]
    rule: str
    host_global: bool = False


def _positive(v: int) -> bool:
    return v > 0


def _flag(v: int) -> bool:
    return v in (0, 1)


KNOWN: dict[str, SysctlKey] = {
    k.name: k
    for k in (
        SysctlKey(NETFILTER + "nf_conntrack_max", _positive, "a positive integer", True),
        SysctlKey(NETFILTER + "nf_conntrack_buckets", _positive, "a positive integer", True),
        SysctlKey(NETFILTER + "nf_conntrack_tcp_be_liberal", _flag, "0 or 1"),
        SysctlKey(NETFILTER + "nf_conntrack_tcp_loose", _flag, "0 or 1"),
        SysctlKey(NETFILTER + "nf_conntrack_tcp_ignore_invalid_rst", _flag, "0 or 1"),
        SysctlKey(NETFILTER + "nf_conntrack_tcp_timeout_established", _positive, "seconds > 0"),
        SysctlKey(NETFILTER + "nf_conntrack_tcp_timeout_time_wait", _positive, "seconds > 0"),
        SysctlKey(NETFILTER + "nf_conntrack_udp_timeout", _positive, "seconds > 0"),
        SysctlKey("net.ipv4.ip_forward", _flag, "0 or 1"),
    )
}


def full_name(key: str) -> str:
    """``nf_conntrack_max`` → ``net.netfilter.nf_conntrack_max``; dotted names pass through."""
    key = key.replace("/", ".")
    return key if "." in key else NETFILTER + key


def check(key: str, value: object) -> tuple[str, str]:
    """Validate a key and value; return the full key and the value as the kernel reads it."""
    name = full_name(key)
    spec = KNOWN.get(name)
    if spec is None:
        raise ValidationError(f"unknown sysctl key {key!r} (known: {', '.join(sorted(KNOWN))})")
    try:
        number = int(str(value))
    except ValueError:
        raise ValidationError(f"{name} must be {spec.rule}, got {value!r}") from None
    if isinstance(value, bool) or not spec.check(number):
        raise ValidationError(f"{name} must be {spec.rule}, got {value!r}")
    return name, str(number)


def is_host_global(key: str) -> bool:
    """True for keys the kernel keeps machine-wide (writable only in the initial namespace)."""
    spec = KNOWN.get(full_name(key))
    return bool(spec and spec.host_global)


def proc_path(key: str) -> str:
    """``net.netfilter.nf_conntrack_max`` → ``/proc/sys/net/netfilter/nf_conntrack_max``."""
    return "/proc/sys/" + full_name(key).replace(".", "/")
