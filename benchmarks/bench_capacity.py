"""Capacity benchmark (issue 15): 2SFCA against the plain audit's search, capacitated greedy.

Stages (medians of ``--repeat`` runs), on the 100,000-node synthetic perturbed grid of
``bench_siting.py`` with 40,000 point demand units and 300 existing centers with floor
areas (200–5,300 m²):

1. the plain audit's walking search (``audit(..., with_polygons=False)``: nearest center
   and per-center reach within 15 minutes; its ``search`` + ``per_center`` timings);
2. ``capacity.capacity_audit`` (households, loads, plain 2SFCA, enhanced 2SFCA): target
   at most 2× stage 1;
3. the capacitated greedy for k = 50 on 20,000 candidate nodes with two sizes (300 and
   600 m²) plus enlarging each existing center by 300 m² (40,300 actions): target ≤ 5 s;
   the proven bound and its gap are reported (the instance is too large for the LP
   bound, so the submodular bound stands alone).

Usage::

    .venv/bin/python benchmarks/bench_capacity.py [--repeat 3] [--nodes 100000] [--out docs/bench/capacity.md]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import ROOT, fmt_seconds, log, machine_info, markdown_table, measure, write_markdown
from bench_siting import CpuTimed, _node_snaps, synthetic_demand, synthetic_network

SPEED_KMH = 4.5
MINUTES = 15.0


def _nodes_frame(net: Any, nodes: np.ndarray, prefix: str) -> Any:
    from coverage import siting as S  # noqa: N812 (short alias in a script)

    return S._candidate_frame(
        net,
        *_node_snaps(net, nodes),
        np.zeros(nodes.size),
        [f"{prefix}{i}" for i in nodes],
        "network",
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--nodes", type=int, default=100_000)
    ap.add_argument("--candidates", type=int, default=20_000)
    ap.add_argument("--centers", type=int, default=300)
    ap.add_argument("--demand", type=int, default=40_000)
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--out", default=str(ROOT / "docs" / "bench" / "capacity.md"))
    args = ap.parse_args(argv)

    from coverage import capacity as cap
    from coverage import optimize as opt
    from coverage import siting as S  # noqa: N812
    from coverage.audit import AuditParams, audit
    from coverage.centers import FLOOR_AREA_M2

    info = machine_info()
    rows: list[dict[str, Any]] = []
    load_before = os.getloadavg()
    log(f"building a {args.nodes:,}-node synthetic network")
    net = synthetic_network(args.nodes)
    demand = synthetic_demand(net, args.demand)
    rng = np.random.default_rng(5)
    has_edge = np.bincount(np.concatenate([net.edge_u, net.edge_v]), minlength=net.n_nodes) > 0
    nodes = rng.choice(np.flatnonzero(has_edge), args.centers + args.candidates, replace=False)
    centers = _nodes_frame(net, np.sort(nodes[: args.centers]), "c").rename(
        columns={"candidate_id": "center_id"}
    )
    centers["name"] = None
    centers["level"] = None
    centers[FLOOR_AREA_M2] = rng.uniform(200, 5300, len(centers)).round()
    cands = _nodes_frame(net, np.sort(nodes[args.centers :]), "n")

    # --- 1. the plain audit's search ---
    params = AuditParams(speed_kmh=SPEED_KMH, thresholds_min=(5.0, MINUTES))
    searches: list[float] = []

    def run_audit() -> Any:
        r = audit(net, centers, demand, params, with_polygons=False)
        searches.append(float(r.timings_s["search"] + r.timings_s["per_center"]))
        return r

    au = CpuTimed(run_audit)
    ma = measure(au, repeat=args.repeat, warmup=1, track_memory=False)
    result = ma.result
    search_s = float(np.median(searches[-args.repeat :]))
    rows.append(
        {
            "stage": f"plain audit search: nearest + per-center reach, {len(centers)} centers × {len(demand):,} units, {net.n_nodes:,} nodes, 15 min",
            "median": fmt_seconds(search_s),
            "CPU median": "–",
            "target": "–",
            "met": "–",
            "notes": f"whole audit without polygons {fmt_seconds(ma.median_s)}",
        }
    )
    log(rows[-1]["median"])

    # --- 2. 2SFCA + E2SFCA ---
    cp = CpuTimed(lambda: cap.capacity_audit(net, result))
    mc = measure(cp, repeat=args.repeat, warmup=1, track_memory=False)
    res = mc.result
    ratio = mc.median_s / search_s
    rows.append(
        {
            "stage": "capacity_audit: households, loads, 2SFCA + enhanced 2SFCA (one bounded search)",
            "median": fmt_seconds(mc.median_s),
            "CPU median": fmt_seconds(cp.median_s(args.repeat)),
            "target": "≤ 2× search",
            "met": "yes" if ratio <= 2.0 else "no",
            "notes": f"{ratio:.2f}× the audit's search; share meeting 30 m²/100 households {res.share_meeting_standard:.4f}",
        }
    )
    log(rows[-1]["median"])

    # --- 3. capacitated greedy, k = 50 ---
    log(f"coverage sets: {len(cands):,} candidates")
    cover = S.coverage_sets(net, cands, demand, minutes=MINUTES, speed_kmh=SPEED_KMH)
    cover_e = S.coverage_sets(net, centers, demand, minutes=MINUTES, speed_kmh=SPEED_KMH)
    w = demand["population"].to_numpy(np.float64)
    total = float(w.sum())
    # small sites fill up (capacity binds: the bound is tight); large ones do not (a real gap)
    for sizes, enlarge in (((300.0, 600.0), 300.0), ((3000.0, 6000.0), 3000.0)):
        sp = S.SitingParams(k=args.k, new_site_m2=sizes, enlarge_m2=enlarge, lp_bound=False)
        model = S._capacitated_model(
            sp, cover_e, cover, demand, centers[FLOOR_AREA_M2].to_numpy(float)
        )
        cg = CpuTimed(lambda model=model: opt.capacitated_greedy(model, k=args.k))
        mg = measure(cg, repeat=args.repeat, warmup=1, track_memory=False)
        mb = measure(
            lambda model=model, sp=sp: opt.best_capacitated_sites(model, sp),
            repeat=1,
            warmup=0,
            track_memory=False,
        )
        sel = mb.result
        gap = (sel.bound_population - sel.population_after) / total
        n_enl = sum(a >= len(sizes) * len(cands) for a in sel.chosen)
        rows.append(
            {
                "stage": f"capacitated greedy, k = {args.k}: {len(cands):,} candidates × sizes {'/'.join(f'{a:g}' for a in sizes)} m² + {len(centers)} enlargements by {enlarge:g} m² ({model.n_actions:,} actions, {model.cover.nnz:,} pairs)",
                "median": fmt_seconds(mg.median_s),
                "CPU median": fmt_seconds(cg.median_s(args.repeat)),
                "target": "≤ 5 s",
                "met": "yes" if mg.median_s <= 5.0 else "no",
                "notes": f"served {sel.population_before / total:.4f} → {sel.population_after / total:.4f} ({n_enl} enlargements); {sel.bound_kind} bound {sel.bound_population / total:.4f}; gap {gap:.4f} of residents",
            }
        )
        rows.append(
            {
                "stage": "… best_capacitated_sites on it (greedy, order, max-flow LPs, bound)",
                "median": fmt_seconds(mb.median_s),
                "CPU median": "–",
                "target": "–",
                "met": "–",
                "notes": "",
            }
        )
        log(rows[-1]["median"])
    load_after = os.getloadavg()
    cols = ["stage", "median", "CPU median", "target", "met", "notes"]
    print(markdown_table(rows, cols))
    intro = (
        f"Run with `.venv/bin/python benchmarks/bench_capacity.py --repeat {args.repeat}`. "
        f"Medians of {args.repeat} timed runs after one warm-up. Synthetic city of `bench_siting.py`: "
        f"{net.n_nodes:,} nodes, {net.n_edges:,} edges, {len(demand):,} point demand units, "
        f"{len(centers)} existing centers and {len(cands):,} candidates at random nodes. Walking "
        "4.5 km/h, 5 and 15 minutes. The machine is shared: 1-minute load average "
        f"{load_before[0]:.1f} at the start and {load_after[0]:.1f} at the end (on "
        f"{os.cpu_count()} cores), so wall times include waiting for a core."
    )
    extra = (
        "## Notes\n\n"
        "- `CPU median` is the process CPU time; on this shared machine wall time is mostly "
        "waiting for a core (load average above the core count), so the targets are judged "
        "on the wall median, the less favourable of the two.\n"
        "- 2SFCA runs one bounded per-center search (`reach.pairs_within_m`, the audit's own "
        "per-center step) and sparse sums; the audit's search is that step plus the "
        "nearest-center search.\n"
        "- The bound is the submodular bound (the LP is skipped above 250,000 pairs). With small "
        "sites every chosen action fills up, the bound around the baseline (served + k × the "
        "largest capacities) equals the greedy's value, and the greedy is proven optimal; with "
        "large sites capacity does not bind and the gap shown is the price of a bound that "
        "cannot see overlapping catchments.\n"
        "- `best_capacitated_sites` adds the baseline and final maximum-flow LPs (HiGHS) to the "
        "greedy; they are not part of the 5 s target, which is the greedy's.\n"
    )
    write_markdown(args.out, "Capacity benchmark", rows, machine=info, intro=intro, extra=extra)
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
