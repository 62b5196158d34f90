"""Keeping secrets out of journals and logs: option and parameter names that look secret.

:func:`redact` and :func:`redact_deep` replace the values of secret-looking names in mappings
(options, parameters); :func:`redact_secrets` is the structlog processor that does the same to
every log line's fields, nested ``params=``/``options=`` mappings included. The CLI puts it in its
logging configuration (:func:`connreset._support.logs.configure`); the library configures nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from typing import Any

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


def redact_deep(value: object) -> object:
    """``value`` with every mapping in it (at any depth, in lists and tuples too) redacted."""
    if isinstance(value, Mapping):
        return {k: (REDACTED if is_secret(str(k)) else redact_deep(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_deep(v) for v in value)
    return value


def redact_secrets(
    logger: object, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor: the values of secret-looking fields (``token=``, ``password=``...),
    and of such keys inside mapping fields (``params=``, ``options=``), become ``<redacted>``.

    The event (the message itself) is left as it is: put secrets in fields, never in messages.
    """
    for key, value in list(event_dict.items()):
        if key == "event":
            continue
        if is_secret(key):
            event_dict[key] = REDACTED
        elif isinstance(value, (Mapping, list, tuple)):
            event_dict[key] = redact_deep(value)
    return event_dict
