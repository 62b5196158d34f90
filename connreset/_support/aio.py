"""asyncio helpers for cleanup that must finish, but must not hang forever."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


class Abandoned(Exception):
    """The caller asked to stop waiting for cleanup (a second Ctrl-C)."""


async def shielded(coro: Coroutine[Any, Any, Any], abandon: asyncio.Event | None = None) -> bool:
    """Run ``coro`` to its end even if we are cancelled meanwhile; return True if we were.

    Only ``abandon`` being set stops the wait: the coroutine is then cancelled and
    :class:`Abandoned` is raised, so that one hung cleanup cannot make Ctrl-C useless.
    """
    task = asyncio.ensure_future(coro)
    waiter = asyncio.ensure_future(abandon.wait()) if abandon is not None else None
    cancelled = False
    try:
        while not task.done():
            try:
                await asyncio.wait(
                    [f for f in (task, waiter) if f is not None], return_when="FIRST_COMPLETED"
                )
            except asyncio.CancelledError:
                cancelled = True
                continue
            if waiter is not None and waiter.done() and not task.done():
                task.cancel()
                await asyncio.wait([task])
                raise Abandoned
    finally:
        if waiter is not None:
            waiter.cancel()
    task.result()
    return cancelled
