"""Load a sweep file: run it and find ``sweep``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connreset.errors import ValidationError
from connreset.loader import run_file
from connreset.sweep.spec import Sweep


def load_sweep(path: str | Path) -> tuple[Sweep, dict[str, dict[str, object]]]:
    """The file's ``sweep`` and its ``cluster_options`` (defaults per cluster backend)."""
    module = run_file(path, "sweep")
    found: Any = getattr(module, "sweep", None)
    if not isinstance(found, Sweep):
        raise ValidationError("defines no `sweep = Sweep(...)`", file=str(path))
    options: Any = getattr(module, "cluster_options", None) or {}
    return found, options
