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
``command``         busybox running the argv
==================  ===============================================================================

Any workload may instead carry a ``manifest`` setting: the YAML text of the user's own Deployment
(one document, ``kind: Deployment``). connreset keeps its pod template and sets the name,
namespace, labels, replicas and node pinning itself.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from typing import Any

import attrs

from connreset.errors import ValidationError
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


def _setting(spec: DeploymentSpec, key: str, default: Any) -> Any:
    return spec.workload.settings.get(key, default)


def _url(service: str, port: int, path: str) -> str:
    host = service if port == 80 else f"{service}:{port}"
    return f"http://{host}{path}"


def _shell(image: str, script: str) -> Manifest:
    return {"image": image, "command": ["sh", "-c", script]}


def _fixed(spec: DeploymentSpec, key: str, value: object, why: str) -> None:
    got = spec.workload.settings.get(key, value)
    if got != value:
        raise ValidationError(f"{spec.name}: {spec.workload.name} setting {key}={got!r}: {why}")


#: What the upstream boom-server image does, in the lab workload's terms: it forges at
#: seq = (server's next seq) - 100000, closes each connection after 10 s, listens on 9000.
BOOM_SERVER_SHAPE: Mapping[str, object] = {"offset": -100_000, "close_after": 10.0, "port": 9000}
#: The line the in-tree boom-server image (1.4) logs on a RST, where the lab's exits.
BOOM_SERVER_RST = "ERROR: RST received"
#: Pod annotation: a regex for the line the pod logs where the lab's workload exits.
CRASH_STAND_IN = "connreset.io/crash-stand-in"


def notes(spec: DeploymentSpec) -> list[str]:
    """Where the manifests run something else than ``spec`` asks, in words (empty: nothing).

    The upstream boom-server image has a fixed shape (:data:`BOOM_SERVER_SHAPE`); a lab-only
    setting is not refused, the image's shape is used and this says so. A user manifest runs as
    given.
    """
    if spec.workload.name != "boom-server" or "manifest" in spec.workload.settings:
        return []
    out = []
    for key, fixed in BOOM_SERVER_SHAPE.items():
        got = spec.workload.settings.get(key, fixed)
        if got == fixed:
            continue
        if key == "offset":
            out.append(
                f"{spec.name}: the upstream image forges at seq-100000 (offset=-100000); offset={got} is "
                "lab-only, the image's fixed shape is used (kernels since about 6.1 let this shape "
                "through: docs/science.md)"
            )
        elif key == "close_after":
            out.append(f"{spec.name}: the upstream image closes after 10 s; close_after={got:g} is lab-only")
        else:
            out.append(f"{spec.name}: the upstream image listens on 9000; port={got} is lab-only")
    out.append(
        f"{spec.name}: the upstream image logs {BOOM_SERVER_RST!r} on a RST and keeps running (the "
        "lab's exits): AssertCrashLoop counts that line as the crash"
    )
    return out


def _container(spec: DeploymentSpec, images: Images) -> tuple[Manifest, list[Manifest], list[Manifest]]:
    """The main container, the initContainers and the volumes of a built-in workload."""
    kind = spec.workload.name
    if kind == "boom-server":  # the image's fixed shape; notes() says where it differs
        env = [
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "POD_IPS", "valueFrom": {"fieldRef": {"fieldPath": "status.podIPs"}}},
        ]
        return (
            {
                "image": images.boom_server,
                "env": env,
                "ports": [{"containerPort": 9000, "protocol": "TCP"}],
                "securityContext": {"capabilities": {"add": ["NET_RAW"]}},
            },
            [],
            [],
        )
    if kind == "http-server":
        _fixed(spec, "port", 80, "the nginx image listens on 80")
        size = int(_setting(spec, "size", 4 * 1024 * 1024))
        if size < 0:
            raise ValidationError(f"{spec.name}: http-server size must be >= 0")
        mount = {"name": "html", "mountPath": "/usr/share/nginx/html"}
        init = {
            "name": "write-file",
            **_shell(images.busybox, f"head -c {size} /dev/zero > {FILE_PATH}"),
            "volumeMounts": [mount],
        }
        main = {"image": images.nginx, "ports": [{"containerPort": 80}], "volumeMounts": [mount]}
        return main, [init], [{"name": "html", "emptyDir": {}}]
    if kind == "curl-loop":
        url = _url(
            str(_setting(spec, "service", "nginx")),
            int(_setting(spec, "port", 80)),
            str(_setting(spec, "path", "/small-file.txt")),
        )
        script = f"while true; do curl -o file.txt {shlex.quote(url)}; done"
        return {**_shell(images.curl, script), "workingDir": "/tmp"}, [], []
    if kind == "simple-app-client":
        if float(_setting(spec, "hold", 0.0)) > 0:
            raise ValidationError(f"{spec.name}: simple-app-client hold > 0 is only supported in the lab")
        connections = int(_setting(spec, "connections", 10))
        rate = float(_setting(spec, "rate", 0.0))
        url = _url(
            str(_setting(spec, "service", "nginx")), int(_setting(spec, "port", 80)), "/small-file.txt"
        )
        pause = f"; sleep {connections / rate:.3f}" if rate > 0 else ""
        loop = f"while true; do curl -sS -o /dev/null {shlex.quote(url)}{pause}; done"
        script = f"for i in $(seq {connections}); do ({loop}) & done; wait"
        return _shell(images.curl, script), [], []
    if kind == "nc-loop":
        service = str(_setting(spec, "service", "boom-server"))
        port = int(_setting(spec, "port", 9000))
        every = float(_setting(spec, "every", 2.0))
        every_text = f"{every:g}"
        script = f"while true; do sleep {every_text}; nc {shlex.quote(service)} {port}& done"
        return _shell(images.busybox, script), [], []
    if kind == "command":
        if not spec.workload.argv:
            raise ValidationError(f"{spec.name}: command workload needs an argv")
        image = str(_setting(spec, "image", images.busybox))
        return {"image": image, "command": list(spec.workload.argv)}, [], []
    raise ValidationError(
        f"{spec.name}: workload {kind!r} has no Kubernetes mapping (give a manifest setting)"
    )


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
        {
            "workload": {
                "name": spec.workload.name,
                "argv": list(spec.workload.argv),
                "settings": dict(spec.workload.settings),
            },
            "node": spec.node,
            "service_port": spec.service_port,
        },
        default=str,
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


def deployment(spec: DeploymentSpec, run_id: str, images: Images | None = None) -> Manifest:
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
    user = spec.workload.settings.get("manifest")
    if user is not None:
        template = _user_template(spec, str(user))
        pod_spec = dict(template["spec"])
        template_labels = {**((template.get("metadata") or {}).get("labels") or {}), **pod_labels}
    else:
        main, init, volumes = _container(spec, images)
        pod_spec = {"containers": [{"name": spec.workload.name, **main}], "terminationGracePeriodSeconds": 5}
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
    if spec.workload.name == "boom-server" and user is None:
        template_meta["annotations"] = {CRASH_STAND_IN: BOOM_SERVER_RST}
    _pin(pod_spec, spec.node)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": spec.name,
            "namespace": namespace_name(run_id),
            "labels": pod_labels,
            "annotations": {SPEC_ANNOTATION: _spec_json(spec)},
        },
        "spec": {
            "replicas": spec.replicas,
            "selector": {"matchLabels": selector(spec.name, run_id)},
            "template": {"metadata": template_meta, "spec": pod_spec},
        },
    }


def service(spec: DeploymentSpec, run_id: str) -> Manifest | None:
    """The Service in front of the Deployment (named like it), or None without ``service_port``."""
    if spec.service_port is None:
        return None
    target = 9000 if spec.workload.name == "boom-server" else 80
    target = int(str(spec.workload.settings.get("target_port", target)))
    body: Manifest = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": spec.name, "namespace": namespace_name(run_id), "labels": labels(spec, run_id)},
        "spec": {
            "selector": selector(spec.name, run_id),
            "ports": [{"port": spec.service_port, "targetPort": target, "protocol": "TCP"}],
        },
    }
    affinity = spec.workload.settings.get("session_affinity")
    if affinity is not None:
        body["spec"]["sessionAffinity"] = str(affinity)
    return body


def manifests(spec: DeploymentSpec, run_id: str, images: Images | None = None) -> list[Manifest]:
    """The Deployment and, with a ``service_port``, its Service."""
    out = [deployment(spec, run_id, images)]
    svc = service(spec, run_id)
    if svc is not None:
        out.append(svc)
    return out


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
