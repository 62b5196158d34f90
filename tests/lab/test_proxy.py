"""kube-proxy's rules as the lab writes them (no root needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from connreset.lab import proxy


def proxy_ipvs_here() -> bool:
    from connreset.lab import proxy_ipvs

    return proxy_ipvs.missing() is None


SVC = proxy.Service("web", "198.19.128.1", 80, 80, ("198.18.4.2", "198.18.4.3", "198.18.4.4"))


def test_service_chain_balances_with_statistic_random() -> None:
    text = proxy.nat_table([SVC])
    svc = proxy.svc_chain(SVC)
    picks = [line for line in text.splitlines() if line.startswith(f"-A {svc} ") and "KUBE-SEP-" in line]
    assert len(picks) == 3
    assert "--probability 0.33333333333" in picks[0]
    assert "--probability 0.50000000000" in picks[1]
    assert "statistic" not in picks[2]


def test_endpoints_are_dnat_targets() -> None:
    text = proxy.nat_table([SVC])
    for ep in SVC.endpoints:
        assert f"-A {proxy.sep_chain(SVC, ep)} -p tcp -m tcp -j DNAT --to-destination {ep}:80" in text


def test_cluster_cidr_sources_are_not_masqueraded() -> None:
    text = proxy.nat_table([SVC])
    assert (
        f'-A {proxy.svc_chain(SVC)} -m comment --comment "default/web cluster IP" -d 198.19.128.1/32 '
        "-p tcp -m tcp --dport 80 ! -s 198.18.0.0/16 -j KUBE-MARK-MASQ" in text
    )


def test_no_invalid_drop_by_default() -> None:
    assert "INVALID" not in proxy.filter_table() + proxy.nat_table([SVC])


def test_service_without_endpoints_has_no_rules() -> None:
    empty = proxy.Service("idle", "198.19.128.2", 80, 80, ())
    assert "198.19.128.2" not in proxy.nat_table([empty])


# -- the other modes' rules, and the proxy option (no root needed) ------------------------------
NP = proxy.Service("boom", "198.19.128.1", 9000, 9000, ("198.18.4.2",), 30000)


def test_nodeports_are_masqueraded_and_matched_last_on_local_addresses() -> None:
    from connreset.lab import addressing

    text = proxy.nat_table([NP])
    ext = proxy.ext_chain(NP)
    assert f"--dport 30000 -j {ext}" in text
    assert f"-A {ext} " in text and "-j KUBE-MARK-MASQ" in text
    services = [line for line in text.splitlines() if line.startswith("-A KUBE-SERVICES ")]
    assert services[-1].endswith("-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS")
    assert addressing.node_port(addressing.service_ip(0)) == 30000
    assert addressing.node_port(addressing.service_ip(7)) == 30007


def test_the_drop_rule_only_when_asked() -> None:
    assert proxy.DROP_INVALID not in proxy.base_rules()
    assert proxy.DROP_INVALID in proxy.base_rules(drop_invalid=True)


def test_nftables_table_has_kube_proxys_chains_maps_and_no_invalid_drop() -> None:
    from connreset.lab import proxy_nft

    text = proxy_nft.ruleset([NP, SVC], "198.19.0.3")
    assert "add table ip kube-proxy" in text
    for chain, (kind, hook, prio) in proxy_nft.BASE_CHAINS.items():
        assert f"add chain ip kube-proxy {chain} {{ type {kind} hook {hook} priority {prio} ; }}" in text
    assert "add element ip kube-proxy nodeport-ips { 198.19.0.3 }" in text
    ep_chain = proxy_nft.endpoint_chain(NP, "198.18.4.2")
    assert f"add rule ip kube-proxy {ep_chain} meta l4proto tcp dnat to 198.18.4.2:9000" in text
    assert f"service-nodeports {{ tcp . 30000 : goto {proxy_nft.external_chain(NP)} }}" in text
    assert "numgen random mod 3" in text  # SVC's three endpoints
    assert "ct state invalid" not in text
    # every filter rule jumps on new connections only
    assert all(
        "ct state new" in line for line in text.splitlines() if " filter-" in line and "add rule" in line
    )


def test_ipvs_rules_have_virtual_servers_masquerading_and_no_invalid_drop() -> None:
    from connreset.lab import proxy_ipvs

    text = proxy_ipvs.ipvsadm_rules([NP], "198.19.0.3")
    assert "-A -t 198.19.128.1:9000 -s rr" in text
    assert "-a -t 198.19.128.1:9000 -r 198.18.4.2:9000 -m -w 1" in text
    assert "-A -t 198.19.0.3:30000 -s rr" in text
    rules = proxy_ipvs.rules([NP])
    assert "INVALID" not in rules
    assert "--ctstate RELATED,ESTABLISHED -j ACCEPT" in rules
    assert "-A KUBE-NODE-PORT -p tcp -m tcp --dport 30000 -j KUBE-MARK-MASQ" in rules
    assert proxy_ipvs.dummy_commands([NP], first=True) == [
        "link add kube-ipvs0 type dummy",
        "addr add 198.19.128.1/32 dev kube-ipvs0",
    ]


def test_ipvs_availability_is_read_from_proc_and_the_module_tree(tmp_path: Path) -> None:
    import shutil

    from connreset.lab import proxy_ipvs

    if shutil.which("ipvsadm") is None:
        pytest.skip("ipvsadm is not installed")
    assert "has no IPVS" in str(proxy_ipvs.missing("9.9", tmp_path))
    mods = tmp_path / "lib/modules/9.9"
    mods.mkdir(parents=True)
    (mods / "modules.dep").write_text("kernel/net/netfilter/ipvs/ip_vs.ko.xz: kernel/lib/libcrc32c.ko.xz\n")
    assert proxy_ipvs.missing("9.9", tmp_path) is None
    (tmp_path / "proc/net").mkdir(parents=True)
    (tmp_path / "proc/net/ip_vs").write_text("")
    assert proxy_ipvs.missing("0.0", tmp_path) is None


def test_the_proxy_option_is_checked_before_anything() -> None:
    from connreset.errors import ValidationError
    from connreset.lab.backend import LabBackend

    with pytest.raises(ValidationError, match=r"option proxy must be one of iptables, iptables-1\.29"):
        LabBackend(proxy="iptables-1.15")
    assert LabBackend().proxy.name == "iptables"
    backend = LabBackend(proxy="iptables-1.29")
    assert backend.fingerprint() == {"kube_proxy": backend.proxy.describe()}
    assert backend.plan_run("r") == [f"lab: kube-proxy {backend.proxy.describe()}"]


@pytest.mark.skipif(proxy_ipvs_here(), reason="this kernel has IPVS")
def test_ipvs_is_refused_in_one_line_naming_the_guest_kernel_way(capsys: pytest.CaptureFixture[str]) -> None:
    from connreset.ui.cli import main

    assert main(["lab", "up", "--cluster-opt", "proxy=ipvs"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "has no IPVS" in err and "--kernel" in err


def test_drop_invalid_is_refused_where_the_mode_has_no_such_rule() -> None:
    from connreset import ApplyFix, Experiment
    from connreset.errors import ValidationError
    from connreset.experiment.checks import check_plan
    from connreset.experiment.plan import build
    from connreset.lab import testbed

    plan = build(Experiment.single("x", ApplyFix("drop-invalid")))
    for mode in ("iptables", "iptables-1.29", "iptables-liberal"):
        tb = testbed(proxy=mode)
        check_plan(plan.phases, tb)
    tb = testbed(proxy="nftables")
    with pytest.raises(ValidationError, match="nftables mode has no INVALID-drop rule"):
        check_plan(plan.phases, tb)
    be_liberal = build(Experiment.single("x", ApplyFix("be-liberal")))
    check_plan(be_liberal.phases, tb)
