"""Tests of connreset.kubernetes, against an in-process test double of the API server.

While the engine is being refactored on another branch, ``import connreset`` can fail in this
worktree (its ``__init__`` imports modules that moved). The Kubernetes package needs none of
them, so when that import fails the package is registered without running its ``__init__``;
once ``import connreset`` works again this does nothing. Run, in the meantime::

    python -m pytest --noconftest -p tests.kubernetes.fixtures tests/kubernetes
"""

from __future__ import annotations

import sys
import types
from pathlib import Path


def _package_without_init() -> None:
    try:
        import connreset  # noqa: F401
    except ImportError:
        for name in [n for n in sys.modules if n == "connreset" or n.startswith("connreset.")]:
            del sys.modules[name]
        package = types.ModuleType("connreset")
        package.__path__ = [str(Path(__file__).resolve().parents[2] / "connreset")]
        sys.modules["connreset"] = package


_package_without_init()
