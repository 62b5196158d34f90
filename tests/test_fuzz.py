"""Fuzzing what a user types and writes: command lines and experiment files, with hypothesis.

Every input generated here is invalid by construction, and each must end the same way: exit 2,
one line on stderr (none on stdout), no traceback, and nothing touched. The inputs run in
process through :func:`connreset.ui.cli.main` on the default backend, the lab, with the
``untouchable`` guard: opening any testbed, building or tearing down the lab, or starting the TUI
fails the example, so an input that wrongly passes validation never reaches the real lab.

The bounded form runs with the tests (derandomized, about 10 s). ``CONNRESET_FUZZ=long`` (``nox -s
fuzz``) runs each test ``CONNRESET_FUZZ_EXAMPLES`` times (default 2000), randomized, keeping
failures in hypothesis's example database. Counts of inputs tried, tracebacks and touches are
printed at the end of the session, and written as JSON to ``CONNRESET_FUZZ_REPORT`` if set.
"""

from __future__ import annotations

import builtins
import itertools
import json
import keyword
import math
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from connreset import Experiment, SetSysctl, run_sync
from connreset import events as ev
from connreset.kernel import sysctl
from connreset.runs.journal import JournalWriter
from connreset.testing import testbed
from connreset.ui.cli import main
from tests.conftest import FUZZ_TALLY, MISSES, Touched

ROOT = Path(__file__).parent.parent
ISSUE = str(ROOT / "experiments/issue_74839.py")
SWEEP = str(ROOT / "experiments/sweep_boom_offset.py")
LONG = os.environ.get("CONNRESET_FUZZ") == "long"


def fuzz_settings(bounded: int) -> settings:
    """``bounded`` examples, the same ones each time; or the long form's count, randomized."""
    common = {
        "deadline": None,
        "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    }
    if LONG:
        return settings(max_examples=int(os.environ.get("CONNRESET_FUZZ_EXAMPLES", "2000")), **common)  # type: ignore[arg-type]
    return settings(max_examples=bounded, derandomize=True, database=None, **common)  # type: ignore[arg-type]


# -- the judge -------------------------------------------------------------------------------------
#: ``CONNRESET_FUZZ_CENSUS=1``: record every miss instead of failing at the first (for counting
#: what a code base gets wrong; the figures then say how many inputs missed, and how).
CENSUS = os.environ.get("CONNRESET_FUZZ_CENSUS") == "1"


class Fuzz:
    """Runs one input through the CLI, in process, and holds it to the rule."""

    def __init__(self, name: str, capsys: pytest.CaptureFixture[str], touched: Touched) -> None:
        self.name = name
        self.tally = FUZZ_TALLY.setdefault(name, {"tried": 0, "tracebacks": 0, "touched": 0, "other": 0})
        self.capsys = capsys
        self.touched = touched

    def refused(self, argv: list[str], *, naming: str | None = None) -> None:
        """Run ``argv``; assert exit 2, one line on stderr (naming ``naming``), nothing else."""
        self.capsys.readouterr()
        self.touched.clear()
        escaped: BaseException | None = None
        try:
            code: object = main(argv)
        except SystemExit as exc:  # a process would exit with this code
            code = exc.code
        except BaseException as exc:  # the guard's AssertionError, or anything that escaped
            code, escaped = None, exc
        out, err = self.capsys.readouterr()
        lines = err.strip().splitlines()
        miss = ""
        if self.touched:
            miss = "touched " + ", ".join(dict.fromkeys(self.touched))
        elif escaped is not None or "Traceback" in err:
            miss = (
                f"traceback: {escaped!r}"
                if escaped is not None
                else f"traceback: {lines[-1] if lines else ''}"
            )
        elif code != 2:
            miss = f"exit {code}: {lines[-1] if lines else ''}"
        elif len(lines) != 1 or out:
            miss = f"{len(lines)} lines on stderr, {len(out.splitlines())} on stdout"
        elif naming is not None and naming not in err:
            miss = f"does not name {naming}"
        self.tally["tried"] += 1
        key = "touched" if self.touched else "tracebacks" if miss.startswith("traceback") else "other"
        if miss:
            self.tally[key] += 1
            MISSES.setdefault(self.name, []).append(f"{miss[:160]} <- {argv}")
        if not CENSUS:
            assert not miss, f"{argv}: {miss}\nstderr: {err}\nstdout: {out}"


@pytest.fixture
def fuzz(
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
    untouchable: Touched,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Fuzz:
    """The judge, in a scratch directory (a default journal would land there), writing no bytecode
    (experiment files are rewritten faster than their mtime changes)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    return Fuzz(request.node.originalname, capsys, untouchable)


# -- pieces of command lines -----------------------------------------------------------------------
KNOWN_FLAGS = (
    *("--set", "--dry-run", "--cluster", "--node-access", "--cluster-opt", "--node-opt", "--journal"),
    *("--tui", "--no-tui", "--step-timeout", "--undo-timeout", "--log-format", "--verbose", "--seed"),
    *("--max-trials", "--time-budget", "--out", "--no-confirm", "--html", "--nodes", "--help", "--version"),
    "--watchdog-lease",
)
words = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True)


def _unknown(flag: str) -> bool:
    """Neither a flag nor an abbreviation of one (argparse takes ``--se`` for ``--set``)."""
    return not any(known.startswith(flag) for known in KNOWN_FLAGS)


unknown_flags = st.one_of(
    words.map(lambda w: f"--{w}").filter(_unknown), st.sampled_from(["-x", "-q", "-Z", "---", "--=", "-"])
)
NOT_SECONDS = [
    "nan",
    "NaN",
    "inf",
    "-inf",
    "infinity",
    "0",
    "-0",
    "-1",
    "",
    " ",
    "1e400",
    "1,5",
    "5s",
    "0x10",
]
#: Text that is not a finite number > 0 (what every seconds option must be).
bad_seconds = st.one_of(
    st.sampled_from(NOT_SECONDS),
    st.floats(max_value=0).map(repr),
    st.text(st.characters(exclude_characters="\x00"), max_size=8).filter(lambda t: not _positive(t)),
)
bad_counts = st.one_of(
    st.sampled_from(["0", "-1", "1.5", "nan", "", "x", "1e3"]), st.integers(max_value=0).map(str)
)


def _positive(text: str) -> bool:
    try:
        value = float(text)
    except ValueError:
        return False
    return math.isfinite(value) and value > 0


def _missing(tmp: Path, kind: str) -> list[str]:
    """A file argument that is not a usable file: missing, a directory, empty, under a file."""
    (tmp / "adir").mkdir(exist_ok=True)
    (tmp / "afile").write_text("")
    return [str(tmp / f"nope-{kind}.py"), str(tmp / "adir"), "", str(tmp / "afile" / "x.py"), "/proc/nope"]


VALID_RUN_OPTIONS = [
    ["--dry-run"],
    ["--no-tui"],
    ["--tui"],
    ["-v"],
    ["--set", "window=5"],
    ["--set", "fix=none"],
    ["--cluster-opt", "time_scale=0.5"],
    ["--undo-timeout", "5"],
    ["--step-timeout", "30"],
    ["--log-format", "json"],
    ["--cluster", "lab"],
]
RUN_BREAKS = [
    "file",
    "seconds",
    "flag",
    "set",
    "cluster-opt",
    "node-opt",
    "cluster",
    "journal",
    "format",
    "dangling",
]


@st.composite
def bad_run_argv(draw: st.DrawFn, tmp: Path) -> tuple[list[str], str]:
    """``connreset [run] FILE ...`` with valid options around exactly one invalid element."""
    valid = draw(st.lists(st.sampled_from(VALID_RUN_OPTIONS), max_size=4))
    kind = draw(st.sampled_from(RUN_BREAKS))
    file = ISSUE
    bad: list[str]
    if kind == "file":
        file, bad = draw(st.sampled_from(_missing(tmp, "run"))), []
    elif kind == "seconds":
        option = draw(st.sampled_from(["--step-timeout", "--undo-timeout", "--watchdog-lease"]))
        no_lease = bad_seconds.filter(lambda t: t.strip() not in ("0", "0.0"))  # 0: no watchdogs
        bad = [option, draw(no_lease if option == "--watchdog-lease" else bad_seconds)]
    elif kind == "flag":
        bad = [draw(unknown_flags)]
    elif kind == "set":
        bad = ["--set", draw(bad_set)]
    elif kind == "cluster-opt":
        bad = ["--cluster-opt", draw(bad_lab_option)]
    elif kind == "node-opt":
        bad = ["--node-opt", f"{draw(words)}={draw(st.text(max_size=5))}"]
    elif kind == "cluster":
        bad = [draw(st.sampled_from(["--cluster", "--node-access"])), draw(bad_plugin)]
    elif kind == "journal":
        (tmp / "adir").mkdir(exist_ok=True)
        (tmp / "afile").write_text("")
        bad = [
            "--journal",
            draw(st.sampled_from([str(tmp / "adir"), "", str(tmp / "afile/j.json"), "/proc/x.json"])),
        ]
    elif kind == "format":
        bad = ["--log-format", draw(words.filter(lambda w: w not in ("console", "json")))]
    else:
        bad = [draw(st.sampled_from(["--set", "--cluster-opt", "--journal", "--step-timeout", "--cluster"]))]
    # a valid --cluster, --set K=... of the same option would override the bad one (argparse keeps
    # the last value); a dry run writes no journal, so an unwritable one is no error there
    parts = [p for p in valid if p[:1] != bad[:1] and not (kind == "journal" and p == ["--dry-run"])]
    if kind == "dangling":
        argv = [file, *(a for p in parts for a in p), *bad]
    else:
        at = draw(st.integers(0, len(parts)))
        argv = [file, *(a for p in parts[:at] for a in p), *bad, *(a for p in parts[at:] for a in p)]
    if draw(st.booleans()):
        argv.insert(0, "run")
    return argv, kind


ISSUE_PARAMS = {"offset", "fix", "every", "window", "require_reset"}
BOOLEANS = ("1", "0", "yes", "no", "on", "off", "true", "false")


def _kv(key: str, values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return values.map(lambda v: f"{key}={v}")


bad_set = st.one_of(
    words.filter(lambda w: w not in ISSUE_PARAMS).map(lambda w: f"{w}=1"),  # unknown parameter
    st.sampled_from(["offset", "=5", "=", "fix"]),  # not KEY=VALUE
    _kv("offset", st.sampled_from(["x", "1.5", "", "1e3", "nan"])),
    _kv("every", bad_seconds),
    _kv("window", bad_seconds),
    _kv("fix", words.filter(lambda w: w not in ("none", "all"))),
    _kv("require_reset", words.filter(lambda w: w not in BOOLEANS)),
)
bad_lab_option = st.one_of(
    st.tuples(st.just("nodes"), st.sampled_from(["0", "61", "-1", "1.5", "", "x", "nan", "1000"])).map(
        "=".join
    ),
    st.tuples(st.just("time_scale"), bad_seconds).map("=".join),
    words.filter(lambda w: w not in ("nodes", "time_scale")).map(lambda w: f"{w}=1"),
)
#: Backend names that are not installed; never ``module:attr`` (that would import any module).
bad_plugin = words.filter(lambda w: w not in ("lab", "kubernetes", "ssh", "docker", "kubectl_debug"))


@given(data=st.data())
@fuzz_settings(120)
def test_invalid_run_command_lines(fuzz: Fuzz, tmp_path: Path, data: st.DataObject) -> None:
    argv, _ = data.draw(bad_run_argv(tmp_path))
    fuzz.refused(argv)


@st.composite
def bad_sweep_argv(draw: st.DrawFn, tmp: Path) -> list[str]:
    (tmp / "afile").write_text("")
    bad = draw(
        st.one_of(
            st.tuples(st.just("--time-budget"), bad_seconds).map(list),
            st.tuples(st.just("--max-trials"), bad_counts).map(list),
            st.tuples(st.just("--seed"), st.sampled_from(["x", "1.5", "", "nan"])).map(list),
            st.just(["--out", str(tmp / "afile")]),
            st.just(["--out", str(tmp / "afile" / "results")]),
            st.tuples(st.just("--cluster-opt"), bad_lab_option).map(list),
            unknown_flags.map(lambda f: [f]),
        )
    )
    file = SWEEP
    if draw(st.booleans()) and bad[0] != "--out":
        file, bad = draw(st.sampled_from(_missing(tmp, "sweep"))), []
    valid = draw(st.sampled_from([[], ["--no-confirm"], ["--seed", "3"], ["--max-trials", "4"]]))
    return ["sweep", file, *valid, *bad]


@given(data=st.data())
@fuzz_settings(50)
def test_invalid_sweep_command_lines(fuzz: Fuzz, tmp_path: Path, data: st.DataObject) -> None:
    fuzz.refused(data.draw(bad_sweep_argv(tmp_path)))


@given(
    action=st.one_of(words.filter(lambda w: w not in ("up", "down", "status")), st.just("")), data=st.data()
)
@fuzz_settings(40)
def test_invalid_lab_command_lines(fuzz: Fuzz, action: str, data: st.DataObject) -> None:
    """Never a valid ``lab up``/``lab down``: the lab may be in use (the guard refuses them too)."""
    if data.draw(st.booleans()):
        argv = ["lab", action]
    else:
        argv = [
            "lab",
            data.draw(st.sampled_from(["up", "down", "status"])),
            "--nodes",
            data.draw(bad_counts | st.sampled_from(["61", "1000"])),
        ]
    fuzz.refused(argv)


# -- journals, broken on purpose -------------------------------------------------------------------
@pytest.fixture(scope="module")
def journals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A real summary document with a pending undo, and a real journal as lines (a killed run)."""
    where = tmp_path_factory.mktemp("journals")
    tb = testbed()
    run_sync(Experiment.single("j", SetSysctl("nf_conntrack_max", 1200)), tb, journal=where / "done.json")
    doc = json.loads((where / "done.json").read_text())
    doc["undo"][0].update(status="pending", verified=None)
    writer = JournalWriter(where / "lines.json")
    start = ev.RunStarted("j", {}, "memory", "t", {}, ("main",), 1, "r1", tb.spec.to_json(), 0.0)
    writer.write(start)
    writer._file.flush()  # type: ignore[union-attr]  # the lines, as a kill -9 leaves them
    return {"doc": json.dumps(doc), "lines": (where / "lines.json").read_text()}


JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=4),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _wrong_type(kind: type) -> st.SearchStrategy[object]:
    """JSON values that are not of ``kind`` (a bool is no int)."""
    return JSON_VALUES.filter(lambda v: not isinstance(v, kind) or (isinstance(v, bool) and kind is not bool))


FIELDS: dict[str, type] = {
    **{"experiment": str, "params": dict, "spec": dict, "cancelled": bool, "phases": list, "steps": list},
    **{"nodes": dict, "samples": list, "findings": dict, "undo": list, "pending": list, "schema": int},
}
NOT_LINES = st.one_of(
    st.text(min_size=1, max_size=20).filter(lambda t: bool(t.strip()) and "type" not in t),
    st.just('{"type": "undo_recorded", "undo": 7}'),
    st.just('{"type": "phase_started"}'),
)


@st.composite
def broken_journal(draw: st.DrawFn, journals: dict[str, str], *, undo: bool) -> bytes:
    """A journal no reader can take: not text, not a journal, a field of the wrong type, a bad
    line; with ``undo``, also a pending undo entry that is not an undo record."""
    kinds = ["binary", "text", "field", "line", "entry", *(["undo"] if undo else [])]
    kind = draw(st.sampled_from(kinds))
    if kind == "binary":
        data = draw(st.binary(min_size=1, max_size=40))
        assume(not _utf8(data))
        return data
    if kind == "text":
        text = draw(st.text(max_size=60))
        assume("experiment" not in text and "boundaries" not in text)
        return text.encode()
    if kind == "line":  # a middle line of a killed run's journal that is not a journal line
        lines = journals["lines"].splitlines()
        bad = draw(NOT_LINES)
        return "\n".join([*lines, bad, lines[0]]).encode()
    doc = json.loads(journals["doc"])
    if kind == "field":
        key = draw(st.sampled_from(sorted(FIELDS)))
        doc[key] = draw(_wrong_type(FIELDS[key]))
    elif kind == "entry":  # an entry of a list that is not one
        key = draw(st.sampled_from(["undo", "steps", "phases", "pending"]))
        not_entries = st.one_of(
            st.integers(), st.just({}), *([] if key == "pending" else [st.text(max_size=3)])
        )
        entry = draw(not_entries)
        doc[key] = [*doc[key], entry]
    else:  # a pending undo that restore cannot replay
        entry = doc["undo"][0]
        field = draw(st.sampled_from(["action", "id", "node", "target", "value"]))
        if field == "action":
            entry["action"] = draw(words.filter(lambda w: w not in ("sysctl", "rule", "scale")))
        elif field == "value":
            entry["value"] = None
        else:
            del entry[field]
    return json.dumps(doc).encode()


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@given(data=st.data())
@fuzz_settings(80)
def test_invalid_restore_and_report_inputs(
    fuzz: Fuzz, tmp_path: Path, journals: dict[str, str], data: st.DataObject
) -> None:
    command = data.draw(st.sampled_from(["restore", "report"]))
    choice = data.draw(st.sampled_from(["broken", "missing", "option"]))
    path = tmp_path / "journal.json"
    if choice == "broken":
        path.write_bytes(data.draw(broken_journal(journals, undo=command == "restore")))
        argv = [command, str(path)]
    elif choice == "missing":
        argv = [command, data.draw(st.sampled_from(_missing(tmp_path, "journal")))]
    else:  # a good journal, a bad option (restore with no journal at all is `lab down`: never)
        path.write_text(journals["doc"])
        bad = [data.draw(unknown_flags)]
        if command == "restore":
            bad = data.draw(
                st.sampled_from([bad, ["--undo-timeout", data.draw(bad_seconds)], ["--cluster-opt", "nodes"]])
            )
        argv = [command, str(path), *bad]
    fuzz.refused(argv)


# -- experiment files, broken on purpose ----------------------------------------------------------
HEADER = """\
from connreset import *

app = workloads.command(["sleep", "1000"])

"""
#: Steps that are valid on the default lab (two nodes), one of which is never drawn twice.
VALID_STEPS = [
    'SetSysctl("nf_conntrack_max", 1200)',
    'SetSysctl("nf_conntrack_tcp_be_liberal", 1, nodes=["node-1"])',
    'ApplyFix("be-liberal")',
    'ApplyFix("bigger-table", max=131072, buckets=32768)',
    "Wait(seconds=0.1)",
    "Observe(1, every=0.5)",
    'Deploy("web", app, replicas=3, node="node-2", port=8080)',
    'Deploy("app", app, replicas=2) >> Scale("app", 4) >> AssertRunning("app", within=5)',
    "AssertTableFull(within=1, expect=None)",
    'Deploy("logger", app) >> AssertLogs("logger", pattern="x", within=1, expect=None)',
]


def _expr(value: object) -> str:
    """A Python expression for a value (floats like nan and inf included)."""
    if isinstance(value, float) and not math.isfinite(value):
        return f'float("{value}")'
    return repr(value)


not_positive = st.one_of(
    st.sampled_from([float("nan"), float("inf"), float("-inf"), 0, 0.0, -1, True, "1", None]),
    st.floats(max_value=0, allow_nan=False),
)
not_non_negative = st.one_of(
    st.sampled_from([float("nan"), float("inf"), -1, "0", True]), st.floats(max_value=-1e-9, allow_nan=False)
)
not_replicas = st.one_of(
    st.integers(max_value=-1),
    st.integers(min_value=2041, max_value=10**9),
    st.sampled_from([1.5, "3", True, None]),
)
dns_bad = st.one_of(
    st.sampled_from(["", "App", "a_b", "-a", "a-", "a" * 64, "a.b", "ü"]),
    st.text(max_size=6).filter(lambda t: not _dns(t)),
)
node_bad = st.text(max_size=8).filter(lambda t: t not in ("node-1", "node-2"))
KEYS = sorted(sysctl.KNOWN)


def _dns(text: str) -> bool:
    import re

    return bool(re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", text))


@st.composite
def out_of_range(draw: st.DrawFn) -> tuple[str, object]:
    key = draw(st.sampled_from(KEYS))
    spec = sysctl.KNOWN[key]
    value = draw(
        st.one_of(
            st.integers(max_value=spec.minimum - 1),
            st.integers(min_value=spec.maximum + 1),
            st.sampled_from([1.0, "lots", "", None, True, float("nan")]),
        )
    )
    return key, value


TAKES_SECONDS = [
    "Observe({})",
    "AssertTableFull(within={})",
    'AssertRunning("x", within={})',
    "Wait(seconds=1, timeout={})",
    'AssertLogs("x", pattern="y", within={})',
    "Observe(1, every={})",
]
not_ports = st.one_of(st.integers(max_value=0), st.integers(min_value=65536), st.just(80.5))
NOT_PATTERNS = ["(", "[", "*", "", "a{2,1}", "(?P<", "\\"]
BAD_FIXES = [
    'ApplyFix("bigger-table", max=10)',
    'ApplyFix("be-liberal", max=10, buckets=10)',
    'ApplyFix("bigger-table", max=0, buckets=10)',
]
WORKLOADS = [
    'workloads.simple_app_client("s", rate={})',
    'workloads.simple_app_client("s", hold={})',
    'workloads.nc_loop("s", every={})',
]
BAD_WAITS = [
    "Wait()",
    "Wait(seconds=1, until=print)",
    'Wait(seconds=0, name="a", after=("b",)) | Wait(seconds=0, name="b", after=("a",))',
]


@st.composite
def invalid_step(draw: st.DrawFn) -> str:
    """One step (or little graph) that validation must refuse."""
    kind = draw(st.integers(0, 17))
    if kind == 0:
        return f"Deploy({draw(dns_bad)!r}, app)"
    if kind == 1:
        return f'Deploy("x", app, replicas={_expr(draw(not_replicas))})'
    if kind == 2:
        return f'Deploy("x", app) >> Scale("x", {_expr(draw(not_replicas))})'
    if kind == 3:
        key = draw(words.filter(lambda w: sysctl.full_name(w) not in sysctl.KNOWN))
        return f"SetSysctl({key!r}, 1)"
    if kind == 4:
        key, value = draw(out_of_range())
        return f"SetSysctl({key!r}, {_expr(value)})"
    if kind == 5:
        return f'SetSysctl("nf_conntrack_max", 1200, nodes=[{draw(node_bad)!r}])'
    if kind == 6:
        return f'Deploy("x", app, node={draw(node_bad)!r})'
    if kind == 7:
        return draw(st.sampled_from(TAKES_SECONDS)).format(_expr(draw(not_positive)))
    if kind == 8:
        return f"Wait(seconds={_expr(draw(not_non_negative))})"
    if kind == 9:
        return f'Deploy("x", app, port={_expr(draw(not_ports))})'
    if kind == 10:
        return f'AssertLogs("x", pattern={draw(st.sampled_from(NOT_PATTERNS))!r})'
    if kind == 11:
        fix = draw(words)
        return draw(st.sampled_from([f"ApplyFix({fix!r})", *BAD_FIXES]))
    if kind == 12:
        workload = draw(st.sampled_from(WORKLOADS))
        value = draw(not_positive if "every" in workload else not_non_negative)
        return f'Deploy("x", {workload.format(_expr(value))})'
    if kind == 13:
        return draw(st.sampled_from(BAD_WAITS))
    if kind == 14:
        return f"Wait(seconds=0, after=({draw(words)!r},))"
    if kind == 15:
        return f'AssertRunning("x", replicas={_expr(draw(st.integers(max_value=-1)))})'
    if kind == 16:
        return f'Deploy("a", app, replicas=1500) | Deploy("b", app, replicas={draw(st.integers(541, 2040))})'
    return f'Deploy("x", app, replicas=600, node="node-1") >> Scale("x", {draw(st.integers(1021, 2040))})'


@st.composite
def broken_experiment(draw: st.DrawFn) -> tuple[str, str]:
    """(the kind of breakage, an experiment file's source)."""
    kind = draw(st.sampled_from(["step", "syntax", "name", "raises", "returns", "phases", "module"]))
    steps = draw(st.lists(st.sampled_from(VALID_STEPS), unique=True, max_size=3))
    join = draw(st.sampled_from([" >> ", " | "]))
    if kind == "step":
        bad = draw(invalid_step())
        at = draw(st.integers(0, len(steps)))
        graph = join.join(f"({s})" for s in [*steps[:at], bad, *steps[at:]])
        return kind, HEADER + f'experiment = Experiment.single("fuzzed", {graph})\n'
    graph = join.join(f"({s})" for s in steps) or "Wait(seconds=0)"
    good = (
        HEADER
        + f'def experiment(*, n: int = 1) -> Experiment:\n    return Experiment.single("fuzzed", {graph})\n'
    )
    if kind == "syntax":
        at = draw(st.integers(0, len(good)))
        inserted = st.sampled_from(list("([{:@$?`\\")).map(lambda c: good[:at] + c + good[at:])
        cut = good[: max(at, len(HEADER)) - 1] if at < len(good) - 1 else good[:-3]
        source = draw(st.one_of(inserted, st.just(cut), st.text(max_size=40)))
        assume(not _compiles(source))
        return kind, source
    if kind == "name":
        name = draw(words.filter(lambda w: not keyword.iskeyword(w) and w not in _DEFINED))
        where = draw(st.sampled_from(["module", "function"]))
        if where == "module":
            return kind, HEADER + f'experiment = Experiment.single("fuzzed", {name})\n'
        return (
            kind,
            HEADER + f'def experiment() -> Experiment:\n    return Experiment.single("fuzzed", {name})\n',
        )
    if kind == "raises":
        raise_ = draw(st.sampled_from(RAISES))
        if draw(st.booleans()):
            return kind, HEADER + f"{raise_}\n"
        return kind, HEADER + f"def experiment() -> Experiment:\n    {raise_}\n"
    if kind == "returns":
        value = draw(st.sampled_from(NOT_EXPERIMENTS))
        if draw(st.booleans()):
            return kind, HEADER + f"def experiment():\n    return {value}\n"
        return kind, HEADER + f"experiment = {value}\n"
    if kind == "phases":
        phases = draw(st.sampled_from(BAD_PHASES))
        return kind, HEADER + f"experiment = Experiment('fuzzed', {phases})\n"
    body = "    return Experiment.single('f', Wait(seconds=0))\n"
    return kind, draw(
        st.sampled_from(
            [
                HEADER,  # no experiment
                HEADER + "def experiment(x) -> Experiment:\n" + body,
                HEADER + "def experiment(*, x: list = []) -> Experiment:\n" + body,
                HEADER + "def experiment(*, x: 'Nope' = 1) -> Experiment:\n" + body,
                HEADER + "experiment = Experiment('Bad Name!', [Phase('a', Wait(seconds=0))])\n",
                good + "cluster_options = 5\n",
                good + "cluster_options = {'lab': {'nodes': 0}}\n",
                good + "cluster_options = {'lab': {'time_scale': float('nan')}}\n",
                good + "cluster_options = {'lab': {'colour': 'red'}}\n",
            ]
        )
    )


RAISES = [
    *("raise ValueError('no')", "raise RuntimeError('broken')", "raise KeyError('k')", "1 / 0"),
    *("assert False, 'nope'", "raise SystemExit(0)", "raise SystemExit(3)", "import sys; sys.exit()"),
    *("[][1]", "None.x", "raise OSError(5, 'io')", "raise MemoryError()", "experiment()"),
    *("raise BaseException('base')", "raise StopIteration", "import no_such_module_here"),
    "raise GeneratorExit",
]
NOT_EXPERIMENTS = [
    *("None", "5", "'x'", "[]", "{}", "Phase('p', Wait(seconds=0))", "Wait(seconds=0)", "Experiment"),
    "print",
]
BAD_PHASES = [
    "[]",
    "[Phase('a', Wait(seconds=0)), Phase('a', Wait(seconds=0))]",
    "[Phase('a b', Wait(seconds=0))]",
    "[Phase('', Wait(seconds=0))]",
    "[Phase('a', [1, 2])]",
    "[Phase('a', 'wait')]",
    "[5]",
]
#: Names an experiment file has: builtins, what ``from connreset import *`` brings, its own.
_DEFINED = set(dir(builtins)) | set(dir(__import__("connreset"))) | {"app", "workloads", "experiment"}


def _compiles(source: str) -> bool:
    try:
        compile(source, "<fuzz>", "exec")
    except (SyntaxError, ValueError):
        return False
    return True


@pytest.fixture
def files(tmp_path: Path) -> Iterator[Path]:
    """Each example's file gets a name of its own (the loader keeps modules by name)."""
    return (tmp_path / f"fuzzed_{n}.py" for n in itertools.count(1))


@given(broken=broken_experiment())
@fuzz_settings(150)
def test_broken_experiment_files(fuzz: Fuzz, files: Iterator[Path], broken: tuple[str, str]) -> None:
    """Each refusal names the file (and line or step); a bad ``cluster_options`` names the option."""
    _, source = broken
    path = next(files)
    path.write_text(source)
    options = "cluster_options = {" in source
    fuzz.refused([str(path), "--no-tui"], naming=None if options else str(path))


USES_PARAMS = (
    HEADER
    + """\
def experiment(*, n: int = 1, wait: float = 0.5, key: str = "nf_conntrack_max", value: int = 1200,
               node: str = "node-1", fix: bool = False) -> Experiment:
    return Experiment.single(
        "params",
        Deploy("app", app, replicas=n, node=node)
        >> Wait(seconds=wait)
        >> SetSysctl(key, value, nodes=[node])
        >> AssertRunning("app", within=wait + 1),
    )
"""
)


@st.composite
def bad_sets(draw: st.DrawFn) -> list[str]:
    """--set values that cannot make a valid plan of USES_PARAMS."""
    bad = draw(
        st.one_of(
            st.tuples(st.just("n"), st.one_of(st.integers(max_value=-1), st.integers(1021, 10**12)).map(str)),
            st.tuples(st.just("n"), st.sampled_from(["x", "1.5", "", "nan"])),
            st.tuples(st.just("wait"), bad_seconds.filter(lambda t: not _non_negative(t))),
            st.tuples(st.just("key"), words.filter(lambda w: sysctl.full_name(w) not in sysctl.KNOWN)),
            st.tuples(
                st.just("value"),
                st.one_of(st.integers(max_value=0), st.integers(min_value=2**31), st.just(1.5)).map(str),
            ),
            st.tuples(st.just("node"), node_bad.filter(lambda t: "\x00" not in t)),
            st.tuples(
                st.just("fix"), words.filter(lambda w: w not in ("yes", "no", "on", "off", "true", "false"))
            ),
            st.tuples(
                words.filter(lambda w: w not in ("n", "wait", "key", "value", "node", "fix")), st.just("1")
            ),
        )
    )
    return ["--set", "=".join(bad)]


def _non_negative(text: str) -> bool:
    try:
        value = float(text)
    except ValueError:
        return False
    return math.isfinite(value) and value >= 0


@given(sets=bad_sets())
@fuzz_settings(80)
def test_parameters_that_make_an_invalid_plan(fuzz: Fuzz, files: Iterator[Path], sets: list[str]) -> None:
    path = next(files)
    path.write_text(USES_PARAMS)
    fuzz.refused([str(path), "--no-tui", *sets], naming=str(path))


def test_the_valid_forms_of_the_fuzzed_files_pass(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, untouchable: Touched
) -> None:
    """The generators break valid files: without the break, each plans (dry run) with exit 0."""
    path = tmp_path / "valid.py"
    for steps in (VALID_STEPS, [" >> ".join(f"({s})" for s in VALID_STEPS)]):
        graph = " | ".join(f"({s})" for s in steps)
        path.write_text(HEADER + f'experiment = Experiment.single("fuzzed", {graph})\n')
        assert main([str(path), "--dry-run"]) == 0, capsys.readouterr().err
    path.write_text(USES_PARAMS)
    assert main([str(path), "--dry-run", "--set", "n=1020", "--set", "wait=0"]) == 0, capsys.readouterr().err
    assert (
        main(
            [ISSUE, "--dry-run", "--set", "window=5", "--set", "fix=none", "--cluster-opt", "time_scale=0.5"]
        )
        == 0
    )
