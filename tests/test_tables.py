"""Tests for coverage.tables: planner-facing tables, on hand-made results with known answers."""

from __future__ import annotations

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
