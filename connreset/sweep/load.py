"""Load a sweep file: run it and find ``sweep``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from connreset.errors import ValidationError
from connreset.sweep.spec import Sweep


def load_sweep(path: str | Path) -> tuple[Sweep, dict[str, dict[str, object]]]:
    """The file's ``sweep`` and its ``cluster_options`` (defaults per cluster backend)."""
    path = Path(path)
    if not path.is_file():
        raise ValidationError(f"no such sweep file: {path}")
    spec = importlib.util.spec_from_file_location(f"connreset_sweep_{path.stem}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except (ValueError, TypeError) as exc:
        raise ValidationError(str(exc), file=str(path)) from None
    found: Any = getattr(module, "sweep", None)
    if not isinstance(found, Sweep):
        raise ValidationError("defines no `sweep = Sweep(...)`", file=str(path))
    options: Any = getattr(module, "cluster_options", None) or {}
    return found, options
