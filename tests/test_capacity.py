"""Tests for coverage.capacity: hand-computed 2SFCA / E2SFCA on the grid, pysal/access on Chengdu.

Grid (tests/data/grid.osm): 100 m blocks; at 6 km/h one block is one minute.
Centers A (100, 100) with 300 m² and B (300, 300) with 150 m²; units (points
on nodes, households = population / 2.62):

==== ========= ==== ====== ======
unit position  H    t(A)   t(B)
==== ========= ==== ====== ======
u1   (0, 100)  100  1      5
u2   (200,200) 200  2      2
u3   (400,300) 50   5      1
u4   (200,100) 100  1      3
==== ========= ==== ====== ======

Catchment 3.5 min. Plain 2SFCA: D_A = 100 + 200 + 100 = 400, R_A = 0.75;
D_B = 200 + 50 + 100 = 350, R_B = 3/7. A = (0.75, 0.75 + 3/7, 3/7, 0.75 + 3/7).
Step weights 1 (≤1.5), 0.5 (≤2.5), 0.25 (≤3.5): D_A = 100 + 100 + 100 = 300,
R_A = 1; D_B = 100 + 50 + 25 = 175, R_B = 6/7; A = (1, 0.5 + 3/7, 6/7, 1 + 3/14).
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import GRID
from test_reach import demand_from_extract, make_centers, node_centers

from coverage import capacity as cap
from coverage.audit import AuditParams, audit
from coverage.centers import FLOOR_AREA_M2, floor_area_values
from coverage.errors import InputError
from coverage.netcache import walk_network
from coverage.network import WalkNetwork, speed_ms
from coverage.reach import pairs_within_m, require_snapped
from coverage.snapping import snap_frame

E0, N0 = 440_000.0, 4_428_000.0
HH = 2.62
STEPS = cap.Decay("step", ((1.5, 1.0), (2.5, 0.5), (3.5, 0.25)))


def grid_case(net: WalkNetwork, areas: tuple[float, float] = (300.0, 150.0)) -> Any:
    centers = make_centers(net, np.array([[E0 + 100, N0 + 100], [E0 + 300, N0 + 300]]), ["A", "B"])
    centers[FLOOR_AREA_M2] = list(areas)
    xy = np.array([[0, 100], [200, 200], [400, 300], [200, 100]], dtype=float)
    demand = gpd.GeoDataFrame(
        {
            "demand_id": ["u1", "u2", "u3", "u4"],
            "population": np.array([100, 200, 50, 100]) * HH,
            "kind": "file",
            "name": None,
        },
        geometry=shapely.points(xy + np.array([E0, N0])),
        crs=net.crs,
    )
    demand = snap_frame(net, demand)
    result = audit(
        net, centers, demand, AuditParams(speed_kmh=6.0, thresholds_min=(3.5,)), with_polygons=False
    )
    return result


def test_grid_2sfca_and_e2sfca_by_hand(grid_net: WalkNetwork) -> None:
    res = cap.capacity_audit(grid_net, grid_case(grid_net), cap.CapacityParams(enhanced=STEPS))
    d = res.demand
    np.testing.assert_allclose(d[cap.HOUSEHOLDS], [100, 200, 50, 100])
    plain = 100 * np.array([0.75, 0.75 + 3 / 7, 3 / 7, 0.75 + 3 / 7])
    enhanced = 100 * np.array([1.0, 0.5 + 3 / 7, 6 / 7, 1 + 3 / 14])
    np.testing.assert_allclose(d[cap.M2_2SFCA], plain, rtol=1e-12)
    np.testing.assert_allclose(d[cap.M2_PER_100_HOUSEHOLDS], plain, rtol=1e-12)
    np.testing.assert_allclose(d[cap.M2_E2SFCA], enhanced, rtol=1e-12)
    # 30 m² per 100 households: every unit meets it; at 80, only u2 and u4
    assert d[cap.MEETS_STANDARD].tolist() == [True, True, True, True]
    strict = cap.capacity_audit(
        grid_net,
        grid_case(grid_net),
        cap.CapacityParams(standard_m2_per_100_households=80.0, decay=STEPS),
    )
    np.testing.assert_allclose(strict.demand[cap.M2_PER_100_HOUSEHOLDS], enhanced, rtol=1e-12)
    assert strict.demand[cap.MEETS_STANDARD].tolist() == [True, True, True, True]
    s90 = cap.capacity_audit(
        grid_net, grid_case(grid_net), cap.CapacityParams(standard_m2_per_100_households=90.0)
    )
    assert s90.demand[cap.MEETS_STANDARD].tolist() == [False, True, False, True]
    assert s90.share_meeting_standard == pytest.approx(300 / 450)
    c = res.centers
    np.testing.assert_allclose(c[cap.HOUSEHOLDS_WITHIN], [400, 350])
    np.testing.assert_allclose(c[cap.SUPPLY_M2_PER_100], [75.0, 100 * 3 / 7])
    np.testing.assert_allclose(c[cap.REQUIRED_M2], [120.0, 105.0])
    # nearest: u1, u4 → A; u3 → B; u2 ties at 2 min (whichever the search keeps)
    near = c[cap.HOUSEHOLDS_NEAREST].to_numpy()
    assert near.sum() == pytest.approx(450.0)
    assert near[0] >= 200
    assert near[1] >= 50
    summary = res.summary()
    assert summary["households"] == pytest.approx(450.0)
    assert summary["household_size"] == cap.DEFAULT_HOUSEHOLD_SIZE
    assert summary["standard_m2_per_100_households"] == 30.0
    assert summary["share_meeting_standard"] == 1.0
    assert summary["centers_without_floor_area"] == 0
    assert summary["floor_area_m2"] == 450.0


def test_census_households_win_over_household_size(grid_net: WalkNetwork) -> None:
    """A ``households`` column (a census's) replaces population / household size where known."""
    result = grid_case(grid_net)
    demand = result.demand.copy()
    demand[cap.HOUSEHOLDS] = [50.0, 100.0, 25.0, np.nan]  # u4 has no count: 100 from its size
    res = cap.capacity_audit(grid_net, replace(result, demand=demand))
    d = res.demand
    np.testing.assert_allclose(d[cap.HOUSEHOLDS], [50, 100, 25, 100])
    # within A: u1, u2, u4 = 250 households; within B: u2, u3, u4 = 225
    ra, rb = 300 / 250, 150 / 225
    np.testing.assert_allclose(
        d[cap.M2_2SFCA], 100 * np.array([ra, ra + rb, rb, ra + rb]), rtol=1e-12
    )
    c = res.centers
    np.testing.assert_allclose(c[cap.HOUSEHOLDS_WITHIN], [250, 225])
    # households nearest: the units' households summed per nearest center, not population / size
    assert c[cap.HOUSEHOLDS_NEAREST].sum() == pytest.approx(275.0)
    assert res.summary()["households"] == pytest.approx(275.0)


def test_gaussian_by_hand(grid_net: WalkNetwork) -> None:
    g = cap.Decay("gaussian", sigma_min=2.0)
    res = cap.capacity_audit(grid_net, grid_case(grid_net), cap.CapacityParams(decay=g))

    def w(t: float) -> float:
        return math.exp(-t * t / 8.0)

    da = 100 * w(1) + 200 * w(2) + 100 * w(1)
    db = 200 * w(2) + 50 * w(1) + 100 * w(3)
    ra, rb = 300 / da, 150 / db
    expected = 100 * np.array([w(1) * ra, w(2) * ra + w(2) * rb, w(1) * rb, w(1) * ra + w(3) * rb])
    # grid edges are 100 m to within a centimetre: 1e-4 min
    np.testing.assert_allclose(res.demand[cap.M2_PER_100_HOUSEHOLDS], expected, rtol=1e-4)


def test_center_without_floor_area_is_unknown_not_zero(grid_net: WalkNetwork) -> None:
    with pytest.warns(UserWarning, match="1 of 2 centers have no floor area"):
        res = cap.capacity_audit(grid_net, grid_case(grid_net, (300.0, math.nan)))
    v = res.demand[cap.M2_PER_100_HOUSEHOLDS].to_numpy()
    # u1 reaches only A (D_A = 400 without B taking any households): known; the rest reach B
    assert v[0] == pytest.approx(75.0)
    assert np.isnan(v[1:]).all()
    assert res.demand[cap.MEETS_STANDARD].tolist() == [True, None, None, None]
    assert res.centers_without_floor_area == ("B",)
    assert res.share_unknown == pytest.approx(350 / 450)
    assert res.share_meeting_standard == pytest.approx(100 / 450)
    assert math.isnan(res.centers[cap.SUPPLY_M2_PER_100].iloc[1])
    assert res.summary()["centers_without_floor_area_ids"] == ["B"]


def test_no_floor_area_column_is_refused(grid_net: WalkNetwork) -> None:
    result = grid_case(grid_net)
    bare = result.centers.drop(columns=[FLOOR_AREA_M2])
    from dataclasses import replace

    with pytest.raises(InputError, match="--capacity-column"):
        cap.capacity_audit(grid_net, replace(result, centers=bare))


def test_fca_core_ignores_pairs_beyond_the_catchment_and_zero_weights() -> None:
    out = cap.fca_core(
        np.array([0, 0, 1]),
        np.array([0, 1, 1]),
        np.array([1.0, 9.0, 2.0]),
        households=np.array([10.0, 30.0]),
        floor_area_m2=np.array([5.0, 6.0]),
        decay=cap.Decay(),
        catchment_min=5.0,
    )
    np.testing.assert_allclose(out.supply_m2_per_household, [0.5, 0.2])
    np.testing.assert_allclose(out.m2_per_household, [0.5, 0.2])


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("none", "none"),
        ("step", "step"),
        ("step:5=1,10=0.68,15=0.22", "step"),
        ("gaussian", "gaussian"),
        ("gaussian:7.5", "gaussian"),
    ],
)
def test_decay_parse(text: str, kind: str) -> None:
    assert cap.Decay.parse(text).kind == kind


@pytest.mark.parametrize("text", ["linear", "step:5", "step:10=1,5=1", "gaussian:-1", "none:3"])
def test_decay_parse_refuses(text: str) -> None:
    with pytest.raises(InputError):
        cap.Decay.parse(text)


def test_default_step_is_luo_qi_on_thirds() -> None:
    d = cap.Decay("step")
    assert d.bands(15.0) == ((5.0, 1.0), (10.0, 0.68), (15.0, 0.22))
    np.testing.assert_allclose(
        d.weights(np.array([0.0, 5.0, 5.01, 15.0, 15.01]), 15.0), [1, 1, 0.68, 0.22, 0]
    )


@pytest.mark.parametrize(
    "kwargs",
    [{"household_size": 0}, {"standard_m2_per_100_households": -1}, {"catchment_min": 0}],
)
def test_params_validation(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InputError):
        cap.CapacityParams(**kwargs)


def test_floor_area_values() -> None:
    v = floor_area_values(pd.Series(["120", None, "", 3.5]), "x")
    assert v[0] == 120
    assert v[3] == 3.5
    assert np.isnan(v[1:3]).all()
    with pytest.raises(InputError, match="row 2"):
        floor_area_values(pd.Series([1, "big"]), "x")
    with pytest.raises(InputError, match="row 1"):
        floor_area_values(pd.Series([-1.0]), "x")


# --- against pysal/access on the embedded city ----------------------------------------


@pytest.fixture(scope="module")
def chengdu_capacity(chengdu_net: WalkNetwork, chengdu_extract: Any) -> Any:
    centers = node_centers(chengdu_net, 40, seed=5)
    rng = np.random.default_rng(7)
    centers[FLOOR_AREA_M2] = rng.uniform(200.0, 5300.0, len(centers)).round(0)
    demand = demand_from_extract(chengdu_net, chengdu_extract)
    result = audit(
        chengdu_net,
        centers,
        demand,
        AuditParams(speed_kmh=4.5, thresholds_min=(5.0, 15.0)),
        with_polygons=False,
    )
    # the travel-time matrix both sides are fed: every pair within 15 minutes
    ms = speed_ms(4.5)
    pairs = pairs_within_m(
        chengdu_net,
        require_snapped(chengdu_net, centers, "centers"),
        require_snapped(chengdu_net, demand, "demand"),
        limit_m=15 * 60 * ms,
    )
    cost = pd.DataFrame(
        {
            "unit": pairs.point,
            "center": pairs.source,
            "minutes": pairs.dist_m / ms / 60.0,
        }
    )
    return result, cost


def _access(result: Any, cost: pd.DataFrame, weight_fn: Any, e2: bool) -> np.ndarray:
    access = pytest.importorskip("access")
    hh = result.demand["population"].to_numpy() / HH
    demand_df = pd.DataFrame({"unit": np.arange(len(hh)), "households": hh})
    n = len(result.centers)
    supply_df = pd.DataFrame({"center": np.arange(n), "floor": result.centers[FLOOR_AREA_M2]})
    a = access.Access(
        demand_df=demand_df,
        demand_index="unit",
        demand_value="households",
        supply_df=supply_df,
        supply_index="center",
        supply_value="floor",
        cost_df=cost,
        cost_origin="unit",
        cost_dest="center",
        cost_name="minutes",
    )
    if e2:
        out = a.enhanced_two_stage_fca(name="e", max_cost=15.0, weight_fn=weight_fn)
    else:
        out = a.two_stage_fca(name="p", max_cost=15.0)
    return out.iloc[:, 0].reindex(range(len(hh))).fillna(0.0).to_numpy() * 100.0


def test_2sfca_matches_pysal_access(chengdu_net: WalkNetwork, chengdu_capacity: Any) -> None:
    result, cost = chengdu_capacity
    ours = cap.capacity_audit(chengdu_net, result)
    theirs = _access(result, cost, None, e2=False)
    assert (theirs > 0).sum() > 100
    np.testing.assert_allclose(ours.demand[cap.M2_2SFCA], theirs, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("kind", ["step", "gaussian"])
def test_e2sfca_matches_pysal_access(
    chengdu_net: WalkNetwork, chengdu_capacity: Any, kind: str
) -> None:
    from access import weights

    result, cost = chengdu_capacity
    if kind == "step":
        decay = cap.Decay("step", ((5.0, 1.0), (10.0, 0.68), (15.0, 0.22)))
        fn = weights.step_fn({5: 1.0, 10: 0.68, 15: 0.22})
    else:
        decay = cap.Decay("gaussian", sigma_min=6.0)
        fn = weights.gaussian(6.0)
    ours = cap.capacity_audit(chengdu_net, result, cap.CapacityParams(enhanced=decay))
    theirs = _access(result, cost, fn, e2=True)
    np.testing.assert_allclose(ours.demand[cap.M2_E2SFCA], theirs, rtol=1e-9, atol=1e-9)


# --- capacitated siting on the grid -----------------------------------------------------


def _sized_sites_case(
    grid_net: Any, households: list[float] | None = None
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame, dict[str, Any]]:
    """The grid's one 60 m² center, its demand (with ``households`` if given), two candidate
    sites east and west, and siting parameters: one action of 30 or 90 m², or +90 m²."""
    from coverage.siting import candidates_from_file

    audit_result = grid_case(grid_net, (60.0, 150.0))
    centers = audit_result.centers.iloc[[0]].reset_index(drop=True)
    demand = audit_result.demand
    if households is not None:
        demand = demand.assign(**{cap.HOUSEHOLDS: households})
    pts = gpd.GeoDataFrame(
        {"candidate_id": ["east", "west"]},
        geometry=shapely.points([[E0 + 400, N0 + 300], [E0, N0 + 100]]),
        crs=grid_net.crs,
    )
    base = {
        "k": 1,
        "minutes": 3.5,
        "speed_kmh": 6.0,
        "secondary_minutes": None,
        "new_site_m2": (30.0, 90.0),
        "enlarge_m2": 90.0,
    }
    return centers, demand, candidates_from_file(grid_net, pts), base


def test_capacitated_siting_on_the_grid(grid_net: WalkNetwork) -> None:
    """A (60 m²: 524 residents at 30 m²/100 households) covers u1, u2, u4 (1,048 residents).

    Within 3.5 min, a new site at (400, 300) covers u2 and u3, one at (0, 100) u1, u2
    and u4. With 90 m² (786 residents) the first lets A serve u1 + u4 (524) and serves
    u2 + u3 (655): everyone (1,179). The second reaches 1,048; enlarging A by 90 m²
    reaches 1,048 too. So the exact answer is one new 90 m² site at (400, 300).
    """
    from coverage.siting import (
        ACTION,
        ADDED_FLOOR_AREA_M2,
        SitingParams,
        propose_sites,
    )

    centers, demand, cands, base = _sized_sites_case(grid_net)
    exact = propose_sites(
        grid_net, demand, centers, params=SitingParams(**base, exact=True), candidates=cands
    )
    total = 1179.0
    assert exact.method == "capacitated-exact"
    assert exact.optimal
    assert exact.share_before == pytest.approx(524 / total, rel=1e-9)
    assert exact.share_after == pytest.approx(1.0, rel=1e-9)
    row = exact.sites.iloc[0]
    assert row["candidate_id"] == "east"
    assert row[ACTION] == "new"
    assert row[ADDED_FLOOR_AREA_M2] == 90.0
    greedy = propose_sites(grid_net, demand, centers, params=SitingParams(**base), candidates=cands)
    assert greedy.method == "capacitated-greedy"
    assert greedy.share_after <= exact.share_after + 1e-12
    assert greedy.upper_bound_share >= 1.0 - 1e-9
    # unknown floor areas are refused, never taken as 0 or infinite
    blank = centers.assign(**{FLOOR_AREA_M2: [math.nan]})
    with pytest.raises(InputError, match="floor area"):
        propose_sites(grid_net, demand, blank, params=SitingParams(**base), candidates=cands)


def test_capacitated_siting_counts_census_households(grid_net: WalkNetwork) -> None:
    """With a census's households the capacity is in households, as in the capacity audit.

    Units u1..u4 (262, 524, 131, 262 residents) carry 50, 400, 25 and 50 households:
    u2's households are small (1.31 persons), the others large (5.24). A (60 m²) can
    serve 200 households: u1 and u4 whole (100) and 100 of u2's (131 residents), 655
    residents (by population / 2.62 it was 524). Each single action by hand (capacity
    100 households per 30 m²; the flow serves the largest households first):

    - new 90 m² east (u2, u3; 300 households): 500 for 525 households, the 25 short
      are u2's: 1179 − 25 × 1.31 = 1146.25;
    - new 90 m² west or A enlarged by 90 m² (u1, u2, u4): 500 households, all of
      u1, u2, u4: 1048;
    - new 30 m² east: u3 and 175 of u2's households: 262 + 262 + 131 + 229.25 = 884.25;
    - new 30 m² west: u1, u4 and 200 of u2's: 786.

    The best single action is the 90 m² east site; greedy and exact both find it.
    """
    from coverage.siting import SitingParams, propose_sites

    centers, demand, cands, base = _sized_sites_case(grid_net, households=[50.0, 400.0, 25.0, 50.0])
    by_hand = {("east", 90.0): 1146.25, ("west", 90.0): 1048.0, ("enlarge", 90.0): 1048.0}
    by_hand |= {("east", 30.0): 884.25, ("west", 30.0): 786.0}
    best = max(by_hand.values())
    total = 1179.0
    for exact in (False, True):
        res = propose_sites(
            grid_net,
            demand,
            centers,
            params=SitingParams(**base, exact=exact),
            candidates=cands,
        )
        assert res.share_before == pytest.approx(655 / total, rel=1e-9)
        assert res.share_after == pytest.approx(best / total, rel=1e-9)
        assert res.upper_bound_share >= best / total - 1e-9
        row = res.sites.iloc[0]
        assert (row["candidate_id"], row["added_floor_area_m2"]) == ("east", 90.0)
    # without the census column the same instance counts 2.62 persons per household
    plain = propose_sites(
        grid_net,
        demand.drop(columns=[cap.HOUSEHOLDS]),
        centers,
        params=SitingParams(**base),
        candidates=cands,
    )
    assert plain.share_before == pytest.approx(524 / total, rel=1e-9)


# --- groups ------------------------------------------------------------------------------


def test_group_coverage_scales_minutes_by_speed(grid_net: WalkNetwork) -> None:
    """At 6 km/h u1/u4 are 1 min, u2 2 min, u3 1 min from A or B; at 3.3 km/h ×(6/3.3)."""
    from coverage.groups import GroupParams, group_column, group_coverage, groups_block

    result = grid_case(grid_net)
    d = result.demand.copy()
    d[group_column("60岁及以上")] = [100.0, 50.0, 0.0, 10.0]
    d[group_column("0-14岁")] = [0.0, 20.0, 30.0, 0.0]
    from dataclasses import replace

    res = replace(result, demand=d)
    table = group_coverage(res)
    older = table[table["group"] == "60岁及以上"].iloc[0]
    assert older["speed_kmh"] == 3.3
    # 2 min at 6 km/h = 3.64 min at 3.3 km/h > 3.5: u2's 50 older residents are not covered
    assert older["population"] == 160.0
    assert older["population_covered"] == pytest.approx(110.0)
    young = table[table["group"] == "0-14岁"].iloc[0]
    assert young["speed_kmh"] == 6.0
    assert young["share"] == pytest.approx(1.0)
    # an explicit speed wins
    slow = group_coverage(res, GroupParams({"0-14岁": 3.0}))
    assert slow[slow["group"] == "0-14岁"]["population_covered"].iloc[0] == pytest.approx(30.0)
    block = groups_block(table)
    assert block["60岁及以上"]["coverage"]["3.5"]["share"] == pytest.approx(110 / 160)
    with pytest.raises(InputError, match="groups"):
        group_coverage(res, GroupParams({"80岁": 3.0}))


# --- CLI and output contract ---------------------------------------------------------------


def test_cli_audit_with_capacity_and_groups(tmp_path: Path) -> None:
    import json

    from coverage.cli import main

    centers = pd.DataFrame(
        {
            "名称": ["A", "B"],
            "lon": [0.0, 0.0],
            "lat": [0.0, 0.0],
            "floor_area_m2": [300, ""],
        }
    )
    net = walk_network(GRID, cache_dir=None)
    import pyproj

    to_ll = pyproj.Transformer.from_crs(net.crs, "EPSG:4326", always_xy=True)
    for i, (x, y) in enumerate([(E0 + 100, N0 + 100), (E0 + 300, N0 + 300)]):
        centers.loc[i, ["lon", "lat"]] = to_ll.transform(x, y)
    centers.to_csv(tmp_path / "centers.csv", index=False)
    pop = gpd.GeoDataFrame(
        {"population": [262.0, 524.0], "60岁及以上": [100.0, 0.0]},
        geometry=shapely.points([[E0, N0 + 100], [E0 + 200, N0 + 200]]),
        crs=net.crs,
    ).to_crs("EPSG:4326")
    pop.to_file(tmp_path / "pop.geojson", driver="GeoJSON")
    out = tmp_path / "out"
    code = main(
        [
            "audit",
            "--osm",
            str(GRID),
            "--centers",
            str(tmp_path / "centers.csv"),
            "--population",
            str(tmp_path / "pop.geojson"),
            "--population-groups",
            "60岁及以上",
            "--minutes",
            "3.5",
            "--speed-kmh",
            "6",
            "--household-size",
            "2.62",
            "--capacity-standard",
            "30",
            "--no-polygons",
            "--no-report",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--out",
            str(out),
            "-q",
        ]
    )
    assert code == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    capacity = summary["capacity"]
    assert capacity["household_size"] == 2.62
    assert capacity["standard_m2_per_100_households"] == 30.0
    assert capacity["centers_without_floor_area"] == 1
    assert capacity["households"] == pytest.approx(300.0)
    assert summary["groups"]["60岁及以上"]["speed_kmh"] == 3.3
    demand = json.loads((out / "demand.geojson").read_text(encoding="utf-8"))
    props = [f["properties"] for f in demand["features"]]
    assert all("m2_per_100_households" in p and "households" in p for p in props)
    # the unit at (0, 100) reaches only A (B lacks a floor area but is 5 min away)
    first = next(p for p in props if p["households"] == pytest.approx(100.0))
    assert first["m2_per_100_households"] == pytest.approx(100 * 300 / 300)
    second = next(p for p in props if p["households"] == pytest.approx(200.0))
    assert second["m2_per_100_households"] is None
    centers_csv = pd.read_csv(out / "centers.csv", encoding="utf-8-sig")
    assert {"floor_area_m2", "households_within", "supply_m2_per_100_households"} <= set(
        centers_csv.columns
    )
    assert (out / "groups.csv").exists()


def test_capacity_map_layer(grid_net: WalkNetwork) -> None:
    from coverage.i18n import t
    from coverage.maps import MapLayers, coverage_map

    with pytest.warns(UserWarning, match="no floor area"):
        res = cap.capacity_audit(grid_net, grid_case(grid_net, (300.0, math.nan)))
    for lang in ("zh", "en"):
        m = coverage_map(MapLayers(capacity=res.demand, capacity_standard_m2=80.0), lang=lang)
        html = m.get_root().render()
        assert t("map.layer.capacity", lang) in html
        assert t("map.legend.capacity_meets", lang, standard=80.0) in html
        assert t("map.legend.capacity_unknown", lang) in html
    with pytest.raises(InputError, match="m2_per_100_households"):
        MapLayers(capacity=res.demand.drop(columns=[cap.M2_PER_100_HOUSEHOLDS]))


def test_scenario_round_trip_with_capacity_and_groups() -> None:
    from coverage.groups import GroupParams
    from coverage.scenario import Scenario
    from coverage.siting import SitingParams

    s = Scenario(
        capacity=cap.CapacityParams(household_size=3.0, decay=STEPS),
        groups=GroupParams({"60岁及以上": 3.0}),
        siting=SitingParams(k=3, new_site_m2=(300.0, 600.0), enlarge_m2=100.0),
    )
    back = Scenario.from_json(s.to_json())
    assert back == s
    assert back.capacity is not None
    assert back.capacity.decay.bands(3.5) == STEPS.steps_min
    # scenarios without them are written as before
    assert "capacity" not in Scenario().to_dict()
    assert "groups" not in Scenario().to_dict()


def test_cli_site_capacitated_exact(tmp_path: Path) -> None:
    import json

    import pyproj

    from coverage.cli import main

    net = walk_network(GRID, cache_dir=None)
    to_ll = pyproj.Transformer.from_crs(net.crs, "EPSG:4326", always_xy=True)
    lon, lat = to_ll.transform(E0 + 100, N0 + 100)
    pd.DataFrame({"lon": [lon], "lat": [lat], "floor_area_m2": [60]}).to_csv(
        tmp_path / "c.csv", index=False
    )
    out = tmp_path / "out"
    args = ["site", "--osm", str(GRID), "--centers", str(tmp_path / "c.csv"), "--new", "2"]
    args += ["--minutes", "3.5", "--speed-kmh", "6", "--new-site-m2", "30,90", "--enlarge-m2", "60"]
    args += ["--exact", "--no-polygons", "--no-report", "--cache-dir", str(tmp_path / "cache")]
    assert main([*args, "--out", str(out), "-q"]) == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    siting = summary["siting"]
    assert siting["method"] == "capacitated-exact"
    assert siting["new_site_m2"] == [30.0, 90.0]
    assert siting["share_after"] >= siting["share_before"]
    assert siting["upper_bound_share"] >= siting["share_after"] - 1e-12
    # the output says what is proven: the bound and gap, not the greedy
    assert siting["guarantee"].startswith("none for the greedy")
    assert siting["households"] == "household_size"
    assert siting["bound_kind"] in {"submodular", "lp", "mip", "optimal"}
    # the centers carry floor areas, so the capacity audit ran with the defaults
    assert summary["capacity"]["standard_m2_per_100_households"] == 30.0
    sites = json.loads((out / "proposed_sites.geojson").read_text(encoding="utf-8"))
    assert {f["properties"]["action"] for f in sites["features"]} <= {"new", "enlarge"}
    assert all(f["properties"]["added_floor_area_m2"] > 0 for f in sites["features"])


def test_population_groups_are_spread_like_the_total(grid_net: WalkNetwork) -> None:
    from coverage.demand import PopulationFile, demand_units
    from coverage.osm import read_osm

    extract = read_osm(GRID)
    poly = gpd.GeoDataFrame(
        {"population": [1000.0, 200.0], "60岁及以上": [300.0, 0.0]},
        geometry=[
            shapely.box(E0 + 20, N0 + 20, E0 + 380, N0 + 180),
            shapely.box(E0 + 20, N0 + 220, E0 + 180, N0 + 380),
        ],
        crs=grid_net.crs,
    ).to_crs("EPSG:4326")
    spec = PopulationFile(poly, group_columns=("60岁及以上",))
    units = demand_units(extract, grid_net, population=spec)
    g = units["population_60岁及以上"].to_numpy()
    p = units["population"].to_numpy()
    assert g.sum() == pytest.approx(300.0)
    assert p.sum() == pytest.approx(1200.0)
    big = g > 0
    np.testing.assert_allclose(g[big] / p[big], 0.3)
    bad = poly.assign(**{"60岁及以上": [2000.0, 0.0]})
    with pytest.raises(InputError, match="exceeds the total"):
        demand_units(
            extract, grid_net, population=PopulationFile(bad, group_columns=("60岁及以上",))
        )
    with pytest.raises(InputError, match="no population group column"):
        demand_units(extract, grid_net, population=PopulationFile(poly, group_columns=("0-14岁",)))


def test_batch_reports_the_capacity_share_per_district(
    grid_net: WalkNetwork, tmp_path: Path
) -> None:
    """Centers with floor areas: each district's audit carries the capacity audit too."""
    from coverage.batch import CAPACITY_SHARE, BatchParams, run_districts
    from coverage.inputs import CityData

    result = grid_case(grid_net)
    city = CityData(
        source_name=GRID.name,
        source_sha256=grid_net.source_sha256,
        net=grid_net,
        centers=make_centers(
            grid_net, np.array([[E0 + 100, N0 + 100], [E0 + 300, N0 + 300]]), ["A", "B"]
        ).assign(**{FLOOR_AREA_M2: [300.0, 150.0]}),
        demand=result.demand[
            [
                "demand_id",
                "population",
                "kind",
                "name",
                "geometry",
                "snap_edge",
                "snap_offset_m",
                "snap_distance_m",
            ]
        ],
    )
    districts = gpd.GeoDataFrame(
        {"district": ["all"]},
        geometry=[shapely.box(E0 - 50, N0 - 50, E0 + 450, N0 + 450)],
        crs=grid_net.crs,
    ).to_crs("EPSG:4326")
    res = run_districts(
        city,
        districts,
        tmp_path / "out",
        params=BatchParams(with_polygons=False, with_report=False),
    )
    row = res.summary.set_index("district").loc["all"]
    # at 4.5 km/h and 15 minutes every unit reaches both centers: 450 m² for 450 households
    assert row[CAPACITY_SHARE] == pytest.approx(1.0)
    import json

    doc = json.loads((tmp_path / "out" / "all" / "summary.json").read_text(encoding="utf-8"))
    assert doc["capacity"]["households"] == pytest.approx(450.0)
