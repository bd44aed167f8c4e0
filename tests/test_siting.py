"""Siting: candidates and coverage sets against networkx, the geographic wrapper's invariants.

The matrix core (greedy, swap, bounds, HiGHS) is tested against brute force in
tests/test_optimize.py.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely

from coverage import reach
from coverage.errors import InputError
from coverage.optimize import best_sites
from coverage.reach import Snapped, nearest_points_m
from coverage.siting import (
    CANDIDATE_ID,
    SitingParams,
    candidate_sites,
    candidates_from_file,
    coverage_sets,
    propose_sites,
)
from coverage.snapping import snap_frame

SPEED_KMH = 4.5
LIMIT_15_M = 15 * 60 * SPEED_KMH / 3.6  # 1,125 m


@pytest.mark.parametrize(
    "kwargs",
    [
        {"k": 0},
        {"k": -2},
        {"target_share": 0.0},
        {"target_share": 1.5},
        {"target_share": -0.1},
        {},
        {"k": 3, "target_share": 0.5},
        {"k": 3, "minutes": 0.0},
        {"k": 3, "max_k": 0},
        {"k": 3, "speed_kmh": -1.0},
    ],
)
def test_bad_params_raise_input_error(kwargs: dict[str, float]) -> None:
    with pytest.raises(InputError):
        SitingParams(**kwargs)  # type: ignore[arg-type]


# --- Chengdu ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chengdu_demand(chengdu_extract, chengdu_net):  # type: ignore[no-untyped-def]
    res = chengdu_extract.residential.to_crs(chengdu_net.crs).reset_index(drop=True)
    geoms = res.geometry.values
    demand = gpd.GeoDataFrame(
        {
            "demand_id": [f"d{i}" for i in range(len(res))],
            "population": shapely.area(geoms) * 0.02,
            "kind": "landuse",
        },
        geometry=geoms,
        crs=chengdu_net.crs,
    )
    return snap_frame(chengdu_net, demand)


@pytest.fixture(scope="module")
def chengdu_candidates(chengdu_net, chengdu_demand):  # type: ignore[no-untyped-def]
    return candidate_sites(chengdu_net, chengdu_demand)


@pytest.fixture(scope="module")
def chengdu_result(chengdu_net, chengdu_demand):  # type: ignore[no-untyped-def]
    return propose_sites(chengdu_net, chengdu_demand, None, params=SitingParams(k=8))


def test_candidates_are_thinned_on_network_and_near_demand(
    chengdu_net, chengdu_demand, chengdu_candidates
) -> None:  # type: ignore[no-untyped-def]
    c = chengdu_candidates
    assert 100 < len(c) < chengdu_net.n_nodes * 2
    assert c[CANDIDATE_ID].is_unique
    assert str(c.crs) == str(chengdu_net.crs)
    xy = np.column_stack([c.geometry.x, c.geometry.y])
    d = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    assert d.min() >= 100.0 * (1 - 1e-6)
    _, dist = chengdu_net.edge_tree.query_nearest(c.geometry.values, return_distance=True)
    assert dist.max() < 1e-6
    near = shapely.STRtree(chengdu_demand.geometry.values).query(
        c.geometry.values, predicate="dwithin", distance=300.0
    )
    assert np.unique(near[0]).size == len(c)
    again = candidate_sites(chengdu_net, chengdu_demand)
    pd.testing.assert_frame_equal(
        pd.DataFrame(c.drop(columns="geometry")), pd.DataFrame(again.drop(columns="geometry"))
    )


def _networkx_reach_m(net, G, c_edge, c_off, c_acc, d_edge, d_off, d_acc):  # type: ignore[no-untyped-def]
    """Walking meters from one candidate point to each demand point, via networkx."""
    u, v = int(net.edge_u[c_edge]), int(net.edge_v[c_edge])
    L = float(net.edge_length_m[c_edge])
    du = nx.single_source_dijkstra_path_length(G, u, weight="length_m")
    dv = nx.single_source_dijkstra_path_length(G, v, weight="length_m")

    def node_dist(n: int) -> float:
        return min(c_off + du.get(n, math.inf), L - c_off + dv.get(n, math.inf))

    out = np.empty(d_edge.size)
    for i, (e, o, a) in enumerate(zip(d_edge, d_off, d_acc, strict=True)):
        eu, ev = int(net.edge_u[e]), int(net.edge_v[e])
        Le = float(net.edge_length_m[e])
        best = min(node_dist(eu) + o, node_dist(ev) + Le - o)
        if e == c_edge:
            best = min(best, abs(c_off - o))
        out[i] = c_acc + best + a
    return out


def test_coverage_set_matches_networkx(chengdu_net, chengdu_demand, chengdu_candidates) -> None:  # type: ignore[no-untyped-def]
    net, dem = chengdu_net, chengdu_demand
    # Include file-style candidates with access legs and one sharing an edge with a demand unit.
    pts = gpd.GeoDataFrame(
        {"id": ["a", "b"]},
        geometry=[
            shapely.Point(
                dem.geometry.iloc[0].representative_point().x + 3,
                dem.geometry.iloc[0].representative_point().y,
            ),
            shapely.Point(
                chengdu_candidates.geometry.iloc[7].x + 20, chengdu_candidates.geometry.iloc[7].y
            ),
        ],
        crs=net.crs,
    )
    filec = candidates_from_file(net, pts)
    assert (filec["snap_distance_m"] >= 0).all()
    cands = pd.concat([chengdu_candidates.iloc[[0, 500, 1000]], filec], ignore_index=True)
    M = coverage_sets(net, cands, dem, minutes=15, speed_kmh=SPEED_KMH)
    assert M.shape == (len(cands), len(dem))
    assert M.dtype == bool
    G = net.to_networkx()
    de = dem["snap_edge"].to_numpy()
    do = dem["snap_offset_m"].to_numpy()
    da = dem["snap_distance_m"].to_numpy()
    for r in range(len(cands)):
        dist = _networkx_reach_m(
            net,
            G,
            int(cands["snap_edge"].iloc[r]),
            float(cands["snap_offset_m"].iloc[r]),
            float(cands["snap_distance_m"].iloc[r]),
            de,
            do,
            da,
        )
        clear = np.abs(dist - LIMIT_15_M) > 1e-3
        row = M[[r]].toarray().ravel()
        np.testing.assert_array_equal(row[clear], (dist <= LIMIT_15_M)[clear])
    # 5-minute sets are inside 15-minute sets.
    M5 = coverage_sets(net, cands, dem, minutes=5, speed_kmh=SPEED_KMH)
    assert not (M5.toarray() & ~M.toarray()).any()
    assert M5.nnz < M.nnz


def test_proposed_sites_contract(chengdu_net, chengdu_demand, chengdu_result) -> None:  # type: ignore[no-untyped-def]
    res = chengdu_result
    s = res.sites
    assert res.method == "greedy+swap"
    assert res.k == len(s) == 8
    assert s["rank"].tolist() == list(range(1, 9))
    assert str(s.crs) == str(chengdu_net.crs)
    for col in ("marginal_population", "cumulative_population", "cumulative_share", "candidate_id"):
        assert col in s.columns
    _, dist = chengdu_net.edge_tree.query_nearest(s.geometry.values, return_distance=True)
    assert dist.max() < 1e-6
    # Curve: k = 0..K, monotone, consistent with the sites.
    curve = res.curve
    assert curve["k"].tolist() == list(range(9))
    assert (np.diff(curve["share"]) >= 0).all()
    assert curve["share"].iloc[-1] == pytest.approx(res.share_after)
    assert curve["share"].iloc[0] == pytest.approx(res.share_before)
    np.testing.assert_allclose(s["cumulative_share"], curve["share"].iloc[1:])
    assert res.upper_bound_share >= res.share_after
    assert res.gap == pytest.approx(res.upper_bound_share - res.share_after)
    # minutes_after: same index as demand, and consistent with share_after.
    assert res.minutes_after.index.equals(chengdu_demand.index)
    w = chengdu_demand["population"].to_numpy()
    share = w[res.minutes_after.to_numpy() <= 15 + 1e-9].sum() / w.sum()
    assert share == pytest.approx(res.share_after, abs=1e-9)
    assert res.summary()["k"] == 8


def test_marginal_population_matches_recomputation(
    chengdu_net, chengdu_demand, chengdu_result
) -> None:  # type: ignore[no-untyped-def]
    net, dem, s = chengdu_net, chengdu_demand, chengdu_result.sites
    w = dem["population"].to_numpy()
    points = Snapped(
        dem["snap_edge"].to_numpy(),
        dem["snap_offset_m"].to_numpy(),
        dem["snap_distance_m"].to_numpy(),
    )
    prev = 0.0
    for r in range(1, len(s) + 1):
        top = s.iloc[:r]
        sources = Snapped(
            top["snap_edge"].to_numpy(),
            top["snap_offset_m"].to_numpy(),
            top["snap_distance_m"].to_numpy(),
        )
        dist, _ = nearest_points_m(net, sources, points)
        pop = float(w[dist <= LIMIT_15_M + 1e-6].sum())
        assert s["marginal_population"].iloc[r - 1] == pytest.approx(pop - prev, abs=1e-6)
        assert s["cumulative_population"].iloc[r - 1] == pytest.approx(pop, abs=1e-6)
        prev = pop


def test_propose_sites_is_deterministic(chengdu_net, chengdu_demand, chengdu_result) -> None:  # type: ignore[no-untyped-def]
    again = propose_sites(chengdu_net, chengdu_demand, None, params=SitingParams(k=8))
    assert again.sites["candidate_id"].tolist() == chengdu_result.sites["candidate_id"].tolist()
    assert again.share_after == chengdu_result.share_after


def test_adding_sites_never_lowers_coverage(
    chengdu_net, chengdu_demand, chengdu_candidates
) -> None:  # type: ignore[no-untyped-def]
    shares = [
        propose_sites(
            chengdu_net,
            chengdu_demand,
            None,
            params=SitingParams(k=k, lp_bound=False),
            candidates=chengdu_candidates,
        ).share_after
        for k in (1, 3, 6)
    ]
    assert shares == sorted(shares)


def test_exact_mode_is_optimal_and_bounds_hold(
    chengdu_net, chengdu_demand, chengdu_candidates
) -> None:  # type: ignore[no-untyped-def]
    cands = chengdu_candidates.iloc[::10].reset_index(drop=True)
    greedy = propose_sites(
        chengdu_net, chengdu_demand, None, params=SitingParams(k=4), candidates=cands
    )
    exact = propose_sites(
        chengdu_net, chengdu_demand, None, params=SitingParams(k=4, exact=True), candidates=cands
    )
    assert exact.method == "exact"
    assert exact.optimal
    assert exact.share_after >= greedy.share_after - 1e-12
    assert greedy.upper_bound_share >= exact.share_after - 1e-9
    assert exact.gap < 1e-6


def test_existing_centers_count_as_covered_and_closed_ones_do_not(
    chengdu_net, chengdu_demand, chengdu_candidates
) -> None:  # type: ignore[no-untyped-def]
    net = chengdu_net
    pts = chengdu_candidates.geometry.iloc[[100, 900]]
    centers = snap_frame(
        net,
        gpd.GeoDataFrame(
            {"center_id": ["c1", "c2"], "name": ["一", "二"], "source": "osm", "level": None},
            geometry=pts.values,
            crs=net.crs,
        ),
    )
    params = SitingParams(k=2, lp_bound=False)
    with_c = propose_sites(
        net, chengdu_demand, centers, params=params, candidates=chengdu_candidates
    )
    closed = propose_sites(
        net, chengdu_demand, centers, params=params, candidates=chengdu_candidates, closed=["c2"]
    )
    assert with_c.share_before > closed.share_before > 0
    assert with_c.share_after >= with_c.share_before
    w = chengdu_demand["population"].to_numpy()
    share = w[with_c.minutes_after.to_numpy() <= 15 + 1e-9].sum() / w.sum()
    assert share == pytest.approx(with_c.share_after, abs=1e-9)
    with pytest.raises(InputError, match="unknown center"):
        propose_sites(net, chengdu_demand, centers, params=params, closed=["nope"])
    # A covered0 array works in place of centers.
    cov0 = np.zeros(len(chengdu_demand), dtype=bool)
    cov0[:50] = True
    r = propose_sites(net, chengdu_demand, cov0, params=params, candidates=chengdu_candidates)
    assert r.share_before == pytest.approx(w[:50].sum() / w.sum())


def test_target_share_in_propose_sites(
    chengdu_net, chengdu_demand, chengdu_candidates, caplog
) -> None:  # type: ignore[no-untyped-def]
    r = propose_sites(
        chengdu_net,
        chengdu_demand,
        None,
        params=SitingParams(target_share=0.3, lp_bound=False),
        candidates=chengdu_candidates,
    )
    assert r.target_met is True
    assert r.share_after >= 0.3
    assert r.curve["share"].iloc[-2] < 0.3
    with caplog.at_level(logging.WARNING, logger="coverage.optimize"):
        r = propose_sites(
            chengdu_net,
            chengdu_demand,
            None,
            params=SitingParams(target_share=1.0, max_k=2, lp_bound=False),
            candidates=chengdu_candidates,
        )
    assert r.target_met is False
    assert r.k == 2
    assert r.summary()["target_met"] is False
    assert "not reachable" in caplog.text


def test_exclusion_polygons_keep_sites_out(chengdu_net, chengdu_demand, chengdu_result) -> None:  # type: ignore[no-untyped-def]
    best = chengdu_result.sites.geometry.iloc[:3]
    zone = gpd.GeoDataFrame(geometry=list(best.buffer(250.0)), crs=chengdu_net.crs).to_crs(
        "EPSG:4326"
    )
    r = propose_sites(
        chengdu_net, chengdu_demand, None, params=SitingParams(k=5, lp_bound=False), exclude=zone
    )
    zone_m = zone.to_crs(chengdu_net.crs).union_all()
    assert not shapely.intersects(r.sites.geometry.values, zone_m).any()
    assert len(r.sites) == 5


def test_candidate_errors(chengdu_net, chengdu_demand) -> None:  # type: ignore[no-untyped-def]
    net = chengdu_net
    everything = gpd.GeoDataFrame(
        geometry=[shapely.box(*chengdu_demand.total_bounds).buffer(2000)], crs=net.crs
    )
    with pytest.raises(InputError, match="exclude"):
        candidate_sites(net, chengdu_demand, exclude=everything)
    far = chengdu_demand.iloc[:3].copy()
    far["geometry"] = far.geometry.translate(50_000, 0)
    with pytest.raises(InputError, match="max_distance_m"):
        candidate_sites(net, far)
    x0, y0 = chengdu_demand.geometry.iloc[0].representative_point().coords[0]
    lonlat = gpd.GeoDataFrame(
        {"candidate_id": ["p", "q"]},
        geometry=[shapely.Point(x0, y0), shapely.Point(x0 + 30, y0 + 30)],
        crs=net.crs,
    ).to_crs("EPSG:4326")
    ok = candidates_from_file(net, lonlat)
    assert ok["candidate_id"].tolist() == ["p", "q"]
    assert str(ok.crs) == str(net.crs)
    with pytest.raises(InputError, match="EPSG:4326"):
        candidates_from_file(net, lonlat.to_crs("EPSG:3857"))
    with pytest.raises(InputError, match="no usable Point"):
        candidates_from_file(net, gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 1, 1)], crs=net.crs))
    off = gpd.GeoDataFrame(geometry=[shapely.Point(x0 + 40_000, y0)], crs=net.crs)
    with pytest.raises(InputError, match="not reachable"):
        candidates_from_file(net, off)
    with pytest.raises(InputError, match="exclude"):
        candidates_from_file(net, lonlat, exclude=everything)
    dup = lonlat.assign(candidate_id=["p", "p"])
    with pytest.raises(InputError, match="unique"):
        candidates_from_file(net, dup)


def test_propose_sites_rejects_bad_demand(chengdu_net, chengdu_demand) -> None:  # type: ignore[no-untyped-def]
    params = SitingParams(k=2)
    with pytest.raises(InputError, match="zero total population"):
        propose_sites(chengdu_net, chengdu_demand.assign(population=0.0), params=params)
    with pytest.raises(InputError, match="covered0"):
        propose_sites(chengdu_net, chengdu_demand, np.zeros(3, dtype=bool), params=params)


def test_exact_target_share_never_needs_more_sites_than_greedy(
    chengdu_net: Any, chengdu_demand: Any
) -> None:
    cands = candidate_sites(chengdu_net, chengdu_demand, spacing_m=250)
    params = {"target_share": 0.5, "max_k": 30, "minutes": 10.0}
    greedy = propose_sites(
        chengdu_net, chengdu_demand, None, params=SitingParams(**params), candidates=cands
    )
    exact = propose_sites(
        chengdu_net,
        chengdu_demand,
        None,
        params=SitingParams(**params, exact=True),
        candidates=cands,
    )
    assert greedy.target_met
    assert exact.target_met
    assert exact.k <= greedy.k
    assert exact.min_sites_proven is True
    assert exact.share_after >= 0.5 - 1e-12
    assert exact.upper_bound_share >= exact.share_after - 1e-9
    assert greedy.min_sites_proven is None


def test_frames_are_not_snapped_again(chengdu_net, chengdu_demand, chengdu_candidates) -> None:  # type: ignore[no-untyped-def]
    """Snap once: demand and centers arrive snapped from the load; siting refuses, never re-snaps."""
    params = SitingParams(k=1, lp_bound=False)
    bare = chengdu_demand.drop(columns=["snap_edge", "snap_offset_m", "snap_distance_m"])
    with pytest.raises(InputError, match="lacks the snap columns"):
        propose_sites(chengdu_net, bare, None, params=params, candidates=chengdu_candidates)
    centers = gpd.GeoDataFrame(
        {"center_id": ["c1"]}, geometry=[chengdu_candidates.geometry.iloc[100]], crs=chengdu_net.crs
    )
    with pytest.raises(InputError, match="`centers` lacks the snap columns"):
        propose_sites(
            chengdu_net, chengdu_demand, centers, params=params, candidates=chengdu_candidates
        )


def test_propose_sites_is_best_sites_on_the_coverage_sets(
    chengdu_net, chengdu_demand, chengdu_candidates
) -> None:  # type: ignore[no-untyped-def]
    """The wrapper hands the matrix core the coverage sets of the primary and tie-break limits."""
    net, dem, cands = chengdu_net, chengdu_demand, chengdu_candidates
    centers = snap_frame(
        net,
        gpd.GeoDataFrame(
            {"center_id": ["c1", "c2"]},
            geometry=chengdu_candidates.geometry.iloc[[100, 900]].values,
            crs=net.crs,
        ),
    )
    params = SitingParams(k=4, minutes=10.0, secondary_minutes=4.0)
    res = propose_sites(net, dem, centers, params=params, candidates=cands)
    cover = coverage_sets(net, cands, dem, minutes=10.0, speed_kmh=SPEED_KMH)
    tie = coverage_sets(net, cands, dem, minutes=4.0, speed_kmh=SPEED_KMH)
    d_args = (
        dem["snap_edge"].to_numpy(),
        dem["snap_offset_m"].to_numpy(),
        dem["snap_distance_m"].to_numpy(),
    )
    c_args = (
        centers["snap_edge"].to_numpy(),
        centers["snap_offset_m"].to_numpy(),
        centers["snap_distance_m"].to_numpy(),
    )
    dist0, _ = nearest_points_m(net, Snapped(*c_args), Snapped(*d_args))
    limit = 10 * 60 * SPEED_KMH / 3.6
    w = dem["population"].to_numpy()
    sel = best_sites(
        cover,
        w,
        params,
        covered0=dist0 <= limit + 1e-6,
        tie_cover=tie,
        tie_covered0=dist0 <= 4 * 60 * SPEED_KMH / 3.6 + 1e-6,
    )
    assert (
        res.sites["candidate_id"].tolist() == cands["candidate_id"].to_numpy()[sel.chosen].tolist()
    )
    assert res.share_before == pytest.approx(
        float(w[dist0 <= limit + 1e-6].sum()) / w.sum(), rel=1e-12
    )
    assert res.share_after == sel.population_after / w.sum()
    assert res.upper_bound_share == min(1.0, sel.bound_population / w.sum())
    np.testing.assert_array_equal(res.sites["marginal_population"], sel.marginal_population)


# --- the hand-made grid -----------------------------------------------------------------


@pytest.mark.parametrize("per_tile", [1.0, 48.0, 10_000.0])
def test_coverage_sets_on_the_grid_match_networkx(
    grid_net, per_tile: float, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    # the matrix is assembled from one tile of candidates at a time: the narrowest tiles
    # (most pieces) and one tile for all must give the same matrix, and networkx's
    monkeypatch.setattr(reach, "_SOURCES_PER_TILE", per_tile)
    from conftest import GRID_E, GRID_N

    net = grid_net
    rng = np.random.default_rng(5)

    def places(n: int) -> gpd.GeoDataFrame:
        xy = rng.uniform(-20.0, 420.0, (n, 2)) + np.array([GRID_E, GRID_N])
        return gpd.GeoDataFrame(
            {"population": np.ones(n)}, geometry=shapely.points(xy), crs=net.crs
        )

    cands = candidates_from_file(net, places(14))
    dem = snap_frame(net, places(60))
    minutes = 3.0  # 225 m: a part of the 400 m grid
    limit_m = minutes * 60 * SPEED_KMH / 3.6
    M = coverage_sets(net, cands, dem, minutes=minutes, speed_kmh=SPEED_KMH)
    assert M.shape == (len(cands), len(dem))
    assert M.dtype == bool
    assert 0 < M.nnz < M.shape[0] * M.shape[1]
    G = net.to_networkx()
    de, do, da = (dem[c].to_numpy() for c in ("snap_edge", "snap_offset_m", "snap_distance_m"))
    for r in range(len(cands)):
        edge, off, acc = (
            cands[c].iloc[r] for c in ("snap_edge", "snap_offset_m", "snap_distance_m")
        )
        dist = _networkx_reach_m(net, G, int(edge), float(off), float(acc), de, do, da)
        clear = np.abs(dist - limit_m) > 1e-3
        row = M[[r]].toarray().ravel()
        np.testing.assert_array_equal(row[clear], (dist <= limit_m)[clear])
