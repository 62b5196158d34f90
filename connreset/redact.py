"""Keeping secrets out of journals and logs: option and parameter names that look secret."""

from __future__ import annotations

import re
from collections.abc import Mapping

REDACTED = "<redacted>"
_SECRET = re.compile(
    r"(^|[_.-])(token|password|passwd|passphrase|secret|key|apikey|credentials?)($|[_.-])", re.I
)


def is_secret(name: str) -> bool:
    """``token``, ``api_token``, ``password``, ``key``, ``client-secret``...: words, not substrings."""
    return bool(_SECRET.search(name))


def redact(values: Mapping[str, object]) -> dict[str, object]:
    """The mapping with the values of secret-looking names replaced by ``<redacted>``."""
    return {k: (REDACTED if is_secret(k) else v) for k, v in values.items()}
