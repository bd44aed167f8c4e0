"""Tests for coverage.network: exact answers on the grid, invariants on real extracts."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import osmium
import pyproj
import pytest
import shapely
from conftest import CHENGDU, GRID, HAIDIAN, TEST_DATA
from scipy.sparse.csgraph import connected_components
from test_osm import to_gz, to_pbf

from coverage.errors import InputError
from coverage.netcache import walk_network
from coverage.network import (
    DEFAULT_SPEED_KMH,
    WalkNetwork,
    network_from_graph,
    network_from_ways,
    raw_walk_graph,
    speed_ms,
    walk_graph,
)
from coverage.osm import WALK_EXCLUDED, OsmExtract, read_osm
from coverage.reach import adjacency

GRID_CLIPPED = TEST_DATA / "grid_clipped.osm"
# Grid origin in EPSG:32650 (see tests/data/make_grid.py).
ORIGIN = np.array([440_000.0, 4_428_000.0])
CM = 0.02  # OSM stores 1e-7 degrees, ~1 cm: tolerance for "exact" grid metres


def local_xy(net: WalkNetwork) -> np.ndarray:
    """Node positions in metres from the grid origin."""
    return net.node_xy - ORIGIN


def same_shape(a: WalkNetwork, b: WalkNetwork) -> None:
    """Equal networks up to node/edge order (e.g. from another file format)."""
    assert (a.n_nodes, a.n_edges, a.crs) == (b.n_nodes, b.n_edges, b.crs)
    assert a.length_km == pytest.approx(b.length_km, abs=1e-6)
    assert set(a.node_osmid.tolist()) == set(b.node_osmid.tolist())
    np.testing.assert_allclose(np.sort(a.edge_length_m), np.sort(b.edge_length_m), atol=1e-6)


# --- grid: exact answers ------------------------------------------------------


def test_grid_counts(grid_net: WalkNetwork) -> None:
    # 25 intersections minus 4 corners (two neighbours each, simplified away).
    assert grid_net.n_nodes == 21
    # 40 blocks, of which 8 merge pairwise at the corners.
    assert grid_net.n_edges == 36
    assert grid_net.length_km * 1000 == pytest.approx(4000.0, abs=0.1)
    assert grid_net.crs == "EPSG:32650"
    # Raw graph: 25 grid nodes + 3 island nodes; island simplifies to 2, dropped.
    assert grid_net.stats == {"raw_nodes": 28, "dropped_nodes": 2, "dropped_share": 2 / 23}


def test_grid_geometry_is_exact(grid_net: WalkNetwork) -> None:
    xy = local_xy(grid_net)
    expected = {(c * 100.0, r * 100.0) for r in range(5) for c in range(5)} - {
        (0.0, 0.0),
        (400.0, 0.0),
        (0.0, 400.0),
        (400.0, 400.0),
    }
    snapped = {(round(x / 100) * 100.0, round(y / 100) * 100.0) for x, y in xy}
    assert snapped == expected
    assert np.abs(xy - np.round(xy / 100) * 100).max() < CM
    lengths = np.sort(grid_net.edge_length_m)
    np.testing.assert_allclose(lengths[:32], 100.0, atol=CM)
    np.testing.assert_allclose(lengths[32:], 200.0, atol=2 * CM)
    np.testing.assert_allclose(
        grid_net.edge_length_m, shapely.length(grid_net.edge_geometry), rtol=1e-12
    )
    # Each geometry runs from its u node to its v node.
    starts = shapely.get_coordinates(shapely.get_point(grid_net.edge_geometry, 0))
    ends = shapely.get_coordinates(shapely.get_point(grid_net.edge_geometry, -1))
    np.testing.assert_allclose(starts, grid_net.node_xy[grid_net.edge_u], atol=1e-6)
    np.testing.assert_allclose(ends, grid_net.node_xy[grid_net.edge_v], atol=1e-6)


def test_grid_excluded_ways_leave_no_trace(grid_net: WalkNetwork) -> None:
    osmids = set(grid_net.node_osmid.tolist())
    assert osmids <= set(range(1, 26))
    assert {400, 401, 402, 403, 410, 411, 412, 300, 301, 302}.isdisjoint(osmids)
    assert set(grid_net.edge_highway) == {"footway", "residential", "footway;residential"}


def test_grid_clipped_network() -> None:
    net = walk_network(GRID_CLIPPED, cache_dir=None)
    # Node (0, 2) and its three 100 m blocks are gone; (0, 1) and (0, 3) become bends.
    assert (net.n_nodes, net.n_edges) == (18, 31)
    assert net.length_km * 1000 == pytest.approx(3700.0, abs=0.1)
    assert 3 not in net.node_osmid


def test_oneway_street_is_walkable_both_ways(grid_extract: OsmExtract) -> None:
    G = walk_graph(grid_extract)
    assert G.number_of_edges() == 72
    row2 = [(u, v) for u, v, d in G.edges(data=True) if d["osmid"] == 102]
    assert len(row2) == 8  # 4 blocks of the oneway=yes row, in both directions
    assert {(v, u) for u, v in row2} == set(row2)
    for _, _, d in G.edges(data=True):
        assert d["walk_time_s"] == pytest.approx(d["length_m"] / speed_ms(DEFAULT_SPEED_KMH))


def test_grid_formats_build_the_same_network(grid_net: WalkNetwork, tmp_path: Path) -> None:
    for path in (to_pbf(GRID, tmp_path / "grid.osm.pbf"), to_gz(GRID, tmp_path / "grid.osm.gz")):
        same_shape(walk_network(path, cache_dir=None), grid_net)


# --- speed and the networkx view ---------------------------------------------


@pytest.mark.parametrize("bad", [0.0, -1.0, 31.0, float("nan"), float("inf")])
def test_speed_ms_refuses_bad_speeds(bad: float) -> None:
    with pytest.raises(InputError, match="speed_kmh"):
        speed_ms(bad)


def test_speed_and_walk_time(grid_net: WalkNetwork) -> None:
    assert speed_ms(3.6) == 1.0
    np.testing.assert_allclose(grid_net.walk_time_s(3.6), grid_net.edge_length_m)


def test_adjacency_and_networkx(grid_net: WalkNetwork) -> None:
    A = adjacency(grid_net)
    assert A.shape == (21, 21)
    assert (A != A.T).nnz == 0
    assert A.nnz == 2 * 36
    G = grid_net.to_networkx()
    assert (G.number_of_nodes(), G.number_of_edges()) == (21, 36)
    assert nx.is_connected(G)


def test_network_from_unprojected_graph_refused(grid_extract: OsmExtract) -> None:
    with pytest.raises(InputError, match="projected"):
        network_from_graph(raw_walk_graph(grid_extract))


# --- real extracts: invariants ------------------------------------------------


def test_haidian_counts(haidian_net: WalkNetwork) -> None:
    assert haidian_net.n_nodes == 376
    assert haidian_net.crs == "EPSG:32650"


def test_chengdu_counts(chengdu_net: WalkNetwork) -> None:
    # ~3,060 nodes; the extract keeps complete ways (not clipped to <bounds>).
    assert chengdu_net.n_nodes == pytest.approx(3060, abs=30)
    assert chengdu_net.n_edges == pytest.approx(4523, abs=50)
    assert chengdu_net.crs == "EPSG:32648"
    assert chengdu_net.stats["dropped_share"] < 0.1


@pytest.mark.parametrize("which", ["haidian", "chengdu"])
def test_real_network_invariants(which: str, request: pytest.FixtureRequest) -> None:
    net: WalkNetwork = request.getfixturevalue(f"{which}_net")
    crs = pyproj.CRS.from_user_input(net.crs)
    assert crs.is_projected
    assert crs.utm_zone is not None
    n_comp, _ = connected_components(adjacency(net), directed=False)
    assert n_comp == 1
    assert np.unique(np.concatenate([net.edge_u, net.edge_v])).size == net.n_nodes
    pattern = WALK_EXCLUDED["highway"]
    for hw in net.edge_highway:
        assert hw
        assert not any(pattern.search(part) for part in hw.split(";"))
    np.testing.assert_allclose(net.edge_length_m, shapely.length(net.edge_geometry), rtol=0.01)
    assert (net.edge_length_m > 0).all()
    assert len(net.source_sha256) == 64


@pytest.mark.parametrize("which", ["haidian", pytest.param("chengdu", marks=pytest.mark.slow)])
def test_lengths_match_haversine(which: str, request: pytest.FixtureRequest) -> None:
    ext: OsmExtract = request.getfixturevalue(f"{which}_extract")
    net: WalkNetwork = request.getfixturevalue(f"{which}_net")
    G = walk_graph(ext)
    # Per edge: projected length vs the great-circle length osmnx summed over raw ways.
    proj = np.array([d["length_m"] for _, _, d in G.edges(data=True)])
    hav = np.array([d["length"] for _, _, d in G.edges(data=True)])
    np.testing.assert_allclose(proj, hav, rtol=0.01)
    # In total: the network vs the raw ways of its component, both directions halved.
    raw = raw_walk_graph(ext)
    comp = nx.node_connected_component(raw.to_undirected(as_view=True), int(net.node_osmid[0]))
    raw_m = sum(d["length"] for _, _, d in raw.subgraph(comp).edges(data=True)) / 2
    assert net.length_km * 1000 == pytest.approx(raw_m, rel=0.01)


def test_chengdu_oneway_ways_are_walked_both_ways(chengdu_extract: OsmExtract) -> None:
    oneway: set[int] = set()
    for w in osmium.FileProcessor(str(chengdu_extract.path), osmium.osm.WAY).with_filter(
        osmium.filter.TagFilter(("oneway", "yes"))
    ):
        oneway.add(w.id)
    walkable_oneway = oneway & set(chengdu_extract.ways.way_id.tolist())
    assert len(walkable_oneway) > 100
    raw = raw_walk_graph(chengdu_extract)
    pairs = {(u, v) for u, v, d in raw.edges(data=True) if d["osmid"] in walkable_oneway}
    assert pairs
    assert {(v, u) for u, v in pairs} == pairs


def test_haidian_formats_build_the_same_network(haidian_net: WalkNetwork, tmp_path: Path) -> None:
    for path in (to_pbf(HAIDIAN, tmp_path / "h.osm.pbf"), to_gz(HAIDIAN, tmp_path / "h.osm.gz")):
        same_shape(walk_network(path, cache_dir=None), haidian_net)


# --- the array build equals the osmnx build ------------------------------------


@pytest.mark.parametrize("path", [GRID, GRID_CLIPPED, HAIDIAN, CHENGDU])
def test_array_build_equals_osmnx_build(path: Path) -> None:
    extract = read_osm(path)
    a = network_from_graph(walk_graph(extract))
    b = network_from_ways(extract)
    assert (a.n_nodes, a.n_edges, a.crs, a.stats) == (b.n_nodes, b.n_edges, b.crs, b.stats)
    np.testing.assert_array_equal(a.node_osmid, b.node_osmid)
    np.testing.assert_array_equal(a.node_x, b.node_x)
    np.testing.assert_array_equal(a.node_y, b.node_y)

    def edges(n: WalkNetwork) -> list[tuple[int, int, float, str]]:
        return sorted(
            (min(u, v), max(u, v), round(float(length), 6), str(h))
            for u, v, length, h in zip(
                n.edge_u.tolist(), n.edge_v.tolist(), n.edge_length_m, n.edge_highway, strict=True
            )
        )

    assert edges(a) == edges(b)
    starts = shapely.get_coordinates(shapely.get_point(b.edge_geometry, 0))
    np.testing.assert_allclose(starts, b.node_xy[b.edge_u], atol=1e-9)
