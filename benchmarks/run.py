"""The benchmark suite: every pipeline stage on synthetic cities of several sizes.

For each size the suite generates (or reuses) a synthetic city
(``benchmarks/synth_city.py``) and runs, in a fresh subprocess so memory figures
do not leak between sizes, the stages

    load → network (cold, no cache) → cache write → network (from cache)
    → centers → demand → nearest-center minutes → polygons → audit
    → coverage sets → greedy + swap → export → batch
    → anchors (networkx search, osmnx-style ego-graph isochrones, spopt MCLP: the same
      inputs through the usual tools, reported as a speed ratio)

recording the median wall time over ``--repeat`` runs and the peak resident
memory of the process while the stage ran. It writes a Markdown report
(``docs/bench/suite.md`` by default) with the machine, date and versions, one
table per size and a cost-growth table (time against network nodes per stage).

Stages are written against the contract names in ``docs/ARCHITECTURE.md``; a
stage whose module or function does not exist yet is reported as
"not available yet" and the stages that need its output as skipped, so the
suite runs on a partly built tree. Any other failure of a stage is reported
with its message and the suite carries on.

Usage::

    python benchmarks/run.py --sizes 10000,100000,300000 --repeat 3
    python benchmarks/run.py --smoke              # 3k nodes, repeat 1, < 30 s
    python benchmarks/run.py --sizes 300000 --profile-network
    python benchmarks/run.py --guards             # the guards' cost (benchmarks/bench_guards.py)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    ROOT,
    Measurement,
    fmt_mb,
    fmt_seconds,
    log,
    machine_info,
    machine_markdown,
    markdown_table,
    measure,
    peak_rss,
)

DOC_PATH = ROOT / "docs" / "bench" / "suite.md"
SMOKE_PATH = ROOT / "out" / "bench" / "suite-smoke.md"
SPEED_KMH = 4.5
THRESHOLDS_MIN = (5.0, 15.0)
SITING_MINUTES = 15.0
SITING_K = 20
TARGET_CACHED_LOAD_S = 5.0  # issue 7: network load from cache at 300k nodes
#: Hand-written analysis below this line in an existing report survives a rerun.
NOTES_MARKER = "<!-- notes: kept when the report is regenerated -->"

OK = "ok"
NOT_AVAILABLE = "not available yet"
SKIPPED = "skipped"
ERROR = "error"


@dataclass
class StageResult:
    """One stage at one size."""

    stage: str
    status: str
    median_s: float | None = None
    times_s: list[float] = field(default_factory=list)
    cpu_s: float | None = None
    peak_rss_mb: float | None = None
    delta_rss_mb: float | None = None
    detail: str = ""


class UnavailableError(Exception):
    """A stage's library function does not exist yet."""


# --- stages ---------------------------------------------------------------------


@dataclass
class _Ctx:
    path: Path
    districts_path: Path | None
    work: Path
    repeat: int
    network_repeat: int
    smoke: bool
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Stage:
    """``prepare(ctx)`` imports what it needs and returns the call to time."""

    name: str
    prepare: Callable[[_Ctx], Callable[[], Any]]
    needs: tuple[str, ...] = ()
    keep: str | None = None  # ctx.data key that receives the stage's result
    describe: Callable[[Any], str] | None = None
    repeat_attr: str = "repeat"


def _need_attr(module: Any, name: str) -> Any:
    try:
        return getattr(module, name)
    except AttributeError as exc:
        raise UnavailableError(f"`{module.__name__}.{name}` does not exist") from exc


def _import(name: str) -> Any:
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise UnavailableError(f"`{name}` cannot be imported ({exc})") from exc


def _prep_load(ctx: _Ctx) -> Callable[[], Any]:
    read_osm = _need_attr(_import("coverage.osm"), "read_osm")
    return lambda: read_osm(ctx.path)


def _describe_load(ext: Any) -> str:
    return (
        f"{len(ext.ways):,} walkable way pieces, {len(ext.residential):,} residential, "
        f"{len(ext.center_features):,} center features, {len(ext.boundaries)} boundaries"
    )


def _prep_network(ctx: _Ctx) -> Callable[[], Any]:
    walk_network = _need_attr(_import("coverage.netcache"), "walk_network")
    ext = ctx.data["extract"]
    return lambda: walk_network(ctx.path, cache_dir=None, extract=ext)


def _describe_net(net: Any) -> str:
    raw = net.stats.get("raw_nodes") if isinstance(net.stats, dict) else None
    raw_s = f" (from {raw:,} raw)" if raw else ""
    return f"{net.n_nodes:,} nodes{raw_s}, {net.n_edges:,} edges, {net.length_km:,.0f} km"


def _cache_dir(ctx: _Ctx) -> Path:
    return ctx.work / "network-cache"


def _prep_cache_write(ctx: _Ctx) -> Callable[[], Any]:
    mod = _import("coverage.netcache")
    save_network = _need_attr(mod, "save_network")
    cache_key = _need_attr(mod, "cache_key")
    net = ctx.data["net"]
    target = _cache_dir(ctx) / f"walk-{cache_key(ctx.data['extract'].sha256)}.npz"
    return lambda: save_network(net, target)


def _describe_cache(path: Any) -> str:
    return f"{Path(path).stat().st_size / 1e6:,.1f} MB on disk"


def _prep_network_cached(ctx: _Ctx) -> Callable[[], Any]:
    walk_network = _need_attr(_import("coverage.netcache"), "walk_network")
    cache = _cache_dir(ctx)
    n_ref = ctx.data["net"].n_nodes

    def load() -> Any:
        # As the CLI does it: hash the file, find the cache, load it, and use it.
        net = walk_network(ctx.path, cache_dir=cache)
        if net.n_nodes != n_ref:
            msg = f"cached network has {net.n_nodes} nodes, the built one {n_ref}"
            raise RuntimeError(msg)
        net.edge_tree  # noqa: B018  (the spatial index is part of a usable network)
        return net

    return load


def _prep_centers(ctx: _Ctx) -> Callable[[], Any]:
    fn = _need_attr(_import("coverage.centers"), "centers_from_osm")
    ext, net = ctx.data["extract"], ctx.data["net"]
    return lambda: fn(ext, net)


def _prep_demand(ctx: _Ctx) -> Callable[[], Any]:
    fn = _need_attr(_import("coverage.demand"), "demand_units")
    ext, net = ctx.data["extract"], ctx.data["net"]
    return lambda: fn(ext, net)


def _describe_demand(d: Any) -> str:
    pop = float(d["population"].sum()) if "population" in d else float("nan")
    return f"{len(d):,} units, population {pop:,.0f}"


def _snap_cols(gdf: Any) -> tuple[Any, Any, Any]:
    return (
        gdf["snap_edge"].to_numpy(),
        gdf["snap_offset_m"].to_numpy(),
        gdf["snap_distance_m"].to_numpy(),
    )


def _prep_nearest(ctx: _Ctx) -> Callable[[], Any]:
    nearest_points_m = _need_attr(_import("coverage.reach"), "nearest_points_m")
    net, centers, demand = ctx.data["net"], ctx.data["centers"], ctx.data["demand"]
    sources, points = _snap_cols(centers), _snap_cols(demand)
    m_per_min = SPEED_KMH / 3.6 * 60.0

    def run() -> Any:
        dist_m, _ = nearest_points_m(net, sources, points)
        return dist_m / m_per_min

    return run


def _describe_minutes(minutes: Any) -> str:
    import numpy as np

    finite = minutes[np.isfinite(minutes)]
    med = float(np.median(finite)) if finite.size else float("nan")
    within = ", ".join(f"≤{t:g} min {np.mean(minutes <= t):.1%}" for t in THRESHOLDS_MIN)
    return f"median {med:.1f} min; units {within}"


def _prep_polygons(ctx: _Ctx) -> Callable[[], Any]:
    fn = _need_attr(_import("coverage.isochrones"), "service_areas")
    most = _need_attr(_import("coverage.audit"), "PER_CENTER_POLYGONS_MAX")
    net, centers = ctx.data["net"], ctx.data["centers"]
    # as the audit does: one area per center up to `most` centers, the unions above
    per_center = len(centers) <= most
    return lambda: fn(
        net, centers, minutes=list(THRESHOLDS_MIN), speed_kmh=SPEED_KMH, per_center=per_center
    )


def _describe_rows(gdf: Any) -> str:
    return f"{len(gdf):,} rows"


def _prep_audit(ctx: _Ctx) -> Callable[[], Any]:
    mod = _import("coverage.audit")
    audit = _need_attr(mod, "audit")
    params = _need_attr(mod, "AuditParams")(speed_kmh=SPEED_KMH, thresholds_min=THRESHOLDS_MIN)
    net, centers, demand = ctx.data["net"], ctx.data["centers"], ctx.data["demand"]
    # Polygons have their own stage; the audit is timed without them.
    return lambda: audit(net, centers, demand, params, with_polygons=False)


def _describe_audit(res: Any) -> str:
    parts = [f"{k} min {v.share:.1%}" for k, v in res.coverage.items()]
    return "population covered: " + ", ".join(parts)


def _prep_coverage_sets(ctx: _Ctx) -> Callable[[], Any]:
    mod = _import("coverage.siting")
    candidate_sites = _need_attr(mod, "candidate_sites")
    coverage_sets = _need_attr(mod, "coverage_sets")
    net, demand = ctx.data["net"], ctx.data["demand"]

    def run() -> Any:
        cands = candidate_sites(net, demand)
        cover = coverage_sets(net, cands, demand, minutes=SITING_MINUTES, speed_kmh=SPEED_KMH)
        return cands, cover

    return run


def _describe_cover(res: Any) -> str:
    cands, cover = res
    return f"{len(cands):,} candidates × {cover.shape[1]:,} units, {cover.nnz:,} pairs"


def _covered0(ctx: _Ctx) -> Any:
    import numpy as np

    if "minutes" in ctx.data:
        return np.asarray(ctx.data["minutes"] <= SITING_MINUTES)
    res = ctx.data["audit"]
    col = f"covered_{SITING_MINUTES:g}"
    return res.demand[col].to_numpy(dtype=bool)


def _prep_greedy(ctx: _Ctx) -> Callable[[], Any]:
    mod = _import("coverage.optimize")
    greedy = _need_attr(mod, "greedy_max_coverage")
    swap = _need_attr(mod, "swap_improve")
    _, cover = ctx.data["cover"]
    weights = ctx.data["demand"]["population"].to_numpy(dtype=float)
    if "minutes" not in ctx.data and "audit" not in ctx.data:
        raise UnavailableError("needs the baseline coverage (nearest or audit stage)")
    covered0 = _covered0(ctx)

    def run() -> Any:
        g = greedy(cover, weights, covered0=covered0, k=SITING_K)
        s = swap(cover, weights, g.chosen, covered0=covered0)
        return g, s

    return run


def _describe_greedy(res: Any) -> str:
    g, s = res
    total = max(float(g.population_total), 1e-9)
    return (
        f"k={len(g.chosen)}: {g.population_before / total:.1%} → "
        f"{s.population_covered / total:.1%} after {s.swaps} swaps"
    )


def _prep_export(ctx: _Ctx) -> Callable[[], Any]:
    fn = _need_attr(_import("coverage.export"), "output_files")
    scenario = _import("coverage.scenario")
    net, res = ctx.data["net"], ctx.data["audit"]
    city = _need_attr(_import("coverage.inputs"), "CityData")(
        source_name=ctx.path.name, source_sha256="", net=net, centers=res.centers, demand=res.demand
    )
    result = scenario.ScenarioResult(
        scenario=scenario.Scenario(audit=res.params), centers=res.centers, audit=res
    )
    out = ctx.work / "export"

    def run() -> Any:
        files = fn(result, city, title=ctx.path.name)
        out.mkdir(parents=True, exist_ok=True)
        total = 0
        for name, data in files.items():
            payload = data.encode("utf-8") if isinstance(data, str) else data
            (out / name).write_bytes(payload)
            total += len(payload)
        return total

    return run


def _describe_bytes(n: Any) -> str:
    return f"{n / 1e6:,.1f} MB written"


def _prep_batch(ctx: _Ctx) -> Callable[[], Any]:
    batch = _import("coverage.batch")
    run_districts = _need_attr(batch, "run_districts")
    # Polygons have their own stage; per-district audits are timed without them.
    audit_params = _need_attr(_import("coverage.audit"), "AuditParams")
    scenario = _need_attr(_import("coverage.scenario"), "Scenario")(
        audit=audit_params(speed_kmh=SPEED_KMH, thresholds_min=THRESHOLDS_MIN)
    )
    params = _need_attr(batch, "BatchParams")(scenario=scenario, with_polygons=False)
    inputs = _import("coverage.inputs")
    city_data = _need_attr(inputs, "CityData")
    ext = ctx.data["extract"]
    if ctx.districts_path is not None:
        districts = _need_attr(inputs, "districts_from_file")(ctx.districts_path)
    else:
        districts = _need_attr(inputs, "districts_from_osm")(ext, admin_level="6")
    if ctx.smoke:
        districts = districts.iloc[:2]
    city = city_data(
        source_name=ctx.path.name,
        source_sha256=ext.sha256,
        extract=ext,
        net=ctx.data["net"],
        centers=ctx.data["centers"],
        demand=ctx.data["demand"],
    )
    counter = iter(range(1_000_000))
    workers = 1 if ctx.smoke else max(1, min(2, os.cpu_count() or 1))

    def run() -> Any:
        out = ctx.work / f"batch-{next(counter)}"
        res = run_districts(city, districts, out, params=params, workers=workers, force=True)
        table = res.summary
        if "status" in table and (table["status"] == "error").any():
            bad = table[table["status"] == "error"]
            first = str(bad["error"].iloc[0]) if "error" in bad else ""
            if "ImportError" in first or "cannot import" in first:
                raise UnavailableError(f"batch needs a module not written yet: {first[:200]}")
            msg = f"{len(bad)} of {len(table)} districts failed; first: {first[:200]}"
            raise RuntimeError(msg)
        return res

    return run


def _describe_batch(res: Any) -> str:
    table = res.summary
    return f"{len(table)} districts"


# --- anchors: the usual tools on the same inputs, for the speed ratio -------------------

ANCHOR_CENTERS = 20  # ego-graph isochrones: one search per center, so a sample
ANCHOR_CANDIDATES = 300  # spopt builds a dense demand × candidate matrix: a window
ANCHOR_K = 10


def _nx_graph(net: Any) -> Any:
    """The walking network as a networkx Graph weighted by ``length`` (shortest parallel edge)."""
    import networkx as nx
    import numpy as np

    order = np.argsort(-net.edge_length_m, kind="stable")  # the shortest edge is added last
    G = nx.Graph()
    G.add_nodes_from(range(net.n_nodes))
    G.add_weighted_edges_from(
        zip(
            net.edge_u[order].tolist(),
            net.edge_v[order].tolist(),
            net.edge_length_m[order].tolist(),
            strict=True,
        ),
        weight="length",
    )
    return G


def _shared_nx_graph(ctx: _Ctx) -> Any:
    """The networkx graph of ``ctx``'s network, built once for all anchors."""
    if "nx_graph" not in ctx.data:
        ctx.data["nx_graph"] = _nx_graph(ctx.data["net"])
    return ctx.data["nx_graph"]


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _prep_anchor_search(ctx: _Ctx) -> Callable[[], Any]:
    import networkx as nx

    reach = _import("coverage.reach")
    net, centers = ctx.data["net"], ctx.data["centers"]
    c_edge, c_off, c_acc = _snap_cols(centers)
    G = _shared_nx_graph(ctx)
    nodes = sorted(set(net.edge_u[c_edge].tolist()))

    def run() -> Any:
        ours, _ = _timed(lambda: reach.nearest_source_m(net, (c_edge, c_off, c_acc)))
        theirs, dist = _timed(
            lambda: nx.multi_source_dijkstra_path_length(G, nodes, weight="length")
        )
        return {"ours_s": ours, "theirs_s": theirs, "reached": len(dist), "what": "networkx"}

    return run


def _prep_anchor_ego(ctx: _Ctx) -> Callable[[], Any]:
    import networkx as nx
    import shapely

    iso = _import("coverage.isochrones")
    reach = _import("coverage.reach")
    net, centers = ctx.data["net"], ctx.data["centers"]
    c_edge, c_off, c_acc = (a[:ANCHOR_CENTERS] for a in _snap_cols(centers))
    G = _shared_nx_graph(ctx)
    budget_m = SITING_MINUTES * SPEED_KMH / 3.6 * 60.0
    xy = net.node_xy

    def run() -> Any:
        nodes = net.edge_u[c_edge].tolist()
        theirs_search, subs = _timed(
            lambda: [nx.ego_graph(G, u, radius=budget_m, distance="length") for u in nodes]
        )
        theirs_hull, hulls = _timed(
            lambda: [shapely.multipoints(xy[list(sub.nodes)]).convex_hull for sub in subs]
        )
        ours_search, per = _timed(
            lambda: reach.reach_per_source_m(net, (c_edge, c_off, c_acc), limit_m=budget_m)
        )
        ours_poly, mine = _timed(
            lambda: [
                iso.reach_polygon(
                    net,
                    per.of(j, net.n_nodes),
                    budget_m,
                    (c_edge[j : j + 1], c_off[j : j + 1], c_acc[j : j + 1]),
                )
                for j in range(c_edge.size)
            ]
        )
        area = sum(h.area for h in hulls) / max(sum(g.area for g in mine), 1e-9)
        return {
            "ours_s": ours_search,
            "theirs_s": theirs_search,
            "what": f"{len(nodes)} centers, 15 min: ego_graph search",
            "extra": (
                f"polygons: convex hull {fmt_seconds(theirs_hull)}, street-following "
                f"{fmt_seconds(ours_poly)}; hulls cover {area:.1f}× the street-following area"
            ),
        }

    return run


def _prep_anchor_spopt(ctx: _Ctx) -> Callable[[], Any]:
    import numpy as np

    mod = _import("coverage.optimize")
    from bench_siting import run_spopt

    cands, cover = ctx.data["cover"]
    weights = ctx.data["demand"]["population"].to_numpy(dtype=float)
    # a window: the candidates nearest the city's middle, and the units they reach
    x, y = cands.geometry.x.to_numpy(), cands.geometry.y.to_numpy()
    mid = np.hypot(x - np.median(x), y - np.median(y))
    pick = np.sort(np.argsort(mid, kind="stable")[:ANCHOR_CANDIDATES])
    sub = cover[pick]
    cols = np.unique(sub.indices)
    C, w = sub[:, cols], weights[cols]

    def run() -> Any:
        def ours_fn() -> Any:
            g = mod.greedy_max_coverage(C, w, k=ANCHOR_K)
            return mod.swap_improve(C, w, g.chosen)

        ours, s = _timed(ours_fn)
        sp = run_spopt(C, w, ANCHOR_K)
        sp_pop = mod.covered_population(C, w, sp["chosen"])
        return {
            "ours_s": ours,
            "theirs_s": sp["time_s"],
            "what": f"spopt MCLP ({sp['solver']}), {C.shape[0]} candidates × {C.shape[1]:,} units, k={ANCHOR_K}",
            "extra": f"coverage ours/spopt {s.population_covered / max(sp_pop, 1e-12):.4f}",
        }

    return run


def _describe_anchor(res: Any) -> str:
    ratio = res["theirs_s"] / max(res["ours_s"], 1e-12)
    verdict = f"ours {ratio:,.0f}× faster" if ratio >= 1 else f"ours {1 / ratio:,.1f}× slower"
    extra = f"; {res['extra']}" if res.get("extra") else ""
    return (
        f"{res['what']}: {fmt_seconds(res['theirs_s'])} vs ours {fmt_seconds(res['ours_s'])} "
        f"(**{verdict}**){extra}"
    )


STAGES: tuple[Stage, ...] = (
    Stage("load", _prep_load, keep="extract", describe=_describe_load),
    Stage(
        "network (cold)",
        _prep_network,
        ("extract",),
        "net",
        _describe_net,
        repeat_attr="network_repeat",
    ),
    Stage("network cache write", _prep_cache_write, ("extract", "net"), "cache", _describe_cache),
    Stage("network (cached)", _prep_network_cached, ("net",), None, _describe_net),
    Stage("centers", _prep_centers, ("extract", "net"), "centers", _describe_rows),
    Stage("demand", _prep_demand, ("extract", "net"), "demand", _describe_demand),
    Stage(
        "nearest-center minutes",
        _prep_nearest,
        ("net", "centers", "demand"),
        "minutes",
        _describe_minutes,
    ),
    Stage("polygons", _prep_polygons, ("net", "centers"), None, _describe_rows),
    Stage("audit", _prep_audit, ("net", "centers", "demand"), "audit", _describe_audit),
    Stage("coverage sets", _prep_coverage_sets, ("net", "demand"), "cover", _describe_cover),
    Stage("greedy + swap", _prep_greedy, ("cover", "demand"), None, _describe_greedy),
    Stage("export", _prep_export, ("net", "audit"), None, _describe_bytes),
    Stage("batch", _prep_batch, ("extract", "net", "centers", "demand"), None, _describe_batch),
    Stage(
        "anchor: networkx search", _prep_anchor_search, ("net", "centers"), None, _describe_anchor
    ),
    Stage(
        "anchor: ego-graph isochrones", _prep_anchor_ego, ("net", "centers"), None, _describe_anchor
    ),
    Stage("anchor: spopt MCLP", _prep_anchor_spopt, ("cover", "demand"), None, _describe_anchor),
)
STAGE_NAMES = tuple(s.name for s in STAGES)


def select_stages(spec: str | None) -> tuple[str, ...]:
    """Stage names matching comma-separated prefixes (``"load,network"``); all if ``spec`` is empty."""
    if not spec:
        return STAGE_NAMES
    prefixes = [p.strip().lower() for p in spec.split(",") if p.strip()]
    chosen = tuple(n for n in STAGE_NAMES if any(n.startswith(p) for p in prefixes))
    if not chosen:
        msg = f"`--stages` {spec!r} matches none of: {', '.join(STAGE_NAMES)}"
        raise ValueError(msg)
    return chosen


def run_stages(
    ctx: _Ctx, *, profile_network: bool = False, only: tuple[str, ...] = STAGE_NAMES
) -> tuple[list[StageResult], str]:
    """Run the stages named in ``only`` on ``ctx.path``; never raises for a stage's own failure."""
    results: list[StageResult] = []
    status_of: dict[str, str] = {}
    producer = {s.keep: s.name for s in STAGES if s.keep}
    profile_text = ""
    for stage in STAGES:
        if stage.name not in only:
            results.append(StageResult(stage.name, SKIPPED, detail="not selected (`--stages`)"))
            status_of[stage.name] = "not selected"
            continue
        missing = [k for k in stage.needs if k not in ctx.data]
        if missing:
            why = ", ".join(
                f"{producer.get(k, k)} {status_of.get(producer.get(k, k), '?')}" for k in missing
            )
            results.append(StageResult(stage.name, SKIPPED, detail=f"needs {why}"))
            status_of[stage.name] = SKIPPED
            log(f"  {stage.name}: skipped ({why})")
            continue
        try:
            call = stage.prepare(ctx)
        except UnavailableError as exc:
            results.append(StageResult(stage.name, NOT_AVAILABLE, detail=str(exc)))
            status_of[stage.name] = NOT_AVAILABLE
            log(f"  {stage.name}: not available yet ({exc})")
            continue
        except Exception as exc:
            results.append(StageResult(stage.name, ERROR, detail=_short_error(exc)))
            status_of[stage.name] = ERROR
            log(f"  {stage.name}: error while preparing\n{traceback.format_exc()}")
            continue
        repeat = max(1, int(getattr(ctx, stage.repeat_attr)))
        try:
            if profile_network and stage.name == "network (cold)":
                m, profile_text = _profiled(call)
            else:
                m = measure(call, repeat=repeat)
        except (UnavailableError, ImportError, AttributeError) as exc:
            # A module that imports but lacks a name it uses internally.
            results.append(StageResult(stage.name, NOT_AVAILABLE, detail=_short_error(exc)))
            status_of[stage.name] = NOT_AVAILABLE
            log(f"  {stage.name}: not available yet ({exc})")
            continue
        except Exception as exc:
            results.append(StageResult(stage.name, ERROR, detail=_short_error(exc)))
            status_of[stage.name] = ERROR
            log(f"  {stage.name}: error\n{traceback.format_exc()}")
            continue
        if stage.keep:
            ctx.data[stage.keep] = m.result
        detail = ""
        if stage.describe is not None:
            try:
                detail = stage.describe(m.result)
            except Exception as exc:
                detail = f"(could not describe result: {_short_error(exc)})"
        results.append(
            StageResult(
                stage.name,
                OK,
                m.median_s,
                list(m.times_s),
                m.median_cpu_s,
                round(m.peak_rss_mb, 1),
                round(m.delta_rss_mb, 1),
                detail,
            )
        )
        status_of[stage.name] = OK
        log(f"  {stage.name}: {fmt_seconds(m.median_s)}, peak {fmt_mb(m.peak_rss_mb)}; {detail}")
    return results, profile_text


def _profiled(call: Callable[[], Any]) -> tuple[Measurement, str]:
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.005)
    with peak_rss() as tracker:
        profiler.start()
        c0, t0 = time.process_time(), time.perf_counter()
        try:
            result = call()
        finally:
            elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
            profiler.stop()
    text = profiler.output_text(unicode=True, color=False, show_all=False)
    return Measurement((elapsed,), tracker.peak, tracker.baseline, result, (cpu,)), text


def _short_error(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return text if len(text) <= 300 else text[:297] + "..."


# --- one size (child process) ------------------------------------------------------


def _city_paths(workdir: Path, nodes: int, seed: int) -> tuple[Path, Path]:
    return (
        workdir / f"synth-{nodes}-s{seed}.osm.pbf",
        workdir / f"synth-{nodes}-s{seed}-districts.geojson",
    )


def run_size(
    nodes: int,
    *,
    seed: int,
    workdir: Path,
    repeat: int,
    network_repeat: int,
    smoke: bool,
    profile_network: bool,
    only: tuple[str, ...] = STAGE_NAMES,
) -> dict[str, Any]:
    """Generate (or reuse) one city and run every stage on it."""
    from synth_city import generate_city

    city, districts = _city_paths(workdir, nodes, seed)
    gen: dict[str, Any] = {"reused": True}
    if not (city.exists() and districts.exists()):
        log(f"generating a {nodes:,}-node city → {city}")
        stats = generate_city(city, nodes=nodes, seed=seed, districts_out=districts)
        gen = {k: v for k, v in asdict(stats).items() if k not in ("path",)}
        gen["reused"] = False
    gen["file_mb"] = round(city.stat().st_size / 1e6, 2)
    log(f"size {nodes:,}: running {len(STAGES)} stages")
    with tempfile.TemporaryDirectory(prefix="bench-", dir=workdir) as tmp:
        ctx = _Ctx(
            path=city,
            districts_path=districts,
            work=Path(tmp),
            repeat=repeat,
            network_repeat=network_repeat,
            smoke=smoke,
        )
        results, profile = run_stages(ctx, profile_network=profile_network, only=only)
        net = ctx.data.get("net")
        network = (
            {"nodes": net.n_nodes, "edges": net.n_edges, "length_km": round(net.length_km, 1)}
            if net is not None
            else {}
        )
    return {
        "target_nodes": nodes,
        "seed": seed,
        "city": city.name,
        "generator": gen,
        "network": network,
        "stages": [asdict(r) for r in results],
        "network_profile": profile,
    }


# --- report -------------------------------------------------------------------


def _size_table(size: dict[str, Any]) -> str:
    rows = []
    for r in size["stages"]:
        ok = r["status"] == OK
        rows.append(
            {
                "stage": r["stage"],
                "median": fmt_seconds(r["median_s"]) if ok else r["status"],
                "CPU": fmt_seconds(r.get("cpu_s")) if ok else "",
                "runs": len(r["times_s"]) if ok else "",
                "peak RSS": fmt_mb(r["peak_rss_mb"]) if ok else "",
                "added RSS": fmt_mb(r["delta_rss_mb"]) if ok else "",
                "notes": r["detail"],
            }
        )
    return markdown_table(
        rows, ["stage", "median", "CPU", "runs", "peak RSS", "added RSS", "notes"]
    )


def growth_exponent(n: list[float], t: list[float]) -> float | None:
    """Least-squares slope of log t against log n (1 = linear growth)."""
    pts = [(math.log(a), math.log(b)) for a, b in zip(n, t, strict=True) if a > 0 and b and b > 0]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    if sxx == 0:
        return None
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx


def _growth_table(sizes: list[dict[str, Any]]) -> str:
    def nodes_of(s: dict[str, Any]) -> float:
        return float(s["network"].get("nodes") or s["target_nodes"])

    ns = [nodes_of(s) for s in sizes]
    heads = [f"{int(n):,} nodes" for n in ns]
    rows = []
    for name in STAGE_NAMES:
        times: list[float | None] = []
        row: dict[str, Any] = {"stage": name}
        for s, h in zip(sizes, heads, strict=True):
            r = next((x for x in s["stages"] if x["stage"] == name), None)
            t = r["median_s"] if r and r["status"] == OK else None
            times.append(t)
            row[h] = fmt_seconds(t) if t is not None else (r["status"] if r else "–")
            if t is not None:
                row[h] += f" ({t / nodes_of(s) * 1e6:.1f} µs/node)"
        usable = [(n, t) for n, t in zip(ns, times, strict=True) if t is not None]
        exp = growth_exponent([u[0] for u in usable], [u[1] for u in usable])
        row["growth exponent"] = f"{exp:.2f}" if exp is not None else "–"
        rows.append(row)
    return markdown_table(rows, ["stage", *heads, "growth exponent"])


def render_report(info: dict[str, Any], sizes: list[dict[str, Any]], args: dict[str, Any]) -> str:
    parts = [
        "# Benchmark suite\n",
        "Generated by `benchmarks/run.py` "
        f"(`{args['command']}`) on synthetic cities from `benchmarks/synth_city.py` "
        "(seeded; around Taiyuan, 112.55°E 37.87°N). Times are wall-clock medians of "
        f"{args['repeat']} run(s) per stage ({args['network_repeat']} for the cold network "
        "build); *peak RSS* is the resident memory of the benchmark process while the stage "
        "ran (sampled every 10 ms; each size runs in a fresh process), *added RSS* the part "
        "above the memory held when the stage began. *CPU* is the process's CPU time (all "
        "threads, not Dask worker processes): when other jobs share the cores, wall time "
        "grows but CPU time does not, so compare CPU across runs. Walking speed "
        f"{SPEED_KMH} km/h, thresholds {', '.join(f'{t:g}' for t in THRESHOLDS_MIN)} min, "
        f"siting k = {SITING_K} at {SITING_MINUTES:g} min.\n",
        "## Machine\n",
        machine_markdown(info),
    ]
    for s in sizes:
        gen = s["generator"]
        net = s["network"]
        title = f"## {s['target_nodes']:,}-node city\n"
        facts = (
            f"`{s['city']}` ({gen.get('file_mb')} MB"
            + (
                f"; {gen['osm_nodes']:,} OSM nodes, {gen['osm_ways']:,} ways, "
                f"{gen['districts']} districts, {gen['centers']:,} centers, generated in "
                f"{fmt_seconds(gen['seconds'])}"
                if not gen.get("reused")
                else "; reused from an earlier run"
            )
            + ")"
        )
        if net:
            facts += (
                f"; network {net['nodes']:,} nodes, {net['edges']:,} edges, {net['length_km']:,} km"
            )
        if s.get("error"):
            facts += f"\n\n**The run for this size failed:** {s['error']}"
        parts += [title, facts + "\n", _size_table(s)]
        cached = next(
            (x for x in s["stages"] if x["stage"] == "network (cached)" and x["status"] == OK),
            None,
        )
        if cached and s["target_nodes"] >= 300_000:
            verdict = "meets" if cached["median_s"] <= TARGET_CACHED_LOAD_S else "misses"
            parts.append(
                f"Network load from cache: {fmt_seconds(cached['median_s'])}, {verdict} the "
                f"issue-7 target of ≤ {TARGET_CACHED_LOAD_S:g} s at 300k nodes.\n"
            )
        if s.get("network_profile"):
            parts.append(
                "<details><summary>Profile of the cold network build (pyinstrument)</summary>\n\n```text\n"
                + s["network_profile"].strip()
                + "\n```\n</details>\n"
            )
    if len(sizes) > 1:
        parts += [
            "## Cost growth\n",
            "Median time per stage against the nodes of the simplified network (µs per node in "
            "brackets); the growth exponent is the slope of log(time) against log(nodes), "
            "1 meaning linear.\n",
            _growth_table(sizes),
        ]
    return "\n".join(parts)


# --- entry points -------------------------------------------------------------------


def _child_main(spec: dict[str, Any]) -> int:
    result = run_size(
        spec["nodes"],
        seed=spec["seed"],
        workdir=Path(spec["workdir"]),
        repeat=spec["repeat"],
        network_repeat=spec["network_repeat"],
        smoke=spec["smoke"],
        profile_network=spec["profile_network"],
        only=tuple(spec["stages"]),
    )
    Path(spec["result"]).write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
    return 0


def _run_child(spec: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return _failed(spec, f"timed out after {timeout_s:.0f} s")
    result_path = Path(spec["result"])
    if proc.returncode != 0 or not result_path.exists():
        return _failed(spec, f"exit code {proc.returncode} (see stderr)")
    return dict(json.loads(result_path.read_text(encoding="utf-8")))


def _failed(spec: dict[str, Any], why: str) -> dict[str, Any]:
    return {
        "target_nodes": spec["nodes"],
        "seed": spec["seed"],
        "city": "",
        "generator": {"reused": True},
        "network": {},
        "stages": [],
        "network_profile": "",
        "error": why,
    }


def _guards_main(args: argparse.Namespace) -> int:
    """Run :mod:`bench_guards` with this suite's options."""
    from bench_guards import main as guards_main

    nodes = 0 if args.smoke else int(args.sizes.split(",")[0].replace("_", "") or 0)
    repeat = 1 if args.smoke else args.repeat
    extra = ["--workdir", str(args.workdir)] if args.workdir else []
    return guards_main(["--nodes", str(nodes), "--repeat", str(repeat), *extra])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--sizes", default="10000,100000,300000", help="comma-separated target node counts"
    )
    p.add_argument("--repeat", type=int, default=3, help="runs per stage (median reported)")
    p.add_argument(
        "--network-repeat",
        type=int,
        default=1,
        help="runs of the cold network build (slow at scale)",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--smoke", action="store_true", help="3k nodes, repeat 1: a fast CI check")
    p.add_argument(
        "--out", type=Path, default=None, help=f"report path (default {DOC_PATH.relative_to(ROOT)})"
    )
    p.add_argument("--write-docs", action="store_true", help=f"write {DOC_PATH.relative_to(ROOT)}")
    p.add_argument("--json", type=Path, default=None, help="also write the raw results as JSON")
    p.add_argument("--workdir", type=Path, default=None, help="where cities are generated and kept")
    p.add_argument(
        "--stages", default=None, help="comma-separated stage name prefixes to run (default all)"
    )
    p.add_argument("--profile-network", action="store_true", help="profile the cold network build")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per size")
    p.add_argument(
        "--guards",
        action="store_true",
        help="measure the reliability guards' cost instead (benchmarks/bench_guards.py; "
        "--repeat, --workdir and the first of --sizes apply; --smoke: embedded city, 1 run)",
    )
    p.add_argument(
        "--e2e",
        action="store_true",
        help="also run benchmarks/bench_e2e.py (whole commands, cold and warm) on the same sizes",
    )
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child is not None:
        return _child_main(json.loads(args.child))
    if args.guards:
        return _guards_main(args)
    if args.smoke:
        sizes, repeat, network_repeat = [3_000], 1, 1
    else:
        try:
            sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
        except ValueError:
            print(
                f"error: `--sizes` must be comma-separated integers; got {args.sizes!r}",
                file=sys.stderr,
            )
            return 2
        repeat, network_repeat = args.repeat, args.network_repeat
    if not sizes or repeat < 1 or network_repeat < 1:
        print("error: give at least one size and repeats ≥ 1", file=sys.stderr)
        return 2
    try:
        only = select_stages(args.stages)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = args.out or (DOC_PATH if args.write_docs or not args.smoke else SMOKE_PATH)
    workdir = args.workdir or Path(tempfile.gettempdir()) / "coverage-planner-bench"
    workdir.mkdir(parents=True, exist_ok=True)
    info = machine_info()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-results-") as tmp:
        for n in sizes:
            spec = {
                "nodes": n,
                "seed": args.seed,
                "workdir": str(workdir),
                "repeat": repeat,
                "network_repeat": network_repeat,
                "smoke": bool(args.smoke),
                "profile_network": bool(args.profile_network),
                "stages": list(only),
                "result": str(Path(tmp) / f"{n}.json"),
            }
            t0 = time.perf_counter()
            results.append(_run_child(spec, args.timeout))
            log(f"size {n:,} done in {time.perf_counter() - t0:.1f} s")
    command = "python benchmarks/run.py " + (
        "--smoke" if args.smoke else f"--sizes {','.join(map(str, sizes))} --repeat {repeat}"
    )
    report = render_report(
        info, results, {"command": command, "repeat": repeat, "network_repeat": network_repeat}
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        old = out.read_text(encoding="utf-8")
        if NOTES_MARKER in old:
            report = report.rstrip() + "\n\n" + NOTES_MARKER + old.split(NOTES_MARKER, 1)[1]
    tmp_out = out.with_name(f".{out.name}.tmp")
    tmp_out.write_text(report, encoding="utf-8")
    os.replace(tmp_out, out)
    if args.json is not None:
        args.json.write_text(
            json.dumps({"machine": info, "sizes": results}, ensure_ascii=False, indent=1),
            encoding="utf-8",
        )
    log(f"wrote {out}")
    failed = [r for r in results if r.get("error")]
    e2e_code = 0
    if args.e2e:
        import bench_e2e

        e2e_args = ["--sizes", ",".join(map(str, sizes)), "--workdir", str(workdir)]
        if args.write_docs:
            e2e_args.append("--write-docs")
        e2e_code = bench_e2e.main(
            ["--smoke", "--workdir", str(workdir)] if args.smoke else e2e_args
        )
    return 1 if failed or e2e_code else 0


if __name__ == "__main__":
    sys.exit(main())
