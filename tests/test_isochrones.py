"""Tests for coverage.isochrones: polygons on the grid, invariants on the real extracts,
tiled unions against plain ones. The searches they are built from are tested in test_reach."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import shapely
from conftest import GRID_E, GRID_N
from test_reach import M_PER_MIN, SPEED, make_centers, node_centers, snapped

from coverage import isochrones as iso
from coverage.errors import InputError
from coverage.network import WalkNetwork
from coverage.reach import nearest_source_m, reach_per_source_m
from coverage.snapping import SNAP_EDGE

# --- exact answers on the grid --------------------------------------------------


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


# --- invariants -----------------------------------------------------------------


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
    per = reach_per_source_m(chengdu_net, snapped(centers), limit_m=15 * M_PER_MIN)
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
    kw: dict[str, Any] = {"minutes": (5,), "speed_kmh": SPEED}
    with pytest.raises(InputError, match="snap"):
        iso.service_areas(grid_net, centers.drop(columns=[SNAP_EDGE]), **kw)
    with pytest.raises(InputError, match="to_crs"):
        iso.service_areas(grid_net, centers.to_crs(4326), **kw)
    with pytest.raises(InputError, match="speed"):
        iso.service_areas(grid_net, centers, minutes=(5,), speed_kmh=0)
    with pytest.raises(InputError, match="increasing"):
        iso.service_areas(grid_net, centers, minutes=(15, 5), speed_kmh=SPEED)
    with pytest.raises(InputError, match="positive"):
        iso.service_areas(grid_net, centers, minutes=(0, 5), speed_kmh=SPEED)
    with pytest.raises(InputError, match="corridor_m"):
        iso.service_areas(grid_net, centers, **kw, corridor_m=0)
    near = nearest_source_m(grid_net, snapped(centers), limit_m=100.0)
    with pytest.raises(InputError, match="search limit"):
        iso.reach_polygon(grid_net, near, 200.0, snapped(centers))
    with pytest.raises(InputError, match="corridor_m"):
        iso.reach_polygon(grid_net, near, 50.0, snapped(centers), corridor_m=-1.0)


def test_no_centers_give_empty_areas(grid_net: WalkNetwork) -> None:
    centers = make_centers(grid_net, np.array([[GRID_E, GRID_N]])).iloc[:0]
    areas, bands = iso.service_areas_and_bands(grid_net, centers, minutes=(5, 15), speed_kmh=SPEED)
    assert list(areas.center_id) == ["all", "all"]
    assert areas.geometry.is_empty.all()
    assert bands.geometry.is_empty.all()


def test_reach_polygon_is_the_corridor_of_the_reached_streets(grid_net: WalkNetwork) -> None:
    # from the corner, 150 m reach the two 100 m edges and 50 m beyond each end
    centers = make_centers(grid_net, np.array([[GRID_E, GRID_N]]))
    near = nearest_source_m(grid_net, snapped(centers), limit_m=150.0)
    area = iso.reach_polygon(grid_net, near, 150.0, snapped(centers), corridor_m=10.0)
    streets = shapely.union_all(
        [
            shapely.LineString([(GRID_E, GRID_N), (GRID_E + 150, GRID_N)]),
            shapely.LineString([(GRID_E, GRID_N), (GRID_E, GRID_N + 150)]),
            shapely.LineString([(GRID_E + 100, GRID_N), (GRID_E + 100, GRID_N + 50)]),
            shapely.LineString([(GRID_E, GRID_N + 100), (GRID_E + 50, GRID_N + 100)]),
        ]
    )
    expected = streets.buffer(10.0, quad_segs=4)
    assert area.symmetric_difference(expected).area < 0.01 * expected.area


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


# --- the tile memo (issue 16: a new station rebuilds only the tiles it changes) ----------


def _tiled_build(net: WalkNetwork, centers: Any) -> tuple[list[bytes], list[bytes]]:
    areas, bands = iso.service_areas_and_bands(
        net, centers, minutes=(5, 15), speed_kmh=SPEED, per_center=False
    )
    return shapely.to_wkb(areas.geometry.values).tolist(), shapely.to_wkb(
        bands.geometry.values
    ).tolist()


def test_a_new_station_reuses_the_tiles_it_leaves_alone_and_gives_a_fresh_builds_bytes(
    chengdu_net: WalkNetwork, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(iso, "_TILED_UNION_MIN", 0)
    monkeypatch.setattr(iso, "_TILE_M", 300.0)
    memo = iso.TileMemo()
    monkeypatch.setattr(iso, "TILE_MEMO", memo)
    six = node_centers(chengdu_net, 6, seed=3)
    xy = shapely.get_coordinates(six.geometry.values)
    one_more = [chengdu_net.node_x[0] + 7.0, chengdu_net.node_y[0] - 5.0]
    seven = make_centers(chengdu_net, np.vstack([xy, one_more]))  # the same six and one more
    _tiled_build(chengdu_net, six)
    built_first, hits_first = memo.misses, memo.hits  # a tile both areas fill alike: a hit
    assert built_first == len(memo) > 20
    reused = _tiled_build(chengdu_net, seven)
    new_tiles = memo.misses - built_first
    assert memo.hits > hits_first  # tiles the seventh station does not reach: not built again
    assert new_tiles < built_first
    memo.clear()
    fresh = _tiled_build(chengdu_net, seven)
    assert reused == fresh  # byte for byte: a hit is the geometry a build gives
    # the same scenario again: every tile from the memo
    misses = memo.misses
    assert _tiled_build(chengdu_net, seven) == fresh
    assert memo.misses == misses


def test_the_tile_memo_is_bounded_and_drops_the_least_recently_used() -> None:
    memo = iso.TileMemo(max_vertices=12)
    square = shapely.box(0, 0, 1, 1)  # 5 vertices
    memo.put(b"a", square)
    memo.put(b"b", square)
    assert (memo.vertices, len(memo)) == (10, 2)
    assert memo.get(b"a") == (True, square)  # "a" is now the most recent
    memo.put(b"c", square)  # 15 > 12: the least recently used ("b") goes
    assert memo.get(b"b") == (False, None)
    assert memo.get(b"a")[0]
    assert memo.get(b"c")[0]
    assert memo.vertices == 10 <= memo.max_vertices
    memo.put(b"none", None)  # an empty tile is remembered too, at no size
    assert memo.get(b"none") == (True, None)
    memo.put(b"big", shapely.buffer(shapely.Point(0, 0), 10))  # larger than the bound: not kept
    assert memo.get(b"big") == (False, None)
    assert memo.vertices <= memo.max_vertices
    memo.put(b"a", square)  # the same key again is counted once
    assert memo.vertices == 10
    memo.clear()
    assert (len(memo), memo.vertices, memo.hits, memo.misses) == (0, 0, 0, 0)
