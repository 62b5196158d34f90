"""The ``docker`` node access's options (``--node-opt K=V``), validated before anything runs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal

import attrs

from connreset import numbers
from connreset.errors import ValidationError

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
    """What ``--node-opt`` gives the docker node access.

    Args:
        cluster: the kind cluster's name: its nodes are the containers labelled
            ``io.x-k8s.kind.cluster=NAME``.
        host_sysctls: ``allow`` lets machine-wide sysctls (``nf_conntrack_max``,
            ``nf_conntrack_buckets``) be written through a privileged helper container in the host's
            network namespace; ``refuse`` (the default) refuses steps that need them before the run.
        docker: the ``docker`` CLI (a name looked up in ``PATH``, or a path).
        timeout: seconds a command may take when its caller gives no timeout.
    """

    cluster: str = attrs.field(validator=_cluster_name)
    host_sysctls: HostSysctls = attrs.field(
        default="refuse", validator=attrs.validators.in_(("allow", "refuse"))
    )
    docker: str = attrs.field(default="docker", validator=attrs.validators.min_len(1))
    timeout: float = attrs.field(default=60.0, validator=_positive)

    @property
    def allow_host(self) -> bool:
        return self.host_sysctls == "allow"

    @classmethod
    def from_strings(cls, options: Mapping[str, str]) -> DockerOptions:
        """Parse options as typed on the command line.

        Raises:
            ValidationError: a missing cluster, an unknown option or a bad value, naming it.
        """
        known = {f.name for f in attrs.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValidationError(
                f"docker node access: unknown option(s) {', '.join(unknown)} "
                f"(known: {', '.join(sorted(known))})"
            )
        if not options.get("cluster"):
            raise ValidationError(
                "the docker node access needs --node-opt cluster=NAME, the kind cluster whose node "
                "containers to use (`kind get clusters` lists them)"
            )
        values: dict[str, object] = dict(options)
        if "timeout" in options:
            try:
                values["timeout"] = float(options["timeout"])
            except ValueError:
                raise ValidationError(
                    f"docker option timeout must be a number, got {options['timeout']!r}"
                ) from None
        try:
            return cls(**values)  # type: ignore[arg-type]
        except (ValueError, TypeError) as exc:
            raise ValidationError(f"docker node access: {_attrs_message(exc)}") from None


def _attrs_message(exc: Exception) -> str:
    """attrs' ``in_`` validator raises ValueError(msg, attribute, options, value): keep it short."""
    if len(exc.args) == 4 and isinstance(exc.args[1], attrs.Attribute):
        name, choices, value = exc.args[1].name, exc.args[2], exc.args[3]
        return f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}"
    return str(exc.args[0]) if exc.args else str(exc)
