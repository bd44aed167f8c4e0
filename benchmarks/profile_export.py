"""Time each part of the output step of ``audit`` on a cached city, in process (issue 16).

Loads the city from a warm cache, runs the audit (service areas from the polygon
cache when an earlier ``audit`` left them) and times every file of the output
contract separately: the GeoJSON layers, the CSV tables, ``tables.xlsx``, the map
figure and its PNG/PDF, ``report.html``. CPU seconds of this process.

Usage::

    python benchmarks/profile_export.py CITY.osm.pbf --cache-dir CACHE
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's `coverage`


def main() -> None:
    """Print one line per part: CPU seconds and wall seconds."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("osm", type=Path)
    ap.add_argument("--cache-dir", type=Path, required=True)
    args = ap.parse_args()

    from coverage import export, figure, pipeline
    from coverage.inputs import CityInputs, load_city
    from coverage.scenario import Scenario

    def timed(name: str, fn: Any) -> Any:
        c0, t0 = time.process_time(), time.perf_counter()
        value = fn()
        print(
            f"{name:40s} {time.process_time() - c0:8.2f} s CPU {time.perf_counter() - t0:8.2f} s wall"
        )
        return value

    city = timed("load city", lambda: load_city(CityInputs(osm=args.osm, cache_dir=args.cache_dir)))
    res = timed("audit", lambda: pipeline.run(city, Scenario(name="audit"), cache_polygons=True))
    a = res.audit
    timed("centers.geojson", lambda: export.geojson_bytes(a.centers, ["center_id"]))
    timed("service_areas.geojson", lambda: export.geojson_bytes(export._service_areas(a)))
    demand, cols = export._demand_frame(a, res.siting, res.capacity)
    timed("demand.geojson", lambda: export.geojson_bytes(demand, cols))
    timed("uncovered.geojson", lambda: export.geojson_bytes(a.uncovered))
    timed("tables (csv)", lambda: export._table_files(res))
    timed("tables.xlsx", lambda: export.workbook_bytes(export.workbook_sheets(res)))
    layers = timed("figure layers", lambda: figure.figure_layers(res, city))
    fig = timed("map figure", lambda: figure.map_figure(layers, title="t"))
    timed("map.png", lambda: figure.map_png_bytes(fig))
    timed("map.pdf", lambda: figure.map_pdf_bytes(fig))
    doc = export.summary_dict(res, city)
    timed("report.html", lambda: export._report("t", doc, res, "zh", None))


if __name__ == "__main__":
    main()
