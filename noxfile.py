"""Sessions: ``tests``, ``lint`` (ruff + mypy), ``bench``, ``reliability``, ``fuzz`` and ``long``.

They run in the project's own venv (made by ``.ci/setup``), not in venvs of nox's own, so that a
CI run installs the dependencies once.
"""

from __future__ import annotations

import sys

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.default_venv_backend = "none"

PY = sys.executable  # the venv nox runs from
PATHS = ["connreset", "tests", "experiments", "plugins", "noxfile.py"]


@nox.session(python=False)
def lint(session: nox.Session) -> None:
    session.run(PY, "-m", "ruff", "check", *PATHS)
    session.run(PY, "-m", "ruff", "format", "--check", *PATHS)
    session.run(PY, "-m", "mypy")


@nox.session(python=False)
def tests(session: nox.Session) -> None:
    """All tests but the ``long`` ones; those marked ``root`` are skipped (and say so) unless run
    as root."""
    session.run(PY, "-m", "pytest", "-m", "not long", *session.posargs)


@nox.session(python=False)
def long(session: nox.Session) -> None:
    """The tests that take minutes each (a guest kernel of their own under TCG), as root."""
    session.run(PY, "-m", "pytest", "-m", "long", *session.posargs)


@nox.session(python=False)
def bench(session: nox.Session) -> None:
    """Speed goals, each printed next to the baseline it is compared with."""
    session.run(PY, "-m", "tests.benchmarks", *session.posargs)


@nox.session(python=False)
def reliability(session: nox.Session) -> None:
    """The long form of the fault injection (tests/test_reliability.py), as root: N examples of
    each kind (default 10; ``nox -s reliability -- 25``) and 100 runs in a row, each example a
    line of ``results/reliability.jsonl``; then the figures docs/reliability.md gives."""
    n = session.posargs[0] if session.posargs else "10"
    log = "results/reliability.jsonl"
    session.run("mkdir", "-p", "results", external=True)
    session.run("rm", "-f", log, external=True)
    session.run(
        PY, "-m", "pytest", "tests/test_reliability.py", "tests/test_restore.py",
        "tests/engine/test_faults.py", "-q",
        env={"CONNRESET_FAULTS": n, "CONNRESET_FAULTS_LOG": log},
    )  # fmt: skip
    session.run(PY, "-m", "tests.reliability_figures", log)


@nox.session(python=False)
def fuzz(session: nox.Session) -> None:
    """The long form of tests/test_fuzz.py: 2000 randomized inputs per test (CONNRESET_FUZZ_EXAMPLES
    to change it), nothing that needs root; the figures go to results/fuzz.json."""
    env = {"CONNRESET_FUZZ": "long", "CONNRESET_FUZZ_REPORT": "results/fuzz.json"}
    session.run(PY, "-m", "pytest", "tests/test_fuzz.py", "-m", "not root", *session.posargs, env=env)
