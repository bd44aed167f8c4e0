"""Tests for coverage.census: census counts per area spread over the residential land inside it.

Exact answers on hand-made features placed on the Chengdu network (known floor areas and
landuse areas); invariants on the embedded extract split into four made-up census areas
(``tests/data/census/chengdu_quadrants_wgs84.geojson``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pytest
import shapely

from coverage import cli
from coverage.census import (
    BY_RESIDENTIAL,
    BY_STREETS,
    CENSUS_AREA,
    KIND_CENSUS,
    NOT_PLACED,
    STREET_BUFFER_M,
    CensusFile,
    census_demand,
)
from coverage.coords import to_wgs84, wgs84_to_bd09, wgs84_to_gcj02
from coverage.demand import COLUMNS, PopulationModel
from coverage.errors import InputError
from coverage.inputs import CityInputs, FileInput
from coverage.standards import (
    Circle,
    ComplianceParams,
    Standard,
    census_area_table,
    census_labels,
    compliance_rows,
    unit_households,
)

QUADRANTS = Path(__file__).resolve().parent / "data" / "census" / "chengdu_quadrants_wgs84.geojson"
#: The four areas inside the extract and their counts (as in the file).
COUNTS = {"西南": 420000.0, "东南": 380000.0, "西北": 350000.0, "东北": 300000.0}
OUTSIDE = "龙泉驿（范围外）"
OUTSIDE_COUNT = 12345.0


# --- hand-made features: exact shares ----------------------------------------------------


def _extract_with(extract: Any, net: Any, features: list[tuple[str, Any, float]]) -> Any:
    """A copy of ``extract`` whose residential layer is ``features`` (kind, projected polygon, levels)."""
    rows = [
        {"osm_id": i + 1, "osm_type": "way", "kind": kind, "name": None, "building_levels": levels}
        for i, (kind, _, levels) in enumerate(features)
    ]
    geoms = gpd.GeoSeries([g for _, g, _ in features], crs=net.crs).to_crs(4326)
    residential = gpd.GeoDataFrame(pd.DataFrame(rows), geometry=geoms.values, crs=4326)
    return dataclasses.replace(extract, residential=residential)


def _areas(net: Any, polygons: dict[str, Any], counts: dict[str, float]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"name": list(polygons), "population": [counts[n] for n in polygons]},
        geometry=list(polygons.values()),
        crs=net.crs,
    ).to_crs(4326)


def _street_spot(net: Any, x0: float, y0: float) -> Any:
    """A 200 m box around the midpoint of a street edge more than 1 km from ``(x0, y0)``."""
    mid = shapely.line_interpolate_point(net.edge_geometry, 0.5, normalized=True)
    far = np.flatnonzero(shapely.distance(mid, shapely.Point(x0, y0)) > 1000)
    p = mid[far[0]]
    return shapely.buffer(p, 100.0, cap_style="square")


def _empty_spot(net: Any) -> Any:
    """A 10 m box inside the network's extent, more than 60 m from any street."""
    x0, y0, x1, y1 = net.extent_m(0.0)
    xs, ys = np.meshgrid(np.arange(x0, x1, 50.0), np.arange(y0, y1, 50.0))
    pts = shapely.points(xs.ravel(), ys.ravel())
    _, dist = net.edge_tree.query_nearest(pts, return_distance=True, all_matches=False)
    i = int(np.flatnonzero(dist > 60.0)[0])
    return shapely.buffer(pts[i], 5.0, cap_style="square")


@pytest.fixture(scope="module")
def handmade(chengdu_extract: Any, chengdu_net: Any) -> dict[str, Any]:
    net = chengdu_net
    x0 = float(np.median(net.node_x)) // 100 * 100
    y0 = float(np.median(net.node_y)) // 100 * 100
    east = net.extent_m(200.0)[2]
    building = shapely.box(x0 + 50, y0 + 50, x0 + 70, y0 + 70)  # 400 m², 6 storeys untagged
    tower = shapely.box(x0 + 100, y0 + 50, x0 + 110, y0 + 70)  # 200 m², 20 storeys
    landuse = shapely.box(x0 + 200, y0 + 50, x0 + 300, y0 + 150)  # 10,000 m², no building
    edge_land = shapely.box(east - 90, y0 + 10, east - 10, y0 + 90)  # 6,400 m², near the east edge
    features = [
        ("building", building, np.nan),
        ("building", tower, 20.0),
        ("landuse", landuse, np.nan),
        ("landuse", edge_land, np.nan),
    ]
    polygons = {
        "compound": shapely.box(x0, y0, x0 + 400, y0 + 200),
        "streets only": _street_spot(net, x0, y0),
        "empty": _empty_spot(net),
        "half out": shapely.box(east - 100, y0, east + 100, y0 + 100),
        "far away": shapely.box(x0 + 50_000, y0, x0 + 51_000, y0 + 1000),
    }
    counts = {"compound": 1300.0, "streets only": 90.0, "empty": 40.0}
    counts |= {"half out": 500.0, "far away": 700.0}
    model = PopulationModel(floor_area_per_person_m2=40.0, default_levels=6)
    ext = _extract_with(chengdu_extract, net, features)
    result = census_demand(ext, net, CensusFile(_areas(net, polygons, counts)), model=model)
    return {
        "result": result,
        "polygons": polygons,
        "counts": counts,
        "features": dict(zip(("building", "tower", "landuse", "edge"), features, strict=True)),
    }


def _people_in(demand: gpd.GeoDataFrame, geom: Any) -> float:
    inside = shapely.area(shapely.intersection(demand.geometry.values, geom))
    share = inside / shapely.area(demand.geometry.values)
    return float((demand["population"].to_numpy() * share).sum())


def test_floor_area_and_landuse_weights_are_exact(handmade: dict[str, Any]) -> None:
    demand = handmade["result"].demand
    f = handmade["features"]
    # Weights: 400 m² × 6 / 40 = 60; 200 m² × 20 / 40 = 100; 10,000 m² × 0.02 = 200.
    assert _people_in(demand, f["building"][1]) == pytest.approx(1300 * 60 / 360, rel=1e-9)
    assert _people_in(demand, f["tower"][1]) == pytest.approx(1300 * 100 / 360, rel=1e-9)
    assert _people_in(demand, f["landuse"][1]) == pytest.approx(1300 * 200 / 360, rel=1e-9)
    assert set(demand["kind"]) == {KIND_CENSUS}
    assert tuple(demand.columns) == (*COLUMNS, CENSUS_AREA)  # no households column in this census
    assert demand["demand_id"].is_unique


def test_every_area_total_is_kept(handmade: dict[str, Any]) -> None:
    result, counts = handmade["result"], handmade["counts"]
    placed = result.demand.groupby("name")["population"].sum()
    by_area = {row["name"]: row for row in result.report["by_area"]}
    unplaced = {row["name"]: row for row in result.report["unplaced_areas"]}
    for name, count in counts.items():
        got = float(placed.get(name, 0.0))
        assert by_area[name]["placed"] == pytest.approx(got, rel=1e-12, abs=1e-9)
        rest = unplaced[name]["unplaced"] if name in unplaced else 0.0
        assert got + rest == pytest.approx(count, rel=1e-12)
    assert placed["compound"] == pytest.approx(1300.0, rel=1e-12)
    assert placed["streets only"] == pytest.approx(90.0, rel=1e-12)
    assert placed["half out"] == pytest.approx(
        250.0, rel=1e-9
    )  # half its land is beyond the extract
    report = result.report
    assert report["population"] == pytest.approx(sum(counts.values()))
    assert report["placed"] + report["unplaced"] == pytest.approx(report["population"], rel=1e-12)
    assert report["placed"] == pytest.approx(float(result.demand["population"].sum()), rel=1e-12)


def test_no_demand_outside_residential_features_or_its_area(handmade: dict[str, Any]) -> None:
    demand, polygons = handmade["result"].demand, handmade["polygons"]
    residential = shapely.union_all([g for _, g, _ in handmade["features"].values()])
    for name in ("compound", "half out"):
        units = demand[demand["name"] == name].geometry.values
        assert units.size > 0
        outside = shapely.area(shapely.difference(units, residential))
        assert outside.sum() <= 1e-6 * shapely.area(units).sum()
        beyond = shapely.area(shapely.difference(units, polygons[name]))
        assert beyond.sum() <= 1e-6 * shapely.area(units).sum()


def test_area_without_residential_land_goes_to_its_streets(
    handmade: dict[str, Any], chengdu_net: Any
) -> None:
    result = handmade["result"]
    methods = {row["name"]: row["method"] for row in result.report["by_area"]}
    assert methods["compound"] == BY_RESIDENTIAL
    assert methods["streets only"] == BY_STREETS
    units = result.demand[result.demand["name"] == "streets only"].geometry.values
    near = chengdu_net.edge_tree.query(handmade["polygons"]["streets only"], predicate="intersects")
    band = shapely.buffer(
        shapely.union_all(chengdu_net.edge_geometry[near]), STREET_BUFFER_M + 0.01
    )
    assert shapely.area(shapely.difference(units, band)).sum() <= 1e-6
    assert shapely.area(units).sum() < 0.99 * handmade["polygons"]["streets only"].area


def test_unplaced_areas_are_reported_with_reasons(
    handmade: dict[str, Any], chengdu_extract: Any, chengdu_net: Any, caplog: Any
) -> None:
    report = handmade["result"].report
    unplaced = {row["name"]: row for row in report["unplaced_areas"]}
    assert set(unplaced) == {"empty", "half out", "far away"}
    assert unplaced["far away"]["reason"] == "outside the OSM extract"
    assert unplaced["far away"]["unplaced"] == pytest.approx(700.0)
    assert unplaced["empty"]["reason"].startswith("no residential land or streets")
    assert unplaced["empty"]["unplaced"] == pytest.approx(40.0)
    assert unplaced["half out"]["reason"] == "partly outside the OSM extract"
    assert unplaced["half out"]["unplaced"] == pytest.approx(250.0, rel=1e-9)
    assert report["unplaced"] == pytest.approx(700.0 + 40.0 + 250.0, rel=1e-9)
    methods = {row["name"]: row["method"] for row in report["by_area"]}
    assert methods["empty"] == methods["far away"] == NOT_PLACED
    # The same run logs one warning per unplaced area.
    areas = _areas(chengdu_net, {"far away": handmade["polygons"]["far away"]}, {"far away": 700.0})
    areas = pd.concat(
        [areas, _areas(chengdu_net, {"c": handmade["polygons"]["compound"]}, {"c": 9.0})]
    )
    with caplog.at_level(logging.WARNING, logger="coverage.census"):
        census_demand(chengdu_extract, chengdu_net, CensusFile(gpd.GeoDataFrame(areas, crs=4326)))
    assert any("far away" in r.getMessage() and "700" in r.getMessage() for r in caplog.records)


def test_nothing_placed_is_refused(chengdu_extract: Any, chengdu_net: Any) -> None:
    x, y = float(np.median(chengdu_net.node_x)), float(np.median(chengdu_net.node_y))
    far = _areas(chengdu_net, {"far": shapely.box(x + 9e4, y, x + 9.1e4, y + 1e3)}, {"far": 5.0})
    with pytest.raises(InputError, match="No census area"):
        census_demand(chengdu_extract, chengdu_net, CensusFile(far))


def test_census_column_detection_and_errors(chengdu_extract: Any, chengdu_net: Any) -> None:
    gdf = gpd.read_file(QUADRANTS)
    with pytest.raises(InputError, match="no census population column 'pop2020'"):
        census_demand(chengdu_extract, chengdu_net, CensusFile(gdf, column="pop2020"))
    with pytest.raises(InputError, match="no group column '街道'"):
        census_demand(chengdu_extract, chengdu_net, CensusFile(gdf, group_columns=("街道",)))
    points = gdf.set_geometry(shapely.point_on_surface(gdf.geometry.values))
    with pytest.raises(InputError, match="must be polygons"):
        census_demand(chengdu_extract, chengdu_net, CensusFile(points))
    bad = gdf.assign(常住人口=["many", 1, 2, 3, 4])
    with pytest.raises(InputError, match="numbers"):
        census_demand(chengdu_extract, chengdu_net, CensusFile(bad))


# --- the embedded extract with four made-up areas ----------------------------------------


@pytest.fixture(scope="module")
def quadrants(chengdu_extract: Any, chengdu_net: Any) -> Any:
    spec = CensusFile(QUADRANTS, group_columns=("区县",))
    return census_demand(chengdu_extract, chengdu_net, spec)


def test_quadrant_totals_are_kept_and_passed_through(quadrants: Any) -> None:
    placed = quadrants.demand.groupby("name")["population"].sum()
    assert set(placed.index) == set(COUNTS)
    for name, count in COUNTS.items():
        assert placed[name] == pytest.approx(count, rel=1e-9)
    report = quadrants.report
    assert report["column"] == "常住人口"
    assert report["areas"] == 5
    assert report["unplaced_areas"] == [
        {
            "name": OUTSIDE,
            "population": OUTSIDE_COUNT,
            "unplaced": OUTSIDE_COUNT,
            "reason": "outside the OSM extract",
        }
    ]
    rows = {row["name"]: row for row in report["by_area"]}
    assert rows["西南"]["区县"] == "青羊区"
    assert rows["西南"]["households"] == 161538.0
    assert all(rows[n]["method"] == BY_RESIDENTIAL for n in COUNTS)
    assert set(quadrants.demand.geom_type) == {"Polygon"}


def test_quadrant_demand_lies_in_residential_features(
    quadrants: Any, chengdu_extract: Any, chengdu_net: Any
) -> None:
    res = chengdu_extract.residential.to_crs(chengdu_net.crs)
    land = shapely.union_all(shapely.make_valid(res.geometry.values))
    units = quadrants.demand.geometry.values
    outside = shapely.area(shapely.difference(units, land))
    assert outside.sum() <= 1e-6 * shapely.area(units).sum()
    # ... and far less land than the areas themselves: no uniform spread.
    areas = gpd.read_file(QUADRANTS).to_crs(chengdu_net.crs).geometry.values[:4]
    assert shapely.area(units).sum() < 0.2 * shapely.area(areas).sum()


def test_gcj02_areas_give_the_same_demand_as_converted_wgs84(
    chengdu_extract: Any, chengdu_net: Any, tmp_path: Path
) -> None:
    wgs = gpd.read_file(QUADRANTS)
    gcj = wgs.set_geometry(
        shapely.transform(
            np.asarray(wgs.geometry.values, dtype=object),
            lambda c: np.column_stack(wgs84_to_gcj02(c[:, 0], c[:, 1])),
        )
    )
    gcj_file = tmp_path / "census_gcj02.geojson"
    gcj.to_file(gcj_file, driver="GeoJSON")
    # The reference converts the GCJ-02 coordinates back here, independently of the reader.
    back = gcj.set_geometry(
        shapely.transform(
            np.asarray(gcj.geometry.values, dtype=object),
            lambda c: np.column_stack(to_wgs84(c[:, 0], c[:, 1], "gcj02")),
        )
    )
    wgs_file = tmp_path / "census_wgs84.geojson"
    back.to_file(wgs_file, driver="GeoJSON")
    a = census_demand(chengdu_extract, chengdu_net, CensusFile(gcj_file, crs="gcj02")).demand
    b = census_demand(chengdu_extract, chengdu_net, CensusFile(wgs_file)).demand
    assert list(a["demand_id"]) == list(b["demand_id"])
    np.testing.assert_allclose(a["population"], b["population"], rtol=1e-9, atol=1e-9)
    # Read as WGS-84, the GCJ-02 file puts people elsewhere: the test can tell.
    c = census_demand(chengdu_extract, chengdu_net, CensusFile(gcj_file)).demand
    per_c = c.groupby("name")["population"].sum()
    per_b = b.groupby("name")["population"].sum()
    assert len(c) != len(b) or not np.allclose(c["population"], b["population"])
    assert per_b.to_dict() == pytest.approx(COUNTS, rel=1e-9)
    assert set(per_c.index) <= set(COUNTS)


# --- the pipeline and the command line -----------------------------------------------------


def test_census_and_population_file_together_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not both"):
        CityInputs(population=FileInput(QUADRANTS), census=FileInput(QUADRANTS))


@pytest.mark.slow
def test_cli_audit_with_census(cache_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = ["audit", "--census", str(QUADRANTS), "--census-group-columns", "区县"]
    argv += ["--no-polygons", "--cache-dir", str(cache_dir), "--quiet", "--out", str(out)]
    assert cli.main(argv) == 0
    doc = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    total = sum(COUNTS.values())
    assert doc["demand"]["population"] == pytest.approx(total, rel=1e-9)
    assert doc["params"]["population_model"] == {
        "source": "census",
        "file": QUADRANTS.name,
        "column": "常住人口",
    }
    census = doc["census"]
    assert census["placed"] == pytest.approx(total, rel=1e-9)
    assert census["unplaced"] == pytest.approx(OUTSIDE_COUNT, rel=1e-9)
    assert [row["name"] for row in census["unplaced_areas"]] == [OUTSIDE]
    assert doc["centers_source"]["kind"] == "embedded"
    demand = gpd.read_file(out / "demand.geojson")
    assert demand["demand_id"].str.startswith("c").all()
    assert float(demand["population"].sum()) == pytest.approx(total, rel=1e-9)
    # Coverage shares are of the census total.
    for block in doc["coverage"].values():
        assert block["share"] == pytest.approx(block["population_covered"] / total, rel=1e-9)


def _converted(gdf: gpd.GeoDataFrame, fn: Any) -> gpd.GeoDataFrame:
    return gdf.set_geometry(
        shapely.transform(
            np.asarray(gdf.geometry.values, dtype=object),
            lambda c: np.column_stack(fn(c[:, 0], c[:, 1])),
        )
    )


@pytest.mark.slow
def test_batch_bd09_districts_and_census_equal_the_converted_wgs84_run(
    cache_dir: Path, tmp_path: Path
) -> None:
    """``batch --crs bd09`` (districts and census in BD-09) = the same files converted to WGS-84."""
    wgs = gpd.read_file(QUADRANTS)
    districts = wgs.iloc[:4][["名称", "geometry"]].rename(columns={"名称": "name"})
    bd_census = _converted(wgs, wgs84_to_bd09)
    bd_districts = _converted(districts, wgs84_to_bd09)
    files = {
        "bd09": (bd_census, bd_districts),
        "wgs84": (  # converted back here, independently of the readers
            _converted(bd_census, lambda x, y: to_wgs84(x, y, "bd09")),
            _converted(bd_districts, lambda x, y: to_wgs84(x, y, "bd09")),
        ),
    }
    tables = {}
    for crs, (census, dist) in files.items():
        census.to_file(tmp_path / f"census_{crs}.geojson", driver="GeoJSON")
        dist.to_file(tmp_path / f"districts_{crs}.geojson", driver="GeoJSON")
        out = tmp_path / f"out_{crs}"
        argv = ["batch", "--crs", crs, "--census", str(tmp_path / f"census_{crs}.geojson")]
        argv += ["--districts", str(tmp_path / f"districts_{crs}.geojson")]
        argv += ["--no-polygons", "--no-report", "--cache-dir", str(cache_dir), "--quiet"]
        assert cli.main([*argv, "--out", str(out)]) == 0
        tables[crs] = pd.read_csv(out / "summary.csv", encoding="utf-8-sig").set_index("district")
        doc = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        assert doc["census"]["placed"] == pytest.approx(sum(COUNTS.values()), rel=1e-9)
        assert doc["centers_source"]["kind"] == "embedded"  # the stations stay GCJ-02
    bd, ref = tables["bd09"], tables["wgs84"]
    assert set(bd.index) == set(COUNTS)
    for name, count in COUNTS.items():
        # Each district is its own census area: its residents are the area's count.
        assert bd.loc[name, "population"] == pytest.approx(count, rel=1e-9)
        for column in ("population", "share_5", "share_15", "demand_units", "centers"):
            assert bd.loc[name, column] == pytest.approx(ref.loc[name, column], rel=1e-9, abs=1e-9)
    assert (bd["status"] == "ok").all()


def test_cli_refuses_census_with_population(tmp_path: Path, capsys: Any) -> None:
    argv = ["audit", "--census", str(QUADRANTS), "--population", str(QUADRANTS)]
    assert cli.main([*argv, "--cache-dir", str(tmp_path / "c"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "not both" in err[0]
    assert not (tmp_path / "o").exists()


def test_a_bad_census_column_fails_before_the_slow_steps(tmp_path: Path, capsys: Any) -> None:
    """The census file is checked with the other inputs, before the OSM file is read."""
    from coverage.inputs import check_inputs

    inputs = CityInputs(census=FileInput(QUADRANTS), census_column="人口2020", cache_dir=None)
    with pytest.raises(InputError, match="no census population column '人口2020'"):
        check_inputs(inputs)
    argv = ["audit", "--census", str(QUADRANTS), "--census-column", "人口2020"]
    assert cli.main([*argv, "--cache-dir", str(tmp_path / "c"), "--out", str(tmp_path / "o")]) == 2
    assert "人口2020" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()  # the network was never built


# --- households, groups and coverage per census area (issues 14/15 follow-up) ---------------


@pytest.fixture(scope="module")
def with_households(chengdu_extract: Any, chengdu_net: Any) -> dict[str, Any]:
    """Two areas on hand-made land: 'compound' (1,300 people, 500 households, 300 aged 60+), 'half out'."""
    net = chengdu_net
    x0 = float(np.median(net.node_x)) // 100 * 100
    y0 = float(np.median(net.node_y)) // 100 * 100
    east = net.extent_m(200.0)[2]
    building = shapely.box(x0 + 50, y0 + 50, x0 + 70, y0 + 70)  # weight 60
    tower = shapely.box(x0 + 100, y0 + 50, x0 + 110, y0 + 70)  # weight 100
    landuse = shapely.box(x0 + 200, y0 + 50, x0 + 300, y0 + 150)  # weight 200
    edge_land = shapely.box(east - 90, y0 + 10, east - 10, y0 + 90)
    features = [
        ("building", building, np.nan),
        ("building", tower, 20.0),
        ("landuse", landuse, np.nan),
        ("landuse", edge_land, np.nan),
    ]
    polygons = {
        "compound": shapely.box(x0, y0, x0 + 400, y0 + 200),
        "half out": shapely.box(east - 100, y0, east + 100, y0 + 100),
    }
    gdf = _areas(net, polygons, {"compound": 1300.0, "half out": 500.0})
    gdf["户数"] = [500.0, np.nan]  # the second area has no household count
    gdf["60岁及以上"] = [300.0, 100.0]
    model = PopulationModel(floor_area_per_person_m2=40.0, default_levels=6)
    ext = _extract_with(chengdu_extract, net, features)
    spec = CensusFile(gdf, population_groups=("60岁及以上",))
    result = census_demand(ext, net, spec, model=model)
    return {"result": result, "features": features, "net": net}


def test_census_households_and_groups_are_spread_like_residents(
    with_households: dict[str, Any],
) -> None:
    demand = with_households["result"].demand
    assert {"households", "population_60岁及以上", CENSUS_AREA} <= set(demand.columns)
    compound = demand[demand[CENSUS_AREA] == 1]
    # 500 households and 300 older residents over 1,300 residents: each unit its share of them
    pop = compound["population"].to_numpy()
    assert compound["households"].to_numpy() == pytest.approx(pop * 500 / 1300, rel=1e-12)
    assert compound["population_60岁及以上"].to_numpy() == pytest.approx(
        pop * 300 / 1300, rel=1e-12
    )
    assert float(compound["households"].sum()) == pytest.approx(500.0, rel=1e-12)
    assert float(compound["population_60岁及以上"].sum()) == pytest.approx(300.0, rel=1e-12)
    half = demand[demand[CENSUS_AREA] == 2]
    # half of its land is beyond the extract: half of its group is placed; no household count
    assert float(half["population_60岁及以上"].sum()) == pytest.approx(50.0, rel=1e-9)
    assert half["households"].isna().all()
    rows = {r["name"]: r for r in with_households["result"].report["by_area"]}
    assert rows["compound"]["60岁及以上"] == 300.0
    assert rows["compound"]["households"] == 500.0


def test_census_household_counts_win_over_household_size(with_households: dict[str, Any]) -> None:
    demand = with_households["result"].demand
    h = unit_households(demand, 2.5)
    compound = demand[CENSUS_AREA].to_numpy() == 1
    assert float(h[compound].sum()) == pytest.approx(500.0, rel=1e-12)
    # no household count for 'half out': its 250 placed residents / 2.5 persons
    assert float(h[~compound].sum()) == pytest.approx(250.0 / 2.5, rel=1e-9)


def test_group_larger_than_the_total_is_refused(chengdu_extract: Any, chengdu_net: Any) -> None:
    gdf = gpd.read_file(QUADRANTS)
    gdf["60岁及以上"] = gdf["常住人口"] + 1
    with pytest.raises(InputError, match="part of the total"):
        census_demand(
            chengdu_extract, chengdu_net, CensusFile(gdf, population_groups=("60岁及以上",))
        )


def test_coverage_and_compliance_per_census_area_by_hand(with_households: dict[str, Any]) -> None:
    """The tables on a hand-made audit: covered flags set by hand, numbers computed by hand."""
    result = with_households["result"]
    demand = result.demand.copy()
    compound = demand[CENSUS_AREA].to_numpy() == 1
    landuse = with_households["features"][2][1]  # weight 200 of the compound's 360
    big = shapely.within(demand.geometry.representative_point().to_numpy(), landuse)
    demand["covered_5"] = compound & big
    demand["covered_300m"] = compound
    demand["covered_level_community"] = compound & ~big
    limits = [("5", "covered_5"), ("300m", "covered_300m")]
    params = ComplianceParams(household_size=2.5, target_share=0.5)
    table = census_area_table(demand, result.report["by_area"], limits, params)
    one, two = table.iloc[0], table.iloc[1]
    assert (one["census_area"], one["area"], one["units"]) == (1, "compound", int(compound.sum()))
    assert one["residents"] == pytest.approx(1300.0, rel=1e-12)
    assert one["households"] == pytest.approx(500.0, rel=1e-12)
    assert one["population_covered_5"] == pytest.approx(1300 * 200 / 360, rel=1e-9)
    assert one["share_5"] == pytest.approx(200 / 360, rel=1e-9)
    assert one["share_300m"] == pytest.approx(1.0, rel=1e-12)
    assert two["population"] == 500.0
    assert two["placed"] == pytest.approx(250.0, rel=1e-9)
    assert two["households"] == pytest.approx(100.0, rel=1e-9)  # 250 / 2.5
    assert two["share_5"] == 0.0
    assert math.isnan(one["floor_area_reachable_m2"])  # no capacity audit
    standard = Standard(
        key="local",
        title="local",
        source="test",
        circles=(Circle(key="community", name="c", meters=300.0),),
        center_levels=(("community", "community"),),
    )
    rows = compliance_rows(demand, census_labels(demand), [1, 2], standard, params)
    assert list(rows["residents_covered"]) == pytest.approx([1300 * 160 / 360, 0.0], rel=1e-9)
    assert list(rows["share"]) == pytest.approx([160 / 360, 0.0], rel=1e-9)
    assert list(rows["passed"]) == [False, False]  # 0.444 < 0.5
    assert list(rows["households"]) == pytest.approx([500.0, 100.0], rel=1e-9)
    # with the capacity columns: Σ m² per 100 households × households / 100, and the deficit
    demand["m2_per_100_households"] = np.where(compound, 40.0, 10.0)
    table = census_area_table(demand, result.report["by_area"], limits, params)
    assert table["floor_area_reachable_m2"].tolist() == pytest.approx([200.0, 10.0], rel=1e-9)
    assert table["floor_area_required_m2"].tolist() == pytest.approx([150.0, 30.0], rel=1e-9)
    assert table["deficit_m2"].tolist() == pytest.approx([0.0, 20.0], rel=1e-9)


@pytest.mark.slow
def test_cli_census_areas_tables_and_demand_columns(cache_dir: Path, tmp_path: Path) -> None:
    """With a census and a standard: census_areas.csv, census.compliance, households in demand.geojson."""
    gdf = gpd.read_file(QUADRANTS)
    gdf["60岁及以上"] = (gdf["常住人口"] * 0.2).round()
    census = tmp_path / "census.geojson"
    gdf.to_file(census, driver="GeoJSON")
    out = tmp_path / "out"
    argv = ["audit", "--census", str(census), "--standard", "gb50180"]
    argv += ["--population-groups", "60岁及以上", "--no-polygons"]
    argv += ["--cache-dir", str(cache_dir), "--quiet", "--out", str(out)]
    assert cli.main(argv) == 0
    doc = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert doc["schema_version"] == 2
    contract = (Path(__file__).resolve().parents[1] / "docs" / "ARCHITECTURE.md").read_text(
        encoding="utf-8"
    )
    for key in (*doc["census"], *doc["census"]["by_area"][0]):
        if key not in ("户数", "60岁及以上"):  # the file's own columns, passed through
            assert f"`{key}`" in contract, key
    table = pd.read_csv(out / "census_areas.csv", encoding="utf-8-sig")
    assert list(table["area"]) == [*COUNTS, OUTSIDE]
    demand = gpd.read_file(out / "demand.geojson")
    for i, (name, count) in enumerate(COUNTS.items(), start=1):
        row = table.iloc[i - 1]
        assert row["residents"] == pytest.approx(count, rel=1e-9)
        # census households win: the file's count, not residents / 2.62
        hh = float(gdf.loc[gdf["名称"] == name, "户数"].iloc[0])
        assert row["households"] == pytest.approx(hh, rel=1e-9)
        mine = demand["demand_id"].str.startswith(f"c{i}-")
        assert float(demand.loc[mine, "households"].sum()) == pytest.approx(hh, rel=1e-9)
        assert float(demand.loc[mine, "population_60岁及以上"].sum()) == pytest.approx(
            round(count * 0.2), rel=1e-9
        )
        for key in ("5", "15"):
            covered = float(demand.loc[mine & demand[f"covered_{key}"], "population"].sum())
            assert row[f"population_covered_{key}"] == pytest.approx(covered, rel=1e-9, abs=1e-6)
            by_area = doc["census"]["by_area"][i - 1]
            assert by_area["coverage"][key]["share"] == pytest.approx(covered / count, rel=1e-9)
    assert table.iloc[-1]["units"] == 0  # the area outside the extract: reported, never dropped
    rows = pd.read_csv(out / "census_compliance.csv", encoding="utf-8-sig")
    assert set(rows["level"]) == {"district", "street", "community"}
    assert len(rows) == 3 * len(table)
    assert doc["census"]["compliance"]["areas"] == "census"
    assert doc["params"]["population_model"]["groups"] == ["60岁及以上"]
    # the census group is audited like any group: older residents walk slower (3.3 km/h)
    older = doc["groups"]["60岁及以上"]
    assert older["speed_kmh"] == 3.3
    assert older["population"] == pytest.approx(sum(round(c * 0.2) for c in COUNTS.values()))
    book = openpyxl.load_workbook(out / "tables.xlsx", read_only=True)
    sheet = list(book["按普查区"].iter_rows(values_only=True))
    header = list(sheet[0])
    assert header[:5] == ["普查区编号", "普查区", "人口落位方式", "普查人口", "已落位人口"]
    assert "15 分钟覆盖率" in header
    first = dict(zip(header, sheet[1], strict=True))
    assert first["普查区"] == "西南"
    assert first["户数"] == pytest.approx(161538.0, rel=1e-9)
    assert len(sheet) == 1 + len(table)
    first = rows[(rows["census_area"] == 1) & (rows["level"] == "community")].iloc[0]
    mine = demand["demand_id"].str.startswith("c1-")
    covered = float(demand.loc[mine & demand["covered_level_community"], "population"].sum())
    assert first["residents_covered"] == pytest.approx(covered, rel=1e-9, abs=1e-6)
