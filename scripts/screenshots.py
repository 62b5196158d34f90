"""Make the docs' screenshots: the TUI (SVG, by textual) and a report (HTML, and a plot as PNG).

    .venv/bin/python scripts/screenshots.py        # writes docs/images/

The TUI is shown on fixed scenes (tests/tui/scene.py, the ones the snapshot tests use: a run, and a
sweep's trial); the report is made from a journal of a run on the test doubles
(connreset.testing), so no root is needed.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connreset import AssertTableFull, Experiment, Observe, Phase, SetSysctl, run  # noqa: E402
from connreset.runs.journal import read  # noqa: E402
from connreset.testing import testbed  # noqa: E402
from connreset.ui.report import html_report, node_figure  # noqa: E402
from tests.tui import scene  # noqa: E402

OUT = ROOT / "docs" / "images"


async def tui() -> None:
    for finished, name in ((False, "tui-running.svg"), (True, "tui-verdict.svg")):
        app = scene.app()
        async with app.run_test(size=scene.SIZE) as pilot:
            scene.feed(app, finished=finished)
            await pilot.pause()
            await pilot.wait_for_scheduled_animations()
            await pilot.pause()
            app.save_screenshot(name, path=str(OUT))
    sweep = scene.sweep_app()
    async with sweep.run_test(size=scene.SIZE) as pilot:
        scene.feed_sweep(sweep)
        await pilot.pause()
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()
        sweep.save_screenshot("tui-sweep.svg", path=str(OUT))


async def report() -> None:
    tb = testbed()
    tb.access.counters["node-1"].count = 1300
    tb.access.counters["node-1"].dropping = 7
    tb.access.counters["node-2"].count = 300
    exp = Experiment(
        "example",
        [
            Phase("baseline", Observe(1, every=0.05), expect="no drops"),
            Phase(
                "saturate",
                SetSysctl("nf_conntrack_max", 1200) >> Observe(1, every=0.05) >> AssertTableFull(within=1),
                expect="count reaches max 1200; drops",
            ),
            Phase(
                "fix",
                SetSysctl("nf_conntrack_max", 1400) >> Observe(1, every=0.05) >> AssertTableFull(within=0.5),
                expect="a bigger table that is still too small: the table fills",
            ),
        ],
    )
    with tempfile.TemporaryDirectory() as tmp:
        journal = Path(tmp) / "j.json"
        await run(exp, tb, journal=journal)
        doc = read(journal)
    (OUT / "report-example.html").write_text(html_report(doc), encoding="utf-8")
    node_figure(doc, "node-1").savefig(OUT / "report-node-1.png", dpi=100, bbox_inches="tight")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    asyncio.run(tui())
    asyncio.run(report())
    for path in sorted(OUT.iterdir()):
        print(path.relative_to(ROOT))


if __name__ == "__main__":
    main()
