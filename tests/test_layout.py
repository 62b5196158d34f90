"""Imports point one way: experiment → plan → engine → testbed → kernel, then events → journal and
console. Read from the source, so that a stray import fails here rather than in review."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "connreset"


def imports(module: str) -> set[str]:
    """Every connreset module a module (or package) imports, at any depth of its code."""
    base = PACKAGE.joinpath(*module.split(".")[1:])
    files = sorted(base.rglob("*.py")) if base.is_dir() else [base.with_suffix(".py")]
    found: set[str] = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("connreset"):
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith("connreset"))
    return found


FORBIDDEN = {
    "connreset.engine": [
        "connreset.loader",
        "connreset.journal",
        "connreset.testbed.registry",
        "connreset.cli",
        "connreset.console",
        "connreset.runs",
        "connreset.lab",
    ],
    "connreset.lab": ["connreset.engine", "connreset.steps", "connreset.runs", "connreset.journal"],
    "connreset.testbed": ["connreset.engine", "connreset.steps", "connreset.experiment", "connreset.lab"],
    "connreset.kernel": ["connreset.testbed", "connreset.engine", "connreset.lab", "connreset.steps"],
    "connreset.steps": ["connreset.engine.runner", "connreset.lab", "connreset.journal", "connreset.runs"],
    "connreset.events": ["connreset.engine", "connreset.journal", "connreset.console"],
    "connreset.journal": ["connreset.engine.runner", "connreset.lab", "connreset.cli"],
    "connreset.plan": ["connreset.engine", "connreset.testbed", "connreset.lab"],
}


@pytest.mark.parametrize("module", sorted(FORBIDDEN))
def test_imports_point_one_way(module: str) -> None:
    found = imports(module)
    wrong = sorted(f for f in found if any(f == b or f.startswith(b + ".") for b in FORBIDDEN[module]))
    assert wrong == [], f"{module} imports {wrong}"
