"""Tests for coverage.isochrones: exact answers on the grid, invariants and an
independent networkx check on the real extracts."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely

from coverage import isochrones as iso
from coverage.errors import InputError
from coverage.netcache import walk_network
from coverage.network import WalkNetwork
from coverage.snapping import SNAP_DISTANCE_M, SNAP_EDGE, SNAP_OFFSET_M, snap_frame

GRID = Path(__file__).resolve().parent / "data" / "grid.osm"
GRID_E, GRID_N = 440_000.0, 4_428_000.0  # UTM 50N origin of tests/data/grid.osm
SPEED = 4.5
M_PER_MIN = SPEED / 3.6 * 60.0  # 75 m per minute


# --- helpers: contract-conforming centers and demand built here ------------------


def make_centers(net: WalkNetwork, xy: np.ndarray, ids: list[str] | None = None) -> Any:
    xy = np.atleast_2d(np.asarray(xy, dtype=float))
    gdf = gpd.GeoDataFrame(
        {
            "center_id": ids or [f"c{i}" for i in range(len(xy))],
            "name": None,
            "source": "file",
            "level": None,
        },
        geometry=shapely.points(xy),
        crs=net.crs,
    )
    return snap_frame(net, gdf)


def centers_from_extract(net: WalkNetwork, extract: Any) -> Any:
    pts = extract.center_features.to_crs(net.crs).geometry
    return make_centers(net, np.column_stack([pts.x, pts.y]))


def demand_from_extract(net: WalkNetwork, extract: Any) -> Any:
    res = extract.residential.to_crs(net.crs).reset_index(drop=True)
    gdf = gpd.GeoDataFrame(
        {
            "demand_id": [f"d{i}" for i in range(len(res))],
            "population": res.area.to_numpy() * 0.02,
            "kind": res["kind"].to_numpy(),
            "name": res["name"].to_numpy(),
        },
        geometry=res.geometry.values,
        crs=net.crs,
    )
    return snap_frame(net, gdf)


def node_centers(net: WalkNetwork, n: int, seed: int = 0) -> Any:
    rng = np.random.default_rng(seed)
    nodes = rng.choice(net.n_nodes, size=n, replace=False)
    return make_centers(net, np.column_stack([net.node_x[nodes] + 7.0, net.node_y[nodes] - 5.0]))


def snap_args(gdf: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        gdf[SNAP_EDGE].to_numpy(),
        gdf[SNAP_OFFSET_M].to_numpy(),
        gdf[SNAP_DISTANCE_M].to_numpy(),
    )


def nx_reference_m(net: WalkNetwork, centers: Any, demand: Any) -> tuple[np.ndarray, np.ndarray]:
    """Distances point → nearest center with plain networkx, built from raw arrays.

    Every edge is split at the snapped positions of sources and points; each
    source and point is a virtual node joined by its access distance.
    """
    G = nx.Graph()
    stops: dict[int, list[tuple[float, Any]]] = {}
    for kind, frame in (("s", centers), ("p", demand)):
        for k, (e, off, acc) in enumerate(zip(*snap_args(frame), strict=True)):
            stops.setdefault(int(e), []).append((float(off), (kind, k, float(acc))))
    for i in range(net.n_edges):
        u, v, length = int(net.edge_u[i]), int(net.edge_v[i]), float(net.edge_length_m[i])
        chain: list[tuple[float, Any]] = [(0.0, u)]
        for off, (kind, k, acc) in sorted(stops.get(i, []), key=lambda s: s[0]):
            mid = ("on", kind, k)
            chain.append((off, mid))
            G.add_edge((kind, k), mid, weight=acc)
        chain.append((length, v))
        for (a_off, a), (b_off, b) in itertools.pairwise(chain):
            if a == b:
                continue
            w = b_off - a_off
            if G.has_edge(a, b):
                w = min(w, G[a][b]["weight"])
            G.add_edge(a, b, weight=w)
    sources = {("s", k) for k in range(len(centers))}
    dist, paths = nx.multi_source_dijkstra(G, sources, weight="weight")
    d = np.array([dist.get(("p", k), np.inf) for k in range(len(demand))])
    src = np.array([paths[("p", k)][0][1] if ("p", k) in paths else -1 for k in range(len(demand))])
    return d, src


@pytest.fixture(scope="module")
def grid_net() -> WalkNetwork:
    return walk_network(GRID, cache_dir=None)


def grid_osmid(row: int, col: int) -> int:
    return 1 + row * 5 + col


# --- exact answers on the grid --------------------------------------------------


def test_grid_corner_reaches_nodes_within_375_m(grid_net: WalkNetwork) -> None:
    centers = make_centers(grid_net, np.array([[GRID_E, GRID_N]]))
    assert centers[SNAP_DISTANCE_M].iloc[0] < 0.02
    limit_m = 5 * M_PER_MIN
    assert limit_m == pytest.approx(375.0)
    reach = iso.nearest_source_m(grid_net, *snap_args(centers), limit_m=limit_m)
    reached = {int(o) for o in grid_net.node_osmid[np.isfinite(reach.dist_m)]}
    expected = {
        grid_osmid(r, c) for r in range(5) for c in range(5) if r + c <= 3 and (r, c) != (0, 0)
    }
    assert reached == expected
    osmid_to_index = {int(o): i for i, o in enumerate(grid_net.node_osmid)}
    for r in range(5):
        for c in range(5):
            if grid_osmid(r, c) in expected:
                got = reach.dist_m[osmid_to_index[grid_osmid(r, c)]]
                assert got == pytest.approx(100.0 * (r + c), abs=0.05)
    assert (reach.source[np.isfinite(reach.dist_m)] == 0).all()
    assert (reach.source[~np.isfinite(reach.dist_m)] == -1).all()


def test_grid_access_and_same_edge(grid_net: WalkNetwork) -> None:
    # the office at (150, 130) joins the street at (150, 100), 30 m away
    centers = make_centers(grid_net, np.array([[GRID_E + 150, GRID_N + 130]]))
    assert centers[SNAP_DISTANCE_M].iloc[0] == pytest.approx(30.0, abs=0.05)
    pts = gpd.GeoDataFrame(
        geometry=shapely.points([[GRID_E + 170, GRID_N + 90], [GRID_E + 300, GRID_N + 210]]),
        crs=grid_net.crs,
    )
    pts = snap_frame(grid_net, pts)
    # same edge: 30 + 20 + 10; via the network: 30 + 50 + 100 + 100 + 10 (or 30 + 50 + 100 + ...)
    minutes = iso.minutes_to_nearest(grid_net, centers, pts, speed_kmh=SPEED)
    dist = minutes["minutes_to_nearest"].to_numpy() * M_PER_MIN
    assert dist[0] == pytest.approx(60.0, abs=0.05)
    assert dist[1] == pytest.approx(30.0 + 50.0 + 100.0 + 100.0 + 10.0, abs=0.05)
    assert list(minutes["nearest_center_id"]) == ["c0", "c0"]


def test_grid_limit_and_unreached(grid_net: WalkNetwork) -> None:
    centers = make_centers(grid_net, np.array([[GRID_E, GRID_N]]))
    pts = snap_frame(
        grid_net,
        gpd.GeoDataFrame(
            geometry=shapely.points([[GRID_E + 10, GRID_N + 5], [GRID_E + 400, GRID_N + 400]]),
            crs=grid_net.crs,
        ),
    )
    out = iso.minutes_to_nearest(grid_net, centers, pts, speed_kmh=SPEED, limit_min=5)
    assert out["minutes_to_nearest"].iloc[0] == pytest.approx(15.0 / M_PER_MIN, abs=1e-3)
    assert np.isnan(out["minutes_to_nearest"].iloc[1])
    assert out["nearest_center_id"].iloc[1] is None


def test_grid_polygon_follows_streets_and_keeps_block_holes(grid_net: WalkNetwork) -> None:
    centers = make_centers(grid_net, np.array([[GRID_E + 200, GRID_N + 200]]))
    areas = iso.service_areas(grid_net, centers, minutes=(5, 15), speed_kmh=SPEED)
    all15 = areas[(areas.center_id == "all") & (areas.minutes == 15)].geometry.iloc[0]
    # a street point is in, a block interior 50 m from every street is out
    assert all15.contains(shapely.Point(GRID_E + 150, GRID_N + 110))
    assert not all15.intersects(shapely.Point(GRID_E + 150, GRID_N + 150))
    assert len(all15.interiors if all15.geom_type == "Polygon" else []) >= 4
    # partly reached edge: 5 min = 375 m from (200, 200) reaches 175 m into (0,2)-(0,1)... e.g.
    # along row 2 westwards: node (2,0) at 200 m, then north (3,0) at 300 m, then 75 m onwards.
    all5 = areas[(areas.center_id == "all") & (areas.minutes == 5)].geometry.iloc[0]
    assert all5.contains(shapely.Point(GRID_E + 0, GRID_N + 370))
    assert not all5.intersects(shapely.Point(GRID_E + 0, GRID_N + 400 + 30))


def test_filling_slivers(grid_net: WalkNetwork) -> None:
    centers = make_centers(grid_net, np.array([[GRID_E + 200, GRID_N + 200]]))
    kw: dict[str, Any] = {"minutes": (15,), "speed_kmh": SPEED, "per_center": False}
    keep = iso.service_areas(grid_net, centers, min_hole_area_m2=100.0, **kw).geometry.iloc[0]
    fill = iso.service_areas(grid_net, centers, min_hole_area_m2=3000.0, **kw).geometry.iloc[0]
    assert len(keep.interiors) > 0
    assert len(fill.interiors) == 0
    assert fill.area > keep.area


# --- independent check on the real extracts -------------------------------------


@pytest.mark.parametrize("city", ["haidian", "chengdu"])
def test_minutes_agree_with_networkx(city: str, request: pytest.FixtureRequest) -> None:
    net = request.getfixturevalue(f"{city}_net")
    extract = request.getfixturevalue(f"{city}_extract")
    demand = demand_from_extract(net, extract)
    centers = pd.concat(
        [centers_from_extract(net, extract), node_centers(net, 5, seed=1)], ignore_index=True
    )
    centers["center_id"] = [f"c{i}" for i in range(len(centers))]
    got = iso.minutes_to_nearest(net, centers, demand, speed_kmh=SPEED)
    ref_m, ref_src = nx_reference_m(net, centers, demand)
    ref_min = ref_m / M_PER_MIN
    assert len(demand) > 20
    np.testing.assert_allclose(got["minutes_to_nearest"].to_numpy(), ref_min, atol=0.1)
    np.testing.assert_allclose(got["minutes_to_nearest"].to_numpy(), ref_min, atol=1e-6)
    for t in (5.0, 15.0):
        np.testing.assert_array_equal(got["minutes_to_nearest"].to_numpy() <= t, ref_min <= t)
    # nearest center agrees except on exact ties
    ids = centers["center_id"].to_numpy()
    same = got["nearest_center_id"].to_numpy() == ids[ref_src]
    assert same.mean() > 0.99


@pytest.mark.parametrize("city", ["haidian", "chengdu"])
def test_per_source_reach_matches_single_searches(
    city: str, request: pytest.FixtureRequest
) -> None:
    net = request.getfixturevalue(f"{city}_net")
    extract = request.getfixturevalue(f"{city}_extract")
    centers = node_centers(net, 6, seed=2)
    demand = demand_from_extract(net, extract)
    limit_m = 15 * M_PER_MIN
    se, so, sa = snap_args(centers)
    per = iso.reach_per_source_m(net, se, so, sa, limit_m=limit_m)
    s_idx, p_idx, d_m = iso.points_within_m(net, per, *snap_args(demand), se, so, sa)
    for j in range(len(centers)):
        single = iso.nearest_source_m(
            net, se[j : j + 1], so[j : j + 1], sa[j : j + 1], limit_m=limit_m
        )
        np.testing.assert_allclose(per.of(j, net.n_nodes).dist_m, single.dist_m, atol=1e-6)
        d, _ = iso.points_reach_m(
            net, single, *snap_args(demand), se[j : j + 1], so[j : j + 1], sa[j : j + 1]
        )
        mine = np.full(len(demand), np.inf)
        mine[p_idx[s_idx == j]] = d_m[s_idx == j]
        np.testing.assert_allclose(mine, d, atol=1e-6)


# --- invariants -----------------------------------------------------------------


def test_adding_a_center_never_lowers_and_closing_never_raises(
    chengdu_net: WalkNetwork, chengdu_extract: Any
) -> None:
    demand = demand_from_extract(chengdu_net, chengdu_extract)
    centers = node_centers(chengdu_net, 8, seed=3)
    base = iso.minutes_to_nearest(chengdu_net, centers, demand, speed_kmh=SPEED)
    more = iso.minutes_to_nearest(
        chengdu_net,
        pd.concat([centers, node_centers(chengdu_net, 1, seed=4)], ignore_index=True),
        demand,
        speed_kmh=SPEED,
    )
    fewer = iso.minutes_to_nearest(chengdu_net, centers.iloc[1:], demand, speed_kmh=SPEED)
    b = base["minutes_to_nearest"].fillna(np.inf).to_numpy()
    assert (more["minutes_to_nearest"].fillna(np.inf).to_numpy() <= b + 1e-9).all()
    assert (fewer["minutes_to_nearest"].fillna(np.inf).to_numpy() >= b - 1e-9).all()


def test_output_index_equals_input_index_and_inputs_untouched(
    haidian_net: WalkNetwork, haidian_extract: Any
) -> None:
    demand = demand_from_extract(haidian_net, haidian_extract)
    demand.index = demand.index * 10 + 7
    centers = node_centers(haidian_net, 3)
    before_d, before_c = demand.copy(), centers.copy()
    out = iso.minutes_to_nearest(haidian_net, centers, demand, speed_kmh=SPEED)
    assert out.index.equals(demand.index)
    pd.testing.assert_frame_equal(demand, before_d)
    pd.testing.assert_frame_equal(centers, before_c)


def test_polygons_nest_and_follow_streets(chengdu_net: WalkNetwork) -> None:
    centers = node_centers(chengdu_net, 4, seed=5)
    areas = iso.service_areas(chengdu_net, centers, minutes=(5, 15), speed_kmh=SPEED)
    assert set(areas.columns) == {"center_id", "minutes", "geometry"}
    assert len(areas) == 2 * (1 + len(centers))
    for cid in [*centers["center_id"], "all"]:
        a5 = areas[(areas.center_id == cid) & (areas.minutes == 5)].geometry.iloc[0]
        a15 = areas[(areas.center_id == cid) & (areas.minutes == 15)].geometry.iloc[0]
        assert a5.area > 0
        assert a5.difference(a15).area < 1.0  # m², numerical tolerance
    # union = union of the per-center areas (up to buffer noise)
    for t in (5, 15):
        union = areas[(areas.center_id == "all") & (areas.minutes == t)].geometry.iloc[0]
        parts = shapely.union_all(
            areas[(areas.center_id != "all") & (areas.minutes == t)].geometry.values
        )
        assert union.symmetric_difference(parts).area < 1e-3 * union.area
    # much smaller than the convex hull of the nodes each center reaches
    per = iso.reach_per_source_m(chengdu_net, *snap_args(centers), limit_m=15 * M_PER_MIN)
    ratios = []
    for j, cid in enumerate(centers["center_id"]):
        mine = np.isfinite(per.of(j, chengdu_net.n_nodes).dist_m)
        assert mine.sum() >= 20
        hull = shapely.multipoints(chengdu_net.node_xy[mine]).convex_hull
        own = areas[(areas.center_id == cid) & (areas.minutes == 15)].geometry.iloc[0]
        ratios.append(own.area / hull.area)
    assert max(ratios) < 0.8, ratios


def test_bands_do_not_overlap(chengdu_net: WalkNetwork) -> None:
    centers = node_centers(chengdu_net, 4, seed=6)
    areas = iso.service_areas(
        chengdu_net, centers, minutes=(5, 15), speed_kmh=SPEED, per_center=False
    )
    bands = iso.service_bands(areas)
    assert list(bands.columns) == ["minutes_from", "minutes_to", "geometry"]
    assert list(zip(bands.minutes_from, bands.minutes_to, strict=True)) == [(0.0, 5.0), (5.0, 15.0)]
    assert bands.geometry.iloc[0].intersection(bands.geometry.iloc[1]).area < 1.0
    total = shapely.union_all(bands.geometry.values).area
    assert total == pytest.approx(areas.geometry.iloc[1].area, rel=1e-6)


# --- errors ---------------------------------------------------------------------


def test_errors(grid_net: WalkNetwork) -> None:
    centers = make_centers(grid_net, np.array([[GRID_E, GRID_N]]))
    pts = centers.copy()
    with pytest.raises(InputError, match="snap"):
        iso.minutes_to_nearest(grid_net, centers.drop(columns=[SNAP_EDGE]), pts, speed_kmh=SPEED)
    with pytest.raises(InputError, match="to_crs"):
        iso.minutes_to_nearest(grid_net, centers.to_crs(4326), pts, speed_kmh=SPEED)
    with pytest.raises(InputError, match="speed"):
        iso.minutes_to_nearest(grid_net, centers, pts, speed_kmh=0)
    with pytest.raises(InputError, match="increasing"):
        iso.service_areas(grid_net, centers, minutes=(15, 5), speed_kmh=SPEED)
    with pytest.raises(InputError, match="positive"):
        iso.service_areas(grid_net, centers, minutes=(0, 5), speed_kmh=SPEED)
    with pytest.raises(InputError, match="corridor_m"):
        iso.service_areas(grid_net, centers, minutes=(5,), speed_kmh=SPEED, corridor_m=0)
    with pytest.raises(InputError, match="edge indices"):
        iso.nearest_source_m(grid_net, [10_000], [0.0], [0.0])


def test_no_sources_reach_nothing(grid_net: WalkNetwork) -> None:
    reach = iso.nearest_source_m(grid_net, np.empty(0, dtype=np.int64), [], [])
    assert np.isinf(reach.dist_m).all()
    assert (reach.source == -1).all()


def test_tiled_union_equals_plain_union(
    chengdu_net: WalkNetwork, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the city-scale path (tiles + coverage union) on a small city: same area up to 1 mm rounding
    centers = node_centers(chengdu_net, 6, seed=3)
    plain = iso.service_areas(
        chengdu_net, centers, minutes=(15,), speed_kmh=SPEED, per_center=False
    ).geometry.iloc[0]
    monkeypatch.setattr(iso, "_TILED_UNION_MIN", 0)
    monkeypatch.setattr(iso, "_TILE_M", 700.0)
    tiled = iso.service_areas(
        chengdu_net, centers, minutes=(15,), speed_kmh=SPEED, per_center=False
    ).geometry.iloc[0]
    assert tiled.is_valid
    assert tiled.symmetric_difference(plain).area < 1e-5 * plain.area
    assert shapely.get_num_geometries(tiled) == shapely.get_num_geometries(plain)


@pytest.mark.parametrize("min_hole_area_m2", [0.0, 1000.0, 20_000.0])
def test_tiled_areas_and_bands_equal_plain_ones(
    chengdu_net: WalkNetwork, monkeypatch: pytest.MonkeyPatch, min_hole_area_m2: float
) -> None:
    # small tiles so that many block holes cross seams; large holes filled or not
    centers = node_centers(chengdu_net, 6, seed=3)
    kw: dict[str, Any] = {
        "minutes": (5, 15),
        "speed_kmh": SPEED,
        "per_center": False,
        "min_hole_area_m2": min_hole_area_m2,
    }
    plain_areas = iso.service_areas(chengdu_net, centers, **kw)
    plain_bands = iso.service_bands(plain_areas)
    monkeypatch.setattr(iso, "_TILED_UNION_MIN", 0)
    monkeypatch.setattr(iso, "_TILE_M", 300.0)
    areas, bands = iso.service_areas_and_bands(chengdu_net, centers, **kw)
    assert list(bands.columns) == ["minutes_from", "minutes_to", "geometry"]
    assert list(zip(bands.minutes_from, bands.minutes_to, strict=True)) == [(0.0, 5.0), (5.0, 15.0)]
    for got, want, kind in [
        *zip(areas.geometry, plain_areas.geometry, ["area"] * 2, strict=True),
        *zip(bands.geometry, plain_bands.geometry, ["band"] * 2, strict=True),
    ]:
        assert got.is_valid
        assert got.symmetric_difference(want).area < 1e-5 * want.area
        # same parts and holes, up to numerical slivers; a band is a difference of two
        # areas whose shared edges are noded apart by micrometres: where a hole of the
        # larger area meets the smaller area, a band may keep a hairline between them
        parts, holes = _rings_over_1m2(got)
        want_parts, want_holes = _rings_over_1m2(want)
        assert parts == want_parts
        assert holes == want_holes if kind == "area" else abs(holes - want_holes) <= 2
    a5, a15 = areas.geometry
    assert a5.difference(a15).area < 1.0
    assert bands.geometry.iloc[0].intersection(bands.geometry.iloc[1]).area < 1.0
    assert shapely.union_all(bands.geometry.values).area == pytest.approx(a15.area, rel=1e-6)


def _rings_over_1m2(geom: Any) -> tuple[int, int]:
    """Parts and holes of at least 1 m²."""
    parts = shapely.get_parts(geom)
    parts = parts[shapely.area(parts) >= 1.0]
    rings = shapely.polygons(shapely.get_rings(parts))
    return int(parts.size), int((shapely.area(rings) >= 1.0).sum()) - int(parts.size)
