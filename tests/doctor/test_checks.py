"""The checks' verdicts from a node's facts: what the project measured, applied to one node."""

from __future__ import annotations

import pytest

from connreset.doctor import data
from connreset.doctor.checks import evaluate, recommended_max
from connreset.doctor.model import DoctorReport
from connreset.doctor.render import render
from tests.doctor.facts import DROP, LAB_RULES, STATS, facts


def verdicts(report: object) -> dict[str, str]:
    return {c.name: c.verdict for c in report.checks}  # type: ignore[attr-defined]


def test_iptables_without_the_drop_rule_and_be_liberal_0_is_exposed_on_this_kernel() -> None:
    report = evaluate(facts())
    got = verdicts(report)
    assert (got["kernel"], got["kube-proxy"], got["be_liberal"]) == ("exposed", "exposed", "exposed")
    assert report.check("kube-proxy").value == "iptables, no INVALID drop in KUBE-FORWARD"
    assert "measured on 6.18" in report.check("kernel").why
    assert "tcpBeLiberal: true" in report.check("be_liberal").fix
    assert report.exposed_to() == {"invalid-reset": "exposed"}
    assert report.verdict == "exposed"


@pytest.mark.parametrize(
    ("over", "protection"),
    [
        ({"sysctls": {"net.netfilter.nf_conntrack_tcp_be_liberal": "1"}}, "be_liberal=1"),
        (
            {
                "iptables": LAB_RULES.replace("COMMIT\n*filter", "COMMIT\n*filter").replace(
                    "-j ACCEPT\n", "-j ACCEPT\n" + DROP
                )
            },
            "drop rule",
        ),
    ],
)
def test_be_liberal_or_the_drop_rule_prevents_it(over: dict[str, object], protection: str) -> None:
    report = evaluate(facts(**over))
    assert report.exposed_to() == {}, protection
    assert report.verdict == "ok"
    assert "prevents it" in report.check("kernel").why


def test_nftables_and_ipvs_modes_have_no_drop_rule() -> None:
    nft = evaluate(facts(nft_kube_proxy=True, iptables=""))
    assert nft.check("kube-proxy").value == "nftables (this mode installs no INVALID drop)"
    assert nft.check("kube-proxy").verdict == "exposed" and "PR #122663" in nft.check("kube-proxy").why
    ipvs = evaluate(facts(ipvs=True))  # IPVS mode writes KUBE-SERVICES in iptables too
    assert ipvs.check("kube-proxy").value.startswith("ipvs")
    assert ipvs.check("kube-proxy").verdict == "exposed"


def test_kernels_before_6_1_reset_on_upstreams_shape_too() -> None:
    old = evaluate(facts(kernel="5.10.0-30-amd64")).check("kernel")
    assert old.data["below"] is True and old.data["above"] is True and old.data["measured"] == "5.10"
    new = evaluate(facts(kernel="6.12.57+deb13-amd64")).check("kernel")
    assert new.data["below"] is False and new.data["above"] is True
    unmeasured = evaluate(facts(kernel="5.4.0-200-generic")).check("kernel")  # by the rule
    assert (unmeasured.data["below"], unmeasured.data["measured"]) == (True, None)
    assert "by the rule" in unmeasured.why


def test_every_measured_kernel_resets_above_the_window() -> None:
    rows = data.exposure_rows()
    assert {r.kernel for r in rows} >= {"5.10", "6.1", "6.12", "6.18"}
    assert all(r.above for r in rows)
    assert [r.kernel for r in rows if r.below] == ["5.10"]
    assert all(r.where and r.experiments and r.source for r in rows)


def test_a_saturated_node_is_reported_with_its_drop_rate_and_the_recommended_max() -> None:
    saturated = facts(
        sysctls={"net.netfilter.nf_conntrack_max": "1200", "net.netfilter.nf_conntrack_buckets": "1200"},
        stats_before={**STATS, "entries": 1200, "drop": 100},
        stats_after={**STATS, "entries": 1200, "drop": 600},
        counts=(1200, 1200, 1200),
        new_flows=500,  # 50/s over the 10 s window
        table_full_before=3,
        table_full_after=8,
    )
    report = evaluate(saturated)
    counters, headroom, new = report.check("counters"), report.check("headroom"), report.check("new-flows")
    assert counters.verdict == "exposed" and "drop 50/s" in counters.value
    assert counters.data["drop_per_second"] == 50.0 and counters.data["drop"] == 500
    assert headroom.verdict == "exposed" and "500 packet(s)" in headroom.why
    # 50 new/s inserted + 50/s refused; the count is all TIME_WAIT of the new flows (50/s × 120 s)
    expected = recommended_max(50 + 50, 0)
    assert expected == 18000
    assert new.verdict == "at risk" and new.data["recommended_max"] == expected
    assert new.value == "50/s + 50/s refused → max ≥ 18,000"
    assert "conntrack.min: 18000" in new.fix and "maxPerCore: 9000" in new.fix  # 2 CPUs
    assert report.check("table-full").verdict == "exposed"
    assert report.exposed_to()["table-full"] == "exposed"


def test_buckets_at_max_over_8_are_at_risk_citing_the_hash_ratio_sweep() -> None:
    report = evaluate(facts(sysctls={"net.netfilter.nf_conntrack_buckets": str(262144 // 8)}))
    check = report.check("hash-ratio")
    assert check.verdict == "at risk" and check.mechanism == "hash-chains"
    assert check.data["ratio"] == 8.0
    assert "sweep_hash_ratio.py" in check.why and "docs/science.md §5" in check.why
    assert "52,429 buckets" in check.fix
    assert (
        evaluate(facts(sysctls={"net.netfilter.nf_conntrack_buckets": "52429"})).check("hash-ratio").verdict
        == "ok"
    )


def test_timeouts_against_kube_proxys_defaults() -> None:
    short = evaluate(facts(sysctls={"net.netfilter.nf_conntrack_tcp_timeout_established": "3600"}))
    assert short.check("timeouts").verdict == "at risk"
    defaults = evaluate(facts(sysctls={"net.netfilter.nf_conntrack_tcp_timeout_close_wait": "60"}))
    assert defaults.check("timeouts").verdict == "ok" and "close_wait below" in defaults.check("timeouts").why


def test_the_configmap_is_read_alongside_the_node() -> None:
    conf = {"mode": "nftables", "conntrack": {"tcpBeLiberal": True, "maxPerCore": 32768, "min": 131072}}
    report = evaluate(facts(), conf)
    assert "the ConfigMap says nftables" in report.check("kube-proxy").value
    assert "tcpBeLiberal: true, the node has 0" in report.check("be_liberal").why


def test_what_cannot_be_read_is_unknown_not_ok() -> None:
    report = evaluate(facts(kernel=None, stats_before=None, stats_after=None, counts=(), new_flows=None))
    got = verdicts(report)
    assert got["kernel"] == got["headroom"] == got["counters"] == got["new-flows"] == "unknown"


def test_the_summary_names_nodes_per_mechanism_and_one_fix() -> None:
    one = evaluate(facts())
    two = evaluate(facts(node="node-2", sysctls={"net.netfilter.nf_conntrack_tcp_be_liberal": "1"}))
    report = DoctorReport("lab", 10.0, "now", [one, two])
    assert report.exposed() == {"invalid-reset": ["node-1"]}
    assert report.exit_code == 1
    text = render(report)
    assert "node-1  (6.18.44-fc-v1252): EXPOSED" in text
    assert "exposed to invalid-reset" in text and "tcpBeLiberal: true" in text
    assert DoctorReport("lab", 10.0, "now", [two]).exit_code == 0
