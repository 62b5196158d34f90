"""kube-proxy's rules as the lab writes them (no root needed)."""

from __future__ import annotations

from connreset.lab import proxy

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
