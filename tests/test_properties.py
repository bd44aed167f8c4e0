"""Property-based invariants (hypothesis) on small random networks and instances in memory.

Deterministic (``derandomize=True``) with modest example counts, so the file runs in
seconds and never flakes.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import sparse

from coverage.fileio import strip_controls
from coverage.network import WalkNetwork
from coverage.snapping import snap_frame

CRS = "EPSG:32650"
X0, Y0 = 440_000.0, 4_428_000.0  # near Beijing in UTM 50N

FAST = settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def grid_network(nx_: int, ny: int, spacing_m: float, drop: list[bool]) -> WalkNetwork:
    """A grid of ``nx_ x ny`` nodes; ``drop`` removes some edges (the grid stays a graph)."""
    xs, ys = np.meshgrid(np.arange(nx_) * spacing_m + X0, np.arange(ny) * spacing_m + Y0)
    node_x, node_y = xs.ravel(), ys.ravel()
    idx = np.arange(nx_ * ny).reshape(ny, nx_)
    pairs = [(idx[j, i], idx[j, i + 1]) for j in range(ny) for i in range(nx_ - 1)]
    pairs += [(idx[j, i], idx[j + 1, i]) for j in range(ny - 1) for i in range(nx_)]
    keep = [p for k, p in enumerate(pairs) if not (drop[k % len(drop)] and k % 3 == 0)] or pairs
    u = np.array([a for a, _ in keep], dtype=np.int64)
    v = np.array([b for _, b in keep], dtype=np.int64)
    geoms = np.empty(u.size, dtype=object)
    geoms[:] = [
        shapely.LineString([(node_x[a], node_y[a]), (node_x[b], node_y[b])])
        for a, b in zip(u, v, strict=True)
    ]
    return WalkNetwork(
        crs=CRS,
        node_osmid=np.arange(node_x.size, dtype=np.int64) + 1,
        node_x=node_x.astype(np.float64),
        node_y=node_y.astype(np.float64),
        edge_u=u,
        edge_v=v,
        edge_length_m=shapely.length(geoms).astype(np.float64),
        edge_highway=np.array(["footway"] * u.size, dtype=object),
        edge_geometry=geoms,
    )


def centers_frame(net: WalkNetwork, xy: list[tuple[float, float]]) -> gpd.GeoDataFrame:
    gdf = gpd.GeoDataFrame(
        {
            "center_id": [f"c{i}" for i in range(len(xy))],
            "name": [f"center {i}" for i in range(len(xy))],
            "source": ["file"] * len(xy),
            "level": [None] * len(xy),
        },
        geometry=shapely.points(np.array(xy, dtype=np.float64).reshape(-1, 2)),
        crs=net.crs,
    )
    return snap_frame(net, gdf)


def demand_frame(
    net: WalkNetwork, xy: list[tuple[float, float]], pop: list[float]
) -> gpd.GeoDataFrame:
    gdf = gpd.GeoDataFrame(
        {
            "demand_id": [f"d{i}" for i in range(len(xy))],
            "population": np.asarray(pop, dtype=np.float64),
            "kind": ["file"] * len(xy),
            "name": [None] * len(xy),
        },
        geometry=shapely.points(np.array(xy, dtype=np.float64).reshape(-1, 2)),
        crs=net.crs,
    )
    return snap_frame(net, gdf)


@st.composite
def instances(draw: Any) -> dict[str, Any]:
    nx_ = draw(st.integers(2, 6))
    ny = draw(st.integers(2, 6))
    spacing = draw(st.sampled_from([60.0, 100.0, 150.0]))
    drop = draw(st.lists(st.booleans(), min_size=1, max_size=8))
    net = grid_network(nx_, ny, spacing, drop)
    w, h = (nx_ - 1) * spacing, (ny - 1) * spacing
    pt = st.tuples(st.floats(X0 - 50, X0 + w + 50), st.floats(Y0 - 50, Y0 + h + 50))
    centers = draw(st.lists(pt, min_size=1, max_size=4))
    extra = draw(st.lists(pt, min_size=1, max_size=3))
    demand = draw(st.lists(pt, min_size=1, max_size=15))
    pop = draw(st.lists(st.floats(0.0, 1000.0), min_size=len(demand), max_size=len(demand)))
    pop[0] = max(pop[0], 1.0)  # a population of 0 is refused with a (documented) warning
    return {"net": net, "centers": centers, "extra": extra, "demand": demand, "pop": pop}


def run_audit(
    inst: dict[str, Any], centers: list[tuple[float, float]], thresholds: tuple[float, ...]
) -> Any:
    from coverage.audit import AuditParams, audit

    net = inst["net"]
    return audit(
        net,
        centers_frame(net, centers),
        demand_frame(net, inst["demand"], inst["pop"]),
        AuditParams(thresholds_min=thresholds),
        with_polygons=False,
    )


@FAST
@given(inst=instances())
def test_adding_centers_never_lowers_coverage(inst: dict[str, Any]) -> None:
    before = run_audit(inst, inst["centers"], (2.0, 5.0))
    after = run_audit(inst, inst["centers"] + inst["extra"], (2.0, 5.0))
    for key, stats in before.coverage.items():
        assert after.coverage[key].population_covered >= stats.population_covered - 1e-6
        assert after.coverage[key].units_covered >= stats.units_covered
    m0 = before.demand["minutes_to_nearest"].fillna(np.inf).to_numpy()
    m1 = after.demand["minutes_to_nearest"].fillna(np.inf).to_numpy()
    assert (m1 <= m0 + 1e-9).all()


@FAST
@given(inst=instances(), t=st.lists(st.floats(0.5, 30.0), min_size=2, max_size=4, unique=True))
def test_coverage_monotone_in_thresholds_and_population_conserved(
    inst: dict[str, Any], t: list[float]
) -> None:
    ts = tuple(sorted(round(x, 3) for x in t))
    if len(set(ts)) < len(ts):
        return
    res = run_audit(inst, inst["centers"], ts)
    total = float(np.sum(inst["pop"]))
    assert res.population_total == pytest.approx(total, rel=1e-9, abs=1e-6)
    covered = [res.coverage[k].population_covered for k in res.coverage]
    assert all(b >= a - 1e-6 for a, b in itertools.pairwise(covered))
    for key, stats in res.coverage.items():
        col = [c for c in res.demand.columns if c.startswith("covered_") and c.endswith(key)]
        assert col, (key, list(res.demand.columns))
        mask = res.demand[col[0]].to_numpy(dtype=bool)
        pop = res.demand["population"].to_numpy()
        uncovered = float(pop[~mask].sum())
        assert stats.population_covered + uncovered == pytest.approx(total, rel=1e-9, abs=1e-6)
        assert 0.0 <= stats.share <= 1.0 + 1e-12


@st.composite
def cover_matrices(draw: Any) -> tuple[sparse.csr_array, np.ndarray, np.ndarray, int]:
    n_c = draw(st.integers(1, 12))
    n_d = draw(st.integers(1, 20))
    bits = draw(st.lists(st.booleans(), min_size=n_c * n_d, max_size=n_c * n_d))
    w = np.array(draw(st.lists(st.floats(0.0, 500.0), min_size=n_d, max_size=n_d)))
    c0 = np.array(draw(st.lists(st.booleans(), min_size=n_d, max_size=n_d)))
    k = draw(st.integers(1, n_c))
    return sparse.csr_array(np.array(bits).reshape(n_c, n_d)), w, c0, k


@FAST
@given(case=cover_matrices())
def test_greedy_at_least_best_single_candidate(case: tuple[Any, ...]) -> None:
    from coverage.optimize import covered_population, greedy_max_coverage

    C, w, c0, k = case
    res = greedy_max_coverage(C, w, covered0=c0, k=k)
    best_single = max(covered_population(C, w, [c], covered0=c0) for c in range(C.shape[0]))
    assert res.population_after >= best_single - 1e-6
    assert res.population_after <= float(w.sum()) + 1e-6
    assert np.all(np.diff(res.cumulative_population) >= -1e-9)


@FAST
@given(case=cover_matrices())
def test_greedy_within_bound(case: tuple[Any, ...]) -> None:
    from coverage.optimize import greedy_max_coverage, upper_bound

    C, w, c0, k = case
    res = greedy_max_coverage(C, w, covered0=c0, k=k)
    bound = upper_bound(C, w, res.chosen, covered0=c0, k=k, lp=False)
    assert bound.population >= res.population_after - 1e-6


# --- GeoJSON round trip -------------------------------------------------------------------

names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=12,
)


@st.composite
def frames(draw: Any) -> gpd.GeoDataFrame:
    n = draw(st.integers(1, 6))
    kind = draw(st.sampled_from(["point", "polygon"]))
    lon = draw(st.lists(st.floats(115.5, 117.5), min_size=n, max_size=n))
    lat = draw(st.lists(st.floats(39.5, 40.5), min_size=n, max_size=n))
    if kind == "point":
        geoms = shapely.points(lon, lat)
    else:
        size = draw(st.floats(1e-4, 1e-2))
        geoms = [shapely.box(x, y, x + size, y + size) for x, y in zip(lon, lat, strict=True)]
    return gpd.GeoDataFrame(
        {
            "name": draw(st.lists(names, min_size=n, max_size=n)),
            "population": draw(st.lists(st.floats(0, 1e6), min_size=n, max_size=n)),
            "covered_5": draw(st.lists(st.booleans(), min_size=n, max_size=n)),
            "rank": list(range(1, n + 1)),
        },
        geometry=geoms,
        crs="EPSG:4326",
    )


def _geometry_close(a: Any, b: Any) -> bool:
    ca, cb = shapely.get_coordinates(a), shapely.get_coordinates(b)
    if ca.shape == cb.shape and np.allclose(ca, cb, atol=1e-7, rtol=0):
        return True
    return bool(shapely.equals_exact(shapely.normalize(a), shapely.normalize(b), tolerance=1e-7))


@FAST
@given(gdf=frames(), projected=st.booleans())
def test_geojson_round_trip(gdf: gpd.GeoDataFrame, projected: bool) -> None:
    from coverage.export import geojson_bytes
    from coverage.userfiles import read_features

    src = gdf.to_crs(CRS) if projected else gdf
    data = geojson_bytes(src)
    doc = json.loads(data.decode("utf-8"))
    assert doc["type"] == "FeatureCollection"
    back = read_features(data, filename="layer.geojson")
    assert back.crs.to_epsg() == 4326
    assert len(back) == len(gdf)
    for a, b in zip(gdf.geometry.values, back.geometry.values, strict=True):
        assert _geometry_close(a, b), (a.wkt, b.wkt)
    props = [f["properties"] for f in doc["features"]]
    # names are written without control characters (output injection, issue 17)
    assert [p["name"] for p in props] == [strip_controls(n) for n in gdf["name"]]
    assert [p["rank"] for p in props] == gdf["rank"].tolist()
    assert [p["covered_5"] for p in props] == gdf["covered_5"].tolist()
    assert np.allclose([p["population"] for p in props], gdf["population"], rtol=1e-12, atol=1e-9)


@FAST
@given(gdf=frames())
def test_geopandas_to_json_round_trip(gdf: gpd.GeoDataFrame) -> None:
    from coverage.userfiles import read_features

    back = read_features(gdf.to_json().encode(), filename="layer.geojson")
    assert back["name"].fillna("").tolist() == [strip_controls(n) for n in gdf["name"]]
    for a, b in zip(gdf.geometry.values, back.geometry.values, strict=True):
        assert _geometry_close(a, b)
