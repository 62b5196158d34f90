"""What a pod runs: one frozen, validated class per workload kind.

Every backend renders the kinds it supports (the lab to an argv, Kubernetes to a container) and
refuses the others with a reason before anything runs
(:meth:`connreset.testbed.ClusterBackend.refuses`). Each kind has one default per field, here
and nowhere else, and round-trips to JSON through its ``kind`` name (:func:`to_json`,
:func:`from_json`), for the journal and the Kubernetes annotation.

``listens_on`` is the port a workload's process listens on: the port its Service targets, on
every backend (None: a client, which no Service targets).

The friendly front is :mod:`connreset.workloads` (``workloads.boom_server(offset=...)``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from connreset._support import numbers

#: kind name -> class, filled by every subclass of :class:`Workload`
KINDS: dict[str, type[Workload]] = {}

MiB = 1024 * 1024


def _port(_: object, attribute: attrs.Attribute[Any], value: int) -> None:
    numbers.whole(attribute.name, value, 1, 65535)


def _port_or_none(_: object, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None:
        numbers.whole(attribute.name, value, 1, 65535)


def _whole(minimum: int) -> Any:
    def check(_: object, attribute: attrs.Attribute[Any], value: int) -> None:
        numbers.whole(attribute.name, value, minimum)

    return check


def _non_negative(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    numbers.non_negative(attribute.name, value)


def _text(_: object, attribute: attrs.Attribute[Any], value: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{attribute.name} must be a non-empty string, got {value!r}")


def _argv(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        raise ValueError(f"argv must be a list of strings, not one string: {value!r}")
    return tuple(value)


def _non_empty_argv(_: object, attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    if not value or not all(isinstance(a, str) for a in value):
        raise ValueError(f"command workload needs a non-empty argv of strings, got {list(value)!r}")


@attrs.frozen
class Workload:
    """Base of every workload kind. ``kind`` names it in JSON and in messages."""

    kind: ClassVar[str] = "workload"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            KINDS[cls.kind] = cls

    @property
    def name(self) -> str:
        """The kind's name (what a Deploy step's detail shows)."""
        return self.kind

    @property
    def listens_on(self) -> int | None:
        """The port the process listens on, which a Service targets (None: none)."""
        return None


@attrs.frozen
class Command(Workload):
    """Any argv as the pod's process (the lab: in the pod's network namespace; Kubernetes: in
    ``image``, busybox by default). ``port``: where it listens, for a Service in front of it."""

    kind: ClassVar[str] = "command"

    argv: tuple[str, ...] = attrs.field(converter=_argv, validator=_non_empty_argv)
    image: str | None = None
    port: int | None = attrs.field(default=None, validator=_port_or_none)

    @property
    def listens_on(self) -> int | None:
        return self.port


@attrs.frozen
class HttpServer(Workload):
    """The blog's nginx: one HTTP server serving ``/small-file.txt`` of ``size`` bytes on ``port``."""

    kind: ClassVar[str] = "http-server"

    size: int = attrs.field(default=4 * MiB, validator=_whole(0))
    port: int = attrs.field(default=80, validator=_port)

    @property
    def listens_on(self) -> int:
        return self.port


@attrs.frozen
class CurlLoop(Workload):
    """The blog's client, verbatim: ``while true; do curl -o file.txt http://SVC/PATH; done``."""

    kind: ClassVar[str] = "curl-loop"

    service: str = attrs.field(validator=_text)
    path: str = "/small-file.txt"
    port: int = attrs.field(default=80, validator=_port)


@attrs.frozen
class SimpleAppClient(Workload):
    """``connections`` concurrent curl-like loops against ``http://SERVICE:PORT/small-file.txt``.

    ``hold`` > 0 keeps each connection open that many seconds first (to fill the table; lab
    only); ``rate`` > 0 caps new connections per second per pod (0: as fast as it goes).
    """

    kind: ClassVar[str] = "simple-app-client"

    service: str = attrs.field(validator=_text)
    connections: int = attrs.field(default=10, validator=_whole(1))
    hold: float = attrs.field(default=0.0, validator=_non_negative)
    rate: float = attrs.field(default=0.0, validator=_non_negative)
    port: int = attrs.field(default=80, validator=_port)


@attrs.frozen
class BoomServer(Workload):
    """Upstream's regression-issue-74839 server: forges an out-of-window PSH|ACK ``boom!!!`` at
    ``seq = next + offset`` and exits when a RST reaches ``port`` (→ CrashLoopBackOff)."""

    kind: ClassVar[str] = "boom-server"

    offset: int = attrs.field(default=100_000)
    port: int = attrs.field(default=9000, validator=_port)
    close_after: float = attrs.field(default=10.0, validator=_non_negative)

    @offset.validator
    def _offset(self, attribute: attrs.Attribute[int], value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int):  # any int: it wraps mod 2^32
            raise ValueError(f"offset must be an integer, got {value!r}")

    @property
    def listens_on(self) -> int:
        return self.port


@attrs.frozen
class NcLoop(Workload):
    """Upstream's client: ``while true; do sleep EVERY; nc SERVICE PORT& done``."""

    kind: ClassVar[str] = "nc-loop"

    service: str = attrs.field(validator=_text)
    port: int = attrs.field(default=9000, validator=_port)
    every: float = attrs.field(default=2.0, validator=numbers.positive_field)


@attrs.frozen
class UdpFill(Workload):
    """``count`` conntrack entries, fast: one UDP datagram each to distinct ports of ``node``'s
    address. Logs ``filled N`` when done, then stays up."""

    kind: ClassVar[str] = "udp-fill"

    node: str = attrs.field(validator=_text)
    count: int = attrs.field(validator=_whole(1))


@attrs.frozen
class Manifest(Workload):
    """The user's own Deployment (YAML text of one ``kind: Deployment``; Kubernetes only).
    connreset keeps its pod template and sets name, namespace, labels, replicas and pinning."""

    kind: ClassVar[str] = "manifest"

    yaml: str = attrs.field(validator=_text)
    port: int | None = attrs.field(default=None, validator=_port_or_none)

    @property
    def listens_on(self) -> int | None:
        return self.port


@attrs.frozen
class Opaque(Workload):
    """A workload connreset did not make, read back from a cluster (``label`` says what it is).
    No backend runs one."""

    kind: ClassVar[str] = "opaque"

    label: str = "unknown"

    @property
    def name(self) -> str:
        return self.label


def to_json(workload: Workload) -> dict[str, Any]:
    """``{"kind": ..., field: value, ...}``."""
    return {"kind": workload.kind, **attrs.asdict(workload, recurse=False, value_serializer=_plain)}


def _plain(_: object, __: object, value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def from_json(data: Mapping[str, Any]) -> Workload:
    """The workload a :func:`to_json` document describes, validated.

    Raises:
        ValueError: an unknown kind, unknown fields or invalid values.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"a workload must be a JSON object, got {type(data).__name__}")
    fields = dict(data)
    kind = fields.pop("kind", None)
    cls = KINDS.get(str(kind))
    if cls is None:
        raise ValueError(f"unknown workload kind {kind!r} (known: {', '.join(sorted(KINDS))})")
    known = {f.name for f in attrs.fields(cls)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ValueError(f"workload {kind}: unknown field(s) {', '.join(unknown)}")
    try:
        return cls(**fields)
    except TypeError as exc:
        raise ValueError(f"workload {kind}: {exc}") from None
