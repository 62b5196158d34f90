"""The Kubernetes cluster backend: a run's workloads in a namespace of a real cluster.

``KubernetesCluster(context="kind-kind")`` acts only on a context the guard allows
(:mod:`connreset.kubernetes.guard`), and only inside the run's namespace ``connreset-<run_id>``,
which :meth:`end_run` deletes. Every API call runs in a thread (:func:`connreset.kubernetes.api.call`).
``plan_deploy`` needs no API server, so ``--dry-run`` works offline.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from connreset._support import numbers
from connreset._support.logs import get_logger
from connreset.errors import BackendError, ValidationError
from connreset.kubernetes import api, guard, manifests
from connreset.kubernetes.manifests import DEPLOYMENT_LABEL, Images
from connreset.testbed.cluster import (
    RUN_LABEL,
    BaseClusterBackend,
    DeploymentSpec,
    LogSink,
    NodeInfo,
    PodPhase,
    PodStatus,
)
from connreset.testbed.options import option
from connreset.testbed.workloads import Workload

log = get_logger(__name__)


def _positive_float(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    numbers.positive(attribute.name, value)


@attrs.frozen
class ClusterConfig:
    """The kubernetes backend's options (``--cluster-opt K=V``), validated."""

    context: str = option("", "the kubeconfig context to act on (required; the guard must allow it)")
    kubeconfig: str = option("", "kubeconfig path(s), ':'-separated (default: as kubectl)")
    allow_file: str = option("", "the guard's allow file (TOML; default ~/.config/connreset/allow.toml)")
    images: Images = option(
        attrs.Factory(Images),
        "image overrides for registry mirrors: boom_server=IMAGE,nginx=IMAGE,busybox=IMAGE,curl=IMAGE",
        parse=lambda text: Images.parse(text),
        metavar="NAME=IMAGE,...",
    )
    ready_timeout: float = option(
        300.0, "seconds a scale waits for its pods to start", validator=_positive_float
    )
    poll: float = option(1.0, "seconds between readiness checks", validator=_positive_float)
    namespace: str = option(
        "",
        "work in this existing namespace instead of making the run's own connreset-RUN_ID (the "
        "run then deletes only what carries its label there; debug pods need it to allow privileged pods)",
    )
    #: an experiment's node name → the cluster's (``node-1`` → ``kind-worker``); none: the same
    nodes: Mapping[str, str] = option(
        attrs.Factory(dict),
        "experiment node names onto the cluster's: node-1=NODE,node-2=NODE",
        parse=lambda text: _node_map(text),
        metavar="NAME=NODE,...",
    )


def _node_map(text: str) -> dict[str, str]:
    """``node-1=kind-worker,node-2=kind-worker2`` → a mapping; each side named once."""
    mapping: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        ours, sep, theirs = item.partition("=")
        if not sep or not ours.strip() or not theirs.strip():
            raise ValidationError(f"kubernetes option nodes: expected NAME=CLUSTER_NODE, got {item!r}")
        if ours.strip() in mapping or theirs.strip() in mapping.values():
            raise ValidationError(f"kubernetes option nodes: {item!r} names a node twice")
        mapping[ours.strip()] = theirs.strip()
    return mapping


def pod_phase(pod: Any) -> PodPhase:
    """The phase ``kubectl get pods`` would show, from a ``V1Pod``.

    CrashLoopBackOff when a container waits with that reason; Error when one last ended with a
    non-zero code (or the pod failed); else Running, Pending or Completed from the pod's phase.
    """
    status = pod.status
    containers = (
        [*(status.init_container_statuses or []), *(status.container_statuses or [])] if status else []
    )
    for c in containers:
        waiting = c.state.waiting if c.state else None
        if waiting is not None and waiting.reason == "CrashLoopBackOff":
            return "CrashLoopBackOff"
    for c in containers:
        terminated = c.state.terminated if c.state else None
        if terminated is not None and terminated.exit_code != 0:
            return "Error"
    phase = status.phase if status else None
    if phase == "Succeeded":
        return "Completed"
    if phase in ("Failed", "Unknown"):
        return "Error"
    if phase == "Running":
        return "Running"
    return "Pending"


def pod_status(pod: Any) -> PodStatus:
    """A ``V1Pod`` as connreset sees it; ``crash_stand_in`` from the pod's annotation (the
    boom-server image logs a RST and keeps running, where the lab's exits)."""
    meta, spec, status = pod.metadata, pod.spec, pod.status
    restarts = sum(c.restart_count or 0 for c in (status.container_statuses or [])) if status else 0
    return PodStatus(
        name=meta.name,
        deployment=(meta.labels or {}).get(DEPLOYMENT_LABEL, ""),
        node=(spec.node_name if spec else None) or "",
        ip=(status.pod_ip if status else None) or "",
        phase=pod_phase(pod),
        restarts=restarts,
        crash_stand_in=(meta.annotations or {}).get(manifests.CRASH_STAND_IN) or None,
    )


class KubernetesCluster(BaseClusterBackend):
    """Workloads on a Kubernetes cluster, through the official client.

    Options: :class:`ClusterConfig`. The context must be one the guard allows.
    """

    name = "kubernetes"
    capabilities = frozenset({"cluster", "logs"})
    default_node_access = "kubectl-debug"
    Options = ClusterConfig
    options: ClusterConfig

    def __init__(self, **options: object) -> None:
        super().__init__(**options)
        self.config = self.options
        guard.check_context(self.config.context, allow_file=self.config.allow_file or None)
        self._client: Any = None
        self._run_id: str | None = None
        self._fingerprint: dict[str, Any] = {}
        self._logs: _LogFollower | None = None
        self._sink: LogSink | None = None

    def __repr__(self) -> str:
        return f"<KubernetesCluster context={self.config.context}{' open' if self._client else ''}>"

    # -- what other modules share -----------------------------------------------------------------
    @property
    def api_client(self) -> Any:
        """The open ``ApiClient`` (the debug-pod node access uses it too)."""
        if self._client is None:
            raise BackendError("the kubernetes backend is not open")
        return self._client

    def core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.api_client)

    def apps(self) -> Any:
        from kubernetes import client

        return client.AppsV1Api(self.api_client)

    @property
    def run_id(self) -> str | None:
        return self._run_id

    @property
    def namespace(self) -> str:
        if self._run_id is None:
            raise BackendError("no run has begun on the kubernetes backend")
        return self.namespace_for(self._run_id)

    def namespace_for(self, run_id: str) -> str:
        """Where a run's objects live: the ``namespace`` option's, or the run's own."""
        return self.config.namespace or manifests.namespace_name(run_id)

    async def ensure_namespace(self, run_id: str) -> str:
        """Create the run's namespace, or accept it if it carries this run's label; its name. With
        the ``namespace`` option, that namespace must exist: nothing is created."""
        if self.config.namespace:
            name = self.config.namespace
            try:
                await api.call(f"read namespace {name}", self.core().read_namespace, name)
            except api.NotFound:
                raise BackendError(f"namespace {name} (option namespace) does not exist") from None
            return name
        body = manifests.namespace(run_id)
        name = body["metadata"]["name"]
        try:
            await api.call(f"create namespace {name}", self.core().create_namespace, body)
            log.info("namespace created", namespace=name)
        except api.Conflict:
            existing = await api.call(f"read namespace {name}", self.core().read_namespace, name)
            if (existing.metadata.labels or {}).get(RUN_LABEL) != run_id:
                raise BackendError(f"namespace {name} exists and was not made by run {run_id}") from None
        return str(name)

    def real_node(self, name: str) -> str:
        """The cluster's name for an experiment's node (``nodes=`` maps them; else the same)."""
        return self.config.nodes.get(name, name)

    def _ours(self, real: str) -> str:
        return next((ours for ours, theirs in self.config.nodes.items() if theirs == real), real)

    def _on_cluster(self, spec: DeploymentSpec) -> DeploymentSpec:
        return attrs.evolve(spec, node=self.real_node(spec.node)) if spec.node else spec

    # -- the ClusterBackend protocol --------------------------------------------------------------
    def node_names(self) -> Sequence[str] | None:
        """With ``nodes=``, the experiment's names, known before anything is opened."""
        return list(self.config.nodes) or None

    async def open(self) -> None:
        if self._client is not None:
            raise BackendError("the kubernetes backend is open already")
        cfg = self.config
        paths = await asyncio.to_thread(self._check_files)  # reads files: not on the event loop
        self._client = await asyncio.to_thread(api.load_client, cfg.context, paths)
        try:
            self._fingerprint = await self._read_fingerprint()
        except BaseException:
            await self.close()
            raise
        log.info("kubernetes backend open", context=cfg.context, version=self._fingerprint["kubernetes"])

    def _check_files(self) -> list[Path]:
        """The guard again (the allow file may have changed), then the kubeconfig; blocking."""
        cfg = self.config
        guard.check_context(cfg.context, allow_file=cfg.allow_file or None)
        paths = guard.kubeconfig_paths(cfg.kubeconfig or None)
        guard.check_kubeconfig(cfg.context, paths)
        return paths

    async def close(self) -> None:
        if self._logs is not None:
            self._logs.stop()
            self._logs = None
        client, self._client = self._client, None
        if client is not None:
            await asyncio.to_thread(client.close)

    def fingerprint(self) -> dict[str, Any]:
        """What the run ran on: the Kubernetes version, kube-proxy's mode and conntrack settings
        (from the ``kube-proxy`` ConfigMap, when the cluster has one) and each node's kernel."""
        return dict(self._fingerprint)

    async def _read_fingerprint(self) -> dict[str, Any]:
        from kubernetes import client

        version = await api.call("read version", client.VersionApi(self.api_client).get_code)
        nodes = await api.call("list nodes", self.core().list_node)
        return {
            "context": self.config.context,
            "kubernetes": version.git_version,
            "kube_proxy": await self._kube_proxy_config(),
            "nodes": {
                n.metadata.name: {
                    "kernel": n.status.node_info.kernel_version if n.status and n.status.node_info else None,
                    "os_image": n.status.node_info.os_image if n.status and n.status.node_info else None,
                    "provider_id": n.spec.provider_id if n.spec else None,
                }
                for n in nodes.items
            },
        }

    async def _kube_proxy_config(self) -> dict[str, Any] | None:
        import yaml

        try:
            cm = await api.call(
                "read configmap kube-system/kube-proxy",
                self.core().read_namespaced_config_map,
                "kube-proxy",
                "kube-system",
            )
        except BackendError as exc:  # absent (managed clusters, Cilium) or not readable
            log.info("kube-proxy configmap not read", reason=str(exc))
            return None
        try:
            conf = yaml.safe_load((cm.data or {}).get("config.conf", "")) or {}
        except yaml.YAMLError:
            return None
        if not isinstance(conf, dict):
            return None
        return {"mode": conf.get("mode") or "iptables", "conntrack": conf.get("conntrack") or {}}

    async def inventory(self) -> Sequence[NodeInfo]:
        """The cluster's nodes; with ``nodes=``, the mapped ones under the experiment's names."""
        nodes = await api.call("list nodes", self.core().list_node)
        found: dict[str, str | None] = {}
        for n in nodes.items:
            addresses = (n.status.addresses if n.status else None) or []
            found[n.metadata.name] = next((a.address for a in addresses if a.type == "InternalIP"), None)
        if not self.config.nodes:
            return [NodeInfo(name, address) for name, address in found.items()]
        missing = [theirs for theirs in self.config.nodes.values() if theirs not in found]
        if missing:
            raise BackendError(
                f"kubernetes option nodes= names {', '.join(missing)}, which the cluster does not have "
                f"(it has {', '.join(found) or 'no node'})"
            )
        return [NodeInfo(ours, found[theirs]) for ours, theirs in self.config.nodes.items()]

    async def begin_run(self, run_id: str) -> None:
        manifests.check_run_id(run_id)
        await self.ensure_namespace(run_id)
        self._run_id = run_id
        self._follow()

    async def resume_run(self, run_id: str) -> None:
        """``connreset restore``: act on an interrupted run's namespace again, creating nothing."""
        self._run_id = manifests.check_run_id(run_id)

    async def end_run(self, run_id: str) -> Sequence[str]:
        name = self.namespace_for(run_id)
        if self._run_id == run_id:
            self._run_id = None
            self._follow()  # stops
        if self.config.namespace:  # not the run's own: its objects were removed one by one
            return [f"namespace {name} is not the run's own: left as it was"]
        try:
            await api.call(
                f"delete namespace {name}",
                self.core().delete_namespace,
                name,
                propagation_policy="Background",
            )
        except api.NotFound:
            return [f"namespace {name} was already gone"]
        return [f"deleted namespace {name} (and everything in it)"]

    def _plan_run_id(self, spec: DeploymentSpec) -> str:
        return self._run_id or spec.run_id or "dry-run"

    def plan_deploy(self, spec: DeploymentSpec) -> list[str]:
        run_id = self._plan_run_id(spec)
        objects = manifests.manifests(
            self._on_cluster(spec), run_id, self.config.images, self.config.namespace or None
        )
        return manifests.to_yaml(objects)

    def refuses(self, workload: Workload) -> str | None:
        return manifests.refusal(workload)

    def deploy_notes(self, spec: DeploymentSpec) -> list[str]:
        """Where the images run something else than ``spec`` asks (the boom-server's fixed shape)."""
        return manifests.notes(spec)

    def plan_run(self, run_id: str) -> list[str]:
        """For ``--dry-run``: the guard's verdict and the run's namespace; no file is read for
        credentials and no request is made."""
        cfg = self.config
        why = guard.check_context(cfg.context, allow_file=cfg.allow_file or None)
        head = f"kubernetes  {why}; the kubeconfig is not read and no request is made for a dry run"
        if cfg.namespace:
            return [
                head,
                f"kubernetes  works in the existing namespace {cfg.namespace} (nothing is made for it)",
            ]
        return [
            head,
            "kubernetes  the run's namespace (deleted at the end with everything in it):",
            *manifests.to_yaml([manifests.namespace(run_id)]),
        ]

    async def deploy(self, spec: DeploymentSpec) -> None:
        ns = self.namespace
        run_id = self._run_id or ""
        if spec.run_id not in (None, run_id):
            raise BackendError(f"{spec.name} belongs to run {spec.run_id}, not the current run {run_id}")
        spec = self._on_cluster(spec)
        deployment = manifests.deployment(spec, run_id, self.config.images, ns)
        try:
            await api.call(
                f"create deployment {ns}/{spec.name}",
                self.apps().create_namespaced_deployment,
                ns,
                deployment,
            )
        except api.Conflict:
            raise BackendError(f"deployment {spec.name} exists already in {ns}") from None
        svc = manifests.service(spec, run_id, ns)
        if svc is not None:
            try:
                await api.call(
                    f"create service {ns}/{spec.name}", self.core().create_namespaced_service, ns, svc
                )
            except BackendError:
                await self.delete(spec.name)
                raise
        log.info("deployed", deployment=spec.name, namespace=ns, replicas=spec.replicas)

    async def scale(self, deployment: str, replicas: int) -> None:
        if replicas < 0:
            raise ValidationError(f"{deployment}: replicas must be >= 0")
        ns = self.namespace
        await api.call(
            f"scale deployment {ns}/{deployment}",
            self.apps().patch_namespaced_deployment_scale,
            deployment,
            ns,
            {"spec": {"replicas": replicas}},
        )
        log.info("scaling", deployment=deployment, replicas=replicas)
        await self._wait_started(deployment, replicas)

    async def _wait_started(self, deployment: str, replicas: int) -> None:
        """Until exactly ``replicas`` pods (not being deleted) exist and none is Pending."""
        deadline = time.monotonic() + self.config.ready_timeout
        last: tuple[int, int] | None = None
        while True:
            pods = await self._list_pods(deployment)
            live = [p for p in pods if p.metadata.deletion_timestamp is None]
            started = sum(1 for p in live if pod_phase(p) != "Pending")
            if (len(live), started) != last:
                last = (len(live), started)
                log.info("pods", deployment=deployment, want=replicas, have=len(live), started=started)
            if len(live) == replicas and started == replicas:
                return
            if time.monotonic() >= deadline:
                raise BackendError(
                    f"{deployment}: {started} of {replicas} pods started after "
                    f"{self.config.ready_timeout:g} s ({len(live)} exist)"
                )
            await asyncio.sleep(self.config.poll)

    async def get(self, deployment: str) -> DeploymentSpec | None:
        if self._run_id is None:  # before a run (the engine's preflight): its namespace is new
            return None
        ns = self.namespace
        try:
            obj = await api.call(
                f"read deployment {ns}/{deployment}", self.apps().read_namespaced_deployment, deployment, ns
            )
        except api.NotFound:
            return None
        data = manifests.spec_from(self.api_client.sanitize_for_serialization(obj))
        return DeploymentSpec(
            name=obj.metadata.name,
            workload=manifests.workload_from(data),
            replicas=obj.spec.replicas if obj.spec and obj.spec.replicas is not None else 0,
            node=data.get("node"),
            service_port=data.get("service_port"),
            labels=dict(obj.metadata.labels or {}),
        )

    async def _list_pods(self, deployment: str | None) -> list[Any]:
        ns = self.namespace
        # workload pods only (not node debug pods): they carry the deployment label
        selector = f"{RUN_LABEL}={self._run_id},{DEPLOYMENT_LABEL}"
        if deployment is not None:
            selector += f"={deployment}"
        result = await api.call(
            f"list pods in {ns}", self.core().list_namespaced_pod, ns, label_selector=selector
        )
        return list(result.items)

    async def pods(self, deployment: str | None = None) -> list[PodStatus]:
        pods = await self._list_pods(deployment)
        seen = (pod_status(p) for p in pods)
        return sorted((attrs.evolve(p, node=self._ours(p.node)) for p in seen), key=lambda s: s.name)

    async def delete(self, deployment: str) -> None:
        ns = self.namespace
        for what, fn in (
            ("deployment", self.apps().delete_namespaced_deployment),
            ("service", self.core().delete_namespaced_service),
        ):
            with contextlib.suppress(api.NotFound):
                await api.call(f"delete {what} {ns}/{deployment}", fn, deployment, ns)

    def stream_logs(self, sink: LogSink | None) -> None:
        """Hand every pod log line of the current run to ``sink``. The engine calls this before
        the run begins: the pods are followed from :meth:`begin_run` to :meth:`end_run`."""
        self._sink = sink
        self._follow()

    def _follow(self) -> None:
        """(Re)start following the run's pods, or stop when there is no sink or no run."""
        if self._logs is not None:
            self._logs.stop()
            self._logs = None
        if self._sink is None or self._run_id is None:
            return
        self._logs = _LogFollower(
            self, self.namespace, f"{RUN_LABEL}={self._run_id},{DEPLOYMENT_LABEL}", self._sink
        )
        self._logs.start()


def _shutdown(resp: Any) -> None:
    """Shut a streaming response's socket down, from any thread (urllib3 2.3+), without waiting."""
    if resp is None:
        return
    with contextlib.suppress(AttributeError, ValueError, RuntimeError, NotImplementedError, OSError):
        resp.shutdown()


class _LogFollower:
    """Threads that follow every pod's log in the namespace, container restarts included.

    One thread watches the pods; for each container start (pod, container, restart count) it
    starts one thread that follows that log to its end. A container first seen after a restart
    first gets its previous container's lines (``previous=True``). Lines reach ``sink`` in the
    event loop's thread.
    """

    def __init__(self, cluster: KubernetesCluster, namespace: str, selector: str, sink: LogSink) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.selector = selector
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None

        def deliver(deployment: str, pod: str, line: str) -> None:
            if loop is None:
                sink(deployment, pod, line)
            else:
                loop.call_soon_threadsafe(sink, deployment, pod, line)

        self._deliver: Callable[[str, str, str], None] = deliver
        self._stopped = threading.Event()
        self._seen: set[tuple[str, str, int]] = set()
        self._responses: list[Any] = []
        self._lock = threading.Lock()
        self._watch: Any = None

    def start(self) -> None:
        threading.Thread(target=self._watch_pods, name="connreset-k8s-pods", daemon=True).start()

    def stop(self) -> None:
        """Stop following, without blocking: the streams' sockets are shut down (a reader thread
        then sees the end and closes its response); closing a response here would wait for the
        reader's lock, on the event loop, until the pod writes again."""
        self._stopped.set()
        watcher = self._watch
        if watcher is not None:
            watcher.stop()
            _shutdown(getattr(watcher, "_resp", None))
        with self._lock:
            responses, self._responses = self._responses, []
        for resp in responses:
            _shutdown(resp)

    def _watch_pods(self) -> None:
        from kubernetes import watch

        core = self.cluster.core()
        while not self._stopped.is_set():
            self._watch = watch.Watch()  # type: ignore[no-untyped-call]
            try:
                for event in self._watch.stream(
                    core.list_namespaced_pod, self.namespace, label_selector=self.selector, timeout_seconds=60
                ):
                    if self._stopped.is_set():
                        return
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._follow_new(event["object"])
            except Exception as exc:
                if self._stopped.is_set():
                    return
                log.warning("pod watch failed; retrying", namespace=self.namespace, error=str(exc))
                self._stopped.wait(2.0)

    def _follow_new(self, pod: Any) -> None:
        deployment = (pod.metadata.labels or {}).get(DEPLOYMENT_LABEL, "")
        for c in (pod.status.container_statuses if pod.status else None) or []:
            started = c.state is not None and (c.state.running is not None or c.state.terminated is not None)
            key = (pod.metadata.uid or pod.metadata.name, c.name, c.restart_count or 0)
            if not started or key in self._seen:
                continue
            first_sight = not any(k[:2] == key[:2] for k in self._seen)
            self._seen.add(key)
            previous = first_sight and key[2] > 0
            threading.Thread(
                target=self._follow,
                args=(deployment, pod.metadata.name, c.name, previous),
                name=f"connreset-k8s-log-{pod.metadata.name}",
                daemon=True,
            ).start()

    def _follow(self, deployment: str, pod: str, container: str, previous: bool) -> None:
        core = self.cluster.core()
        requests = [{"previous": True}] if previous else []
        requests.append({"follow": True})
        for kwargs in requests:
            if self._stopped.is_set():
                return
            try:
                resp = core.read_namespaced_pod_log(
                    pod, self.namespace, container=container, _preload_content=False, **kwargs
                )
            except Exception as exc:
                log.info("log not readable", pod=pod, container=container, error=str(exc), **kwargs)
                continue
            with self._lock:
                self._responses.append(resp)
            try:
                pending = b""
                for chunk in resp.stream(4096, decode_content=False):
                    if self._stopped.is_set():
                        break
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        self._deliver(deployment, pod, line.decode("utf-8", "replace"))
                if pending:
                    self._deliver(deployment, pod, pending.decode("utf-8", "replace"))
            except Exception as exc:
                if not self._stopped.is_set():
                    log.info("log stream ended", pod=pod, container=container, error=str(exc))
            finally:
                with self._lock:
                    if resp in self._responses:
                        self._responses.remove(resp)
                if self._stopped.is_set():
                    resp.close()  # its socket was shut down: not for the pool
                else:
                    resp.release_conn()
