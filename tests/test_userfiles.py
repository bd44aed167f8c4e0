"""Reading user files: formats, encodings, uploads, datums and clear refusals."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from coverage.coords import wgs84_to_gcj02
from coverage.errors import InputError
from coverage.userfiles import read_features, read_points, read_polygons

DATA = Path(__file__).resolve().parent / "data" / "userfiles"
EXPECTED_LON = [104.0715, 104.0605, 104.05997]
EXPECTED_LAT = [30.67277, 30.6667, 30.67696]
NAMES = ["金牛区人民政府", "西安路街道党群服务中心", "抚琴社区党群服务中心"]


def _check_points(gdf: gpd.GeoDataFrame, *, atol: float = 1e-9) -> None:
    assert gdf.crs.to_epsg() == 4326
    assert isinstance(gdf.index, pd.RangeIndex)
    assert np.allclose(gdf.geometry.x, EXPECTED_LON, atol=atol)
    assert np.allclose(gdf.geometry.y, EXPECTED_LAT, atol=atol)


@pytest.mark.parametrize(
    ("filename", "encoding", "name_col"),
    [
        ("centers_utf8.csv", "utf-8", "name"),
        ("centers_utf8_bom.csv", "utf-8 with BOM", "名称"),
        ("centers_gbk.csv", "gb18030", "名称"),
    ],
)
def test_csv_encodings(filename, encoding, name_col, caplog):  # type: ignore[no-untyped-def]
    with caplog.at_level(logging.INFO, logger="coverage.userfiles"):
        gdf = read_points(DATA / filename)
    _check_points(gdf)
    assert list(gdf[name_col]) == NAMES
    assert f"as {encoding} text" in caplog.text


def test_geojson_and_geopackage_round_trip(tmp_path):  # type: ignore[no-untyped-def]
    gdf = read_points(DATA / "centers.geojson")
    _check_points(gdf)
    assert list(gdf["name"]) == NAMES
    gpkg = tmp_path / "centers.gpkg"
    gdf.to_file(gpkg, driver="GPKG")
    _check_points(read_points(gpkg))


def test_uploads_as_bytes_and_file_objects():
    raw = (DATA / "centers_gbk.csv").read_bytes()
    _check_points(read_points(raw, filename="上传.csv"))
    _check_points(read_points(io.BytesIO(raw), filename="upload.csv"))
    _check_points(read_points((DATA / "centers.geojson").read_bytes(), filename="c.geojson"))
    with pytest.raises(InputError, match="filename"):
        read_points(raw)


def test_gcj02_csv_is_converted_to_wgs84():
    gdf = read_points(DATA / "centers_gcj02.csv", crs="gcj02")
    _check_points(gdf, atol=1e-6)  # file coordinates were rounded to 7 decimals
    raw = read_points(DATA / "centers_gcj02.csv")
    assert not np.allclose(raw.geometry.x, EXPECTED_LON, atol=1e-4)


def test_gcj02_geojson_is_converted(tmp_path):  # type: ignore[no-untyped-def]
    x, y = wgs84_to_gcj02(np.array(EXPECTED_LON), np.array(EXPECTED_LAT))
    gdf = gpd.GeoDataFrame(geometry=shapely.points(x, y), crs="EPSG:4326")
    path = tmp_path / "gcj.geojson"
    gdf.to_file(path)
    _check_points(read_points(path, crs="gcj02"), atol=1e-8)


def test_named_columns(tmp_path):  # type: ignore[no-untyped-def]
    p = tmp_path / "c.csv"
    p.write_text("站点,E,N\na,104.0715,30.67277\n", encoding="utf-8")
    gdf = read_points(p, lon_column="E", lat_column="N")
    assert gdf.geometry.x[0] == pytest.approx(104.0715)
    with pytest.raises(InputError, match=r"no column 'Q'.*站点, E, N"):
        read_points(p, lon_column="Q", lat_column="N")


def test_missing_file_and_unsupported_extension(tmp_path):  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match="not found"):
        read_points(tmp_path / "nope.csv")
    xls = tmp_path / "centers.xls"  # the old binary Excel format (.xlsx is read)
    xls.write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(InputError, match=r"Unsupported.*\.geojson"):
        read_points(xls)


def test_empty_files(tmp_path):  # type: ignore[no-untyped-def]
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        read_points(empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text("name,lon,lat\n", encoding="utf-8")
    with pytest.raises(InputError, match="no data rows"):
        read_points(header_only)
    no_features = tmp_path / "none.geojson"
    no_features.write_text('{"type": "FeatureCollection", "features": []}', encoding="utf-8")
    with pytest.raises(InputError, match="no features"):
        read_points(no_features)


def test_no_coordinate_columns_lists_columns(tmp_path):  # type: ignore[no-untyped-def]
    p = tmp_path / "c.csv"
    p.write_text("名称,地址\na,b\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"no longitude column.*名称, 地址"):
        read_points(p)


def test_bad_coordinates_name_rows(tmp_path):  # type: ignore[no-untyped-def]
    p = tmp_path / "c.csv"
    p.write_text(
        "name,lon,lat\na,104.07,30.67\nb,abc,30.6\nc,104.1,\nd,inf,30.6\n", encoding="utf-8"
    )
    with pytest.raises(InputError, match=r"rows 3, 5 \(counting the header"):
        read_points(p)
    p.write_text("name,lon,lat\na,104.07,30.67\nb,104.1,\n", encoding="utf-8")
    with pytest.raises(InputError, match="rows 3"):
        read_points(p)


def test_swapped_lat_lon_is_detected(tmp_path):  # type: ignore[no-untyped-def]
    p = tmp_path / "c.csv"
    p.write_text("name,lon,lat\na,30.67,104.07\nb,30.6,104.1\n", encoding="utf-8")
    with pytest.raises(InputError, match="look swapped"):
        read_points(p)


def test_projected_coordinates_in_csv_are_refused(tmp_path):  # type: ignore[no-untyped-def]
    p = tmp_path / "c.csv"
    p.write_text("name,x,y\na,400000,3390000\n", encoding="utf-8")
    with pytest.raises(InputError, match="±90"):
        read_points(p)


def _fc(features: list[dict], crs: str | None = None) -> str:  # type: ignore[type-arg]
    doc: dict = {"type": "FeatureCollection", "features": features}  # type: ignore[type-arg]
    if crs:
        doc["crs"] = {"type": "name", "properties": {"name": crs}}
    return json.dumps(doc)


def _point(x: float, y: float, *extra: float) -> dict:  # type: ignore[type-arg]
    return {
        "type": "Feature",
        "properties": {},
        "geometry": {"type": "Point", "coordinates": [x, y, *extra]},
    }


def test_projected_geojson_is_reprojected(tmp_path, caplog):  # type: ignore[no-untyped-def]
    x, y = gpd.GeoSeries.from_xy([116.39], [39.9], crs=4326).to_crs(3857).iloc[0].coords[0]
    p = tmp_path / "merc.geojson"
    p.write_text(_fc([_point(x, y)], "urn:ogc:def:crs:EPSG::3857"), encoding="utf-8")
    with caplog.at_level(logging.INFO, logger="coverage.userfiles"):
        gdf = read_points(p)
    assert gdf.crs.to_epsg() == 4326
    assert gdf.geometry.x[0] == pytest.approx(116.39)
    assert "reprojecting" in caplog.text


def test_unknown_crs_with_metre_coordinates_is_refused(tmp_path):  # type: ignore[no-untyped-def]
    p = tmp_path / "bad.geojson"
    p.write_text(_fc([_point(12958000, 4825000)], "urn:ogc:def:crs:EPSG::99999"), encoding="utf-8")
    with pytest.raises(InputError, match="look projected"):
        read_points(p)


def test_3d_points_lose_z(tmp_path):  # type: ignore[no-untyped-def]
    p = tmp_path / "z.geojson"
    p.write_text(_fc([_point(104.07, 30.67, 512.0)]), encoding="utf-8")
    gdf = read_points(p)
    assert not gdf.geometry.has_z.any()


def test_empty_geometries_dropped_with_warning(tmp_path):  # type: ignore[no-untyped-def]
    p = tmp_path / "e.geojson"
    empty = {"type": "Feature", "properties": {}, "geometry": None}
    p.write_text(_fc([_point(104.07, 30.67), empty]), encoding="utf-8")
    with pytest.warns(UserWarning, match="dropped 1 features with no geometry"):
        gdf = read_points(p)
    assert len(gdf) == 1


def test_invalid_polygons_repaired_with_warning(tmp_path):  # type: ignore[no-untyped-def]
    bowtie = {
        "type": "Feature",
        "properties": {"population": 10},
        "geometry": {
            "type": "Polygon",
            "coordinates": [
                [[104.0, 30.6], [104.01, 30.61], [104.01, 30.6], [104.0, 30.61], [104.0, 30.6]]
            ],
        },
    }
    p = tmp_path / "bowtie.geojson"
    p.write_text(_fc([bowtie]), encoding="utf-8")
    with pytest.warns(UserWarning, match="repaired 1 invalid"):
        gdf = read_polygons(p)
    assert gdf.geometry.is_valid.all()
    assert gdf.geom_type.iloc[0] in ("Polygon", "MultiPolygon")


def test_read_polygons_refuses_points():
    with pytest.raises(InputError, match=r"expected polygons.*Point"):
        read_polygons(DATA / "centers.geojson")


def test_read_features_keeps_any_geometry():
    gdf = read_features(DATA / "population.geojson")
    assert set(gdf.geom_type) >= {"Polygon", "Point"}


def test_not_a_geojson(tmp_path):  # type: ignore[no-untyped-def]
    p = tmp_path / "broken.geojson"
    p.write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match="could not be read"):
        read_points(p)


def test_unknown_crs_argument():
    with pytest.raises(InputError, match="`crs` must be one of"):
        read_points(DATA / "centers_utf8.csv", crs="utm")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("encoding", "prefix"),
    [("gbk", b""), ("gb18030", b""), ("utf-8", b"\xef\xbb\xbf")],
)
def test_geojson_in_chinese_encodings_is_read(encoding: str, prefix: bytes) -> None:
    """A GeoJSON saved in GBK crashed pyogrio (UnicodeDecodeError, exit 1)."""
    fc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"name": "社区卫生服务中心"},
                "geometry": {"type": "Point", "coordinates": [116.3, 40.002]},
            }
        ],
    }
    data = prefix + json.dumps(fc, ensure_ascii=False).encode(encoding)
    gdf = read_points(data, filename="c.geojson")
    assert list(gdf["name"]) == ["社区卫生服务中心"]


def test_fifo_and_device_are_named_not_reported_missing(tmp_path: Path) -> None:
    import os

    from coverage.inputs import FileInput

    fifo = tmp_path / "centers.csv"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.csv"
    zero.symlink_to("/dev/zero")
    with pytest.raises(InputError, match=r"is a named pipe \(FIFO\), not a regular file"):
        read_points(fifo)
    with pytest.raises(InputError, match=r"is a character device \(through a symbolic link\)"):
        read_points(zero)
    with pytest.raises(InputError, match=r"Centers file .* is a folder"):
        FileInput(tmp_path).check("Centers file")
    with pytest.raises(InputError, match="Centers file not found"):
        FileInput(tmp_path / "nope.csv").check("Centers file")


def test_strip_controls_and_echo() -> None:
    from coverage.fileio import strip_controls as clean_text
    from coverage.userfiles import echo, echo_list

    assert clean_text("a\x1b[31mred\x1b[0m\x00b") == "a[31mred[0mb"
    assert clean_text("社区\t中心\n") == "社区 中心 "
    assert clean_text("plain 名称") == "plain 名称"
    # a character unassigned in Python 3.11's Unicode 14 (e.g. a newer CJK one) is kept
    assert clean_text("\U00031350社区") == "\U00031350社区"
    assert clean_text("a\u202eb") == "ab"  # bidi override removed
    long = "x" * 5000
    assert echo(long) == repr("x" * 80 + "… (5,000 characters)")
    assert (
        echo_list([f"id{i}" for i in range(12)]) == "'id0', 'id1', 'id2', 'id3', 'id4' and 7 more"
    )
