"""Manifests for a run: pure functions from a DeploymentSpec to Kubernetes objects (dicts).

Every object lives in the run's namespace ``connreset-<run_id>`` and carries the run label
(:data:`~connreset.testbed.cluster.RUN_LABEL`), so that ending a run (or ``connreset restore``)
deletes exactly what the run made. The built-in workloads map to images as the upstream
manifests and the blog run them:

==================  ===============================================================================
``boom-server``     ``registry.k8s.io/e2e-test-images/regression-issue-74839:1.4``, NET_RAW,
                    ``POD_IP``/``POD_IPS`` from the downward API, port 9000; its shape is
                    fixed (:func:`notes` says where a spec asks for another)
``http-server``     nginx serving ``/small-file.txt`` of ``size`` bytes (written by a busybox
                    initContainer with ``head -c``)
``curl-loop``       the blog's loop, verbatim, in a curl image
``simple-app-client``  ``connections`` such loops in one pod (``curl -sS``; ``rate`` caps them)
``nc-loop``         upstream's ``while true; do sleep 2; nc boom-server 9000& done`` in busybox
``command``         the argv, in ``image`` (busybox by default)
``manifest``        the user's own Deployment (YAML, one ``kind: Deployment`` document):
                    connreset keeps its pod template and sets the name, namespace, labels,
                    replicas and node pinning itself
==================  ===============================================================================

Each kind is rendered by one function (:func:`container`, a singledispatch); :func:`refusal` says
why a kind is not run (``udp-fill``), and the backend refuses it before anything runs. The
Service targets the workload's ``listens_on`` port.
"""

from __future__ import annotations

import functools
import json
import re
import shlex
from collections.abc import Mapping
from typing import Any

import attrs

from connreset.errors import ValidationError
from connreset.testbed import workloads as w
from connreset.testbed.cluster import RUN_LABEL, DeploymentSpec

NAMESPACE_PREFIX = "connreset-"
#: Pods of one Deployment carry this label with the Deployment's name (the Service selects it).
DEPLOYMENT_LABEL = "connreset.io/deployment"
#: The DeploymentSpec, as JSON, so that :meth:`KubernetesCluster.get` can give it back.
SPEC_ANNOTATION = "connreset.io/spec"
FILE_PATH = "/usr/share/nginx/html/small-file.txt"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

Manifest = dict[str, Any]


def _image_overrides(value: str) -> dict[str, str]:
    """``"nginx=mirror/nginx:1.27,busybox=mirror/busybox:1.36"`` → a mapping."""
    out: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        key, sep, image = item.partition("=")
        if not sep or not image:
            raise ValidationError(f"images: {item!r} is not NAME=IMAGE")
        out[key.strip().replace("-", "_")] = image.strip()
    return out


@attrs.frozen
class Images:
    """The images the built-in workloads and debug pods run; override them for registry mirrors.

    From an option string: ``images="boom_server=mirror/regression-issue-74839:1.4,nginx=..."``.
    """

    boom_server: str = "registry.k8s.io/e2e-test-images/regression-issue-74839:1.4"
    nginx: str = "nginx:1.27-alpine"
    busybox: str = "busybox:1.36"
    curl: str = "curlimages/curl:8.10.1"

    @classmethod
    def parse(cls, value: str) -> Images:
        overrides = _image_overrides(value)
        known = {a.name for a in attrs.fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValidationError(f"images: unknown {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        return cls(**overrides)


def check_run_id(run_id: str) -> str:
    """The run id, if it can name a namespace and be a label value.

    Raises:
        ValidationError: it cannot.
    """
    if not _DNS_LABEL.match(run_id) or len(NAMESPACE_PREFIX + run_id) > 63:
        raise ValidationError(
            f"run id {run_id!r} cannot name a Kubernetes namespace (lowercase letters, digits and '-', "
            f"at most {63 - len(NAMESPACE_PREFIX)} characters)"
        )
    return run_id


def namespace_name(run_id: str) -> str:
    return NAMESPACE_PREFIX + check_run_id(run_id)


def namespace(run_id: str) -> Manifest:
    """The run's namespace. Privileged under Pod Security: the boom-server adds NET_RAW, which the
    baseline profile forbids, and node debug pods are privileged."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": namespace_name(run_id),
            "labels": {
                RUN_LABEL: run_id,
                "pod-security.kubernetes.io/enforce": "privileged",
                "pod-security.kubernetes.io/warn": "privileged",
            },
        },
    }


def labels(spec: DeploymentSpec, run_id: str) -> dict[str, str]:
    return {**spec.labels, "app": spec.name, DEPLOYMENT_LABEL: spec.name, RUN_LABEL: run_id}


def selector(name: str, run_id: str) -> dict[str, str]:
    return {DEPLOYMENT_LABEL: name, RUN_LABEL: run_id}


def _url(service: str, port: int, path: str) -> str:
    host = service if port == 80 else f"{service}:{port}"
    return f"http://{host}{path}"


def _shell(image: str, script: str) -> Manifest:
    return {"image": image, "command": ["sh", "-c", script]}


#: What the upstream boom-server image does, in the lab workload's terms: it forges at
#: seq = (server's next seq) - 100000, closes each connection after 10 s, listens on 9000.
BOOM_SERVER_SHAPE = w.BoomServer(offset=-100_000, port=9000, close_after=10.0)
#: The line the in-tree boom-server image (1.4) logs on a RST, where the lab's exits.
BOOM_SERVER_RST = "ERROR: RST received"
#: Pod annotation: a regex for the line the pod logs where the lab's workload exits.
CRASH_STAND_IN = "connreset.io/crash-stand-in"


def notes(spec: DeploymentSpec) -> list[str]:
    """Where the manifests run something else than ``spec`` asks, in words (empty: nothing).

    The upstream boom-server image has a fixed shape (:data:`BOOM_SERVER_SHAPE`); a lab-only
    setting is not refused, the image's shape is used and this says so.
    """
    workload = spec.workload
    if not isinstance(workload, w.BoomServer):
        return []
    fixed = BOOM_SERVER_SHAPE
    out = []
    if workload.offset != fixed.offset:
        out.append(
            f"{spec.name}: the upstream image forges at seq-100000 (offset=-100000); "
            f"offset={workload.offset} is lab-only, the image's fixed shape is used (kernels since "
            "about 6.1 let this shape through: docs/science.md)"
        )
    if workload.close_after != fixed.close_after:
        out.append(
            f"{spec.name}: the upstream image closes after 10 s; close_after={workload.close_after:g} is "
            "lab-only"
        )
    if workload.port != fixed.port:
        out.append(f"{spec.name}: the upstream image listens on 9000; port={workload.port} is lab-only")
    out.append(
        f"{spec.name}: the upstream image logs {BOOM_SERVER_RST!r} on a RST and keeps running (the "
        "lab's exits): AssertCrashLoop counts that line as the crash"
    )
    return out


#: (the main container, the initContainers, the volumes) of a built-in workload
Rendered = tuple[Manifest, list[Manifest], list[Manifest]]


@functools.singledispatch
def container(workload: w.Workload, spec: DeploymentSpec, images: Images) -> Rendered:
    """The pod's containers and volumes for ``workload`` (registered per kind below)."""
    raise ValidationError(f"{spec.name}: {refusal(workload) or f'no Kubernetes mapping for {workload.kind}'}")


@container.register
def _(workload: w.BoomServer, spec: DeploymentSpec, images: Images) -> Rendered:
    # the image's fixed shape; notes() says where it differs
    env = [
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "POD_IPS", "valueFrom": {"fieldRef": {"fieldPath": "status.podIPs"}}},
    ]
    main = {
        "image": images.boom_server,
        "env": env,
        "ports": [{"containerPort": BOOM_SERVER_SHAPE.port, "protocol": "TCP"}],
        "securityContext": {"capabilities": {"add": ["NET_RAW"]}},
    }
    return main, [], []


@container.register
def _(workload: w.HttpServer, spec: DeploymentSpec, images: Images) -> Rendered:
    if workload.port != 80:
        raise ValidationError(f"{spec.name}: http-server port={workload.port}: the nginx image listens on 80")
    mount = {"name": "html", "mountPath": "/usr/share/nginx/html"}
    init = {
        "name": "write-file",
        **_shell(images.busybox, f"head -c {workload.size} /dev/zero > {FILE_PATH}"),
        "volumeMounts": [mount],
    }
    main = {"image": images.nginx, "ports": [{"containerPort": 80}], "volumeMounts": [mount]}
    return main, [init], [{"name": "html", "emptyDir": {}}]


@container.register
def _(workload: w.CurlLoop, spec: DeploymentSpec, images: Images) -> Rendered:
    url = _url(workload.service, workload.port, workload.path)
    script = f"while true; do curl -o file.txt {shlex.quote(url)}; done"
    return {**_shell(images.curl, script), "workingDir": "/tmp"}, [], []


@container.register
def _(workload: w.SimpleAppClient, spec: DeploymentSpec, images: Images) -> Rendered:
    if workload.hold > 0:
        raise ValidationError(f"{spec.name}: simple-app-client hold > 0 is only supported in the lab")
    url = _url(workload.service, workload.port, "/small-file.txt")
    pause = f"; sleep {workload.connections / workload.rate:.3f}" if workload.rate > 0 else ""
    loop = f"while true; do curl -sS -o /dev/null {shlex.quote(url)}{pause}; done"
    script = f"for i in $(seq {workload.connections}); do ({loop}) & done; wait"
    return _shell(images.curl, script), [], []


@container.register
def _(workload: w.NcLoop, spec: DeploymentSpec, images: Images) -> Rendered:
    script = (
        f"while true; do sleep {workload.every:g}; nc {shlex.quote(workload.service)} {workload.port}& done"
    )
    return _shell(images.busybox, script), [], []


@container.register
def _(workload: w.Command, spec: DeploymentSpec, images: Images) -> Rendered:
    main: Manifest = {"image": workload.image or images.busybox, "command": list(workload.argv)}
    if workload.port is not None:
        main["ports"] = [{"containerPort": workload.port}]
    return main, [], []


#: Kinds the Kubernetes backend does not run, with why.
REFUSED: Mapping[type[w.Workload], str] = {
    w.UdpFill: "it sends to a node's lab address; on a cluster use a command workload of your own",
    w.Opaque: "only workloads connreset describes can be deployed",
}


def refusal(workload: w.Workload) -> str | None:
    """Why the Kubernetes backend cannot run ``workload`` (None: it can)."""
    if type(workload) in REFUSED:
        return f"the kubernetes backend cannot run a {workload.kind} workload: {REFUSED[type(workload)]}"
    if isinstance(workload, w.Manifest):
        return None
    if container.dispatch(type(workload)) is container.dispatch(w.Workload):
        return f"the kubernetes backend cannot run a {workload.kind} workload: it has no mapping of that kind"
    return None


def _pin(pod_spec: Manifest, node: str | None) -> None:
    """Pin to the node by name, as the upstream e2e tests do (the scheduler still runs)."""
    if node is None:
        return
    term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
    pod_spec["affinity"] = {
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}
    }


def _spec_json(spec: DeploymentSpec) -> str:
    return json.dumps(
        {"workload": w.to_json(spec.workload), "node": spec.node, "service_port": spec.service_port},
        sort_keys=True,
    )


def _user_template(spec: DeploymentSpec, text: str) -> Manifest:
    import yaml

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationError(f"{spec.name}: manifest is not YAML: {exc}") from None
    if not isinstance(doc, dict) or doc.get("kind") != "Deployment":
        raise ValidationError(f"{spec.name}: manifest must be one `kind: Deployment` document")
    template = (doc.get("spec") or {}).get("template")
    if not isinstance(template, dict) or not isinstance(template.get("spec"), dict):
        raise ValidationError(f"{spec.name}: manifest has no spec.template.spec")
    return template


def deployment(
    spec: DeploymentSpec, run_id: str, images: Images | None = None, namespace: str | None = None
) -> Manifest:
    """The Deployment for ``spec`` in the run's namespace.

    Raises:
        ValidationError: the workload has no mapping or settings the images cannot honour.
    """
    images = images or Images()
    if spec.replicas < 0:
        raise ValidationError(f"{spec.name}: replicas must be >= 0")
    if not _DNS_LABEL.match(spec.name):
        raise ValidationError(f"{spec.name!r} cannot name a Deployment (lowercase letters, digits and '-')")
    pod_labels = labels(spec, run_id)
    workload = spec.workload
    if isinstance(workload, w.Manifest):
        template = _user_template(spec, workload.yaml)
        pod_spec = dict(template["spec"])
        template_labels = {**((template.get("metadata") or {}).get("labels") or {}), **pod_labels}
    else:
        main, init, volumes = container(workload, spec, images)
        pod_spec = {"containers": [{"name": workload.kind, **main}], "terminationGracePeriodSeconds": 5}
        if init:
            pod_spec["initContainers"] = init
        if volumes:
            pod_spec["volumes"] = volumes
        template_labels = pod_labels
    if spec.liveness is not None:  # kubelet probes the first container, from the node
        containers = [dict(c) for c in pod_spec.get("containers") or [{}]]
        containers[0]["livenessProbe"] = spec.liveness.manifest()
        pod_spec["containers"] = containers
    template_meta: Manifest = {"labels": template_labels}
    if isinstance(workload, w.BoomServer):
        template_meta["annotations"] = {CRASH_STAND_IN: BOOM_SERVER_RST}
    _pin(pod_spec, spec.node)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": spec.name,
            "namespace": namespace or namespace_name(run_id),
            "labels": pod_labels,
            "annotations": {SPEC_ANNOTATION: _spec_json(spec)},
        },
        "spec": {
            "replicas": spec.replicas,
            "selector": {"matchLabels": selector(spec.name, run_id)},
            "template": {"metadata": template_meta, "spec": pod_spec},
        },
    }


def service(spec: DeploymentSpec, run_id: str, namespace: str | None = None) -> Manifest | None:
    """The Service in front of the Deployment (named like it), or None without ``service_port``."""
    if spec.service_port is None:
        return None
    target = BOOM_SERVER_SHAPE.port if isinstance(spec.workload, w.BoomServer) else spec.target_port
    body: Manifest = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": spec.name,
            "namespace": namespace or namespace_name(run_id),
            "labels": labels(spec, run_id),
        },
        "spec": {
            "selector": selector(spec.name, run_id),
            "ports": [{"port": spec.service_port, "targetPort": target, "protocol": "TCP"}],
        },
    }
    return body


def manifests(
    spec: DeploymentSpec, run_id: str, images: Images | None = None, namespace: str | None = None
) -> list[Manifest]:
    """The Deployment and, with a ``service_port``, its Service."""
    out = [deployment(spec, run_id, images, namespace)]
    svc = service(spec, run_id, namespace)
    if svc is not None:
        out.append(svc)
    return out


def workload_from(data: Mapping[str, Any]) -> w.Workload:
    """The workload an annotation describes; an :class:`~connreset.testbed.workloads.Opaque` one
    when it is missing or not ours to read."""
    raw = data.get("workload")
    try:
        return w.from_json(raw) if isinstance(raw, Mapping) else w.Opaque()
    except ValueError:
        return w.Opaque(str(raw.get("kind", "unknown")) if isinstance(raw, Mapping) else "unknown")


def spec_from(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What :data:`SPEC_ANNOTATION` says of a Deployment (empty when it carries none)."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    try:
        data = json.loads(annotations.get(SPEC_ANNOTATION, "{}"))
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def to_yaml(objects: list[Manifest]) -> list[str]:
    """Objects as multi-document YAML, one line per list item (for ``--dry-run``)."""
    import yaml

    class _Plain(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:  # a dict used twice is written twice
            return True

    text = "---\n".join(
        yaml.dump(o, Dumper=_Plain, sort_keys=False, default_flow_style=False) for o in objects
    )
    return text.rstrip("\n").splitlines()
