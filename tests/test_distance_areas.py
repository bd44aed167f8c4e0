"""Distance-threshold service areas (``--distance-m``): built from the same search as the
minute areas, equal to an independent networkx computation and to the minute areas of
D / speed, reported in progress, and cached under their own key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pytest
import shapely
import shapely.ops
from conftest import GRID_E, GRID_N
from test_reach import M_PER_MIN, SPEED, make_centers
from test_standards import grid_demand

from coverage import audit as audit_mod
from coverage import isochrones as iso
from coverage.audit import AuditParams, audit
from coverage.network import WalkNetwork

CORRIDOR_M = 20.0
#: Two centers on grid nodes (access legs of zero length).
CENTER_XY = [(0.0, 0.0), (300.0, 200.0)]


def grid_case(net: WalkNetwork) -> tuple[Any, Any]:
    """Centers placed exactly on grid nodes, and a few demand points."""
    node_xy = np.column_stack([net.node_x, net.node_y])
    want = np.asarray(CENTER_XY) + np.array([GRID_E, GRID_N])
    nodes = [int(np.argmin(np.hypot(*(node_xy - p).T))) for p in want]
    centers = make_centers(net, node_xy[nodes])
    demand = grid_demand(net, [(150.0, 20.0), (40.0, 310.0), (260.0, 100.0)], [1.0, 2.0, 3.0])
    return centers, demand


def nx_area(net: WalkNetwork, sources: list[int], budget_m: float) -> shapely.Geometry:
    """The street area within ``budget_m`` of the source nodes, from networkx alone.

    Node distances: the ego graph of radius ``budget_m`` (by edge length) around a super
    source joined to every source by zero-length edges. Each edge is reached from each end
    as far as the budget left there allows; the reached lines are buffered and unioned.
    """
    g = nx.MultiGraph()
    for k, (u, v) in enumerate(zip(net.edge_u.tolist(), net.edge_v.tolist(), strict=True)):
        g.add_edge(u, v, key=k, length=float(net.edge_length_m[k]))
    for s in sources:
        g.add_edge("src", s, length=0.0)
    ego = nx.ego_graph(g, "src", radius=budget_m, distance="length")
    dist = nx.single_source_dijkstra_path_length(ego, "src", weight="length")
    lines = []
    for k, geom in enumerate(net.edge_geometry):
        length = float(net.edge_length_m[k])
        ra = max(0.0, min(length, budget_m - dist.get(int(net.edge_u[k]), np.inf)))
        rb = max(0.0, min(length, budget_m - dist.get(int(net.edge_v[k]), np.inf)))
        if ra + rb >= length:
            lines.append(geom)
            continue
        if ra > 0:
            lines.append(shapely.ops.substring(geom, 0.0, ra))
        if rb > 0:
            lines.append(shapely.ops.substring(geom, length - rb, length))
    if not lines:
        return shapely.Polygon()
    return shapely.union_all(
        shapely.buffer(np.asarray(lines, dtype=object), CORRIDOR_M, quad_segs=4)
    )


def center_nodes(net: WalkNetwork, centers: Any) -> list[int]:
    node_xy = np.column_stack([net.node_x, net.node_y])
    return [int(np.argmin(np.hypot(*(node_xy - np.array([p.x, p.y])).T))) for p in centers.geometry]


@pytest.mark.parametrize("meters", [(150.0, 250.0, 420.0), (300.0, 500.0, 1000.0)])
def test_distance_areas_equal_networkx(grid_net: WalkNetwork, meters: tuple[float, ...]) -> None:
    centers, demand = grid_case(grid_net)
    params = AuditParams(
        speed_kmh=SPEED,
        thresholds_min=(5.0,),
        thresholds_m=meters,
        corridor_m=CORRIDOR_M,
        min_hole_area_m2=0.0,
    )
    res = audit(grid_net, centers, demand, params, per_center_polygons=True)
    areas = res.distance_areas
    assert list(areas.columns) == ["center_id", "meters", "geometry"]
    nodes = center_nodes(grid_net, centers)
    expected_ids = ["all", *centers["center_id"]]
    assert sorted(set(areas["center_id"])) == sorted(expected_ids)
    for cid, srcs in [("all", nodes)] + [
        (c, [n]) for c, n in zip(centers["center_id"], nodes, strict=True)
    ]:
        for d in meters:
            got = areas[(areas.center_id == cid) & (areas.meters == d)].geometry.iloc[0]
            want = nx_area(grid_net, srcs, d)
            assert want.area > 0
            assert got.symmetric_difference(want).area < 1e-6 * want.area, (cid, d)


def test_distance_areas_equal_minute_areas_of_d_over_speed(grid_net: WalkNetwork) -> None:
    centers, demand = grid_case(grid_net)
    meters = (375.0, 750.0)  # 5 and 10 minutes at 4.5 km/h (75 m/min)
    by_m = audit(
        grid_net,
        centers,
        demand,
        AuditParams(speed_kmh=SPEED, thresholds_min=(2.0, 15.0), thresholds_m=meters),
        per_center_polygons=True,
    )
    by_min = audit(
        grid_net,
        centers,
        demand,
        AuditParams(speed_kmh=SPEED, thresholds_min=tuple(d / M_PER_MIN for d in meters)),
        per_center_polygons=True,
    )
    a, b = by_m.distance_areas, by_min.service_areas
    assert a["center_id"].tolist() == b["center_id"].tolist()
    assert (a["meters"] / M_PER_MIN).tolist() == b["minutes"].tolist()
    assert shapely.to_wkb(a.geometry.values).tolist() == shapely.to_wkb(b.geometry.values).tolist()
    bands_m, bands_min = by_m.distance_bands, by_min.bands
    assert (bands_m["meters_to"] / M_PER_MIN).tolist() == bands_min["minutes_to"].tolist()
    assert all(
        x.equals_exact(y, 0.0) for x, y in zip(bands_m.geometry, bands_min.geometry, strict=True)
    )


def test_one_search_for_minutes_and_distances(
    grid_net: WalkNetwork, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, float]] = []
    for name in ("nearest_source_m", "reach_per_source_m"):
        real = getattr(iso, name)

        def counted(*args: Any, _real: Any = real, _name: str = name, **kw: Any) -> Any:
            calls.append((_name, kw["limit_m"]))
            return _real(*args, **kw)

        monkeypatch.setattr(iso, name, counted)
    centers, demand = grid_case(grid_net)
    params = AuditParams(speed_kmh=SPEED, thresholds_min=(5.0, 10.0), thresholds_m=(300.0, 1000.0))
    audit(grid_net, centers, demand, params, per_center_polygons=True)
    assert sorted(calls) == [("nearest_source_m", 1000.0), ("reach_per_source_m", 1000.0)]


def test_progress_reports_distance_areas(grid_net: WalkNetwork) -> None:
    centers, demand = grid_case(grid_net)
    calls: list[tuple[float, str]] = []
    params = AuditParams(speed_kmh=SPEED, thresholds_min=(5.0,), thresholds_m=(300.0, 500.0))
    audit(
        grid_net,
        centers,
        demand,
        params,
        per_center_polygons=True,
        progress=lambda f, m: calls.append((f, m)),
    )
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1.0
    messages = [m for _, m in calls]
    n = len(centers)
    assert "distance service areas" in messages
    assert f"distance service areas {n}/{n}" in messages
    assert f"service areas {n}/{n}" in messages
    # the distance areas come after the minute areas, before "audit done"
    assert messages.index(f"service areas {n}/{n}") < messages.index("distance service areas")


def _frames(res: Any) -> list[bytes]:
    return [
        b"".join(shapely.to_wkb(np.asarray(f.geometry.values, dtype=object)))
        for f in (res.service_areas, res.bands, res.distance_areas, res.distance_bands)
    ]


def test_warm_run_reads_distance_areas_from_the_cache(
    grid_net: WalkNetwork, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    centers, demand = grid_case(grid_net)
    params = AuditParams(speed_kmh=SPEED, thresholds_min=(5.0,), thresholds_m=(375.0, 600.0))
    cold = audit(grid_net, centers, demand, params, polygon_cache_dir=tmp_path)
    names = sorted(p.name.split("-")[0] for p in tmp_path.iterdir())
    # the four polygon sets, and the uncovered areas (minutes and meters) next to them
    assert names == [
        "areas",
        "bands",
        "distance_areas",
        "distance_bands",
        "uncovered",
        "uncovered_m",
    ]
    polygons = [p for p in tmp_path.iterdir() if not p.name.startswith("uncovered")]
    # 375 m is 5 minutes at this speed: the two sets still have their own files
    assert len({p.name.split("-", 1)[1] for p in polygons}) == 2

    built: list[list[str]] = []
    real = audit_mod.area_sets_and_bands

    def recorded(net: Any, c: Any, specs: Any, **kw: Any) -> Any:
        built.append([s.columns[0] for s in specs])
        return real(net, c, specs, **kw)

    monkeypatch.setattr(audit_mod, "area_sets_and_bands", recorded)
    warm = audit(grid_net, centers, demand, params, polygon_cache_dir=tmp_path)
    assert built == []  # nothing rebuilt: both sets read from the cache
    assert _frames(warm) == _frames(cold)
    for a, b in [
        (warm.distance_areas, cold.distance_areas),
        (warm.distance_bands, cold.distance_bands),
    ]:
        assert a.drop(columns="geometry").equals(b.drop(columns="geometry"))

    # a changed speed rebuilds the minute areas only: a distance does not depend on it
    slower = AuditParams(speed_kmh=3.0, thresholds_min=(5.0,), thresholds_m=(375.0, 600.0))
    res = audit(grid_net, centers, demand, slower, polygon_cache_dir=tmp_path)
    assert built == [["minutes"]]
    fresh = audit(grid_net, centers, demand, slower)
    assert _frames(res) == _frames(fresh)
    assert _frames(res)[0] != _frames(cold)[0]  # the minute areas did change

    # changed distances rebuild the distance areas only
    built.clear()
    other = AuditParams(speed_kmh=SPEED, thresholds_min=(5.0,), thresholds_m=(300.0,))
    res = audit(grid_net, centers, demand, other, polygon_cache_dir=tmp_path)
    assert built == [["meters"]]
    assert _frames(res) == _frames(audit(grid_net, centers, demand, other))
