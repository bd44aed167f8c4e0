"""Tests for coverage.report: the standalone report.html (headlines, map, tables, curve)."""

from __future__ import annotations

import html
import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from map_fixtures import CHROMIUM, EVIL, EVIL_ESCAPED, EXTERNAL_ASSET, chromium, frames

from coverage.errors import InputError
from coverage.i18n import t
from coverage.maps import MapLayers, coverage_map
from coverage.report import _cell, _headlines, report_html

SUMMARY: dict[str, Any] = {
    "schema_version": 1,
    "coverage": {
        "5": {"population_covered": 300.0, "share": 0.3, "units_covered": 10},
        "15": {"population_covered": 800.0, "share": 0.8, "units_covered": 40},
    },
    "demand": {"units": 60, "population": 1000.0},
    "centers": {"count": 3},
    "siting": {"share_before": 0.8, "share_after": 0.875, "k": 2},
}


def _report(
    *,
    tiles: str | None = None,
    lang: str = "zh",
    summary: dict[str, Any] | None = None,
    **kwargs: Any,
) -> str:
    layers = frames()
    m = coverage_map(MapLayers(**layers), tiles=tiles, lang=lang)  # type: ignore[arg-type]
    tables = {
        "report.table.centers": pd.DataFrame(layers["centers"].drop(columns="geometry")),
        "report.table.sites": layers["sites"],
    }
    curve = pd.DataFrame({"k": [0, 1, 2], "share": [0.8, 0.85, 0.875]})
    return report_html(
        title=f"测试 {EVIL}",
        summary=SUMMARY if summary is None else summary,
        map=m,
        tables=tables,
        lang=lang,
        curve=curve,
        **kwargs,
    )


def _srcdoc(page: str) -> str:
    match = re.search(r'srcdoc="([^"]*)"', page)
    assert match is not None
    return html.unescape(match.group(1))


def test_report_is_standalone_without_tiles() -> None:
    page = _report(tiles=None)
    inner = _srcdoc(page)
    for doc in (page, inner):
        assert not EXTERNAL_ASSET.search(doc)
    assert "Leaflet 1.9.4" in inner
    assert "jQuery v3.7.1" in inner
    assert "tile.openstreetmap.org" not in inner
    assert "img-src data:;" in page  # the CSP forbids any request
    assert "OpenStreetMap contributors" in page


def test_report_with_tiles_allows_only_tile_images() -> None:
    page = _report(tiles="openstreetmap")
    inner = _srcdoc(page)
    assert not EXTERNAL_ASSET.search(inner)
    assert "tile.openstreetmap.org/{z}/{x}/{y}.png" in inner
    assert "img-src data: https:;" in page


def test_report_escapes_user_strings() -> None:
    page = _report()
    assert EVIL not in page
    assert EVIL_ESCAPED in page  # title and the centers table
    assert EVIL not in _srcdoc(page)  # nor in the map inside


def test_report_headlines_tables_and_curve() -> None:
    page = _report(lang="en")
    for text in (
        "30.0%",
        "80.0%",
        "87.5%",
        "Share within 5 minutes",
        "Population beyond 15 minutes",
        "Per-center statistics",
        "Proposed sites",
        "<svg",
        "<polyline",
    ):
        assert text in page, text
    uncovered = re.search(r"<div class='v'>([^<]*)</div><div class='k'>Population beyond 15", page)
    assert uncovered is not None
    assert uncovered.group(1) == "200"
    assert "<td>c2</td>" in page


def test_headlines_in_order() -> None:
    assert _headlines(SUMMARY, "en") == [
        (t("report.headline.share", "en", minutes="5"), "30.0%"),
        (t("report.headline.share", "en", minutes="15"), "80.0%"),
        (t("report.headline.uncovered", "en", minutes="15"), "200"),
        (t("report.headline.population", "en"), "1,000"),
        (t("report.headline.centers", "en"), "3"),
        (t("report.headline.share_after", "en"), "87.5%"),
    ]
    # a bare center count, no siting, no population: only what is known
    assert _headlines({"centers": 4, "coverage": {"15": {"share": 0.5}}}, "en") == [
        (t("report.headline.share", "en", minutes="15"), "50.0%"),
        (t("report.headline.centers", "en"), "4"),
    ]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "—"),
        (np.nan, "—"),
        (pd.NA, "—"),
        (1234.0, "1,234"),
        (0.12345, "0.123"),
        (1.5, "1.5"),
        (2.0, "2"),
        (12345.67, "12,345.7"),
        (True, "✓"),
        (np.bool_(False), "✗"),
        (np.int64(1234567), "1,234,567"),
        ("<b>", "&lt;b&gt;"),
    ],
)
def test_table_cells(value: object, text: str) -> None:
    assert _cell(value) == text


def test_report_truncates_long_tables() -> None:
    page = _report(lang="en", max_rows=1)
    assert "Showing the first 1 of 3 rows." in page


def test_report_rejects_a_curve_without_share() -> None:
    with pytest.raises(InputError, match="share"):
        report_html(
            title="x",
            summary=SUMMARY,
            map=coverage_map(MapLayers(**frames()), tiles=None),
            tables={},
            curve=pd.DataFrame({"k": [0, 1]}),
        )


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_report_renders_offline_in_chromium(tmp_path: Path) -> None:
    from PIL import Image

    report = tmp_path / "report.html"
    report.write_text(_report(tiles=None), encoding="utf-8")
    png = tmp_path / "report.png"
    chromium("--window-size=1200,1000", f"--screenshot={png}", report.as_uri(), cwd=tmp_path)
    assert png.is_file()
    with Image.open(io.BytesIO(png.read_bytes())) as image:
        # the map iframe sits below the title and the headline cards
        region = image.convert("RGB").crop((40, 260, 1160, 820))
        colors = region.getcolors(maxcolors=1_000_000)
    assert colors is not None
    assert len(colors) > 50, "the map area is blank: Leaflet did not run"


@pytest.mark.parametrize(
    ("value", "column", "text"),
    [
        (0.12345, "cumulative_share", "12.3%"),
        (1.0, "share_15", "100.0%"),
        (0.5, "share_after", "50.0%"),
        (1234.56, "population_within_15", "1,235"),
        (12.4, "marginal_population", "12"),
        (0.12345, "snap_distance_m", "0.123"),
        (np.nan, "share_5", "—"),
        (True, "share_5", "✓"),
    ],
)
def test_table_cells_one_number_format(value: object, column: str, text: str) -> None:
    """Shares with one decimal, whole residents, in every table of the report."""
    assert _cell(value, column) == text


def test_report_prints_on_a4_and_names_its_parameters() -> None:
    summary = {
        **SUMMARY,
        "params": {
            "walk_speed_kmh": 4.2,
            "thresholds_min": [5.0, 15.0],
            "population_model": {"source": "file", "file": "人口.geojson"},
        },
        "scenario": {"name": "方案B"},
        "date": "2026-12-01",
        "stations_source": "规划者提供的站点表",
    }
    page = _report(summary=summary)
    assert "@page { size: A4 portrait; margin: 12mm; }" in page
    assert "@media print" in page
    for text in (
        "4.2 公里/小时",
        "5 / 15 分钟",
        "方案B",
        "2026-12-01",
        "人口文件 人口.geojson",
        "规划者提供的站点表",
        "住处沿街道步行到最近的服务中心不超过 5 / 15 分钟（步行速度 4.2 公里/小时）",
    ):
        assert text in page, text
    # the interactive map's own page hides its zoom buttons in print
    assert html.escape(".leaflet-control-zoom, .leaflet-control-layers", quote=True) in page
    assert "<td>70.0%</td>" in page  # the sites table's cumulative share
