"""Undo records: plain data written down *before* a step acts, and reverted in reverse order.

Because a record is data, not a closure, the journal can hold it before the change is made, and
``connreset restore`` can replay it after a crash.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

from connreset.backends.base import Backend, Rule

Action = Literal["sysctl", "rule", "delete-deployment", "scale"]


@attrs.frozen
class UndoRecord:
    """One thing to put back: ``action`` on ``node`` (or ``cluster``)."""

    id: int
    action: Action
    node: str
    target: str
    value: str | None = None
    rule: Rule | None = None

    def describe(self) -> str:
        if self.action == "sysctl":
            return f"{self.target}={self.value}"
        if self.action == "rule":
            return f"delete {self.target}"
        if self.action == "scale":
            return f"scale {self.target} to {self.value}"
        return f"delete deployment {self.target}"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "action": self.action,
            "node": self.node,
            "target": self.target,
            "value": self.value,
            "description": self.describe(),
        }
        if self.rule is not None:
            data["rule"] = {"table": self.rule.table, "chain": self.rule.chain, "args": list(self.rule.args)}
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UndoRecord:
        rule = data.get("rule")
        return cls(
            int(data["id"]),
            data["action"],
            data["node"],
            data["target"],
            data.get("value"),
            Rule(rule["table"], rule["chain"], tuple(rule["args"])) if rule else None,
        )


async def revert(record: UndoRecord, backend: Backend) -> tuple[bool, str]:
    """Put one thing back and read it back; return (verified, detail)."""
    if record.action in ("sysctl", "rule"):
        node = next((n for n in backend.nodes() if n.name == record.node), None)
        if node is None:
            return False, f"node {record.node} is gone"
        if record.action == "sysctl":
            assert record.value is not None
            await node.write_sysctl(record.target, record.value)
            now = await node.read_sysctl(record.target)
            return now == record.value, f"{record.target} reads {now}"
        assert record.rule is not None
        await node.remove_rule(record.rule)
        still = await node.has_rule(record.rule)
        return not still, "rule removed" if not still else "rule still present"
    if record.action == "delete-deployment":
        await backend.cluster.delete(record.target)
        left = await backend.cluster.pods(record.target)
        return not left, f"{len(left)} pod(s) left"
    assert record.value is not None
    await backend.cluster.scale(record.target, int(record.value))
    pods = await backend.cluster.pods(record.target)
    return len(pods) == int(record.value), f"{len(pods)} pod(s)"
