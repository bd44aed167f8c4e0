"""Tests for coverage.reach: exact answers on hand-made grids, and independent networkx
searches (sources, points and their access legs as extra edges) on random graphs and the
real extracts."""

from __future__ import annotations

import gc
import itertools
import math
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import GRID_E, GRID_N
from scipy import sparse

from coverage import reach
from coverage.errors import InputError
from coverage.network import WalkNetwork
from coverage.reach import Snapped
from coverage.snapping import SNAP_DISTANCE_M, SNAP_EDGE, SNAP_OFFSET_M, snap_frame

SPEED = 4.5
M_PER_MIN = SPEED / 3.6 * 60.0  # 75 m per minute
TOL_M = 1e-6


# --- helpers: contract-conforming centers and demand built here ------------------


def make_centers(
    net: WalkNetwork,
    xy: np.ndarray,
    ids: list[str] | None = None,
    *,
    levels: list[str | None] | None = None,
) -> Any:
    xy = np.atleast_2d(np.asarray(xy, dtype=float))
    gdf = gpd.GeoDataFrame(
        {
            "center_id": ids or [f"c{i}" for i in range(len(xy))],
            "name": None,
            "source": "file",
            "level": levels if levels is not None else [None] * len(xy),
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


def snapped(gdf: Any) -> Snapped:
    return Snapped(
        gdf[SNAP_EDGE].to_numpy(), gdf[SNAP_OFFSET_M].to_numpy(), gdf[SNAP_DISTANCE_M].to_numpy()
    )


def nx_graph(net: WalkNetwork, sources: Snapped, points: Snapped) -> nx.Graph:
    """The network as plain networkx, built from raw arrays, with every place as a node.

    Every edge is split at the snapped positions of the sources and points; source ``k`` is
    the node ``("s", k)`` and point ``k`` the node ``("p", k)``, each joined to its position on
    the edge by an extra edge as long as its access leg.
    """
    G = nx.Graph()
    G.add_nodes_from(range(net.n_nodes))
    stops: dict[int, list[tuple[float, Any]]] = {}
    for kind, places in (("s", sources), ("p", points)):
        for k, (e, off, acc) in enumerate(zip(*places, strict=True)):
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
    return G


def nx_nearest(
    G: nx.Graph, n_sources: int, n_points: int, n_nodes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Node distances, point distances and nearest source of each point, by networkx."""
    sources = {("s", k) for k in range(n_sources)}
    if not sources:
        return np.full(n_nodes, np.inf), np.full(n_points, np.inf), np.full(n_points, -1)
    dist, paths = nx.multi_source_dijkstra(G, sources, weight="weight")
    nodes = np.array([dist.get(i, np.inf) for i in range(n_nodes)])
    pts = np.array([dist.get(("p", k), np.inf) for k in range(n_points)])
    who = np.array([paths[("p", k)][0][1] if ("p", k) in paths else -1 for k in range(n_points)])
    return nodes, pts, who


def nx_single(
    G: nx.Graph, j: int, n_points: int, n_nodes: int, cutoff: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Node and point distances from source ``j`` alone, by networkx."""
    dist = nx.single_source_dijkstra_path_length(G, ("s", j), cutoff=cutoff, weight="weight")
    nodes = np.array([dist.get(i, np.inf) for i in range(n_nodes)])
    pts = np.array([dist.get(("p", k), np.inf) for k in range(n_points)])
    return nodes, pts


# --- random graphs -----------------------------------------------------------------


def random_net(seed: int, n: int = 60, extent_m: float = 1500.0) -> WalkNetwork:
    """A random street graph: nearest-neighbour links, some bent, parallel and looped edges.

    Lengths are geometry lengths (the network's contract); the graph may fall apart in
    several components, so some places are unreachable.
    """
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0.0, extent_m, (n, 2)) + np.array([440_000.0, 4_428_000.0])
    d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    np.fill_diagonal(d, np.inf)
    near = np.argsort(d, axis=1)[:, : rng.integers(1, 4)]
    pairs = {(min(i, j), max(i, j)) for i in range(n) for j in near[i]}
    # parallel edges (a detour beside an existing link) and self-loops
    extra = rng.choice(np.array(sorted(pairs)), size=4, replace=False)
    loops = rng.choice(n, size=2, replace=False)
    geoms: list[shapely.LineString] = []
    us: list[int] = []
    vs: list[int] = []

    def add(u: int, v: int, bend: float) -> None:
        a, b = xy[u], xy[v]
        if u == v:
            pts = [a, a + np.array([40.0, 0.0]), a + np.array([40.0, 40.0]), a]
        elif bend:
            mid = (a + b) / 2 + bend * np.array([-(b - a)[1], (b - a)[0]])
            pts = [a, mid, b]
        else:
            pts = [a, b]
        geoms.append(shapely.LineString(pts))
        us.append(u)
        vs.append(v)

    for i, j in sorted(pairs):
        add(int(i), int(j), float(rng.choice([0.0, 0.0, 0.3])))
    for i, j in extra:
        add(int(j), int(i), 0.6)  # drawn from v to u: direction must not matter
    for i in loops:
        add(int(i), int(i), 0.0)
    geometry = np.empty(len(geoms), dtype=object)
    geometry[:] = geoms
    return WalkNetwork(
        crs="EPSG:32650",
        node_osmid=np.arange(n, dtype=np.int64),
        node_x=xy[:, 0].copy(),
        node_y=xy[:, 1].copy(),
        edge_u=np.array(us, dtype=np.int64),
        edge_v=np.array(vs, dtype=np.int64),
        edge_length_m=shapely.length(geometry).astype(np.float64),
        edge_highway=np.full(len(geoms), "footway", dtype=object),
        edge_geometry=geometry,
    )


def random_places(
    net: WalkNetwork, k: int, rng: np.random.Generator, edges: np.ndarray | None = None
) -> Snapped:
    """``k`` places on random edges (or on ``edges``), some exactly at an edge end with no access leg."""
    e = rng.choice(net.n_edges, size=k) if edges is None else np.asarray(edges)
    off = rng.uniform(0.0, 1.0, e.size) * net.edge_length_m[e]
    acc = rng.uniform(0.0, 60.0, e.size)
    at_end = rng.random(e.size) < 0.15
    off[at_end] = np.where(rng.random(int(at_end.sum())) < 0.5, 0.0, net.edge_length_m[e][at_end])
    acc[at_end] = 0.0
    return Snapped(e.astype(np.int64), off, acc)


def random_case(seed: int) -> tuple[WalkNetwork, Snapped, Snapped]:
    net = random_net(seed)
    rng = np.random.default_rng(seed + 100)
    src = random_places(net, 12, rng)
    pts = random_places(net, 80, rng)
    # a third of the points share an edge with a source
    same = random_places(net, 30, rng, edges=rng.choice(src.edge, size=30))
    pts = Snapped(*(np.concatenate([a, b]) for a, b in zip(pts, same, strict=True)))
    return net, src, pts


@pytest.mark.parametrize("seed", range(6))
def test_nearest_equals_networkx_on_random_graphs(seed: int) -> None:
    net, src, pts = random_case(seed)
    G = nx_graph(net, src, pts)
    ref_nodes, ref_pts, _ = nx_nearest(G, src.size, pts.size, net.n_nodes)
    got = reach.nearest_source_m(net, src)
    np.testing.assert_allclose(got.dist_m, ref_nodes, atol=TOL_M)
    assert ((got.source >= 0) == np.isfinite(ref_nodes)).all()
    dist, who = reach.nearest_points_m(net, src, pts)
    np.testing.assert_allclose(dist, ref_pts, atol=TOL_M)
    assert ((who >= 0) == np.isfinite(ref_pts)).all()
    # the reported source is a nearest one (ties may go either way)
    for j in np.unique(who[who >= 0]):
        _, from_j = nx_single(G, int(j), pts.size, net.n_nodes)
        mine = who == j
        np.testing.assert_allclose(from_j[mine], ref_pts[mine], atol=TOL_M)
    # the node reach agrees with the nearest source's own distance too
    reached = np.flatnonzero(got.source >= 0)
    for j in np.unique(got.source[reached]):
        from_j, _ = nx_single(G, int(j), pts.size, net.n_nodes)
        mine = reached[got.source[reached] == j]
        np.testing.assert_allclose(from_j[mine], ref_nodes[mine], atol=TOL_M)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("limit_m", [0.0, 120.0, 400.0])
def test_bounded_equals_unbounded_within_the_limit(seed: int, limit_m: float) -> None:
    net, src, pts = random_case(seed)
    full = reach.nearest_source_m(net, src)
    bounded = reach.nearest_source_m(net, src, limit_m=limit_m)
    inside = full.dist_m <= limit_m
    np.testing.assert_array_equal(bounded.dist_m[inside], full.dist_m[inside])
    np.testing.assert_array_equal(bounded.source[inside], full.source[inside])
    assert np.isinf(bounded.dist_m[~inside]).all()
    assert (bounded.source[~inside] == -1).all()
    d_full, w_full = reach.nearest_points_m(net, src, pts)
    d_lim, w_lim = reach.nearest_points_m(net, src, pts, limit_m=limit_m)
    inside = d_full <= limit_m
    np.testing.assert_array_equal(d_lim[inside], d_full[inside])
    np.testing.assert_array_equal(w_lim[inside], w_full[inside])
    assert np.isinf(d_lim[~inside]).all()
    assert (w_lim[~inside] == -1).all()


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("per_tile", [1.0, 48.0, 10_000.0])
def test_per_source_reach_equals_single_source_runs(
    seed: int, per_tile: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    # per_tile moves the tile width from one cell to the widest: the answer must not move
    monkeypatch.setattr(reach, "_SOURCES_PER_TILE", per_tile)
    net, src, pts = random_case(seed)
    limit_m = 350.0  # a few cells across the 1.5 km graph
    G = nx_graph(net, src, pts)
    per = reach.reach_per_source_m(net, src, limit_m=limit_m)
    pairs = reach.pairs_within_m(net, src, pts, limit_m=limit_m)
    assert len(per) == src.size
    keys = pairs.source * pts.size + pairs.point
    assert np.unique(keys).size == keys.size  # each pair once
    for j in range(src.size):
        ref_nodes, ref_pts = nx_single(G, j, pts.size, net.n_nodes)
        # nodes: the bounded reach of j alone, as networkx and as a one-source search
        a, b = per.indptr[j], per.indptr[j + 1]
        assert (np.diff(per.node[a:b]) > 0).all()
        clear = np.abs(ref_nodes - limit_m) > TOL_M
        mine = per.of(j, net.n_nodes).dist_m
        np.testing.assert_array_equal(np.isfinite(mine)[clear], (ref_nodes <= limit_m)[clear])
        ok = np.isfinite(mine)
        np.testing.assert_allclose(mine[ok], ref_nodes[ok], atol=TOL_M)
        alone = reach.nearest_source_m(net, src.take([j]), limit_m=limit_m)
        np.testing.assert_allclose(mine, alone.dist_m, atol=TOL_M)
        # points: the pairs of j are the points within the limit of j
        got = np.full(pts.size, np.inf)
        got[pairs.point[pairs.source == j]] = pairs.dist_m[pairs.source == j]
        clear = np.abs(ref_pts - limit_m) > TOL_M
        np.testing.assert_array_equal(np.isfinite(got)[clear], (ref_pts <= limit_m)[clear])
        ok = np.isfinite(got)
        np.testing.assert_allclose(got[ok], ref_pts[ok], atol=TOL_M)
        one, _ = reach.nearest_points_m(net, src.take([j]), pts, limit_m=limit_m)
        np.testing.assert_allclose(got, one, atol=TOL_M)
    assert (pairs.dist_m <= limit_m).all()


def test_nearest_is_the_closest_pair(chengdu_net: WalkNetwork, chengdu_extract: Any) -> None:
    demand = snapped(demand_from_extract(chengdu_net, chengdu_extract))
    src = snapped(node_centers(chengdu_net, 40, seed=8))
    limit_m = 15 * M_PER_MIN
    pairs = reach.pairs_within_m(chengdu_net, src, demand, limit_m=limit_m)
    best = np.full(demand.size, np.inf)
    np.minimum.at(best, pairs.point, pairs.dist_m)
    dist, _ = reach.nearest_points_m(chengdu_net, src, demand, limit_m=limit_m)
    np.testing.assert_allclose(best, dist, rtol=0, atol=TOL_M)


# --- same edge: along the edge, or around through the network --------------------


@pytest.fixture(scope="module")
def loop_net() -> WalkNetwork:
    """Nodes 0 (0, 0), 1 (100, 0), 2 (200, 0); edge 0: 0–1 straight (100 m); edge 1: 0–1 bent
    north (0,0)→(0,450)→(100,450)→(100,0), 1,000 m; edge 2: 1–2 straight (100 m)."""
    lines = np.empty(3, dtype=object)
    lines[:] = [
        shapely.LineString([(0, 0), (100, 0)]),
        shapely.LineString([(0, 0), (0, 450), (100, 450), (100, 0)]),
        shapely.LineString([(100, 0), (200, 0)]),
    ]
    return WalkNetwork(
        crs="EPSG:32650",
        node_osmid=np.arange(3, dtype=np.int64),
        node_x=np.array([0.0, 100.0, 200.0]),
        node_y=np.zeros(3),
        edge_u=np.array([0, 0, 1], dtype=np.int64),
        edge_v=np.array([1, 1, 2], dtype=np.int64),
        edge_length_m=np.array([100.0, 1000.0, 100.0]),
        edge_highway=np.full(3, "footway", dtype=object),
        edge_geometry=lines,
    )


def one(edge: int, offset_m: float, access_m: float) -> Snapped:
    return Snapped(np.array([edge]), np.array([offset_m]), np.array([access_m]))


@pytest.mark.parametrize(
    ("src_off", "pt_off", "expected_m"),
    [
        (400.0, 450.0, 5 + 50 + 7),  # along the edge, point after the source
        (400.0, 350.0, 5 + 50 + 7),  # along the edge, point before the source
        (950.0, 50.0, 5 + 50 + 100 + 50 + 7),  # around: to node 1, edge 0, node 0, along
        (50.0, 950.0, 5 + 50 + 100 + 50 + 7),  # the same, the other way
        (400.0, 400.0, 5 + 0 + 7),  # at the same spot
    ],
)
def test_same_edge_both_orders(
    loop_net: WalkNetwork, src_off: float, pt_off: float, expected_m: float
) -> None:
    src, pt = one(1, src_off, 5.0), one(1, pt_off, 7.0)
    dist, who = reach.nearest_points_m(loop_net, src, pt)
    assert dist[0] == pytest.approx(expected_m, abs=1e-9)
    assert who[0] == 0
    pairs = reach.pairs_within_m(loop_net, src, pt, limit_m=1000.0)
    assert list(pairs.point) == [0]
    assert pairs.dist_m[0] == pytest.approx(expected_m, abs=1e-9)
    # just beyond the limit: no pair; at it exactly: the pair
    assert len(reach.pairs_within_m(loop_net, src, pt, limit_m=expected_m - 1e-6)) == 0
    assert len(reach.pairs_within_m(loop_net, src, pt, limit_m=expected_m)) == 1
    # the network never shortcuts the edge for points on another edge
    G = nx_graph(loop_net, src, pt)
    assert nx.shortest_path_length(G, ("s", 0), ("p", 0), weight="weight") == pytest.approx(
        expected_m
    )


def test_source_node_reach_on_the_loop(loop_net: WalkNetwork) -> None:
    src = one(1, 950.0, 5.0)
    near = reach.nearest_source_m(loop_net, src)
    np.testing.assert_allclose(near.dist_m, [155.0, 55.0, 155.0])
    per = reach.reach_per_source_m(loop_net, src, limit_m=100.0)
    np.testing.assert_allclose(per.of(0, 3).dist_m, [np.inf, 55.0, np.inf])
    assert reach.nearest_source_m(loop_net, src, limit_m=54.9).source.tolist() == [-1, -1, -1]


@pytest.mark.parametrize("order", [(300.0, 500.0), (500.0, 300.0)])
def test_equal_walks_go_to_the_lower_source(
    loop_net: WalkNetwork, order: tuple[float, float]
) -> None:
    src = Snapped(np.array([1, 1]), np.array(order), np.array([2.0, 2.0]))
    dist, who = reach.nearest_points_m(loop_net, src, one(1, 400.0, 1.0))
    assert dist[0] == pytest.approx(103.0)
    assert who[0] == 0


def test_zero_length_access_arcs_count(loop_net: WalkNetwork) -> None:
    # a source exactly at node 0 with no access leg: arcs of length 0 must not vanish
    src = one(0, 0.0, 0.0)
    near = reach.nearest_source_m(loop_net, src)
    np.testing.assert_allclose(near.dist_m, [0.0, 100.0, 200.0])
    per = reach.reach_per_source_m(loop_net, src, limit_m=100.0)
    np.testing.assert_allclose(per.of(0, 3).dist_m, [0.0, 100.0, np.inf])
    pairs = reach.pairs_within_m(loop_net, src, one(2, 0.0, 0.0), limit_m=100.0)
    assert pairs.dist_m.tolist() == [100.0]


# --- exact answers on the grid --------------------------------------------------


def grid_osmid(row: int, col: int) -> int:
    return 1 + row * 5 + col


def test_grid_corner_reaches_nodes_within_375_m(grid_net: WalkNetwork) -> None:
    centers = make_centers(grid_net, np.array([[GRID_E, GRID_N]]))
    assert centers[SNAP_DISTANCE_M].iloc[0] < 0.02
    limit_m = 5 * M_PER_MIN
    assert limit_m == pytest.approx(375.0)
    near = reach.nearest_source_m(grid_net, snapped(centers), limit_m=limit_m)
    reached = {int(o) for o in grid_net.node_osmid[np.isfinite(near.dist_m)]}
    expected = {
        grid_osmid(r, c) for r in range(5) for c in range(5) if r + c <= 3 and (r, c) != (0, 0)
    }
    assert reached == expected
    osmid_to_index = {int(o): i for i, o in enumerate(grid_net.node_osmid)}
    for r in range(5):
        for c in range(5):
            if grid_osmid(r, c) in expected:
                got = near.dist_m[osmid_to_index[grid_osmid(r, c)]]
                assert got == pytest.approx(100.0 * (r + c), abs=0.05)
    assert (near.source[np.isfinite(near.dist_m)] == 0).all()
    assert (near.source[~np.isfinite(near.dist_m)] == -1).all()
    # each source alone reaches the same nodes at the same distances
    per = reach.reach_per_source_m(grid_net, snapped(centers), limit_m=limit_m)
    np.testing.assert_allclose(per.of(0, grid_net.n_nodes).dist_m, near.dist_m, atol=TOL_M)


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
    minutes = reach.minutes_to_nearest(grid_net, centers, pts, speed_kmh=SPEED)
    dist = minutes["minutes_to_nearest"].to_numpy() * M_PER_MIN
    assert dist[0] == pytest.approx(60.0, abs=0.05)
    assert dist[1] == pytest.approx(30.0 + 50.0 + 100.0 + 100.0 + 10.0, abs=0.05)
    assert list(minutes["nearest_center_id"]) == ["c0", "c0"]
    pairs = reach.pairs_within_m(grid_net, snapped(centers), snapped(pts), limit_m=300.0)
    np.testing.assert_allclose(pairs.dist_m[np.argsort(pairs.point)], dist, atol=1e-9)


def test_grid_limit_and_unreached(grid_net: WalkNetwork) -> None:
    centers = make_centers(grid_net, np.array([[GRID_E, GRID_N]]))
    pts = snap_frame(
        grid_net,
        gpd.GeoDataFrame(
            geometry=shapely.points([[GRID_E + 10, GRID_N + 5], [GRID_E + 400, GRID_N + 400]]),
            crs=grid_net.crs,
        ),
    )
    out = reach.minutes_to_nearest(grid_net, centers, pts, speed_kmh=SPEED, limit_min=5)
    assert out["minutes_to_nearest"].iloc[0] == pytest.approx(15.0 / M_PER_MIN, abs=1e-3)
    assert np.isnan(out["minutes_to_nearest"].iloc[1])
    assert out["nearest_center_id"].iloc[1] is None


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
    got = reach.minutes_to_nearest(net, centers, demand, speed_kmh=SPEED)
    G = nx_graph(net, snapped(centers), snapped(demand))
    _, ref_m, ref_src = nx_nearest(G, len(centers), len(demand), net.n_nodes)
    ref_min = ref_m / M_PER_MIN
    assert len(demand) > 20
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
    src = snapped(node_centers(net, 6, seed=2))
    pts = snapped(demand_from_extract(net, extract))
    limit_m = 15 * M_PER_MIN
    per = reach.reach_per_source_m(net, src, limit_m=limit_m)
    pairs = reach.pairs_within_m(net, src, pts, limit_m=limit_m)
    for j in range(src.size):
        single = reach.nearest_source_m(net, src.take([j]), limit_m=limit_m)
        np.testing.assert_allclose(per.of(j, net.n_nodes).dist_m, single.dist_m, atol=1e-6)
        d, _ = reach.points_reach_m(net, single, pts, src.take([j]))
        mine = np.full(pts.size, np.inf)
        mine[pairs.point[pairs.source == j]] = pairs.dist_m[pairs.source == j]
        np.testing.assert_allclose(mine, d, atol=1e-6)


# --- invariants -----------------------------------------------------------------


def test_adding_a_center_never_lowers_and_closing_never_raises(
    chengdu_net: WalkNetwork, chengdu_extract: Any
) -> None:
    demand = demand_from_extract(chengdu_net, chengdu_extract)
    centers = node_centers(chengdu_net, 8, seed=3)
    base = reach.minutes_to_nearest(chengdu_net, centers, demand, speed_kmh=SPEED)
    more = reach.minutes_to_nearest(
        chengdu_net,
        pd.concat([centers, node_centers(chengdu_net, 1, seed=4)], ignore_index=True),
        demand,
        speed_kmh=SPEED,
    )
    fewer = reach.minutes_to_nearest(chengdu_net, centers.iloc[1:], demand, speed_kmh=SPEED)
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
    out = reach.minutes_to_nearest(haidian_net, centers, demand, speed_kmh=SPEED)
    assert out.index.equals(demand.index)
    assert list(out.columns) == ["minutes_to_nearest", "nearest_center_id"]
    pd.testing.assert_frame_equal(demand, before_d)
    pd.testing.assert_frame_equal(centers, before_c)


# --- contract, adjacency, cache ---------------------------------------------------


def test_require_snapped_and_errors(grid_net: WalkNetwork) -> None:
    centers = make_centers(grid_net, np.array([[GRID_E, GRID_N]]))
    got = reach.require_snapped(grid_net, centers, "centers")
    assert got.edge.dtype == np.int64
    assert got.offset_m.dtype == got.access_m.dtype == np.float64
    pts = centers.copy()
    with pytest.raises(InputError, match="lacks the snap columns"):
        reach.minutes_to_nearest(grid_net, centers.drop(columns=[SNAP_EDGE]), pts, speed_kmh=SPEED)
    with pytest.raises(InputError, match="to_crs"):
        reach.minutes_to_nearest(grid_net, centers.to_crs(4326), pts, speed_kmh=SPEED)
    with pytest.raises(InputError, match="GeoDataFrame"):
        reach.require_snapped(grid_net, pd.DataFrame(centers), "centers")
    with pytest.raises(InputError, match="speed"):
        reach.minutes_to_nearest(grid_net, centers, pts, speed_kmh=0)
    with pytest.raises(InputError, match="edge indices"):
        reach.nearest_source_m(grid_net, Snapped(np.array([10_000]), np.zeros(1), np.zeros(1)))
    with pytest.raises(InputError, match="edge indices"):
        reach.require_snapped(grid_net, centers.assign(snap_edge=-1), "centers")
    with pytest.raises(InputError, match="finite"):
        reach.nearest_source_m(grid_net, Snapped(np.array([0]), np.array([np.nan]), np.zeros(1)))
    with pytest.raises(InputError, match="equal length"):
        reach.nearest_source_m(grid_net, Snapped(np.array([0, 1]), np.zeros(1), np.zeros(1)))
    with pytest.raises(InputError, match="limit_m"):
        reach.reach_per_source_m(grid_net, got, limit_m=math.inf)
    with pytest.raises(InputError, match="limit_m"):
        reach.pairs_within_m(grid_net, got, got, limit_m=-1.0)


def test_no_sources_reach_nothing(grid_net: WalkNetwork) -> None:
    none = Snapped(np.empty(0, dtype=np.int64), np.empty(0), np.empty(0))
    near = reach.nearest_source_m(grid_net, none)
    assert np.isinf(near.dist_m).all()
    assert (near.source == -1).all()
    per = reach.reach_per_source_m(grid_net, none, limit_m=100.0)
    assert len(per) == 0
    pts = snapped(make_centers(grid_net, np.array([[GRID_E, GRID_N]])))
    assert len(reach.pairs_within_m(grid_net, none, pts, limit_m=100.0)) == 0
    assert len(reach.pairs_within_m(grid_net, pts, none, limit_m=100.0)) == 0
    dist, who = reach.nearest_points_m(grid_net, none, pts)
    assert np.isinf(dist).all()
    assert (who == -1).all()


def test_adjacency(grid_net: WalkNetwork, loop_net: WalkNetwork) -> None:
    A = reach.adjacency(grid_net)
    assert A.shape == (21, 21)
    assert (A != A.T).nnz == 0
    assert A.nnz == 2 * 36
    # 100 m links; 200 m where simplification removed a corner node
    np.testing.assert_allclose(np.where(A.data > 150, A.data - 100, A.data), 100.0, atol=0.05)
    assert A.sum() == pytest.approx(2 * grid_net.edge_length_m.sum())
    # parallel edges keep the shortest; self-loops are dropped
    L = reach.adjacency(loop_net).toarray()
    np.testing.assert_array_equal(L, [[0, 100, 0], [100, 0, 100], [0, 100, 0]])
    looped = random_net(3)
    B = reach.adjacency(looped)
    assert B.diagonal().sum() == 0
    G = nx.Graph()
    for u, v, w in zip(looped.edge_u, looped.edge_v, looped.edge_length_m, strict=True):
        if u != v and (not G.has_edge(u, v) or G[u][v]["weight"] > w):
            G.add_edge(int(u), int(v), weight=float(w))
    ref = nx.to_scipy_sparse_array(G, nodelist=range(looped.n_nodes), weight="weight")
    np.testing.assert_allclose(B.toarray(), ref.toarray())


def test_graph_cache_is_per_network_and_dies_with_it() -> None:
    net = random_net(4)
    assert reach._graph(net) is reach._graph(net)
    twin = random_net(4)
    assert reach._graph(twin) is not reach._graph(net)
    key = id(net)
    assert key in reach._GRAPHS
    del net
    gc.collect()
    assert key not in reach._GRAPHS


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("per_tile", [1.0, 48.0, 10_000.0])
def test_within_matrix_equals_pairs_and_networkx(
    seed: int, per_tile: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    # tiles of one cell (the smallest pieces the matrix is built from) to the widest
    monkeypatch.setattr(reach, "_SOURCES_PER_TILE", per_tile)
    net, src, pts = random_case(seed)
    limit_m = 350.0
    M = reach.within_matrix(net, src, pts, limit_m=limit_m)
    assert M.shape == (src.size, pts.size)
    assert M.dtype == bool
    assert M.indices.dtype == np.int32
    # canonical: column indices strictly increasing in every row
    rows = np.repeat(np.arange(src.size), np.diff(M.indptr))
    assert (np.diff(M.indices)[rows[1:] == rows[:-1]] > 0).all()
    # the pair arrays of pairs_within_m, as a matrix the way siting built it before
    pairs = reach.pairs_within_m(net, src, pts, limit_m=limit_m)
    ref = sparse.csr_array(
        (np.ones(len(pairs), dtype=bool), (pairs.source, pairs.point)), shape=M.shape
    )
    ref.sort_indices()
    np.testing.assert_array_equal(M.indptr, ref.indptr)
    np.testing.assert_array_equal(M.indices, ref.indices)
    assert M.data.all()
    # and networkx, one source at a time
    G = nx_graph(net, src, pts)
    for j in range(src.size):
        _, ref_pts = nx_single(G, j, pts.size, net.n_nodes)
        clear = np.abs(ref_pts - limit_m) > TOL_M
        row = M[[j]].toarray().ravel()
        np.testing.assert_array_equal(row[clear], (ref_pts <= limit_m)[clear])


def test_within_matrix_of_nothing(grid_net: WalkNetwork) -> None:
    centers = snapped(make_centers(grid_net, np.array([[GRID_E, GRID_N]])))
    none = Snapped(np.empty(0, dtype=np.int64), np.empty(0), np.empty(0))
    assert reach.within_matrix(grid_net, none, centers, limit_m=100.0).shape == (0, 1)
    empty = reach.within_matrix(grid_net, centers, none, limit_m=100.0)
    assert empty.shape == (1, 0)
    assert empty.dtype == bool
    far = snapped(make_centers(grid_net, np.array([[GRID_E + 400, GRID_N + 400]])))
    alone = reach.within_matrix(grid_net, centers, far, limit_m=10.0)
    assert alone.shape == (1, 1)
    assert alone.nnz == 0
    # 2.1 m away in a straight line, 3 m on foot: a tile with points near but none within
    near = snapped(make_centers(grid_net, np.array([[GRID_E + 1.5, GRID_N + 1.5]])))
    assert reach.within_matrix(grid_net, centers, near, limit_m=2.5).nnz == 0
    assert reach.within_matrix(grid_net, centers, near, limit_m=3.1).nnz == 1


def test_point_xy_of_many_places_is_kept_per_network(chengdu_net: WalkNetwork) -> None:
    """The app audits the same demand after every change: its snapped points' coordinates
    are interpolated once (read-only), and equal shapely's own interpolation."""
    net = chengdu_net
    rng = np.random.default_rng(5)
    n = 12_000  # above the memo's floor
    edge = rng.integers(0, net.n_edges, n)
    offset = rng.random(n) * net.edge_length_m[edge]
    x, y = reach.point_xy(net, edge, offset)
    lines = net.edge_geometry[edge]
    want = shapely.line_interpolate_point(lines, offset / net.edge_length_m[edge], normalized=True)
    np.testing.assert_allclose(x, shapely.get_x(want), atol=1e-6)
    np.testing.assert_allclose(y, shapely.get_y(want), atol=1e-6)
    again = reach.point_xy(net, edge.copy(), offset.copy())  # equal places, other arrays
    assert again[0] is x
    assert again[1] is y
    assert not x.flags.writeable
    assert not y.flags.writeable
    moved = offset.copy()
    moved[0] = moved[0] / 2
    other = reach.point_xy(net, edge, moved)
    assert other[0] is not x
    assert other[0][0] != x[0] or other[1][0] != y[0]
    np.testing.assert_array_equal(other[0][1:], x[1:])
    for k in range(6):  # never more than a few sets
        reach.point_xy(net, edge, offset + k * 1e-3)
    assert len(reach._graph(net)._places) <= 4
    few_x, _ = reach.point_xy(net, edge[:10], offset[:10])  # small sets: computed each time
    assert few_x.flags.writeable
    np.testing.assert_array_equal(few_x, x[:10])
