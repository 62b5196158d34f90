"""Old module paths, kept working: ``import connreset.journal`` is ``connreset.runs.journal``.

The package's modules were grouped by what they do (``experiment/``, ``runs/``, ``ui/``,
``_support/``). Code and plugins that import the old paths get the same module object, through
one import hook, installed when this module is imported (``connreset/__init__.py`` does),
instead of a shim file per old name.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType

#: old path → where the module lives now
MOVED = {
    "connreset.aio": "connreset._support.aio",
    "connreset.numbers": "connreset._support.numbers",
    "connreset.logs": "connreset._support.logs",
    "connreset.redact": "connreset._support.redact",
    "connreset.suggest": "connreset._support.suggest",
    "connreset.params": "connreset.experiment.params",
    "connreset.plan": "connreset.experiment.plan",
    "connreset.loader": "connreset.experiment.loader",
    "connreset.checks": "connreset.experiment.checks",
    "connreset.capacity": "connreset.experiment.capacity",
    "connreset.graph": "connreset.steps.base",
    "connreset.restore": "connreset.runs.restore",
    "connreset.journal": "connreset.runs.journal",
    "connreset.cli": "connreset.ui.cli",
    "connreset.console": "connreset.ui.console",
    "connreset.report": "connreset.ui.report",
}


class _Moved(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old path and hands back the module at the new one (imported once)."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def __init__(self) -> None:
        self._specs: dict[str, importlib.machinery.ModuleSpec | None] = {}

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(MOVED[spec.name])
        self._specs[module.__name__] = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run (it ran at its new path); the import system has just set the module's
        ``__spec__`` to the old path's: give it back its own."""
        module.__spec__ = self._specs.pop(module.__name__, module.__spec__)


def install() -> None:
    """Put the hook on ``sys.meta_path`` once."""
    if not any(isinstance(finder, _Moved) for finder in sys.meta_path):
        sys.meta_path.append(_Moved())


install()
