"""Tests for coverage.maps (folium maps, one helper per layer) and coverage.i18n."""

from __future__ import annotations

import json
import math
import re
import string
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from jinja2.utils import htmlsafe_json_dumps
from map_fixtures import (
    CHROMIUM,
    EVIL,
    EVIL_ESCAPED,
    X0,
    Y0,
    chromium,
    frames,
)
from map_fixtures import centers as _centers
from map_fixtures import demand as _demand
from map_fixtures import sites as _sites
from map_fixtures import uncovered as _uncovered
from shapely.geometry import Point, box

from coverage.assets import offline_map_html
from coverage.errors import InputError
from coverage.i18n import LANGS, MESSAGES, t
from coverage.maps import (
    AREA_COLORS,
    MapDetail,
    MapLayers,
    _demand_grid,
    _feature_collection_json,
    _minute_bins,
    coverage_map,
    escape_html,
    format_number,
    is_missing,
)


@pytest.fixture
def layers() -> MapLayers:
    return MapLayers(**frames())


def _in_script(label: str, page: str) -> bool:
    """Whether `label` appears in the page, as folium's ``tojson`` filter writes it."""
    return str(htmlsafe_json_dumps(label))[1:-1] in page


def _overlays(page: str) -> list[str]:
    """Names in the layer control, in order (folium writes them with ``tojson``)."""
    block = re.search(r"overlays\s*:\s*\{(.*?)\}", page, re.DOTALL)
    assert block is not None
    return [
        json.loads(f'"{name}"') for name in re.findall(r'"((?:[^"\\]|\\.)*)"\s*:', block.group(1))
    ]


# --------------------------------------------------------------------------------------------
# coverage_map


def test_coverage_map_has_every_layer_legend_and_attribution(layers: MapLayers) -> None:
    m = coverage_map(layers, lang="en", tiles=None)
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


def test_coverage_map_in_chinese_uses_chinese_layer_names(layers: MapLayers) -> None:
    page = coverage_map(layers, lang="zh", tiles=None).get_root().render()
    for key in ("map.layer.centers", "map.layer.sites", "map.layer.districts"):
        assert _in_script(t(key, "zh"), page), key


def test_coverage_map_escapes_user_strings(layers: MapLayers) -> None:
    page = offline_map_html(coverage_map(layers, tiles=None))
    assert EVIL not in page
    assert EVIL_ESCAPED in page  # popup of center c1
    # backticks, `${` and backslashes would be code inside folium's JS template literals
    assert "`${x}`" not in page
    assert "&#96;&#36;{x}&#96;&#92;" in page


def test_coverage_map_tiles(layers: MapLayers) -> None:
    osm = coverage_map(layers, tiles="openstreetmap").get_root().render()
    assert "tile.openstreetmap.org" in osm
    light = coverage_map(layers, tiles="light").get_root().render()
    assert "tile.openstreetmap.org" in light  # the same tiles, desaturated by CSS
    assert "cp-tiles-light" in light
    with pytest.raises(InputError, match="tiles"):
        coverage_map(layers, tiles="satellite")  # type: ignore[arg-type]


def test_coverage_map_does_not_modify_inputs() -> None:
    given = frames()
    before = {k: v.copy() for k, v in given.items()}
    coverage_map(MapLayers(**given))
    for k, v in given.items():
        pd.testing.assert_frame_equal(v, before[k])
        assert v.crs == before[k].crs


def test_coverage_map_rounds_coordinates_to_six_decimals(layers: MapLayers) -> None:
    m = coverage_map(layers, tiles=None, detail=MapDetail(tolerance_m=0.0))
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


def test_point_demand_is_drawn_as_circles() -> None:
    units = _demand()
    points = units.set_geometry(units.geometry.centroid)
    page = coverage_map(MapLayers(demand=points), tiles=None).get_root().render()
    assert "new L.CircleMarker(latlng, opts)" in page


def test_layers_render_through_streamlit_folium(layers: MapLayers) -> None:
    # st_folium renders each element's `script` macro, not the page
    sf = pytest.importorskip("streamlit_folium")
    m = coverage_map(layers, tiles=None, lang="en")
    m.render()
    js = sf.generate_leaflet_string(m)
    assert "function cpTable" in js
    # districts, 2 service areas, 5 demand classes, 2 uncovered layers, centers
    assert js.count("L.geoJson(") == 11
    assert js.count(".addTo(") >= 10  # all but the hidden 5-minute uncovered layer
    assert EVIL_ESCAPED in js


def test_empty_frames_give_empty_layers() -> None:
    # closing every center leaves empty frames; the map still renders
    empty = MapLayers(centers=_centers().iloc[:0], uncovered=_uncovered().iloc[:0])
    page = offline_map_html(coverage_map(empty))
    assert '{"type":"FeatureCollection","features":[]}' in page


def test_coverage_map_without_layers_is_an_empty_map() -> None:
    page = offline_map_html(coverage_map(tiles=None))
    assert "cp-legend" in page


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lang": "fr"}, "lang"),
        ({"thresholds_min": ()}, "thresholds_min"),
        ({"tiles": "satellite"}, "tiles"),
    ],
)
def test_coverage_map_rejects_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(InputError, match=match):
        coverage_map(**kwargs)


@pytest.mark.parametrize("field", ["centers", "service_areas", "demand", "uncovered", "sites"])
def test_map_layers_want_geodataframes(field: str) -> None:
    with pytest.raises(InputError, match=f"`{field}` must be a GeoDataFrame"):
        MapLayers(**{field: f"{field}.geojson"})  # type: ignore[arg-type]


def test_map_layers_reject_geographic_crs() -> None:
    with pytest.raises(InputError, match="projected CRS"):
        MapLayers(centers=_centers().to_crs(4326))


@pytest.mark.parametrize(
    ("field", "column"),
    [
        ("centers", "center_id"),
        ("service_areas", "minutes"),
        ("demand", "minutes_to_nearest"),
        ("uncovered", "population"),
        ("sites", "rank"),
    ],
)
def test_map_layers_name_missing_columns(field: str, column: str) -> None:
    frame = frames()[field].drop(columns=column)
    with pytest.raises(InputError, match=column):
        MapLayers(**{field: frame})


def test_demand_grid_keeps_population_and_weights_minutes() -> None:
    units = _demand(400)
    grid = _demand_grid(units, 250.0)
    assert len(grid) < len(units)
    assert grid["population"].sum() == pytest.approx(units["population"].sum())
    unreachable = units.loc[units["minutes_to_nearest"].isna(), "population"].sum()
    assert grid["unreachable_population"].sum() == pytest.approx(unreachable)
    finite = grid["minutes_to_nearest"].dropna()
    assert finite.between(0, 40).all()
    assert grid.crs == units.crs


def test_many_demand_units_are_aggregated_to_keep_the_page_small() -> None:
    units = _demand(30_000, side_m=12.0, step_m=15.0)
    detail = MapDetail(max_units=20_000, grid_m=250.0)
    m = coverage_map(MapLayers(demand=units), tiles=None, lang="en", detail=detail)
    page = offline_map_html(m)
    assert "250 m grid" in page
    assert len(page.encode("utf-8")) < 10_000_000
    # the same data unaggregated is several times larger
    small = _demand(3_000, side_m=12.0, step_m=15.0)
    every_unit = MapDetail(max_units=None)
    per_unit = len(offline_map_html(coverage_map(MapLayers(demand=small), detail=every_unit)))
    assert len(page) < per_unit


# --------------------------------------------------------------------------------------------
# One helper per layer


def test_layers_stack_in_order_in_the_layer_control(layers: MapLayers) -> None:
    page = coverage_map(layers, lang="en", tiles=None).get_root().render()
    assert _overlays(page) == [
        "Districts",
        "15-minute walking service area",
        "5-minute walking service area",
        t("map.layer.demand", "en"),
        t("map.layer.uncovered", "en", minutes="5"),
        t("map.layer.uncovered", "en", minutes="15"),
        "Existing service centers",
        "Proposed sites",
    ]


def test_per_center_areas_are_hidden_layers(layers: MapLayers) -> None:
    page = coverage_map(layers, lang="en", tiles=None, per_center_areas=True).get_root().render()
    names = _overlays(page)
    own = [t("map.layer.service_area_per_center", "en", minutes=m) for m in ("15", "5")]
    assert names[1:5] == [
        "15-minute walking service area",
        own[0],
        "5-minute walking service area",
        own[1],
    ]
    # the smallest threshold in the darkest blue, each center's own area in the same color
    for color in AREA_COLORS[:2]:
        style = f'return {{"color": "{color}", "weight": 1, "fillOpacity": 0.05}};'
        assert page.count(style) == 1


def test_uncovered_layers_keep_the_most_populated_areas_at_city_scale() -> None:
    population = [5.0, 60.0, 10.0, 40.0, 20.0, 30.0]
    areas = _uncovered().iloc[[1] * 6].reset_index(drop=True).assign(population=population)
    areas["geometry"] = [box(X0 + 200 * i, Y0, X0 + 200 * i + 100, Y0 + 100) for i in range(6)]
    page = (
        coverage_map(MapLayers(uncovered=areas), tiles=None, detail=MapDetail(max_units=8))
        .get_root()
        .render()
    )
    shown = sorted(float(v) for v in re.findall(r'"population":([0-9.]+)', page))
    assert shown == [40.0, 60.0]  # max_units // 4 = 2 areas per threshold
    every = coverage_map(MapLayers(uncovered=areas), tiles=None).get_root().render()
    assert len(re.findall(r'"population":', every)) == 6


def test_site_markers_follow_rank_with_their_popups() -> None:
    sites = _sites()
    sites.loc[0, "cumulative_share"] = np.nan  # rank 2: no share, no row
    page = coverage_map(MapLayers(sites=sites), lang="en", tiles=None).get_root().render()
    icons = re.findall(r'cp-site\\"\\u003e(\d+)\\u003c', page)
    assert icons == ["1", "2"]
    popups = re.findall(r"<table>(.*?)</table>", page)
    assert popups == [
        "<tr><th>Rank</th><td>1</td></tr><tr><th>Added population covered</th><td>500</td></tr>"
        "<tr><th>Cumulative population</th><td>500</td></tr>"
        "<tr><th>Cumulative share</th><td>50.0%</td></tr>",
        "<tr><th>Rank</th><td>2</td></tr><tr><th>Added population covered</th><td>200</td></tr>"
        "<tr><th>Cumulative population</th><td>700</td></tr>",
    ]


def test_demand_minute_bins() -> None:
    assert _minute_bins((15.0, 5.0)) == [
        (0.0, 5.0, "#1a9850"),
        (5.0, 15.0, "#d9ef8b"),
        (15.0, 30.0, "#fee08b"),
        (30.0, math.inf, "#d73027"),
    ]


def test_legend_rows_follow_the_layers(layers: MapLayers) -> None:
    page = coverage_map(layers, lang="en", tiles=None).get_root().render()
    match = re.search(r"div\.innerHTML = (\".*?\");", page)
    assert match is not None
    legend = json.loads(match.group(1))
    rows = re.findall(
        r"<i[^>]*(?:background|border-color):(#[0-9a-f]{6})[^>]*></i>([^<]*)<", legend
    )
    assert rows == [
        ("#444444", "Districts"),
        (AREA_COLORS[1], "15-minute walking service area"),
        (AREA_COLORS[0], "5-minute walking service area"),
        ("#1a9850", "≤ 5 min"),
        ("#d9ef8b", "5–15 min"),
        ("#fee08b", "15–30 min"),
        ("#d73027", "&gt; 30 min"),
        ("#969696", "Unreachable"),
        ("#54278f", "Residential areas beyond 15 minutes"),
        ("#c8102e", "Existing service centers"),
        ("#ff7f00", "Proposed sites"),
    ]


def test_every_demand_unit_is_drawn_once(layers: MapLayers) -> None:
    page = coverage_map(layers, lang="en", tiles=None).get_root().render()
    ids = re.findall(r'"demand_id":"(d\d+)"', page)
    assert sorted(ids) == sorted(f"d{k}" for k in range(60))


def test_map_layers_are_frozen(layers: MapLayers) -> None:
    with pytest.raises(AttributeError):
        layers.centers = None  # type: ignore[misc]


def test_escape_html_covers_markup_and_template_literals() -> None:
    assert escape_html(EVIL) == EVIL_ESCAPED
    assert escape_html("`${x}`\\") == "&#96;&#36;{x}&#96;&#92;"
    assert escape_html("\"'&") == "&quot;&#x27;&amp;"


@pytest.mark.parametrize(
    ("value", "missing"),
    [(None, True), (pd.NA, True), (float("nan"), True), (np.nan, True), (0.0, False), ("", False)],
)
def test_is_missing(value: object, missing: bool) -> None:
    assert is_missing(value) is missing


def test_format_number() -> None:
    assert format_number(1234567) == "1,234,567"
    assert format_number(np.int64(12)) == "12"
    assert format_number(1234.5678) == "1,235"
    assert format_number(1234.5678, digits=2) == "1,234.57"
    assert format_number(None) == "—"
    assert format_number(np.bool_(True)) == "True"
    assert format_number("x") == "x"


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
# Real browser (optional): the map page runs Leaflet from file:// with the network switched off


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_offline_map_runs_leaflet_in_chromium(layers: MapLayers, tmp_path: Path) -> None:
    page = tmp_path / "map.html"
    page.write_text(offline_map_html(coverage_map(layers, tiles=None)), encoding="utf-8")
    result = chromium("--dump-dom", page.as_uri(), cwd=tmp_path)
    dom = result.stdout
    assert "leaflet-container" in dom
    assert "cp-legend" in dom  # our control was added, so the map script ran to the end
    assert "leaflet-control-attribution" in dom
    assert "OpenStreetMap</a> contributors" in dom


def test_layer_geojson_is_json_and_cannot_close_its_script() -> None:
    gdf = gpd.GeoDataFrame(
        {"<!--k</script>": ["v"]}, geometry=[Point(116.3, 40.0)], crs="EPSG:4326"
    )
    text = _feature_collection_json(gdf, ["<!--k</script>"])
    assert "</" not in text
    assert "<!--" not in text
    doc = json.loads(text)
    assert doc["features"][0]["properties"] == {"<!--k</script>": "v"}


# --- issue 13: station states, the offline street layer, place names, zoom scaling ---------


def test_station_states_get_their_own_layers_and_legend() -> None:
    from coverage.maps import STATE_COLORS

    c = _centers().assign(state=["existing", "added", "closed"])
    page = coverage_map(MapLayers(centers=c), lang="zh", tiles=None).get_root().render()
    names = _overlays(page)
    assert "现有党群服务中心" in names
    assert "新增站点" in names
    assert "已关闭的服务中心（可恢复）" in names
    assert "采纳的建议站点" not in names  # no accepted station: no empty layer
    for state in ("existing", "added", "closed"):
        assert STATE_COLORS[state] in page
    # the closed center is greyed and dashed, and scales with the zoom like the others
    assert '"dashArray": "3 2"' in page
    assert page.count('"cpRadius"') == 3
    assert "cpScale" in page


def test_centers_without_state_are_all_existing() -> None:
    page = coverage_map(MapLayers(centers=_centers()), lang="en", tiles=None).get_root().render()
    names = _overlays(page)
    assert "Existing service centers" in names
    assert "Added stations" not in names


def test_street_frame_merges_the_network_into_few_lines(haidian_net) -> None:  # type: ignore[no-untyped-def]
    from coverage.maps import street_frame

    streets = street_frame(haidian_net)
    assert streets.crs == haidian_net.crs
    assert 0 < len(streets) <= haidian_net.n_edges  # merged chains, never more than the edges
    # the merged lines are the network: the same total length (each edge once)
    edges_m = sum(g.length for g in haidian_net.edge_geometry)
    assert streets.length.sum() == pytest.approx(edges_m, rel=1e-6)
    # a city-sized network keeps only the larger street classes: the leading ranks that fit
    for budget in (10, 100, 130):  # the fixture has 517 edges
        few = street_frame(haidian_net, max_edges=budget)
        assert few.length.sum() == pytest.approx(_ranked_street_m(haidian_net, budget), rel=1e-6)


def _ranked_street_m(net, budget: int) -> float:  # type: ignore[no-untyped-def]
    """Length of the leading street ranks whose edges fit in `budget` (one by one, in Python)."""
    from coverage.maps import STREET_CLASS_RANKS

    def rank(tag: str) -> int:
        found = [i for i, r in enumerate(STREET_CLASS_RANKS) for v in tag.split(";") if v in r]
        return min(found, default=len(STREET_CLASS_RANKS))

    ranks = [rank(str(h)) for h in net.edge_highway]
    keep_ranks, total = 0, 0
    for i in range(len(STREET_CLASS_RANKS)):
        total += ranks.count(i)
        if total > budget:
            break
        keep_ranks = i + 1
    present = [r for r in ranks if r < len(STREET_CLASS_RANKS)]
    keep_ranks = max(keep_ranks, min(present) + 1)
    return sum(g.length for g, r in zip(net.edge_geometry, ranks, strict=True) if r < keep_ranks)


def test_streets_draw_as_one_feature(haidian_net) -> None:  # type: ignore[no-untyped-def]
    from coverage.maps import street_frame

    streets = street_frame(haidian_net)
    assert len(streets) > 1
    page = coverage_map(MapLayers(streets=streets), lang="en", tiles=None).get_root().render()
    layer = next(p for p in page.split("var cp_geo_json_")[1:] if '"MultiLineString"' in p)
    assert layer.count('"type":"Feature"') == 1


def test_place_frame_keeps_the_largest_named_areas() -> None:
    from coverage.maps import place_frame

    areas = gpd.GeoDataFrame(
        {"name": ["大院", None, "小区", "  ", "大院"]},
        geometry=[
            box(116.30, 39.90, 116.32, 39.92),
            box(116.33, 39.90, 116.34, 39.91),
            box(116.35, 39.90, 116.351, 39.901),
            box(116.36, 39.90, 116.37, 39.91),
            box(116.38, 39.90, 116.381, 39.901),
        ],
        crs=4326,
    )
    places = place_frame([areas], max_places=5)
    assert places["name"].tolist() == ["大院", "小区"]  # unnamed and duplicate names skipped
    assert places.geometry.within(areas.geometry.iloc[0]).iloc[0]
    assert place_frame([areas], max_places=1)["name"].tolist() == ["大院"]
    assert len(place_frame([])) == 0


def test_streets_and_places_draw_as_a_light_base_layer(haidian_net) -> None:  # type: ignore[no-untyped-def]
    from coverage.maps import place_frame, street_frame

    places = place_frame(
        [gpd.GeoDataFrame({"name": ["中关村"]}, geometry=[Point(116.35, 40.0)], crs=4326)]
    ).to_crs(haidian_net.crs)
    layers = MapLayers(streets=street_frame(haidian_net), places=places)
    page = coverage_map(layers, lang="zh", tiles=None).get_root().render()
    names = _overlays(page)
    assert names[:1] == ["街道（离线底图）"]  # the bottom of the stack
    assert "地名" in names
    assert "中关村" in page
    assert "cp-place" in page
