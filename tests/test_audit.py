"""Tests for coverage.audit: parameters, errors, bookkeeping identities and invariants."""

from __future__ import annotations

import pickle
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from test_reach import demand_from_extract, make_centers

from coverage import reach
from coverage.audit import AuditParams, AuditResult, audit
from coverage.errors import InputError, PlannerError
from coverage.network import WalkNetwork
from coverage.snapping import snap_frame

SPEED = 4.5
LEVELS = {"community": 5.0, "street": 15.0}


def node_centers(net: WalkNetwork, n: int, seed: int = 0) -> Any:
    rng = np.random.default_rng(seed)
    nodes = rng.choice(net.n_nodes, size=n, replace=False)
    levels = ["community" if i % 2 else "street" for i in range(n)]
    return make_centers(
        net, np.column_stack([net.node_x[nodes] + 6.0, net.node_y[nodes] + 4.0]), levels=levels
    )


@pytest.fixture(scope="module")
def chengdu_case(chengdu_net: WalkNetwork, chengdu_extract: Any) -> tuple[Any, Any, AuditResult]:
    centers = node_centers(chengdu_net, 12, seed=11)
    demand = demand_from_extract(chengdu_net, chengdu_extract)
    result = audit(
        chengdu_net, centers, demand, AuditParams(speed_kmh=SPEED, level_thresholds_min=LEVELS)
    )
    return centers, demand, result


# --- parameters -----------------------------------------------------------------


def test_params_defaults_and_normalisation() -> None:
    p = AuditParams(thresholds_min=[5, 15])  # type: ignore[arg-type]
    assert p.thresholds_min == (5.0, 15.0)
    assert p.speed_kmh == 4.5
    assert p.corridor_m == 25.0
    q = AuditParams(level_thresholds_min={"community": 5})
    assert q.level_thresholds_min is not None
    assert dict(q.level_thresholds_min) == {"community": 5.0}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"speed_kmh": 0}, "speed_kmh"),
        ({"speed_kmh": -1}, "speed_kmh"),
        ({"speed_kmh": 31}, "speed_kmh"),
        ({"thresholds_min": (15, 5)}, "increasing"),
        ({"thresholds_min": (5, 5)}, "increasing"),
        ({"thresholds_min": (0, 5)}, "positive"),
        ({"thresholds_min": (-5,)}, "positive"),
        ({"thresholds_min": ()}, "at least one"),
        ({"thresholds_min": (5, 121)}, "at most 120"),
        ({"corridor_m": 0}, "corridor_m"),
        ({"level_thresholds_min": {"community": 0}}, "community"),
        ({"level_thresholds_min": {"": 5}}, "keys"),
    ],
)
def test_params_validation(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(InputError, match=match):
        AuditParams(**kwargs)


def test_params_frozen() -> None:
    p = AuditParams()
    with pytest.raises(AttributeError):
        p.speed_kmh = 5.0  # type: ignore[misc]


# --- errors ---------------------------------------------------------------------


def test_no_centers_covers_nobody(haidian_net: WalkNetwork, haidian_extract: Any) -> None:
    """A district without any station is a real case: zero coverage, every resident uncovered."""
    demand = demand_from_extract(haidian_net, haidian_extract)
    centers = node_centers(haidian_net, 2)
    r = audit(haidian_net, centers.iloc[:0], demand, with_polygons=True)
    total = float(demand["population"].sum())
    assert r.population_total == pytest.approx(total)
    for t in (5, 15):
        assert r.coverage[str(t)].share == 0.0
        assert r.coverage[str(t)].population_covered == 0.0
        unc = r.uncovered[r.uncovered["minutes"] == t]
        assert unc["population"].sum() == pytest.approx(total)
    assert r.demand["minutes_to_nearest"].isna().all()
    assert r.demand["nearest_center_id"].isna().all()
    assert len(r.centers) == 0
    assert r.service_areas.geometry.is_empty.all()
    assert r.bands.geometry.is_empty.all()


def test_empty_demand_and_bad_frames(haidian_net: WalkNetwork, haidian_extract: Any) -> None:
    demand = demand_from_extract(haidian_net, haidian_extract)
    centers = node_centers(haidian_net, 2)
    with pytest.raises(InputError, match="`demand` is empty"):
        audit(haidian_net, centers, demand.iloc[:0])
    with pytest.raises(InputError, match="to_crs"):
        audit(haidian_net, centers.to_crs(4326), demand)
    with pytest.raises(InputError, match="population"):
        audit(haidian_net, centers, demand.drop(columns=["population"]))
    bad = demand.copy()
    bad.loc[bad.index[0], "population"] = -1.0
    with pytest.raises(InputError, match="population"):
        audit(haidian_net, centers, bad)
    dup = centers.copy()
    dup["center_id"] = "same"
    with pytest.raises(InputError, match="unique"):
        audit(haidian_net, dup, demand)


def test_all_centers_unreachable() -> None:
    # two disconnected streets: the center on one, the residents on the other
    lines = np.array(
        [shapely.LineString([(0, 0), (100, 0)]), shapely.LineString([(0, 500), (100, 500)])],
        dtype=object,
    )
    net = WalkNetwork(
        crs="EPSG:32650",
        node_osmid=np.arange(4, dtype=np.int64),
        node_x=np.array([0.0, 100.0, 0.0, 100.0]),
        node_y=np.array([0.0, 0.0, 500.0, 500.0]),
        edge_u=np.array([0, 2], dtype=np.int64),
        edge_v=np.array([1, 3], dtype=np.int64),
        edge_length_m=np.array([100.0, 100.0]),
        edge_highway=np.array(["footway", "footway"], dtype=object),
        edge_geometry=lines,
    )
    centers = make_centers(net, np.array([[50.0, 5.0]]))
    demand = snap_frame(
        net,
        gpd.GeoDataFrame(
            {"demand_id": ["d0"], "population": [10.0]},
            geometry=[shapely.Point(50, 505).buffer(3)],
            crs=net.crs,
        ),
    )
    with pytest.raises(InputError, match="can reach any"):
        audit(net, centers, demand)
    with pytest.raises(PlannerError):
        audit(net, centers, demand, with_polygons=False)


# --- bookkeeping ----------------------------------------------------------------


def test_result_contract(chengdu_case: tuple[Any, Any, AuditResult]) -> None:
    centers, demand, r = chengdu_case
    assert set(r.coverage) == {"5", "15"}
    for col in ("minutes_to_nearest", "nearest_center_id", "covered_5", "covered_15"):
        assert col in r.demand.columns
    for col in ("population_nearest", "population_within_5", "population_within_15"):
        assert col in r.centers.columns
    assert r.demand.index.equals(demand.index)
    assert r.centers.index.equals(centers.index)
    assert list(r.uncovered.columns) == ["minutes", "population", "area_m2", "geometry"]
    assert set(r.service_areas.columns) == {"center_id", "minutes", "geometry"}
    assert r.population_total == pytest.approx(demand["population"].sum())
    assert r.uncovered.crs == demand.crs
    assert r.demand["covered_15"].dtype == bool
    # results and params travel to Dask workers and Streamlit caches
    back = pickle.loads(pickle.dumps(r))
    assert back.coverage == r.coverage
    assert back.params == r.params


def test_covered_plus_uncovered_is_total(chengdu_case: tuple[Any, Any, AuditResult]) -> None:
    _, _, r = chengdu_case
    for key, stats in r.coverage.items():
        t = float(key)
        unc = r.uncovered[r.uncovered.minutes == t]
        assert stats.population_covered + unc.population.sum() == pytest.approx(r.population_total)
        assert stats.share == pytest.approx(stats.population_covered / r.population_total)
        assert stats.units_covered == int(r.demand[f"covered_{key}"].sum())
        # uncovered areas are residential land, not whole blocks around it
        covered_geoms = r.demand.loc[r.demand[f"covered_{key}"]].geometry
        if len(covered_geoms) and len(unc):
            overlap = shapely.union_all(unc.geometry.values).intersection(
                shapely.union_all(covered_geoms.values)
            )
            assert overlap.area < 1.0 or overlap.area < 0.01 * unc.area_m2.sum()
    assert r.coverage["5"].population_covered <= r.coverage["15"].population_covered


def test_per_center_statistics(
    chengdu_net: WalkNetwork, chengdu_case: tuple[Any, Any, AuditResult]
) -> None:
    centers, demand, r = chengdu_case
    c = r.centers
    assert c["population_nearest"].sum() == pytest.approx(r.coverage["15"].population_covered)
    assert (c["population_within_15"] >= c["population_nearest"] - 1e-6).all()
    assert (c["population_within_15"] >= c["population_within_5"] - 1e-9).all()
    for j in range(len(centers)):
        alone = reach.minutes_to_nearest(
            chengdu_net, centers.iloc[j : j + 1], demand, speed_kmh=SPEED
        )["minutes_to_nearest"].to_numpy()
        for t in (5, 15):
            expect = demand["population"].to_numpy()[alone <= t].sum()
            assert c[f"population_within_{t}"].iloc[j] == pytest.approx(expect)


def test_coverage_by_level(chengdu_case: tuple[Any, Any, AuditResult]) -> None:
    _, _, r = chengdu_case
    t = r.coverage_by_level.set_index("level")
    assert list(t.index) == ["community", "street", "all"]
    assert t.loc["community", "minutes"] == 5.0
    assert t.loc["street", "minutes"] == 15.0
    assert t.loc["community", "share"] == pytest.approx(t.loc["community", "share_5"])
    assert t.loc["street", "share"] == pytest.approx(t.loc["street", "share_15"])
    assert t.loc["all", "share_5"] == pytest.approx(r.coverage["5"].share)
    assert t.loc["all", "share_15"] == pytest.approx(r.coverage["15"].share)
    for lvl in ("community", "street"):
        assert t.loc[lvl, "share_15"] <= t.loc["all", "share_15"] + 1e-12
    # combined standard: covered by any level within that level's minutes
    assert max(t.loc["community", "share"], t.loc["street", "share"]) <= t.loc["all", "share"]
    assert t.loc["all", "share"] <= t.loc["all", "share_15"] + 1e-12
    assert t.loc["community", "centers"] + t.loc["street", "centers"] == t.loc["all", "centers"]


def test_levels_without_standard(chengdu_net: WalkNetwork, chengdu_extract: Any) -> None:
    centers = node_centers(chengdu_net, 4, seed=12)
    demand = demand_from_extract(chengdu_net, chengdu_extract)
    r = audit(chengdu_net, centers, demand, with_polygons=False)
    t = r.coverage_by_level.set_index("level")
    assert list(t.index) == ["community", "street", "all"]
    assert t["share"].isna().all()
    assert len(r.service_areas) == 0
    assert len(r.bands) == 0


def test_service_areas_nest(chengdu_case: tuple[Any, Any, AuditResult]) -> None:
    centers, _, r = chengdu_case
    a = r.service_areas
    assert len(a) == 2 * (len(centers) + 1)
    for cid in [*centers["center_id"], "all"]:
        g5 = a[(a.center_id == cid) & (a.minutes == 5)].geometry.iloc[0]
        g15 = a[(a.center_id == cid) & (a.minutes == 15)].geometry.iloc[0]
        assert g5.difference(g15).area < 1.0
    assert list(r.bands.minutes_to) == [5.0, 15.0]


def test_inputs_not_modified_and_index_kept(haidian_net: WalkNetwork, haidian_extract: Any) -> None:
    demand = demand_from_extract(haidian_net, haidian_extract)
    demand.index = pd.Index(np.arange(len(demand)) * 3 + 100)
    centers = node_centers(haidian_net, 3, seed=1)
    d0, c0 = demand.copy(), centers.copy()
    r = audit(haidian_net, centers, demand, with_polygons=False)
    pd.testing.assert_frame_equal(demand, d0)
    pd.testing.assert_frame_equal(centers, c0)
    assert r.demand.index.equals(demand.index)
    assert r.centers.index.equals(centers.index)


def test_unsnapped_frames_are_refused(haidian_net: WalkNetwork, haidian_extract: Any) -> None:
    """Frames are snapped once, when loaded: the audit checks that contract, it does not snap."""
    demand = demand_from_extract(haidian_net, haidian_extract)
    centers = node_centers(haidian_net, 3, seed=1)
    unsnapped = centers.drop(columns=["snap_edge", "snap_offset_m", "snap_distance_m"])
    with pytest.raises(InputError, match="`centers` lacks the snap columns"):
        audit(haidian_net, unsnapped, demand, with_polygons=False)
    with pytest.raises(InputError, match="`demand` lacks the snap columns"):
        audit(haidian_net, centers, demand.drop(columns=["snap_edge"]), with_polygons=False)
    with pytest.raises(InputError, match="edge indices"):
        audit(haidian_net, centers.assign(snap_edge=10**6), demand, with_polygons=False)


def test_adding_never_lowers_closing_never_raises(
    chengdu_net: WalkNetwork, chengdu_case: tuple[Any, Any, AuditResult]
) -> None:
    centers, demand, base = chengdu_case
    extra = node_centers(chengdu_net, 1, seed=99)
    extra["center_id"] = ["added"]
    more = audit(
        chengdu_net, pd.concat([centers, extra], ignore_index=True), demand, with_polygons=False
    )
    fewer = audit(chengdu_net, centers.iloc[1:], demand, with_polygons=False)
    for key in ("5", "15"):
        assert more.coverage[key].share >= base.coverage[key].share
        assert fewer.coverage[key].share <= base.coverage[key].share


def test_progress_reports(chengdu_net: WalkNetwork, chengdu_extract: Any) -> None:
    calls: list[tuple[float, str]] = []
    audit(
        chengdu_net,
        node_centers(chengdu_net, 3, seed=4),
        demand_from_extract(chengdu_net, chengdu_extract),
        progress=lambda f, m: calls.append((f, m)),
    )
    fractions = [f for f, _ in calls]
    assert fractions[-1] == 1.0
    assert all(0.0 <= f <= 1.0 for f in fractions)
    assert fractions == sorted(fractions)
    assert len({m for _, m in calls}) >= 4


def test_with_colleague_builders_when_available(
    chengdu_net: WalkNetwork, chengdu_extract: Any
) -> None:
    centers_mod = pytest.importorskip("coverage.centers")
    demand_mod = pytest.importorskip("coverage.demand")
    if not hasattr(centers_mod, "centers_from_osm") or not hasattr(demand_mod, "demand_units"):
        pytest.skip("centers_from_osm / demand_units not available yet")
    centers = centers_mod.centers_from_osm(chengdu_extract, chengdu_net)
    demand = demand_mod.demand_units(chengdu_extract, chengdu_net)
    r = audit(chengdu_net, centers, demand, with_polygons=False)
    assert 0.0 <= r.coverage["5"].share <= r.coverage["15"].share <= 1.0
    assert r.demand.index.equals(demand.index)


def test_dissolve_touching_equals_one_union(monkeypatch: pytest.MonkeyPatch) -> None:
    from coverage import audit as audit_mod

    # a row of 100 touching squares (one group above the padded-row limit), pairs touching
    # at a corner (their union falls apart into two parts), lone squares, a lone MultiPolygon
    row = [shapely.box(i, 0, i + 1, 1) for i in range(100)]
    corners = [shapely.box(0, 10 + 3 * k, 1, 11 + 3 * k) for k in range(5)] + [
        shapely.box(1, 11 + 3 * k, 2, 12 + 3 * k) for k in range(5)
    ]
    lone = [shapely.box(200 + 2 * k, 0, 201 + 2 * k, 1) for k in range(7)]
    multi = [shapely.MultiPolygon([shapely.box(300, 0, 301, 1), shapely.box(303, 0, 304, 1)])]
    geoms = np.array(row + corners + lone + multi, dtype=object)[
        np.random.default_rng(1).permutation(118)
    ]
    monkeypatch.setattr(audit_mod, "_ROW_UNION_MAX", 8)
    parts, part_of = audit_mod._dissolve_touching(geoms)
    plain = shapely.get_parts(shapely.union_all(geoms))
    assert parts.size == plain.size == 1 + 10 + 7 + 2
    assert shapely.union_all(parts).equals(shapely.union_all(plain))
    assert sorted(shapely.area(parts)) == sorted(shapely.area(plain))
    # every unit lies in the part it is assigned to
    assert (part_of >= 0).all()
    assert shapely.covers(parts[part_of], shapely.point_on_surface(geoms)).all()
