"""Undo records: plain data written to disk *before* a step acts, reverted in reverse order.

Because a record is data, not a closure, the journal holds it before the change is made, and
``connreset restore`` can replay it after a crash. Every revert is idempotent (a rule already
gone, a Deployment already deleted count as put back) and verified by reading back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import attrs

from connreset.errors import ValidationError
from connreset.kernel.node import Rule

if TYPE_CHECKING:
    from connreset.testbed import Testbed

Action = Literal["sysctl", "rule", "delete-deployment", "scale"]
ACTIONS: tuple[Action, ...] = ("sysctl", "rule", "delete-deployment", "scale")


@attrs.frozen
class UndoRecord:
    """One thing to put back: ``action`` on ``node`` (or ``cluster``), for the run ``run_id``."""

    id: int
    action: Action
    node: str
    target: str
    value: str | None = None
    rule: Rule | None = None
    run_id: str | None = None

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
            "run_id": self.run_id,
            "description": self.describe(),
        }
        if self.rule is not None:
            data["rule"] = {"table": self.rule.table, "chain": self.rule.chain, "args": list(self.rule.args)}
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UndoRecord:
        """The record a journal holds.

        Raises:
            ValidationError: the entry is not an undo record (a journal edited or corrupt).
        """
        try:
            rule = data.get("rule")
            record = cls(
                int(data["id"]),
                data["action"],
                str(data["node"]),
                str(data["target"]),
                None if data.get("value") is None else str(data["value"]),
                Rule(str(rule["table"]), str(rule["chain"]), tuple(map(str, rule["args"]))) if rule else None,
                data.get("run_id"),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValidationError(f"not an undo record: {type(exc).__name__}: {exc}") from None
        if record.action not in ACTIONS:
            raise ValidationError(f"not an undo record: unknown action {record.action!r}")
        if record.action in ("sysctl", "scale") and record.value is None:
            raise ValidationError(f"not an undo record: {record.action} {record.target} has no value")
        if record.action == "rule" and record.rule is None:
            raise ValidationError(f"not an undo record: rule {record.target} has no rule")
        return record


async def revert(record: UndoRecord, testbed: Testbed) -> tuple[bool, str]:
    """Put one thing back and read it back; return (verified, detail)."""
    if record.action == "sysctl":
        assert record.value is not None
        node = testbed.node(record.node)
        await node.restore_sysctl(record.target, record.value)
        now = await node.read_sysctl(record.target)
        return now == record.value, f"{record.target} reads {now}"
    if record.action == "rule":
        assert record.rule is not None
        node = testbed.node(record.node)
        if not await node.has_rule(record.rule):
            return True, "rule already absent"
        await node.remove_rule(record.rule)
        still = await node.has_rule(record.rule)
        return not still, "rule still present" if still else "rule removed"
    cluster = testbed.cluster
    spec = await cluster.get(record.target)
    if record.action == "delete-deployment":
        if spec is None:
            return True, "already gone"
        if spec.run_id != record.run_id:
            return False, f"not deleted: it carries run id {spec.run_id or 'none'}, not this run's"
        await cluster.delete(record.target)
        left = await cluster.pods(record.target)
        gone = await cluster.get(record.target) is None
        return gone and not left, f"{len(left)} pod(s) left"
    assert record.value is not None
    if spec is None:
        return False, "the deployment is gone"
    await cluster.scale(record.target, int(record.value))
    after = await cluster.get(record.target)
    replicas = after.replicas if after is not None else None
    return replicas == int(record.value), f"replicas {replicas}"


async def verify(record: UndoRecord, testbed: Testbed) -> tuple[bool, str]:
    """Read back a node-side undo someone else applied (a node's watchdog), changing nothing."""
    node = testbed.node(record.node)
    if record.action == "sysctl":
        now = await node.read_sysctl(record.target)
        return now == record.value, f"{record.target} reads {now}"
    if record.action == "rule":
        assert record.rule is not None
        still = await node.has_rule(record.rule)
        return not still, "rule still present" if still else "rule absent"
    raise ValueError(f"{record.action} is not a node-side undo")
