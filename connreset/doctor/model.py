"""The doctor's typed report: a check per fact, a report per node, and the whole, as JSON too.

``DoctorReport.to_json()`` follows ``schema.json`` (documented in docs/doctor.md); ``from_json``
reads it back (``connreset report`` renders a saved one).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any, Literal, cast

import attrs

Verdict = Literal["ok", "at risk", "exposed", "unknown"]
VERDICTS: tuple[Verdict, ...] = ("ok", "unknown", "at risk", "exposed")
Mechanism = Literal["invalid-reset", "table-full", "hash-chains"]
MECHANISMS: Mapping[str, str] = {
    "invalid-reset": "an INVALID out-of-window segment is not reverse-NATed and its RST kills the "
    "connection (kubernetes#74839)",
    "table-full": "a full conntrack table drops new flows",
    "hash-chains": "long hash chains make inserts fail (chaintoolong) before the table is full",
}
SCHEMA = "connreset-doctor/1"


def _verdict(_: object, attribute: attrs.Attribute[Any], value: str) -> None:
    if value not in VERDICTS:
        raise ValueError(f"{attribute.name} must be one of {', '.join(VERDICTS)}, got {value!r}")


def _mechanism(_: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and value not in MECHANISMS:
        raise ValueError(f"{attribute.name} must be one of {', '.join(MECHANISMS)}, got {value!r}")


def worst(verdicts: Sequence[Verdict]) -> Verdict:
    """The most severe verdict (ok < unknown < at risk < exposed); ok for none."""
    return max(verdicts, key=VERDICTS.index, default="ok")


def _checks(value: Iterable[Check]) -> tuple[Check, ...]:
    return tuple(value)


def _nodes(value: Iterable[NodeReport]) -> tuple[NodeReport, ...]:
    return tuple(value)


def _strings(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen
class Check:
    """One fact on one node: its value, a verdict with why, and the fix in the user's terms.

    ``mechanism`` names the failure this check is about (when it is at risk or exposed);
    ``data`` holds the numbers behind ``value``, for machines.
    """

    name: str
    title: str
    value: str
    verdict: Verdict = attrs.field(validator=_verdict)
    why: str
    fix: str = ""
    mechanism: Mechanism | None = attrs.field(default=None, validator=_mechanism)
    data: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def at_risk(self) -> bool:
        return self.verdict in ("at risk", "exposed")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "value": self.value,
            "verdict": self.verdict,
            "why": self.why,
            "fix": self.fix,
            "mechanism": self.mechanism,
            "data": dict(self.data),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Check:
        return cls(**{k: data[k] for k in ("name", "title", "value", "verdict", "why", "fix", "mechanism")},
                   data=data.get("data") or {})  # fmt: skip


@attrs.frozen
class NodeReport:
    """Every check of one node; ``error`` when the node could not be read at all."""

    node: str
    kernel: str | None
    checks: tuple[Check, ...] = attrs.field(converter=_checks)
    error: str | None = None

    @property
    def verdict(self) -> Verdict:
        return "unknown" if self.error else worst([c.verdict for c in self.checks])

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def exposed_to(self) -> dict[str, Verdict]:
        """mechanism → the worst verdict of this node's checks about it (at risk or exposed)."""
        out: dict[str, Verdict] = {}
        for c in self.checks:
            if c.mechanism and c.at_risk:
                out[c.mechanism] = worst([out.get(c.mechanism, "ok"), c.verdict])
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "kernel": self.kernel,
            "verdict": self.verdict,
            "error": self.error,
            "checks": [c.to_json() for c in self.checks],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NodeReport:
        return cls(
            data["node"], data.get("kernel"), [Check.from_json(c) for c in data["checks"]], data.get("error")
        )


@attrs.frozen
class DoctorReport:
    """What ``connreset doctor`` found on a testbed's nodes over one window.

    ``created`` lists what the doctor made to read the nodes (debug pods on Kubernetes), all
    removed at the end; ``kube_proxy`` is kube-proxy's configuration where the API gave it.
    """

    testbed: str
    window: float
    started: str
    nodes: tuple[NodeReport, ...] = attrs.field(converter=_nodes)
    kube_proxy: Mapping[str, Any] | None = None
    run_id: str | None = None
    created: tuple[str, ...] = attrs.field(default=(), converter=_strings)

    @property
    def exit_code(self) -> int:
        """0 nothing at risk; 1 something at risk or exposed; 3 a node could not be read."""
        if any(n.error for n in self.nodes) or not self.nodes:
            return 3
        return 1 if any(c.at_risk for n in self.nodes for c in n.checks) else 0

    def exposed(self) -> dict[str, list[str]]:
        """mechanism → the nodes at risk of it or exposed to it."""
        out: dict[str, list[str]] = {}
        for n in self.nodes:
            for mechanism in n.exposed_to():
                out.setdefault(mechanism, []).append(n.node)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "testbed": self.testbed,
            "window": self.window,
            "started": self.started,
            "run_id": self.run_id,
            "kube_proxy": dict(self.kube_proxy) if self.kube_proxy is not None else None,
            "created": list(self.created),
            "exit_code": self.exit_code,
            "exposed": self.exposed(),
            "nodes": [n.to_json() for n in self.nodes],
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DoctorReport:
        return cls(
            data["testbed"],
            float(data["window"]),
            data["started"],
            [NodeReport.from_json(n) for n in data["nodes"]],
            data.get("kube_proxy"),
            data.get("run_id"),
            data.get("created") or (),
        )


@cache
def schema() -> dict[str, Any]:
    """The JSON schema ``--json`` follows."""
    text = resources.files("connreset.doctor").joinpath("schema.json").read_text(encoding="utf-8")
    return cast(dict[str, Any], json.loads(text))


def is_doctor_json(data: object) -> bool:
    return isinstance(data, Mapping) and data.get("schema") == SCHEMA
