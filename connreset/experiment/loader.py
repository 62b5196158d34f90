"""Load an experiment file: run it, find ``experiment``, and apply typed parameters.

A file may also set ``cluster_options = {"lab": {"time_scale": 0.1}}``: its default options for
each cluster backend, by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import inspect
import os
import posix
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs

from connreset._support.suggest import nearest
from connreset.errors import ValidationError
from connreset.experiment.params import Param, params_of
from connreset.experiment.plan import Plan, build


def _where(exc: BaseException, path: Path) -> str:
    """``file:line`` of the deepest frame inside the experiment file, for error messages."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if Path(frame.filename).resolve() == path.resolve():
            return f"{path}:{frame.lineno}"
    return str(path)


_EXIT = posix._exit  # the real one, for the deadline, whatever a file does meanwhile


class _InterpreterExit(BaseException):
    """A file called ``os._exit``: while it loads, that ends the file's code, not connreset."""

    def __init__(self, code: object) -> None:
        super().__init__(code)
        self.code = code


@contextlib.contextmanager
def _no_interpreter_exit() -> Iterator[None]:
    def refuse(code: int) -> None:
        raise _InterpreterExit(code)

    os._exit = posix._exit = refuse  # type: ignore[assignment]
    try:
        yield
    finally:
        os._exit = posix._exit = _EXIT


@contextlib.contextmanager
def deadline(seconds: float, path: str | Path, option: str = "--load-timeout") -> Iterator[None]:
    """For the command line: a file that takes longer than ``seconds`` to load (an endless
    ``experiment()``) ends the process with one line and exit 2; nothing was touched yet."""

    def expired() -> None:
        with contextlib.suppress(OSError):
            sys.stdout.flush()
            sys.stderr.write(
                f"connreset: {path}: loading took more than {seconds:g}s ({option}); nothing was touched\n"
            )
            sys.stderr.flush()
        _EXIT(2)

    timer = threading.Timer(seconds, expired)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _translated(exc: BaseException, path: Path) -> ValidationError:
    """Any failure of a file's code as one ValidationError naming the file and line."""
    if isinstance(exc, _InterpreterExit):
        return ValidationError(
            f"the file called os._exit({exc.code!r}) while loading: it must not end the interpreter",
            file=_where(exc, path),
        )
    if isinstance(exc, SystemExit):
        return ValidationError(f"the file called exit({exc.code!r}) while loading", file=_where(exc, path))
    if isinstance(exc, ValidationError):
        return exc.located(_where(exc, path))
    if isinstance(exc, (ValueError, TypeError)):
        return ValidationError(str(exc), file=_where(exc, path))
    if isinstance(exc, SyntaxError):
        return ValidationError(
            f"invalid Python: {exc.msg}", file=f"{path}:{exc.lineno}" if exc.lineno else str(path)
        )
    if isinstance(exc, ImportError):
        return ValidationError(f"cannot import {exc.name or 'a module'}: {exc}", file=_where(exc, path))
    return ValidationError(f"{type(exc).__name__}: {exc}", file=_where(exc, path))


def _nearest_file(path: Path) -> str:
    """``; did you mean DIR/NAME.py?`` for the nearest Python file beside a missing one (in the
    nearest directory, if its directory is missing too), or ``""``."""
    folder = path.parent
    try:
        if not folder.is_dir():
            near = nearest(folder.name, [p.name for p in folder.parent.iterdir() if p.is_dir()])
            if near is None:
                return ""
            folder = folder.parent / near
        found = nearest(path.name, [p.name for p in folder.iterdir() if p.suffix == ".py" and p.is_file()])
    except OSError:  # not readable: nothing to suggest
        return ""
    return f"; did you mean {folder / found}?" if found is not None and folder / found != path else ""


def run_file(path: str | Path, kind: str = "experiment") -> ModuleType:
    """Run a Python file as a module of its own (an experiment or a sweep file).

    Raises:
        ValidationError: no such file, or its code failed (syntax, an import, its own error),
            in one line naming the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise ValidationError(f"no such {kind} file: {path}{_nearest_file(path)}")
    spec = importlib.util.spec_from_file_location(f"connreset_{kind}_{path.stem}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        with _no_interpreter_exit():
            spec.loader.exec_module(module)
    except (KeyboardInterrupt, asyncio.CancelledError):  # an interrupt, not a broken file
        raise
    except BaseException as exc:  # SystemExit and the like too: a file must not end connreset
        raise _translated(exc, path) from None
    return module


def load(
    path: str | Path, params: Mapping[str, object] | None = None, raw: Mapping[str, str] | None = None
) -> Plan:
    """Load ``path``; every problem becomes a ValidationError naming the file (and line/step)."""
    path = Path(path)
    module = run_file(path)
    try:
        target: Any = getattr(module, "experiment", None)
        if target is None:
            raise ValidationError("defines no `experiment`")
        with _no_interpreter_exit():
            plan = build(target, params, raw, source=str(path))
        options = getattr(module, "cluster_options", None) or {}
        if not isinstance(options, dict) or not all(isinstance(v, dict) for v in options.values()):
            raise ValidationError("cluster_options must be a dict of dicts: {cluster name: {option: value}}")
        return attrs.evolve(plan, cluster_options=options)
    except (KeyboardInterrupt, asyncio.CancelledError):
        raise
    except BaseException as exc:  # the experiment function's own code, or its parameters
        raise _translated(exc, path) from None


def parameters(path: str | Path) -> dict[str, Param]:
    """The typed parameters an experiment file declares, or none if it cannot be loaded (for a
    hint in an error about something else: the file's own errors are reported by :func:`load`)."""
    try:
        target: Any = getattr(run_file(path), "experiment", None)
        return params_of(target) if inspect.isfunction(target) else {}
    except (KeyboardInterrupt, asyncio.CancelledError):
        raise
    except Exception:  # a broken file or signature: no hint, and load() will say what is wrong
        return {}
