"""Runs as a whole: open a testbed, run, close it (:mod:`~connreset.runs.run`), the journal that
records every change before it is made (:mod:`~connreset.runs.journal`), and putting back what an
interrupted run left (:mod:`~connreset.runs.restore`)."""

from connreset.runs.run import make_testbed, run, run_sync

__all__ = ["make_testbed", "run", "run_sync"]
