"""Whole commands end to end: ``audit``, ``site --new 10`` and ``batch``, cold and warm.

For each size the benchmark generates (or reuses) a *dense-demand* synthetic city
(``benchmarks/synth_city.py --dense``: apartment rows in every residential
compound, about 2.6 demand units per network node) and runs each command as a
subprocess of its own, exactly as a user types it:

- **cold**: an empty network/derived-data cache folder, a new output folder;
- **warm**: the same command again with the cache the cold run left.

Every run records the wall time, the CPU seconds of the command's process tree
(user + system, from ``os.wait4``) and its peak resident memory (the largest
process of the tree). In the same run the *osmnx-tutorial path* (``graph_from_xml`` +
``features_from_xml`` + ego-graph convex-hull isochrones + geopandas overlays and
GeoJSON files) runs on the same city, written as OSM XML, and the report gives the
ratio. A stage breakdown of ``audit`` (in process, from the pipeline's own
functions) is kept beneath the headline table.

The machine is shared: the report gives the 1-minute load average before each
run; CPU seconds, unlike wall time, do not grow when other jobs share the cores.

Usage::

    python benchmarks/bench_e2e.py --sizes 10000,100000,300000 --write-docs
    python benchmarks/bench_e2e.py --smoke --out /tmp/e2e.md   # a tiny city, seconds
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, fmt_mb, fmt_seconds, log, machine_info, machine_markdown, markdown_table

DOC_PATH = ROOT / "docs" / "bench" / "e2e.md"
#: Hand-written analysis appended to the generated section (kept across reruns).
NOTES_PATH = ROOT / "docs" / "bench" / "e2e.notes.md"
COMMANDS = ("audit", "site", "batch")
SITE_K = 10
WALK_M = 15 * 4.5 / 3.6 * 60  # the tutorial's 15-minute radius at 4.5 km/h
#: Targets of issue 16 (wall seconds; peak memory in MB), per target size.
TARGETS = {100_000: (15.0, 5.0, None), 300_000: (45.0, 15.0, 6_000.0)}


@dataclass
class Run:
    """One command at one size, cold or warm."""

    size: int
    command: str
    phase: str
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    load_1min: float
    exit_code: int
    detail: str = ""


def _load() -> float:
    return os.getloadavg()[0]


def run_measured(
    cmd: Sequence[str], *, env: dict[str, str] | None = None, timeout_s: float = 3600.0
) -> tuple[float, float, float, int, str]:
    """Run ``cmd``; return wall s, CPU s (process tree), peak RSS MB, exit code, stderr tail."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=subprocess.DEVNULL, stderr=err, env=env)
        deadline = t0 + timeout_s
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        tail = err.read().decode("utf-8", "replace").strip().splitlines()[-3:]
    cpu = usage.ru_utime + usage.ru_stime
    return wall, cpu, usage.ru_maxrss / 1024.0, proc.returncode, " / ".join(tail)


def _env(pythonpath: Path, cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(pythonpath)
    env["COVERAGE_PLANNER_CACHE"] = str(cache)
    return env


def command_line(command: str, city: Path, districts: Path, out: Path, cache: Path) -> list[str]:
    """The CLI call a user would type for ``command`` on ``city``."""
    base = [sys.executable, "-m", "coverage.cli", command, "--quiet", "--cache-dir", str(cache)]
    base += ["--osm", str(city), "--out", str(out)]
    if command == "site":
        base += ["--new", str(SITE_K)]
    if command == "batch":
        base += ["--districts", str(districts), "--workers", "2", "--no-report"]
    return base


def city_files(
    workdir: Path, nodes: int, seed: int, *, xml: bool
) -> tuple[Path, Path, Path | None]:
    """Generate (or reuse) the dense city as PBF, its districts, and optionally OSM XML."""
    from synth_city import generate_city

    city = workdir / f"dense-{nodes}-s{seed}.osm.pbf"
    districts = workdir / f"dense-{nodes}-s{seed}-districts.geojson"
    if not (city.exists() and districts.exists()):
        log(f"generating a dense {nodes:,}-node city → {city}")
        generate_city(city, nodes=nodes, seed=seed, districts_out=districts, dense=True)
    xml_path = None
    if xml:
        xml_path = workdir / f"dense-{nodes}-s{seed}.osm"
        if not xml_path.exists():
            generate_city(xml_path, nodes=nodes, seed=seed, dense=True)
    return city, districts, xml_path


def bench_size(
    nodes: int,
    *,
    seed: int,
    workdir: Path,
    commands: Sequence[str],
    pythonpath: Path,
    tutorial: bool,
    timeout_s: float,
) -> tuple[list[Run], dict[str, Any]]:
    """Every command cold then warm on one city; then the stage breakdown and the tutorial."""
    city, districts, xml_path = city_files(workdir, nodes, seed, xml=tutorial)
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="e2e-", dir=workdir) as tmp:
        for command in commands:
            cache = Path(tmp) / f"cache-{command}"
            for phase in ("cold", "warm"):
                out = Path(tmp) / f"out-{command}-{phase}"
                cmd = command_line(command, city, districts, out, cache)
                load = _load()
                wall, cpu, rss, code, tail = run_measured(
                    cmd, env=_env(pythonpath, cache), timeout_s=timeout_s
                )
                runs.append(Run(nodes, command, phase, wall, cpu, rss, load, code, tail))
                log(
                    f"{nodes:,} {command} {phase}: {wall:.1f} s wall, {cpu:.1f} s CPU, {rss:.0f} MB"
                )
        stages = _stages_in_child(city, Path(tmp) / "stage-cache", pythonpath, timeout_s)
    extra: dict[str, Any] = {"city": city.name, "stages": stages}
    if tutorial and xml_path is not None:
        extra["tutorial"] = _tutorial_in_child(xml_path, pythonpath, timeout_s)
    return runs, extra


# --- stage breakdown (in process, child) ---------------------------------------------


def _stage_child(city: str, cache: str) -> dict[str, Any]:
    from coverage import export, pipeline
    from coverage.inputs import CityInputs, load_city
    from coverage.scenario import Scenario

    out: dict[str, Any] = {}

    def timed(name: str, fn: Any) -> Any:
        c0, t0 = time.process_time(), time.perf_counter()
        value = fn()
        out[name] = (time.perf_counter() - t0, time.process_time() - c0)
        return value

    inputs = CityInputs(osm=Path(city), cache_dir=Path(cache))
    timed("load city, cold (read OSM, network, centers, demand)", lambda: load_city(inputs))
    c = timed("load city, warm (cache)", lambda: load_city(inputs))
    sc = Scenario(name="audit")
    timed("audit without polygons", lambda: pipeline.run(c, sc, with_polygons=False))
    res = timed("audit with polygons", lambda: pipeline.run(c, sc))
    timed("output files (GeoJSON, CSV, report)", lambda: export.output_files(res, c))
    units = len(c.demand)
    return {"stages": out, "units": units, "nodes": c.net.n_nodes, "centers": len(c.centers)}


def _stages_in_child(city: Path, cache: Path, pythonpath: Path, timeout_s: float) -> dict[str, Any]:
    return _json_child(["--stage-child", str(city), str(cache)], pythonpath, timeout_s)


def _json_child(args: list[str], pythonpath: Path, timeout_s: float) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        result = Path(fh.name)
    cmd = [sys.executable, str(Path(__file__).resolve()), *args, "--result", str(result)]
    env = _env(pythonpath, Path(tempfile.gettempdir()))
    wall, cpu, rss, code, tail = run_measured(cmd, env=env, timeout_s=timeout_s)
    data: dict[str, Any] = {"wall_s": wall, "cpu_s": cpu, "peak_rss_mb": rss, "exit_code": code}
    if code == 0 and result.stat().st_size:
        data.update(json.loads(result.read_text(encoding="utf-8")))
    else:
        data["error"] = tail
    result.unlink(missing_ok=True)
    return data


# --- the osmnx-tutorial path (child) --------------------------------------------------


def _tutorial_child(xml: str) -> dict[str, Any]:
    """What the osmnx tutorials do: whole graph, features, ego graphs, convex hulls, geopandas."""
    import geopandas as gpd
    import networkx as nx
    import osmnx as ox
    import shapely

    t: dict[str, float] = {}
    t0 = time.perf_counter()
    G = ox.graph_from_xml(xml, bidirectional=True)
    G = ox.project_graph(G)
    t["graph_from_xml + project"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    tags = {"building": ["residential", "apartments"], "landuse": "residential"}
    res = ox.features_from_xml(xml, tags=tags).to_crs(G.graph["crs"])
    res = res[res.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    centers = ox.features_from_xml(
        xml, tags={"office": "government", "amenity": "community_centre"}
    ).to_crs(G.graph["crs"])
    t["features_from_xml (residential, centers)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    pts = centers.geometry.representative_point()
    nodes = ox.distance.nearest_nodes(G, pts.x.to_numpy(), pts.y.to_numpy())
    hulls = []
    for u in nodes:
        sub = nx.ego_graph(G, u, radius=WALK_M, distance="length")
        xy = [(G.nodes[n]["x"], G.nodes[n]["y"]) for n in sub.nodes]
        hulls.append(shapely.MultiPoint(xy).convex_hull)
    t["ego_graph + convex hull per center (15 min)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    iso = gpd.GeoDataFrame(geometry=hulls, crs=G.graph["crs"])
    union = iso.union_all()
    res = res.assign(pop=res.geometry.area / 36.5 * 6)
    covered = res.geometry.representative_point().within(union)
    share = float(res["pop"][covered].sum() / res["pop"].sum())
    with tempfile.TemporaryDirectory() as tmp:
        iso.to_crs(4326).to_file(Path(tmp) / "iso.geojson", driver="GeoJSON")
        res[["pop", "geometry"]].to_crs(4326).to_file(Path(tmp) / "res.geojson", driver="GeoJSON")
    t["overlay + GeoJSON (geopandas)"] = time.perf_counter() - t0
    return {
        "steps": t,
        "graph_nodes": G.number_of_nodes(),
        "residential": len(res),
        "centers": len(centers),
        "share_15": share,
    }


def _tutorial_in_child(xml: Path, pythonpath: Path, timeout_s: float) -> dict[str, Any]:
    return _json_child(["--tutorial-child", str(xml)], pythonpath, timeout_s)


# --- report ---------------------------------------------------------------------------


def _headline(runs: list[Run]) -> str:
    rows = []
    for r in runs:
        target = TARGETS.get(_bucket(r.size))
        goal = ""
        if target is not None and r.command == "audit":
            limit = target[0] if r.phase == "cold" else target[1]
            goal = f"≤ {limit:g} s: {'yes' if r.wall_s <= limit else 'no'}"
            if target[2] is not None:
                goal += (
                    f"; ≤ {target[2] / 1000:g} GB: {'yes' if r.peak_rss_mb <= target[2] else 'no'}"
                )
        rows.append(
            {
                "nodes": f"{r.size:,}",
                "command": r.command if r.command != "site" else f"site --new {SITE_K}",
                "run": r.phase,
                "wall": fmt_seconds(r.wall_s),
                "CPU": fmt_seconds(r.cpu_s),
                "peak RSS": fmt_mb(r.peak_rss_mb),
                "load (1 min) before": f"{r.load_1min:.1f}",
                "target (audit)": goal,
                "exit": str(r.exit_code) + (f" ({r.detail})" if r.exit_code else ""),
            }
        )
    cols = ["nodes", "command", "run", "wall", "CPU", "peak RSS", "load (1 min) before"]
    return markdown_table(rows, [*cols, "target (audit)", "exit"])


def _bucket(size: int) -> int:
    return min(TARGETS, key=lambda t: abs(t - size)) if size >= 50_000 else size


def _stage_table(extra: dict[str, Any]) -> str:
    st = extra["stages"]
    if "stages" not in st:
        return f"Stage breakdown failed: {st.get('error', '?')}\n"
    rows = [
        {"stage": k, "wall": fmt_seconds(v[0]), "CPU": fmt_seconds(v[1])}
        for k, v in st["stages"].items()
    ]
    head = (
        f"{st['nodes']:,} network nodes, {st['units']:,} demand units "
        f"({st['units'] / max(st['nodes'], 1):.2f} per node), {st['centers']:,} centers; "
        f"peak RSS of the stage process {fmt_mb(st['peak_rss_mb'])}.\n\n"
    )
    return head + markdown_table(rows, ["stage", "wall", "CPU"])


def _tutorial_text(extra: dict[str, Any], runs: list[Run]) -> str:
    tut = extra.get("tutorial")
    if not tut:
        return ""
    if "steps" not in tut:
        return f"osmnx-tutorial path failed: {tut.get('error', '?')}\n"
    ours = next((r for r in runs if r.command == "audit" and r.phase == "cold"), None)
    rows = [{"step": k, "wall": fmt_seconds(v)} for k, v in tut["steps"].items()]
    rows.append({"step": "**whole path (process)**", "wall": fmt_seconds(tut["wall_s"])})
    text = (
        f"osmnx-tutorial path on the same city as OSM XML: graph of {tut['graph_nodes']:,} "
        f"nodes (`graph_from_xml` defaults with `bidirectional=True`), {tut['residential']:,} residential "
        f"features, {tut['centers']:,} centers; convex-hull 15-minute share "
        f"{tut['share_15']:.1%}; peak RSS {fmt_mb(tut['peak_rss_mb'])}.\n\n"
        + markdown_table(rows, ["step", "wall"])
    )
    if ours is not None:
        text += (
            f"\nRatio: the tutorial path takes **{tut['wall_s'] / max(ours.wall_s, 1e-9):.1f}×** "
            f"the wall time of `audit` cold ({fmt_seconds(ours.wall_s)}), which also writes "
            "street-following service areas, every demand unit and report.html.\n"
        )
    return text


#: Heading of the report (``--title`` replaces it, e.g. for a section re-measuring a subset).
TITLE = "End to end: whole commands, cold and warm (issue 16)"


def render(
    info: dict[str, Any],
    sizes: list[tuple[list[Run], dict[str, Any]]],
    command: str,
    title: str = TITLE,
) -> str:
    parts = [
        f"# {title}\n",
        f"Generated by `benchmarks/bench_e2e.py` (`{command}`). Each command runs as a "
        "subprocess of its own, as a user types it; *cold* starts from an empty cache folder, "
        "*warm* is the same command again. *CPU* is user + system time of the command's "
        "process tree; *peak RSS* the largest process of the tree. Cities: "
        "`benchmarks/synth_city.py --dense` (seed 1). The machine is shared by other "
        "engineers' jobs: the load average before each run is given, and CPU seconds stay "
        "steady when wall time stretches.\n",
        "## Machine\n",
        machine_markdown(info),
        "## Whole commands\n",
        _headline([r for runs, _ in sizes for r in runs]),
    ]
    for runs, extra in sizes:
        n = runs[0].size if runs else 0
        parts += [f"## Stage breakdown, {n:,}-node city (`{extra.get('city', '')}`)\n"]
        parts += [_stage_table(extra), _tutorial_text(extra, runs)]
    return "\n".join(parts)


# --- entry points -----------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="10000,100000,300000", help="target network nodes")
    p.add_argument("--commands", default=",".join(COMMANDS), help="audit,site,batch")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--smoke", action="store_true", help="one 1,500-node city, audit only")
    p.add_argument("--no-tutorial", action="store_true", help="skip the osmnx-tutorial path")
    p.add_argument("--workdir", type=Path, default=None, help="where cities are kept")
    p.add_argument("--pythonpath", type=Path, default=ROOT, help="library tree to run")
    p.add_argument("--out", type=Path, default=None, help="report path")
    p.add_argument("--write-docs", action="store_true", help=f"write {DOC_PATH.relative_to(ROOT)}")
    p.add_argument("--title", default=TITLE, help="heading of the report")
    p.add_argument("--json", type=Path, default=None, help="also write raw results as JSON")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per run")
    p.add_argument("--stage-child", nargs=2, default=None, help=argparse.SUPPRESS)
    p.add_argument("--tutorial-child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--result", type=Path, default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _child(args: argparse.Namespace) -> int:
    if args.stage_child is not None:
        data = _stage_child(*args.stage_child)
    else:
        data = _tutorial_child(args.tutorial_child)
    args.result.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.stage_child is not None or args.tutorial_child is not None:
        return _child(args)
    if args.smoke:
        sizes, commands = [1_500], ["audit"]
    else:
        sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
        commands = [c for c in args.commands.split(",") if c]
    unknown = sorted(set(commands) - set(COMMANDS))
    if unknown or not sizes:
        print(f"error: commands must be among {COMMANDS}; got {unknown}", file=sys.stderr)
        return 2
    workdir = args.workdir or Path(tempfile.gettempdir()) / "coverage-planner-bench"
    workdir.mkdir(parents=True, exist_ok=True)
    info = machine_info()
    results = []
    for n in sizes:
        results.append(
            bench_size(
                n,
                seed=args.seed,
                workdir=workdir,
                commands=commands,
                pythonpath=args.pythonpath.resolve(),
                tutorial=not args.no_tutorial,
                timeout_s=args.timeout,
            )
        )
    command = "python benchmarks/bench_e2e.py " + (
        "--smoke" if args.smoke else f"--sizes {','.join(map(str, sizes))}"
    )
    if not args.smoke and tuple(commands) != COMMANDS:
        command += f" --commands {','.join(commands)}"
    if args.no_tutorial:
        command += " --no-tutorial"
    if args.title != TITLE:
        command += f' --title "{args.title}"'
    if args.out is not None:
        command += f" --out {args.out}"
    out = args.out or (DOC_PATH if args.write_docs else workdir / "e2e.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    text = render(info, results, command, args.title)
    if args.write_docs and NOTES_PATH.exists():
        text = text.rstrip() + "\n\n" + NOTES_PATH.read_text(encoding="utf-8")
    out.write_text(text, encoding="utf-8")
    if args.json is not None:
        raw = [{"runs": [asdict(r) for r in runs], **extra} for runs, extra in results]
        args.json.write_text(json.dumps({"machine": info, "sizes": raw}, indent=1), "utf-8")
    log(f"wrote {out}")
    failed = [r for runs, _ in results for r in runs if r.exit_code != 0]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
