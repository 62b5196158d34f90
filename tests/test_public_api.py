"""The public API is exactly what ``connreset.__all__`` lists."""

from __future__ import annotations

import subprocess
import sys
import types

import connreset


def test_every_exported_name_exists() -> None:
    for name in connreset.__all__:
        assert hasattr(connreset, name), name


def test_nothing_public_is_left_out() -> None:
    public = {
        name
        for name, value in vars(connreset).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(connreset.__all__) - {"__version__", "events", "workloads"}


def test_importing_configures_no_logging_and_prints_nothing() -> None:
    code = "import connreset, structlog; assert not structlog.is_configured()"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "" and out.stderr == ""
