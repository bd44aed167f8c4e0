"""Tests for coverage.assets: the vendored Leaflet files, served or inlined, never a CDN."""

from __future__ import annotations

from pathlib import Path

import folium
import pytest
from folium.elements import JSCSSMixin
from folium.plugins import MarkerCluster
from map_fixtures import EXTERNAL_ASSET, frames

from coverage.assets import (
    MAP_CSS,
    MAP_JS,
    has_tile_layer,
    offline_map_html,
    static_dir,
    use_local_assets,
)
from coverage.errors import InputError
from coverage.maps import MapLayers, coverage_map


def test_vendored_assets_have_licenses_and_stay_small() -> None:
    vendor = static_dir() / "vendor"
    folders = [p for p in vendor.iterdir() if p.is_dir()]
    assert {p.name for p in folders} >= {"leaflet", "jquery"}
    for folder in folders:
        assert list(folder.glob("LICENSE*")), f"{folder.name} has no license file"
    total = sum(p.stat().st_size for p in static_dir().rglob("*") if p.is_file())
    assert total < 1_500_000
    readme = (static_dir() / "README.md").read_text(encoding="utf-8")
    for package in ("leaflet", "jquery", "bootstrap", "leaflet.awesome-markers", "fontawesome"):
        assert package in readme


def test_the_app_serves_the_package_static_folder() -> None:
    # app.py's map loads ../../app/static/..., which Streamlit serves from ./static
    root = Path(__file__).resolve().parents[1]
    assert (root / "static").resolve() == (root / "coverage" / "static").resolve()


def test_every_folium_default_asset_is_vendored_or_deliberately_dropped() -> None:
    m = folium.Map()
    use_local_assets(m, "/app/static")
    urls = [u for _, u in m.default_js + m.default_css]
    assert len(urls) >= 8  # only the two unshipped stylesheets are dropped
    for url in urls:
        assert url.startswith("/app/static/vendor/")
        assert (static_dir() / url.removeprefix("/app/static/")).is_file()


def test_map_assets_are_leaflet_and_jquery_only() -> None:
    m = coverage_map(tiles=None)
    assert m.default_js == MAP_JS
    assert m.default_css == MAP_CSS
    use_local_assets(m, "../../app/static/")
    assert [u for _, u in m.default_js + m.default_css] == [
        "../../app/static/vendor/leaflet/leaflet.js",
        "../../app/static/vendor/jquery/jquery-3.7.1.min.js",
        "../../app/static/vendor/leaflet/leaflet.css",
    ]


def test_use_local_assets_rewrites_what_st_folium_loads() -> None:
    m = coverage_map(MapLayers(**frames()))
    assert use_local_assets(m, "/app/static/") is m
    # streamlit_folium.st_folium collects default_js / default_css of every JSCSSMixin element
    # and loads them in its iframe: after the rewrite none may point at a CDN.
    stack: list[object] = [m]
    links: list[str] = []
    while stack:
        element = stack.pop()
        if isinstance(element, JSCSSMixin):
            links += [u for _, u in element.default_js + element.default_css]
        stack.extend(getattr(element, "_children", {}).values())
    assert links
    assert all(u.startswith("/app/static/vendor/") for u in links)
    rendered = m.get_root().render()
    assert 'src="/app/static/vendor/leaflet/leaflet.js"' in rendered
    assert "cdn.jsdelivr.net" not in rendered
    assert "code.jquery.com" not in rendered


def test_use_local_assets_warns_about_unvendored_plugins() -> None:
    m = folium.Map(tiles=None)
    MarkerCluster().add_to(m)
    with pytest.warns(UserWarning, match="not vendored"):
        use_local_assets(m, "/app/static")


def test_use_local_assets_wants_a_folium_map() -> None:
    with pytest.raises(InputError, match=r"folium\.Map"):
        use_local_assets(folium.FeatureGroup(), "/app/static")  # type: ignore[arg-type]


def test_offline_map_html_inlines_plain_folium_maps_with_icons() -> None:
    m = folium.Map(tiles=None)
    folium.Marker([30.6, 104.0], icon=folium.Icon(icon="home", prefix="fa")).add_to(m)
    page = offline_map_html(m)
    assert not EXTERNAL_ASSET.search(page)
    assert "Leaflet 1.9.4" in page
    assert "data:font/woff2;base64," in page  # Font Awesome glyphs embedded
    assert "url(images/" not in page  # Leaflet's CSS images became data URIs


def test_offline_map_html_after_use_local_assets() -> None:
    m = use_local_assets(coverage_map(MapLayers(**frames()), tiles=None), "/app/static")
    page = offline_map_html(m)
    assert "Leaflet 1.9.4" in page
    assert "/app/static/vendor" not in page


def test_offline_map_html_refuses_unvendored_assets() -> None:
    m = folium.Map(tiles=None)
    MarkerCluster().add_to(m)
    with pytest.raises(InputError, match="markercluster"):
        offline_map_html(m)


def test_has_tile_layer() -> None:
    assert has_tile_layer(coverage_map(tiles="openstreetmap"))
    assert has_tile_layer(coverage_map(tiles="light"))
    assert not has_tile_layer(coverage_map(tiles=None))
