"""The lab's cluster: Deployments, Services and endpoints, kept in kube-proxy's rules."""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import itertools
from collections.abc import Sequence

import attrs

from connreset._support.logs import get_logger
from connreset.errors import BackendError, ValidationError
from connreset.kernel.node import ExecResult
from connreset.lab import addressing as addr
from connreset.lab import plumbing, proxy
from connreset.lab.probes import NodeProber
from connreset.lab.proxier import Proxier
from connreset.lab.supervisor import Pod
from connreset.lab.workloads import argv_for
from connreset.testbed import DeploymentSpec, LogSink, PodStatus

log = get_logger("connreset.lab")


@attrs.define
class _Deployment:
    spec: DeploymentSpec
    vip: str | None
    pods: list[Pod] = attrs.field(factory=list)
    serial: itertools.count[int] = attrs.field(factory=lambda: itertools.count(1))


class LabCluster:
    """Deployments of real processes in pod namespaces, spread over the lab's nodes."""

    def __init__(self, node_names: Sequence[str], time_scale: float, kube_proxy: Proxier) -> None:
        self.node_names = list(node_names)
        self.time_scale = time_scale
        self.kube_proxy = kube_proxy
        self._deployments: dict[str, _Deployment] = {}
        self._pod_ids = itertools.count(1)
        # FIFO: a freed address is reused last, as a real IPAM would.
        self._free_slots: list[collections.deque[int]] = [
            collections.deque(range(addr.PODS_PER_NODE)) for _ in node_names
        ]
        self._vips = itertools.count(0)
        self._service_vips: dict[str, str] = {}
        self._spread = itertools.count(0)
        self._dirty = asyncio.Event()
        self._synced_gen = 0
        self._want_gen = 0
        self._sync_task: asyncio.Task[None] | None = None
        self._sync_done = asyncio.Condition()
        self._sync_error: str | None = None  # the last sync's failure, until a sync succeeds
        self._log_sink: LogSink | None = None
        self._probers: dict[int, NodeProber] = {}

    # -- the Cluster interface ----------------------------------------------------------------
    async def deploy(self, spec: DeploymentSpec) -> None:
        if spec.name in self._deployments:
            raise BackendError(f"deployment {spec.name} already exists")
        if spec.node is not None and spec.node not in self.node_names:
            raise ValidationError(
                f"deployment {spec.name}: unknown node {spec.node!r} (have {', '.join(self.node_names)})"
            )
        vip = None
        if spec.service_port:  # a Service keeps its VIP across delete and re-deploy, as in Kubernetes
            vip = self._service_vips.setdefault(spec.name, addr.service_ip(next(self._vips)))
        self._deployments[spec.name] = _Deployment(spec, vip)
        await self.scale(spec.name, spec.replicas)
        if vip:
            log.info("service", name=spec.name, vip=vip, port=spec.service_port)

    async def scale(self, deployment: str, replicas: int) -> None:
        """Add or remove pods; return when new pods have started and every node's rules match."""
        d = self._get(deployment)
        d.spec = attrs.evolve(d.spec, replicas=replicas)
        if replicas > len(d.pods):
            await self._add(d, replicas - len(d.pods))
        elif replicas < len(d.pods):
            await self._remove(d, d.pods[replicas:])
        await self.settle()

    async def pods(self, deployment: str | None = None) -> list[PodStatus]:
        if deployment is not None and deployment not in self._deployments:
            return []  # like `kubectl get pods -l app=NAME`: nothing, not an error
        ds = [self._deployments[deployment]] if deployment else list(self._deployments.values())
        return [p.status() for d in ds for p in d.pods]

    async def get(self, deployment: str) -> DeploymentSpec | None:
        d = self._deployments.get(deployment)
        return d.spec if d is not None else None

    def stream_logs(self, sink: LogSink | None) -> None:
        """Hand every new line of every pod, present and future, to ``sink``."""
        self._log_sink = sink
        for pod in self.all_pods():
            pod.log_sink = sink

    async def logs(self, pod: str) -> list[str]:
        """A pod's lines so far, earlier containers' included (``kubectl logs``)."""
        for p in self.all_pods():
            if p.name == pod:
                return list(p.logs)
        raise BackendError(f"no pod {pod}")

    async def delete(self, deployment: str) -> None:
        d = self._deployments.get(deployment)
        if d is None:
            return
        await self._remove(d, list(d.pods))
        del self._deployments[deployment]
        self._request_sync()
        await self.settle()

    async def exec(self, pod: str, argv: Sequence[str]) -> ExecResult:
        """Run argv in a pod's network namespace, like ``kubectl exec``."""
        for p in self.all_pods():
            if p.name == pod:
                code, out, err = await plumbing.nsexec(p.net.ns, argv)
                return ExecResult(tuple(argv), code, out, err)
        raise BackendError(f"no pod {pod}")

    # -- for the lab ----------------------------------------------------------------------------
    def service_addresses(self) -> dict[str, str]:
        return {n: d.vip for n, d in self._deployments.items() if d.vip}

    def all_pods(self) -> list[Pod]:
        return [p for d in self._deployments.values() for p in d.pods]

    async def shutdown(self) -> None:
        """Stop every pod's processes. Rules and namespaces go with the lab (host.teardown)."""
        if self._sync_task:
            self._sync_task.cancel()
            await asyncio.gather(self._sync_task, return_exceptions=True)
        await asyncio.gather(*(p.stop() for p in self.all_pods()), return_exceptions=True)
        self._deployments.clear()
        for prober in self._probers.values():
            prober.close()
        self._probers.clear()

    def _get(self, deployment: str) -> _Deployment:
        try:
            return self._deployments[deployment]
        except KeyError:
            raise BackendError(f"no deployment {deployment!r}") from None

    def _prober(self, node: int) -> NodeProber:
        """The node's prober (kubelet's probes come from the node's own namespace)."""
        if node not in self._probers:
            self._probers[node] = NodeProber(addr.node_ns(node))
        return self._probers[node]

    def _place(self, d: _Deployment) -> int:
        if d.spec.node is not None:
            return self.node_names.index(d.spec.node)
        return next(self._spread) % len(self.node_names)

    async def _add(self, d: _Deployment, n: int) -> None:
        nodes = {name: addr.node_ip(i) for i, name in enumerate(self.node_names)}
        argv = argv_for(d.spec.workload, self.service_addresses(), nodes)
        nets = []
        for _ in range(n):
            node = self._place(d)
            if not self._free_slots[node]:
                raise BackendError(f"{self.node_names[node]} has no free pod address")
            slot = self._free_slots[node].popleft()
            nets.append(plumbing.PodNet(next(self._pod_ids), node, addr.pod_ip(node, slot)))
        pods = [
            Pod(
                f"{d.spec.name}-{next(d.serial)}",
                d.spec.name,
                net,
                self.node_names[net.node],
                argv,
                {"POD_IP": net.ip, "POD_IPS": net.ip},
                self.time_scale,
                lambda _p: self._request_sync(),
                d.spec.liveness,
                self._prober(net.node) if d.spec.liveness is not None else None,
            )
            for net in nets
        ]
        for p in pods:
            p.log_sink = self._log_sink
        d.pods.extend(pods)
        await plumbing.add_pods(nets)
        for p in pods:
            p.start()
        # like `kubectl rollout status`: return once the new pods have started
        await asyncio.gather(*(p.started.wait() for p in pods))

    async def _remove(self, d: _Deployment, pods: list[Pod]) -> None:
        for p in pods:
            d.pods.remove(p)
        self._request_sync()
        await self.settle()  # endpoints go before the processes, as in Kubernetes
        await asyncio.gather(*(p.stop() for p in pods))
        await plumbing.remove_pods([p.net for p in pods])
        for p in pods:
            self._free_slots[p.net.node].append(_slot(p.net))

    # -- endpoint sync (kube-proxy) ---------------------------------------------------------------
    def services(self) -> list[proxy.Service]:
        out = []
        for name, d in self._deployments.items():
            if d.vip and d.spec.service_port:
                ready = tuple(p.net.ip for p in d.pods if p.phase == "Running")
                port, target = d.spec.service_port, d.spec.target_port or d.spec.service_port
                out.append(proxy.Service(name, d.vip, port, target, ready, addr.node_port(d.vip)))
        return out

    def _request_sync(self) -> None:
        self._want_gen += 1
        self._dirty.set()
        if self._sync_task is None or self._sync_task.done():
            self._sync_task = asyncio.create_task(self._sync_loop(), name="kube-proxy sync")

    async def _sync_loop(self) -> None:
        while self._dirty.is_set():
            self._dirty.clear()
            gen = self._want_gen
            try:
                await self.kube_proxy.sync(self.services())
                self._sync_error = None
            except BackendError as exc:
                self._sync_error = str(exc)
                log.error("kube-proxy sync failed", error=str(exc))
            async with self._sync_done:
                self._synced_gen = gen
                self._sync_done.notify_all()

    async def settle(self) -> None:
        """Wait until the rules on every node reflect every change made so far.

        Raises:
            BackendError: the last sync failed (the nodes' rules may be stale).
        """
        if self._want_gen != self._synced_gen:
            if self._sync_task is None or self._sync_task.done():
                self._sync_task = asyncio.create_task(self._sync_loop())
            want = self._want_gen
            async with self._sync_done:
                await self._sync_done.wait_for(lambda: self._synced_gen >= want)
        if self._sync_error is not None:
            raise BackendError(f"kube-proxy rules could not be synced: {self._sync_error}")


def _slot(net: plumbing.PodNet) -> int:
    return int(ipaddress.IPv4Address(net.ip)) - int(addr.pod_cidr(net.node).network_address) - 2
