"""The exception tree: typed backend failures, and the lab's errors in the lab."""

from __future__ import annotations

import ast
import copy
import pickle
from pathlib import Path

import pytest

import connreset
from connreset import errors
from connreset.lab import errors as lab_errors

TYPED = [
    errors.Unreachable,
    errors.TimedOut,
    errors.AuthFailed,
    errors.HostKeyRefused,
    errors.ToolMissing,
    errors.NodeUnavailable,
]


@pytest.mark.parametrize("kind", TYPED)
def test_a_typed_failure_is_a_backend_error_naming_its_node(kind: type[errors.BackendError]) -> None:
    failure = kind("node-1: it failed; check this", node="node-1")
    assert isinstance(failure, errors.BackendError) and failure.exit_code == 3
    assert str(failure) == "node-1: it failed; check this" and failure.node == "node-1"
    for again in (pickle.loads(pickle.dumps(failure)), copy.copy(failure)):
        assert type(again) is kind and str(again) == str(failure) and again.node == "node-1"
    assert getattr(connreset, kind.__name__) is kind


def test_a_backend_error_need_not_name_a_node() -> None:
    assert errors.BackendError("the engine is gone").node is None


def test_the_labs_errors_live_in_the_lab_and_are_still_found_where_they_were() -> None:
    from connreset.errors import LabBusy, NeedsRoot

    assert NeedsRoot is lab_errors.NeedsRoot is connreset.NeedsRoot
    assert LabBusy is lab_errors.LabBusy is connreset.LabBusy
    assert NeedsRoot.__module__ == LabBusy.__module__ == "connreset.lab.errors"
    assert issubclass(NeedsRoot, errors.BackendError) and issubclass(LabBusy, errors.BackendError)
    with pytest.raises(AttributeError, match="has no attribute 'NoSuchError'"):
        errors.NoSuchError  # noqa: B018


def test_the_core_tree_imports_nothing_of_connreset() -> None:
    """errors.py is the root of every layer: it finds the lab's errors by name, at first use."""
    tree = ast.parse(Path(errors.__file__).read_text())
    imported = [
        n.module if isinstance(n, ast.ImportFrom) else ", ".join(a.name for a in n.names)
        for n in ast.walk(tree)
        if isinstance(n, ast.Import | ast.ImportFrom)
    ]
    assert not [m for m in imported if m and m.startswith("connreset")]
