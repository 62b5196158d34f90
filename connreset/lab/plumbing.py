"""Building and removing the lab's network: namespaces, veths, addresses, routes.

Measured here (per 100 pods), ``ip -batch`` beats one ``ip`` process per command (0.5 s vs 2.2 s)
and naive pyroute2 (3.4 s): namespaces and veths go through one batch per node, with each pod's
peer created straight inside the pod's namespace, and each pod's own set-up is one
``ip -n POD -batch -``. Nothing is ever created in the initial namespace.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence

import attrs

from connreset.errors import BackendError
from connreset.lab import addressing as addr


@attrs.frozen
class PodNet:
    """One pod's place in the network."""

    pod_id: int
    node: int
    ip: str

    @property
    def ns(self) -> str:
        return addr.pod_ns(self.pod_id)

    @property
    def host_if(self) -> str:
        return f"vp{self.pod_id}"


#: what ``ip`` says when asked to delete what is not there
_ABSENT = re.compile(r"Cannot find device|No such file or directory|^Command failed -:\d+$")


async def ip_batch(commands: Sequence[str], netns: str | None = None, *, deleting: bool = False) -> None:
    """Run ``ip [-n NETNS] -batch -`` with one command per line; raise on any failure.

    ``deleting``: go on past each failure (``-force``), and count something already gone as
    deleted (a pod whose making was interrupted has no veth yet)."""
    if not commands:
        return
    argv = ["ip", *(["-n", netns] if netns else []), *(["-force"] if deleting else []), "-batch", "-"]
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate("\n".join(commands).encode() + b"\n")
    if proc.returncode == 0:
        return
    said = err.decode().strip()
    if deleting and all(_ABSENT.search(line) for line in said.splitlines() if line.strip()):
        return
    raise BackendError(f"{' '.join(argv)} failed: {said[:500]}")


async def nsexec(netns: str, argv: Sequence[str], stdin: bytes | None = None) -> tuple[int, str, str]:
    """Run argv inside a lab namespace; return (returncode, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        "nsenter",
        f"--net=/run/netns/{netns}",
        "--",
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(stdin)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def nsexec_ok(netns: str, argv: Sequence[str], stdin: bytes | None = None) -> str:
    code, out, err = await nsexec(netns, argv, stdin)
    if code != 0:
        raise BackendError(f"in {netns}: {' '.join(argv)} failed ({code}): {err.strip()[:500]}")
    return out


async def restore_rules(namespaces: Sequence[str], rules: str) -> None:
    """``iptables-restore`` the same rules text in each namespace, concurrently."""
    data = rules.encode()
    await asyncio.gather(*(nsexec_ok(ns, ["iptables-restore"], data) for ns in namespaces))


async def build_nodes(count: int) -> None:
    """The fabric bridge and ``count`` node namespaces, routed to each other's pod CIDRs (with no
    rules yet: kube-proxy's come from :class:`connreset.lab.proxier.Proxier`)."""
    nodes = [addr.node_ns(i) for i in range(count)]
    await ip_batch([f"netns add {ns}" for ns in (addr.FABRIC_NS, *nodes)])
    fabric = ["link set lo up", "link add fab0 type bridge", "link set fab0 up"]
    for i, ns in enumerate(nodes):
        fabric += [
            f"link add n{i + 1} type veth peer name eth0 netns {ns}",
            f"link set n{i + 1} master fab0",
            f"link set n{i + 1} up",
        ]
    await ip_batch(fabric, addr.FABRIC_NS)

    async def one(i: int, ns: str) -> None:
        cmds = [
            "link set lo up",
            f"addr add {addr.node_ip(i)}/{addr.FABRIC_CIDR.prefixlen} dev eth0",
            "link set eth0 up",
        ]
        cmds += [
            f"route add {addr.pod_cidr(j)} via {addr.node_ip(j)} dev eth0" for j in range(count) if j != i
        ]
        await ip_batch(cmds, ns)
        await nsexec_ok(ns, ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])

    await asyncio.gather(*(one(i, ns) for i, ns in enumerate(nodes)))


async def add_pods(pods: Sequence[PodNet]) -> None:
    """Namespaces, veths, addresses and routes for new pods (one batch per node, one per pod)."""
    if not pods:
        return
    await ip_batch([f"netns add {p.ns}" for p in pods])
    by_node: dict[int, list[PodNet]] = {}
    for p in pods:
        by_node.setdefault(p.node, []).append(p)

    async def node_side(node: int, mine: list[PodNet]) -> None:
        gw = addr.gateway(node)
        cmds = []
        for p in mine:
            cmds += [
                f"link add {p.host_if} type veth peer name eth0 netns {p.ns}",
                f"addr add {gw}/32 dev {p.host_if}",
                f"link set {p.host_if} up",
                f"route add {p.ip}/32 dev {p.host_if}",
            ]
        await ip_batch(cmds, addr.node_ns(node))

    await asyncio.gather(*(node_side(n, m) for n, m in by_node.items()))
    sem = asyncio.Semaphore(16)

    async def pod_side(p: PodNet) -> None:
        gw = addr.gateway(p.node)
        async with sem:
            await ip_batch(
                [
                    "link set lo up",
                    f"addr add {p.ip}/32 dev eth0",
                    "link set eth0 up",
                    f"route add {gw} dev eth0 scope link",
                    f"route add default via {gw} dev eth0",
                ],
                p.ns,
            )

    await asyncio.gather(*(pod_side(p) for p in pods))


async def remove_pods(pods: Sequence[PodNet]) -> None:
    """Delete pods' veths, then their namespaces.

    The kernel tears a deleted namespace down asynchronously; deleting the node-side veth first
    removes the pod's route at once, so its address can be given to a new pod straight away.
    """
    if not pods:
        return
    by_node: dict[int, list[str]] = {}
    for p in pods:
        by_node.setdefault(p.node, []).append(f"link delete {p.host_if}")
    await asyncio.gather(*(ip_batch(cmds, addr.node_ns(n), deleting=True) for n, cmds in by_node.items()))
    await ip_batch([f"netns delete {p.ns}" for p in pods], deleting=True)
