"""Each known sysctl's range: the kernel's own bound, checked before anything is written."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from connreset import Experiment, NodeKernel, SetSysctl, ValidationError, run
from connreset.kernel import sysctl
from connreset.testing import testbed

MAX = "net.netfilter.nf_conntrack_max"
BUCKETS = "net.netfilter.nf_conntrack_buckets"


def test_the_bounds_are_the_kernels() -> None:
    assert sysctl.INT_MAX == 2_147_483_647
    # nf_ct_alloc_hashtable: at most INT_MAX / 8 list heads, rounded up to 512 per 4 KiB page
    assert sysctl.BUCKETS_MAX == 268_434_944 == 2**28 - 512
    assert sysctl.BUCKETS_MAX % 512 == 0 and sysctl.BUCKETS_MAX + 512 > sysctl.INT_MAX // 8
    # proc_dointvec_jiffies at HZ=1000, the strictest
    assert sysctl.TIMEOUT_MAX == 2_147_483


@pytest.mark.parametrize(
    ("key", "good", "bad"),
    [
        ("nf_conntrack_max", [1, 1200, 2**31 - 1], [0, -1, 2**31, 10**12]),
        ("nf_conntrack_buckets", [1, 300, 268_434_944], [0, -5, 268_434_945, 2**31, 2**40]),
        ("nf_conntrack_tcp_timeout_established", [1, 432_000, 2_147_483], [0, -1, 2_147_484, 2**40]),
        ("nf_conntrack_tcp_timeout_time_wait", [1, 120], [0, 10**9]),
        ("nf_conntrack_udp_timeout", [30], [0, 2**31]),
        ("nf_conntrack_tcp_be_liberal", [0, 1], [2, -1, 255]),
        ("nf_conntrack_tcp_loose", [0, 1], [2]),
        ("nf_conntrack_tcp_ignore_invalid_rst", [0, 1], [3]),
        ("net.ipv4.ip_forward", [0, 1], [2]),
    ],
)
def test_values_inside_the_range_pass_and_outside_fail_naming_key_value_and_range(
    key: str, good: list[int], bad: list[int]
) -> None:
    for value in good:
        assert sysctl.check(key, value)[1] == str(value)
        assert sysctl.check(key, str(value))[1] == str(value)
    for value in bad:
        with pytest.raises(ValidationError) as info:
            sysctl.check(key, value)
        message = str(info.value)
        spec = sysctl.KNOWN[sysctl.full_name(key)]
        assert spec.name in message and repr(value) in message and spec.rule in message
        assert "\n" not in message


@pytest.mark.parametrize("value", [True, 1.0, 1.5, float("nan"), "1.0", "lots", "", None])
def test_only_whole_numbers_are_values(value: object) -> None:
    with pytest.raises(ValidationError, match="nf_conntrack_max must be an integer"):
        sysctl.check("nf_conntrack_max", value)


def test_a_value_read_from_a_kernel_is_put_back_whatever_its_range() -> None:
    """An undo writes back what the kernel held: 0 (no limit) is not connreset's to refuse."""
    assert sysctl.check_original("nf_conntrack_max", "0") == (MAX, "0")
    assert sysctl.check_original("net.ipv4.ip_forward", "2") == ("net.ipv4.ip_forward", "2")
    with pytest.raises(ValidationError, match="unknown sysctl key"):
        sysctl.check_original("kernel.core_pattern", "1")
    with pytest.raises(ValidationError, match="must be"):
        sysctl.check_original("nf_conntrack_max", "|/bin/sh")


def test_the_issues_examples_fail_on_construction() -> None:
    """kubernetes#74839 issue 11: 10**12 and 2**40 passed validation and failed with EINVAL later."""
    with pytest.raises(ValidationError, match=r"nf_conntrack_max must be an integer from 1 to 2147483647"):
        SetSysctl("nf_conntrack_max", 10**12)
    with pytest.raises(ValidationError, match=r"nf_conntrack_buckets must be an integer from 1 to 268434944"):
        SetSysctl("nf_conntrack_buckets", 2**40)


async def test_an_original_outside_the_range_is_put_back_by_the_undo() -> None:
    tb = testbed()
    async with tb:
        await NodeKernel(tb.access, "node-1").restore_sysctl("nf_conntrack_max", "0")
    result = await run(Experiment.single("back", SetSysctl("nf_conntrack_max", 1200)), tb)
    assert result.outcome == "passed"
    assert [(u.verified, u.detail) for u in result.undo] == [(True, f"{MAX} reads 0")]
    assert tb.access.sysctl("node-1", MAX) == "0"


def _write(path: str, value: int) -> int:
    """Write a value the way sysctl(8) does; return the errno (0: written)."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, f"{value}\n".encode())
    except OSError as exc:
        return exc.errno or -1
    finally:
        os.close(fd)
    return 0


def _kernel_at_least(major: int, minor: int) -> bool:
    release = os.uname().release.split("-")[0].split(".")
    return (int(release[0]), int(release[1])) >= (major, minor)


@pytest.mark.root
def test_the_real_kernel_refuses_max_one_above_the_bound_and_keeps_its_value() -> None:
    """On this machine's kernel, in the initial namespace: INT_MAX + 1 is EINVAL, nothing changes."""
    path = sysctl.proc_path(MAX)
    before = Path(path).read_text()
    try:
        assert _write(path, sysctl.INT_MAX + 1) == errno.EINVAL
        assert _write(path, 10**12) == errno.EINVAL
    finally:
        if Path(path).read_text() != before:  # never expected; leave the machine as it was
            Path(path).write_text(before)
    assert Path(path).read_text() == before


@pytest.mark.root
@pytest.mark.skipif(
    not _kernel_at_least(6, 14),
    reason="before the INT_MAX clamp (posted January 2025), the kernel could try to allocate a 2 GiB table",
)
def test_the_real_kernel_refuses_buckets_one_above_the_bound_and_keeps_its_value() -> None:
    """``BUCKETS_MAX + 1`` rounds up past INT_MAX / 8: refused (ENOMEM) before any allocation."""
    path = sysctl.proc_path(BUCKETS)
    before = Path(path).read_text()
    try:
        assert _write(path, sysctl.BUCKETS_MAX + 1) in (errno.ENOMEM, errno.EINVAL)
        assert _write(path, 2**40) == errno.EINVAL
    finally:
        if Path(path).read_text() != before:
            Path(path).write_text(before)
    assert Path(path).read_text() == before


@pytest.mark.root
def test_the_real_kernel_takes_the_longest_timeout_and_refuses_more_at_any_hz() -> None:
    """In a network namespace of the test's own (nothing shared is touched): TIMEOUT_MAX is taken;
    INT_MAX / 100 + 1, over the bound at every HZ, is refused."""
    key = sysctl.proc_path("nf_conntrack_tcp_timeout_established")
    script = (
        f"echo {sysctl.TIMEOUT_MAX} > {key} && cat {key} && "
        f"if echo {sysctl.INT_MAX // 100 + 1} > {key}; then echo taken; else echo refused; fi"
    )
    out = subprocess.run(["unshare", "--net", "sh", "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [str(sysctl.TIMEOUT_MAX), "refused"]
