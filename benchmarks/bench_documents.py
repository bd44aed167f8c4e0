"""Cost of the issue 14 documents on the default city: map.png / map.pdf, tables.xlsx, report.pdf.

Run ``.venv/bin/python benchmarks/bench_documents.py`` (one run each; prints wall times and
sizes, and the process's peak RSS). See docs/BENCHMARKS.md, "Documents (issue 14)".
"""

from __future__ import annotations

import logging
import resource
import time

from coverage import export, figure, pipeline, report
from coverage.inputs import CityInputs, load_city
from coverage.scenario import Scenario
from coverage.siting import SitingParams

log = logging.getLogger("bench_documents")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    city = load_city(CityInputs())
    res = pipeline.run(city, Scenario(siting=SitingParams(k=5)))
    log.info("edges %d, demand units %d", city.net.n_edges, len(res.audit.demand))
    t0 = time.perf_counter()
    fig = figure.map_figure(figure.figure_layers(res, city), title="bench")
    t1 = time.perf_counter()
    png = figure.map_png_bytes(fig)
    t2 = time.perf_counter()
    pdf = figure.map_pdf_bytes(fig)
    t3 = time.perf_counter()
    log.info("figure %.2f s; map.png %.2f s, %.0f kB", t1 - t0, t2 - t1, len(png) / 1e3)
    log.info("map.pdf %.2f s, %.0f kB", t3 - t2, len(pdf) / 1e3)
    t0 = time.perf_counter()
    wb = export.workbook_bytes(export.workbook_sheets(res))
    log.info("tables.xlsx %.2f s, %.0f kB", time.perf_counter() - t0, len(wb) / 1e3)
    files = export.output_files(res, city, documents=export.Documents(workbook=False, figure=None))
    t0 = time.perf_counter()
    printed = report.report_pdf_bytes(files[export.REPORT_HTML].decode("utf-8"))
    took = time.perf_counter() - t0
    log.info(
        "report.pdf %.2f s, %s", took, f"{len(printed) / 1e3:.0f} kB" if printed else "no Chromium"
    )
    log.info("peak RSS %.0f MB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3)


if __name__ == "__main__":
    main()
