"""Load an experiment file: run it, find ``experiment``, and apply typed parameters."""

from __future__ import annotations

import importlib.util
import sys
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from connreset.errors import ValidationError
from connreset.experiment import Experiment, PlannedPhase
from connreset.params import Param, params_of, resolve


@attrs.frozen
class Loaded:
    """An experiment file's experiment, the parameters it declares, and the values used."""

    experiment: Experiment
    declared: Mapping[str, Param]
    params: Mapping[str, object]
    source: str
    phases: tuple[PlannedPhase, ...]
    build: Callable[..., Experiment] | None = None
    backend_options: Mapping[str, object] = attrs.field(factory=dict)


def _where(exc: BaseException, path: Path) -> str:
    """``file:line`` of the deepest frame inside the experiment file, for error messages."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if Path(frame.filename).resolve() == path.resolve():
            return f"{path}:{frame.lineno}"
    return str(path)


def build(
    target: Experiment | Callable[..., Experiment],
    params: Mapping[str, object] | None = None,
    raw: Mapping[str, str] | None = None,
    *,
    source: str = "<experiment>",
) -> Loaded:
    """Apply parameters to an Experiment or an experiment function, and compile it."""
    if isinstance(target, Experiment):
        declared: dict[str, Param] = {}
        values = resolve(declared, params, raw)
        experiment = target
        fn = None
    elif callable(target):
        declared = params_of(target)
        values = resolve(declared, params, raw)
        experiment = target(**values)
        fn = target
        if not isinstance(experiment, Experiment):
            raise ValidationError(f"experiment function returned {type(experiment).__name__}")
    else:
        raise ValidationError("`experiment` must be an Experiment or a function returning one")
    return Loaded(experiment, declared, values, source, experiment.compile(), fn)


def load(
    path: str | Path, params: Mapping[str, object] | None = None, raw: Mapping[str, str] | None = None
) -> Loaded:
    """Load ``path``; every problem becomes a ValidationError naming the file (and line/step)."""
    path = Path(path)
    if not path.is_file():
        raise ValidationError(f"no such experiment file: {path}")
    spec = importlib.util.spec_from_file_location(f"connreset_experiment_{path.stem}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        target: Any = getattr(module, "experiment", None)
        if target is None:
            raise ValidationError("defines no `experiment`")
        loaded = build(target, params, raw, source=str(path))
        return attrs.evolve(loaded, backend_options=dict(getattr(module, "backend_options", {}) or {}))
    except ValidationError as exc:
        raise exc.located(_where(exc, path)) from None
    except (ValueError, TypeError) as exc:
        raise ValidationError(str(exc), file=_where(exc, path)) from None
