"""Demand units: contract, conservation when splitting, no double counting, files."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely
import shapely.affinity

from coverage import demand
from coverage.coords import wgs84_to_gcj02
from coverage.demand import (
    COLUMNS,
    PopulationFile,
    PopulationModel,
    _grouped_unions,
    _polygon_parts,
    _without_far_holes,
    demand_units,
    population_from_raster,
    split_into_cells,
    valid_geometries,
)
from coverage.errors import InputError

DATA = Path(__file__).resolve().parent / "data" / "userfiles"
FILE_TOTAL = 1200 + 800.5 + 150


def _check_contract(gdf, net):  # type: ignore[no-untyped-def]
    assert tuple(gdf.columns) == COLUMNS
    assert isinstance(gdf.index, pd.RangeIndex)
    assert pyproj.CRS(gdf.crs).equals(pyproj.CRS(net.crs))
    assert gdf["demand_id"].is_unique
    assert gdf["demand_id"].map(type).eq(str).all()
    assert gdf["population"].dtype == np.float64
    assert (gdf["population"] > 0).all()
    assert (gdf["snap_distance_m"] >= 0).all()
    assert gdf.geometry.is_valid.all()


@pytest.mark.parametrize("city", ["haidian", "chengdu"])
def test_osm_demand_contract(city, request):  # type: ignore[no-untyped-def]
    extract = request.getfixturevalue(f"{city}_extract")
    net = request.getfixturevalue(f"{city}_net")
    before = extract.residential.copy()
    demand = demand_units(extract, net)
    _check_contract(demand, net)
    pd.testing.assert_frame_equal(extract.residential, before)
    assert set(demand["kind"]) <= {"building", "landuse"}
    assert set(demand.geom_type) == {"Polygon"}
    # Cells: no piece is larger than a 100 m cell unless it came unsplit.
    w = demand.bounds["maxx"] - demand.bounds["minx"]
    h = demand.bounds["maxy"] - demand.bounds["miny"]
    assert (np.maximum(w, h) <= 100.0 + 1e-6).all()


def test_split_into_cells_conserves_area_and_population(chengdu_extract, chengdu_net):  # type: ignore[no-untyped-def]
    landuse = chengdu_extract.residential.query("kind == 'landuse'").to_crs(chengdu_net.crs)
    geoms = shapely.make_valid(landuse.geometry.values)
    parent, pieces = split_into_cells(geoms, 100.0)
    assert pieces.size > geoms.size
    area = np.bincount(parent, weights=shapely.area(pieces), minlength=geoms.size)
    np.testing.assert_allclose(area, shapely.area(geoms), rtol=1e-6)
    assert (shapely.get_type_id(pieces) == shapely.GeometryType.POLYGON).all()


def _square(x: float, y: float, side: float) -> shapely.Polygon:
    return shapely.box(x, y, x + side, y + side)


def _extract_with(extract, net, features):  # type: ignore[no-untyped-def]
    """A copy of ``extract`` whose residential layer is ``features`` (projected)."""
    rows = [
        {"osm_id": i + 1, "osm_type": "way", "kind": kind, "name": None, "building_levels": levels}
        for i, (kind, _, levels) in enumerate(features)
    ]
    geoms = gpd.GeoSeries([g for _, g, _ in features], crs=net.crs).to_crs(4326)
    residential = gpd.GeoDataFrame(pd.DataFrame(rows), geometry=geoms.values, crs=4326)
    return dataclasses.replace(extract, residential=residential)


def _origin(net):  # type: ignore[no-untyped-def]
    # Snap the test site to the 100 m grid so the landuse square spans whole cells.
    x0 = float(np.median(net.node_x)) // 100 * 100
    y0 = float(np.median(net.node_y)) // 100 * 100
    return x0, y0


def test_no_double_counting_partly_mapped_compound(chengdu_extract, chengdu_net):  # type: ignore[no-untyped-def]
    x0, y0 = _origin(chengdu_net)
    model = PopulationModel(
        floor_area_per_person_m2=40.0, default_levels=6, landuse_density_per_km2=20_000
    )
    landuse = _square(x0, y0, 200.0)  # 0.04 km² → 800 people
    building = _square(x0 + 50, y0 + 50, 20.0)  # 400 m² × 6 / 40 → 60 people
    ext = _extract_with(
        chengdu_extract, chengdu_net, [("landuse", landuse, np.nan), ("building", building, np.nan)]
    )
    demand = demand_units(ext, chengdu_net, model=model)
    _check_contract(demand, chengdu_net)
    by_kind = demand.groupby("kind")["population"].sum()
    assert by_kind["building"] == pytest.approx(60.0)
    assert by_kind["landuse"] == pytest.approx(740.0)
    assert demand["population"].sum() == pytest.approx(800.0, rel=1e-9)
    # Landuse cells exclude the building footprint: no area counted twice.
    land = demand[demand["kind"] == "landuse"].geometry.union_all()
    assert shapely.intersection(land, building).area == pytest.approx(0.0, abs=1e-6)
    assert demand.geometry.area.sum() == pytest.approx(landuse.area, rel=1e-9)
    # 200 m × 200 m landuse on the 100 m grid → 4 cells (one with the hole).
    assert (demand["kind"] == "landuse").sum() == 4


def test_no_double_counting_fully_mapped_compound(chengdu_extract, chengdu_net):  # type: ignore[no-untyped-def]
    x0, y0 = _origin(chengdu_net)
    model = PopulationModel(floor_area_per_person_m2=40.0, landuse_density_per_km2=20_000)
    landuse = _square(x0, y0, 200.0)
    tower = _square(x0 + 20, y0 + 20, 60.0)  # 3600 m² × 20 / 40 → 1800 people > 800
    ext = _extract_with(
        chengdu_extract, chengdu_net, [("landuse", landuse, np.nan), ("building", tower, 20.0)]
    )
    demand = demand_units(ext, chengdu_net, model=model)
    assert set(demand["kind"]) == {"building"}
    assert demand["population"].sum() == pytest.approx(1800.0)


def test_overlapping_landuse_counted_once(chengdu_extract, chengdu_net):  # type: ignore[no-untyped-def]
    x0, y0 = _origin(chengdu_net)
    model = PopulationModel(landuse_density_per_km2=10_000)
    a = _square(x0, y0, 200.0)
    ext = _extract_with(
        chengdu_extract, chengdu_net, [("landuse", a, np.nan), ("landuse", a, np.nan)]
    )
    demand = demand_units(ext, chengdu_net, model=model)
    assert demand["population"].sum() == pytest.approx(400.0)


def test_cell_split_conserves_population_file_total(chengdu_extract, chengdu_net):  # type: ignore[no-untyped-def]
    demand = demand_units(chengdu_extract, chengdu_net, population=DATA / "population.geojson")
    _check_contract(demand, chengdu_net)
    assert set(demand["kind"]) == {"file"}
    assert demand["population"].sum() == pytest.approx(FILE_TOTAL, rel=1e-6)
    big = demand[demand["name"] == "抚琴小区"]
    assert len(big) > 4  # a ~290 m × 330 m polygon is split into cells
    assert big["population"].sum() == pytest.approx(1200.0, rel=1e-6)
    assert set(demand[demand["name"] == "单位宿舍"].geom_type) == {"Point"}
    bigger_cells = demand.set_index("demand_id").loc[big["demand_id"]]
    dens = bigger_cells["population"] / bigger_cells.geometry.area
    np.testing.assert_allclose(dens, dens.iloc[0], rtol=1e-9)  # spread by area


def test_population_file_in_gcj02(tmp_path, chengdu_extract, chengdu_net):  # type: ignore[no-untyped-def]
    doc = json.loads((DATA / "population.geojson").read_text(encoding="utf-8"))

    def shift(c):  # type: ignore[no-untyped-def]
        if isinstance(c[0], (int, float)):
            x, y = wgs84_to_gcj02(c[0], c[1])
            return [float(x), float(y)]
        return [shift(v) for v in c]

    for f in doc["features"]:
        f["geometry"]["coordinates"] = shift(f["geometry"]["coordinates"])
    raw = json.dumps(doc, ensure_ascii=False).encode("utf-8")
    ref = demand_units(chengdu_extract, chengdu_net, population=DATA / "population.geojson")
    gcj = demand_units(
        chengdu_extract,
        chengdu_net,
        population=PopulationFile(raw, filename="pop.geojson", crs="gcj02"),
    )
    assert len(gcj) == len(ref)
    assert gcj["population"].sum() == pytest.approx(FILE_TOTAL, rel=1e-6)
    ref_c = ref.geometry.union_all().centroid
    gcj_c = gcj.geometry.union_all().centroid
    assert ref_c.distance(gcj_c) < 0.5


def test_population_from_csv_points_with_chinese_column(tmp_path, chengdu_extract, chengdu_net):  # type: ignore[no-untyped-def]
    p = tmp_path / "pop.csv"
    p.write_text(
        "名称,经度,纬度,人口\n甲,104.0715,30.67277,100\n乙,104.0605,30.6667,50.5\n", encoding="gbk"
    )
    demand = demand_units(chengdu_extract, chengdu_net, population=p)
    assert demand["population"].sum() == pytest.approx(150.5)
    assert list(demand["name"]) == ["甲", "乙"]


def test_bad_population_values_name_the_rows(tmp_path, chengdu_extract, chengdu_net):  # type: ignore[no-untyped-def]
    p = tmp_path / "pop.csv"
    p.write_text(
        "name,lon,lat,population\na,104.07,30.67,10\nb,104.06,30.66,-5\nc,104.06,30.67,\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError, match=r"features 2, 3 are missing, negative"):
        demand_units(chengdu_extract, chengdu_net, population=p)
    p.write_text("name,lon,lat,people\na,104.07,30.67,10\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"no population column 'population'.*people"):
        demand_units(chengdu_extract, chengdu_net, population=p)
    demand = demand_units(
        chengdu_extract, chengdu_net, population=PopulationFile(p, column="people")
    )
    assert demand["population"].sum() == pytest.approx(10.0)


def test_population_geodataframe_input(chengdu_extract, chengdu_net):  # type: ignore[no-untyped-def]
    gdf = gpd.read_file(DATA / "population.geojson")
    demand = demand_units(chengdu_extract, chengdu_net, population=gdf)
    assert demand["population"].sum() == pytest.approx(FILE_TOTAL, rel=1e-6)
    with pytest.raises(InputError, match="no CRS"):
        demand_units(
            chengdu_extract, chengdu_net, population=gdf.set_crs(None, allow_override=True)
        )


def test_nothing_within_the_network(tmp_path, chengdu_extract, chengdu_net):  # type: ignore[no-untyped-def]
    p = tmp_path / "pop.csv"
    p.write_text("name,lon,lat,population\nbeijing,116.39,39.9,10\n", encoding="utf-8")
    with pytest.raises(InputError, match="No populated residential areas"):
        demand_units(chengdu_extract, chengdu_net, population=p)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"floor_area_per_person_m2": 0},
        {"default_levels": float("nan")},
        {"landuse_density_per_km2": -1},
        {"cell_size_m": 1e9},
    ],
)
def test_population_model_is_validated(kwargs):  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match="PopulationModel"):
        PopulationModel(**kwargs)


def test_population_model_is_frozen():
    model = PopulationModel()
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.cell_size_m = 50.0  # type: ignore[misc]


def test_raster_needs_rasterio(tmp_path, haidian_net, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setitem(sys.modules, "rasterio", None)  # as if the optional extra were absent
    with pytest.raises(InputError, match="install"):
        population_from_raster(tmp_path / "worldpop.tif", haidian_net)


# --- exact shortcuts: each gives the bytes of the plain computation ---------------------


def _holed_compound(seed: int) -> shapely.Polygon:
    """A tilted compound at UTM-like coordinates with 60 tilted building holes, some on cell lines."""
    rng = np.random.default_rng(seed)
    x0, y0 = 404_000.0 + rng.uniform(0, 1), 3_290_000.0 + rng.uniform(0, 1)
    shell = [(x0 - 3, y0 + 2), (x0 + 352, y0 - 4), (x0 + 358, y0 + 247), (x0 + 1, y0 + 253)]
    holes = []
    for gx in range(10):
        for gy in range(6):
            cx, cy = x0 + 20 + gx * 33.3 + rng.uniform(-3, 3), y0 + 20 + gy * 38.1
            house = shapely.affinity.rotate(shapely.box(cx - 6, cy - 4, cx + 6, cy + 4), 7.0)
            holes.append(house.exterior.coords)
    poly = shapely.Polygon(shell, holes)
    assert poly.is_valid
    return poly


def _plain_split(poly: shapely.Polygon, c: float) -> list[bytes]:
    """The cell split done the plain way: every cell of the grid against the whole polygon."""
    x0, y0, x1, y1 = poly.bounds
    out = []
    for gy in range(int(np.floor(y0 / c)), int(np.ceil(y1 / c))):
        for gx in range(int(np.floor(x0 / c)), int(np.ceil(x1 / c))):
            box = shapely.box(gx * c, gy * c, (gx + 1) * c, (gy + 1) * c)
            if shapely.contains_properly(poly, box):
                out.append(box)
            elif shapely.intersects(poly, box):
                out.extend(
                    p
                    for p in shapely.get_parts(shapely.intersection(poly, box))
                    if p.geom_type == "Polygon" and p.area > 1e-6
                )
    return sorted(shapely.to_wkb(out).tolist())


@pytest.mark.parametrize(("seed", "chunk"), [(1, None), (2, None), (3, 1), (4, 2)])
def test_split_of_holed_compound_is_the_plain_intersection(seed, chunk, monkeypatch):  # type: ignore[no-untyped-def]
    if chunk is not None:  # the edge cells sorted a few at a time give the same pieces
        monkeypatch.setattr(demand, "HOLE_CHUNK_CELLS", chunk)
    poly = _holed_compound(seed)
    parent, pieces = split_into_cells(np.array([poly], dtype=object), 100.0)
    assert (parent == 0).all()
    assert sorted(shapely.to_wkb(pieces).tolist()) == _plain_split(poly, 100.0)


def test_without_far_holes_drops_only_far_holes():  # type: ignore[no-untyped-def]
    poly = _holed_compound(4)
    line = shapely.LineString([(0, 0), (1, 1)])
    geoms = np.array([poly, line], dtype=object)
    boxes = shapely.box([404_000.0, 404_200.0, 0.0], 3_290_000.0, [404_100.0, 404_300.0, 1.0],
                        3_290_100.0)  # fmt: skip
    owner = np.array([0, 0, 1])
    near = _without_far_holes(geoms, owner, boxes, 10.0)
    assert near[2] is line  # not a Polygon: passed unchanged
    holes = shapely.bounds(np.array(poly.interiors, dtype=object))
    for k in (0, 1):
        bx0, by0, bx1, by1 = boxes[k].bounds
        near_box = ~(
            (holes[:, 0] > bx1 + 10)
            | (holes[:, 2] < bx0 - 10)
            | (holes[:, 1] > by1 + 10)
            | (holes[:, 3] < by0 - 10)
        )
        assert 0 < near_box.sum() < len(holes)
        assert shapely.get_num_interior_rings(near[k]) == near_box.sum()
        assert shapely.equals_exact(near[k].exterior, poly.exterior, 0.0)
        assert shapely.to_wkb(shapely.intersection(near[k], boxes[k])) == shapely.to_wkb(
            shapely.intersection(poly, boxes[k])
        )


def test_grouped_unions_equal_one_union_per_group():  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(5)
    xy = rng.uniform(0, 1000, size=(300, 2))
    geoms = shapely.buffer(shapely.points(xy), rng.uniform(5, 60, size=300), quad_segs=3)
    group = rng.integers(0, 40, size=300)
    keys, unions = _grouped_unions(group, geoms)
    assert keys.tolist() == sorted(set(group.tolist()))
    for k, u in zip(keys.tolist(), unions, strict=True):
        assert shapely.to_wkb(u) == shapely.to_wkb(shapely.union_all(geoms[group == k]))
    none_keys, none_unions = _grouped_unions(group[:0], geoms[:0])  # no building in any landuse
    assert none_keys.size == none_unions.size == 0


def test_valid_geometries_drops_z_and_leaves_the_input():  # type: ignore[no-untyped-def]
    flat = shapely.box(0, 0, 1, 1)
    raised = shapely.Polygon([(0, 0, 5), (2, 0, 5), (2, 2, 5), (0, 0, 5)])
    bow = shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])  # self-intersecting
    geoms = np.array([flat, raised, bow], dtype=object)
    out = valid_geometries(geoms)
    assert not shapely.has_z(out).any()
    assert shapely.is_valid(out).all()
    assert geoms[1] is raised  # the caller's array is untouched
    assert geoms[2] is bow
    assert shapely.equals_exact(out[0], flat, 0.0)
    only_flat = valid_geometries(np.array([flat, bow], dtype=object))
    assert shapely.to_wkb(only_flat[0]) == shapely.to_wkb(flat)


def test_polygon_parts_match_get_parts():  # type: ignore[no-untyped-def]
    a, b = shapely.box(0, 0, 1, 1), shapely.box(5, 5, 7, 7)
    multi = shapely.MultiPolygon([shapely.box(2, 2, 3, 3), shapely.box(4, 4, 4.5, 4.5)])
    mixed = shapely.GeometryCollection(
        [shapely.box(8, 8, 9, 9), shapely.LineString([(0, 0), (1, 1)])]
    )
    geoms = np.array([a, multi, b, mixed, shapely.Polygon()], dtype=object)
    parent = np.array([10, 11, 12, 13, 14])
    got_parent, got = _polygon_parts(parent, geoms)
    parts, idx = shapely.get_parts(geoms, return_index=True)
    keep = (shapely.get_type_id(parts) == shapely.GeometryType.POLYGON) & (
        shapely.area(parts) > 1e-6
    )
    assert got_parent.tolist() == parent[idx[keep]].tolist() == [10, 11, 11, 12, 13]
    assert shapely.to_wkb(got).tolist() == shapely.to_wkb(parts[keep]).tolist()
