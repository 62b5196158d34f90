"""Logging set-up, for the CLI only: the library never configures logging on import."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from connreset._support.redact import redact_secrets


class _Stderr:
    """Writes to whatever ``sys.stderr`` is at the time (it may be replaced after set-up)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure(fmt: str | None = None, verbosity: int = 0) -> None:
    """Console rendering on a TTY, JSON otherwise (or as ``fmt`` says); to stderr; the values of
    secret-looking fields redacted (:func:`connreset._support.redact.redact_secrets`)."""
    fmt = fmt or ("console" if sys.stderr.isatty() else "json")
    level = logging.WARNING - 10 * min(verbosity, 2)
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        if fmt == "console"
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            redact_secrets,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=_Stderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )


_LOUD = {
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
}


class _LibraryLogger:
    """A logger for library modules that never configures anything.

    Once the application has configured structlog (our CLI does), calls go to structlog. Until
    then, info and debug are dropped and warnings and errors go to the standard ``logging``
    module, which shows them on stderr unless the application says otherwise.
    """

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, method: str) -> Any:
        if structlog.is_configured():
            return getattr(structlog.get_logger(self._name), method)
        level = _LOUD.get(method)
        if level is None:
            return _drop
        std = logging.getLogger(self._name)

        def emit(event: str, *args: object, **kw: object) -> None:
            fields = " ".join(f"{k}={v!r}" for k, v in redact_secrets(None, method, dict(kw)).items())
            std.log(level, f"{event} {fields}".rstrip(), exc_info=method == "exception")

        return emit


def _drop(*args: object, **kw: object) -> None:
    return None


def get_logger(name: str) -> Any:
    """The logger library modules use (see :class:`_LibraryLogger`)."""
    return _LibraryLogger(name)
