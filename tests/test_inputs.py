"""Tests for coverage.inputs: the one description of the inputs, its key, and load_city."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from conftest import HAIDIAN

from coverage.centers import CenterColumns
from coverage.coords import wgs84_to_gcj02
from coverage.errors import InputError
from coverage.inputs import (
    CityInputs,
    FileInput,
    check_inputs,
    load_city,
)

#: GCJ-02 → WGS-84 is an iteration; its error is far below a metre (tests/test_coords.py).
INVERSE_TOL_M = 0.5


def test_key_is_stable_and_follows_content_and_options(tmp_path: Path) -> None:
    f = tmp_path / "c.csv"
    f.write_text("lon,lat\n116.3,40.0\n", encoding="utf-8")
    a = CityInputs(osm=HAIDIAN, centers=FileInput(f), cache_dir=tmp_path)
    assert a.key() == CityInputs(osm=str(HAIDIAN), centers=f, cache_dir=tmp_path).key()  # type: ignore[arg-type]
    assert (
        a.key()
        != CityInputs(osm=HAIDIAN, centers=FileInput(f), crs="gcj02", cache_dir=tmp_path).key()
    )
    cols = CenterColumns(name="名称")
    assert (
        a.key()
        != CityInputs(
            osm=HAIDIAN, centers=FileInput(f), center_columns=cols, cache_dir=tmp_path
        ).key()
    )
    before = a.key()
    f.write_text("lon,lat\n116.3,40.1\n", encoding="utf-8")
    os.utime(f, ns=(1, 1))
    assert a.key() != before  # the file changed on disk
    up = CityInputs(osm=HAIDIAN, centers=FileInput(b"lon,lat\n1,2\n", "c.csv"))
    assert up.key() == CityInputs(osm=HAIDIAN, centers=FileInput(b"lon,lat\n1,2\n", "c.csv")).key()
    assert up.key() != CityInputs(osm=HAIDIAN, centers=FileInput(b"lon,lat\n1,3\n", "c.csv")).key()


def test_bad_descriptions_are_refused() -> None:
    with pytest.raises(InputError, match="crs"):
        CityInputs(crs="utm")
    assert CityInputs(crs="GCJ-02").crs == "gcj02"
    with pytest.raises(InputError, match="file name"):
        FileInput(b"lon,lat\n")


def test_check_inputs_names_the_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="Centers file not found"):
        check_inputs(CityInputs(osm=HAIDIAN, centers=FileInput(tmp_path / "none.csv")))
    with pytest.raises(InputError, match="Districts file not found"):
        check_inputs(CityInputs(osm=HAIDIAN, districts=FileInput(tmp_path / "none.geojson")))


def _points(haidian_extract, n: int) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    pts = haidian_extract.residential.geometry.representative_point().iloc[:n]
    return pts.x.to_numpy(), pts.y.to_numpy()


def _csv(path: Path, lon: np.ndarray, lat: np.ndarray) -> Path:
    rows = "".join(
        f"站{i},{float(x)!r},{float(y)!r}\n" for i, (x, y) in enumerate(zip(lon, lat, strict=True))
    )
    path.write_text("name,lon,lat\n" + rows, encoding="utf-8")
    return path


def _districts(path: Path, polygons: list[shapely.Polygon]) -> Path:
    gpd.GeoDataFrame({"name": ["西", "东"]}, geometry=polygons, crs="EPSG:4326").to_file(
        path, driver="GeoJSON"
    )
    return path


def _to_gcj(poly: shapely.Polygon) -> shapely.Polygon:
    return shapely.transform(poly, lambda c: np.column_stack(wgs84_to_gcj02(c[:, 0], c[:, 1])))


def test_gcj02_is_applied_to_centers_districts_and_candidates(
    haidian_extract, cache_dir: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    lon, lat = _points(haidian_extract, 3)
    glon, glat = wgs84_to_gcj02(lon, lat)
    minx, miny, maxx, maxy = haidian_extract.residential.total_bounds
    mid = (minx + maxx) / 2
    halves = [
        shapely.box(minx - 0.01, miny - 0.01, mid, maxy + 0.01).segmentize(0.001),
        shapely.box(mid, miny - 0.01, maxx + 0.01, maxy + 0.01).segmentize(0.001),
    ]

    def city(crs: str, lon_: np.ndarray, lat_: np.ndarray, polys: list[shapely.Polygon], tag: str):  # type: ignore[no-untyped-def]
        pts = _csv(tmp_path / f"{tag}.csv", lon_, lat_)
        return load_city(
            CityInputs(
                osm=HAIDIAN,
                crs=crs,
                centers=FileInput(pts),
                candidates=FileInput(pts),
                districts=FileInput(_districts(tmp_path / f"{tag}.geojson", polys)),
                cache_dir=cache_dir,
            )
        )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # e.g. points a little off the streets
        wgs = city("wgs84", lon, lat, halves, "wgs")
        gcj = city("gcj02", glon, glat, [_to_gcj(p) for p in halves], "gcj")
        raw = city("wgs84", glon, glat, [_to_gcj(p) for p in halves], "raw")
    assert gcj.centers.crs == wgs.centers.crs == gcj.net.crs
    moved = gcj.centers.distance(wgs.centers)
    assert (moved < INVERSE_TOL_M).all()
    assert (raw.centers.distance(wgs.centers) > 100).all()  # unconverted: hundreds of metres off
    assert gcj.candidates is not None
    assert wgs.candidates is not None
    assert (gcj.candidates.distance(wgs.candidates) < INVERSE_TOL_M).all()
    assert gcj.districts is not None
    assert wgs.districts is not None
    assert gcj.districts.crs == gcj.net.crs
    assert list(gcj.districts["district"]) == ["西", "东"]
    gap = gcj.districts.geometry.symmetric_difference(wgs.districts.geometry).area
    assert (gap < 1e-3 * wgs.districts.geometry.area).all()
    raw_gap = raw.districts.geometry.symmetric_difference(wgs.districts.geometry).area
    assert (raw_gap > 1e-2 * wgs.districts.geometry.area).all()


def test_population_points_in_gcj02_and_the_population_model(
    haidian_extract, cache_dir: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    lon, lat = _points(haidian_extract, 5)
    glon, glat = wgs84_to_gcj02(lon, lat)
    gpd.GeoDataFrame(
        {"population": [100.0] * 5}, geometry=gpd.points_from_xy(glon, glat), crs="EPSG:4326"
    ).to_file(tmp_path / "pop.geojson", driver="GeoJSON")
    city = load_city(
        CityInputs(
            osm=HAIDIAN,
            crs="gcj02",
            population=FileInput(tmp_path / "pop.geojson"),
            cache_dir=cache_dir,
        )
    )
    assert city.population_model == {
        "source": "file",
        "file": "pop.geojson",
        "column": "population",
    }
    assert city.demand["population"].sum() == pytest.approx(500.0)
    truth = gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs="EPSG:4326").to_crs(city.net.crs)
    got = city.demand.geometry.reset_index(drop=True)
    assert (got.distance(truth) < INVERSE_TOL_M).all()
    osm = load_city(CityInputs(osm=HAIDIAN, cache_dir=cache_dir))
    assert osm.population_model["source"] == "osm"
    assert (osm.districts, osm.candidates, osm.exclusions) == (None, None, None)


# --- issue 14: the embedded stations are the default centers ---------------------------------


def test_default_centers_are_the_embedded_stations_only_for_the_embedded_city() -> None:
    from coverage.inputs import (
        DEFAULT_STATIONS_ATTRIBUTION,
        centers_source,
        centers_source_label,
        uses_default_stations,
    )

    default = CityInputs()
    assert uses_default_stations(default)
    src = centers_source(default)
    assert src["kind"] == "embedded"
    assert src["file"] == "chengdu_central_communities_gcj02.csv"
    assert src["crs"] == "gcj02"
    assert src["level_minutes"] == {"street": 15.0, "community": 5.0}
    assert DEFAULT_STATIONS_ATTRIBUTION in centers_source_label(src, "zh")
    assert "street 15 min" in centers_source_label(src, "en")
    osm = CityInputs(osm_centers=True)
    assert not uses_default_stations(osm)
    assert centers_source(osm)["kind"] == "osm"
    assert "OpenStreetMap" in centers_source_label(centers_source(osm), "en")
    assert not uses_default_stations(CityInputs(osm=HAIDIAN))  # another city: its OSM centers
    own = CityInputs(centers=FileInput(b"lon,lat\n1,2\n", "mine.csv"), crs="bd09")
    assert centers_source(own) == {"kind": "file", "file": "mine.csv", "crs": "bd09"}
    assert centers_source_label(None) == ""
    assert default.key() != osm.key()


def test_cli_centers_osm_selects_the_osm_tagged_centers(tmp_path: Path) -> None:
    from coverage import cli

    parser = cli.build_parser()
    inputs, _ = cli.run_from_args(parser.parse_args(["audit", "--centers", "osm", "--out", "o"]))
    assert inputs.osm_centers
    assert inputs.centers is None
    inputs, _ = cli.run_from_args(parser.parse_args(["audit", "--out", "o"]))
    assert not inputs.osm_centers
    assert inputs.centers is None
    f = tmp_path / "osm.csv"
    inputs, _ = cli.run_from_args(parser.parse_args(["audit", "--centers", str(f), "--out", "o"]))
    assert not inputs.osm_centers
    assert inputs.centers is not None


@pytest.mark.slow
def test_default_city_loads_91_stations_with_levels_and_their_standard(cache_dir: Path) -> None:
    import dataclasses

    from coverage import pipeline
    from coverage.audit import AuditParams
    from coverage.scenario import Scenario

    with pytest.warns(UserWarning, match="二仙桥街道"):  # > 300 m from a street (data/README.md)
        city = load_city(CityInputs(cache_dir=cache_dir))
    assert len(city.centers) == 91
    assert city.centers["level"].value_counts().to_dict() == {"community": 69, "street": 22}
    assert city.centers["center_id"].str.fullmatch(r"\d{12}").all()
    assert city.centers_source["kind"] == "embedded"
    plain = Scenario(name="s", audit=AuditParams())
    assert pipeline.audit_params(plain, city).level_thresholds_min == {
        "street": 15.0,
        "community": 5.0,
    }
    own = Scenario(name="s", audit=AuditParams(level_thresholds_min={"street": 10.0}))
    assert pipeline.audit_params(own, city).level_thresholds_min == {"street": 10.0}
    osm_city = dataclasses.replace(city, centers_source={"kind": "osm"})
    assert pipeline.audit_params(plain, osm_city).level_thresholds_min is None
