"""Tests for coverage.standards and the audit against a standard (issue 15, parts 1–3 and compliance).

Exact answers come from the hand-made 100 m grid (tests/data/grid.osm, see
tests/data/make_grid.py): every street segment is 100 m, so network walking
meters are Manhattan distances plus the straight access leg to the street.
Distance mode is also checked against networkx on random points of the grid.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely
from conftest import GRID, GRID_E, GRID_N
from test_reach import make_centers, nx_graph, nx_nearest, snapped

from coverage import cli, standards
from coverage.audit import AuditParams, audit
from coverage.errors import InputError
from coverage.names import covered_column, level_covered_column, threshold_key
from coverage.netcache import walk_network
from coverage.network import WalkNetwork
from coverage.pipeline import audit_params
from coverage.scenario import Scenario
from coverage.snapping import snap_frame
from coverage.standards import (
    DEFAULT_HOUSEHOLD_SIZE,
    GB50180,
    TDT1062,
    ComplianceParams,
    Standard,
    compliance_table,
    preset,
    standard_from_file,
    standard_from_text,
)

M_PER_MIN = 4.5 / 3.6 * 60.0  # 75 m per minute


def grid_demand(net: WalkNetwork, xy: list[tuple[float, float]], pop: list[float]) -> Any:
    """Point demand units at grid offsets ``xy`` (meters from the grid origin)."""
    pts = np.asarray(xy, dtype=float) + np.array([GRID_E, GRID_N])
    gdf = gpd.GeoDataFrame(
        {
            "demand_id": [f"d{i}" for i in range(len(xy))],
            "population": np.asarray(pop, dtype=float),
            "kind": "file",
            "name": None,
        },
        geometry=shapely.points(pts),
        crs=net.crs,
    )
    return snap_frame(net, gdf)


def grid_centers(net: WalkNetwork, xy: list[tuple[float, float]], levels: list[str | None]) -> Any:
    return make_centers(
        net, np.asarray(xy, dtype=float) + np.array([GRID_E, GRID_N]), levels=levels
    )


# --- names ----------------------------------------------------------------------------


def test_names_share_one_vocabulary() -> None:
    assert threshold_key(5.0) == "5"
    assert threshold_key(300.0, "m") == "300m"
    assert threshold_key(7.5, "m") == "7.5m"
    assert covered_column(300, "m") == "covered_300m"
    assert covered_column(15) == "covered_15"
    assert level_covered_column("community") == "covered_level_community"
    with pytest.raises(InputError, match="meters"):
        AuditParams(thresholds_m=(300.0, 300.0000000001))


# --- presets ----------------------------------------------------------------------------


def test_gb50180_figures_and_sources() -> None:
    c15, c10, c5, block = (GB50180.circle(k) for k in ("15min", "10min", "5min", "block"))
    assert (c15.meters, c15.meters_range, c15.minutes) == (1000.0, (800.0, 1000.0), None)
    assert c15.population_range == (50_000, 100_000)
    assert c15.dwellings_range == (17_000, 32_000)
    assert (c10.meters, c10.population_range) == (500.0, (15_000, 25_000))
    assert (c5.meters, c5.population_range) == (300.0, (5_000, 12_000))
    assert block.population_range == (1_000, 3_000)
    assert not block.has_limit  # the standard gives the 居住街坊 no walking distance
    assert dict(GB50180.center_levels) == {
        "district": "15min",
        "street": "15min",
        "community": "5min",
    }
    assert "社区服务中心（街道级）" in c15.facilities
    assert any("社区服务站" in f for f in c5.facilities)
    for c in GB50180.circles:
        assert "GB 50180-2018" in c.source
        assert "表" in c.source


def test_tdt1062_levels() -> None:
    assert TDT1062.circle("15min").minutes == 15.0
    assert TDT1062.circle("5-10min").minutes == 10.0
    assert dict(TDT1062.center_levels)["street"] == "15min"
    assert dict(TDT1062.center_levels)["community"] == "5-10min"
    assert all("TD/T 1062-2021" in c.source for c in TDT1062.circles)
    assert all(c.target_share is None for c in TDT1062.circles)  # the guideline gives none


@pytest.mark.parametrize(
    ("name", "key"),
    [("gb50180", "gb50180"), ("GB 50180-2018", "gb50180"), ("TD/T 1062-2021", "tdt1062")],
)
def test_preset_names(name: str, key: str) -> None:
    assert preset(name).key == key


def test_unknown_preset() -> None:
    with pytest.raises(InputError, match="gb50180, tdt1062"):
        preset("gb99999")


def test_household_size_is_the_2020_census() -> None:
    assert DEFAULT_HOUSEHOLD_SIZE == 2.62


# --- local standard files -------------------------------------------------------------------

TOML = """
name = "chengdu-local"
title = "成都市社区综合服务设施 (test)"
source = "test file"

[[levels]]
level = "street"
minutes = 15
meters = 1000
source = "§3.1"
target_share = 0.8

[[levels]]
level = "community"
meters = 300
"""


def test_local_standard_formats_agree(tmp_path: Path) -> None:
    a = standard_from_text(TOML, fmt="toml", key="x")
    doc = {
        "name": "chengdu-local",
        "title": "成都市社区综合服务设施 (test)",
        "source": "test file",
        "levels": [
            {
                "level": "street",
                "minutes": 15,
                "meters": 1000,
                "source": "§3.1",
                "target_share": 0.8,
            },
            {"level": "community", "meters": 300},
        ],
    }
    b = standard_from_text(json.dumps(doc), fmt="json")
    csv_path = tmp_path / "chengdu-local.csv"
    csv_path.write_text(
        "level,minutes,meters,source,target_share\nstreet,15,1000,§3.1,0.8\ncommunity,,300,,\n",
        encoding="utf-8-sig",
    )
    c = standard_from_file(csv_path)
    for s in (a, b, c):
        assert s.key == "chengdu-local"
        assert dict(s.center_levels) == {"street": "street", "community": "community"}
        street, community = s.circle("street"), s.circle("community")
        assert (street.minutes, street.meters, street.target_share) == (15.0, 1000.0, 0.8)
        assert (community.minutes, community.meters, community.target_share) == (None, 300.0, None)
        assert street.source == "§3.1"


@pytest.mark.parametrize(
    ("text", "fmt", "match"),
    [
        ("[[levels]]\nminutes = 5\n", "toml", "`level` is missing"),
        ('[[levels]]\nlevel = "community"\n', "toml", "minutes` and/or `meters"),
        ('[[levels]]\nlevel = "community"\nmeters = -3\n', "toml", r"\(0, 10000\]"),
        ('[[levels]]\nlevel = "c"\nmeters = 300\ntarget_share = 1.5\n', "toml", "target_share"),
        ('[[levels]]\nlevel = "c"\nmeter = 300\n', "toml", "unknown field"),
        (
            '[[levels]]\nlevel = "c"\nmeters = 3\n[[levels]]\nlevel = "c"\nmeters = 4\n',
            "toml",
            "more than once",
        ),
        ("levels = [[[", "toml", "not valid TOML"),
        ('{"levels": 3}', "json", "needs `levels`"),
        ("[1, 2]", "json", "must hold an object"),
        ("minutes,meters\n5,300\n", "csv", "header with `level`"),
        ("level,meters\ncommunity,abc\n", "csv", "number of meters"),
    ],
)
def test_bad_standard_files(text: str, fmt: str, match: str) -> None:
    with pytest.raises(InputError, match=match):
        standard_from_text(text, fmt=fmt)


def test_standard_file_extension(tmp_path: Path) -> None:
    p = tmp_path / "local.yaml"
    p.write_text("x", encoding="utf-8")
    with pytest.raises(InputError, match=r"\.toml, \.json or \.csv"):
        standard_from_file(p)


def test_standard_round_trips_and_scenario_reads_old_files() -> None:
    for s in (GB50180, TDT1062, standard_from_text(TOML, fmt="toml")):
        assert Standard.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    sc = Scenario(audit=AuditParams(thresholds_m=(300.0, 1000.0), standard=GB50180))
    back = Scenario.from_json(sc.to_json())
    assert back.audit.thresholds_m == (300.0, 1000.0)
    assert back.audit.standard == GB50180
    assert back == sc
    old = {"schema_version": 2, "name": "x", "audit": {"speed_kmh": 4.5, "thresholds_min": [5, 15]}}
    p = Scenario.from_dict(old).audit
    assert (p.thresholds_m, p.standard) == ((), None)
    v1 = Scenario.from_dict({"schema_version": 1, "speed_kmh": 4.0, "thresholds_min": [10]}).audit
    assert (v1.thresholds_m, v1.standard, v1.speed_kmh) == ((), None, 4.0)


def test_bad_center_levels_in_a_scenario_file() -> None:
    d = GB50180.to_dict() | {"center_levels": [["street"]]}
    with pytest.raises(InputError, match="pairs"):
        Standard.from_dict(d)
    d = GB50180.to_dict() | {"center_levels": [["grid", "block"]]}
    with pytest.raises(InputError, match="no walking limit"):
        Standard.from_dict(d)
    d = GB50180.to_dict() | {"center_levels": [["grid", "nope"]]}
    with pytest.raises(InputError, match="not one of its levels"):
        Standard.from_dict(d)


def test_params_refuse_both_level_minutes_and_a_standard() -> None:
    with pytest.raises(InputError, match="not both"):
        AuditParams(level_thresholds_min={"community": 5}, standard=GB50180)
    assert AuditParams(standard="gb50180").standard is GB50180  # type: ignore[arg-type]
    with pytest.raises(InputError, match="thresholds_m"):
        AuditParams(thresholds_m=(500.0, 300.0))
    with pytest.raises(InputError, match="thresholds_m"):
        AuditParams(thresholds_m=(20_000.0,))


# --- distance mode on the grid ------------------------------------------------------------


def test_distance_mode_exact_on_the_grid(grid_net: WalkNetwork) -> None:
    centers = grid_centers(grid_net, [(0.0, 0.0)], [None])
    # (150, 20): 20 m access + 150 m along row 0; (300, 50): 300 east + 50 north;
    # (400, 400): the far corner, 800 m
    demand = grid_demand(grid_net, [(150, 20), (300, 50), (400, 400)], [10, 20, 30])
    params = AuditParams(thresholds_min=(5.0,), thresholds_m=(200.0, 400.0, 1000.0))
    res = audit(grid_net, centers, demand, params, with_polygons=False)
    np.testing.assert_allclose(res.demand["meters_to_nearest"], [170, 350, 800], atol=0.05)
    np.testing.assert_allclose(
        res.demand["minutes_to_nearest"], np.array([170, 350, 800]) / M_PER_MIN, atol=1e-3
    )
    assert res.demand["covered_200m"].tolist() == [True, False, False]
    assert res.demand["covered_400m"].tolist() == [True, True, False]
    assert res.demand["covered_1000m"].tolist() == [True, True, True]
    assert res.demand["covered_5"].tolist() == [True, True, False]  # 375 m at 4.5 km/h
    expected = {"200m": 10.0, "400m": 30.0, "1000m": 60.0, "5": 30.0}
    assert {k: v.population_covered for k, v in res.coverage.items()} == expected
    assert res.coverage["400m"].share == pytest.approx(0.5)
    assert res.centers["population_within_400m"].tolist() == [30.0]
    row = res.coverage_by_level.set_index("level").loc["all"]
    assert row["share_400m"] == pytest.approx(0.5)
    # a distance is a distance: the speed does not move it
    slow = audit(
        grid_net,
        centers,
        demand,
        AuditParams(speed_kmh=2.0, thresholds_min=(5.0,), thresholds_m=(200.0, 400.0, 1000.0)),
        with_polygons=False,
    )
    assert {k: v.population_covered for k, v in slow.coverage.items() if k.endswith("m")} == {
        k: v for k, v in expected.items() if k.endswith("m")
    }


def test_distance_service_areas(grid_net: WalkNetwork) -> None:
    centers = grid_centers(grid_net, [(0.0, 0.0)], [None])
    demand = grid_demand(grid_net, [(150, 20)], [1])
    params = AuditParams(thresholds_min=(5.0,), thresholds_m=(150.0, 375.0))
    res = audit(grid_net, centers, demand, params)
    areas = res.distance_areas
    assert set(areas.columns) == {"center_id", "meters", "geometry"}
    union = areas[areas["center_id"] == "all"].set_index("meters").geometry
    assert list(union.index) == [150.0, 375.0]
    assert union.loc[150.0].within(union.loc[375.0].buffer(1e-6))
    # 375 m equals 5 minutes at 4.5 km/h: the same streets, the same polygon
    minute_area = res.service_areas.set_index("minutes").loc[5.0].geometry
    minute_area = minute_area.iloc[0] if hasattr(minute_area, "iloc") else minute_area
    assert union.loc[375.0].symmetric_difference(minute_area).area < 1.0
    unc = res.distance_uncovered
    assert list(unc.columns) == ["meters", "population", "area_m2", "geometry"]
    assert unc["meters"].tolist() == [150.0]  # the unit 170 m away is outside 150 m only
    assert unc["population"].tolist() == [1.0]
    assert res.distance_bands[["meters_from", "meters_to"]].values.tolist() == [
        [0.0, 150.0],
        [150.0, 375.0],
    ]


def test_distance_mode_matches_networkx(grid_net: WalkNetwork) -> None:
    rng = np.random.default_rng(15)
    xy = [tuple(p) for p in rng.uniform(-20, 420, size=(40, 2))]
    demand = grid_demand(grid_net, xy, list(rng.uniform(1, 50, size=40)))
    centers = grid_centers(grid_net, [(35.0, 210.0), (330.0, 95.0)], ["community", "street"])
    thresholds = (120.0, 250.0, 400.0)
    res = audit(
        grid_net, centers, demand, AuditParams(thresholds_m=thresholds), with_polygons=False
    )
    G = nx_graph(grid_net, snapped(centers), snapped(demand))
    _, nx_m, nx_who = nx_nearest(G, len(centers), len(demand), grid_net.n_nodes)
    np.testing.assert_allclose(res.demand["meters_to_nearest"], nx_m, atol=1e-6)
    for d in thresholds:
        clear = np.abs(nx_m - d) > 1e-6
        assert (res.demand[f"covered_{d:g}m"].to_numpy()[clear] == (nx_m <= d)[clear]).all()
    ids = np.asarray(centers["center_id"])[nx_who]
    assert (res.demand["nearest_center_id"].to_numpy() == ids).all()


# --- per-level judgement -------------------------------------------------------------------


def test_levels_are_never_mixed(grid_net: WalkNetwork) -> None:
    # a street center at (100, 0); a community center at (400, 400)
    centers = grid_centers(grid_net, [(100.0, 0.0), (400.0, 400.0)], ["street", "community"])
    # d0 at (120, 10): 10 + 20 = 30 m from the street center, 10 + 280 + 400 = 690 m from
    # the community center; d1 at (400, 300): 100 m from the community center
    demand = grid_demand(grid_net, [(120, 10), (400, 300)], [100, 50])
    res = audit(grid_net, centers, demand, AuditParams(standard=GB50180), with_polygons=False)
    d = res.demand
    assert d["covered_level_street"].tolist() == [True, True]  # 700 m from (100, 0) to (400, 300)
    # the street center beside d0 does not count for the community level
    assert d["covered_level_community"].tolist() == [False, True]
    assert d["covered_level_district"].tolist() == [False, False]  # no district centers
    t = res.standard_table.set_index("level")
    assert t.loc["street", "threshold_m"] == 1000.0
    assert t.loc["community", "threshold_m"] == 300.0
    assert t.loc["community", "population_covered"] == 50.0
    assert t.loc["community", "share"] == pytest.approx(50 / 150)
    assert t.loc["street", "share"] == pytest.approx(1.0)
    assert t.loc["district", "centers"] == 0
    assert list(t["circle"]) == ["15min", "15min", "5min"]
    # a standard with both limits needs both: 15 min at 2 km/h is 500 m < 700 m
    both = standard_from_text(
        '[[levels]]\nlevel = "street"\nminutes = 15\nmeters = 1000\n', fmt="toml"
    )
    slow = audit(
        grid_net,
        centers,
        demand,
        AuditParams(speed_kmh=2.0, standard=both),
        with_polygons=False,
    )
    assert slow.demand["covered_level_street"].tolist() == [True, False]


# --- compliance per area --------------------------------------------------------------------


def areas_frame(net: WalkNetwork) -> gpd.GeoDataFrame:
    west = shapely.box(GRID_E - 50, GRID_N - 50, GRID_E + 250, GRID_N + 450)
    east = shapely.box(GRID_E + 250, GRID_N - 50, GRID_E + 450, GRID_N + 450)
    empty = shapely.box(GRID_E + 1000, GRID_N, GRID_E + 1100, GRID_N + 100)
    return gpd.GeoDataFrame(
        {"district": ["west", "east", "empty"]}, geometry=[west, east, empty], crs=net.crs
    )


def compliance_case(grid_net: WalkNetwork) -> Any:
    centers = grid_centers(grid_net, [(100.0, 0.0), (400.0, 400.0)], ["street", "community"])
    # west: d0 (120, 10) pop 100 (street yes, community no), d2 (0, 400) pop 31.44
    # (street: 100 + 400 = 500 m yes; community: 400 m no); east: d1 (400, 300) pop 50
    # (both), d3 (300, 0) pop 26.2 (street 200 m yes; community 100 + 400 = 500 m no)
    demand = grid_demand(
        grid_net, [(120, 10), (400, 300), (0, 400), (300, 0)], [100, 50, 31.44, 26.2]
    )
    res = audit(grid_net, centers, demand, AuditParams(standard=GB50180), with_polygons=False)
    return res


def test_compliance_table_by_hand(grid_net: WalkNetwork) -> None:
    res = compliance_case(grid_net)
    params = ComplianceParams(target_share=0.6)
    table = compliance_table(res.demand, areas_frame(grid_net), GB50180, params)
    assert list(table.columns) == list(standards.COMPLIANCE_COLUMNS)
    t = table.set_index(["area", "level"])
    west, east = t.loc["west"], t.loc["east"]
    assert west.loc["street", "units"] == 2
    assert west.loc["street", "residents"] == pytest.approx(131.44)
    assert west.loc["street", "households"] == pytest.approx(131.44 / 2.62)
    assert west.loc["street", "share"] == pytest.approx(1.0)
    assert bool(west.loc["street", "passed"]) is True
    assert west.loc["community", "residents_covered"] == 0.0
    assert bool(west.loc["community", "passed"]) is False
    assert east.loc["community", "share"] == pytest.approx(50 / 76.2)  # 0.656 ≥ 0.6
    assert bool(east.loc["community", "passed"]) is True
    assert east.loc["community", "households"] == pytest.approx(76.2 / 2.62)
    assert east.loc["district", "share"] == 0.0
    assert t.loc[("empty", "street"), "residents"] == 0.0
    assert math.isnan(t.loc[("empty", "street"), "share"])
    assert t.loc[("empty", "street"), "passed"] is None
    assert table["floor_area_reachable_m2"].isna().all()  # no capacity columns
    assert (table["target_share"] == 0.6).all()
    assert (table["threshold_m"].tolist()) == [1000.0, 1000.0, 300.0] * 3
    # default target: the standard gives none, so DEFAULT_COMPLIANCE_TARGET
    dflt = compliance_table(res.demand, areas_frame(grid_net), GB50180)
    assert (dflt["target_share"] == standards.DEFAULT_COMPLIANCE_TARGET).all()


def test_compliance_floor_area_with_capacity_columns(grid_net: WalkNetwork) -> None:
    res = compliance_case(grid_net)
    demand = res.demand.assign(
        households=[40.0, 20.0, 12.0, 10.0], m2_per_100_households=[50.0, 10.0, 0.0, 25.0]
    )
    table = compliance_table(demand, areas_frame(grid_net), GB50180, ComplianceParams())
    t = table.set_index(["area", "level"])
    # west: reachable 50*40/100 + 0*12/100 = 20 m²; required 30 * 52 / 100 = 15.6 → deficit 0
    w = t.loc[("west", "street")]
    assert w["households"] == 52.0
    assert w["floor_area_reachable_m2"] == pytest.approx(20.0)
    assert w["floor_area_required_m2"] == pytest.approx(15.6)
    assert w["deficit_m2"] == 0.0
    # east: reachable 10*20/100 + 25*10/100 = 4.5 m²; required 30 * 30 / 100 = 9 → deficit 4.5
    e = t.loc[("east", "community")]
    assert e["floor_area_reachable_m2"] == pytest.approx(4.5)
    assert e["deficit_m2"] == pytest.approx(4.5)


def test_compliance_needs_the_standard_audit(grid_net: WalkNetwork) -> None:
    centers = grid_centers(grid_net, [(100.0, 0.0)], ["street"])
    demand = grid_demand(grid_net, [(120, 10)], [1])
    res = audit(grid_net, centers, demand, AuditParams(), with_polygons=False)
    with pytest.raises(InputError, match="covered_level_"):
        compliance_table(res.demand, areas_frame(grid_net), GB50180)


# --- the command line -------------------------------------------------------------------------


def _lonlat(x: float, y: float) -> tuple[float, float]:
    t = pyproj.Transformer.from_crs(32650, 4326, always_xy=True)
    lon, lat = t.transform(GRID_E + x, GRID_N + y)
    return float(lon), float(lat)


def test_cli_standard_distance_and_compliance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [("s1", "street", *_lonlat(100, 0)), ("c1", "community", *_lonlat(400, 400))]
    centers = tmp_path / "centers.csv"
    pd.DataFrame(rows, columns=["id", "level", "lon", "lat"]).to_csv(centers, index=False)
    std = tmp_path / "local.toml"
    std.write_text(TOML, encoding="utf-8")
    areas = areas_frame(walk_network(GRID, cache_dir=None)).rename(columns={"district": "name"})
    districts = tmp_path / "districts.geojson"
    areas.to_crs(4326).to_file(districts, driver="GeoJSON")
    out = tmp_path / "out"
    argv = ["audit", "--osm", str(GRID), "--centers", str(centers), "--id-column", "id"]
    argv += ["--level-column", "level", "--standard", str(std), "--distance-m", "100,300"]
    argv += ["--districts", str(districts), "--lang", "en", "--quiet", "--out", str(out)]
    argv += ["--cache-dir", str(tmp_path / "cache")]
    assert cli.main(argv) == 0, capsys.readouterr().err
    doc = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert {"100m", "300m", "5", "15"} <= set(doc["coverage"])
    assert doc["params"]["thresholds_m"] == [100.0, 300.0]
    assert doc["standard"]["name"] == "chengdu-local"
    assert [lv["level"] for lv in doc["standard"]["levels"]] == ["street", "community"]
    assert doc["standard"]["levels_not_judged"] == []
    assert doc["compliance"]["household_size"] == 2.62
    assert "note" in doc["compliance"]
    assert {r["area"] for r in doc["compliance"]["rows"]} == {"west", "east", "empty"}
    feats = json.loads((out / "demand.geojson").read_text(encoding="utf-8"))["features"]
    props = feats[0]["properties"]
    assert {"meters_to_nearest", "covered_100m", "covered_300m", "covered_level_street"} <= set(
        props
    )
    comp = pd.read_csv(out / "compliance.csv", encoding="utf-8-sig")
    assert len(comp) == 6
    assert set(comp["level"]) == {"street", "community"}
    assert (out / "standard.csv").exists()
    assert {"share_100m", "share_300m", "share_5"} <= set(doc["districts"][0])
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "Share within 300 m" in report
    unc = json.loads((out / "uncovered.geojson").read_text(encoding="utf-8"))["features"]
    assert {f["properties"].get("meters") for f in unc} >= {100.0}
    assert all(
        (f["properties"]["meters"] is None) != (f["properties"]["minutes"] is None) for f in unc
    )
    sa = json.loads((out / "service_areas.geojson").read_text(encoding="utf-8"))["features"]
    assert {f["properties"].get("meters") for f in sa} >= {100.0, 300.0}


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--standard", "gb99999"], "Unknown standard"),
        (["--distance-m", "300,200"], "increasing"),
        (["--distance-m", "0"], "meters must be in"),
        (["--standard", "gb50180", "--level-minutes", "community=5"], "not both"),
        (["--compliance-target", "1.5"], "share"),
    ],
)
def test_cli_refuses_bad_standards(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], match: str
) -> None:
    argv = ["audit", "--osm", str(GRID), "--quiet", "--out", str(tmp_path / "o"), *extra]
    argv += ["--cache-dir", str(tmp_path / "cache")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:")
    assert "\n" not in err
    assert "Traceback" not in err
    assert match in err


def test_cli_compliance_reports_the_parameters_its_rows_used(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --household-size / --capacity-standard the compliance section states those figures."""
    rows = [("s1", "street", *_lonlat(100, 0), 1000), ("c1", "community", *_lonlat(400, 400), 300)]
    centers = tmp_path / "centers.csv"
    cols = ["id", "level", "lon", "lat", "floor_area_m2"]
    pd.DataFrame(rows, columns=cols).to_csv(centers, index=False)
    std = tmp_path / "local.toml"
    std.write_text(TOML, encoding="utf-8")
    areas = areas_frame(walk_network(GRID, cache_dir=None)).rename(columns={"district": "name"})
    districts = tmp_path / "districts.geojson"
    areas.to_crs(4326).to_file(districts, driver="GeoJSON")
    out = tmp_path / "out"
    argv = ["audit", "--osm", str(GRID), "--centers", str(centers), "--id-column", "id"]
    argv += ["--level-column", "level", "--standard", str(std), "--districts", str(districts)]
    argv += ["--household-size", "2.0", "--capacity-standard", "40", "--quiet"]
    argv += ["--out", str(out), "--cache-dir", str(tmp_path / "cache")]
    assert cli.main(argv) == 0, capsys.readouterr().err
    doc = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert doc["capacity"]["household_size"] == 2.0
    assert doc["compliance"]["household_size"] == 2.0
    assert doc["compliance"]["m2_per_100_households"] == 40.0
    comp = pd.read_csv(out / "compliance.csv", encoding="utf-8-sig")
    assert comp["households"].to_numpy() == pytest.approx(comp["residents"].to_numpy() / 2.0)


def test_cli_refuses_a_bad_standard_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[levels]]\nlevel = "community"\n', encoding="utf-8")
    argv = ["audit", "--osm", str(GRID), "--standard", str(bad), "--out", str(tmp_path / "o")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "minutes` and/or `meters" in err
    assert "\n" not in err


def test_a_standard_replaces_the_stations_level_minutes() -> None:
    """The embedded stations bring street=15, community=5 min; with a standard the standard judges."""
    city = SimpleNamespace(centers_source={"level_minutes": {"street": 15.0, "community": 5.0}})
    plain = audit_params(Scenario(), city)  # type: ignore[arg-type]
    assert dict(plain.level_thresholds_min or {}) == {"street": 15.0, "community": 5.0}
    judged = audit_params(Scenario(audit=AuditParams(standard=GB50180)), city)  # type: ignore[arg-type]
    assert judged.level_thresholds_min is None
    assert judged.standard is GB50180
