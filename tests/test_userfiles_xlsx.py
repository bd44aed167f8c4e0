"""Reading Excel workbooks (.xlsx): same columns as CSV, sheets, formulas, bounded expansion."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pytest
from geopandas.testing import assert_geodataframe_equal

from coverage.errors import InputError, ResourceLimitError
from coverage.inputs import FileInput
from coverage.userfiles import (
    XLSX_MAX_UNCOMPRESSED_BYTES,
    check_regular_file,
    read_features,
    read_points,
    read_polygons,
    split_sheet,
)

DATA = Path(__file__).resolve().parent / "data" / "userfiles"


def _workbook_of_csv(
    csv: Path, path: Path, *, sheet: str = "Sheet1", first: str | None = None
) -> Path:
    """Write the CSV's rows as typed cells of an .xlsx (numbers as numbers, text as text)."""
    df = pd.read_csv(csv, encoding="utf-8-sig")
    wb = openpyxl.Workbook()
    ws = wb.active
    if first is not None:
        ws.title = first
        ws.append(["说明", "这一页不是站点表"])
        ws = wb.create_sheet(sheet)
    else:
        ws.title = sheet
    ws.append(list(df.columns))
    for row in df.itertuples(index=False, name=None):
        ws.append([v.item() if isinstance(v, np.generic) else v for v in row])
    wb.save(path)
    return path


def test_xlsx_reads_like_the_csv(tmp_path: Path) -> None:
    csv = DATA / "centers_utf8_bom.csv"
    xlsx = _workbook_of_csv(csv, tmp_path / "站点.xlsx")
    from_csv = read_points(csv)
    from_xlsx = read_points(xlsx)
    assert list(from_xlsx.columns) == ["编号", "名称", "级别", "geometry"]
    assert_geodataframe_equal(from_xlsx, from_csv, check_dtype=False)
    assert list(from_xlsx["名称"]) == list(from_csv["名称"])


def test_xlsx_gcj02_converted_like_csv(tmp_path: Path) -> None:
    csv = DATA / "centers_gcj02.csv"
    xlsx = _workbook_of_csv(csv, tmp_path / "amap.xlsx")
    a = read_points(csv, crs="gcj02")
    b = read_points(xlsx, crs="gcj02")
    assert np.allclose(a.geometry.x, b.geometry.x, atol=1e-12)
    assert np.allclose(a.geometry.y, b.geometry.y, atol=1e-12)


def test_named_sheet_by_path_suffix_and_by_layer(tmp_path: Path) -> None:
    csv = DATA / "centers_utf8_bom.csv"
    xlsx = _workbook_of_csv(csv, tmp_path / "stations.xlsx", sheet="站点", first="封面")
    expected = read_points(csv)
    assert_geodataframe_equal(read_points(f"{xlsx}#站点"), expected, check_dtype=False)
    assert_geodataframe_equal(read_points(xlsx, layer="站点"), expected, check_dtype=False)
    assert_geodataframe_equal(read_points(xlsx, layer=1), expected, check_dtype=False)
    # an upload names its sheet the same way
    upload = read_points(xlsx.read_bytes(), filename="stations.xlsx#站点")
    assert_geodataframe_equal(upload, expected, check_dtype=False)
    # the first sheet is a cover page: refused, saying what is missing
    with pytest.raises(InputError, match="no data rows"):
        read_points(xlsx)
    with pytest.raises(InputError, match=r"no sheet 'Nope'.*封面, 站点"):
        read_points(f"{xlsx}#Nope")
    assert split_sheet(f"{xlsx}#站点") == (xlsx, "站点")
    check_regular_file(Path(f"{xlsx}#站点"), "Centers file")  # the CLI's path check accepts it
    FileInput(Path(f"{xlsx}#站点")).check("Centers file")


def test_formulas_give_saved_values_never_evaluated(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["name", "lon", "lat", "population"])
    ws.append(["a", 104.07, 30.67, "=1+1"])  # a formula with no saved value
    ws.append(['=HYPERLINK("http://x")', 104.06, 30.66, 5])
    path = tmp_path / "f.xlsx"
    wb.save(path)
    gdf = read_features(path)
    assert pd.isna(gdf.loc[0, "population"])  # not 2: nothing was evaluated
    assert gdf.loc[1, "population"] == 5
    assert gdf.loc[1, "name"] is None or pd.isna(gdf.loc[1, "name"])


def test_empty_rows_and_trailing_columns_dropped(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append([])
    ws.append(["名称", "经度", "纬度", None])
    ws.append(["甲", 104.07, 30.67, None])
    ws.append([None, None, None, None])
    ws.append(["乙", 104.06, 30.66])
    path = tmp_path / "gaps.xlsx"
    wb.save(path)
    gdf = read_points(path)
    assert list(gdf["名称"]) == ["甲", "乙"]
    assert list(gdf.columns) == ["名称", "geometry"]


def test_bad_coordinates_are_refused_with_row_numbers(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["名称", "经度", "纬度"])
    ws.append(["甲", 104.07, 30.67])
    ws.append(["乙", "东经104", 30.66])
    path = tmp_path / "bad.xlsx"
    wb.save(path)
    with pytest.raises(InputError, match="rows 3"):
        read_points(path)


def test_not_a_workbook(tmp_path: Path) -> None:
    path = tmp_path / "fake.xlsx"
    path.write_bytes(b"name,lon,lat\na,1,2\n")
    with pytest.raises(InputError, match="not a readable Excel workbook"):
        read_points(path)


def test_zip_bomb_refused_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A small .xlsx whose members expand past the limit is refused from the zip directory alone."""
    limit = 32 << 20  # the real limit is larger; the same check, cheaper to build
    assert limit < XLSX_MAX_UNCOMPRESSED_BYTES
    monkeypatch.setattr("coverage.userfiles.XLSX_MAX_UNCOMPRESSED_BYTES", limit)
    buf = io.BytesIO()
    chunk = b"\0" * (1 << 20)
    with (
        zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf,
        zf.open("xl/worksheets/sheet1.xml", "w") as fh,
    ):
        for _ in range((limit >> 20) + 1):
            fh.write(chunk)
    data = buf.getvalue()
    assert len(data) < 100_000  # tiny on disk
    with pytest.raises(ResourceLimitError, match="expands to"):
        read_points(data, filename="bomb.xlsx")


def test_too_many_members_refused() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(2_001):
            zf.writestr(f"xl/m{i}.xml", b"")
    with pytest.raises(ResourceLimitError, match="parts"):
        read_points(buf.getvalue(), filename="many.xlsx")


def test_rows_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("coverage.userfiles.XLSX_MAX_ROWS", 3)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["name", "lon", "lat"])
    for i in range(10):
        ws.append([f"p{i}", 104.0 + i / 1000, 30.6])
    path = tmp_path / "long.xlsx"
    wb.save(path)
    with pytest.raises(ResourceLimitError, match="more than 3 rows"):
        read_points(path)


def test_population_polygons_from_wkt_sheet(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["社区", "population", "wkt"])
    ws.append(["甲", 1200, "POLYGON ((104.06 30.66, 104.07 30.66, 104.07 30.67, 104.06 30.66))"])
    path = tmp_path / "pop.xlsx"
    wb.save(path)
    gdf = read_polygons(path)
    assert isinstance(gdf, gpd.GeoDataFrame)
    assert gdf.geometry.iloc[0].geom_type == "Polygon"
    assert int(gdf.loc[0, "population"]) == 1200


def test_districts_sheet_by_name_with_a_vertex_budget(tmp_path: Path) -> None:
    """`file.xlsx#Sheet` reads the same with the districts' vertex cap as without it."""
    wb = openpyxl.Workbook()
    wb.active.append(["other"])
    ws = wb.create_sheet("区划")
    ws.append(["name", "wkt"])
    ws.append(["甲", "POLYGON ((104.06 30.66, 104.07 30.66, 104.07 30.67, 104.06 30.66))"])
    path = tmp_path / "districts.xlsx"
    wb.save(path)
    plain = read_polygons(f"{path}#区划")
    capped = read_polygons(f"{path}#区划", max_vertices=1000)
    assert_geodataframe_equal(capped, plain)
    assert capped.loc[0, "name"] == "甲"
    with pytest.raises(ResourceLimitError):
        read_polygons(f"{path}#区划", max_vertices=3)


def _app() -> Any:
    import sys

    root = str(Path(__file__).resolve().parents[1])
    sys.path.insert(0, root)
    try:
        import app
    finally:
        sys.path.remove(root)
    return app


def test_app_accepts_a_workbook_and_refuses_bad_ones_in_the_users_language(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _app()
    xlsx = _workbook_of_csv(DATA / "centers_utf8_bom.csv", tmp_path / "站点.xlsx")
    up = app.accept_upload("centers", "站点.xlsx", xlsx.read_bytes(), max_mb=5, language="zh")
    assert up.name == "站点.xlsx"
    with pytest.raises(InputError, match=r"“坏\.xlsx”不是可读取的 Excel 工作簿"):
        app.accept_upload("centers", "坏.xlsx", b"PK\x03\x04broken", max_mb=5, language="zh")
    monkeypatch.setattr("coverage.userfiles.XLSX_MAX_UNCOMPRESSED_BYTES", 1_000)
    with pytest.raises(InputError, match="expands to more than"):
        app.accept_upload("population", "pop.xlsx", xlsx.read_bytes(), max_mb=5, language="en")
