"""report.html on A4: printed by headless Chromium (report.pdf) and checked in print emulation.

The PDF's page count and page size, the map image on page 1, and in print emulation at the
A4 content width: no table wider than the page, the interactive map and its zoom buttons
hidden, the static map shown. ``--pdf`` without Chromium: a warning, exit 0, a note.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pypdf
import pytest
from conftest import HAIDIAN

from coverage import cli, export, pipeline, report
from coverage.figure import FigureSpec
from coverage.inputs import CityInputs, load_city
from coverage.scenario import Scenario
from coverage.siting import SitingParams

#: these tests are about map.png / map.pdf: in-process outputs draw them (conftest.py)
pytestmark = pytest.mark.figure

CHROMIUM = report.chromium_path()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is missing: run `bash scripts/install_chromium.sh`"
)
#: A4 (210 mm) less the report's 12 mm margins on both sides, in CSS pixels (96 per inch).
A4_CONTENT_PX = (210 - 2 * 12) / 25.4 * 96
A4_PT = (595.28, 841.89)


@pytest.fixture(scope="module")
def pages(cache_dir: Path) -> dict[str, Any]:
    city = load_city(CityInputs(osm=HAIDIAN, cache_dir=cache_dir))
    res = pipeline.run(city, Scenario(name="打印", siting=SitingParams(k=3)))
    with_image = export.output_files(res, city, documents=export.Documents(workbook=False))
    without = export.output_files(
        res, city, lang="en", documents=export.Documents(workbook=False, figure=None)
    )
    return {
        "zh": with_image[export.REPORT_HTML].decode("utf-8"),
        "png": with_image[export.MAP_PNG],
        "en_no_image": without[export.REPORT_HTML].decode("utf-8"),
    }


@pytest.mark.browser
@needs_chromium
def test_report_pdf_pages_and_map_on_page_one(pages: dict[str, Any]) -> None:
    pdf = report.report_pdf_bytes(pages["zh"])
    assert pdf is not None
    assert pdf.startswith(b"%PDF")
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    # title, cards, map, parameters on page 1; curve and the two tables after: 2 or 3 pages
    assert 2 <= len(reader.pages) <= 3
    for page in reader.pages:
        assert float(page.mediabox.width) == pytest.approx(A4_PT[0], abs=2)
        assert float(page.mediabox.height) == pytest.approx(A4_PT[1], abs=2)
    spec = FigureSpec()
    first = [(img.image.width, img.image.height) for img in reader.pages[0].images]
    assert (spec.width_px, spec.height_px) in first, first  # map.png itself, on page 1
    text = reader.pages[0].extract_text()
    assert "参数与定义" in text or "步行速度" in text


def _print_layout(browser: Any, html: str, tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "report.html"
    path.write_text(html, encoding="utf-8")
    page = browser.new_page(viewport={"width": round(A4_CONTENT_PX), "height": 1000})
    try:
        page.emulate_media(media="print")
        page.goto(path.as_uri())
        page.wait_for_timeout(500)
        return page.evaluate(
            """() => {
              const shown = (el) => el !== null && getComputedStyle(el).display !== 'none';
              const iframe = document.querySelector('iframe.cp-map');
              const doc = iframe ? iframe.contentDocument : null;
              const zoom = doc ? doc.querySelector('.leaflet-control-zoom') : null;
              return {
                page: document.documentElement.clientWidth,
                tables: Array.from(document.querySelectorAll('table')).map(
                  t => [t.scrollWidth, t.getBoundingClientRect().right]),
                iframe: shown(iframe),
                image: shown(document.querySelector('img.cp-print-map')),
                image_width: (document.querySelector('img.cp-print-map') || {}).clientWidth || 0,
                zoom: zoom ? getComputedStyle(zoom).display : null,
              };
            }"""
        )
    finally:
        page.close()


@pytest.mark.browser
@needs_chromium
def test_no_table_wider_than_the_page_in_print(pages: dict[str, Any], tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            zh = _print_layout(browser, pages["zh"], tmp_path)
            en = _print_layout(browser, pages["en_no_image"], tmp_path)
        finally:
            browser.close()
    assert zh["page"] <= round(A4_CONTENT_PX)
    assert len(zh["tables"]) >= 3  # parameters, per-center statistics, proposed sites
    for scroll, right in zh["tables"] + en["tables"]:
        assert scroll <= zh["page"], (scroll, zh["page"])
        assert right <= zh["page"] + 1, (right, zh["page"])
    # the static map replaces the interactive one in print
    assert zh["image"] is True
    assert zh["iframe"] is False
    assert zh["image_width"] >= 0.9 * zh["page"]
    # without map.png the interactive map prints, without zoom buttons
    assert en["image"] is False
    assert en["iframe"] is True
    assert en["zoom"] == "none"


def test_pdf_without_chromium_warns_and_notes(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    cache_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(report, "chromium_path", lambda: None)
    out = tmp_path / "out"
    code = cli.main(
        [
            "audit",
            "--osm",
            str(HAIDIAN),
            "--cache-dir",
            str(cache_dir),
            "--no-polygons",
            "--pdf",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    err = capsys.readouterr().err
    assert re.search(r"report\.pdf was not written: no headless Chromium", err), err
    assert not (out / "report.pdf").exists()
    assert (out / "report.html").is_file()
    doc = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert "no headless Chromium" in doc["documents"]["report_pdf"]


@pytest.mark.browser
@needs_chromium
def test_cli_pdf_writes_report_pdf(tmp_path: Path, cache_dir: Path) -> None:
    out = tmp_path / "out"
    code = cli.main(
        [
            "audit",
            "--osm",
            str(HAIDIAN),
            "--cache-dir",
            str(cache_dir),
            "--pdf",
            "--quiet",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    pdf = (out / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF")
    assert len(pypdf.PdfReader(io.BytesIO(pdf)).pages) >= 1
    doc = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert "report.pdf" in doc["documents"]["files"]
    assert "report_pdf" not in doc["documents"]
