"""Tests for coverage.snapping: exact snaps on the hand-made grid, frames, refusals."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from test_network import CM, ORIGIN, local_xy

from coverage.errors import InputError
from coverage.network import WalkNetwork
from coverage.osm import OsmExtract
from coverage.snapping import SNAP_DISTANCE_M, SNAP_EDGE, SNAP_OFFSET_M, snap_frame, snap_points


def test_snap_points_exact_on_grid(grid_net: WalkNetwork) -> None:
    pts = np.array([[130.0, 190.0], [-10.0, 50.0], [200.0, 200.0], [250.0, 405.0]]) + ORIGIN
    snap = snap_points(grid_net, pts[:, 0], pts[:, 1])
    on = np.column_stack([snap.x, snap.y]) - ORIGIN
    np.testing.assert_allclose(on, [[130, 200], [0, 50], [200, 200], [250, 400]], atol=CM)
    np.testing.assert_allclose(snap.distance_m, [10.0, 10.0, 0.0, 5.0], atol=CM)
    # offset_m is measured along the edge from its u end, bends included.
    for i in range(len(snap)):
        e = snap.edge[i]
        geom = grid_net.edge_geometry[e]
        along = shapely.line_locate_point(geom, shapely.points(snap.x[i], snap.y[i]))
        assert snap.offset_m[i] == pytest.approx(along, abs=1e-6)
        assert 0 <= snap.offset_m[i] <= grid_net.edge_length_m[e]
    # The corner point lies on the 200 m L-shaped edge, 50 m from its (0, 100) end.
    bend = snap.edge[1]
    assert grid_net.edge_length_m[bend] == pytest.approx(200.0, abs=2 * CM)
    u_xy = local_xy(grid_net)[grid_net.edge_u[bend]]
    expected = 50.0 if np.allclose(u_xy, [0, 100], atol=CM) else 150.0
    assert snap.offset_m[1] == pytest.approx(expected, abs=CM)


def test_snap_the_grid_center(grid_extract: OsmExtract, grid_net: WalkNetwork) -> None:
    centers = grid_extract.center_features.to_crs(grid_net.crs)
    out = snap_frame(grid_net, centers)
    assert out.index.equals(centers.index)
    assert out[SNAP_DISTANCE_M].iloc[0] == pytest.approx(30.0, abs=CM)
    e = out[SNAP_EDGE].iloc[0]
    ends = local_xy(grid_net)[[grid_net.edge_u[e], grid_net.edge_v[e]]]
    assert np.allclose(np.sort(ends[:, 0]), [100, 200], atol=CM)
    assert np.allclose(ends[:, 1], 100, atol=CM)
    assert out[SNAP_OFFSET_M].iloc[0] == pytest.approx(50.0, abs=CM)
    assert SNAP_EDGE not in centers.columns  # input untouched


def test_snap_frame_polygons_and_index(grid_extract: OsmExtract, grid_net: WalkNetwork) -> None:
    res = grid_extract.residential.to_crs(grid_net.crs)
    res.index = [10, 20]
    out = snap_frame(grid_net, res)
    assert list(out.index) == [10, 20]
    assert (out[SNAP_DISTANCE_M] > 0).all()
    assert (out[SNAP_DISTANCE_M] < 60).all()


def test_snap_frame_refuses_wrong_crs(grid_extract: OsmExtract, grid_net: WalkNetwork) -> None:
    with pytest.raises(InputError, match="to_crs"):
        snap_frame(grid_net, grid_extract.center_features)
    with pytest.raises(InputError, match="GeoDataFrame"):
        snap_frame(grid_net, grid_extract.center_features.drop(columns="geometry"))


def test_snap_points_edge_cases(grid_net: WalkNetwork) -> None:
    empty = snap_points(grid_net, np.array([]), np.array([]))
    assert len(empty) == 0
    with pytest.raises(InputError, match="NaN"):
        snap_points(grid_net, np.array([np.nan]), np.array([0.0]))


def test_snapping_in_threads_gives_the_one_thread_answer(
    chengdu_net: WalkNetwork, monkeypatch: pytest.MonkeyPatch
) -> None:
    # above THREADED_MIN_ELEMENTS points the queries run in chunks: same edges, offsets, points
    from coverage import parallel

    rng = np.random.default_rng(11)
    x0, y0, x1, y1 = shapely.total_bounds(chengdu_net.edge_geometry)
    n = parallel.THREADED_MIN_ELEMENTS + 5_001
    x, y = rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)
    # points on nodes: every edge of the node is at distance 0 (ties)
    x[:50], y[:50] = chengdu_net.node_x[:50], chengdu_net.node_y[:50]
    monkeypatch.setenv(parallel.THREADS_ENV, "1")
    one = snap_points(chengdu_net, x, y)
    monkeypatch.setenv(parallel.THREADS_ENV, "3")
    three = snap_points(chengdu_net, x, y)
    for field in ("edge", "offset_m", "distance_m", "x", "y"):
        np.testing.assert_array_equal(getattr(three, field), getattr(one, field))
    # and each snap is the nearest edge: brute force on a sample
    for k in rng.choice(n, 40, replace=False):
        d = shapely.distance(chengdu_net.edge_geometry, shapely.Point(x[k], y[k]))
        assert three.distance_m[k] == pytest.approx(d.min(), abs=1e-9)
