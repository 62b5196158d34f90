"""KubernetesCluster against the API server test double (tests/kubernetes/double.py)."""

from __future__ import annotations

import asyncio

import pytest
from kubernetes import client

from connreset.errors import BackendError, ValidationError
from connreset.kubernetes.cluster import KubernetesCluster
from connreset.testbed.cluster import RUN_LABEL, ClusterBackend, DeploymentSpec
from connreset.workloads import BoomServer
from tests.kubernetes.double import ApiServerDouble

BOOM = DeploymentSpec("boom-server", BoomServer(), 1, node="kind-worker", service_port=9000)


async def opened(options: dict[str, str], run_id: str = "r1") -> KubernetesCluster:
    cluster = KubernetesCluster(**options)
    await cluster.open()
    await cluster.begin_run(run_id)
    return cluster


def test_is_a_cluster_backend(options: dict[str, str]) -> None:
    cluster = KubernetesCluster(**options)
    assert isinstance(cluster, ClusterBackend)
    assert (cluster.name, cluster.capabilities, cluster.default_node_access) == (
        "kubernetes",
        frozenset({"cluster", "logs"}),
        "kubectl-debug",
    )
    assert cluster.node_names() is None


async def test_prod_context_is_refused_before_any_request(
    options: dict[str, str], api_double: ApiServerDouble
) -> None:
    with pytest.raises(ValidationError, match="looks like production"):
        KubernetesCluster(**{**options, "context": "prod-eu"})
    with pytest.raises(ValidationError, match="explicit context"):
        KubernetesCluster(**{**options, "context": ""})
    assert api_double.requests == []


async def test_an_unknown_option_is_refused_naming_it_and_the_valid_ones(options: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match=r"no option 'colour'.*its options: context, kubeconfig"):
        KubernetesCluster(**options, colour="blue")
    with pytest.raises(ValidationError, match=r"option ready_timeout must be a number, got 'soon'"):
        KubernetesCluster(**options, ready_timeout="soon")


async def test_open_records_a_fingerprint(options: dict[str, str], api_double: ApiServerDouble) -> None:
    cluster = KubernetesCluster(**options)
    await cluster.open()
    try:
        fp = cluster.fingerprint()
        assert fp["kubernetes"] == "v1.33.1"
        assert fp["kube_proxy"] == {
            "mode": "iptables",
            "conntrack": {"maxPerCore": 32768, "min": 131072, "tcpBeLiberal": False},
        }
        assert fp["nodes"]["kind-worker"]["kernel"] == "6.8.0-test"
        nodes = await cluster.inventory()
        assert [(n.name, n.address) for n in nodes] == [
            ("kind-control-plane", "172.18.0.2"),
            ("kind-worker", "172.18.0.3"),
        ]
        assert "not-a-real-token" not in repr(fp)
    finally:
        await cluster.close()


async def test_a_run_deploys_scales_and_ends(options: dict[str, str], api_double: ApiServerDouble) -> None:
    cluster = await opened(options)
    try:
        assert api_double.namespaces["connreset-r1"]["metadata"]["labels"][RUN_LABEL] == "r1"
        [ns_create] = api_double.calls("POST", "/api/v1/namespaces")
        assert ns_create.body["metadata"]["name"] == "connreset-r1"

        await cluster.deploy(BOOM)
        [dep] = api_double.calls("POST", "/apis/apps/v1/namespaces/connreset-r1/deployments")
        assert dep.body["spec"]["template"]["spec"]["containers"][0]["image"].endswith(
            "regression-issue-74839:1.4"
        )
        [svc] = api_double.calls("POST", "/api/v1/namespaces/connreset-r1/services")
        assert svc.body["spec"]["ports"] == [{"port": 9000, "targetPort": 9000, "protocol": "TCP"}]

        with pytest.raises(BackendError, match="exists already"):
            await cluster.deploy(BOOM)

        await cluster.scale("boom-server", 3)
        [patch] = api_double.calls("PATCH", "/deployments/boom-server/scale")
        assert patch.body == {"spec": {"replicas": 3}}
        pods = await cluster.pods("boom-server")
        assert [(p.phase, p.deployment, p.node, p.restarts) for p in pods] == [
            ("Running", "boom-server", "kind-worker", 0)
        ] * 3

        got = await cluster.get("boom-server")
        assert got is not None
        assert (got.replicas, got.node, got.service_port, got.workload.name) == (
            3,
            "kind-worker",
            9000,
            "boom-server",
        )
        assert got.labels[RUN_LABEL] == "r1"
        assert await cluster.get("nothing") is None

        await cluster.delete("boom-server")
        assert api_double.calls("DELETE", "/deployments/boom-server")
        assert api_double.calls("DELETE", "/services/boom-server")
        await cluster.delete("boom-server")  # nothing left: no error

        lines = await cluster.end_run("r1")
        assert api_double.calls("DELETE", "/api/v1/namespaces/connreset-r1")
        assert lines == ["deleted namespace connreset-r1 (and everything in it)"]
        assert await cluster.end_run("r1") == ["namespace connreset-r1 was already gone"]
    finally:
        await cluster.close()


async def test_crash_loop_back_off_is_reported(options: dict[str, str], api_double: ApiServerDouble) -> None:
    cluster = await opened(options)
    try:
        await cluster.deploy(BOOM)
        labels = next(iter(api_double.pods.values()))["metadata"]["labels"]
        api_double.pods.clear()
        api_double.set_pod(
            "connreset-r1",
            client.V1Pod(
                metadata=client.V1ObjectMeta(name="boom-server-x", labels=labels),
                spec=client.V1PodSpec(
                    node_name="kind-worker", containers=[client.V1Container(name="boom-server")]
                ),
                status=client.V1PodStatus(
                    phase="Running",
                    pod_ip="10.244.1.9",
                    container_statuses=[
                        client.V1ContainerStatus(
                            name="boom-server",
                            image="i",
                            image_id="",
                            ready=False,
                            restart_count=4,
                            state=client.V1ContainerState(
                                waiting=client.V1ContainerStateWaiting(
                                    reason="CrashLoopBackOff",
                                    message="back-off 40s restarting failed container",
                                )
                            ),
                            last_state=client.V1ContainerState(
                                terminated=client.V1ContainerStateTerminated(exit_code=2, reason="Error")
                            ),
                        )
                    ],
                ),
            ),
        )
        [pod] = await cluster.pods()
        assert (pod.name, pod.phase, pod.restarts, pod.ip) == (
            "boom-server-x",
            "CrashLoopBackOff",
            4,
            "10.244.1.9",
        )
    finally:
        await cluster.close()


async def test_logs_survive_a_restart(options: dict[str, str], api_double: ApiServerDouble) -> None:
    cluster = await opened(options)
    try:
        await cluster.deploy(BOOM)
        [(ns, pod_name)] = list(api_double.pods)
        api_double.pods[(ns, pod_name)]["status"]["containerStatuses"][0]["restartCount"] = 1
        api_double.logs[(pod_name, True)] = ["connection established", "panic: RST received"]
        api_double.logs[(pod_name, False)] = ["connection established", "boom packet injected"]
        got: list[tuple[str, str, str]] = []
        all_in = asyncio.Event()

        def sink(deployment: str, pod: str, line: str) -> None:
            got.append((deployment, pod, line))
            if len(got) == 4:
                all_in.set()

        cluster.stream_logs(sink)
        async with asyncio.timeout(10):
            await all_in.wait()
        cluster.stream_logs(None)
        assert [line for *_, line in got] == [
            "connection established",
            "panic: RST received",
            "connection established",
            "boom packet injected",
        ]
        assert {(d, p) for d, p, _ in got} == {("boom-server", pod_name)}
        logs = api_double.calls("GET", f"/pods/{pod_name}/log")
        assert [r.query.get("previous", r.query.get("follow")) for r in logs] == [["true"], ["true"]]
        assert "follow" in logs[1].query
        watches = [r for r in api_double.calls("GET", "/connreset-r1/pods") if r.path.endswith("/pods")]
        assert [w.query.get("watch") for w in watches] == [["true"]]
    finally:
        await cluster.close()


async def test_dry_run_needs_no_api_server(tmp_path: object) -> None:
    cluster = KubernetesCluster(context="kind-nowhere", kubeconfig="/nonexistent/kubeconfig")
    lines = cluster.plan_deploy(BOOM)
    assert "kind: Deployment" in lines
    assert "kind: Service" in lines
    assert "  namespace: connreset-dry-run" in lines
    assert not any("token" in line for line in lines)
