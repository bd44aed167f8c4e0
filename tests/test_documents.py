"""Issue 14 documents: tables.xlsx round trip, map.png / map.pdf, the report's parameters.

One city (the Haidian extract) with stations read from an .xlsx, districts, an added
station, a closed one and proposed sites, so every table and every station state appears.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pypdf
import pytest
import shapely
from conftest import HAIDIAN
from PIL import Image

from coverage import export, figure, pipeline
from coverage.audit import AuditParams
from coverage.errors import InputError
from coverage.i18n import t
from coverage.inputs import CityData, CityInputs, FileInput, load_city
from coverage.scenario import AddedStation, Scenario, ScenarioResult
from coverage.siting import SitingParams
from coverage.tables import compare_scenarios

#: these tests are about map.png / map.pdf: in-process outputs draw them (conftest.py)
pytestmark = pytest.mark.figure

EVIL_DISTRICT = '=HYPERLINK("http://evil","x")'


def _stations_xlsx(city: CityData, path: Path) -> Path:
    """Three stations at network nodes spread over the extract, as an Amap-style sheet."""
    net = city.net
    order = np.argsort(net.node_x + net.node_y)
    picks = order[[len(order) // 5, len(order) // 2, 4 * len(order) // 5]]
    pts = gpd.GeoSeries(shapely.points(net.node_x[picks], net.node_y[picks]), crs=net.crs)
    wgs = pts.to_crs(4326)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "封面"
    ws.append(["说明"])
    ws = wb.create_sheet("站点")
    ws.append(["编号", "名称", "经度", "纬度", "级别"])
    for i, (x, y) in enumerate(zip(wgs.x, wgs.y, strict=True)):
        ws.append([f"s{i + 1}", f"第{i + 1}社区党群服务中心", float(x), float(y), "社区"])
    wb.save(path)
    return path


def _districts(city: CityData, path: Path) -> Path:
    wgs = gpd.GeoSeries(shapely.points(city.net.node_x, city.net.node_y), crs=city.net.crs)
    x0, y0, x1, y1 = wgs.to_crs(4326).total_bounds
    mid = (x0 + x1) / 2
    gdf = gpd.GeoDataFrame(
        {"name": ["西区", EVIL_DISTRICT]},
        geometry=[
            shapely.box(x0 - 0.01, y0 - 0.01, mid, y1 + 0.01),
            shapely.box(mid, y0 - 0.01, x1 + 0.01, y1 + 0.01),
        ],
        crs=4326,
    )
    gdf.to_file(path, driver="GeoJSON")
    return path


@pytest.fixture(scope="module")
def planned(
    cache_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[CityData, ScenarioResult, ScenarioResult]:
    folder = tmp_path_factory.mktemp("documents")
    plain = load_city(CityInputs(osm=HAIDIAN, cache_dir=cache_dir))
    xlsx = _stations_xlsx(plain, folder / "stations.xlsx")
    city = load_city(
        CityInputs(
            osm=HAIDIAN,
            centers=FileInput(Path(f"{xlsx}#站点")),
            districts=FileInput(_districts(plain, folder / "districts.geojson")),
            cache_dir=cache_dir,
        )
    )
    node = int(np.argmax(city.net.node_x))
    lonlat = gpd.GeoSeries(
        shapely.points([city.net.node_x[node]], [city.net.node_y[node]]), crs=city.net.crs
    ).to_crs(4326)
    scenario = Scenario(
        name="方案A",
        siting=SitingParams(k=2),
        added=(AddedStation(float(lonlat.x[0]), float(lonlat.y[0]), name="新站"),),
        closed=("file-1",),
    )
    base = pipeline.run(city, Scenario())
    res = pipeline.run(city, scenario)
    return city, base, res


# --- stations from an .xlsx go through the whole pipeline ------------------------------------


def test_xlsx_stations_are_the_city_centers(planned: Any) -> None:
    city, _, _ = planned
    assert sorted(city.centers["name"]) == [
        "第1社区党群服务中心",
        "第2社区党群服务中心",
        "第3社区党群服务中心",
    ]
    assert set(city.centers["level"]) == {"community"}
    assert set(city.centers["source"]) == {"file"}


# --- tables.xlsx --------------------------------------------------------------------------


def _sheet_rows(ws: Any) -> list[list[Any]]:
    return [list(r) for r in ws.iter_rows(values_only=True)]


def test_workbook_round_trip_zh(planned: Any) -> None:
    city, base, res = planned
    comparison = compare_scenarios({"现状": base, "方案A": res})
    files = export.output_files(
        res, city, documents=export.Documents(figure=None, comparison=comparison)
    )
    wb = openpyxl.load_workbook(io.BytesIO(files[export.TABLES_XLSX]))
    assert wb.sheetnames == ["覆盖率", "按级别", "按区划", "建议站点", "方案比较"]
    # coverage per threshold: the numbers of summary.json, shares as percentages
    ws = wb["覆盖率"]
    rows = _sheet_rows(ws)
    assert rows[0] == ["步行时间阈值（分钟）", "覆盖人口", "总人口", "覆盖率", "覆盖居住单元数"]
    doc = json.loads(files[export.SUMMARY_JSON])
    for row, key in zip(rows[1:], ("5", "15"), strict=True):
        block = doc["coverage"][key]
        assert row[0] == float(key)
        assert row[1] == round(block["population_covered"])
        assert isinstance(row[1], int)
        assert row[2] == round(doc["demand"]["population"])
        assert row[3] == pytest.approx(block["share"])
        assert row[4] == block["units_covered"]
    assert ws["D2"].number_format == "0.0%"
    assert ws["B2"].number_format == "#,##0"
    assert ws["A1"].font.bold
    # per area: both districts, the formula-looking name kept as text
    rows = _sheet_rows(wb["按区划"])
    assert rows[0][:3] == ["区划", "居住单元数", "人口"]
    names = [r[0] for r in rows[1:]]
    assert names == ["西区", "'" + EVIL_DISTRICT]
    assert wb["按区划"]["A3"].data_type == "s"
    expected = pd.DataFrame(res.districts)
    assert [r[2] for r in rows[1:]] == [round(v) for v in expected["population"]]
    share_col = rows[0].index(t("table.share", "zh", minutes=15.0)) + 1
    assert wb["按区划"].cell(row=2, column=share_col).number_format == "0.0%"
    assert wb["按区划"].cell(row=2, column=share_col).value == pytest.approx(
        expected["share_15"].iloc[0]
    )
    # proposed sites: rank, coordinates, whole residents, cumulative share as a percentage
    ws = wb["建议站点"]
    rows = _sheet_rows(ws)
    assert rows[0][:3] == ["排序", "经度", "纬度"]
    assert [r[0] for r in rows[1:]] == list(range(1, len(res.siting.sites) + 1))
    share_col = rows[0].index("累计覆盖率") + 1
    assert ws.cell(row=2, column=share_col).number_format == "0.0%"
    assert ws.cell(row=len(rows), column=share_col).value == pytest.approx(res.siting.share_after)
    # scenario comparison
    rows = _sheet_rows(wb["方案比较"])
    assert rows[0][0] == "方案"
    assert [r[0] for r in rows[1:]] == ["现状", "方案A"]
    added = rows[0].index("新增站点数")
    closed = rows[0].index("关闭站点数")
    assert rows[2][added] == 1
    assert rows[2][closed] == 1


def test_workbook_headers_in_english(planned: Any) -> None:
    city, _, res = planned
    files = export.output_files(
        res, city, lang="en", report=False, documents=export.Documents(figure=None)
    )
    wb = openpyxl.load_workbook(io.BytesIO(files[export.TABLES_XLSX]))
    assert wb.sheetnames == ["Coverage", "By level", "By area", "Proposed sites"]
    assert _sheet_rows(wb["Coverage"])[0] == [
        "Walking-time threshold (min)",
        "Residents covered",
        "Residents",
        "Share covered",
        "Residential units covered",
    ]
    assert export.REPORT_HTML not in files
    assert export.MAP_PNG not in files


def test_workbook_text_cells_cannot_run() -> None:
    sheet = export.Sheet(
        "=sheet",
        pd.DataFrame(
            {"name": ["=1+1", "+cmd", "@SUM(A1)", "普通"], "population": [1.4, 2.6, np.nan, 3.0]}
        ),
        {"name": "-name"},
    )
    wb = openpyxl.load_workbook(io.BytesIO(export.workbook_bytes([sheet])))
    ws = wb.worksheets[0]
    assert ws.title == "'=sheet"
    assert _sheet_rows(ws) == [
        ["'-name", "population"],
        ["'=1+1", 1],
        ["'+cmd", 3],
        ["'@SUM(A1)", None],
        ["普通", 3],
    ]
    assert all(c.data_type != "f" for row in ws.iter_rows() for c in row)


def test_workbook_reads_back_as_a_user_table(planned: Any, tmp_path: Path) -> None:
    """The sites sheet of our own workbook is a valid candidates/centers file (lon/lat detected)."""
    from coverage.userfiles import read_points

    city, _, res = planned
    files = export.output_files(res, city, report=False, documents=export.Documents(figure=None))
    path = tmp_path / "tables.xlsx"
    path.write_bytes(files[export.TABLES_XLSX])
    pts = read_points(f"{path}#建议站点")
    sites = res.siting.sites.to_crs(4326)
    assert np.allclose(pts.geometry.x, sites.geometry.x, atol=1e-6)
    assert np.allclose(pts.geometry.y, sites.geometry.y, atol=1e-6)


# --- map.png / map.pdf --------------------------------------------------------------------


def test_map_figure_legend_lists_every_station_state(planned: Any) -> None:
    city, _, res = planned
    layers = figure.figure_layers(res, city)
    assert {k: len(v) for k, v in layers.stations.items()} == {
        "existing": 2,
        "added": 1,
        "closed": 1,
        "proposed": len(res.siting.sites),
    }
    fig = figure.map_figure(layers, title="测试", lang="zh")
    legend = fig.axes[0].get_legend()
    texts = [x.get_text() for x in legend.get_texts()]
    assert texts[0] == "街道"
    for state, n in (("existing", 2), ("added", 1), ("closed", 1)):
        assert f"{t(f'figure.station.{state}', 'zh')} ({n})" in texts
    assert any(x.startswith("建议新增站点") for x in texts)
    assert "步行 5 分钟服务范围" in texts
    assert "步行 15 分钟服务范围" in texts
    fig_en = figure.map_figure(layers, title="Test", lang="en")
    texts_en = [x.get_text() for x in fig_en.axes[0].get_legend().get_texts()]
    assert {"Existing stations (2)", "Added stations (1)", "Closed stations (1)"} <= set(texts_en)
    # title, parameters, date and attribution are on the figure
    words = " ".join(x.get_text() for x in fig.texts)
    assert "步行速度 4.5 公里/小时" in words
    assert "方案A" in words
    assert "OpenStreetMap" in words
    assert "ODbL" in words
    assert "规划者提供的站点表" in words


def test_map_figure_draws_distance_thresholds_in_meters(planned: Any) -> None:
    """With --distance-m the figure's service areas and uncovered housing are the distances'."""
    city, _, _ = planned
    res = pipeline.run(city, Scenario(name="距离", audit=AuditParams(thresholds_m=(300.0, 500.0))))
    layers = figure.figure_layers(res, city)
    assert layers.thresholds_m == (300.0, 500.0)
    assert layers.distance_areas is not None
    assert set(layers.distance_areas["meters"].astype(float)) == {300.0, 500.0}
    fig = figure.map_figure(layers, title="测试", lang="zh")
    texts = [x.get_text() for x in fig.axes[0].get_legend().get_texts()]
    assert "步行 300 米服务范围" in texts
    assert "步行 500 米服务范围" in texts
    assert not [x for x in texts if "分钟" in x]  # the legend no longer speaks of minutes
    assert layers.distance_uncovered is not None
    assert (layers.distance_uncovered["meters"].astype(float) == 500.0).any()
    assert "500 米未覆盖的居住区" in texts
    words = " ".join(x.get_text() for x in fig.texts)
    assert "阈值 5 / 15 分钟、300 / 500 米（路网步行距离）" in words
    fig_en = figure.map_figure(layers, title="Test", lang="en")
    texts_en = [x.get_text() for x in fig_en.axes[0].get_legend().get_texts()]
    assert {"Within a 300 m walk", "Within a 500 m walk"} <= set(texts_en)
    assert not [x for x in texts_en if " min" in x]
    # without distances the figure keeps the minutes
    base = figure.figure_layers(pipeline.run(city, Scenario()), city)
    plain = figure.map_figure(base, title="x", lang="en")
    plain_texts = [x.get_text() for x in plain.axes[0].get_legend().get_texts()]
    assert "Within a 15 min walk" in plain_texts
    assert not [x for x in plain_texts if " m walk" in x]


def test_map_png_size_and_content(planned: Any) -> None:
    city, _, res = planned
    spec = figure.FigureSpec(width_px=900, height_px=640, dpi=100)
    fig = figure.map_figure(figure.figure_layers(res, city), title="测试", spec=spec)
    png = figure.map_png_bytes(fig)
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        assert image.size == (900, 640)
        pixels = np.asarray(image.convert("RGB"), dtype=np.float64)
    assert pixels.std() > 10  # not blank
    # the middle of the map holds streets and areas, not just the white page
    middle = pixels[200:500, 200:700]
    assert (middle.sum(axis=2) < 3 * 250).mean() > 0.05
    pdf = figure.map_pdf_bytes(fig)
    assert pdf.startswith(b"%PDF")
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert float(box.width) == pytest.approx(900 / 100 * 72, abs=1)
    assert float(box.height) == pytest.approx(640 / 100 * 72, abs=1)


def test_output_folder_has_map_png_and_pdf(planned: Any, tmp_path: Path) -> None:
    city, _, res = planned
    out = pipeline.write(res, city, tmp_path / "out")
    for name in ("map.png", "map.pdf", "tables.xlsx", "report.html"):
        assert (out / name).is_file(), name
    assert (out / "map.pdf").read_bytes().startswith(b"%PDF")
    with Image.open(out / "map.png") as image:
        assert image.size == (figure.FigureSpec().width_px, figure.FigureSpec().height_px)
    doc = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert doc["documents"]["files"] == ["map.pdf", "map.png", "tables.xlsx"]
    # the same folder can be written again (every document is listed in our marker)
    pipeline.write(res, city, out)


def test_street_budget_bounds_the_drawing(planned: Any) -> None:
    city, _, res = planned
    spec = figure.FigureSpec(width_px=400, height_px=300, dpi=100, max_street_segments=50)
    fig = figure.map_figure(figure.figure_layers(res, city), title="x", spec=spec)
    from matplotlib.patches import PathPatch

    # the streets are one unfilled path of MOVETO/LINETO pairs (zorder 1, below the areas)
    streets = [
        p for p in fig.axes[0].get_children() if isinstance(p, PathPatch) and not p.get_fill()
    ]
    assert len(streets) == 1
    path = streets[0].get_path()
    segments = path.vertices.reshape(-1, 2, 2)
    assert len(segments) == 50
    net = city.net
    longest = np.argsort(net.edge_length_m)[::-1][:50]
    expected = {
        (
            round(net.node_x[u], 3),
            round(net.node_y[u], 3),
            round(net.node_x[v], 3),
            round(net.node_y[v], 3),
        )
        for u, v in zip(net.edge_u[longest], net.edge_v[longest], strict=True)
    }
    drawn = {(round(a[0], 3), round(a[1], 3), round(b[0], 3), round(b[1], 3)) for a, b in segments}
    assert drawn == expected  # the 50 longest streets, nothing else


def test_scale_bar_length_is_round() -> None:
    assert figure._nice_length_m(5_000) == 1000
    assert figure._nice_length_m(2_600) == 500
    assert figure._nice_length_m(120) == 50


def test_cjk_font_is_installed_or_warned(monkeypatch: pytest.MonkeyPatch) -> None:
    font = figure.cjk_font()
    if font is not None:
        from matplotlib import font_manager

        path = font_manager.findfont(font)
        assert "wqy" in path.lower() or "noto" in path.lower() or "cjk" in path.lower()
    monkeypatch.setattr(figure, "CJK_FONT_FILES", ())
    monkeypatch.setattr(figure, "CJK_FONT_FAMILIES", ("No Such Font 123",))
    with pytest.warns(UserWarning, match="No Chinese font"):
        assert figure.cjk_font() is None


def test_figure_spec_validated() -> None:
    with pytest.raises(InputError, match="width_px"):
        figure.FigureSpec(width_px=10)
    with pytest.raises(InputError, match="dpi"):
        figure.FigureSpec(dpi=5)


# --- the report states its parameters ------------------------------------------------------


def test_report_states_parameters_definition_and_sources(planned: Any) -> None:
    city, _, res = planned
    files = export.output_files(res, city, extra={"scenario": res.scenario.to_dict()})
    page = files[export.REPORT_HTML].decode("utf-8")
    for text in (
        "4.5 公里/小时",
        "5 / 15 分钟",
        "方案A",
        "住处沿街道步行到最近的服务中心不超过 5 / 15 分钟（步行速度 4.5 公里/小时），含从住处走到街道的一段。",
        "由 OpenStreetMap 居住建筑与居住用地估算",
        "规划者提供的站点表",
        "@media print",
        "<img class='cp-print-map' alt='覆盖地图' src='data:image/png;base64,",
    ):
        assert text in page, text
    en = export.output_files(
        res, city, lang="en", documents=export.Documents(figure=None, workbook=False)
    )
    page_en = en[export.REPORT_HTML].decode("utf-8")
    assert "including the walk from home to the street" in page_en
    assert "img.cp-print-map" in page_en  # the style is there, the image is not
    assert "<img class='cp-print-map'" not in page_en


def test_comparison_workbook_for_the_app(planned: Any) -> None:
    _, base, res = planned
    table = compare_scenarios({"现状": base, "方案A": res})
    data = export.comparison_workbook_bytes(table, (5.0, 15.0), lang="en")
    wb = openpyxl.load_workbook(io.BytesIO(data))
    assert wb.sheetnames == ["Scenarios"]
    rows = _sheet_rows(wb["Scenarios"])
    assert rows[0][0] == "Scenario"
    assert [r[0] for r in rows[1:]] == ["现状", "方案A"]
    col = rows[0].index("Share within 15 min")
    assert rows[1][col] == pytest.approx(table["share_15"].iloc[0])
    assert wb["Scenarios"].cell(row=2, column=col + 1).number_format == "0.0%"


def test_polygon_layer_is_one_path_with_open_holes() -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # shell and hole both clockwise: the path is re-oriented, so the hole stays open
    shell = [(0, 0), (0, 10), (10, 10), (10, 0)]
    hole = [(4, 4), (4, 6), (6, 6), (6, 4)]
    far = shapely.Polygon([(12, 2), (12, 4), (14, 4), (14, 2)])
    layer = gpd.GeoDataFrame(geometry=[shapely.Polygon(shell, [hole]), far], crs="EPSG:32648")
    fig = Figure(figsize=(2, 1), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.set_xlim(0, 20)
    ax.set_ylim(0, 10)
    figure._draw_polygons(ax, layer, color="black", alpha=1.0, zorder=1)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())  # row 0 is the top (y = 10)
    assert rgba[90, 10, :3].max() == 0  # (1, 1): inside the shell
    assert rgba[50, 50, :3].min() == 255  # (5, 5): inside the hole
    assert rgba[70, 130, :3].max() == 0  # (13, 3): the second polygon
    assert rgba[50, 170, :3].min() == 255  # (17, 5): nothing


def test_large_shapes_simplified_like_small_ones() -> None:
    # a shape above the coordinate threshold takes Douglas-Peucker; the drawing is the same
    ring = shapely.Point(0, 0).buffer(1000, quad_segs=figure.LARGE_SIMPLIFY_COORDS // 4 + 10)
    small = shapely.Point(0, 0).buffer(1000, quad_segs=64)
    assert shapely.get_num_coordinates(ring) > figure.LARGE_SIMPLIFY_COORDS
    out = figure._simplified(np.array([ring, small, None], dtype=object), 5.0)
    assert out[2] is None
    assert shapely.equals_exact(out[1], shapely.simplify(small, 5.0), 0)
    assert shapely.is_valid(out[0])
    assert shapely.get_num_coordinates(out[0]) < shapely.get_num_coordinates(ring) / 10
    assert shapely.area(shapely.symmetric_difference(out[0], ring)) < 0.01 * ring.area


def test_large_shapes_simplified_ring_by_ring() -> None:
    # a city-wide union: one shell with thousands of holes, and a part too thin to keep.
    # Ring-by-ring Douglas-Peucker keeps every hole that has an area, drops what collapses,
    # and matches GEOS's whole-shape simplification (which repairs validity after) in area.
    shell = shapely.box(0, 0, 10_000, 10_000).buffer(50, quad_segs=64)
    holes = [
        shapely.Point(x, y).buffer(20, quad_segs=8).exterior
        for x in range(100, 10_000, 200)
        for y in range(100, 10_000, 200)
    ]
    city = shapely.Polygon(shell.exterior, holes)
    sliver = shapely.box(20_000, 0, 20_001, 3)  # collapses at a 5 m tolerance
    hole_collapses = shapely.Polygon(
        shapely.box(30_000, 0, 31_000, 1_000).exterior,
        [shapely.box(30_500, 500, 30_501, 501).exterior],
    )
    geom = shapely.MultiPolygon([city, sliver, hole_collapses])
    assert shapely.get_num_coordinates(geom) > figure.LARGE_SIMPLIFY_COORDS
    out = figure._simplified(np.array([geom], dtype=object), 5.0)[0]
    parts = shapely.get_parts(out)
    assert len(parts) == 2  # the sliver is gone
    assert len(parts[0].interiors) == len(holes)  # every 20 m hole survives at 5 m
    assert len(parts[1].interiors) == 0  # the 1 m hole collapsed
    reference = shapely.simplify(geom, 5.0, preserve_topology=False)
    assert abs(out.area - reference.area) < 1e-3 * reference.area
    assert shapely.get_num_coordinates(out) < shapely.get_num_coordinates(geom) / 2
    assert figure._simplified(np.array([sliver], dtype=object), 5.0)[0] is not None  # small: GEOS
    assert figure._rings_simplified(sliver, 5.0) is None
