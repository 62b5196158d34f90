"""Waiting for a condition on a running system, with a deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def poll(check: Callable[[], Awaitable[bool]], within: float, every: float = 0.1) -> bool:
    """Call ``check`` until it returns True (→ True) or ``within`` seconds pass (→ False)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        if await check():
            return True
        remaining = deadline - loop.time()
        if remaining <= 0:
            return False
        await asyncio.sleep(min(every, remaining))
