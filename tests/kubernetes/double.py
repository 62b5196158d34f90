"""A TEST DOUBLE of the Kubernetes API server: the subset connreset.kubernetes calls, in-process.

No API server can run where these tests run, so :class:`ApiServerDouble` serves, over real HTTP
on 127.0.0.1 (aiohttp, in a thread of its own), the requests the official client makes: the
version, nodes, the kube-proxy ConfigMap, namespaces, Deployments (and their scale subresource),
Services, pods (list, watch, create, delete), pod logs (``previous``, ``follow``) and exec (a
websocket speaking the ``v4/v5.channel.k8s.io`` protocols). Every body it returns is built from
the client's own models (``ApiClient().sanitize_for_serialization(V1Pod(...))``), so shapes are
the API's. It records every request (:attr:`requests`) so tests can assert what was asked.

It simulates no controller beyond one rule: a Deployment has exactly ``replicas`` pods, created
Running on :attr:`pod_node`, with the template's labels and annotations. Watches report later pod
changes too. Tests change pod statuses (:meth:`set_pod`) and log lines (:meth:`push_log`).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections.abc import Callable
from typing import Any

import attrs
from aiohttp import WSMsgType, web
from kubernetes import client

_SERIALIZER = client.ApiClient()
BODY = web.RequestKey("body", object)
Obj = dict[str, Any]


def serialize(model: Any) -> Obj:
    out: Obj = _SERIALIZER.sanitize_for_serialization(model)
    return out


@attrs.frozen
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    content_type: str


def node(name: str, ip: str, kernel: str = "6.8.0-test", provider: str | None = None) -> Obj:
    return serialize(
        client.V1Node(
            metadata=client.V1ObjectMeta(name=name, labels={"kubernetes.io/hostname": name}),
            spec=client.V1NodeSpec(provider_id=provider),
            status=client.V1NodeStatus(
                addresses=[
                    client.V1NodeAddress(type="InternalIP", address=ip),
                    client.V1NodeAddress(type="Hostname", address=name),
                ],
                node_info=client.V1NodeSystemInfo(
                    architecture="amd64",
                    boot_id="b",
                    container_runtime_version="containerd://2.0.0",
                    kernel_version=kernel,
                    kube_proxy_version="v1.33.1",
                    kubelet_version="v1.33.1",
                    machine_id="m",
                    operating_system="linux",
                    os_image="Debian GNU/Linux 12 (bookworm)",
                    system_uuid="u",
                ),
            ),
        )
    )


def running_pod(
    name: str,
    namespace: str,
    labels: dict[str, str],
    container: str,
    node_name: str,
    annotations: dict[str, str] | None = None,
) -> Obj:
    return serialize(
        client.V1Pod(
            metadata=client.V1ObjectMeta(
                name=name, namespace=namespace, labels=labels, annotations=annotations, uid=f"uid-{name}"
            ),
            spec=client.V1PodSpec(
                node_name=node_name, containers=[client.V1Container(name=container, image="i")]
            ),
            status=client.V1PodStatus(
                phase="Running",
                pod_ip="10.244.1.7",
                container_statuses=[
                    client.V1ContainerStatus(
                        name=container,
                        image="i",
                        image_id="",
                        ready=True,
                        restart_count=0,
                        state=client.V1ContainerState(running=client.V1ContainerStateRunning()),
                    )
                ],
            ),
        )
    )


def _matches(labels: dict[str, str], selector: str) -> bool:
    for term in filter(None, selector.split(",")):
        key, eq, value = term.partition("=")
        if key not in labels or (eq and labels[key] != value):
            return False
    return True


def _status(code: int, reason: str, message: str) -> web.Response:
    body = serialize(
        client.V1Status(
            kind="Status", api_version="v1", status="Failure", reason=reason, message=message, code=code
        )
    )
    return web.json_response(body, status=code)


class ApiServerDouble:
    """TEST DOUBLE of the Kubernetes API server (see the module docstring)."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.nodes: list[Obj] = [node("kind-control-plane", "172.18.0.2"), node("kind-worker", "172.18.0.3")]
        self.kube_proxy_conf = (
            "mode: iptables\nconntrack:\n  maxPerCore: 32768\n  min: 131072\n  tcpBeLiberal: false\n"
        )
        self.namespaces: dict[str, Obj] = {}
        self.deployments: dict[tuple[str, str], Obj] = {}
        self.services: dict[tuple[str, str], Obj] = {}
        self.pods: dict[tuple[str, str], Obj] = {}
        #: (pod, previous) -> log lines the log endpoint returns
        self.logs: dict[tuple[str, bool], list[str]] = {}
        #: (pod name, command argv) -> (returncode, stdout, stderr)
        self.exec_handler: Callable[[str, list[str]], tuple[int, str, str]] = lambda pod, cmd: (0, "", "")
        #: the node a Deployment's pods are created on
        self.pod_node = "kind-worker"
        #: when True a followed log stays open (as a running container's does) and gets the lines
        #: :meth:`push_log` adds; when False it ends after the lines it has (the container ended)
        self.keep_following = False
        self.url = ""
        self._counter = itertools.count(1)
        self._changed: asyncio.Condition | None = None
        #: every pod change, in order: (namespace, ADDED/MODIFIED/DELETED, pod), for watches
        self._pod_events: list[tuple[str, str, Obj]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._closing: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    # -- what tests read -------------------------------------------------------------------------
    def calls(self, method: str, path_part: str = "") -> list[Request]:
        return [r for r in self.requests if r.method == method and path_part in r.path]

    def push_log(self, pod: str, *lines: str) -> None:
        """Append lines to a pod's current log, from any thread; open followers receive them."""
        loop = self._loop
        assert loop is not None

        async def add() -> None:
            self.logs.setdefault((pod, False), []).extend(lines)
            await self._notify()

        asyncio.run_coroutine_threadsafe(add(), loop)  # in order, without blocking the caller

    async def _notify(self) -> None:
        assert self._changed is not None
        async with self._changed:
            self._changed.notify_all()

    def _pod_event(self, namespace: str, kind: str, pod: Obj) -> None:
        """Record a pod change (on the double's loop) and wake the watches."""
        assert self._loop is not None
        self._pod_events.append((namespace, kind, pod))
        self._loop.create_task(self._notify())

    def set_pod(self, namespace: str, pod: Any) -> None:
        """Put a ``V1Pod`` as the API reports it."""
        obj = serialize(pod)
        key = (namespace, obj["metadata"]["name"])
        kind = "MODIFIED" if key in self.pods else "ADDED"
        self.pods[key] = obj
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._pod_event, namespace, kind, obj)

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        ready = threading.Event()

        def serve() -> None:
            loop = self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._closing = asyncio.Event()
            self._changed = asyncio.Condition()
            app = web.Application(middlewares=[self._record])
            app.router.add_route("*", "/{path:.*}", self._dispatch)
            self._runner = web.AppRunner(app, shutdown_timeout=1.0)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            port = self._runner.addresses[0][1]
            self.url = f"http://127.0.0.1:{port}"
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, name="api-server-double", daemon=True)
        self._thread.start()
        ready.wait()

    def stop(self) -> None:
        loop = self._loop
        assert loop is not None and self._closing is not None and self._thread is not None
        closing, changed = self._closing, self._changed

        async def close() -> None:
            closing.set()
            assert changed is not None
            async with changed:
                changed.notify_all()

        asyncio.run_coroutine_threadsafe(close(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join()

    # -- the HTTP side ---------------------------------------------------------------------------
    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body: Any = None
        if request.can_read_body:
            text = await request.text()
            body = json.loads(text) if text else None
        query = {k: request.query.getall(k) for k in request.query}
        self.requests.append(Request(request.method, request.path, query, body, request.content_type))
        request[BODY] = body
        response: web.StreamResponse = await handler(request)
        return response

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        parts = request.path.strip("/").split("/")
        method = request.method
        body = request[BODY]
        if parts == ["version"]:
            return web.json_response(
                serialize(
                    client.VersionInfo(
                        build_date="2026-01-01T00:00:00Z",
                        compiler="gc",
                        git_commit="0",
                        git_tree_state="clean",
                        git_version="v1.33.1",
                        go_version="go1.24",
                        major="1",
                        minor="33",
                        platform="linux/amd64",
                    )
                )
            )
        if parts == ["api", "v1", "nodes"]:
            return web.json_response(
                {"kind": "NodeList", "apiVersion": "v1", "metadata": {}, "items": self.nodes}
            )
        if parts == ["api", "v1", "namespaces", "kube-system", "configmaps", "kube-proxy"]:
            cm = client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name="kube-proxy", namespace="kube-system"),
                data={"config.conf": self.kube_proxy_conf},
            )
            return web.json_response(serialize(cm))
        if parts == ["api", "v1", "namespaces"] and method == "POST":
            name = body["metadata"]["name"]
            if name in self.namespaces:
                return _status(409, "AlreadyExists", f'namespaces "{name}" already exists')
            self.namespaces[name] = body
            return web.json_response(body, status=201)
        if parts[:3] == ["api", "v1", "namespaces"] and len(parts) == 4:
            return self._namespace(method, parts[3])
        if parts[:3] == ["apis", "apps", "v1"] and parts[3] == "namespaces" and parts[5] == "deployments":
            return self._deployment(method, parts[4], parts[6:], body)
        if parts[:3] == ["api", "v1", "namespaces"] and parts[4] == "services":
            return self._service(method, parts[3], parts[5:], body)
        if parts[:3] == ["api", "v1", "namespaces"] and parts[4] == "pods":
            return await self._pod(request, parts[3], parts[5:], body)
        return _status(404, "NotFound", f"the double does not serve {method} {request.path}")

    def _namespace(self, method: str, name: str) -> web.Response:
        if name not in self.namespaces:
            return _status(404, "NotFound", f'namespaces "{name}" not found')
        if method == "DELETE":
            self.namespaces.pop(name)
            for store in (self.deployments, self.services, self.pods):
                for key in [k for k in store if k[0] == name]:
                    gone = store.pop(key)
                    if store is self.pods:
                        self._pod_event(name, "DELETED", gone)
            return web.json_response(
                serialize(client.V1Status(kind="Status", api_version="v1", status="Success"))
            )
        return web.json_response(self.namespaces[name])

    def _reconcile(self, ns: str, name: str) -> None:
        dep = self.deployments[(ns, name)]
        template = dep["spec"]["template"]
        mine = [
            k
            for k, p in self.pods.items()
            if k[0] == ns and p["metadata"]["labels"].get("connreset.io/deployment") == name
        ]
        want = dep["spec"]["replicas"]
        for key in mine[want:]:
            self._pod_event(ns, "DELETED", self.pods.pop(key))
        for _ in range(want - len(mine)):
            pod_name = f"{name}-{next(self._counter)}"
            container = template["spec"]["containers"][0]["name"]
            meta = template["metadata"]
            self.pods[(ns, pod_name)] = running_pod(
                pod_name, ns, meta["labels"], container, self.pod_node, meta.get("annotations")
            )
            self._pod_event(ns, "ADDED", self.pods[(ns, pod_name)])
        dep["status"] = {"replicas": want, "readyReplicas": want, "observedGeneration": 1}

    def _deployment(self, method: str, ns: str, rest: list[str], body: Any) -> web.Response:
        if ns not in self.namespaces:
            return _status(404, "NotFound", f'namespaces "{ns}" not found')
        if not rest and method == "POST":
            key = (ns, body["metadata"]["name"])
            if key in self.deployments:
                return _status(409, "AlreadyExists", "deployment exists")
            self.deployments[key] = {**body, "metadata": {**body["metadata"], "generation": 1, "uid": "d"}}
            self._reconcile(*key)
            return web.json_response(self.deployments[key], status=201)
        key = (ns, rest[0])
        if key not in self.deployments:
            return _status(404, "NotFound", f'deployments.apps "{rest[0]}" not found')
        if rest[1:] == ["scale"] and method == "PATCH":
            self.deployments[key]["spec"]["replicas"] = body["spec"]["replicas"]
            self._reconcile(*key)
            scale = client.V1Scale(
                metadata=client.V1ObjectMeta(name=rest[0], namespace=ns),
                spec=client.V1ScaleSpec(replicas=body["spec"]["replicas"]),
            )
            return web.json_response(serialize(scale))
        if method == "DELETE":
            self.deployments[key]["spec"]["replicas"] = 0
            self._reconcile(*key)
            del self.deployments[key]
            return web.json_response(
                serialize(client.V1Status(kind="Status", api_version="v1", status="Success"))
            )
        return web.json_response(self.deployments[key])

    def _service(self, method: str, ns: str, rest: list[str], body: Any) -> web.Response:
        if not rest and method == "POST":
            self.services[(ns, body["metadata"]["name"])] = body
            return web.json_response(body, status=201)
        if method == "DELETE" and (ns, rest[0]) in self.services:
            return web.json_response(self.services.pop((ns, rest[0])))  # the API returns the Service
        return _status(404, "NotFound", "service not found")

    async def _pod(self, request: web.Request, ns: str, rest: list[str], body: Any) -> web.StreamResponse:
        method = request.method
        if not rest and method == "POST":
            key = (ns, body["metadata"]["name"])
            if key in self.pods:
                return _status(409, "AlreadyExists", "pod exists")
            created = {**body, "status": {"phase": "Running", "podIP": "172.18.0.3"}}
            self.pods[key] = created
            self._pod_event(ns, "ADDED", created)
            return web.json_response(created, status=201)
        if not rest:
            selector = request.query.get("labelSelector", "")
            items = [
                p
                for (n, _), p in self.pods.items()
                if n == ns and _matches(p["metadata"].get("labels") or {}, selector)
            ]
            if request.query.get("watch") in ("true", "True", "1"):
                return await self._watch(request, ns, selector, items)
            return web.json_response({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})
        key = (ns, rest[0])
        if key not in self.pods:
            return _status(404, "NotFound", f'pods "{rest[0]}" not found')
        if rest[1:] == ["log"]:
            return await self._log(request, rest[0])
        if rest[1:] == ["exec"]:
            return await self._exec(request, rest[0])
        if method == "DELETE":
            gone = self.pods.pop(key)
            self._pod_event(ns, "DELETED", gone)
            return web.json_response(gone)  # the API returns the Pod
        return web.json_response(self.pods[key])

    async def _watch(
        self, request: web.Request, ns: str, selector: str, items: list[Obj]
    ) -> web.StreamResponse:
        """ADDED for the pods there are, then every later change, until the client or the
        double goes."""
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        assert self._closing is not None and self._changed is not None
        seen = len(self._pod_events)
        for pod in items:
            await response.write(json.dumps({"type": "ADDED", "object": pod}).encode() + b"\n")
        while not self._closing.is_set():
            async with self._changed:
                if len(self._pod_events) == seen and not self._closing.is_set():
                    await self._changed.wait()
            new = self._pod_events[seen:]
            seen += len(new)
            for n, kind, pod in new:
                if n == ns and _matches(pod["metadata"].get("labels") or {}, selector):
                    await response.write(json.dumps({"type": kind, "object": pod}).encode() + b"\n")
        return response

    async def _log(self, request: web.Request, pod: str) -> web.StreamResponse:
        previous = request.query.get("previous") in ("true", "True")
        follow = request.query.get("follow") in ("true", "True")
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        assert self._closing is not None and self._changed is not None
        sent = 0
        while True:
            lines = list(self.logs.get((pod, previous), []))
            for line in lines[sent:]:
                await response.write(line.encode() + b"\n")
            sent = len(lines)
            if previous or not follow or not self.keep_following or self._closing.is_set():
                break
            async with self._changed:  # no line can arrive between this check and the wait
                if len(self.logs.get((pod, previous), [])) == sent and not self._closing.is_set():
                    await self._changed.wait()
        await response.write_eof()  # the container has ended: a followed log ends with it
        return response

    async def _exec(self, request: web.Request, pod: str) -> web.StreamResponse:
        ws = web.WebSocketResponse(protocols=("v5.channel.k8s.io", "v4.channel.k8s.io"))
        await ws.prepare(request)
        rc, out, err = self.exec_handler(pod, request.query.getall("command"))
        if out:
            await ws.send_bytes(b"\x01" + out.encode())
        if err:
            await ws.send_bytes(b"\x02" + err.encode())
        if rc == 0:
            status = client.V1Status(metadata=client.V1ListMeta(), status="Success")
        else:
            status = client.V1Status(
                metadata=client.V1ListMeta(),
                status="Failure",
                message=f"command terminated with non-zero exit code: exit status {rc}",
                reason="NonZeroExitCode",
                details=client.V1StatusDetails(
                    causes=[client.V1StatusCause(reason="ExitCode", message=str(rc))]
                ),
            )
        await ws.send_bytes(b"\x03" + json.dumps(serialize(status)).encode())
        await ws.close()
        async for msg in ws:  # drain until the client has gone
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR):
                break
        return ws
