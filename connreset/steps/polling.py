"""Waiting for a condition on a running system, with a deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from connreset.guest.timing import scaled


async def poll(check: Callable[[], Awaitable[bool]], within: float, every: float = 0.1) -> bool:
    """Call ``check`` until it returns True (→ True) or ``within`` seconds pass (→ False).

    In a slow guest ``within`` is stretched by its measured slowness (:mod:`connreset.guest.timing`)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + scaled(within)
    while True:
        if await check():
            return True
        remaining = deadline - loop.time()
        if remaining <= 0:
            return False
        await asyncio.sleep(min(every, remaining))
