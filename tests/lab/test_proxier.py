"""kube-proxy's modes on the lab (the ``proxy`` option), on the real kernel. Needs root."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from connreset import Call, Deploy, Experiment, Phase, StepContext, run, workloads
from connreset.experiment.loader import load, run_file
from connreset.lab import addressing
from connreset.lab import testbed as lab

pytestmark = pytest.mark.root
ROOT = Path(__file__).parent.parent.parent
ISSUE = ROOT / "experiments/issue_74839.py"


async def test_nftables_without_a_fix_resets_and_be_liberal_prevents_it() -> None:
    """v1.33's nftables mode has no INVALID drop: exposed as kube-proxy before v1.15 was."""
    for fix, rst in (("none", True), ("be-liberal", False)):
        loaded = load(ISSUE, raw={"fix": fix, "every": "1", "window": "6"})
        result = await run(loaded, lab(time_scale=0.1, proxy="nftables"))
        assert result.passed, [s for s in result.steps if s.status != "ok"]
        phase = "no-fix" if fix == "none" else f"fix-{fix}"
        assert (result.findings[phase]["injected"], result.findings[phase]["rst"]) == (True, rst)


async def test_iptables_1_29_has_the_drop_rule_on_a_strict_node_and_no_reset() -> None:
    rules: dict[str, str] = {}

    async def save(ctx: StepContext) -> None:
        for node in ctx.nodes():
            rules[node.name] = (await node.exec(["iptables-save", "-t", "filter"])).stdout

    no_fix = run_file(ISSUE).phase("none", 1_000_000, 1.0, 6.0, False)
    exp = Experiment("issue-74839", [Phase("rules", [Call(save)]), no_fix])
    result = await run(exp, lab(time_scale=0.1, proxy="iptables-1.29"))
    assert result.passed, [s for s in result.steps if s.status != "ok"]
    assert set(rules) == {"node-1", "node-2"}
    for text in rules.values():
        assert "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP" in text
    assert result.findings["no-fix"]["injected"] is True
    assert result.findings["no-fix"]["rst"] is False


async def test_the_default_is_iptables_before_1_15_and_resets() -> None:
    seen: dict[str, str] = {}

    async def save(ctx: StepContext) -> None:
        seen["rules"] = (await ctx.nodes(["node-1"])[0].exec(["iptables-save"])).stdout

    no_fix = run_file(ISSUE).phase("none", 1_000_000, 1.0, 6.0, True)
    result = await run(Experiment("issue-74839", [Phase("rules", [Call(save)]), no_fix]), lab(time_scale=0.1))
    assert result.passed, [s for s in result.steps if s.status != "ok"]
    assert result.findings["no-fix"]["rst"] is True
    assert "INVALID" not in seen["rules"] and "KUBE-SERVICES" in seen["rules"]


async def test_nftables_mode_writes_kube_proxys_table_with_the_services_dnat() -> None:
    """``ip netns exec crlab-node-1 nft -j list ruleset`` while the lab is up: the chains, maps
    and the DNAT to the endpoint (asserted on the JSON, not on a text snapshot)."""
    seen: dict[str, object] = {}

    async def ruleset(ctx: StepContext) -> None:
        out = subprocess.run(
            ["ip", "netns", "exec", "crlab-node-1", "nft", "-j", "list", "ruleset"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        seen["nft"] = json.loads(out)["nftables"]
        seen["vip"] = ctx.cluster.service_addresses()["web"]  # type: ignore[attr-defined]
        seen["ep"] = [p.ip for p in await ctx.cluster.pods("web")]
        seen["iptables"] = subprocess.run(
            ["ip", "netns", "exec", "crlab-node-1", "iptables-save"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    exp = Experiment.single(
        "nft",
        Deploy("web", workloads.command(["sleep", "infinity"]), node="node-2", port=80) >> Call(ruleset),
    )
    result = await run(exp, lab(proxy="nftables"))
    assert result.passed, result.steps
    items: list[dict[str, dict[str, object]]] = seen["nft"]  # type: ignore[assignment]
    tables = [i["table"] for i in items if "table" in i]
    assert [(t["family"], t["name"]) for t in tables] == [("ip", "kube-proxy")]
    chains = {str(c["name"]): c for c in (i["chain"] for i in items if "chain" in i)}
    hooks = {name: (c.get("type"), c.get("hook")) for name, c in chains.items() if "hook" in c}
    assert hooks["nat-prerouting"] == ("nat", "prerouting")
    assert hooks["nat-output"] == ("nat", "output")
    assert hooks["nat-postrouting"] == ("nat", "postrouting")
    assert hooks["filter-forward"] == ("filter", "forward")
    assert {"services", "mark-for-masquerade", "masquerading"} <= set(chains)
    (svc_chain,) = [n for n in chains if n.startswith("service-") and "/web/" in n]
    (ep_chain,) = [n for n in chains if n.startswith("endpoint-") and "/web/" in n]
    maps = {str(m["name"]): m for m in (i["map"] for i in items if "map" in i)}
    assert {"service-ips", "service-nodeports", "no-endpoint-services"} <= set(maps)
    rules = [i["rule"] for i in items if "rule" in i]
    (ep,) = seen["ep"]  # type: ignore[misc]
    dnat = [
        e["dnat"]
        for r in rules
        if r["chain"] == ep_chain
        for e in r["expr"]  # type: ignore[attr-defined]
        if isinstance(e, dict) and "dnat" in e
    ]
    assert dnat == [{"addr": ep, "port": 80, "family": "ip"}] or [(d["addr"], d["port"]) for d in dnat] == [
        (ep, 80)
    ]
    svc_map = json.dumps(maps["service-ips"].get("elem", []))
    assert str(seen["vip"]) in svc_map and svc_chain in svc_map
    # nftables mode: no INVALID drop anywhere, and no iptables rules of kube-proxy's
    assert '"invalid"' not in json.dumps(rules)
    assert "KUBE-" not in str(seen["iptables"])


async def test_proxy_modes_experiment_on_the_lab_nodeport_goes_through_node_3() -> None:
    """experiments/proxy_modes.py, one fix and shape: both paths reset in the default mode, and
    the NodePort connection is NATed on node-3 (its conntrack has the NodePort's entry)."""
    seen: dict[str, str] = {}
    node_port = addressing.node_port(addressing.service_ip(0))

    async def conntrack(ctx: StepContext) -> None:
        node3 = ctx.nodes(["node-3"])[0]
        seen["ct"] = (
            await node3.exec(["conntrack", "-L", "-p", "tcp", "--orig-port-dst", str(node_port)])
        ).stdout

    mod = run_file(ROOT / "experiments/proxy_modes.py")
    phases = [mod.phase("none", 1_000_000, p, 0.5, 5.0) for p in ("clusterip", "nodeport")]
    exp = Experiment("proxy-modes", [*phases, Phase("conntrack", [Call(conntrack)])])
    result = await run(exp, lab(time_scale=0.1, nodes=3))
    assert result.passed, [s for s in result.steps if s.status != "ok"]
    for name in ("none.p1000000.clusterip", "none.p1000000.nodeport"):
        assert (result.findings[name]["injected"], result.findings[name]["rst"]) == (True, True)
    assert f"dport={node_port}" in seen["ct"]
    assert f"dst={addressing.node_ip(2)}" in seen["ct"]


async def test_a_run_adopting_nodes_lab_up_left_in_another_mode_sets_up_its_own() -> None:
    """``lab up --cluster-opt proxy=nftables-liberal``, then a default run adopts the nodes: no
    kube-proxy table of nftables' is left, iptables' rules are there, be_liberal is back to 0."""
    import sys

    up = subprocess.run(
        [sys.executable, "-m", "connreset", "lab", "up", "--cluster-opt", "proxy=nftables-liberal"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert up.returncode == 0, up.stderr
    assert "kube-proxy nftables-liberal" in up.stdout
    seen: dict[str, str] = {}
    async with lab() as tb:
        node = tb.node("node-1")
        seen["nft"] = (await node.exec(["nft", "list", "tables"])).stdout
        seen["be_liberal"] = await node.read_sysctl("net.netfilter.nf_conntrack_tcp_be_liberal")
        seen["iptables"] = (await node.exec(["iptables-save", "-t", "nat"])).stdout
    assert "kube-proxy" not in seen["nft"]
    assert seen["be_liberal"] == "0"
    assert "KUBE-SERVICES" in seen["iptables"]
