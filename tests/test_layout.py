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
        "connreset.experiment.loader",
        "connreset.testbed.registry",
        "connreset.ui",
        "connreset.runs",
        "connreset.lab",
        "connreset.tui",
    ],
    "connreset.experiment": ["connreset.engine", "connreset.runs", "connreset.ui", "connreset.lab"],
    "connreset.lab": ["connreset.engine", "connreset.steps", "connreset.runs", "connreset.experiment"],
    "connreset.testbed": ["connreset.engine", "connreset.steps", "connreset.experiment", "connreset.lab"],
    "connreset.kernel": ["connreset.testbed", "connreset.engine", "connreset.lab", "connreset.steps"],
    "connreset.steps": ["connreset.engine", "connreset.lab", "connreset.runs", "connreset.experiment"],
    "connreset.events": ["connreset.engine", "connreset.runs", "connreset.ui"],
    "connreset.runs.journal": ["connreset.engine.runner", "connreset.lab", "connreset.ui"],
    "connreset.experiment.plan": ["connreset.engine", "connreset.testbed", "connreset.lab"],
    "connreset._support": [
        "connreset.engine",
        "connreset.experiment",
        "connreset.runs",
        "connreset.steps",
        "connreset.testbed",
        "connreset.ui",
    ],
}


def test_only_the_entry_points_import_the_ui() -> None:
    """The command line and its console are at the end of the pipeline: nothing else imports them."""
    users = {m for m, edges in import_graph().items() if any(e.startswith("connreset.ui") for e in edges)}
    entry_points = {"connreset.__main__", "connreset.guest.inside"}  # the guest's side runs the CLI in it
    assert {u for u in users if not u.startswith(("connreset.ui", "connreset.tui"))} <= entry_points


@pytest.mark.parametrize("module", sorted(FORBIDDEN))
def test_imports_point_one_way(module: str) -> None:
    found = imports(module)
    wrong = sorted(f for f in found if any(f == b or f.startswith(b + ".") for b in FORBIDDEN[module]))
    assert wrong == [], f"{module} imports {wrong}"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """Module → the connreset modules it imports, anywhere in its code (``from pkg import mod``
    counts as importing ``pkg.mod``; ``from pkg import name`` as importing ``pkg``)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("connreset"):
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    edges.add(sub if sub in modules else node.module)
            elif isinstance(node, ast.Import):
                edges.update(a.name for a in node.names if a.name in modules)
        graph[name] = edges & set(modules) - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_nothing_inside_imports_the_package_face() -> None:
    """``from connreset import X`` inside the package works only by the order of lines in
    ``__init__.py``; modules import what they need from where it lives."""
    wrong = sorted(m for m, edges in import_graph().items() if "connreset" in edges and m != "connreset")
    assert wrong == []


def test_old_module_paths_still_import_the_same_modules() -> None:
    import importlib

    from connreset._support.moved import MOVED

    for old, new in MOVED.items():
        moved = importlib.import_module(old)
        assert moved is importlib.import_module(new), old
        assert moved.__spec__ is not None and moved.__spec__.name == new


def test_the_top_level_keeps_only_the_face_and_public_modules() -> None:
    loose = sorted(p.stem for p in PACKAGE.glob("*.py"))
    assert loose == ["__init__", "__main__", "_version", "errors", "events", "testing", "workloads"]
