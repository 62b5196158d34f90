"""``connreset report``: the HTML parses, the plots are there, and its numbers are the journal's."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from connreset import AssertTableFull, Experiment, Observe, Phase, SetSysctl, run_sync
from connreset.runs.journal import read
from connreset.testing import testbed
from connreset.ui.cli import main
from connreset.ui.report import html_report, markdown, node_table, report


class Page(HTMLParser):
    """The parts of the report the tests look at: tables (as text cells), figures with an svg."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.figures: list[dict[str, str | None]] = []
        self.svgs = 0
        self.external: list[str] = []
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None
        self._in_svg = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in ("link", "script", "img") or (tag == "image" and a.get("href")):
            self.external.append(tag)
        if tag == "svg":
            self.svgs += 1
            self._in_svg += 1
        if tag == "figure":
            self.figures.append(a)
        if tag == "table":
            self._table = self.tables.setdefault(a.get("class") or "", [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self._table[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None
        elif tag == "svg":
            self._in_svg -= 1

    def handle_data(self, data: str) -> None:
        if self._cell is not None and not self._in_svg:
            self._cell.append(data)


def journal(tmp_path: Path) -> Path:
    tb = testbed()
    tb.access.counters["node-1"].count = 1500
    tb.access.counters["node-1"].dropping = 7  # a kernel that keeps dropping
    tb.access.counters["node-2"].count = 40
    exp = Experiment(
        "fill",
        [
            Phase("baseline", Observe(0.2, every=0.05), expect="no drops"),
            Phase(
                "saturate",
                SetSysctl("nf_conntrack_max", 1200)
                >> Observe(0.2, every=0.05)
                >> AssertTableFull(within=0.2, expect=False),
                expect="the table fills",
            ),
            Phase("fix", Observe(0.1), expect="never runs"),
        ],
    )
    path = tmp_path / "j.json"
    run_sync(exp, tb, journal=path)
    return path


@pytest.fixture
def doc_and_page(tmp_path: Path) -> tuple[dict[str, object], Page, str]:
    path = journal(tmp_path)
    doc = read(path)
    out = tmp_path / "r.html"
    assert main(["report", str(path), "--html", str(out)]) == 0
    text = out.read_text()
    page = Page()
    page.feed(text)
    page.close()
    return doc, page, text


def test_the_html_parses_and_is_self_contained(doc_and_page: tuple[dict[str, object], Page, str]) -> None:
    _, page, text = doc_and_page
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert page.external == []  # no stylesheet, script or image fetched: CSS and SVG are inline
    assert "<style>" in text and not re.search(r'(src|href)="(https?:|//)', text)


def test_a_plot_per_node_with_phases_and_the_failure_marked(
    doc_and_page: tuple[dict[str, object], Page, str],
) -> None:
    _, page, text = doc_and_page
    assert [f.get("data-node") for f in page.figures] == ["node-1", "node-2"]
    assert page.svgs == 2
    assert "node-1: conntrack count against its max" in text  # the titles are text (svg.fonttype none)
    for label in ("baseline", "saturate", "✗ refute table full", "nf_conntrack_max"):
        assert label in text


def test_the_numbers_shown_are_the_journals(doc_and_page: tuple[dict[str, object], Page, str]) -> None:
    doc, page, _ = doc_and_page
    samples = doc["samples"]
    assert isinstance(samples, list)

    def last(node: str, metric: str) -> float:
        return [s["value"] for s in samples if s["node"] == node and s["metric"] == metric][-1]

    head, *rows = page.tables["nodes"]
    assert head == ["node", "samples", "peak count", "max", "drop", "invalid"]
    for row in rows:
        node = row[0]
        counts = [s["value"] for s in samples if s["node"] == node and s["metric"] == "conntrack_count"]
        assert row[1:] == [
            str(len(counts)),
            str(int(max(counts))),
            str(int(last(node, "conntrack_max"))),
            str(int(last(node, "conntrack_drop"))),
            str(int(last(node, "conntrack_invalid"))),
        ]
    assert rows[0][:4] == ["node-1", rows[0][1], "1500", "1200"]
    verdicts = {r[0]: r[1] for r in page.tables["verdicts"][1:]}
    phases = doc["phases"]
    assert isinstance(phases, list)
    assert verdicts == {p["name"]: p["status"].upper() for p in phases}
    assert verdicts == {"baseline": "PASSED", "saturate": "FAILED", "fix": "SKIPPED"}
    facts = dict(page.tables["facts"])
    environment = doc["environment"]
    assert isinstance(environment, dict)
    assert {k: facts[k] for k in environment} == environment
    assert facts["run id"] == doc["run_id"]


def test_the_markdown_summary_has_the_same_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = journal(tmp_path)
    assert main(["report", str(path)]) == 0
    out = capsys.readouterr().out
    doc = read(path)
    assert out.strip() == markdown(doc)
    assert out.startswith("# fill: failed")
    for row in node_table(doc):
        cells = [row[k] for k in ("node", "samples", "peak", "max", "drop", "invalid")]
        line = "| " + " | ".join(str(int(c)) if isinstance(c, float) else str(c) for c in cells) + " |"
        assert line in out
    assert "| saturate | FAILED |" in out and "Undo: 1/1 change(s) put back and verified." in out


def test_a_sweep_in_the_document_gets_its_plot(tmp_path: Path) -> None:
    doc = read(journal(tmp_path))
    doc["sweep"] = {
        "parameter": "nf_conntrack_max",
        "trials": [{"value": 600, "outcome": "failed"}, {"value": 1200, "outcome": "passed"}],
        "boundary": "between 600 and 1200",
    }
    text = html_report(doc)
    page = Page()
    page.feed(text)
    assert page.svgs == 3 and 'id="sweep"' in text
    assert "sweep: 2 trial(s); boundary: between 600 and 1200" in text


def test_a_journal_that_is_not_one_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    assert main(["report", str(bad)]) == 2
    assert re.search(r"not a connreset journal", capsys.readouterr().err)


def test_a_sweeps_results_get_a_report_of_their_own(tmp_path: Path) -> None:
    """`connreset report results.json`: the boundaries, the recommendation and the sweep's plot."""
    import asyncio

    from connreset.sweep import run_sweep
    from tests.sweep.test_search import make

    asyncio.run(
        run_sweep(make(1000, workloads=[{"pods": 1}, {"pods": 2}]), testbed(), out=tmp_path, database=None)
    )
    md = report(tmp_path / "results.json", tmp_path / "sweep.html")
    assert "| pods=1 | 960 | 1024 |" in md and "- pods=2: max_ ≥ 2048" in md
    text = (tmp_path / "sweep.html").read_text()
    page = Page()
    page.feed(text)
    assert page.svgs == 1 and 'id="sweep"' in text and "pods=2: max_ ≥ 2048" in text


def test_an_interrupted_sweeps_report_says_so(tmp_path: Path) -> None:
    import asyncio

    from connreset.sweep import run_sweep
    from tests.sweep.test_search import make

    asyncio.run(run_sweep(make(1000), testbed(), out=tmp_path, database=None))
    results = tmp_path / "results.json"
    doc = json.loads(results.read_text())
    results.write_text(json.dumps({**doc, "interrupted": True}))
    md = report(results, tmp_path / "sweep.html")
    said = f"Interrupted after {len(doc['trials'])} trial(s): the boundaries are as far as those trials"
    assert said in md and said in (tmp_path / "sweep.html").read_text()


@pytest.mark.parametrize("where", ["missing/dir/out.html", "file/out.html", "."])
def test_html_that_cannot_be_written_is_refused_before_anything_is_read_or_written(
    tmp_path: Path, where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("")
    out = tmp_path / where
    missing_journal = tmp_path / "no-such-journal.json"  # the output is checked first
    assert main(["report", str(missing_journal), "--html", str(out)]) == 2
    reason = {
        "missing/dir/out.html": f"the directory {tmp_path}/missing/dir does not exist",
        "file/out.html": f"the directory {tmp_path}/file is not a directory",
        ".": "it is a directory",
    }[where]
    assert capsys.readouterr() == ("", f"connreset: cannot write the HTML report to {out}: {reason}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_the_labs_kube_proxy_is_named_in_the_environment() -> None:
    env = {"kernel": "6.18", "cluster": {"kube_proxy": "nftables (kube-proxy v1.33+ ...)"}}
    doc = {"experiment": "x", "environment": env, "phases": [], "findings": {}}
    assert "kernel 6.18, kube-proxy nftables (kube-proxy v1.33+ ...)" in markdown(doc)
    assert "kube-proxy" in html_report(doc)
