"""The default city (91 stations, issue 14) and its documents: map.png / map.pdf, tables.xlsx, report.pdf.

In process, one run each (wall seconds): ``load_city`` of the embedded city (warm network
cache), ``pipeline.run`` without and with the service-area polygons, the figure and each
document; then the whole ``coverage-planner audit`` (and ``audit --pdf``) as a subprocess
with its wall time and peak RSS.

Usage::

    .venv/bin/python benchmarks/bench_documents.py                 # print the table
    .venv/bin/python benchmarks/bench_documents.py --write-docs    # and write docs/bench/documents.md
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, log, machine_info, machine_markdown, markdown_table, write_markdown

DOC = ROOT / "docs" / "bench" / "documents.md"
#: Hand-written reading of the figures, appended to the section (no figures in it).
NOTES = ROOT / "docs" / "bench" / "documents.notes.md"
INTRO = (
    "The default city, `chengdu_central.osm.bz2` with its 91 GCJ-02 stations (issue 14), and "
    "the documents of its output, written by `benchmarks/bench_documents.py --write-docs`. In "
    "process, one run each, wall seconds: `load_city` on a warm network cache, `pipeline.run` "
    "without and with the service-area polygons (182 per-station areas and the unions) and with "
    "5 proposed sites, then each document; the last rows are whole commands in a subprocess "
    "(wall time, peak RSS of the child)."
)


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _kb(data: bytes | None) -> str:
    return "–" if data is None else f"{len(data) / 1e3:.0f} kB"


def in_process(cache: Path) -> list[dict[str, str]]:
    """Rows of the in-process steps."""
    from coverage import export, figure, pipeline, report
    from coverage.inputs import CityInputs, load_city
    from coverage.scenario import Scenario
    from coverage.siting import SitingParams

    load_city(CityInputs(cache_dir=cache))  # warms the network and derived caches
    city, t_load = _timed(lambda: load_city(CityInputs(cache_dir=cache)))
    rows = [{"step": "`load_city` (warm cache)", "wall": f"{t_load:.2f} s", "size": "–"}]
    _, t_plain = _timed(lambda: pipeline.run(city, Scenario(), with_polygons=False))
    rows.append({"step": "`pipeline.run`, no polygons", "wall": f"{t_plain:.2f} s", "size": "–"})
    _, t_poly = _timed(lambda: pipeline.run(city, Scenario()))
    rows.append({"step": "`pipeline.run`, with polygons", "wall": f"{t_poly:.2f} s", "size": "–"})
    res = pipeline.run(city, Scenario(siting=SitingParams(k=5)))
    units = f"{city.net.n_edges:,} edges, {len(res.audit.demand):,} units"
    rows[0]["size"] = f"{len(city.centers)} stations, {units}"
    fig, t_fig = _timed(lambda: figure.map_figure(figure.figure_layers(res, city), title="bench"))
    rows.append({"step": "`figure.map_figure` (5 sites)", "wall": f"{t_fig:.2f} s", "size": "–"})
    png, t_png = _timed(lambda: figure.map_png_bytes(fig))
    rows.append({"step": "`map.png`", "wall": f"{t_png:.2f} s", "size": _kb(png)})
    pdf, t_pdf = _timed(lambda: figure.map_pdf_bytes(fig))
    rows.append({"step": "`map.pdf`", "wall": f"{t_pdf:.2f} s", "size": _kb(pdf)})
    wb, t_wb = _timed(lambda: export.workbook_bytes(export.workbook_sheets(res)))
    rows.append({"step": "`tables.xlsx`", "wall": f"{t_wb:.2f} s", "size": _kb(wb)})
    files = export.output_files(res, city, documents=export.Documents(workbook=False, figure=None))
    page = files[export.REPORT_HTML].decode("utf-8")
    printed, t_print = _timed(lambda: report.report_pdf_bytes(page))
    rows.append(
        {
            "step": "`report.pdf` (headless Chromium)",
            "wall": f"{t_print:.2f} s" if printed else "no Chromium",
            "size": _kb(printed),
        }
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
    rows.append({"step": "peak RSS of these steps", "wall": "–", "size": f"{peak:.0f} MB"})
    return rows


def command(args: list[str], cache: Path, out: Path) -> dict[str, str]:
    """One ``coverage-planner`` command in a child process: wall time and its peak RSS."""
    cmd = [sys.executable, "-m", "coverage.cli", *args, "--out", str(out)]
    cmd += ["--cache-dir", str(cache), "--quiet"]
    t0 = time.perf_counter()
    pid = subprocess.Popen(cmd, cwd=ROOT).pid
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    docs = sorted(
        n for n in ("map.png", "map.pdf", "tables.xlsx", "report.pdf") if (out / n).exists()
    )
    return {
        "step": f"`coverage-planner {' '.join(args)}` (warm cache)",
        "wall": f"{wall:.2f} s" if code == 0 else f"exit {code}",
        "size": f"peak RSS {usage.ru_maxrss / 1e3:.0f} MB; {', '.join(docs)}",
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--write-docs", action="store_true", help=f"write {DOC.relative_to(ROOT)}")
    args = p.parse_args(argv)
    before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-documents-") as tmp:
        cache = Path(tmp) / "cache"
        # the commands first: a child's peak RSS starts from its parent's at the fork
        command(["audit"], cache, Path(tmp) / "warm-up")  # fills the cache
        commands = [command(["audit"], cache, Path(tmp) / "audit")]
        commands.append(command(["audit", "--pdf"], cache, Path(tmp) / "audit-pdf"))
        rows = in_process(cache)
        log("in process: " + "; ".join(f"{r['step']} {r['wall']}" for r in rows))
        rows += commands
    after = os.getloadavg()
    info = machine_info()
    load = (
        f"Load average (1 / 5 / 15 min) before: {' / '.join(f'{v:.1f}' for v in before)}; "
        f"after: {' / '.join(f'{v:.1f}' for v in after)} on {os.cpu_count()} logical cores "
        "(above the core count, other jobs shared the machine: read the figures as upper bounds).\n"
    )
    print(machine_markdown(info) + load)
    print(markdown_table(rows))
    if args.write_docs:
        notes = NOTES.read_text(encoding="utf-8") if NOTES.exists() else ""
        write_markdown(
            DOC,
            "The default city and its documents (issue 14)",
            rows,
            machine=info,
            intro=INTRO,
            extra=f"{load}\nCommand: `.venv/bin/python benchmarks/bench_documents.py --write-docs`\n\n{notes}",
        )
        log(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
