"""Folium maps of coverage results: one helper per layer, composed by :func:`coverage_map`.

:func:`coverage_map` draws the output contract frames (projected CRS), bundled as
:class:`MapLayers`, on one map: districts, service areas, demand (per unit, or a grid at city
scale), uncovered areas, centers and proposed sites, with a legend and a layer control. The
map loads only Leaflet and jQuery; :mod:`coverage.assets` serves or inlines them from the
vendored copies so it works offline. Every string that comes from data (OSM names may contain
markup) is HTML-escaped (:func:`escape_html`) before it reaches the page.
"""

from __future__ import annotations

import html
import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import Element, MacroElement
from folium.elements import ElementAddToElement
from folium.map import Layer
from jinja2 import Template
from numpy.typing import NDArray

from coverage.assets import MAP_CSS, MAP_JS
from coverage.errors import InputError
from coverage.i18n import t
from coverage.names import threshold_key
from coverage.network import WalkNetwork
from coverage.osm import place_frame

logger = logging.getLogger(__name__)

__all__ = [
    "AREA_COLORS",
    "MapDetail",
    "MapLayers",
    "coverage_map",
    "escape_html",
    "format_number",
    "is_missing",
    "place_frame",
    "street_frame",
]

#: Default display simplification, in meters of the input's projected CRS.
DEFAULT_TOLERANCE_M: Final = 5.0
#: Above this many demand units, :func:`coverage_map` aggregates demand to a square grid.
DEFAULT_MAX_UNITS: Final = 20_000
#: Side of a grid cell when demand is aggregated, in meters.
DEFAULT_GRID_M: Final = 250.0
#: The whole-city view is drawn at about this many pixels across: geometry is simplified to
#: ``extent / DISPLAY_PIXELS`` (at least the given tolerance) for the map only. The app's map
#: (560 px tall) and the report's (620 px) are ~1,000 px wide, and Leaflet fits the city at the
#: next whole zoom level out, so one screen pixel of the first view is at least this coarse.
DISPLAY_PIXELS: Final = 1000
#: Decimal places kept in WGS-84 coordinates (6 ≈ 0.1 m).
COORD_DECIMALS: Final = 6

_ATTRIBUTION: Final = (
    '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'
)
_TILES: Final[dict[str, str]] = {
    # `tiles` argument → i18n key of the layer label
    "openstreetmap": "map.tiles.osm",
    "light": "map.tiles.light",
}


_CENTER_COLOR: Final = "#c8102e"
#: Station state (``state`` column of the centers frame) → fill color; closed ones are grey.
STATE_COLORS: Final[dict[str, str]] = {
    "existing": _CENTER_COLOR,
    "added": "#1b9e77",
    "accepted": "#d95f02",
    "closed": "#9e9e9e",
}
#: Station state → i18n key of its layer and legend label.
_STATE_LABELS: Final[dict[str, str]] = {
    "existing": "map.layer.centers",
    "added": "map.layer.added",
    "accepted": "map.layer.accepted",
    "closed": "map.layer.closed",
}
_STREET_COLOR: Final = "#8c8c8c"
#: Most edges of the light street layer; above it only the larger street classes are drawn.
MAX_STREET_EDGES: Final = 40_000
#: Street classes of the light layer, most important first; a network above
#: ``MAX_STREET_EDGES`` edges keeps the leading classes whose edges together fit in it.
STREET_CLASS_RANKS: Final = (
    ("motorway", "motorway_link", "trunk", "trunk_link"),
    ("primary", "primary_link"),
    ("secondary", "secondary_link"),
    ("tertiary", "tertiary_link"),
    ("unclassified",),
    ("residential", "living_street", "pedestrian"),
)
#: Every street class the light layer may draw on a network above ``MAX_STREET_EDGES`` edges.
MAJOR_HIGHWAYS: Final = frozenset(c for rank in STREET_CLASS_RANKS for c in rank)
_SITE_COLOR: Final = "#ff7f00"
_UNCOVERED_COLOR: Final = "#54278f"
_DISTRICT_COLOR: Final = "#444444"
_UNREACHABLE_COLOR: Final = "#969696"
#: Blues of the service areas, darkest for the smallest threshold (also the report's curve).
AREA_COLORS: Final = ("#08519c", "#3182bd", "#6baed6", "#9ecae1", "#c6dbef")
_MINUTES_COLORS: Final = ("#1a9850", "#91cf60", "#d9ef8b", "#fee08b", "#fc8d59", "#d73027")


# --------------------------------------------------------------------------------------------
# Escaping and small helpers


def escape_html(value: object) -> str:
    r"""Return `value` as HTML text that is also safe inside a JavaScript template literal.

    folium puts popup and tooltip markup between backticks, where `` ` ``, ``${`` and ``\``
    would be code; they become character references here.

    Parameters
    ----------
    value
        Anything; it is shown as ``str(value)``.

    Returns
    -------
    str
        The escaped text.
    """
    text = html.escape(str(value), quote=True)
    return text.replace("`", "&#96;").replace("$", "&#36;").replace("\\", "&#92;")


def is_missing(value: object) -> bool:
    """Return whether `value` is None, ``pd.NA`` or a float NaN (a cell with no value).

    Parameters
    ----------
    value
        A cell of a frame.

    Returns
    -------
    bool
        True for a missing value.
    """
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)


def format_number(value: object, digits: int = 0) -> str:
    """Return `value` for display: thousands separators, "—" when missing.

    Parameters
    ----------
    value
        A number (other values are shown with ``str``).
    digits
        Decimal places of a float.

    Returns
    -------
    str
        The text, not yet HTML-escaped.
    """
    if is_missing(value):
        return "—"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):,.{digits}f}"
    return str(value)


def _json_for_script(value: object) -> str:
    """JSON that can sit inside a ``<script>`` element (no ``</`` sequences)."""
    return json.dumps(value, ensure_ascii=False).replace("</", "<\\/")


def _require(gdf: object, *, arg: str, columns: Sequence[str]) -> gpd.GeoDataFrame:
    if not isinstance(gdf, gpd.GeoDataFrame):
        msg = f"`{arg}` must be a GeoDataFrame, got {type(gdf).__name__}."
        raise InputError(msg)
    if gdf.crs is None or not gdf.crs.is_projected:
        msg = f"`{arg}` must be in a projected CRS (the network's UTM zone), got {gdf.crs}; reproject with `{arg}.to_crs(net.crs)`."
        raise InputError(msg)
    missing = [c for c in columns if c not in gdf.columns]
    if missing:
        msg = f"`{arg}` lacks column(s) {missing}; pass the frame from the audit/siting result (see docs/ARCHITECTURE.md)."
        raise InputError(msg)
    return gdf


def _display_frame(gdf: gpd.GeoDataFrame, tolerance_m: float) -> gpd.GeoDataFrame:
    """Simplified (in meters), reprojected to EPSG:4326, coordinates rounded; empties dropped.

    Above the default tolerance (a city-wide view, see :func:`_display_tolerance_m`) each ring
    is simplified on its own (:func:`_simplify_rings`).
    """
    arr = np.asarray(gdf.geometry.values, dtype=object)
    # shapely, not GeoSeries.notna: that one warns when empty geometries are present
    gdf = gdf[~(shapely.is_missing(arr) | shapely.is_empty(arr))]
    geoms = gdf.geometry.values
    if tolerance_m > DEFAULT_TOLERANCE_M:
        geoms = _simplify_rings(np.asarray(geoms), tolerance_m)
    elif tolerance_m > 0:
        geoms = shapely.simplify(np.asarray(geoms), tolerance_m, preserve_topology=True)
    out = gpd.GeoDataFrame(gdf.drop(columns=gdf.geometry.name), geometry=geoms, crs=gdf.crs)
    out = out[~out.geometry.is_empty]
    out = out.to_crs(4326)
    rounded = shapely.transform(
        np.asarray(out.geometry.values),
        lambda xy: np.round(xy, _coord_decimals(tolerance_m)),
    )
    out = out.set_geometry(gpd.GeoSeries(rounded, index=out.index, crs=4326))
    return out[~out.geometry.is_empty]


def _coord_decimals(tolerance_m: float) -> int:
    """Decimal places of WGS-84 coordinates for a display simplified by `tolerance_m`.

    Rounding moves a vertex by at most half a step; keep the step under half the tolerance (a
    quarter of a pixel of the city-wide view): 4 decimals (~10 m) for a 50 m pixel. Up to the
    default tolerance, :data:`COORD_DECIMALS`.
    """
    if tolerance_m <= DEFAULT_TOLERANCE_M:
        return COORD_DECIMALS
    step_deg = tolerance_m / 2.0 / 111_320.0
    return int(min(max(math.ceil(-math.log10(step_deg)), 4), COORD_DECIMALS))


def _simplify_rings(geoms: NDArray[np.object_], tolerance_m: float) -> NDArray[np.object_]:
    """Display simplification of polygons ring by ring, without any topology repair.

    GEOS's polygon simplifiers either preserve topology or repair the result with a
    buffer(0); both take minutes on a city-wide service area with ~40,000 holes. For
    the screen, each ring is simplified as a plain line (vectorised Douglas-Peucker);
    rings that collapse below 4 points vanish (holes), or take their polygon with
    them (shells). Rings may then touch where they came closer than the tolerance,
    which the browser draws fine. Non-polygon geometries pass through unchanged.
    """
    out = geoms.copy()
    kind = shapely.get_type_id(geoms)
    poly = np.flatnonzero(
        (kind == shapely.GeometryType.POLYGON) | (kind == shapely.GeometryType.MULTIPOLYGON)
    )
    if poly.size == 0:
        return out
    parts, owner = shapely.get_parts(geoms[poly], return_index=True)
    _, coords, (ring_off, part_off) = shapely.to_ragged_array(parts)
    n_rings = ring_off.size - 1
    ring_part = np.repeat(np.arange(parts.size), np.diff(part_off))
    is_shell = np.zeros(n_rings, dtype=bool)
    is_shell[part_off[:-1][np.diff(part_off) > 0]] = True
    # A simplified ring keeps a subset of its vertices, so it stays inside its bounding box:
    # holes whose box is under the fill threshold below are dropped before simplifying
    # (most of the ~100,000 holes of a city-wide 15-minute area).
    start = ring_off[:-1]
    width = np.maximum.reduceat(coords[:, 0], start) - np.minimum.reduceat(coords[:, 0], start)
    height = np.maximum.reduceat(coords[:, 1], start) - np.minimum.reduceat(coords[:, 1], start)
    fill_below_m2 = (3.0 * tolerance_m) ** 2
    todo = is_shell | (width * height >= fill_below_m2)
    sizes = np.diff(ring_off)[todo]
    rings = shapely.from_ragged_array(
        shapely.GeometryType.LINESTRING,
        coords[np.repeat(todo, np.diff(ring_off))],
        (np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),),
    )
    simple = np.full(n_rings, None, dtype=object)
    simple[todo] = shapely.simplify(rings, tolerance_m, preserve_topology=False)
    n_coords = np.zeros(n_rings, dtype=np.int64)
    n_coords[todo] = shapely.get_num_coordinates(simple[todo])
    part_ok = np.zeros(parts.size, dtype=bool)
    part_ok[ring_part[is_shell & (n_coords >= 4)]] = True
    keep = (n_coords >= 4) & part_ok[ring_part]
    # holes smaller than 3 x 3 tolerances (pixels) do not show through a faint fill: fill them
    holes = np.flatnonzero(keep & ~is_shell)
    if holes.size:
        hc, hi = shapely.get_coordinates(simple[holes], return_index=True)
        hole_area = shapely.area(shapely.polygons(shapely.linearrings(hc, indices=hi)))
        keep[holes[hole_area < fill_below_m2]] = False
    new_coords = shapely.get_coordinates(simple[keep])
    new_ring_off = np.concatenate([[0], np.cumsum(n_coords[keep])]).astype(np.int64)
    per_part = np.bincount(ring_part[keep], minlength=parts.size)[part_ok]
    new_part_off = np.concatenate([[0], np.cumsum(per_part)]).astype(np.int64)
    new_parts = shapely.from_ragged_array(
        shapely.GeometryType.POLYGON, new_coords, (new_ring_off, new_part_off)
    )
    owner = owner[part_ok]
    counts = np.bincount(owner, minlength=poly.size)
    merged = np.full(poly.size, shapely.Polygon(), dtype=object)
    single = counts == 1
    first = np.searchsorted(owner, np.arange(poly.size))
    merged[single] = new_parts[first[single]]
    multi = np.flatnonzero(counts > 1)
    if multi.size:
        sel = np.isin(owner, multi)
        merged[multi] = shapely.multipolygons(new_parts[sel], indices=owner[sel])[multi]
    out[poly] = merged
    return out


def _display_tolerance_m(tolerance_m: float, frames: Sequence[gpd.GeoDataFrame | None]) -> float:
    """`tolerance_m`, raised to about one screen pixel of the whole-city view.

    The first view shows every layer at once; detail finer than
    ``extent / DISPLAY_PIXELS`` cannot be seen there, and shipping it makes a city-wide page
    tens of megabytes. Exports keep the full detail. A `tolerance_m` of 0 is kept as is.
    """
    if tolerance_m <= 0:
        return tolerance_m
    extent = 0.0
    for f in frames:
        if f is not None and len(f) and f.crs is not None and f.crs.is_projected:
            x0, y0, x1, y1 = f.total_bounds
            if np.isfinite([x0, y0, x1, y1]).all():
                extent = max(extent, x1 - x0, y1 - y0)
    return max(tolerance_m, extent / DISPLAY_PIXELS)


def _jsonable(value: object) -> object:
    if is_missing(value):
        return None
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return round(float(value), 2)
    return escape_html(value)


# GEOS's GeoJSON writer prints some doubles with 17 significant digits (104.02940099999999 for
# 104.029401): a quarter of the coordinates of a city page, ~1 MB. The coordinates are rounded to
# at most 6 decimals, so 10 or more is always this artifact; Python's repr gives the shortest form.
_GEOS_LONG_FLOAT: Final = re.compile(r"-?\d+\.\d{10,}")


def _shortest_float(match: re.Match[str]) -> str:
    return repr(float(match.group(0)))


def _feature_collection_json(gdf: gpd.GeoDataFrame, properties: Sequence[str]) -> str:
    """GeoJSON text with only `properties` (strings HTML-escaped, floats to 2 decimals).

    Written as text for a ``<script>`` element: geometry by GEOS (vectorised), no parse and
    re-dump through dicts, no per-feature ``id``, no ``</`` sequence.
    """
    cols = [c for c in properties if c in gdf.columns]
    values = gdf[cols].to_numpy(dtype=object) if cols else np.empty((len(gdf), 0), dtype=object)
    text = "\n".join(shapely.to_geojson(np.asarray(gdf.geometry.values)))
    geometries = _GEOS_LONG_FLOAT.sub(_shortest_float, text).split("\n") if len(gdf) else []
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    features = [
        '{"type":"Feature","properties":'
        + dumps({c: _jsonable(v) for c, v in zip(cols, row, strict=True)})
        + ',"geometry":'
        + geom
        + "}"
        for geom, row in zip(geometries, values, strict=True)
    ]
    text = '{"type":"FeatureCollection","features":[' + ",".join(features) + "]}"
    # safe inside <script>, and still valid JSON ("\/" and "\u003c" are JSON escapes)
    return text.replace("</", "<\\/").replace("<!--", "\\u003c!--")


def _fields(fields: Sequence[tuple[str, str]], gdf: gpd.GeoDataFrame) -> list[tuple[str, str]]:
    """(column, escaped label) for the columns of `gdf` among `fields`."""
    return [(f, escape_html(a)) for f, a in fields if f in gdf.columns]


# --------------------------------------------------------------------------------------------
# Map elements


class _Raw(Element):  # type: ignore[misc]
    """Text that goes into the page as is.

    branca's ``MacroElement.render`` wraps each rendered script in ``Element(text)``, which
    compiles the text as a Jinja template: seconds for a few megabytes of GeoJSON.
    """

    def __init__(self, text: str) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.text = text

    def render(self, **kwargs: Any) -> str:
        return self.text


# One hover/popup table builder for every layer: rows for the non-null properties, numbers
# localised. Labels and string values are HTML-escaped in Python before they get here.
_TABLE_JS: Final = """function cpTable(p, fields) {
  var rows = "";
  for (var i = 0; i < fields.length; i++) {
    var v = p[fields[i][0]];
    if (v === null || v === undefined) continue;
    rows += "<tr><th>" + fields[i][1] + "</th><td>" +
      (typeof v === "number" ? v.toLocaleString() : v) + "</td></tr>";
  }
  return "<table>" + rows + "</table>";
}"""


class _GeoJsonLayer(Layer):  # type: ignore[misc]
    """A GeoJSON overlay written straight into the page: one style for all its features.

    Replaces ``folium.GeoJson`` for the large layers: folium keeps the data as dicts, adds an
    ``id`` to every feature, maps styles feature by feature, dumps the JSON with HTML escapes
    and compiles the result as a template. Here the GeoJSON text is written once
    (:func:`_feature_collection_json`) and tooltips and popups are built in the browser from
    the properties, on demand.
    """

    # streamlit_folium calls each element's `script` macro itself (not `render`); there the
    # table builder comes with every layer (a function declared twice is harmless)
    _template = Template(
        "{% macro script(this, kwargs) %}{{ this.table_js }}\n{{ this.script_js() }}{% endmacro %}"
    )
    table_js: Final = _TABLE_JS

    def __init__(
        self,
        gdf: gpd.GeoDataFrame,
        properties: Sequence[str],
        *,
        style: Mapping[str, Any],
        name: str | None = None,
        show: bool = True,
        marker: Mapping[str, Any] | None = None,
        tooltip: Sequence[tuple[str, str]] | str = (),
        popup: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Write `gdf` with its `properties` as one overlay.

        A layer without a `name` stays out of the layer control (it belongs to a group). A
        `tooltip` is either (property, escaped label) rows or one property shown as text.
        """
        super().__init__(name=name, overlay=True, control=name is not None, show=show)
        self._name = "CpGeoJson"
        self.data_json = _feature_collection_json(gdf, properties)
        self.style = dict(style)
        self.marker = dict(marker) if marker is not None else {"radius": 4, **self.style}
        self.tooltip = tooltip if isinstance(tooltip, str) else list(tooltip)
        self.popup = list(popup)

    def point_js(self) -> str:
        """Return the body of ``pointToLayer``: a circle marker with the layer's style."""
        return (
            f"    var opts = {_json_for_script(self.marker)};\n"
            "    return new L.CircleMarker(latlng, opts);\n"
        )

    def script_js(self) -> str:
        """Return the script that adds the layer, its tooltips and popups."""
        bind = []
        if isinstance(self.tooltip, str):
            key = _json_for_script(self.tooltip)
            bind.append(
                f"var t = feature.properties[{key}]; if (t !== null && t !== undefined) "
                "layer.bindTooltip(String(t));"
            )
        elif self.tooltip:
            bind.append(
                f"layer.bindTooltip(function () {{ return cpTable(feature.properties, {_json_for_script(self.tooltip)}); }}, {{sticky: true}});"
            )
        if self.popup:
            bind.append(
                f"layer.bindPopup(function () {{ return cpTable(feature.properties, {_json_for_script(self.popup)}); }}, {{maxWidth: 320}});"
            )
        return (
            f"var {self.get_name()} = L.geoJson({self.data_json}, {{\n"
            f"  style: function () {{ return {_json_for_script(self.style)}; }},\n"
            "  pointToLayer: function (feature, latlng) {\n"
            f"{self.point_js()}"
            "  },\n"
            f"  onEachFeature: function (feature, layer) {{ {' '.join(bind)} }}\n"
            "});"
        )

    def render(self, **kwargs: Any) -> None:  # type: ignore[override]
        # Layer.render without MacroElement.render, which would compile the script as a template
        script = self.get_root().script  # type: ignore[attr-defined]
        script.add_child(_Raw(_TABLE_JS), name="cp_table_js")
        script.add_child(_Raw(self.script_js()), name=self.get_name())
        parent = self._parent
        if self.show and parent is not None:
            self.add_child(
                ElementAddToElement(
                    element_name=self.get_name(), element_parent_name=parent.get_name()
                ),
                name=self.get_name() + "_add",
            )
        for child in self._children.values():
            child.render(**kwargs)


class _LabelLayer(_GeoJsonLayer):
    """Points drawn as text labels (place names): the ``label`` property, already escaped."""

    def point_js(self) -> str:
        """Return the body of ``pointToLayer``: a non-interactive text marker."""
        return (
            "    return L.marker(latlng, {interactive: false, keyboard: false, icon: "
            "L.divIcon({className: 'cp-place', html: feature.properties.label, iconSize: null})});\n"
        )


class _Legend(MacroElement):  # type: ignore[misc]
    """A Leaflet control with pre-escaped HTML; removable through nothing, always visible."""

    _template = Template(
        """
        {% macro header(this, kwargs) %}
        <style>
          .cp-legend { background: rgba(255,255,255,0.92); padding: 6px 8px; border-radius: 4px;
            box-shadow: 0 1px 4px rgba(0,0,0,0.3); font: 12px/1.5 system-ui, "PingFang SC",
            "Microsoft YaHei", "Noto Sans CJK SC", sans-serif; max-width: 260px; }
          .cp-legend b { display: block; margin-bottom: 2px; }
          .cp-legend i { display: inline-block; width: 14px; height: 12px; margin-right: 6px;
            vertical-align: -1px; border: 1px solid rgba(0,0,0,0.25); }
          .cp-legend i.cp-dot { border-radius: 50%; }
          .cp-site { width: 24px; height: 24px; border-radius: 50%; background: {{ this.site_color }};
            color: #fff; font: bold 12px/24px system-ui, sans-serif; text-align: center;
            border: 2px solid #fff; box-shadow: 0 0 3px rgba(0,0,0,0.6); }
        </style>
        {% endmacro %}
        {% macro script(this, kwargs) %}
        (function () {
          var legend = L.control({position: "bottomright"});
          legend.onAdd = function () {
            var div = L.DomUtil.create("div", "cp-legend");
            div.innerHTML = {{ this.html_json }};
            L.DomEvent.disableClickPropagation(div);
            return div;
          };
          legend.addTo({{ this._parent.get_name() }});
          {{ this._parent.get_name() }}.attributionControl.addAttribution({{ this.attribution_json }});
        })();
        {% endmacro %}
        """
    )

    def __init__(self, legend_html: str, attribution: str) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._name = "Legend"
        self.html_json = _json_for_script(legend_html)
        self.attribution_json = _json_for_script(attribution)
        self.site_color = _SITE_COLOR


def _minute_bins(thresholds_min: Sequence[float]) -> list[tuple[float, float, str]]:
    """(lower, upper, color) bins: 0–t1, t1–t2, …, tn–2·tn, > 2·tn."""
    edges = [0.0, *sorted({float(x) for x in thresholds_min}), 2.0 * float(max(thresholds_min))]
    n = len(edges)  # closed bins n-1, plus one open bin
    idx = np.round(np.linspace(0, len(_MINUTES_COLORS) - 1, n)).astype(int)
    bins = [(edges[i], edges[i + 1], _MINUTES_COLORS[idx[i]]) for i in range(n - 1)]
    bins.append((edges[-1], math.inf, _MINUTES_COLORS[idx[-1]]))
    return bins


def _bin_label(lo: float, hi: float, lang: str) -> str:
    if lo == 0:
        return t("map.legend.minutes_le", lang, hi=threshold_key(hi))
    if math.isinf(hi):
        return t("map.legend.minutes_gt", lang, lo=threshold_key(lo))
    return t("map.legend.minutes_bin", lang, lo=threshold_key(lo), hi=threshold_key(hi))


def _demand_grid(demand: gpd.GeoDataFrame, cell_m: float) -> gpd.GeoDataFrame:
    """Aggregate demand units to square cells: population, weighted mean minutes, unreachable."""
    # a unit goes to the cell of its bounding-box center: 8x faster than a point on its surface
    # (0.06 s for 570,000 units) and the same cell for any unit much smaller than a cell
    x0, y0, x1, y1 = shapely.bounds(np.asarray(demand.geometry.values)).T
    ix = np.floor((x0 + x1) / 2.0 / cell_m).astype(np.int64)
    iy = np.floor((y0 + y1) / 2.0 / cell_m).astype(np.int64)
    pop = demand["population"].to_numpy(dtype=float)
    minutes = demand["minutes_to_nearest"].to_numpy(dtype=float)
    reach = np.isfinite(minutes)
    frame = pd.DataFrame(
        {
            "ix": ix,
            "iy": iy,
            "population": pop,
            "pop_reach": np.where(reach, pop, 0.0),
            "pop_min": np.where(reach, pop * np.nan_to_num(minutes), 0.0),
            "min_sum": np.where(reach, np.nan_to_num(minutes), 0.0),
            "n_reach": reach.astype(np.int64),
            "units": 1,
        }
    )
    g = frame.groupby(["ix", "iy"], sort=True).sum().reset_index()
    with np.errstate(invalid="ignore", divide="ignore"):
        weighted = g["pop_min"] / g["pop_reach"]
        plain = g["min_sum"] / g["n_reach"]
    # population-weighted where there is population, plain mean for zero-population cells
    minutes_cell = np.where(g["pop_reach"] > 0, weighted, plain)
    minutes_cell = np.where(g["n_reach"] > 0, minutes_cell, np.nan)
    x0 = g["ix"].to_numpy() * cell_m
    y0 = g["iy"].to_numpy() * cell_m
    cells = shapely.box(x0, y0, x0 + cell_m, y0 + cell_m)
    return gpd.GeoDataFrame(
        {
            "population": g["population"].to_numpy(),
            "minutes_to_nearest": minutes_cell,
            "unreachable_population": (g["population"] - g["pop_reach"]).to_numpy(),
            "units": g["units"].to_numpy(),
        },
        geometry=cells,
        crs=demand.crs,
    )


def _check_tiles(tiles: str | None) -> None:
    if tiles is not None and tiles not in _TILES:
        msg = f"`tiles` must be one of {sorted(_TILES)} or None, got {tiles!r}."
        raise InputError(msg)


def _add_tiles(m: folium.Map, tiles: str | None, lang: str) -> None:
    if tiles is None:
        return
    # "light" is the same OpenStreetMap tiles, desaturated in CSS: CARTO's light basemap now
    # needs an API key, and a second tile provider would be a second data-use agreement.
    layer = folium.TileLayer(
        "OpenStreetMap",
        name=t(_TILES[tiles], lang),
        attr=_ATTRIBUTION,
        control=True,
        class_name="cp-tiles-light" if tiles == "light" else "",
    )
    layer.add_to(m)
    if tiles == "light":
        m.get_root().header.add_child(  # type: ignore[attr-defined]
            Element(
                "<style>.cp-tiles-light { filter: grayscale(1) brightness(1.08) contrast(0.85); }</style>"
            ),
            name="cp_tiles_light_css",
        )


def _legend_row(color: str, label: str, *, dot: bool = False, outline: bool = False) -> str:
    style = (
        f"border-color:{color};background:transparent;border-width:2px"
        if outline
        else f"background:{color}"
    )
    cls = ' class="cp-dot"' if dot else ""
    return f'<div><i{cls} style="{style}"></i>{escape_html(label)}</div>'


# --------------------------------------------------------------------------------------------
# Layers: what coverage_map draws, one helper per layer


#: Frame of :class:`MapLayers` → columns it must have.
_REQUIRED_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "centers": ("center_id",),
    "service_areas": ("minutes",),
    "demand": ("population", "minutes_to_nearest"),
    "uncovered": ("minutes", "population"),
    "sites": ("rank", "marginal_population"),
    "districts": (),
    "streets": (),
    "places": ("name",),
    "capacity": ("m2_per_100_households",),
}


@dataclass(frozen=True, eq=False)
class MapLayers:
    """The frames a coverage map draws, in their projected CRS; every one is optional.

    The frames of the output contract (docs/ARCHITECTURE.md), checked when the object is
    made. They are not modified.

    Attributes
    ----------
    centers
        Existing centers: ``center_id``; optional ``name``, ``level``, ``source`` and
        ``state`` (``existing``, ``added``, ``accepted``, ``closed``: one layer and legend
        row per state, closed ones greyed). Drawn as circles with a popup; at city scale
        they shrink as the map zooms out.
    service_areas
        ``minutes`` and optional ``center_id`` (``"all"`` for the union). One layer per
        threshold with the union (rows ``"all"``, or the dissolve of per-center rows).
    demand
        Demand units after the audit: ``population``, ``minutes_to_nearest`` (NaN when
        unreachable); optional ``demand_id``, ``name``. Shaded by minutes with a legend.
    uncovered
        Uncovered residential areas: ``minutes``, ``population``; optional ``area_m2``. One
        layer per threshold; only the largest is shown at first.
    sites
        Proposed sites: ``rank``, ``marginal_population``; optional ``cumulative_population``,
        ``cumulative_share``. Numbered markers.
    districts
        District outlines; the `district_name_column` column, if present, is the tooltip.
    streets
        Street lines (:func:`street_frame`): a light vector base layer that reads with no
        tiles at all (offline).
    places
        Named places (:func:`place_frame`): ``name``, points; drawn as small labels.
    district_name_column
        Column with district names.
    capacity
        Demand units after the capacity audit: ``m2_per_100_households`` (NaN: unknown);
        optional ``households``, ``demand_id``. Shaded against `capacity_standard_m2`, in a
        layer hidden at first.
    capacity_standard_m2
        The standard in m² per 100 households that splits the capacity classes.

    Raises
    ------
    InputError
        If a frame is not a GeoDataFrame in a projected CRS or lacks a required column.
    """

    centers: gpd.GeoDataFrame | None = None
    service_areas: gpd.GeoDataFrame | None = None
    demand: gpd.GeoDataFrame | None = None
    uncovered: gpd.GeoDataFrame | None = None
    sites: gpd.GeoDataFrame | None = None
    districts: gpd.GeoDataFrame | None = None
    district_name_column: str = "name"
    streets: gpd.GeoDataFrame | None = None
    places: gpd.GeoDataFrame | None = None
    capacity: gpd.GeoDataFrame | None = None
    capacity_standard_m2: float = 30.0

    def __post_init__(self) -> None:
        """Check every frame given."""
        for arg, columns in _REQUIRED_COLUMNS.items():
            frame = getattr(self, arg)
            if frame is not None:
                _require(frame, arg=arg, columns=columns)


@dataclass(frozen=True)
class MapDetail:
    """How much geometry a map page carries; the exported files always keep all of it.

    Attributes
    ----------
    tolerance_m
        Simplification tolerance in meters, applied before reprojecting; 0 keeps every vertex.
        On a large area it is raised to about one pixel of the whole-city view
        (``extent / DISPLAY_PIXELS``; e.g. 50 m on a 50 km city; holes under 3 × 3 of that are
        filled; coordinates rounded to a quarter of it), so the page stays a few megabytes;
        zoomed in, edges look coarser than in the exported files, which keep every vertex.
    max_units
        Above this many demand units, demand is aggregated to square cells of `grid_m`
        meters (population-weighted mean minutes) to keep the page small; the cells grow
        (doubling) until there are at most `max_units` of them. Each uncovered layer then
        shows its ``max_units // 4`` most populated areas. None never aggregates or caps.
    grid_m
        Cell side in meters for that aggregation.
    """

    tolerance_m: float = DEFAULT_TOLERANCE_M
    max_units: int | None = DEFAULT_MAX_UNITS
    grid_m: float = DEFAULT_GRID_M


@dataclass
class _Drawing:
    """A map being drawn, and what its layers report for the first view, the legend, the log."""

    m: folium.Map
    lang: str
    tolerance_m: float
    bounds: list[NDArray[np.float64]] = field(default_factory=list)
    legend: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def track(self, gdf: gpd.GeoDataFrame) -> None:
        """Keep the extent of a displayed frame: the first view fits them all."""
        if len(gdf):
            self.bounds.append(np.asarray(gdf.total_bounds))


def street_frame(net: WalkNetwork, *, max_edges: int = MAX_STREET_EDGES) -> gpd.GeoDataFrame:
    """Return the network's streets as a few merged lines: a light base layer for the map.

    Parameters
    ----------
    net
        The walking network.
    max_edges
        Above this many edges only the larger street classes are kept: the leading ranks of
        :data:`STREET_CLASS_RANKS` whose edges together number at most `max_edges` (at least
        the first rank present), so a city-sized network stays a light layer.

    Returns
    -------
    geopandas.GeoDataFrame
        ``geometry`` (merged LineStrings or MultiLineStrings) in ``net.crs``; empty when the
        network has no edges.
    """
    geoms = np.asarray(net.edge_geometry, dtype=object)
    if len(geoms) > max_edges:
        geoms = geoms[_street_rank(net.edge_highway) < _ranks_within(net.edge_highway, max_edges)]
    geoms = np.asarray([g for g in geoms if g is not None], dtype=object)
    if not len(geoms):
        return gpd.GeoDataFrame(geometry=[], crs=net.crs)
    merged = shapely.line_merge(shapely.multilinestrings(geoms))
    parts = np.asarray(shapely.get_parts(merged), dtype=object)
    return gpd.GeoDataFrame(geometry=parts, crs=net.crs)


def _street_rank(highway: NDArray[Any]) -> NDArray[np.int64]:
    """Rank of each edge's street class in :data:`STREET_CLASS_RANKS` (len of it: none).

    A multi-valued tag (``"residential;tertiary"``) takes the rank of its most important value.
    """
    rank_of = {c: i for i, rank in enumerate(STREET_CLASS_RANKS) for c in rank}
    none = len(STREET_CLASS_RANKS)
    values = np.asarray(highway, dtype=object).astype(str)
    uniq, inverse = np.unique(values, return_inverse=True)
    ranks = np.array(
        [min((rank_of.get(v, none) for v in u.split(";")), default=none) for u in uniq],
        dtype=np.int64,
    )
    return ranks[inverse]


def _ranks_within(highway: NDArray[Any], max_edges: int) -> int:
    """Return how many leading ranks have edges that fit in `max_edges` (at least the first present)."""
    counts = np.bincount(_street_rank(highway), minlength=len(STREET_CLASS_RANKS) + 1)
    total = np.cumsum(counts[:-1])
    fit = int(np.count_nonzero(total <= max_edges))
    first = int(np.argmax(counts[:-1] > 0)) + 1 if counts[:-1].any() else 0
    return max(fit, first)


def _draw_streets(d: _Drawing, streets: gpd.GeoDataFrame) -> None:
    """Draw the light street layer (bottom of the stack), for a map read with no tiles.

    The lines are drawn as one feature: the layer is not interactive, and a city's tens of
    thousands of lines would otherwise each carry a feature's JSON and a Leaflet layer.
    """
    if not len(streets):
        return
    frame = _display_frame(streets, d.tolerance_m)
    d.track(frame)
    lines = np.asarray(shapely.get_parts(frame.geometry.values), dtype=object)
    one = gpd.GeoDataFrame(geometry=[shapely.multilinestrings(lines)], crs=frame.crs)
    _GeoJsonLayer(
        one,
        [],
        name=t("map.layer.streets", d.lang),
        style={"color": _STREET_COLOR, "weight": 1, "opacity": 0.55, "interactive": False},
    ).add_to(d.m)
    d.counts["streets"] = len(frame)


def _draw_places(d: _Drawing, places: gpd.GeoDataFrame) -> None:
    """Place names as small permanent labels."""
    if not len(places):
        return
    frame = _display_frame(places, 0.0)
    frame = frame.assign(label=[escape_html(v) for v in frame["name"]])
    _LabelLayer(frame, ["label"], name=t("map.layer.places", d.lang), style={}).add_to(d.m)
    d.m.get_root().header.add_child(  # type: ignore[attr-defined]
        Element(
            "<style>.cp-place { color: #555; font-size: 11px; white-space: nowrap;"
            " transform: translate(-50%, -50%); text-shadow: 0 0 3px #fff, 0 0 3px #fff; }"
            " .cp-zoomed-out .cp-place { display: none; }</style>"
        ),
        name="cp_place_css",
    )
    d.counts["places"] = len(frame)


def _draw_districts(d: _Drawing, districts: gpd.GeoDataFrame, name_column: str) -> None:
    frame = _display_frame(districts, d.tolerance_m)
    d.track(frame)
    label = t("map.layer.districts", d.lang)
    _GeoJsonLayer(
        frame,
        [name_column] if name_column in frame.columns else [],
        name=label,
        style={"color": _DISTRICT_COLOR, "weight": 2, "dashArray": "6 4", "fill": False},
        tooltip=_fields([(name_column, t("map.field.district", d.lang))], frame),
    ).add_to(d.m)
    d.legend.append(_legend_row(_DISTRICT_COLOR, label, outline=True))
    d.counts["districts"] = len(frame)


def _union_area(rows: gpd.GeoDataFrame, minutes: float) -> gpd.GeoDataFrame:
    """Return one threshold's area as one row: its ``"all"`` row, or the union of its rows."""
    union_rows = rows[rows["center_id"] == "all"] if "center_id" in rows.columns else rows
    if not len(union_rows):
        union_rows = rows
    geom = (
        union_rows.geometry.iloc[0]
        if len(union_rows) == 1
        else shapely.union_all(np.asarray(union_rows.geometry.values))
    )
    return gpd.GeoDataFrame({"minutes": [minutes]}, geometry=[geom], crs=rows.crs)


def _draw_own_areas(d: _Drawing, rows: gpd.GeoDataFrame, minutes: float, color: str) -> None:
    """One hidden layer with each center's own area within `minutes`."""
    own = rows[rows["center_id"] != "all"]
    if not len(own):
        return
    frame = _display_frame(own, d.tolerance_m)
    _GeoJsonLayer(
        frame,
        ["center_id", "minutes"],
        name=t("map.layer.service_area_per_center", d.lang, minutes=threshold_key(minutes)),
        show=False,
        style={"color": color, "weight": 1, "fillOpacity": 0.05},
        tooltip=_fields([("center_id", t("map.field.center_id", d.lang))], frame),
    ).add_to(d.m)


def _draw_service_areas(d: _Drawing, areas: gpd.GeoDataFrame, *, per_center: bool) -> None:
    """One layer per threshold, largest first, the smallest in the darkest blue."""
    minutes_values = sorted({float(v) for v in areas["minutes"].dropna()}, reverse=True)
    for i, minutes in enumerate(minutes_values):
        rows = areas[areas["minutes"].astype(float) == minutes]
        union = _display_frame(_union_area(rows, minutes), d.tolerance_m)
        d.track(union)
        color = AREA_COLORS[min(len(minutes_values) - 1 - i, len(AREA_COLORS) - 1)]
        label = t("map.layer.service_area", d.lang, minutes=threshold_key(minutes))
        _GeoJsonLayer(
            union,
            ["minutes"],
            name=label,
            style={"color": color, "weight": 1, "fillColor": color, "fillOpacity": 0.18},
        ).add_to(d.m)
        d.legend.append(_legend_row(color, label))
        if per_center and "center_id" in areas.columns:
            _draw_own_areas(d, rows, minutes, color)
    d.counts["service_areas"] = len(minutes_values)


def _demand_display(
    d: _Drawing, demand: gpd.GeoDataFrame, detail: MapDetail
) -> tuple[gpd.GeoDataFrame, str, list[tuple[str, str]]]:
    """Return demand for the page (per unit or in grid cells), its label and (column, label)s."""
    lang = d.lang
    if detail.max_units is None or len(demand) <= detail.max_units:
        fields = [
            ("demand_id", t("map.field.demand_id", lang)),
            ("name", t("map.field.name", lang)),
            ("population", t("map.field.population", lang)),
            ("minutes_to_nearest", t("map.field.minutes", lang)),
        ]
        return _display_frame(demand, d.tolerance_m), t("map.layer.demand", lang), fields
    logger.info(
        "aggregating %d demand units to a %.0f m grid (max_units=%d)",
        len(demand),
        detail.grid_m,
        detail.max_units,
    )
    grid_m = detail.grid_m
    cells = _demand_grid(demand, grid_m)
    while len(cells) > detail.max_units:
        # a province-sized area: coarser cells until the count fits
        grid_m *= 2.0
        cells = _demand_grid(demand, grid_m)
    fields = [
        ("population", t("map.field.population", lang)),
        ("minutes_to_nearest", t("map.field.minutes", lang)),
        ("unreachable_population", t("map.field.unreachable_population", lang)),
    ]
    # square cells keep their corners at any tolerance below their side; this only rounds the
    # coordinates to the precision of the view
    frame = _display_frame(cells, min(d.tolerance_m, grid_m / 4.0))
    return frame, t("map.layer.demand_grid", lang, cell_m=f"{grid_m:g}"), fields


def _demand_classes(
    minutes: NDArray[np.float64], thresholds_min: Sequence[float], lang: str
) -> list[tuple[NDArray[np.bool_], str, str]]:
    """(mask, color, legend label) of each minutes bin, then of the unreachable units."""
    classes: list[tuple[NDArray[np.bool_], str, str]] = []
    for lo, hi, color in _minute_bins(thresholds_min):
        inside = (minutes > lo) & (minutes <= hi) if lo > 0 else minutes <= hi
        classes.append((inside, color, _bin_label(lo, hi, lang)))
    classes.append((~np.isfinite(minutes), _UNREACHABLE_COLOR, t("map.legend.unreachable", lang)))
    return classes


def _draw_demand(
    d: _Drawing, demand: gpd.GeoDataFrame, thresholds_min: Sequence[float], detail: MapDetail
) -> None:
    """One group of layers, one per minutes bin (GeoJSON layers take one style each)."""
    frame, label, fields = _demand_display(d, demand, detail)
    d.track(frame)
    group = folium.FeatureGroup(name=label).add_to(d.m)
    d.legend.append(f"<b>{escape_html(label)}</b>")
    minutes = frame["minutes_to_nearest"].to_numpy(dtype=float)
    for mask, color, bin_label in _demand_classes(minutes, thresholds_min, d.lang):
        d.legend.append(_legend_row(color, bin_label))
        part = frame[mask]
        if not len(part):
            continue
        _GeoJsonLayer(
            part,
            [f for f, _ in fields],
            style={"color": color, "weight": 0.5, "fillColor": color, "fillOpacity": 0.6},
            marker={
                "radius": 4,
                "weight": 1,
                "color": color,
                "fill": True,
                "fillColor": color,
                "fillOpacity": 0.8,
            },
            tooltip=_fields(fields, part),
        ).add_to(group)
    d.counts["demand"] = len(frame)


#: Capacity classes: share of the standard reached (upper edge), color, legend key.
_CAPACITY_CLASSES: Final = (
    (0.5, "#d7301f", "map.legend.capacity_below_half"),
    (1.0, "#fc8d59", "map.legend.capacity_below"),
    (math.inf, "#1a9850", "map.legend.capacity_meets"),
)


def _draw_capacity(d: _Drawing, demand: gpd.GeoDataFrame, standard_m2: float) -> None:
    """Demand units shaded by floor area reachable per 100 households against the standard."""
    lang = d.lang
    label = t("map.layer.capacity", lang)
    frame = _display_frame(demand, d.tolerance_m)
    group = folium.FeatureGroup(name=label, show=False).add_to(d.m)
    d.legend.append(f"<b>{escape_html(label)}</b>")
    value = frame["m2_per_100_households"].to_numpy(dtype=float)
    fields = _fields(
        [
            ("demand_id", t("map.field.demand_id", lang)),
            ("households", t("map.field.households", lang)),
            ("m2_per_100_households", t("map.field.m2_per_100_households", lang)),
        ],
        frame,
    )
    lo = 0.0
    masks: list[tuple[NDArray[np.bool_], str, str]] = []
    for edge, color, key in _CAPACITY_CLASSES:
        inside = (value >= lo * standard_m2) & (value < edge * standard_m2)
        masks.append((inside, color, t(key, lang, standard=standard_m2, half=standard_m2 / 2)))
        lo = edge
    masks.append((~np.isfinite(value), _UNREACHABLE_COLOR, t("map.legend.capacity_unknown", lang)))
    for mask, color, text in masks:
        d.legend.append(_legend_row(color, text))
        part = frame[mask]
        if len(part):
            _GeoJsonLayer(
                part,
                [f for f, _ in fields],
                style={"color": color, "weight": 0.5, "fillColor": color, "fillOpacity": 0.6},
                marker={"radius": 4, "weight": 1, "color": color, "fill": True, "fillOpacity": 0.8},
                tooltip=fields,
            ).add_to(group)
    d.counts["capacity"] = len(frame)


def _most_populated(part: gpd.GeoDataFrame, n: int) -> gpd.GeoDataFrame:
    """Return the `n` rows of `part` with the largest population (ties in their order)."""
    order = np.argsort(-part["population"].to_numpy(dtype=float), kind="stable")
    return part.iloc[order[:n]]


def _draw_uncovered(d: _Drawing, uncovered: gpd.GeoDataFrame, max_units: int | None) -> None:
    """One layer per threshold; only the largest threshold's is shown at first."""
    minutes_values = sorted({float(v) for v in uncovered["minutes"].dropna()})
    for minutes in minutes_values:
        part = uncovered[uncovered["minutes"].astype(float) == minutes]
        if max_units is not None and len(part) > max_units // 4:
            # city scale: the largest areas by population; the exports keep every one
            logger.info(
                "showing the %d most populated of %d uncovered areas (%g min)",
                max_units // 4,
                len(part),
                minutes,
            )
            part = _most_populated(part, max_units // 4)
        part = _display_frame(part, d.tolerance_m)
        d.track(part)
        _GeoJsonLayer(
            part,
            ["population", "area_m2"],
            name=t("map.layer.uncovered", d.lang, minutes=threshold_key(minutes)),
            show=minutes == minutes_values[-1],
            style={
                "color": _UNCOVERED_COLOR,
                "weight": 1.5,
                "dashArray": "4 3",
                "fillColor": _UNCOVERED_COLOR,
                "fillOpacity": 0.2,
            },
            tooltip=_fields(
                [
                    ("population", t("map.field.population", d.lang)),
                    ("area_m2", t("map.field.area_m2", d.lang)),
                ],
                part,
            ),
        ).add_to(d.m)
    if minutes_values:
        label = t("map.layer.uncovered", d.lang, minutes=threshold_key(minutes_values[-1]))
        d.legend.append(_legend_row(_UNCOVERED_COLOR, label))
    d.counts["uncovered"] = len(uncovered)


#: Center column → i18n key of its label in the popup, in this order.
_CENTER_FIELDS: Final = (
    ("name", "map.field.name"),
    ("center_id", "map.field.center_id"),
    ("level", "map.field.level"),
    ("source", "map.field.source"),
)


def _draw_centers(d: _Drawing, centers: gpd.GeoDataFrame) -> None:
    """One GeoJSON layer of points per station state; the tooltip is the name, or the id.

    A folium marker with popup and tooltip per center is ~1.5 kB of script each. Without a
    ``state`` column every center is an existing one.
    """
    frame = _display_frame(centers, 0.0)
    d.track(frame)
    tip = frame["center_id"].astype(object)
    if "name" in frame.columns:
        tip = frame["name"].astype(object).where(~frame["name"].map(is_missing), tip)
    frame = frame.assign(_tip=tip.to_numpy(), geometry=frame.geometry.representative_point())
    states = (
        frame["state"].astype(str).to_numpy()
        if "state" in frame.columns
        else np.full(len(frame), "existing", dtype=object)
    )
    for state, color in STATE_COLORS.items():
        part = frame[states == state]
        if not len(part) and state != "existing":
            continue
        label = t(_STATE_LABELS[state], d.lang)
        closed = state == "closed"
        _GeoJsonLayer(
            part,
            ["_tip", *(col for col, _ in _CENTER_FIELDS)],
            name=label,
            style={},
            marker={
                "radius": 6 if closed else 7,
                "color": "#616161" if closed else "#ffffff",
                "weight": 2,
                "dashArray": "3 2" if closed else None,
                "fill": True,
                "fillColor": color,
                "fillOpacity": 0.45 if closed else 1.0,
                "cpRadius": 6 if closed else 7,
            },
            tooltip="_tip",
            popup=_fields([(col, t(key, d.lang)) for col, key in _CENTER_FIELDS], part),
        ).add_to(d.m)
        d.legend.append(_legend_row(color, label, dot=True))
        d.counts[f"centers_{state}"] = len(part)
    d.counts["centers"] = len(frame)


class _ZoomScale(MacroElement):  # type: ignore[misc]
    """Center markers (``cpRadius``) shrink when the map is zoomed out to city scale.

    Place labels hide below zoom 14, where they would overlap.
    """

    _template = Template(
        """{% macro script(this, kwargs) %}
        (function (map) {
          function cpScale() {
            var z = map.getZoom();
            var f = Math.min(1.0, Math.max(0.35, Math.pow(2, (z - 15) / 2)));
            var c = map.getContainer().classList;
            if (z < 14) { c.add("cp-zoomed-out"); } else { c.remove("cp-zoomed-out"); }
            map.eachLayer(function (l) {
              if (l.options && l.options.cpRadius && l.setRadius) {
                l.setRadius(l.options.cpRadius * f);
              }
            });
          }
          map.on("zoomend", cpScale);
          map.whenReady(cpScale);
        })({{ this._parent.get_name() }});
        {% endmacro %}"""
    )

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._name = "CpZoomScale"


def _site_table(site: Any, columns: pd.Index, lang: str) -> str:
    """Return the popup table of one site (a row of ``itertuples``), every cell escaped."""
    parts = [
        (t("map.field.rank", lang), escape_html(format_number(site.rank))),
        (t("map.field.marginal_population", lang), format_number(site.marginal_population)),
    ]
    if "cumulative_population" in columns:
        parts.append(
            (t("map.field.cumulative_population", lang), format_number(site.cumulative_population))
        )
    if "cumulative_share" in columns and not is_missing(site.cumulative_share):
        parts.append((t("map.field.cumulative_share", lang), f"{float(site.cumulative_share):.1%}"))
    rows = "".join(f"<tr><th>{escape_html(k)}</th><td>{escape_html(v)}</td></tr>" for k, v in parts)
    return f"<table>{rows}</table>"


def _draw_sites(d: _Drawing, sites: gpd.GeoDataFrame) -> None:
    """Numbered markers in rank order, each with a popup table."""
    frame = _display_frame(sites, 0.0)
    d.track(frame)
    label = t("map.layer.sites", d.lang)
    group = folium.FeatureGroup(name=label).add_to(d.m)
    for site in frame.sort_values("rank").itertuples(index=False):
        point = site.geometry.representative_point()
        folium.Marker(
            location=(point.y, point.x),
            icon=folium.DivIcon(
                html=f'<div class="cp-site">{escape_html(format_number(site.rank))}</div>',
                icon_size=(28, 28),
                icon_anchor=(14, 14),
            ),
            popup=folium.Popup(_site_table(site, frame.columns, d.lang), max_width=320),
        ).add_to(group)
    d.legend.append(_legend_row(_SITE_COLOR, label, dot=True))
    d.counts["sites"] = len(frame)


def _add_controls(d: _Drawing) -> None:
    """Add the layer control, and the legend of every layer drawn with the attribution."""
    folium.LayerControl(collapsed=True).add_to(d.m)
    legend_html = f"<b>{escape_html(t('map.legend.title', d.lang))}</b>" + "".join(d.legend)
    _Legend(legend_html, _ATTRIBUTION).add_to(d.m)


def _fit_view(d: _Drawing) -> None:
    """Fit the first view to every layer drawn, or show the default city."""
    if d.bounds:
        b = np.vstack(d.bounds)
        d.m.fit_bounds([[b[:, 1].min(), b[:, 0].min()], [b[:, 3].max(), b[:, 2].max()]])
    else:
        d.m.location = [30.66, 104.06]  # Chengdu, the default city, when there is nothing to show
        d.m.options["zoom"] = 12


def coverage_map(
    layers: MapLayers | None = None,
    *,
    lang: str = "zh",
    tiles: Literal["openstreetmap", "light"] | None = "openstreetmap",
    thresholds_min: Sequence[float] = (5.0, 15.0),
    detail: MapDetail | None = None,
    per_center_areas: bool = False,
    height: str | int = "100%",
) -> folium.Map:
    """Return a folium map of existing centers, service areas, demand and proposed sites.

    The frames of `layers` are simplified by ``detail.tolerance_m`` meters, reprojected to
    EPSG:4326 and rounded to 6 decimals (fewer, down to 4, when a city-wide view raises the
    tolerance). Large layers are written as GeoJSON text with one style each; tooltips and
    popups are built in the browser from the feature properties. Layers stack as districts,
    service areas, demand, uncovered areas, centers, proposed sites. The map asks for
    Leaflet and jQuery only (:data:`coverage.assets.MAP_JS`, no icon fonts); use
    :func:`coverage.assets.offline_map_html`, :func:`coverage.report.report_html` or
    :func:`coverage.assets.use_local_assets` to take them from the vendored copies instead of
    a CDN. Every string that comes from data is HTML-escaped; the inputs are not modified.

    Parameters
    ----------
    layers
        The frames to draw; None draws an empty map.
    lang
        ``"zh"`` or ``"en"`` for layer names, legend and popups.
    tiles
        ``"openstreetmap"``, ``"light"`` (the same OpenStreetMap tiles, desaturated so the
        layers stand out) or None for no basemap (no network request at all; the vector layers
        still show).
    thresholds_min
        Minute thresholds that define the demand color bins.
    detail
        How much geometry the page carries; None takes the defaults of :class:`MapDetail`.
    per_center_areas
        Also add one hidden layer per threshold with each center's own service area.
    height
        Map height (CSS length or pixels).

    Returns
    -------
    folium.Map
        With a layer control, a legend and the "© OpenStreetMap contributors" attribution (also
        when `tiles` is None).

    Raises
    ------
    InputError
        If `tiles`, `lang` or `thresholds_min` is not supported.
    """
    t("map.layer.centers", lang)  # validates `lang` before any work
    _check_tiles(tiles)
    if not thresholds_min:
        msg = "`thresholds_min` must name at least one threshold, e.g. (5, 15)."
        raise InputError(msg)
    layers = MapLayers() if layers is None else layers
    detail = MapDetail() if detail is None else detail
    tolerance_m = _display_tolerance_m(
        detail.tolerance_m, [layers.service_areas, layers.demand, layers.uncovered]
    )
    # zoomSnap 0.25: the first view fits the data closely, not at the next whole zoom level out
    m = folium.Map(
        tiles=None, control_scale=True, prefer_canvas=True, height=height, zoom_snap=0.25
    )
    m.default_js = list(MAP_JS)
    m.default_css = list(MAP_CSS)
    _add_tiles(m, tiles, lang)
    d = _Drawing(m, lang, tolerance_m)
    if layers.streets is not None:
        _draw_streets(d, layers.streets)
    if layers.districts is not None:
        _draw_districts(d, layers.districts, layers.district_name_column)
    if layers.service_areas is not None:
        _draw_service_areas(d, layers.service_areas, per_center=per_center_areas)
    if layers.demand is not None:
        _draw_demand(d, layers.demand, thresholds_min, detail)
    if layers.capacity is not None:
        _draw_capacity(d, layers.capacity, layers.capacity_standard_m2)
    if layers.uncovered is not None:
        _draw_uncovered(d, layers.uncovered, detail.max_units)
    if layers.centers is not None:
        _draw_centers(d, layers.centers)
    if layers.sites is not None:
        _draw_sites(d, layers.sites)
    if layers.places is not None:
        _draw_places(d, layers.places)
    _add_controls(d)
    _fit_view(d)
    _ZoomScale().add_to(m)
    logger.info(
        "returned map with %s",
        ", ".join(f"{n} {k}" for k, n in d.counts.items()) or "no layers",
    )
    return m
