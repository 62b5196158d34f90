"""Shared fixtures. Tests marked ``root`` run on the real kernel and are skipped without root."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from connreset import events as ev

GLOBALS = ("nf_conntrack_max", "nf_conntrack_buckets")


def _globals() -> dict[str, str]:
    return {k: Path(f"/proc/sys/net/netfilter/{k}").read_text().strip() for k in GLOBALS}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root (network namespaces, iptables, global sysctls)")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def structlog_as_new() -> Iterator[None]:
    """The CLI configures structlog for the process; a test that runs it in process must not
    leave that configuration (its level filter) to the tests after it."""
    yield
    structlog.reset_defaults()


@pytest.fixture(scope="session")
def host_originals() -> dict[str, str]:
    return _globals()


@pytest.fixture(autouse=True)
def nothing_left_behind(request: pytest.FixtureRequest, host_originals: dict[str, str]) -> Iterator[None]:
    """After every root test: no lab namespace or process, and the global sysctls as they were."""
    yield
    if "root" not in request.keywords or os.geteuid() != 0:
        return
    from connreset.lab import host

    namespaces = host.lab_namespaces()
    assert namespaces == [], f"left behind: {namespaces}"
    assert _globals() == host_originals
    assert host.read_state().get("sysctl_originals", {}) == {}
    root = host.watchdog_root()
    assert not root.exists() or list(root.iterdir()) == [], "a watchdog (or its record) was left"


#: Per fuzz test: inputs tried, tracebacks, inputs that touched something, other misses.
FUZZ_TALLY: dict[str, dict[str, int]] = {}
#: Per fuzz test: each miss, and the input (kept in the report; many only with CONNRESET_FUZZ_CENSUS).
MISSES: dict[str, list[str]] = {}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The fuzz figures (tests/test_fuzz.py), and as JSON to ``$CONNRESET_FUZZ_REPORT`` if set."""
    if not FUZZ_TALLY:
        return
    total = {k: sum(t[k] for t in FUZZ_TALLY.values()) for k in ("tried", "tracebacks", "touched", "other")}
    terminalreporter.write_sep("-", "fuzzed inputs")
    for name, t in sorted(FUZZ_TALLY.items()):
        terminalreporter.write_line(
            f"{name}: {t['tried']} tried, {t['tracebacks']} tracebacks, {t['touched']} touched, "
            f"{t['other']} other misses"
        )
    terminalreporter.write_line(
        f"total: {total['tried']} tried, {total['tracebacks']} tracebacks, {total['touched']} touched, "
        f"{total['other']} other misses"
    )
    report = os.environ.get("CONNRESET_FUZZ_REPORT")
    if report:
        document = {"tests": FUZZ_TALLY, "total": total, "misses": MISSES}
        Path(report).parent.mkdir(parents=True, exist_ok=True)
        Path(report).write_text(json.dumps(document, indent=1) + "\n")


class Recorder:
    """An event subscriber that keeps every event."""

    def __init__(self) -> None:
        self.events: list[ev.Event] = []

    def __call__(self, event: ev.Event) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list:  # type: ignore[type-arg]
        return [e for e in self.events if isinstance(e, kind)]

    def finished(self, step: str) -> ev.StepFinished:
        return next(e for e in self.of(ev.StepFinished) if e.step == step)

    def started(self, step: str) -> ev.StepStarted:
        return next(e for e in self.of(ev.StepStarted) if e.step == step)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


class Touched(list[str]):
    """What a guarded test tried to touch (it must stay empty): testbed openings, lab changes."""


@pytest.fixture
def untouchable(monkeypatch: pytest.MonkeyPatch) -> Touched:
    """Make every way to touch a node fail the test: opening any testbed, the lab's own changes
    (building nodes, writing its state or a global sysctl, tearing down), ``connreset lab
    up/down``, and the TUI. An input that wrongly passes validation can so never reach the real
    lab (which may be in use), and the test sees it: an AssertionError, and ``touched`` non-empty.
    """
    from connreset.lab import backend, control, host, plumbing
    from connreset.testbed import testbed
    from connreset.ui import cli

    touched = Touched()

    def refuse(what: str) -> object:
        def guard(*args: object, **kwargs: object) -> object:
            touched.append(what)
            raise AssertionError(f"{what} was called: the input passed validation")

        return guard

    def refuse_async(what: str) -> object:
        async def guard(*args: object, **kwargs: object) -> object:
            touched.append(what)
            raise AssertionError(f"{what} was called: the input passed validation")

        return guard

    monkeypatch.setattr(testbed.Testbed, "open", refuse_async("Testbed.open"))
    monkeypatch.setattr(backend.LabBackend, "open", refuse_async("LabBackend.open"))
    monkeypatch.setattr(plumbing, "build_nodes", refuse_async("plumbing.build_nodes"))
    monkeypatch.setattr(host.HostLock, "acquire", refuse("HostLock.acquire"))
    for name in ("teardown", "write_state", "write_global"):
        monkeypatch.setattr(host, name, refuse(f"host.{name}"))
    for name in ("up", "down"):
        monkeypatch.setattr(control, name, refuse(f"lab {name}"))
    monkeypatch.setattr(cli, "_run_tui", refuse("the TUI"))
    monkeypatch.setattr(cli, "_sweep_tui", refuse("the sweep TUI"))
    return touched
