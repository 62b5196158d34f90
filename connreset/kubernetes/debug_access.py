"""The ``kubectl-debug`` node access: one privileged pod per node, as ``kubectl debug node/NAME
--profile=sysadmin`` makes it, and argv run on the node through the API's exec.

The pod is privileged, in the node's network, PID and IPC namespaces, with the node's ``/``
mounted at ``/host`` and pinned by ``nodeName``; every argv runs as ``chroot /host ARGV``, so it
uses the node's own ``iptables``, ``conntrack`` and ``dmesg`` on the node's kernel. Pods live in
the run's namespace, carry the run label, are made once per node (on first use) and reused;
:meth:`end_run` (also what ``connreset restore`` calls) deletes them.

Data for stdin travels base64-encoded in the argv (decoded in the pod, piped into the chroot), so
that exec needs no stdin channel and works on every API server version; that limits it to about
96 KiB, plenty for sysctls and rule files.
"""

from __future__ import annotations

import asyncio
import base64
import fnmatch
import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from connreset._support import numbers
from connreset._support.logs import get_logger
from connreset.errors import BackendError, ValidationError
from connreset.kernel.node import ExecResult
from connreset.kubernetes import api, manifests
from connreset.kubernetes.cluster import KubernetesCluster
from connreset.testbed.access import NODE_CAPABILITIES, BaseNodeAccess
from connreset.testbed.cluster import RUN_LABEL, ClusterBackend, NodeInfo
from connreset.testbed.options import option

log = get_logger(__name__)

ROLE_LABEL = "connreset.io/role"
ROLE = "node-debug"
CONTAINER = "debugger"
MAX_STDIN = 96 * 1024


def debug_pod_name(node: str, run: str = "") -> str:
    """``node-debugger-NODE`` (as kubectl names it), shortened with a hash when too long; in a
    namespace shared with other runs, ``-RUN`` follows (the end of the run's id)."""
    tail = f"-{run[-6:]}" if run else ""
    name = f"node-debugger-{node}".lower()
    if len(name) + len(tail) <= 63 and manifests._DNS_LABEL.match(name):
        return name + tail
    digest = hashlib.sha256(node.encode()).hexdigest()[:8]
    stem = "".join(ch if ch.isalnum() or ch == "-" else "-" for ch in name[: 54 - len(tail)].lower()).strip(
        "-"
    )
    return f"{stem}-{digest}{tail}"


def debug_pod(node: str, run_id: str, image: str, namespace: str | None = None) -> manifests.Manifest:
    """The pod ``kubectl debug node/NODE --profile=sysadmin --image=IMAGE`` makes, with the run label,
    in the run's own namespace or (``namespace``) a shared one."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": debug_pod_name(node, run_id if namespace else ""),
            "namespace": namespace or manifests.namespace_name(run_id),
            "labels": {RUN_LABEL: run_id, ROLE_LABEL: ROLE},
            "annotations": {"connreset.io/node": node},
        },
        "spec": {
            "nodeName": node,
            "hostNetwork": True,
            "hostPID": True,
            "hostIPC": True,
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "tolerations": [{"operator": "Exists"}],
            "containers": [
                {
                    "name": CONTAINER,
                    "image": image,
                    # sleep as PID 1 ignores SIGTERM; a shell that traps it lets the pod go at once
                    "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 3600 & wait $!; done"],
                    "securityContext": {"privileged": True},
                    "volumeMounts": [{"name": "host-root", "mountPath": "/host"}],
                }
            ],
            "volumes": [{"name": "host-root", "hostPath": {"path": "/"}}],
        },
    }


def node_argv(argv: Sequence[str], stdin: bytes | None) -> list[str]:
    """The argv the debug container runs: ``chroot /host ARGV``, with stdin carried in base64."""
    if stdin is None:
        return ["chroot", "/host", *argv]
    if len(stdin) > MAX_STDIN:
        raise BackendError(f"kubectl-debug: stdin of {len(stdin)} bytes is over {MAX_STDIN}")
    script = 'data=$1; shift; printf %s "$data" | base64 -d | chroot /host "$@"'
    return ["sh", "-c", script, "sh", base64.b64encode(stdin).decode(), *argv]


def _returncode(status_text: str) -> int:
    """The exit code from the exec error channel's Status (``Success``, or ``NonZeroExitCode``)."""
    try:
        status = json.loads(status_text)
    except json.JSONDecodeError:
        raise BackendError(f"exec ended without a status: {status_text[:200]!r}") from None
    if status.get("status") == "Success":
        return 0
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            return int(cause.get("message", "1"))
    raise BackendError(f"exec failed: {status.get('message') or status_text[:200]}")


#: Contexts whose nodes are containers on one machine (kind, k3d): they share its kernel.
CONTAINER_NODE_CONTEXTS = ("kind-*", "k3d-*")


def container_nodes(context: str) -> bool:
    """True when the context's name says its nodes are containers sharing one machine's kernel."""
    return any(fnmatch.fnmatchcase(context, pattern) for pattern in CONTAINER_NODE_CONTEXTS)


def no_host_sysctl(where: str) -> str:
    """Why machine-wide sysctls cannot be set through debug pods on container nodes."""
    return (
        f"{where}: its nodes are containers sharing this machine's kernel, and nf_conntrack_max/"
        "nf_conntrack_buckets are machine-wide, writable only in the kernel's initial network "
        "namespace, which a debug pod on such a node does not reach; run these steps on the lab, "
        "or on a cluster of machines (see docs/kubernetes.md)"
    )


def _positive(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    numbers.positive(attribute.name, value)


@attrs.frozen
class DebugConfig:
    """The kubectl-debug node access's options (``--node-opt K=V``)."""

    image: str = option(
        "busybox:1.36",
        "the debug pods' image (needs sh, base64 and chroot)",
        validator=attrs.validators.min_len(1),
    )
    ready_timeout: float = option(120.0, "seconds a debug pod may take to start", validator=_positive)
    exec_timeout: float = option(
        60.0, "seconds an argv may take when its caller gives no timeout", validator=_positive
    )


class KubectlDebugAccess(BaseNodeAccess):
    """Node access through privileged debug pods (see the module docstring)."""

    name = "kubectl-debug"
    shares_kernel = False
    Options = DebugConfig
    options: DebugConfig

    def __init__(self, **options: object) -> None:
        super().__init__(**options)
        self.config = self.options
        self.capabilities = NODE_CAPABILITIES
        self.withheld: Mapping[str, str] = {}
        self.shares_kernel = False
        self._cluster: KubernetesCluster | None = None
        self._bound: KubernetesCluster | None = None  # known before opening (bind), for --dry-run
        self._nodes: dict[str, NodeInfo] = {}
        self._pods: dict[str, str] = {}  # node -> pod name, for the current run
        self._locks: dict[str, asyncio.Lock] = {}
        self._kind_nodes: frozenset[str] = frozenset()

    def _container_nodes(self, where: str) -> None:
        """The nodes are containers on one machine: no machine-wide sysctls, one shared kernel."""
        self.capabilities = NODE_CAPABILITIES - {"host-sysctl"}
        self.withheld = {"host-sysctl": no_host_sysctl(where)}
        self.shares_kernel = True

    def bind(self, cluster: ClusterBackend) -> None:
        """Before anything opens: a ``kind-*``/``k3d-*`` context has container nodes, so steps that
        set machine-wide sysctls are refused at validation, with the reason."""
        if isinstance(cluster, KubernetesCluster):
            self._bound = cluster
        if isinstance(cluster, KubernetesCluster) and container_nodes(cluster.config.context):
            context = cluster.config.context
            self._container_nodes(f"context {context!r} names a {context.split('-', 1)[0]} cluster")

    def plan_run(self, run_id: str) -> list[str]:
        """For ``--dry-run``: the debug pod made on a node when something first runs there."""
        return [
            "kubectl-debug  on a node's first use, a privileged debug pod (deleted at the end), as for NODE:",
            *manifests.to_yaml([debug_pod("NODE", run_id, self.config.image, self._shared())]),
        ]

    async def open(self, cluster: ClusterBackend, nodes: Sequence[NodeInfo]) -> None:
        if not isinstance(cluster, KubernetesCluster):
            raise ValidationError(
                f"the kubectl-debug node access needs the kubernetes backend, not {cluster.name}"
            )
        self._cluster = cluster
        self._nodes = {n.name: n for n in nodes}
        found = cluster.fingerprint().get("nodes", {})
        self._kind_nodes = frozenset(
            n for n, info in found.items() if str(info.get("provider_id") or "").startswith("kind://")
        )
        if self._kind_nodes:
            # a kind node is a container: its "host" is only the node container's namespaces
            self._container_nodes(f"{', '.join(sorted(self._kind_nodes))} are kind nodes")

    async def close(self) -> None:
        self._cluster = None
        self._pods.clear()

    @property
    def cluster(self) -> KubernetesCluster:
        if self._cluster is None:
            raise BackendError("the kubectl-debug node access is not open")
        return self._cluster

    async def begin_run(self, run_id: str) -> None:
        """Nothing yet: a node's debug pod is made when something first runs on it."""
        self._pods.clear()

    def _shared(self) -> str | None:
        """The cluster's ``namespace`` option: a namespace other runs share (None: the run's own)."""
        cluster = self._cluster or self._bound
        return (cluster.config.namespace or None) if cluster is not None else None

    async def end_run(self, run_id: str) -> Sequence[str]:
        ns = self.cluster.namespace_for(run_id)
        core = self.cluster.core()
        selector = f"{RUN_LABEL}={run_id},{ROLE_LABEL}={ROLE}"
        try:
            found = await api.call(
                f"list debug pods in {ns}", core.list_namespaced_pod, ns, label_selector=selector
            )
        except api.NotFound:
            return []
        lines = []
        for pod in found.items:
            try:
                await api.call(
                    f"delete pod {ns}/{pod.metadata.name}", core.delete_namespaced_pod, pod.metadata.name, ns
                )
            except api.NotFound:
                continue
            lines.append(f"deleted debug pod {ns}/{pod.metadata.name} on {pod.spec.node_name}")
        self._pods.clear()
        return lines

    async def _pod(self, node: str) -> str:
        """The node's debug pod for the current run, made and waited for on first use."""
        if node in self._pods:
            return self._pods[node]
        if self._nodes and node not in self._nodes:
            raise ValidationError(f"unknown node {node!r}; have {', '.join(self._nodes)}")
        lock = self._locks.setdefault(node, asyncio.Lock())
        async with lock:
            if node in self._pods:
                return self._pods[node]
            cluster = self.cluster
            run_id = cluster.run_id
            if run_id is None:
                raise BackendError("kubectl-debug: no run has begun (debug pods belong to a run)")
            ns = cluster.namespace_for(run_id)
            body = debug_pod(cluster.real_node(node), run_id, self.config.image, self._shared())
            name = body["metadata"]["name"]
            try:
                await api.call(
                    f"create debug pod {ns}/{name}", cluster.core().create_namespaced_pod, ns, body
                )
                log.info("debug pod created", node=node, pod=name)
            except api.Conflict:
                pass  # made earlier in this run: reuse it
            await self._wait_running(ns, name)
            self._pods[node] = str(name)
            return str(name)

    async def _wait_running(self, ns: str, name: str) -> None:
        deadline = time.monotonic() + self.config.ready_timeout
        core = self.cluster.core()
        while True:
            pod = await api.call(f"read pod {ns}/{name}", core.read_namespaced_pod, name, ns)
            phase = pod.status.phase if pod.status else None
            if phase == "Running":
                return
            if phase in ("Failed", "Succeeded"):
                raise BackendError(f"debug pod {ns}/{name} ended ({phase})")
            if time.monotonic() >= deadline:
                raise BackendError(f"debug pod {ns}/{name} not running after {self.config.ready_timeout:g} s")
            await asyncio.sleep(1.0)

    async def exec(
        self,
        node: str,
        argv: Sequence[str],
        *,
        host: bool = False,
        stdin: bytes | None = None,
        timeout: float | None = None,
    ) -> ExecResult:
        """Run argv on the node (``chroot /host``). A node that is a machine has one network
        namespace, so ``host`` changes nothing, except on kind, where it is refused."""
        if host and "host-sysctl" in self.withheld:
            raise BackendError(
                f"{node} is a kind node (a container): machine-wide sysctls can only be set on the host "
                "running kind (see docs/kubernetes.md)"
            )
        pod = await self._pod(node)
        ns = self.cluster.namespace
        command = node_argv(argv, stdin)
        limit = timeout or self.config.exec_timeout
        rc, out, err = await api.call(
            f"exec on {node}", _run_exec, self.cluster.api_client.configuration, ns, pod, command, limit
        )
        return ExecResult(tuple(argv), rc, out, err)


def _run_exec(
    configuration: Any, namespace: str, pod: str, command: list[str], timeout: float
) -> tuple[int, str, str]:
    """Blocking: one exec through the API's websocket, on a client of its own (``stream`` swaps
    the client's transport while it runs, which must not race with other calls)."""
    from kubernetes import client
    from kubernetes.stream import stream

    with client.ApiClient(configuration=configuration) as own:
        ws = stream(
            client.CoreV1Api(own).connect_get_namespaced_pod_exec,
            pod,
            namespace,
            command=command,
            container=CONTAINER,
            stdin=False,
            stdout=True,
            stderr=True,
            tty=False,
            _preload_content=False,
        )
        try:
            ws.run_forever(timeout=timeout)
            if ws.is_open():
                raise BackendError(f"exec in {namespace}/{pod} did not finish within {timeout:g} s")
            out = ws.read_channel(1)
            err = ws.read_channel(2)
            status = ws.read_channel(3)
        finally:
            ws.close()
    return _returncode(status), out, err
