"""A shipped experiment run end to end on the kubernetes testbed, against the API server test
double (tests/kubernetes/double.py): what it asks of the API, and that its expectations hold with
the in-tree boom-server image, which logs a RST and keeps running."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import rest

import connreset
from connreset import AssertCrashLoop, AssertLogs, Deploy, Experiment, workloads
from connreset import events as ev
from connreset.testbed import RUN_LABEL, TestbedSpec
from tests.kubernetes.double import ApiServerDouble, node

EXPERIMENTS = Path(__file__).parents[2] / "experiments"


@pytest.fixture
def two_nodes(api_double: ApiServerDouble) -> ApiServerDouble:
    """The double with the experiments' node names; followed logs stay open, as a pod's do."""
    api_double.nodes = [node("node-1", "172.18.0.2"), node("node-2", "172.18.0.3")]
    api_double.pod_node = "node-2"
    api_double.keep_following = True
    return api_double


@pytest.fixture
def http_off_the_loop() -> Iterator[list[str]]:
    """Every HTTP request the client makes; fails the request made on the event loop's thread."""
    on_loop: list[str] = []
    original = rest.RESTClientObject.request

    def request(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        try:
            asyncio.get_running_loop()
            on_loop.append(f"{method} {url} on {threading.current_thread().name}")
        except RuntimeError:
            pass
        return original(self, method, url, *args, **kwargs)

    rest.RESTClientObject.request = request  # type: ignore[method-assign]
    yield on_loop
    rest.RESTClientObject.request = original  # type: ignore[method-assign]


def boom_pod(double: ApiServerDouble) -> str:
    [name] = [
        key[1]
        for key, pod in double.pods.items()
        if pod["metadata"]["labels"].get("connreset.io/deployment") == "boom-server"
    ]
    return name


async def test_issue_74839_no_fix_holds_with_the_upstream_image(
    two_nodes: ApiServerDouble, options: dict[str, str], http_off_the_loop: list[str]
) -> None:
    """The lab's boom-server exits on a RST; the image logs `ERROR: RST received` and keeps
    running. The no-fix phase passes on the line, and says that is what it checked."""
    double = two_nodes
    lines = {  # what the boom-server writes while each step watches, as the image would
        "assert boom-server logs /boom packet injected/": ("connection established", "boom packet injected"),
        "assert boom-server logs /RST received/": ("ERROR: RST received",),
        "assert boom-server crashloop": ("connection established", "ERROR: RST received"),
    }

    def image(event: ev.Event) -> None:
        if isinstance(event, ev.StepStarted) and event.step in lines:
            double.push_log(boom_pod(double), *lines[event.step])

    plan = connreset.load(EXPERIMENTS / "issue_74839.py", {"fix": "none"})
    spec = TestbedSpec("kubernetes", "kubectl-debug", options)
    result = await connreset.run(plan, spec, subscribers=[image])

    assert result.outcome == "passed", result.steps
    found = result.findings["no-fix"]
    assert (found["injected"], found["rst"], found["crashloop"]) == (True, True, True)
    assert found["crashloop_checked"] == (
        "CrashLoopBackOff, or /ERROR: RST received/ in its logs (its pods log that and keep running)"
    )
    [deploy] = [s for s in result.steps if s.name == "deploy boom-server"]
    assert "offset=1000000 is lab-only, the image's fixed shape is used" in deploy.detail
    [pods] = [s for s in result.steps if s.name == "record boom-server state"]
    assert pods.detail == "Running, restarts 0"

    run_ns = f"connreset-{result.run_id}"
    assert double.calls("DELETE", f"/api/v1/namespaces/{run_ns}")
    assert http_off_the_loop == []

    # nothing is made outside the run's namespace, but the namespace itself; all of it labelled
    writes = [r for r in double.requests if r.method in ("POST", "PUT", "PATCH")]
    assert writes
    for r in writes:
        if r.path == "/api/v1/namespaces":
            assert r.body["metadata"]["name"] == run_ns
        else:
            assert r.path.startswith((f"/api/v1/namespaces/{run_ns}/", f"/apis/apps/v1/namespaces/{run_ns}/"))
        if r.method == "POST":
            assert r.body["metadata"]["labels"][RUN_LABEL] == result.run_id, r.path
    debug = [r for r in writes if r.path.endswith("/pods")]
    assert {r.body["spec"]["nodeName"] for r in debug} == {"node-1", "node-2"}
    assert all(r.body["metadata"]["labels"]["connreset.io/role"] == "node-debug" for r in debug)
    deletes = [r.path for r in double.requests if r.method == "DELETE"]
    assert all(
        p.startswith((f"/api/v1/namespaces/{run_ns}", f"/apis/apps/v1/namespaces/{run_ns}/")) for p in deletes
    )


async def test_the_stand_in_line_counts_only_during_the_window(
    two_nodes: ApiServerDouble, options: dict[str, str]
) -> None:
    """A RST logged before the assertion began is not a crash loop now: it fails, and says what
    it checked."""
    double = two_nodes

    def image(event: ev.Event) -> None:
        if isinstance(event, ev.StepStarted) and event.step == "rst":
            double.push_log(boom_pod(double), "ERROR: RST received")

    exp = Experiment.single(
        "stand-in",
        [
            Deploy("boom-server", workloads.boom_server(offset=-100_000), node="node-2", port=9000),
            AssertLogs("boom-server", pattern="RST received", within=10, name="rst"),
            AssertCrashLoop("boom-server", within=0.3, record="crashloop"),
        ],
    )
    result = await connreset.run(
        exp, TestbedSpec("kubernetes", "kubectl-debug", options), subscribers=[image]
    )
    assert result.outcome == "failed"
    [crash] = [s for s in result.steps if s.name == "assert boom-server crashloop"]
    assert crash.status == "failed"
    assert crash.detail.startswith(
        "boom-server: CrashLoopBackOff, or /ERROR: RST received/ in its logs (its pods log that and keep "
        "running): not seen within 0.3s (expected it)"
    )
    assert result.findings["main"]["crashloop"] is False
    [deploy] = [s for s in result.steps if s.name == "deploy boom-server"]
    assert "lab-only" not in deploy.detail  # upstream's shape: nothing to say about the offset


async def test_the_experiments_node_names_map_onto_a_kind_clusters(
    api_double: ApiServerDouble, options: dict[str, str]
) -> None:
    """kind names its nodes kind-worker, kind-worker2: with ``nodes=`` the shipped experiment runs
    unchanged, its pins and its debug pods on the mapped nodes, its findings under its own names."""
    double = api_double
    double.nodes = [node("kind-worker", "172.18.0.2"), node("kind-worker2", "172.18.0.3")]
    double.pod_node = "kind-worker2"
    double.keep_following = True
    lines = {
        "assert boom-server logs /boom packet injected/": ("connection established", "boom packet injected"),
        "assert boom-server logs /RST received/": ("ERROR: RST received",),
        "assert boom-server crashloop": ("ERROR: RST received",),
    }

    def image(event: ev.Event) -> None:
        if isinstance(event, ev.StepStarted) and event.step in lines:
            double.push_log(boom_pod(double), *lines[event.step])

    plan = connreset.load(EXPERIMENTS / "issue_74839.py", {"fix": "none"})
    mapped = {**options, "nodes": "node-1=kind-worker,node-2=kind-worker2"}
    result = await connreset.run(
        plan, TestbedSpec("kubernetes", "kubectl-debug", mapped), subscribers=[image]
    )

    assert result.outcome == "passed", result.steps
    posts = [r for r in double.requests if r.method == "POST"]
    assert {r.body["spec"]["nodeName"] for r in posts if r.path.endswith("/pods")} == {
        "kind-worker",
        "kind-worker2",
    }
    [boom] = [
        r.body
        for r in posts
        if r.path.endswith("/deployments") and r.body["metadata"]["name"] == "boom-server"
    ]
    affinity = boom["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]
    term = affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
    assert term["matchFields"][0]["values"] == ["kind-worker2"]
    assert result.findings["no-fix"]["crashloop"] is True


def test_a_mapping_to_nodes_the_cluster_lacks_or_malformed_is_refused(options: dict[str, str]) -> None:
    from connreset.errors import ValidationError
    from connreset.kubernetes.cluster import KubernetesCluster

    with pytest.raises(ValidationError, match="expected NAME=CLUSTER_NODE"):
        KubernetesCluster(**options, nodes="node-1")
    with pytest.raises(ValidationError, match="names a node twice"):
        KubernetesCluster(**options, nodes="node-1=a,node-2=a")
    assert KubernetesCluster(**options, nodes="node-1=a,node-2=b").node_names() == ["node-1", "node-2"]
