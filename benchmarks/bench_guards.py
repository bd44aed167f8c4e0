"""Cost of the reliability guards (issue 17) on loading a city: embedded city and 100k nodes.

Loading is :func:`coverage.inputs.load_city` without the network cache: OSM read,
network build, centers and the OSM population estimate, snapping. It is timed
three ways, interleaved so the shared machine's load hits each alike:

- *guards on*: as shipped;
- *guards off*: the guards that are functions of their own replaced by no-ops
  (a private switch for this benchmark only; see :data:`GUARDS`). The counters
  inside the OSM stream (node refs, entities, missing refs: one integer addition
  and comparison per way or entity) cannot be switched off and stay in both;
- *guards' own time*: the guard functions wrapped with a timer during one load.

Figures are CPU seconds (user + system of this process), the median of
``--repeat`` runs; the guards' own time is summed over every call.

Usage::

    .venv/bin/python benchmarks/bench_guards.py                      # both cities, repeat 3
    .venv/bin/python benchmarks/bench_guards.py --nodes 0 --repeat 5 # embedded city only
    .venv/bin/python benchmarks/run.py --guards                      # the same, from the suite
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, log, machine_info, machine_markdown, markdown_table, write_markdown

CITY = ROOT / "data" / "chengdu_central.osm.bz2"
DOC = ROOT / "docs" / "bench" / "guards.md"
#: Hand-written reading of the figures, appended to the section (no figures in it).
NOTES = ROOT / "docs" / "bench" / "guards.notes.md"
INTRO = (
    "Cost of the issue-17 guards on loading a city (`load_city` without the network cache: OSM "
    "read, network build, centers, OSM population estimate, snapping), written by "
    "`benchmarks/bench_guards.py` (also `benchmarks/run.py --guards --sizes 100000`). CPU "
    "seconds of the process, median (min–max) of the runs; *guards off* replaces the guard "
    "functions by no-ops (the integer counters inside the OSM stream stay in both); the "
    "guards' own time is summed over every call during one more load with a stopwatch on "
    "each guard."
)

#: ``(module, function, what it does when switched off)``: each guard at its call site.
#: ``None`` returns None (a check that raises or warns); ``"first"`` returns its first
#: argument unchanged (a filter that drops bad edges).
GUARDS: tuple[tuple[str, str, str | None], ...] = (
    ("coverage.osm", "_check_memory", None),  # file size x expansion vs the budget
    ("coverage.osm", "_check_expanded_size", None),  # real decompressed size (.gz/.bz2)
    ("coverage.network", "_drop_long_segments", "first"),  # > 20 km segments
    ("coverage.demand", "_check_cell_count", None),  # cells of the population split
    ("coverage.demand", "check_population_values", None),  # 1e308, non-finite totals
    ("coverage.demand", "warn_overlaps", None),  # overlapping population polygons
    ("coverage.centers", "check_count", None),  # at most 50,000 centers
    ("coverage.userfiles", "check_vertex_count", None),  # district vertices
)


def _replacement(
    name: str, original: Callable[..., Any], mode: str | None, spent: dict[str, float] | None
) -> Any:
    if spent is not None:  # timed: the real guard, with a stopwatch

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.process_time() - t0

        return timed
    if mode == "first":
        return lambda first, *args, **kwargs: first
    return lambda *args, **kwargs: None


@contextlib.contextmanager
def guards(mode: str) -> Iterator[dict[str, float]]:
    """``mode`` ``"on"`` (unchanged), ``"off"`` (no-ops) or ``"timed"``; yields seconds per guard."""
    spent: dict[str, float] = {}
    saved: list[tuple[Any, str, Any]] = []
    if mode != "on":
        for module_name, name, off in GUARDS:
            module = importlib.import_module(module_name)
            original = getattr(module, name)
            saved.append((module, name, original))
            timed = spent if mode == "timed" else None
            setattr(module, name, _replacement(name, original, off, timed))
    try:
        yield spent
    finally:
        for module, name, original in saved:
            setattr(module, name, original)


def load_once(osm: Path) -> float:
    """CPU seconds of one :func:`load_city` without the cache."""
    from coverage.inputs import CityInputs, load_city

    t0 = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load_city(CityInputs(osm=osm, cache_dir=None))
    return time.process_time() - t0


def bench_city(label: str, osm: Path, repeat: int) -> dict[str, Any]:
    """Interleaved on/off runs, then one timed run; returns one table row."""
    load_once(osm)  # warm the imports and the file cache
    on: list[float] = []
    off: list[float] = []
    for _ in range(repeat):
        with guards("on"):
            on.append(load_once(osm))
        with guards("off"):
            off.append(load_once(osm))
    with guards("timed") as spent:
        load_once(osm)
    med_on, med_off = statistics.median(on), statistics.median(off)
    own = sum(spent.values())
    top = max(spent, key=lambda k: spent[k]) if spent else "none"
    return {
        "city": label,
        "runs": repeat,
        "load, guards on (s)": f"{med_on:.2f} ({min(on):.2f}–{max(on):.2f})",
        "load, guards off (s)": f"{med_off:.2f} ({min(off):.2f}–{max(off):.2f})",
        "difference": f"{100 * (med_on - med_off) / med_off:+.1f} %",
        "guards' own time (s)": f"{own:.4f}",
        "share of load": f"{100 * own / med_on:.2f} %",
        "largest guard": f"`{top}` {spent.get(top, 0.0):.4f} s",
    }


def synth_city(nodes: int, workdir: Path) -> Path:
    """The synthetic city of ``nodes`` nodes (generated once, kept in ``workdir``)."""
    path = workdir / f"city-{nodes}-s1.osm.pbf"
    if not path.exists():
        log(f"generating a {nodes:,}-node synthetic city in {path}")
        script = ROOT / "benchmarks" / "synth_city.py"
        cmd = [sys.executable, str(script), "--nodes", str(nodes), "--seed", "1"]
        subprocess.run([*cmd, "--out", str(path)], check=True, cwd=ROOT)
    return path


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"load average {os.getloadavg()}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3, help="runs per city and mode (median)")
    p.add_argument(
        "--nodes", type=int, default=100_000, help="synthetic city size (0: embedded city only)"
    )
    p.add_argument("--workdir", type=Path, default=None, help="where the synthetic city is kept")
    p.add_argument("--write-docs", action="store_true", help=f"write {DOC.relative_to(ROOT)}")
    args = p.parse_args(argv)
    workdir = args.workdir or Path(tempfile.gettempdir()) / "coverage-planner-bench"
    workdir.mkdir(parents=True, exist_ok=True)
    before = _uptime()
    rows = [bench_city("embedded (Chengdu)", CITY, args.repeat)]
    log(f"embedded city: {rows[-1]}")
    if args.nodes > 0:
        rows.append(
            bench_city(
                f"synthetic {args.nodes:,} nodes", synth_city(args.nodes, workdir), args.repeat
            )
        )
        log(f"synthetic city: {rows[-1]}")
    info = machine_info()
    load = f"- `uptime` before: {before}\n- `uptime` after: {_uptime()}\n"
    print(machine_markdown(info) + load)
    print(markdown_table(rows))
    if args.write_docs:
        notes = NOTES.read_text(encoding="utf-8") if NOTES.exists() else ""
        command = f"`.venv/bin/python benchmarks/bench_guards.py --repeat {args.repeat} --nodes {args.nodes}`"
        write_markdown(
            DOC,
            "Guards (issue 17)",
            rows,
            machine=info,
            intro=INTRO,
            extra=f"Machine load while it ran:\n\n{load}\nCommand: {command}\n\n{notes}",
        )
        log(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
