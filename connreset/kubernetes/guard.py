"""The safety guard: connreset acts only on a Kubernetes context it was told, and allowed, to use.

Rules, checked before any request is made (a refusal raises ValidationError, exit 2):

- the context is named explicitly (``context=NAME``); the kubeconfig's current context is never
  used by default;
- local contexts (``kind-*``, ``k3d-*``, ``minikube``, ``docker-desktop``) are allowed;
- any other context is allowed only when the allow file lists it;
- a name that looks like production (the words ``prod``, ``production`` or ``live``, as in
  ``prod-eu`` or ``kind-live``) is refused unless the allow file lists it, even a local one.

The allow file is TOML, by default ``~/.config/connreset/contexts.toml`` (option ``allow_file=``)::

    # contexts connreset may create namespaces, deployments and privileged debug pods in
    allow = ["staging-eu", "lab-cluster"]

The kubeconfig is found as kubectl finds it: the ``kubeconfig=`` option, else ``KUBECONFIG``
(a list of paths), else ``~/.kube/config``.
"""

from __future__ import annotations

import fnmatch
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path

from connreset.errors import ValidationError

#: Contexts that name a cluster on this machine, allowed without listing.
LOCAL_CONTEXTS = ("kind-*", "k3d-*", "minikube", "docker-desktop")
#: Words that make a context name look like production.
PRODUCTION_WORDS = frozenset({"prod", "production", "live"})
DEFAULT_ALLOW_FILE = "~/.config/connreset/contexts.toml"
DEFAULT_KUBECONFIG = "~/.kube/config"


def looks_like_production(context: str) -> bool:
    """True when one of the name's words (split on anything not a letter or digit) is prod-like."""
    return any(word in PRODUCTION_WORDS for word in re.split(r"[^a-z0-9]+", context.lower()))


def is_local(context: str) -> bool:
    return any(fnmatch.fnmatchcase(context, pattern) for pattern in LOCAL_CONTEXTS)


def allowed_contexts(allow_file: str | None = None) -> frozenset[str]:
    """The contexts the allow file lists (none when the default file does not exist).

    Raises:
        ValidationError: an explicitly named file is missing, or a file is not valid.
    """
    path = Path(allow_file or DEFAULT_ALLOW_FILE).expanduser()
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        if allow_file:
            raise ValidationError(f"allow file {path} does not exist") from None
        return frozenset()
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValidationError(f"allow file {path}: {exc}") from None
    allow = data.get("allow", [])
    if not isinstance(allow, list) or not all(isinstance(c, str) for c in allow):
        raise ValidationError(f"allow file {path}: `allow` must be a list of context names")
    return frozenset(allow)


def check_context(context: str, *, allow_file: str | None = None) -> str:
    """Refuse a context the rules do not allow; return why it is allowed.

    Raises:
        ValidationError: no context named, or the context is not allowed.
    """
    if not context:
        raise ValidationError(
            "the kubernetes backend needs an explicit context (option context=NAME); "
            "it never uses the kubeconfig's current context"
        )
    listed = allowed_contexts(allow_file)
    where = allow_file or DEFAULT_ALLOW_FILE
    if context in listed:
        return f"context {context!r} is listed in {where}"
    if looks_like_production(context):
        raise ValidationError(
            f"context {context!r} looks like production; refused unless {where} lists it (allow = [...])"
        )
    if is_local(context):
        return f"context {context!r} is a local cluster"
    raise ValidationError(
        f"context {context!r} is not a local cluster ({', '.join(LOCAL_CONTEXTS)}); "
        f"list it in {where} (allow = [...]) to use it"
    )


def kubeconfig_paths(kubeconfig: str | None = None, env: Mapping[str, str] | None = None) -> list[Path]:
    """The kubeconfig files, in kubectl's order: the option, ``KUBECONFIG``, ``~/.kube/config``."""
    env = os.environ if env is None else env
    value = kubeconfig or env.get("KUBECONFIG") or DEFAULT_KUBECONFIG
    return [Path(p).expanduser() for p in value.split(os.pathsep) if p]


def check_kubeconfig(context: str, paths: Sequence[Path]) -> None:
    """Refuse when no kubeconfig file exists or none defines ``context`` (files only, no request).

    Raises:
        ValidationError: missing files, unreadable files, or an unknown context.
    """
    import yaml

    existing = [p for p in paths if p.is_file()]
    if not existing:
        raise ValidationError(f"no kubeconfig found at {os.pathsep.join(map(str, paths))}")
    names: list[str] = []
    for path in existing:
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ValidationError(f"kubeconfig {path}: {exc}") from None
        for entry in data.get("contexts") or []:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                names.append(entry["name"])
    if context not in names:
        raise ValidationError(
            f"context {context!r} is not in the kubeconfig ({', '.join(sorted(set(names))) or 'no contexts'})"
        )
