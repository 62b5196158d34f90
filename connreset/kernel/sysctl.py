"""The sysctl keys connreset knows: full names, the range of values, and which ones are global.

``nf_conntrack_max`` and ``nf_conntrack_buckets`` are global: writable only in the initial network
namespace, and the max is compared with each namespace's own ``nf_conntrack_count``. Every other
key here is per network namespace.

Each range's upper bound is the one the kernel itself enforces, so a value it would refuse with
``EINVAL``/``ENOMEM`` is refused before anything is touched, not halfway through a run. Where the
kernel allows a value that would make an experiment meaningless (``nf_conntrack_max=0`` means no
limit at all; a timeout of 0 or less), connreset's lower bound is stricter, and says so. The
sources (Linux, ``net/netfilter/nf_conntrack_standalone.c`` unless named):

- ``nf_conntrack_max``: ``proc_dointvec_minmax`` with ``extra1 = SYSCTL_ZERO`` and
  ``extra2 = SYSCTL_INT_MAX`` (commit 8b6861390ffe, "netfilter: conntrack: Bound nf_conntrack
  sysctl writes", mainline in 2025, backported to 6.12.y); before it, ``proc_dointvec``, whose
  ``do_proc_dointvec_conv`` (``kernel/sysctl.c``) refuses anything above ``INT_MAX`` with
  ``-EINVAL``: the same bound. The kernel treats 0 as "no limit" (``if (nf_conntrack_max &&
  unlikely(ct_count > ...))`` in ``__nf_conntrack_alloc``, ``nf_conntrack_core.c``), so connreset
  asks for at least 1.
- ``nf_conntrack_buckets``: ``nf_conntrack_hash_sysctl`` parses with ``proc_dointvec`` (so at most
  ``INT_MAX``), then calls ``nf_conntrack_hash_resize`` (``nf_conntrack_core.c``), which returns
  ``-EINVAL`` for 0 and ``-ENOMEM`` when ``nf_ct_alloc_hashtable`` returns NULL. That function
  refuses ``*sizep > INT_MAX / sizeof(struct hlist_nulls_head)``, rounds the size up to a whole
  page of buckets (``roundup(*sizep, PAGE_SIZE / sizeof(struct hlist_nulls_head))``) and refuses
  again if the rounded size is over the same bound (commit "netfilter: conntrack: clamp maximum
  hashtable size to INT_MAX", posted January 2025; before it the bound was ``UINT_MAX / sizeof(...)``,
  which ``INT_MAX`` from ``proc_dointvec`` already undercuts). With 8-byte list heads and 4 KiB
  pages that leaves :data:`BUCKETS_MAX` = 268,434,944 (2^28 − 512), a 2 GiB table.
- the timeouts (``nf_conntrack_tcp_timeout_*``, ``nf_conntrack_udp_timeout``): seconds through
  ``proc_dointvec_jiffies``, whose ``do_proc_dointvec_jiffies_conv`` (``kernel/sysctl.c``) refuses
  ``*lvalp > INT_MAX / HZ``. HZ is a build option (100 to 1000); connreset takes the smallest
  bound, ``INT_MAX / 1000`` = 2,147,483 s (24.8 days), which every kernel accepts.
- ``nf_conntrack_tcp_be_liberal``, ``nf_conntrack_tcp_loose``,
  ``nf_conntrack_tcp_ignore_invalid_rst``: ``proc_dou8vec_minmax`` with ``SYSCTL_ZERO`` ..
  ``SYSCTL_ONE``: 0 or 1.
- ``net.ipv4.ip_forward`` (``net/ipv4/devinet.c``, ``ctl_forward_entry``): ``devinet_sysctl_forward``
  parses with ``proc_dointvec`` and has no range of its own (its ``extra1``/``extra2`` are the
  devconf and the namespace); any non-zero value turns forwarding on, and connreset takes 0 or 1.

A value read back from a kernel (an undo puts back what was there) is written as it was read:
:func:`check_original` checks only that the key is known and the value a whole number.
"""

from __future__ import annotations

import attrs

from connreset.errors import ValidationError

NETFILTER = "net.netfilter."

INT_MAX = 2**31 - 1
#: ``sizeof(struct hlist_nulls_head)``: one pointer, on 64-bit kernels.
_LIST_HEAD = 8
#: Buckets per 4 KiB page: ``nf_ct_alloc_hashtable`` rounds the size up to a multiple of this.
_PER_PAGE = 4096 // _LIST_HEAD
#: The largest ``nf_conntrack_buckets`` the kernel accepts (64-bit, 4 KiB pages): 268,434,944.
BUCKETS_MAX = (INT_MAX // _LIST_HEAD) // _PER_PAGE * _PER_PAGE
#: The largest timeout, in seconds, that ``proc_dointvec_jiffies`` accepts at any HZ (≤ 1000).
TIMEOUT_MAX = INT_MAX // 1000


@attrs.frozen
class SysctlKey:
    """A known key: its full dotted name, the values connreset writes, and whether it is global.

    ``why`` says where the bounds come from, for the error message.
    """

    name: str
    minimum: int
    maximum: int
    why: str = ""
    host_global: bool = False

    @property
    def rule(self) -> str:
        if (self.minimum, self.maximum) == (0, 1):
            return "0 or 1"
        return f"an integer from {self.minimum} to {self.maximum}"

    def allows(self, value: int) -> bool:
        return self.minimum <= value <= self.maximum


def _timeout(name: str) -> SysctlKey:
    return SysctlKey(
        NETFILTER + name, 1, TIMEOUT_MAX, "seconds; the kernel refuses more than INT_MAX / HZ at HZ=1000"
    )


def _flag(name: str) -> SysctlKey:
    return SysctlKey(name, 0, 1)


KNOWN: dict[str, SysctlKey] = {
    k.name: k
    for k in (
        SysctlKey(
            NETFILTER + "nf_conntrack_max",
            1,
            INT_MAX,
            "the kernel refuses more than INT_MAX, and 0 would mean no limit",
            True,
        ),
        SysctlKey(
            NETFILTER + "nf_conntrack_buckets",
            1,
            BUCKETS_MAX,
            "the kernel refuses a hash table over INT_MAX bytes",
            True,
        ),
        _flag(NETFILTER + "nf_conntrack_tcp_be_liberal"),
        _flag(NETFILTER + "nf_conntrack_tcp_loose"),
        _flag(NETFILTER + "nf_conntrack_tcp_ignore_invalid_rst"),
        _timeout("nf_conntrack_tcp_timeout_established"),
        _timeout("nf_conntrack_tcp_timeout_time_wait"),
        _timeout("nf_conntrack_udp_timeout"),
        _flag("net.ipv4.ip_forward"),
    )
}


def full_name(key: str) -> str:
    """``nf_conntrack_max`` → ``net.netfilter.nf_conntrack_max``; dotted names pass through."""
    key = key.replace("/", ".")
    return key if "." in key else NETFILTER + key


def _known(key: str) -> SysctlKey:
    spec = KNOWN.get(full_name(key))
    if spec is None:
        raise ValidationError(f"unknown sysctl key {key!r} (known: {', '.join(sorted(KNOWN))})")
    return spec


def _integer(spec: SysctlKey, value: object) -> int:
    """The value as a whole number (an int, or a string of one); bools and floats are refused."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValidationError(f"{spec.name} must be {spec.rule}, got {value!r}")
    try:
        return int(value)
    except ValueError:
        raise ValidationError(f"{spec.name} must be {spec.rule}, got {value!r}") from None


def check(key: str, value: object) -> tuple[str, str]:
    """Validate a key and a value to write; return the full key and the value as the kernel reads it.

    Raises:
        ValidationError: an unknown key, or a value outside the key's range, in one line naming
            the key, the value and the range.
    """
    spec = _known(key)
    number = _integer(spec, value)
    if not spec.allows(number):
        why = f" ({spec.why})" if spec.why else ""
        raise ValidationError(f"{spec.name} must be {spec.rule}{why}, got {value!r}")
    return spec.name, str(number)


def check_original(key: str, value: object) -> tuple[str, str]:
    """Validate a value read from a kernel, to write it back: a known key and a whole number.

    The range is not checked: the kernel held that value, so it takes it back (a node may have a
    setting connreset would never write, such as ``nf_conntrack_max=0``).
    """
    spec = _known(key)
    return spec.name, str(_integer(spec, value))


def is_host_global(key: str) -> bool:
    """True for keys the kernel keeps machine-wide (writable only in the initial namespace)."""
    spec = KNOWN.get(full_name(key))
    return bool(spec and spec.host_global)


def proc_path(key: str) -> str:
    """``net.netfilter.nf_conntrack_max`` → ``/proc/sys/net/netfilter/nf_conntrack_max``."""
    return "/proc/sys/" + full_name(key).replace(".", "/")


#: The smallest ``nf_conntrack_max`` connreset puts back from a journal: below it nearly every new
#: flow of every tenant is dropped, and 0 is no limit at all (a forged or corrupt journal).
RESTORE_MAX_MIN = 64


def check_restore(key: str, value: object) -> tuple[str, str]:
    """Validate a value a journal asks to put back, before anything is opened: a known key, in the
    kernel's range and connreset's own (a ``nf_conntrack_max`` below :data:`RESTORE_MAX_MIN`, or
    0, is refused: put such a value back by hand if it truly was the machine's).

    Raises:
        ValidationError: in one line naming the key and the value.
    """
    name, text = check(key, value)
    if name == NETFILTER + "nf_conntrack_max" and int(text) < RESTORE_MAX_MIN:
        raise ValidationError(
            f"{name}={text} would drop nearly every new flow on the machine; connreset does not put "
            f"back a max below {RESTORE_MAX_MIN} (if it truly was the original, set it by hand)"
        )
    return name, text
