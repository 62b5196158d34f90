"""Steps that shape time and let users plug in their own code."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import attrs

from connreset._support import numbers
from connreset.errors import ExpectationFailed
from connreset.steps.base import Step, StepContext, positive
from connreset.steps.polling import poll

Condition = Callable[[StepContext], Awaitable[bool]]


@attrs.frozen
class Wait(Step):
    """Wait ``seconds``, or until ``until(ctx)`` is true (failing after ``within`` seconds)."""

    kind = "wait"

    seconds: float | None = attrs.field(default=None)
    until: Condition | None = None
    within: float = attrs.field(default=60.0, validator=positive)
    every: float = attrs.field(default=0.1, validator=positive)

    def __attrs_post_init__(self) -> None:
        if (self.seconds is None) == (self.until is None):
            raise ValueError("Wait needs exactly one of seconds= or until=")
        if self.seconds is not None:
            numbers.non_negative("seconds", self.seconds)

    def default_name(self) -> str:
        if self.seconds is not None:
            return f"wait {self.seconds:g}s"
        return f"wait until {getattr(self.until, '__name__', 'condition')}"

    async def run(self, ctx: StepContext) -> str:
        if self.seconds is not None:
            await asyncio.sleep(self.seconds)
            return f"waited {self.seconds:g}s"
        until = self.until
        assert until is not None
        if not await poll(lambda: until(ctx), self.within, self.every):
            raise ExpectationFailed(f"{self.label}: not true within {self.within:g}s")
        return "condition held"


@attrs.frozen
class Call(Step):
    """Run a user coroutine ``fn(ctx)``; its return value (if a string) becomes the detail."""

    kind = "call"

    fn: Callable[[StepContext], Awaitable[str | None]]

    def default_name(self) -> str:
        return getattr(self.fn, "__name__", "call")

    async def run(self, ctx: StepContext) -> str | None:
        return await self.fn(ctx)
