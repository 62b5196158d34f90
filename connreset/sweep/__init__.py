"""Sweeps: hypothesis-driven searches for where a property stops holding, each trial a real run.

A sweep file exposes ``sweep = Sweep(...)``; ``python -m connreset sweep FILE.py`` runs it, as does
:func:`run_sweep` from Python. See docs/sweeps.md.
"""

from connreset.sweep.load import check_trials, load_sweep
from connreset.sweep.results import SweepResult, summary
from connreset.sweep.runner import SweepCancelled, run_sweep
from connreset.sweep.search import Boundary, TrialError
from connreset.sweep.spec import Confirmation, Sweep, Trial
from connreset.sweep.verdict import Verdict, combine, paired

__all__ = [
    "Boundary",
    "Confirmation",
    "Sweep",
    "SweepCancelled",
    "SweepResult",
    "Trial",
    "TrialError",
    "Verdict",
    "check_trials",
    "combine",
    "load_sweep",
    "paired",
    "run_sweep",
    "summary",
]
