"""Tests for coverage.maps (folium maps, report.html) and coverage.i18n."""

from __future__ import annotations

import html
import io
import json
import re
import shutil
import string
import subprocess
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from jinja2.utils import htmlsafe_json_dumps
from shapely.geometry import Point, box

from coverage.assets import offline_map_html
from coverage.errors import InputError
from coverage.i18n import LANGS, MESSAGES, t
from coverage.maps import _demand_grid, coverage_map, report_html

CRS = "EPSG:32648"  # UTM 48N (Chengdu)
X0, Y0 = 408_000.0, 3_392_000.0
EVIL = "<script>alert(1)</script>"
EVIL_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"

# <script src="http..."> or <link ... href="http..."> (after un-escaping the srcdoc iframe)
EXTERNAL_ASSET = re.compile(
    r"""<(script|link)\b[^>]*\b(src|href)\s*=\s*["']?\s*(https?:)?//""", re.IGNORECASE
)


# --------------------------------------------------------------------------------------------
# Fixtures: small frames that follow docs/ARCHITECTURE.md, in a projected CRS


@pytest.fixture
def centers() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "center_id": ["c1", "c2", "c3"],
            "name": [EVIL, "东城`${x}`\\", None],
            "source": ["osm", "file", "added"],
            "level": ["street", None, "community"],
        },
        geometry=[Point(X0, Y0), Point(X0 + 800, Y0 + 300), Point(X0 - 600, Y0 - 500)],
        crs=CRS,
    )


@pytest.fixture
def service_areas() -> gpd.GeoDataFrame:
    c = Point(X0, Y0)
    return gpd.GeoDataFrame(
        {"center_id": ["all", "all", "c1", "c1"], "minutes": [5.0, 15.0, 5.0, 15.0]},
        geometry=[c.buffer(300), c.buffer(900), c.buffer(300), c.buffer(900)],
        crs=CRS,
    )


def _demand(n: int, *, side_m: float = 20.0, step_m: float = 30.0) -> gpd.GeoDataFrame:
    cols = int(np.ceil(np.sqrt(n)))
    i = np.arange(n)
    x = X0 - 1000 + (i % cols) * step_m
    y = Y0 - 1000 + (i // cols) * step_m
    minutes = np.linspace(0.0, 40.0, n)
    minutes[::7] = np.nan  # some units cannot reach any center
    return gpd.GeoDataFrame(
        {
            "demand_id": [f"d{k}" for k in i],
            "population": np.full(n, 12.5),
            "kind": "building",
            "name": [EVIL if k == 0 else f"楼{k}" for k in i],
            "minutes_to_nearest": minutes,
        },
        geometry=[box(a, b, a + side_m, b + side_m) for a, b in zip(x, y, strict=True)],
        crs=CRS,
    )


@pytest.fixture
def demand() -> gpd.GeoDataFrame:
    return _demand(60)


@pytest.fixture
def uncovered() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"minutes": [5.0, 15.0], "population": [100.0, 50.0], "area_m2": [1e4, 1e4]},
        geometry=[box(X0 + 1000, Y0, X0 + 1100, Y0 + 100), box(X0 + 1200, Y0, X0 + 1300, Y0 + 100)],
        crs=CRS,
    )


@pytest.fixture
def sites() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "rank": [2, 1],
            "marginal_population": [200.0, 500.0],
            "cumulative_population": [700.0, 500.0],
            "cumulative_share": [0.7, 0.5],
        },
        geometry=[Point(X0 + 1250, Y0 + 50), Point(X0 + 1050, Y0 + 50)],
        crs=CRS,
    )


@pytest.fixture
def districts() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"name": ["锦江区", EVIL]},
        geometry=[
            box(X0 - 1500, Y0 - 1500, X0, Y0 + 1500),
            box(X0, Y0 - 1500, X0 + 2000, Y0 + 1500),
        ],
        crs=CRS,
    )


@pytest.fixture
def layers(centers, service_areas, demand, uncovered, sites, districts):  # type: ignore[no-untyped-def]
    return {
        "centers": centers,
        "service_areas": service_areas,
        "demand": demand,
        "uncovered": uncovered,
        "sites": sites,
        "districts": districts,
    }


SUMMARY = {
    "schema_version": 1,
    "coverage": {
        "5": {"population_covered": 300.0, "share": 0.3, "units_covered": 10},
        "15": {"population_covered": 800.0, "share": 0.8, "units_covered": 40},
    },
    "demand": {"units": 60, "population": 1000.0},
    "centers": {"count": 3},
    "siting": {"share_before": 0.8, "share_after": 0.875, "k": 2},
}


def _report(layers, *, tiles=None, lang="zh", **kwargs) -> str:  # type: ignore[no-untyped-def]
    m = coverage_map(**layers, tiles=tiles, lang=lang)
    tables = {
        "report.table.centers": pd.DataFrame(layers["centers"].drop(columns="geometry")),
        "report.table.sites": layers["sites"],
    }
    curve = pd.DataFrame({"k": [0, 1, 2], "share": [0.8, 0.85, 0.875]})
    return report_html(
        title=f"测试 {EVIL}",
        summary=SUMMARY,
        map=m,
        tables=tables,
        lang=lang,
        curve=curve,
        **kwargs,
    )


def _in_script(label: str, page: str) -> bool:
    """Whether `label` appears in the page, as folium's ``tojson`` filter writes it."""
    return str(htmlsafe_json_dumps(label))[1:-1] in page


def _srcdoc(page: str) -> str:
    match = re.search(r'srcdoc="([^"]*)"', page)
    assert match is not None
    return html.unescape(match.group(1))


# --------------------------------------------------------------------------------------------
# coverage_map


def test_coverage_map_has_every_layer_legend_and_attribution(layers) -> None:  # type: ignore[no-untyped-def]
    m = coverage_map(**layers, lang="en", tiles=None)
    page = m.get_root().render()
    for name in (
        "Existing service centers",
        "5-minute walking service area",
        "15-minute walking service area",
        "Residents' walking time (minutes)",
        "Residential areas beyond 15 minutes",
        "Proposed sites",
        "Districts",
    ):
        assert _in_script(name, page), name
    assert "cp-legend" in page
    assert "L.control.layers" in page
    assert "OpenStreetMap<\\/a> contributors" in page  # addAttribution, also without tiles
    assert "tile.openstreetmap.org" not in page
    assert _in_script('<div class="cp-site">1</div>', page)


def test_coverage_map_in_chinese_uses_chinese_layer_names(layers) -> None:  # type: ignore[no-untyped-def]
    page = coverage_map(**layers, lang="zh", tiles=None).get_root().render()
    for key in ("map.layer.centers", "map.layer.sites", "map.layer.districts"):
        assert _in_script(t(key, "zh"), page), key


def test_coverage_map_escapes_user_strings(layers) -> None:  # type: ignore[no-untyped-def]
    page = offline_map_html(coverage_map(**layers, tiles=None))
    assert EVIL not in page
    assert EVIL_ESCAPED in page  # popup of center c1
    # backticks, `${` and backslashes would be code inside folium's JS template literals
    assert "`${x}`" not in page
    assert "&#96;&#36;{x}&#96;&#92;" in page


def test_coverage_map_tiles(layers) -> None:  # type: ignore[no-untyped-def]
    osm = coverage_map(**layers, tiles="openstreetmap").get_root().render()
    assert "tile.openstreetmap.org" in osm
    light = coverage_map(**layers, tiles="light").get_root().render()
    assert "tile.openstreetmap.org" in light  # the same tiles, desaturated by CSS
    assert "cp-tiles-light" in light
    with pytest.raises(InputError, match="tiles"):
        coverage_map(**layers, tiles="satellite")  # type: ignore[arg-type]


def test_coverage_map_does_not_modify_inputs(layers) -> None:  # type: ignore[no-untyped-def]
    before = {k: v.copy() for k, v in layers.items()}
    coverage_map(**layers)
    for k, v in layers.items():
        pd.testing.assert_frame_equal(v, before[k])
        assert v.crs == before[k].crs


def test_coverage_map_rounds_coordinates_to_six_decimals(layers) -> None:  # type: ignore[no-untyped-def]
    m = coverage_map(**layers, tiles=None, tolerance_m=0.0)
    page = m.get_root().render()
    # GEOS writes "type" first, folium "coordinates" first: a coordinate array is what
    # follows "coordinates" up to the next key or the end of the geometry
    data = re.findall(r'"coordinates":\s*(\[[^a-z]*?\])\s*(?:,\s*"|\})', page)
    numbers = re.findall(r"-?\d+\.\d+", " ".join(data))
    assert numbers
    assert all(len(n.split(".")[1]) <= 6 for n in numbers)
    # lon/lat of Chengdu, not UTM meters
    lon_lat = np.array([float(n) for n in numbers]).reshape(-1, 2)
    assert np.all((lon_lat[:, 0] > 103) & (lon_lat[:, 0] < 105))
    assert np.all((lon_lat[:, 1] > 30) & (lon_lat[:, 1] < 31.5))


def test_point_demand_is_drawn_as_circles(demand) -> None:  # type: ignore[no-untyped-def]
    points = demand.set_geometry(demand.geometry.centroid)
    page = coverage_map(demand=points, tiles=None).get_root().render()
    assert "new L.CircleMarker(latlng, opts)" in page


def test_layers_render_through_streamlit_folium(layers) -> None:  # type: ignore[no-untyped-def]
    # st_folium renders each element's `script` macro, not the page
    sf = pytest.importorskip("streamlit_folium")
    m = coverage_map(**layers, tiles=None, lang="en")
    m.render()
    js = sf.generate_leaflet_string(m)
    assert "function cpTable" in js
    # districts, 2 service areas, 5 demand classes, 2 uncovered layers, centers
    assert js.count("L.geoJson(") == 11
    assert js.count(".addTo(") >= 10  # all but the hidden 5-minute uncovered layer
    assert EVIL_ESCAPED in js


def test_empty_frames_give_empty_layers(centers, uncovered) -> None:  # type: ignore[no-untyped-def]
    # closing every center leaves empty frames; the map still renders
    page = offline_map_html(coverage_map(centers=centers.iloc[:0], uncovered=uncovered.iloc[:0]))
    assert '{"type":"FeatureCollection","features":[]}' in page


def test_coverage_map_without_layers_is_an_empty_map() -> None:
    page = offline_map_html(coverage_map(tiles=None))
    assert "cp-legend" in page


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"centers": "centers.geojson"}, "GeoDataFrame"),
        ({"lang": "fr"}, "lang"),
        ({"thresholds_min": ()}, "thresholds_min"),
    ],
)
def test_coverage_map_rejects_bad_arguments(kwargs, match) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match=match):
        coverage_map(**kwargs)


def test_coverage_map_rejects_geographic_crs(centers) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match="projected CRS"):
        coverage_map(centers=centers.to_crs(4326))


def test_coverage_map_names_missing_columns(demand) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match="minutes_to_nearest"):
        coverage_map(demand=demand.drop(columns="minutes_to_nearest"))


def test_demand_grid_keeps_population_and_weights_minutes() -> None:
    demand = _demand(400)
    grid = _demand_grid(demand, 250.0)
    assert len(grid) < len(demand)
    assert grid["population"].sum() == pytest.approx(demand["population"].sum())
    unreachable = demand.loc[demand["minutes_to_nearest"].isna(), "population"].sum()
    assert grid["unreachable_population"].sum() == pytest.approx(unreachable)
    finite = grid["minutes_to_nearest"].dropna()
    assert finite.between(0, 40).all()
    assert grid.crs == demand.crs


def test_many_demand_units_are_aggregated_to_keep_the_page_small() -> None:
    demand = _demand(30_000, side_m=12.0, step_m=15.0)
    m = coverage_map(demand=demand, tiles=None, lang="en", max_units=20_000, grid_m=250.0)
    page = offline_map_html(m)
    assert "250 m grid" in page
    assert len(page.encode("utf-8")) < 10_000_000
    # the same data unaggregated is several times larger
    small = _demand(3_000, side_m=12.0, step_m=15.0)
    per_unit = len(offline_map_html(coverage_map(demand=small, tiles=None, max_units=None)))
    assert len(page) < per_unit


# --------------------------------------------------------------------------------------------
# report_html


def test_report_is_standalone_without_tiles(layers) -> None:  # type: ignore[no-untyped-def]
    page = _report(layers, tiles=None)
    inner = _srcdoc(page)
    for doc in (page, inner):
        assert not EXTERNAL_ASSET.search(doc)
    assert "Leaflet 1.9.4" in inner
    assert "jQuery v3.7.1" in inner
    assert "tile.openstreetmap.org" not in inner
    assert "img-src data:;" in page  # the CSP forbids any request
    assert "OpenStreetMap contributors" in page


def test_report_with_tiles_allows_only_tile_images(layers) -> None:  # type: ignore[no-untyped-def]
    page = _report(layers, tiles="openstreetmap")
    inner = _srcdoc(page)
    assert not EXTERNAL_ASSET.search(inner)
    assert "tile.openstreetmap.org/{z}/{x}/{y}.png" in inner
    assert "img-src data: https:;" in page


def test_report_escapes_user_strings(layers) -> None:  # type: ignore[no-untyped-def]
    page = _report(layers)
    assert EVIL not in page
    assert EVIL_ESCAPED in page  # title and the centers table
    assert EVIL not in _srcdoc(page)  # nor in the map inside


def test_report_headlines_tables_and_curve(layers) -> None:  # type: ignore[no-untyped-def]
    page = _report(layers, lang="en")
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


def test_report_truncates_long_tables(layers) -> None:  # type: ignore[no-untyped-def]
    page = _report(layers, lang="en", max_rows=1)
    assert "Showing the first 1 of 3 rows." in page


def test_report_rejects_a_curve_without_share(layers) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match="share"):
        report_html(
            title="x",
            summary=SUMMARY,
            map=coverage_map(**layers, tiles=None),
            tables={},
            curve=pd.DataFrame({"k": [0, 1]}),
        )


# --------------------------------------------------------------------------------------------
# i18n


def test_every_message_has_every_language_with_the_same_placeholders() -> None:
    fields = string.Formatter()
    for key, entry in MESSAGES.items():
        assert set(entry) == set(LANGS), key
        names = [{f for _, f, _, _ in fields.parse(entry[lang]) if f} for lang in LANGS]
        assert all(n == names[0] for n in names), key


def test_t_formats_and_validates() -> None:
    assert t("map.layer.service_area", "en", minutes=5) == "5-minute walking service area"
    assert t("map.layer.service_area", "zh", minutes=15) == "15分钟步行服务范围"
    with pytest.raises(InputError, match="lang"):
        t("map.layer.centers", "de")
    with pytest.raises(KeyError, match="no message"):
        t("map.nope", "zh")


# --------------------------------------------------------------------------------------------
# Real browser (optional): the report renders from file:// with the network switched off

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
_OFFLINE_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # any DNS lookup fails: truly offline
    "--virtual-time-budget=5000",
]


def _chromium(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, *_OFFLINE_FLAGS, f"--user-data-dir={cwd / 'profile'}", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_report_renders_offline_in_chromium(layers, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    report = tmp_path / "report.html"
    report.write_text(_report(layers, tiles=None), encoding="utf-8")
    png = tmp_path / "report.png"
    _chromium("--window-size=1200,1000", f"--screenshot={png}", report.as_uri(), cwd=tmp_path)
    assert png.is_file()
    with Image.open(io.BytesIO(png.read_bytes())) as image:
        # the map iframe sits below the title and the headline cards
        region = image.convert("RGB").crop((40, 260, 1160, 820))
        colors = region.getcolors(maxcolors=1_000_000)
    assert colors is not None
    assert len(colors) > 50, "the map area is blank: Leaflet did not run"


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_offline_map_runs_leaflet_in_chromium(layers, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    page = tmp_path / "map.html"
    page.write_text(offline_map_html(coverage_map(**layers, tiles=None)), encoding="utf-8")
    result = _chromium("--dump-dom", page.as_uri(), cwd=tmp_path)
    dom = result.stdout
    assert "leaflet-container" in dom
    assert "cp-legend" in dom  # our control was added, so the map script ran to the end
    assert "leaflet-control-attribution" in dom
    assert "OpenStreetMap</a> contributors" in dom


def test_layer_geojson_is_json_and_cannot_close_its_script() -> None:
    from coverage.maps import _feature_collection_json

    gdf = gpd.GeoDataFrame(
        {"<!--k</script>": ["v"]}, geometry=[Point(116.3, 40.0)], crs="EPSG:4326"
    )
    text = _feature_collection_json(gdf, ["<!--k</script>"])
    assert "</" not in text
    assert "<!--" not in text
    doc = json.loads(text)
    assert doc["features"][0]["properties"] == {"<!--k</script>": "v"}
