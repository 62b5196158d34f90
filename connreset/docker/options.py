"""The ``docker`` node access's options (``--node-opt K=V``), validated before anything runs."""

from __future__ import annotations

import re
from typing import Literal

import attrs

from connreset._support import numbers
from connreset.testbed.options import option

#: kind accepts cluster names that are DNS labels; be as lenient as the label value allows.
_CLUSTER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")

HostSysctls = Literal["allow", "refuse"]


def _cluster_name(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not _CLUSTER.match(value):
        raise ValueError(
            f"cluster must be a kind cluster name (letters, digits, '.', '_', '-'), got {value!r}; "
            "see `kind get clusters`"
        )


def _positive(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    numbers.positive(attribute.name, value)


@attrs.frozen
class DockerOptions:
    """What ``--node-opt`` gives the docker node access."""

    cluster: str = option(
        help="the kind cluster's name: its nodes are the containers labelled io.x-k8s.kind.cluster=NAME "
        "(required; `kind get clusters` lists them)",
        validator=_cluster_name,
    )
    host_sysctls: HostSysctls = option(
        "refuse",
        "allow: write machine-wide sysctls (nf_conntrack_max/buckets) through a privileged helper "
        "container in the host's network namespace; refuse: refuse steps that need them",
        validator=attrs.validators.in_(("allow", "refuse")),
    )
    docker: str = option(
        "docker", "the docker CLI: a name looked up in PATH, or a path", validator=attrs.validators.min_len(1)
    )
    timeout: float = option(
        60.0, "seconds a command may take when its caller gives no timeout", validator=_positive
    )

    @property
    def allow_host(self) -> bool:
        return self.host_sysctls == "allow"
