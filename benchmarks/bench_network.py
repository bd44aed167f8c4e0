"""Benchmark the walking network of the default city (Chengdu): cold build and cached load.

Run from the repository root::

    .venv/bin/python benchmarks/bench_network.py            # prints the table
    .venv/bin/python benchmarks/bench_network.py --write-docs  # also docs/bench/network.md

*Cold* is ``read_osm`` + network build with the cache disabled; *cached* is
``walk_network`` answering from an ``.npz`` cache written beforehand (it still
hashes the input file, as every real call does). Each figure is the median of
``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, log, machine_info, measure, write_markdown

CITY = ROOT / "data" / "chengdu_central.osm.bz2"
DOC = ROOT / "docs" / "bench" / "network.md"
TARGET_COLD_S = 5.0
TARGET_CACHED_S = 0.5


def cpu_seconds(fn: Callable[[], Any], repeat: int) -> float:
    """Median CPU time (user + system, this process) of ``repeat`` calls.

    Less sensitive than wall time to other jobs sharing the machine.
    """
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return float(statistics.median(times))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per figure")
    parser.add_argument("--city", type=Path, default=CITY, help="OSM file to build")
    parser.add_argument("--write-docs", action="store_true", help=f"write {DOC.relative_to(ROOT)}")
    args = parser.parse_args(argv)

    from coverage.netcache import walk_network

    city: Path = args.city
    log(f"cold build of {city.name}, {args.repeat} runs")
    cold = measure(lambda: walk_network(city, cache_dir=None), repeat=args.repeat, warmup=1)
    net = cold.result
    cold_cpu = cpu_seconds(lambda: walk_network(city, cache_dir=None), args.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        walk_network(city, cache_dir=tmp)  # writes the cache
        log(f"cached load, {args.repeat} runs")
        cached = measure(lambda: walk_network(city, cache_dir=tmp), repeat=args.repeat, warmup=1)
        cached_cpu = cpu_seconds(lambda: walk_network(city, cache_dir=tmp), args.repeat)
    load_1min = os.getloadavg()[0]
    rows = [
        {
            "stage": "cold build (read + build, no cache)",
            "median_s": f"{cold.median_s:.3f}",
            "min_s": f"{cold.min_s:.3f}",
            "cpu_s": f"{cold_cpu:.3f}",
            "peak_rss_mb": f"{cold.peak_rss_mb:.0f}",
            "target_s": f"≤ {TARGET_COLD_S:g}",
            "met": "yes" if cold.median_s <= TARGET_COLD_S else "no",
        },
        {
            "stage": "cached load",
            "median_s": f"{cached.median_s:.3f}",
            "min_s": f"{cached.min_s:.3f}",
            "cpu_s": f"{cached_cpu:.3f}",
            "peak_rss_mb": f"{cached.peak_rss_mb:.0f}",
            "target_s": f"≤ {TARGET_CACHED_S:g}",
            "met": "yes" if cached.median_s <= TARGET_CACHED_S else "no",
        },
    ]
    header = list(rows[0])
    widths = [max(len(h), *(len(str(r[h])) for r in rows)) for h in header]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for r in rows:
        print("  ".join(str(r[h]).ljust(w) for h, w in zip(header, widths, strict=True)))
    print(f"network: {net.n_nodes} nodes, {net.n_edges} edges, {net.length_km:.1f} km, {net.crs}")
    if args.write_docs:
        intro = (
            f"Walking network of `{city.name}` ({city.stat().st_size / 1e3:.0f} kB): "
            f"{net.n_nodes:,} nodes, {net.n_edges:,} undirected edges, "
            f"{net.length_km:.1f} km, {net.crs}. Median of {args.repeat} runs after one "
            "warm-up; peak RSS is the whole process's. Reproduce with "
            "`.venv/bin/python benchmarks/bench_network.py --write-docs`.\n\n"
            f"Load average (1 min) at the end of the run: {load_1min:.1f} on "
            f"{os.cpu_count()} CPUs. When it exceeds the CPU count, other jobs share the "
            "machine and wall times stretch; `cpu_s` (median user + system CPU time of "
            "this process) is the steadier figure then. `met` is judged on the median "
            "wall time."
        )
        write_markdown(DOC, "Network build benchmark", rows, machine=machine_info(), intro=intro)
        log(f"wrote {DOC.relative_to(ROOT)}")
    return 0 if all(r["met"] == "yes" for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
