"""Logging set-up, for the CLI only: the library never configures logging on import."""

from __future__ import annotations

import logging
import sys

import structlog


class _Stderr:
    """Writes to whatever ``sys.stderr`` is at the time (it may be replaced after set-up)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure(fmt: str | None = None, verbosity: int = 0) -> None:
    """Console rendering on a TTY, JSON otherwise (or as ``fmt`` says); to stderr."""
    fmt = fmt or ("console" if sys.stderr.isatty() else "json")
    level = logging.WARNING - 10 * min(verbosity, 2)
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        if fmt == "console" else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=_Stderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
