"""Vendored, offline map assets: Leaflet and jQuery from ``coverage/static``, never a CDN.

folium loads Leaflet, jQuery and Bootstrap from public CDNs, so offline a folium map is a blank
box. This package ships those files (``coverage/static/vendor/``, fetched from npm by
``scripts/vendor_assets.sh``; see ``coverage/static/README.md``) and offers two ways to use them:

- :func:`offline_map_html` inlines every script and stylesheet into one HTML page that opens
  from ``file://`` with no network (tiles are optional);
- :func:`use_local_assets` points a map's asset URLs at a web path where :func:`static_dir` is
  served (the Streamlit app serves it at ``app/static``), for ``streamlit_folium.st_folium``.

:data:`MAP_JS` and :data:`MAP_CSS` are the only assets the maps of :mod:`coverage.maps` load.
"""

from __future__ import annotations

import base64
import logging
import mimetypes
import re
import warnings
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Final

import folium
from branca.element import Element
from folium.elements import JSCSSMixin

from coverage.errors import InputError

logger = logging.getLogger(__name__)

__all__ = [
    "MAP_CSS",
    "MAP_JS",
    "has_tile_layer",
    "offline_map_html",
    "static_dir",
    "use_local_assets",
]

# CDN URL patterns (folium 0.20's default_js / default_css and close versions) → file under
# static_dir(), or None for a stylesheet we do not ship and the map does not need.
_CDN_TO_LOCAL: Final[tuple[tuple[re.Pattern[str], str | None], ...]] = (
    (re.compile(r"/leaflet@1\.9\.\d+/dist/leaflet\.js$"), "vendor/leaflet/leaflet.js"),
    (re.compile(r"/leaflet@1\.9\.\d+/dist/leaflet\.css$"), "vendor/leaflet/leaflet.css"),
    (re.compile(r"/jquery-3\.\d+\.\d+(\.min)?\.js$"), "vendor/jquery/jquery-3.7.1.min.js"),
    (
        re.compile(r"/jquery@3\.\d+\.\d+/dist/jquery(\.min)?\.js$"),
        "vendor/jquery/jquery-3.7.1.min.js",
    ),
    (
        re.compile(r"/bootstrap@5\.\d+\.\d+/dist/js/bootstrap\.bundle\.min\.js$"),
        "vendor/bootstrap/bootstrap.bundle.min.js",
    ),
    (
        re.compile(r"/bootstrap@5\.\d+\.\d+/dist/css/bootstrap\.min\.css$"),
        "vendor/bootstrap/bootstrap.min.css",
    ),
    (
        re.compile(r"/leaflet\.awesome-markers\.js$"),
        "vendor/awesome-markers/leaflet.awesome-markers.js",
    ),
    (
        re.compile(r"/leaflet\.awesome-markers\.css$"),
        "vendor/awesome-markers/leaflet.awesome-markers.css",
    ),
    (
        re.compile(r"/fontawesome-free@6\.\d+\.\d+/css/all\.min\.css$"),
        "vendor/fontawesome/css/all.min.css",
    ),
    # Bootstrap 3 glyphicons are not on npm; folium's rotate CSS only rotates awesome icons.
    (re.compile(r"/bootstrap-glyphicons\.css$"), None),
    (re.compile(r"/leaflet\.awesome\.rotate\.min\.css$"), None),
)
_UNKNOWN: Final = "?"

#: Scripts a :func:`coverage.maps.coverage_map` page loads (folium's ``default_js`` format):
#: Leaflet, and jQuery because folium's Popup template builds its content with ``$(...)``.
#: No Bootstrap, no icon fonts (CircleMarker / DivIcon only).
MAP_JS: Final = [
    ("leaflet", "https://cdn.jsdelivr.net/npm/leaflet@1.9.4/dist/leaflet.js"),
    ("jquery", "https://code.jquery.com/jquery-3.7.1.min.js"),
]
#: Stylesheets a :func:`coverage.maps.coverage_map` page loads.
MAP_CSS: Final = [
    ("leaflet_css", "https://cdn.jsdelivr.net/npm/leaflet@1.9.4/dist/leaflet.css"),
]


def static_dir() -> Path:
    """Return the folder of static files shipped with the package.

    Returns
    -------
    Path
        ``coverage/static``; vendored JavaScript and CSS are under ``vendor/``. Serve this folder
        as a whole (the Streamlit app serves a copy or symlink of it at ``/app/static``) and pass
        its URL to :func:`use_local_assets`.
    """
    return Path(__file__).resolve().parent / "static"


def _local_path(url: str) -> str | None:
    """Path under :func:`static_dir` for a CDN `url`, None to drop it, ``_UNKNOWN`` if unknown."""
    for pattern, rel in _CDN_TO_LOCAL:
        if pattern.search(url):
            return rel
    # already rewritten by use_local_assets: <base_url>/vendor/...
    for _, rel in _CDN_TO_LOCAL:
        if rel is not None and url.endswith("/" + rel):
            return rel
    return _UNKNOWN


def _walk(element: Element) -> Iterator[Element]:
    """Yield `element` and every element below it."""
    yield element
    for child in list(element._children.values()):
        yield from _walk(child)


def has_tile_layer(m: folium.Map) -> bool:
    """Return whether the map has a tile layer, the only kind of request an offline page makes.

    Parameters
    ----------
    m
        A folium map.

    Returns
    -------
    bool
        True if any element of `m` is a ``folium.TileLayer``.
    """
    return any(isinstance(e, folium.TileLayer) for e in _walk(m))


def _check_root(m: folium.Map) -> None:
    if not isinstance(m, folium.Map):
        msg = (
            f"expected a folium.Map, got {type(m).__name__}; pass the map built by coverage_map()."
        )
        raise InputError(msg)


def use_local_assets(m: folium.Map, base_url: str = "/app/static") -> folium.Map:
    """Point the map's JavaScript and CSS at the vendored copies served at `base_url`.

    Rewrites ``default_js`` and ``default_css`` of every element that loads assets (folium's
    Map and plugins). ``streamlit_folium.st_folium`` reads exactly these lists and loads them
    into its component iframe (it bundles no Leaflet of its own), so after this call the app
    map needs no CDN. Changes `m` in place, like folium's ``add_to``.

    Parameters
    ----------
    m
        A folium map.
    base_url
        URL at which :func:`static_dir` is served, as the page that loads the scripts sees
        it. st_folium loads them from inside its component iframe
        (``.../component/streamlit_folium.st_folium/index.html``), so the Streamlit app
        passes ``"../../app/static/"``, which reaches Streamlit's static route also under a
        ``server.baseUrlPath``; the root-relative default holds only without one. With
        Streamlit, set ``server.enableStaticServing = true`` and make ``static/`` next to
        ``app.py`` a copy (or a symlink) of :func:`static_dir`.

    Returns
    -------
    folium.Map
        `m` itself.

    Warns
    -----
    UserWarning
        For an asset URL that is not vendored (it stays as is and needs the network).
    """
    _check_root(m)
    base = base_url.rstrip("/")
    for element in _walk(m):
        if not isinstance(element, JSCSSMixin):
            continue
        for attr in ("default_js", "default_css"):
            rewritten: list[tuple[str, str]] = []
            for name, url in getattr(element, attr):
                rel = _local_path(url)
                if rel is None:
                    # Drop it from a header rendered earlier, too.
                    m.get_root().header._children.pop(name, None)  # type: ignore[attr-defined]
                    continue
                if rel == _UNKNOWN:
                    if url.startswith(("http://", "https://", "//")):
                        warnings.warn(
                            f"asset {url} is not vendored in coverage/static and needs the network; add it to scripts/vendor_assets.sh",
                            stacklevel=2,
                        )
                    rewritten.append((name, url))
                else:
                    rewritten.append((name, f"{base}/{rel}"))
            setattr(element, attr, rewritten)
    return m


@lru_cache(maxsize=32)
def _asset_text(rel: str) -> str:
    return (static_dir() / rel).read_text(encoding="utf-8")


def _data_uri(path: Path) -> str:
    mime = mimetypes.guess_type(path.name)[0]
    if mime is None:
        mime = "font/woff2" if path.suffix == ".woff2" else "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


@lru_cache(maxsize=16)
def _inline_css(rel: str) -> str:
    """Return the stylesheet `rel` with its relative ``url(...)`` references as data URIs."""
    folder = (static_dir() / rel).parent

    def replace(match: re.Match[str]) -> str:
        ref = match.group(2)
        if ref.startswith(("data:", "#", "http://", "https://", "//")):
            return match.group(0)
        target = (folder / ref.split("?")[0].split("#")[0]).resolve()
        if not target.is_file():
            # e.g. Font Awesome's .ttf fallbacks, which we do not ship: an empty, local URL.
            return "url(data:,)"
        return f"url({_data_uri(target)})"

    css = re.sub(r"""url\((['"]?)([^'")]+)\1\)""", replace, _asset_text(rel))
    return re.sub(r"</(style)", r"<\\/\1", css, flags=re.IGNORECASE)


def _inline_js(rel: str) -> str:
    return re.sub(r"</(script)", r"<\\/\1", _asset_text(rel), flags=re.IGNORECASE)


_SCRIPT_SRC = re.compile(
    r"""<script\b[^>]*?\bsrc=["']([^"']+)["'][^>]*>\s*</script\s*>""", re.IGNORECASE
)
_LINK_CSS = re.compile(r"""<link\b[^>]*?\brel=["']stylesheet["'][^>]*>""", re.IGNORECASE)
_HREF = re.compile(r"""\bhref=["']([^"']+)["']""", re.IGNORECASE)


def _inline_assets(page: str) -> str:
    """Replace every known CDN ``<script src>`` and stylesheet ``<link>`` by inline content."""
    unknown: list[str] = []

    def script(match: re.Match[str]) -> str:
        url = match.group(1)
        rel = _local_path(url)
        if rel is None:
            return ""
        if rel == _UNKNOWN:
            unknown.append(url)
            return match.group(0)
        return f"<script>/* {rel} */\n{_inline_js(rel)}\n</script>"

    def link(match: re.Match[str]) -> str:
        href = _HREF.search(match.group(0))
        if href is None:
            return match.group(0)
        rel = _local_path(href.group(1))
        if rel is None:
            return ""
        if rel == _UNKNOWN:
            unknown.append(href.group(1))
            return match.group(0)
        return f"<style>/* {rel} */\n{_inline_css(rel)}\n</style>"

    page = _SCRIPT_SRC.sub(script, page)
    page = _LINK_CSS.sub(link, page)
    if unknown:
        msg = f"the map loads assets that are not vendored in coverage/static: {', '.join(unknown)}; remove the plugin that needs them or add them to scripts/vendor_assets.sh."
        raise InputError(msg)
    return page


def offline_map_html(m: folium.Map) -> str:
    """Return the map as one self-contained HTML page, every script and stylesheet inlined.

    The page opens from ``file://`` on a machine with no network. Only the tile images (if the
    map has a tile layer) are fetched from the web; without tiles there is no request at all.

    Parameters
    ----------
    m
        A folium map, for example from :func:`coverage.maps.coverage_map`.

    Returns
    -------
    str
        A complete HTML document.

    Raises
    ------
    InputError
        If the map needs a script or stylesheet that is not vendored.
    """
    _check_root(m)
    page = _inline_assets(m.get_root().render())
    logger.info("rendered offline map page of %.1f kB", len(page.encode("utf-8")) / 1e3)
    return page
