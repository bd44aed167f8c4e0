"""The real app in headless Chromium, offline: ``streamlit run app.py`` in a subprocess,
driven with Playwright's Python API against Debian's /usr/bin/chromium.

Every request that does not go to the local Streamlit server is aborted, so the map must
draw from the vendored Leaflet served at app/static/. Tile images are the only outside
requests the page may try (and they fail, leaving a grey background under the layers).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from coverage.i18n import t

ROOT = Path(__file__).resolve().parents[1]
HAIDIAN = ROOT / "data" / "beijing_haidian_cau.osm.bz2"
#: The city the served app loads: the small Haidian fixture, or (to refresh the screenshots
#: of docs/WALKTHROUGH.md) ``COVERAGE_PLANNER_TEST_OSM=data/chengdu_central.osm.bz2``.
TEST_OSM = Path(os.environ.get("COVERAGE_PLANNER_TEST_OSM") or HAIDIAN)
#: Walkthrough screenshots copied to docs/walkthrough/ with COVERAGE_PLANNER_UPDATE_SCREENSHOT.
DOC_SHOTS = (
    "01-first-map",
    "04-closed-center",
    "07-threshold-10",
    "11-optimizer-share",
    "15-gcj02-centers",
)
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TILE_HOSTS = ("tile.openstreetmap.org", "basemaps.cartocdn.com")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="/usr/bin/chromium is missing: run `bash scripts/install_chromium.sh` (Debian chromium)",
    ),
]

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_app(
    tmp: pytest.TempPathFactory, *extra: str, path: str = "", map_first: bool = True
) -> Iterator[str]:
    """``streamlit run app.py`` on a free port (extra CLI options); yields the app's URL.

    `map_first`: the large-city page on the small test city (each new scenario's map drawn
    from its numbers, its service areas built below it, then the page rerun).
    """
    port = free_port()
    cache = tmp.mktemp("app-cache")
    env = {
        **os.environ,
        "COVERAGE_PLANNER_DEFAULT_OSM": str(TEST_OSM),
        "COVERAGE_PLANNER_CACHE": str(cache),
        "COVERAGE_PLANNER_MAP_FIRST_NODES": "0" if map_first else "",
        "PYTHONUNBUFFERED": "1",
    }
    log = (tmp.mktemp("app-log") / "streamlit.log").open("w+")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(ROOT / "app.py"),
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--browser.gatherUsageStats",
            "false",
            *extra,
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://localhost:{port}{path}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"streamlit did not start:\n{log.read()[-3000:]}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve_app(tmp_path_factory) as url:
        yield url


@pytest.fixture(scope="module")
def one_pass_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The small-city page (one pass: the map drawn with its areas)."""
    with serve_app(tmp_path_factory, map_first=False) as url:
        yield url


def offline_context(browser: Any, outside: list[str], **kwargs: Any) -> Any:
    """A browser context that aborts (and records) every request not to the local server."""
    context = browser.new_context(**kwargs)

    def route(r: Any) -> None:
        url = r.request.url
        if url.startswith(("http://localhost", "http://127.0.0.1", "data:", "blob:", "about:")):
            r.continue_()
        else:
            outside.append(url)
            r.abort()

    context.route("**/*", route)
    return context


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


MAP_IFRAME = "iframe[src*='st_folium']:visible"


def map_frame(page: Any) -> Any:
    """The frame of the visible map (a stale one may linger, hidden, while a rerun ends)."""
    loc = page.locator(MAP_IFRAME).first
    loc.wait_for(timeout=90_000)
    for _ in range(300):
        handle = loc.element_handle()
        frame = handle.content_frame() if handle is not None else None
        if frame is not None:
            return frame
        # not time.sleep: route handlers run only inside Playwright calls
        page.wait_for_timeout(100)
    raise AssertionError("no streamlit-folium iframe")


def leaflet_layers(frame: Any) -> dict[str, Any]:
    """Count what Leaflet has on the map (vector layers draw on a canvas: prefer_canvas)."""
    frame.wait_for_function("() => window.L && window.map && window.map._loaded", timeout=90_000)
    return dict(
        frame.evaluate(
            """() => {
                let layers = 0, paths = 0, markers = 0;
                window.map.eachLayer(l => {
                    layers++;
                    if (l instanceof L.Path) paths++;
                    if (l instanceof L.Marker) markers++;
                });
                return {version: L.version, layers, paths, markers,
                        legend: document.body.innerText.length};
            }"""
        )
    )


def stylesheets(frame: Any, expected: str) -> list[str]:
    """The frame's stylesheet URLs, once `expected` is among them (or after 30 s).

    A rerun may swap the map's document in between two calls: wait for the link rather
    than read the list of a page that is still loading.
    """
    with contextlib.suppress(Exception):  # the caller's assertion says what was seen
        frame.wait_for_function(
            "u => Array.from(document.styleSheets).some(s => (s.href || '').includes(u))",
            arg=expected,
            timeout=30_000,
        )
    return [
        str(h)
        for h in frame.evaluate("() => Array.from(document.styleSheets).map(s => s.href || '')")
    ]


def test_offline_map_optimizer_download_screenshot(app_url: str, browser: Any) -> None:
    import geopandas as gpd

    outside: list[str] = []
    context = offline_context(
        browser, outside, viewport={"width": 1440, "height": 1100}, accept_downloads=True
    )
    page = context.new_page()
    page_errors: list[str] = []
    page.on("pageerror", lambda e: page_errors.append(str(e)))
    page.goto(app_url)

    # 1. the map draws with no internet (drawn again once its areas are built: map-first)
    map_frame(page)
    settle(page)
    frame = map_frame(page)
    info = leaflet_layers(frame)
    assert info["version"].startswith("1.9"), info
    assert info["paths"] > 10, info  # service areas, demand, uncovered, centers
    css = stylesheets(frame, "app/static/vendor/leaflet/leaflet.css")
    assert any("app/static/vendor/leaflet/leaflet.css" in h for h in css), css
    not_tiles = [u for u in outside if not any(h in u for h in TILE_HOSTS)]
    assert not not_tiles, f"requests outside localhost (a CDN dependency?): {not_tiles[:5]}"
    assert not page.locator("[data-testid='stException']").count()

    # 2. English labels, then run the optimizer (k = 3 by default)
    page.get_by_text("English", exact=True).click()
    page.get_by_text("Share within 15 min").first.wait_for(timeout=60_000)
    page.get_by_role("button", name="Run the optimizer").click()
    page.get_by_role("button", name="Accept selected sites").wait_for(timeout=120_000)
    # still k stations after the language switch (a stale zh label once meant "target share")
    page.get_by_text("can reach at most").first.wait_for(timeout=30_000)
    settle(page)  # the areas may be built again (a few are kept per server): the final map
    frame = map_frame(page)
    after = leaflet_layers(frame)
    assert after["layers"] >= info["layers"], (info, after)

    # 3. download the proposed sites and read them back
    page.get_by_role("tab", name="Downloads").click()
    button = page.get_by_role("button", name="Proposed sites (GeoJSON)")
    button.wait_for(timeout=30_000)
    with page.expect_download(timeout=120_000) as dl:
        button.click()
    path = ARTIFACTS / "proposed_sites.geojson"
    ARTIFACTS.mkdir(exist_ok=True)
    dl.value.save_as(path)
    sites = gpd.read_file(path)
    assert 1 <= len(sites) <= 3  # greedy stops early once nothing more can be covered
    assert sites.crs is not None
    assert sites.crs.to_epsg() == 4326
    assert list(sites["rank"]) == list(range(1, len(sites) + 1))
    assert sites.geometry.geom_type.eq("Point").all()

    # 4. a screenshot of the whole page with the map
    page.get_by_role("tab", name="Proposed sites").click()
    page.wait_for_timeout(1500)
    shot = ARTIFACTS / "app.png"
    page.screenshot(path=str(shot), full_page=False)
    assert shot.stat().st_size > 20_000
    if os.environ.get("COVERAGE_PLANNER_UPDATE_SCREENSHOT"):
        shutil.copyfile(shot, ROOT / "docs" / "screenshot.png")
    assert not page.locator("[data-testid='stException']").count()
    assert not page_errors, page_errors
    context.close()


def test_click_map_then_add_station(app_url: str, browser: Any) -> None:
    """The real click path: Leaflet click → st_folium last_clicked → sidebar → button."""
    context = offline_context(browser, [], viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.goto(app_url)
    frame = map_frame(page)
    leaflet_layers(frame)
    page.wait_for_timeout(1000)
    box = page.locator(MAP_IFRAME).first.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.4)
    page.get_by_text("地图上选中的位置").wait_for(timeout=60_000)
    values = page.locator("[data-testid='stMetricValue']")
    before = values.all_inner_texts()
    page.get_by_role("button", name="在选中位置新增站点").click()
    page.get_by_text("新增站点：1 个").wait_for(timeout=60_000)
    page.wait_for_function(
        "n => Array.from(document.querySelectorAll(\"[data-testid='stMetricValue']\"))"
        ".map(e => e.innerText)[3] === n",
        arg=str(int(before[3]) + 1),
        timeout=60_000,
    )
    after = values.all_inner_texts()
    assert float(after[1].rstrip("%")) >= float(before[1].rstrip("%"))  # 15-minute share
    context.close()


def test_click_on_a_station_picks_the_point(app_url: str, browser: Any) -> None:
    """A click on a layer with a popup (here a station) opens the popup and also picks the
    point: Leaflet stops such a click before the map sees it (at 300k nodes stations cover
    the map, and no click reached the app), so the app reads the layer's click too."""
    context = offline_context(browser, [], viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.goto(app_url)
    frame = map_frame(page)
    leaflet_layers(frame)
    settle(page)
    frame = map_frame(page)
    station = frame.evaluate(
        """() => {
            const size = window.map.getSize();
            let best = null;
            window.map.eachLayer(l => {
                if (!(l instanceof L.CircleMarker) || !l.getPopup() || !l.feature) return;
                const html = String(l.getPopup()._content(l));
                if (!html.includes('编号')) return;  // a station's popup: 名称, 编号 (, 级别)
                const p = window.map.latLngToContainerPoint(l.getLatLng());
                const d = Math.hypot(p.x - size.x / 2, p.y - size.y / 2);
                if (!best || d < best.d) best = {d, x: p.x, y: p.y, lat: l.getLatLng().lat};
            });
            return best;
        }"""
    )
    assert station is not None, "no station marker with a popup on the map"
    box = page.locator(MAP_IFRAME).first.bounding_box()
    page.mouse.click(box["x"] + station["x"], box["y"] + station["y"])
    caption = page.get_by_text("地图上选中的位置")
    caption.wait_for(timeout=60_000)
    lat = float(caption.inner_text().split("：")[1].split(",")[0])
    assert abs(lat - station["lat"]) < 2e-4, (lat, station)  # the marker's radius, in degrees
    assert map_frame(page).locator(".leaflet-popup-content").count() == 1  # and its popup
    page.get_by_role("button", name="在选中位置新增站点").click()
    page.get_by_text("新增站点：1 个").wait_for(timeout=60_000)
    assert not page.locator("[data-testid='stException']").count()
    context.close()


def test_rename_an_added_station_in_the_stations_table(one_pass_url: str, browser: Any) -> None:
    """Issue 13: an added station's name is edited in the stations table (the data editor)
    and lands in the scenario (the English page's table, drawn anew, shows it).

    On the one-pass page: on the map-first page, under two loaded test workers, the edit
    failed to show in the grid within 3 × 10 s, then 3 × 30 s (twice in five runs; not explained).
    """
    app_url = one_pass_url
    context = offline_context(browser, [], viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.goto(app_url)
    leaflet_layers(map_frame(page))
    page.wait_for_timeout(1000)
    box = page.locator(MAP_IFRAME).first.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.47, box["y"] + box["height"] * 0.55)
    page.get_by_text("地图上选中的位置").wait_for(timeout=60_000)
    page.get_by_role("button", name="在选中位置新增站点").click()
    page.get_by_text("新增站点：1 个").wait_for(timeout=60_000)
    settle(page)
    page.get_by_role("tab", name="站点", exact=True).click()
    grid = page.locator("[data-testid='stDataFrame']:visible").first
    grid.wait_for(timeout=30_000)
    grid.locator("[id^='glide-cell-0-']", has_text="added-1").wait_for(
        state="attached", timeout=30_000
    )
    rows = [
        grid.locator(f"#glide-cell-0-{i}").inner_text()
        for i in range(grid.locator("[id^='glide-cell-0-']").count())
    ]
    row = rows.index("added-1")  # existing centers first, then the added station
    # the grid is a canvas: select the row's first cell, step to the name, edit it
    row_px = 35  # Streamlit's data editor: header and rows 35 px high
    typed = (
        "sel => Array.from(document.querySelectorAll(sel)).some(e => e.textContent === '东门站')"
    )
    for attempt in range(3):  # a click during a rerun (a loaded machine) may not open the editor
        gb = grid.bounding_box()
        page.mouse.click(gb["x"] + 30, gb["y"] + row_px * (row + 1) + row_px / 2)
        page.keyboard.press("ArrowRight")
        page.keyboard.press("Enter")
        page.wait_for_timeout(300)
        page.keyboard.press("Control+A")
        page.keyboard.insert_text("东门站")
        page.keyboard.press("Enter")
        settle(page)
        try:
            page.wait_for_function(typed, arg=f"#glide-cell-1-{row}", timeout=10_000)
            break
        except Exception:
            if attempt == 2:
                raise
            page.keyboard.press("Escape")
    # the English page draws a new table from the scenario: the name was stored, not only typed
    page.get_by_text("English", exact=True).click()
    page.get_by_text("Share within 15 min").first.wait_for(timeout=60_000)
    settle(page)
    page.get_by_role("tab", name="Stations", exact=True).first.click()
    cell = page.locator(f"[data-testid='stDataFrame']:visible #glide-cell-1-{row}").first
    page.wait_for_function(typed, arg=f"#glide-cell-1-{row}", timeout=60_000)
    assert cell.inner_text() == "东门站"
    context.close()


def test_map_draws_offline_under_a_sub_path(
    tmp_path_factory: pytest.TempPathFactory, browser: Any
) -> None:
    """Behind a reverse proxy (`server.baseUrlPath`), the vendored Leaflet still loads."""
    with serve_app(tmp_path_factory, "--server.baseUrlPath", "coverage", path="/coverage") as url:
        outside: list[str] = []
        context = offline_context(browser, outside, viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.goto(url + "/")
        frame = map_frame(page)
        info = leaflet_layers(frame)
        assert info["version"].startswith("1.9"), info
        assert info["paths"] > 10, info
        css = stylesheets(frame, "/coverage/app/static/vendor/leaflet/leaflet.css")
        assert any("/coverage/app/static/vendor/leaflet/leaflet.css" in h for h in css), css
        not_tiles = [u for u in outside if not any(h in u for h in TILE_HOSTS)]
        assert not not_tiles, not_tiles[:5]
        context.close()


def test_hostile_osm_name_stays_text_in_real_popups(
    tmp_path_factory: pytest.TempPathFactory, browser: Any
) -> None:
    """A center named `<script>…<img onerror>` opens as plain text in Leaflet's popups and
    tooltips (map page and report.html), and no script or handler of it ever runs."""
    from coverage import export
    from coverage.assets import offline_map_html
    from coverage.inputs import CityInputs, load_city
    from coverage.maps import MapLayers, coverage_map
    from coverage.pipeline import run
    from coverage.scenario import Scenario

    hostile = ROOT / "tests" / "data" / "hostile" / "xss_center.osm"
    tmp = tmp_path_factory.mktemp("xss")
    city = load_city(CityInputs(osm=hostile, cache_dir=tmp / "cache"))
    res = run(city, Scenario(), with_polygons=False)
    name = str(city.centers["name"].iloc[0])
    assert "<script>" in name
    map_page = tmp / "map.html"
    map_page.write_text(
        offline_map_html(coverage_map(MapLayers(centers=res.centers, demand=res.audit.demand))),
        encoding="utf-8",
    )
    files = export.output_files(res, city, title="xss")
    report = tmp / "report.html"
    report.write_bytes(files["report.html"])

    context = browser.new_context()
    dialogs: list[str] = []
    for path in (map_page, report):
        page = context.new_page()
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(path.as_uri(), wait_until="load")
        frame = page.frames[1] if path == report else page.main_frame
        frame.wait_for_function("() => window.L !== undefined", timeout=30_000)
        shown = frame.evaluate(
            """() => {
                let maps = [];
                for (const k in window) { try { if (window[k] instanceof L.Map) maps.push(window[k]); } catch (e) {} }
                let texts = [];
                for (const m of maps) {
                    m.eachLayer(l => {
                        for (const [get, open] of [["getPopup", "openPopup"], ["getTooltip", "openTooltip"]]) {
                            if (l[get] && l[get]()) {
                                if (l.getLatLng) { l[open](); } else if (l.getBounds) { l[open](l.getBounds().getCenter()); }
                                const el = l[get]().getElement();
                                if (el) texts.push(el.textContent);
                            }
                        }
                    });
                }
                return {texts, injected: document.querySelectorAll(".leaflet-pane img[src='x'], .leaflet-pane script").length};
            }"""
        )
        assert shown["injected"] == 0, path.name
        assert any("<script>alert(1)</script>" in t for t in shown["texts"]), (path.name, shown)
        page.wait_for_timeout(300)
    assert dialogs == []  # neither alert(1) nor the onerror alert(2) ran
    context.close()


def settle(page: Any) -> None:
    """Wait until Streamlit has finished the rerun an action started."""
    page.wait_for_timeout(1200)
    page.wait_for_function(
        "() => !document.querySelector(\"[data-testid='stStatusWidget'] button\")"
        " && !document.querySelector(\"[data-testid='stSpinner']\")"
        # the app's status box (st.status) stands where the map was while the service areas
        # of a new speed are built; under a loaded two-worker run this outlasted 30 s (CI)
        " && !document.querySelector(\"[data-testid='stExpanderIconSpinner']\")",
        timeout=180_000,
    )
    page.wait_for_timeout(800)


def visible_map(page: Any, step: str, shots: Path, errors: list[str]) -> dict[str, Any]:
    """Assert the map iframe is shown (> 300 px), holds Leaflet layers and no page error was
    raised; save a screenshot of the step. Returns the Leaflet layer counts."""
    settle(page)
    with contextlib.suppress(Exception):  # the assertion below says what was seen
        page.wait_for_function(
            "() => Array.from(document.querySelectorAll(\"iframe[src*='st_folium']\"))"
            ".some(f => f.getBoundingClientRect().height > 300)",
            timeout=90_000,
        )
    box = page.locator(MAP_IFRAME).first.bounding_box()
    if box is None:  # what the page showed instead, for the failure's reader
        page.screenshot(path=str(shots / f"{step}-no-map.png"), full_page=True)
    assert box is not None, (step, errors)
    assert box["height"] > 300, (step, box, errors)
    counts = leaflet_layers(map_frame(page))
    for _ in range(20):  # the component may still be drawing the new map: wait until stable
        page.wait_for_timeout(500)
        again = leaflet_layers(map_frame(page))
        if again == counts:
            break
        counts = again
    page.wait_for_timeout(500)  # Leaflet's canvas paints after the layers are added
    page.screenshot(path=str(shots / f"{step}.png"), full_page=False)
    assert counts["paths"] > 10, (step, counts)
    assert not errors, (step, errors)
    assert not page.locator("[data-testid='stException']").count(), step
    return counts


def map_while_building(
    page: Any, action: Callable[[], None], timeout_s: float = 120.0
) -> list[float]:
    """Do `action`; return the heights of the maps drawn since, while its areas were built.

    The iframes shown before `action` are marked; from then on the page is polled every
    50 ms until the status box that builds the service areas has come and gone. Each poll
    in which it shows adds the tallest unmarked (new) map iframe's height (-1: none; 0 while
    the new map loads).
    """
    mark = "() => document.querySelectorAll(\"iframe[src*='st_folium']\").forEach(f => f.dataset.before = '1')"
    probe = (
        f"() => [document.body.innerText.includes({t('app.running.areas').rstrip('…')!r}),"
        " Math.max(-1, ...Array.from(document.querySelectorAll(\"iframe[src*='st_folium']\"))"
        ".filter(f => !f.dataset.before).map(f => f.getBoundingClientRect().height))]"
    )
    page.evaluate(mark)
    action()
    heights: list[float] = []
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        building, height = page.evaluate(probe)
        if building:
            heights.append(float(height))
        elif heights:
            break
        page.wait_for_timeout(50)
    return heights


def overlay_names(frame: Any) -> list[str]:
    """Names of the map's overlays, as its layer control lists them."""
    return [
        str(n).strip()
        for n in frame.evaluate(
            "() => Array.from(document.querySelectorAll("
            "'.leaflet-control-layers-overlays label span')).map(e => e.textContent)"
        )
    ]


class Walk:
    """One walk through docs/WALKTHROUGH.md: after each step the map is visible (> 300 px),
    its Leaflet container holds the expected layers and no page error was raised; a
    screenshot per step is kept in test-artifacts/walkthrough/."""

    def __init__(self, page: Any, shots: Path, errors: list[str]) -> None:
        self.page, self.shots, self.errors, self.n = page, shots, errors, 0

    def check(self, step: str, *expected: str, absent: tuple[str, ...] = ()) -> dict[str, Any]:
        self.n += 1
        counts = visible_map(self.page, f"{self.n:02d}-{step}", self.shots, self.errors)
        names = overlay_names(map_frame(self.page))
        for _ in range(20):  # the component may still be swapping the map in
            if all(e in names for e in expected) and not any(a in names for a in absent):
                break
            self.page.wait_for_timeout(500)
            names = overlay_names(map_frame(self.page))
        assert {"街道（离线底图）", "Streets (offline base map)"} & set(names), (step, names)
        for name in expected:
            assert name in names, (step, name, names)
        for name in absent:
            assert name not in names, (step, name, names)
        return counts

    def sidebar_multiselect(self, label: str) -> Any:
        return self.page.locator("[data-testid='stSidebar'] [data-testid='stMultiSelect']").filter(
            has_text=label
        )

    def open_list(self, label: str) -> None:
        """Open a sidebar multiselect's list (a click during a rerun may be lost: retry)."""
        box = self.sidebar_multiselect(label)
        for attempt in range(5):
            if attempt:
                settle(self.page)
            box.locator("input").click()
            with contextlib.suppress(Exception):
                self.page.get_by_role("option").first.wait_for(timeout=5_000)
                return
            self.page.keyboard.press("Escape")
        raise AssertionError(f"the list of {label!r} did not open")

    def choose(self, label: str, option: Any) -> None:
        """Open `label`'s list and click `option` (a locator); a rerun that redraws the
        sidebar closes an open list (seen on a loaded machine): open it again."""
        for attempt in range(5):
            self.open_list(label)
            # no untranslated bulk option ("Select all") that would pick every entry at once
            texts = self.page.get_by_role("option").all_inner_texts()
            assert "Select all" not in texts, texts[:3]
            try:
                option.click(timeout=5_000)
            except Exception:
                if attempt == 4:
                    raise
                continue
            self.page.keyboard.press("Escape")
            return

    def pick_first(self, label: str) -> None:
        self.choose(label, self.page.get_by_role("option").first)

    def pick(self, label: str, option: str) -> None:
        self.choose(label, self.page.get_by_role("option", name=option, exact=True))


def gcj02_centers_csv(tmp: Path) -> Path:
    """Two centers on residential areas of the Haidian fixture, written in GCJ-02 (Amap)."""
    from coverage.coords import wgs84_to_gcj02
    from coverage.osm import read_osm

    pts = read_osm(TEST_OSM).residential.geometry.representative_point().iloc[:2]
    lon, lat = wgs84_to_gcj02(pts.x.to_numpy(), pts.y.to_numpy())
    path = tmp / "街道站点_gcj02.csv"
    rows = "".join(
        f"站点{i},{x:.7f},{y:.7f}\n" for i, (x, y) in enumerate(zip(lon, lat, strict=True))
    )
    path.write_text("name,lon,lat\n" + rows, encoding="utf-8")
    return path


def click_for_download(page: Any, button: Any) -> Any:
    """Click a download button and return its download; click once more if none starts.

    Under a loaded full suite a click that lands while Streamlit redraws the tab can be
    lost (seen in CI); the second click must then deliver, or the test fails.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        with page.expect_download(timeout=60_000) as dl:
            button.click()
        return dl.value
    except PlaywrightTimeout:
        with page.expect_download(timeout=120_000) as dl:
            button.click()
        return dl.value


def test_walkthrough_end_to_end(app_url: str, browser: Any, tmp_path: Path) -> None:
    """docs/WALKTHROUGH.md from start to end, in headless Chromium with no network."""
    shots = ARTIFACTS / "walkthrough"
    shots.mkdir(parents=True, exist_ok=True)
    outside: list[str] = []
    context = offline_context(
        browser, outside, viewport={"width": 1440, "height": 1000}, accept_downloads=True
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    console: list[str] = []  # console errors other than the blocked (offline) requests
    page.on(
        "console",
        lambda m: (
            console.append(m.text)
            if m.type == "error" and "Failed to load resource" not in m.text
            else None
        ),
    )
    page.goto(app_url)
    map_frame(page)
    walk = Walk(page, shots, errors)
    start = walk.check("first-map", "现有党群服务中心", "15分钟步行服务范围")
    page.get_by_text("基准方案保持原样").wait_for(timeout=30_000)

    # 1. pick a site on the map, add it (into the working scenario: the baseline stays)
    box = page.locator(MAP_IFRAME).first.bounding_box()
    # near the middle: the first view is fitted to the data, so this is inside the city
    page.mouse.click(box["x"] + box["width"] * 0.47, box["y"] + box["height"] * 0.55)
    page.get_by_text("地图上选中的位置").wait_for(timeout=60_000)
    picked = walk.check("picked-site")
    assert picked["layers"] >= start["layers"], (start, picked)
    page.get_by_role("textbox", name="新站点名称").fill("新站甲")
    page.get_by_role("button", name="在选中位置新增站点").click()
    page.get_by_text("新增站点：1 个").wait_for(timeout=60_000)
    walk.check("added-station", "新增站点")
    page.get_by_role("button", name="重置为基准方案").wait_for(timeout=30_000)

    # 2. close a center, then restore it
    walk.pick_first("关闭现有服务中心")
    page.get_by_role("button", name="恢复全部关闭的中心").wait_for(timeout=60_000)
    walk.check("closed-center", "已关闭的服务中心（可恢复）")
    closures = page.locator("[data-testid='stMultiSelect']").filter(has_text="关闭现有服务中心")
    assert closures.locator("[data-tag-index]").count() == 1  # one center closed, not all
    restore = page.get_by_role("button", name="恢复全部关闭的中心")
    settle(page)
    before = restore.bounding_box()
    restore.click()  # once: the button no longer moves when the click blurs the list
    restore.wait_for(state="hidden", timeout=30_000)  # shown only while one is closed
    assert before is not None
    walk.check("restored-center", absent=("已关闭的服务中心（可恢复）",))

    # 3. speed and thresholds
    slider = page.get_by_role("slider").first
    slider.focus()
    slider.press("ArrowLeft")
    walk.check("slower")
    walk.pick("步行时间阈值（分钟）", "10.0")
    page.get_by_text("10 分钟步行覆盖率").first.wait_for(timeout=60_000)
    walk.check("threshold-10", "10分钟步行服务范围")

    # 4. zh → en → zh
    page.get_by_text("English", exact=True).click()
    page.get_by_text("Share within 15 min").first.wait_for(timeout=60_000)
    walk.check("english", "Existing service centers", "Added stations")
    page.get_by_text("中文", exact=True).click()
    page.get_by_text("15 分钟步行覆盖率").first.wait_for(timeout=60_000)
    walk.check("back-to-chinese", "新增站点")

    # 5. the optimizer, both modes
    page.get_by_role("button", name="运行选址优化").click()
    page.get_by_role("button", name="采纳所选站点").wait_for(timeout=120_000)
    page.get_by_text("个站点可证明最多达到").wait_for(timeout=30_000)
    walk.check("optimizer-k", "建议新增站点")
    page.get_by_text("达到目标覆盖率", exact=True).click()
    page.get_by_text("目标覆盖率（%）").wait_for(timeout=30_000)
    page.get_by_role("button", name="运行选址优化").click()
    page.get_by_text("需新增").first.wait_for(timeout=120_000)
    walk.check("optimizer-share", "建议新增站点")
    page.get_by_role("tab", name="建议站点").click()
    accept = page.locator("[data-testid='stMultiSelect']").filter(has_text="选择要采纳的站点")
    accept.locator("input").click()
    page.keyboard.type("1")  # rank 1 (typing also opens the list when the click did not)
    page.get_by_role("option", name="1", exact=True).click()
    page.keyboard.press("Escape")
    page.get_by_role("button", name="采纳所选站点").click()
    page.get_by_text("已采纳站点：1 个").wait_for(timeout=60_000)
    walk.check("accepted-site", "采纳的建议站点", absent=("建议新增站点",))

    # 6. copy and compare scenarios
    page.get_by_role("textbox", name="新方案名称").fill("方案乙")
    page.get_by_role("button", name="复制为新方案").click()
    for attempt in range(3):  # the copy's rerun may redraw the tabs under the click: again
        settle(page)
        page.get_by_role("tab", name="方案对比").click()
        try:
            page.locator("[data-testid='stDataFrame']:visible").first.wait_for(timeout=30_000)
            break
        except Exception:
            if attempt == 2:
                raise
    walk.check("compare", "采纳的建议站点")

    # 7. a centers CSV in GCJ-02, loaded after a closure: the closure is dropped with a notice
    walk.pick_first("关闭现有服务中心")
    walk.check("closure-before-load", "已关闭的服务中心（可恢复）")
    page.get_by_text("数据", exact=True).click()
    page.get_by_text("上传文件（GeoJSON / CSV）").click()
    uploader = page.locator("[data-testid='stFileUploader']").filter(has_text="服务中心文件")
    # Streamlit's own uploader texts ("Upload", "200MB per file") are replaced by ours
    shown = uploader.evaluate(
        """u => {
            const p = u.querySelector("button [data-testid='stMarkdownContainer'] p");
            const s = u.querySelector("[data-testid='stFileUploaderDropzoneInstructions'] span");
            return [getComputedStyle(p).fontSize, getComputedStyle(p, '::after').content,
                    getComputedStyle(s).fontSize, getComputedStyle(s, '::after').content];
        }"""
    )
    assert shown[0] == "0px", shown
    assert shown[2] == "0px", shown
    assert shown[1] == '"选择文件"', shown
    assert "每个文件不超过 200 MB" in shown[3], shown
    page.screenshot(path=str(shots / "uploader-zh.png"))
    uploader.locator("input[type='file']").set_input_files(str(gcj02_centers_csv(tmp_path)))
    page.get_by_text("街道站点_gcj02.csv").first.wait_for(timeout=30_000)
    crs = page.locator("[data-testid='stSelectbox']").filter(has_text="坐标系")
    crs.click()
    page.get_by_role("option", name="GCJ-02 (高德/腾讯)").click()
    page.get_by_role("button", name="加载数据").click()
    page.get_by_text("已从所有方案中取消这些关闭").wait_for(timeout=120_000)
    walk.check("gcj02-centers", absent=("已关闭的服务中心（可恢复）",))

    # 8. every download
    page.get_by_role("tab", name="导出").click()
    # :visible: the compare tab has its own (hidden) download button
    buttons = page.locator("[data-testid='stDownloadButton'] button:visible")
    buttons.first.wait_for(timeout=60_000)
    names = []
    for i in range(buttons.count()):
        # at a person's pace: Chromium fetched map.png but started no download when its
        # click came 0.1 s after the previous file's (the retry's 60 s wait, every run)
        page.wait_for_timeout(500)
        download = click_for_download(page, buttons.nth(i))
        target = tmp_path / download.suggested_filename
        download.save_as(target)
        assert target.stat().st_size > 0, target.name
        names.append(target.name)
    assert {"summary.csv", "summary.json", "report.html", "centers.geojson"} <= set(names), names
    summary = (tmp_path / "summary.csv").read_text(encoding="utf-8-sig")
    assert summary.splitlines()[0].startswith("方案,"), summary  # labelled for the planner
    walk.check("downloads")

    # 9. the speed slider moved on and back to a value already drawn: the map is drawn again
    slider = page.get_by_role("slider").first
    slider.focus()
    seen = map_while_building(page, lambda: slider.press("ArrowLeft"))
    # the new speed's areas are built below its map, drawn at once from its numbers
    assert seen, "the status box building the service areas was never seen"
    assert max(seen) >= 0, seen
    walk.check("speed-on")
    slider.focus()
    slider.press("ArrowRight")
    walk.check("speed-back", "现有党群服务中心")
    assert not console, console[:5]
    not_tiles = [u for u in outside if not any(h in u for h in TILE_HOSTS)]
    assert not not_tiles, not_tiles[:5]
    context.close()
    if os.environ.get("COVERAGE_PLANNER_UPDATE_SCREENSHOT"):
        docs = ROOT / "docs" / "walkthrough"
        docs.mkdir(exist_ok=True)
        for name in DOC_SHOTS:
            shutil.copyfile(shots / f"{name}.png", docs / f"{name}.png")
