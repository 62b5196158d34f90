"""``connreset lab up|down|status``: the lab from the command line.

``up`` builds the nodes and the fabric and leaves them for inspection (no pods: pods need a
running controller). ``down`` removes everything any lab made, even one whose controller was
killed with -9, and puts the global sysctls back. ``status`` shows what exists now.
"""

from __future__ import annotations

import asyncio

from connreset.kernel import sysctl
from connreset.lab import addressing as addr
from connreset.lab import host, plumbing, proxier
from connreset.lab.errors import LabBusy


def up(nodes: int = 2, proxy: str = proxier.DEFAULT) -> str:
    kube_proxy = proxier.mode(proxy)  # refused (exit 2) before anything is touched
    host.require_root()
    lock = host.HostLock()
    lock.acquire()
    try:
        host.teardown()
        host.write_state(
            {"owner_pid": None, "made_by": "lab up", "nodes": nodes, "proxy": proxy, "sysctl_originals": {}}
        )

        async def build() -> None:
            await plumbing.build_nodes(nodes)
            await proxier.Proxier(kube_proxy, nodes).setup()

        asyncio.run(build())
    finally:
        lock.release()
    lines = [f"lab up: {nodes} node(s) on fabric {addr.FABRIC_CIDR}, kube-proxy {kube_proxy.describe()}"]
    lines += [
        f"  {addr.node_name(i)}: netns {addr.node_ns(i)}, {addr.node_ip(i)}, pods {addr.pod_cidr(i)}"
        for i in range(nodes)
    ]
    lines.append(
        "inspect with e.g. `ip netns exec crlab-node-1 iptables-save` (nftables: `nft list ruleset`, "
        "ipvs: `ipvsadm -Ln`); the next run uses these nodes "
        "(and removes them at its end); remove them now with `connreset lab down`"
    )
    return "\n".join(lines)


def down() -> str:
    host.require_root()
    if host.HostLock.held_by_other():
        raise LabBusy(
            "a lab is running (its controller holds the lock); stop it first — it cleans up "
            "after itself — or kill it and run `connreset lab down` again"
        )
    lines = host.teardown(remove_records=True)
    return "\n".join(lines) if lines else "nothing to remove: no lab namespaces, processes or changed sysctls"


def status() -> str:
    namespaces = host.lab_namespaces()
    state = host.read_state()
    running = host.HostLock.held_by_other()
    lines = [f"lab: {'running (pid ' + str(state.get('owner_pid')) + ')' if running else 'not running'}"]
    nodes = [n for n in namespaces if "node-" in n]
    pods = [n for n in namespaces if n not in nodes and n != addr.FABRIC_NS]
    lines.append(
        f"namespaces: {len(nodes)} node(s), {len(pods)} pod(s)"
        + (", fabric" if addr.FABRIC_NS in namespaces else "")
    )
    if namespaces:
        lines.append(f"processes in lab namespaces: {len(host.processes_in(namespaces))}")
        if state.get("made_by") == "lab up" and isinstance(state.get("proxy"), str):
            lines.append(f"kube-proxy (from lab up): {state['proxy']}")
    for key in ("nf_conntrack_max", "nf_conntrack_buckets"):
        name = sysctl.full_name(key)
        original = state.get("sysctl_originals", {}).get(name)
        now = host.read_global(name)
        changed = f" (changed by the lab; original {original})" if original and original != now else ""
        lines.append(f"{name} = {now}{changed}")
    records = host.watchdog_records()
    for run_id, wd_state, alive in records:
        where = host.watchdog_root() / run_id
        if alive:
            lines.append(f"watchdog of run {run_id}: {wd_state}, running ({where})")
        else:
            lines.append(
                f"watchdog of run {run_id}: {wd_state}, its record left in {where} "
                "(`connreset restore JOURNAL` reads it; `connreset lab down` removes it)"
            )
    if not running and (namespaces or state.get("sysctl_originals") or records):
        lines.append("left over from an earlier lab: run `connreset lab down`")
    return "\n".join(lines)
