"""Sweeps: hypothesis-driven searches for where a property stops holding, each trial a real run.

A sweep file exposes ``sweep = Sweep(...)``; ``python -m connreset sweep FILE.py`` runs it, as does
:func:`run_sweep` from Python. See docs/sweeps.md.
"""

from connreset.sweep.load import check_trials, load_sweep
from connreset.sweep.results import SweepResult, summary
from connreset.sweep.runner import SweepCancelled, run_sweep
from connreset.sweep.search import Boundary, TrialError
from connreset.sweep.spec import Confirmation, Sweep, Trial

__all__ = [
    "Boundary",
    "Confirmation",
    "Sweep",
    "SweepCancelled",
    "SweepResult",
    "Trial",
    "TrialError",
    "check_trials",
    "load_sweep",
    "run_sweep",
    "summary",
]
