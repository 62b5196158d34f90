"""What the rest of the package leans on: asyncio helpers, number checks, logging, redaction,
suggestions, and the hook that keeps old module paths working. Private: not part of the API."""
