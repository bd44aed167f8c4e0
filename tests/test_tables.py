"""Tests for coverage.tables: planner-facing tables, on hand-made results with known answers."""

from __future__ import annotations

import re
from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point

from coverage import tables
from coverage.audit import AuditParams, AuditResult, CoverageStats
from coverage.scenario import AddedStation, Scenario, ScenarioResult


def _audit(covered: dict[str, float], total: float, units: int = 4) -> AuditResult:
    """An audit of `total` residents with `covered[key]` of them within each threshold."""
    ts = tuple(float(k) for k in covered)
    empty = gpd.GeoDataFrame(geometry=[], crs="EPSG:32650")
    return AuditResult(
        params=AuditParams(thresholds_min=ts),
        demand=empty,
        centers=empty,
        coverage={
            k: CoverageStats(population_covered=v, share=v / total, units_covered=units)
            for k, v in covered.items()
        },
        coverage_by_level=pd.DataFrame(),
        service_areas=empty,
        uncovered=empty,
        population_total=total,
    )


def _result(
    scenario: Scenario, covered: dict[str, float], n_centers: int, siting: object = None
) -> ScenarioResult:
    centers = gpd.GeoDataFrame(
        {"center_id": [f"c{i}" for i in range(n_centers)]},
        geometry=[Point(442_000.0 + i, 4_427_000.0) for i in range(n_centers)],
        crs="EPSG:32650",
    )
    return ScenarioResult(
        scenario=scenario, centers=centers, audit=_audit(covered, 1000.0), siting=siting
    )


def test_minutes_curve_counts_residents_within_each_whole_minute() -> None:
    demand = pd.DataFrame(
        {
            "minutes_to_nearest": [0.0, 2.5, 5.0, np.nan, 31.0],
            "population": [10.0, 20.0, 30.0, 40.0, 0.0],
        }
    )
    curve = tables.minutes_curve(demand)
    assert list(curve.index) == list(range(31))
    assert curve.index.name == "minutes"
    assert list(curve.columns) == ["share"]
    share = curve["share"]
    assert share[0] == pytest.approx(0.1)
    assert share[2] == pytest.approx(0.1)  # 2.5 minutes is not within 2
    assert share[3] == pytest.approx(0.3)
    assert share[5] == pytest.approx(0.6)  # exactly 5 minutes is within 5
    assert share[30] == pytest.approx(0.6)  # the unreachable 40 never count
    assert (np.diff(share.to_numpy()) >= 0).all()


def test_minutes_curve_of_an_empty_area_is_zero() -> None:
    demand = pd.DataFrame({"minutes_to_nearest": [1.0, np.nan], "population": [0.0, 0.0]})
    curve = tables.minutes_curve(demand, max_minutes=5)
    assert list(curve.index) == [0, 1, 2, 3, 4, 5]
    assert (curve["share"] == 0.0).all()


def test_headline_numbers_per_threshold() -> None:
    res = _result(
        Scenario(audit=AuditParams(thresholds_min=(5.0, 15.0))), {"5": 250.0, "15": 700.0}, 3
    )
    numbers = tables.headline_numbers(res)
    assert numbers == {
        "share_5": 0.25,
        "uncovered_population_5": 750.0,
        "share_15": 0.7,
        "uncovered_population_15": 300.0,
        "centers": 3.0,
        "population": 1000.0,
    }
    assert list(numbers)[:4] == [
        "share_5",
        "uncovered_population_5",
        "share_15",
        "uncovered_population_15",
    ]


def test_headline_numbers_with_a_siting() -> None:
    siting = SimpleNamespace(share_after=0.9, sites=[1, 2])
    res = _result(Scenario(audit=AuditParams(thresholds_min=(7.5,))), {"7.5": 400.0}, 1, siting)
    numbers = tables.headline_numbers(res)
    assert numbers["share_7.5"] == 0.4
    assert numbers["uncovered_population_7.5"] == 600.0
    assert numbers["share_after"] == 0.9
    assert numbers["sites_proposed"] == 2.0


def test_compare_scenarios_measures_changes_from_the_first() -> None:
    base = _result(Scenario(name="baseline"), {"5": 200.0, "15": 600.0}, 2)
    more = Scenario(
        name="more",
        added=(AddedStation(lon=116.3, lat=39.9),),
        accepted_sites=(AddedStation(lon=116.31, lat=39.9),),
        closed=("c0",),
    )
    table = tables.compare_scenarios(
        {"baseline": base, "more": _result(more, {"5": 300.0, "15": 650.0}, 3)}
    )
    assert list(table.index) == ["baseline", "more"]
    assert table.index.name == "scenario"
    assert table.loc["more", "share_5_change"] == pytest.approx(0.1)
    assert table.loc["more", "share_15_change"] == pytest.approx(0.05)
    assert table.loc["baseline", "share_15_change"] == 0.0
    assert table.loc["more", "uncovered_population_15"] == 350.0
    assert table.loc["more", "stations_added"] == 2
    assert table.loc["more", "stations_closed"] == 1
    assert table.loc["baseline", "stations_added"] == 0
    assert "uncovered_population_5_change" not in table.columns


def test_sites_frame_is_wgs84_and_rounded() -> None:
    wgs = gpd.GeoSeries([Point(116.3512345678, 39.9987654321), Point(116.36, 40.0)], crs=4326)
    sites = gpd.GeoDataFrame(
        {
            "rank": [1.0, 2.0],
            "marginal_population": [120.4, 80.6],
            "cumulative_share": [0.5, 0.6],
            "candidate_id": ["a", "b"],
        },
        geometry=wgs.to_crs("EPSG:32650"),
    )
    df = tables.sites_frame(sites)
    assert list(df.columns) == list(tables.SITE_TABLE_COLUMNS)
    assert df["rank"].tolist() == [1, 2]
    assert df["rank"].dtype.kind == "i"
    assert df.loc[0, "lon"] == pytest.approx(116.351235, abs=1e-9)
    assert df.loc[0, "lat"] == pytest.approx(39.998765, abs=1e-9)
    assert df["marginal_population"].tolist() == [120.0, 81.0]
    assert df["cumulative_share"].tolist() == [0.5, 0.6]


def test_labels_name_every_column() -> None:
    assert tables.site_labels("zh") == {
        "rank": "排序",
        "lon": "经度",
        "lat": "纬度",
        "marginal_population": "新增覆盖人口",
        "cumulative_share": "累计覆盖率",
    }
    assert set(tables.site_labels("en")) == set(tables.SITE_TABLE_COLUMNS)
    assert tables.district_labels((5.0, 7.5), "zh") == {
        "district": "区划",
        "population": "人口",
        "units": "居住单元数",
        "population_covered_5": "5 分钟覆盖人口",
        "population_covered_7.5": "7.5 分钟覆盖人口",
        "share_5": "5 分钟覆盖率",
        "share_7.5": "7.5 分钟覆盖率",
    }
    assert tables.district_labels((15.0,), "en")["share_15"] == "Share within 15 min"


# --- issue 13: planner-ready display -------------------------------------------------------


def test_percent_people_and_share_change_read_as_a_planner_reads_them() -> None:
    assert tables.percent(0.2092) == "20.9%"
    assert tables.percent(1.0) == "100.0%"
    assert tables.percent(None) == tables.MISSING
    assert tables.percent(float("nan")) == tables.MISSING
    assert tables.people(1234.5678) == "1,235"
    assert tables.people(None) == tables.MISSING
    assert tables.share_change(0.0123, "zh") == "+1.2 个百分点"
    assert tables.share_change(-0.05, "en") == "-5.0 points"
    assert tables.share_change(0.0004, "zh") == "无变化"  # rounds to 0.0: no change
    assert tables.share_change(0.0, "en") == "no change"
    assert tables.method_label("greedy+swap", "en").startswith("fast heuristic")
    assert "HiGHS" in tables.method_label("exact", "zh")


def test_compare_view_is_text_labelled_and_has_no_none() -> None:
    base = _result(Scenario(name="baseline"), {"5": 200.0, "15": 600.0}, 2)
    sited = SimpleNamespace(share_after=0.7, sites=[1, 2])
    more = _result(Scenario(name="more"), {"5": 300.0, "15": 650.4}, 3, sited)
    view = tables.compare_view({"baseline": base, "more": more}, "zh")
    assert view.index.name == "方案"
    assert view.loc["more", "15 分钟覆盖率"] == "65.0%"
    assert view.loc["more", "15 分钟未覆盖人口"] == "350"  # 1000 - 650.4, whole residents
    assert view.loc["more", "5 分钟覆盖率变化"] == "+10.0 个百分点"
    assert view.loc["baseline", "5 分钟覆盖率变化"] == "无变化"
    assert view.loc["baseline", "优化后覆盖率"] == tables.MISSING  # not None
    assert view.loc["more", "优化后覆盖率"] == "70.0%"
    assert view.loc["more", "建议站点数"] == "2"
    en = tables.compare_view({"baseline": base, "more": more}, "en")
    assert "Share within 15 min" in en.columns
    assert not [c for c in en.columns if re.search(r"[\u3400-\u9fff]", str(c))]


def test_station_states_tell_existing_added_accepted_closed_apart() -> None:
    crs = "EPSG:32650"
    base = gpd.GeoDataFrame(
        {"center_id": ["c0", "c1"], "name": ["甲", None], "level": ["street", None]},
        geometry=[Point(442_000.0, 4_427_000.0), Point(442_500.0, 4_427_000.0)],
        crs=crs,
    )
    added = AddedStation(lon=116.32, lat=39.99, name="新站")
    accepted = AddedStation(lon=116.33, lat=39.99, name="采纳站点 1")
    pts = gpd.GeoSeries([Point(a.lon, a.lat) for a in (added, accepted)], crs=4326).to_crs(crs)
    now = gpd.GeoDataFrame(
        {
            "center_id": ["c0", "added-1", "added-2"],
            "name": ["甲", "新站", "采纳站点 1"],
            "level": ["street", None, None],
        },
        geometry=[base.geometry.iloc[0], pts.iloc[0], pts.iloc[1]],
        crs=crs,
    )
    s = Scenario(added=(added,), accepted_sites=(accepted,), closed=("c1",))
    res = ScenarioResult(scenario=s, centers=now, audit=_audit({"5": 1.0}, 10.0))
    states = tables.station_states(base, res)
    assert states["state"].tolist() == ["existing", "added", "accepted", "closed"]
    assert states["edit_index"].tolist() == [-1, 0, 0, -1]
    assert states.crs == base.crs
    view = tables.stations_view(states, "zh")
    assert view["state"].tolist() == ["现有", "新增", "采纳的建议站点", "已关闭（可恢复）"]
    assert view["name"].tolist() == ["甲", "新站", "采纳站点 1", "c1"]  # the id where no name
    assert view["level"].tolist() == ["街道", tables.MISSING, tables.MISSING, tables.MISSING]
    assert view.loc[1, "lon"] == pytest.approx(116.32, abs=1e-6)
    assert set(tables.station_labels("en")) == {"center_id", "name", "state", "level", "lon", "lat"}


def test_compliance_and_standard_views_are_labelled_and_formatted() -> None:
    """Issue 15 on screen: every column labelled in the page's language, shares in %,
    whole residents and households, pass/fail as words, missing values as a dash."""
    compliance = pd.DataFrame(
        {
            "area": ["东门", "西门"],
            "level": ["community", "street"],
            "circle": ["5min", "15min"],
            "threshold_min": [5.0, 15.0],
            "threshold_m": [300.0, np.nan],
            "units": [3, 4],
            "residents": [1234.6, 0.0],
            "households": [471.2, 0.0],
            "residents_covered": [1000.4, 0.0],
            "share": [0.81034, np.nan],
            "target_share": [0.9, 0.9],
            "passed": [False, None],
            "floor_area_reachable_m2": [120.0, np.nan],
            "floor_area_required_m2": [141.36, np.nan],
            "deficit_m2": [21.36, np.nan],
        }
    )
    zh = tables.compliance_view(compliance, "zh")
    assert list(zh.columns)[:3] == ["片区", "级别", "阈值（分钟）"]
    assert zh["级别"].tolist() == ["社区", "街道"]
    assert zh["人口"].tolist() == ["1,235", "0"]
    assert zh["覆盖率"].tolist() == ["81.0%", tables.MISSING]
    assert zh["是否达标"].tolist() == ["否", tables.MISSING]
    assert zh["阈值（米）"].tolist() == ["300", tables.MISSING]
    assert zh["面积缺口（㎡）"].tolist() == ["21.36", tables.MISSING]
    en = tables.compliance_view(compliance, "en")
    assert "Passed" in en.columns
    assert en["Passed"].tolist() == ["no", tables.MISSING]
    assert not [c for c in en.columns if re.search(r"[\u3400-\u9fff]", c)]
    standard = pd.DataFrame(
        {
            "level": ["community"],
            "circle": ["5min"],
            "name": ["5-minute life circle"],
            "threshold_min": [5.0],
            "threshold_m": [300.0],
            "source": ["GB 50180-2018 Table 3.0.4"],
            "centers": [69],
            "population_covered": [5000.7],
            "share": [0.5],
            "units_covered": [10],
        }
    )
    view = tables.standard_view(standard, "en")
    assert list(view.columns) == [
        "Level",
        "Life circle",
        "Threshold (min)",
        "Threshold (m)",
        "Centers of the level",
        "Residents covered",
        "Share covered",
        "Source",
    ]
    assert view.iloc[0].tolist() == [
        "Community",
        "5-minute life circle",
        "5",
        "300",
        "69",
        "5,001",
        "50.0%",
        "GB 50180-2018 Table 3.0.4",
    ]
