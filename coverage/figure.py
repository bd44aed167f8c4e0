"""The printable map figure (``map.png``, ``map.pdf``), rendered offline with matplotlib.

One A4-landscape figure per result: the network's streets as a light base, the service areas
per threshold, the housing left uncovered at the largest threshold, and the stations told
apart by state (existing, added, closed, proposed), with legend, scale bar, north arrow, title,
date, parameters and data attribution. Everything is drawn in the network's metric CRS, so the
scale bar is exact and no tile server is needed. Chinese text uses a CJK font installed by the
setup (WenQuanYi Micro Hei, ``fonts-wqy-microhei``; or Noto Sans CJK); without one, a warning
says so and the labels fall back to matplotlib's default font.

Cost is bounded at city scale: at most :attr:`FigureSpec.max_street_segments` street
segments (the longest), only the union service area per threshold, and polygons simplified
to :attr:`FigureSpec.simplify_m` before drawing (shapes above :data:`LARGE_SIMPLIFY_COORDS`
coordinates ring by ring, without topology preservation); each polygon layer and the streets are drawn as
one path each, so the PNG and PDF writers handle a handful of paths, not one per shape. The figure is a :class:`matplotlib.figure.Figure`
built without ``pyplot`` (no global state; safe in the app's threads). Its artist classes
(figure, axes, patches, lines, paths) are imported by the drawing functions when they run,
not at the top: they take about 0.7 s to import, and a re-run whose ``map.png`` and
``map.pdf`` come from the output cache draws nothing (``matplotlib`` itself and its font
manager, which the key reads, are imported at the top).

For the output cache (:mod:`coverage.outcache`), :func:`figure_key` names everything a
figure is drawn from, and :func:`pdf_with_creation_date` gives a kept ``map.pdf`` the
creation date a fresh drawing would have.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import logging
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import matplotlib
import numpy as np
import shapely
from matplotlib import font_manager
from numpy.typing import NDArray

from coverage.errors import InputError
from coverage.i18n import t
from coverage.inputs import CityData
from coverage.isochrones import ALL_CENTERS
from coverage.network import WalkNetwork
from coverage.outcache import FrameDigests, piece_key
from coverage.scenario import ScenarioResult

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.path import Path as MplPath

logger = logging.getLogger(__name__)

__all__ = [
    "CJK_FONT_FILES",
    "FigureLayers",
    "FigureSpec",
    "cjk_font",
    "figure_key",
    "figure_layers",
    "map_figure",
    "map_pdf_bytes",
    "map_png_bytes",
    "pdf_with_creation_date",
    "source_label",
    "stations_source",
]

#: Font files tried first for Chinese text (Debian packages ``fonts-wqy-microhei``, ``fonts-noto-cjk``).
CJK_FONT_FILES = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf"),
)
#: Font families looked up through matplotlib when none of :data:`CJK_FONT_FILES` exists.
CJK_FONT_FAMILIES = (
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Microsoft YaHei",
    "PingFang SC",
    "SimHei",
)

#: Colours of the layers (light streets; blues for service areas, nearest first; red uncovered).
STREET_COLOR = "#b8b8b8"
AREA_COLORS = ("#2b8cbe", "#7bccc4", "#bae4bc", "#f0f9e8")
UNCOVERED_COLOR = "#e34a33"
#: Marker style per station state: (marker, face colour, edge colour, size in points²).
STATION_STYLES = {
    "existing": ("o", "#1f4e79", "white", 36.0),
    "added": ("^", "#2ca25f", "white", 64.0),
    "closed": ("X", "#9e9e9e", "#333333", 56.0),
    "proposed": ("*", "#d7301f", "white", 160.0),
}
#: Station states, in legend order.
STATION_STATES = tuple(STATION_STYLES)
_NICE_M = (50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000, 20000, 50000)


@dataclass(frozen=True)
class FigureSpec:
    """Size and drawing budget of the map figure.

    Parameters
    ----------
    width_px, height_px
        Pixel size of ``map.png`` (default A4 landscape at 150 dpi).
    dpi
        Dots per inch of ``map.png``; ``map.pdf`` is vector at the same page size.
    max_street_segments
        Most street segments drawn (the longest are kept).
    simplify_m
        Tolerance, in meters, for simplifying polygons before drawing.
    """

    width_px: int = 1754
    height_px: int = 1240
    dpi: int = 150
    max_street_segments: int = 150_000
    simplify_m: float = 5.0

    def __post_init__(self) -> None:
        """Refuse sizes that cannot make a readable figure."""
        if not (200 <= self.width_px <= 10_000 and 200 <= self.height_px <= 10_000):
            msg = f"`width_px`/`height_px` must lie within 200–10,000; got {self.width_px}×{self.height_px}."
            raise InputError(msg)
        if not 50 <= self.dpi <= 600:
            msg = f"`dpi` must lie within 50–600; got {self.dpi}."
            raise InputError(msg)


@dataclass(frozen=True)
class FigureLayers:
    """What the figure draws, every frame in the network's CRS.

    Parameters
    ----------
    net
        The walking network (its streets are the base).
    service_areas
        ``center_id`` (``"all"`` for the union), ``minutes``, geometry.
    uncovered
        ``minutes``, geometry: housing beyond each threshold.
    stations
        Station state (:data:`STATION_STATES`) → points.
    thresholds_min
        The audit's thresholds.
    speed_kmh
        Walking speed.
    scenario
        Scenario name.
    stations_source
        Where the stations come from (for the attribution line).
    thresholds_m
        The audit's distance thresholds (``--distance-m``), in meters.
    distance_areas
        ``center_id``, ``meters``, geometry: service areas of the distances.
    distance_uncovered
        ``meters``, geometry: housing beyond each distance. With distance
        thresholds the figure draws these, labelled in meters, instead of the
        minute layers (the planner asked to be judged by distance).
    """

    net: WalkNetwork
    service_areas: gpd.GeoDataFrame | None
    uncovered: gpd.GeoDataFrame | None
    stations: dict[str, gpd.GeoDataFrame]
    thresholds_min: tuple[float, ...]
    speed_kmh: float
    scenario: str = ""
    stations_source: str = ""
    thresholds_m: tuple[float, ...] = ()
    distance_areas: gpd.GeoDataFrame | None = None
    distance_uncovered: gpd.GeoDataFrame | None = None


def cjk_font() -> font_manager.FontProperties | None:
    """Return a font that has Chinese glyphs, or ``None`` (with a warning) when none is installed.

    Returns
    -------
    matplotlib.font_manager.FontProperties or None
        The first of :data:`CJK_FONT_FILES` that exists, else the first of
        :data:`CJK_FONT_FAMILIES` matplotlib knows.
    """
    found = _cjk_font_file()
    if found is not None:
        return font_manager.FontProperties(fname=found)
    warnings.warn(
        "No Chinese font found for map.png/map.pdf; Chinese labels will show as boxes. Install one: `apt-get install fonts-wqy-microhei` (or run scripts/install_chromium.sh).",
        stacklevel=2,
    )
    return None


def _cjk_font_file() -> str | None:
    """Return the file of :func:`cjk_font` (``None``: no Chinese font), looked up without a warning."""
    for path in CJK_FONT_FILES:
        if path.is_file():
            return str(path)
    for family in CJK_FONT_FAMILIES:
        try:
            return str(
                font_manager.findfont(
                    font_manager.FontProperties(family=family), fallback_to_default=False
                )
            )
        except ValueError:
            continue
    return None


def figure_layers(result: ScenarioResult, city: CityData, *, source: str = "") -> FigureLayers:
    """Return the layers of a scenario result's figure (`source`: where the stations come from).

    Existing stations are the centers in force from the data; added ones are the
    scenario's (``source == "added"``); closed ones are the city's centers the
    scenario closed; proposed ones are the siting's sites.

    Returns
    -------
    FigureLayers
        In the network's CRS.
    """
    centers = result.centers
    kinds = (
        centers["source"].astype(str).to_numpy()
        if "source" in centers.columns
        else np.full(len(centers), "file", dtype=object)
    )
    closed_ids = {str(c) for c in result.scenario.closed}
    closed = city.centers[city.centers["center_id"].astype(str).isin(closed_ids)]
    stations = {
        "existing": centers[kinds != "added"],
        "added": centers[kinds == "added"],
        "closed": closed,
        "proposed": result.siting.sites if result.siting is not None else centers.iloc[:0],
    }
    audit = result.audit
    d_areas = getattr(audit, "distance_areas", None)
    d_uncovered = getattr(audit, "distance_uncovered", None)
    return FigureLayers(
        net=city.net,
        service_areas=audit.service_areas if len(audit.service_areas) else None,
        uncovered=audit.uncovered if len(audit.uncovered) else None,
        stations={k: v for k, v in stations.items() if len(v)},
        thresholds_min=tuple(float(x) for x in audit.params.thresholds_min),
        speed_kmh=float(audit.params.speed_kmh),
        scenario=result.scenario.name,
        stations_source=source or stations_source(city.centers, centers),
        thresholds_m=tuple(float(x) for x in getattr(audit.params, "thresholds_m", ())),
        distance_areas=d_areas if d_areas is not None and len(d_areas) else None,
        distance_uncovered=d_uncovered if d_uncovered is not None and len(d_uncovered) else None,
    )


def stations_source(*frames: gpd.GeoDataFrame) -> str:
    """Return where the stations of `frames` come from: their ``source`` values (``"osm,file"``)."""
    kinds = {str(v) for f in frames if "source" in f.columns for v in f["source"]}
    parts = []
    if "osm" in kinds:
        parts.append("osm")
    if "file" in kinds:
        parts.append("file")
    if "added" in kinds:
        parts.append("added")
    return ",".join(parts)


def source_label(stations_source: str, lang: str) -> str:
    """Return where the stations come from in `lang` (``"osm,file"`` → "OpenStreetMap tags, …").

    A text that is not a list of the data's ``source`` values is returned as it is.
    """
    keys = {"osm", "file", "added"}
    words = [s.strip() for s in stations_source.split(",") if s.strip()]
    if words and all(w in keys for w in words):
        sep = "、" if lang == "zh" else ", "
        return sep.join(t(f"figure.stations.{w}", lang) for w in words)
    return stations_source


def _street_path(net: WalkNetwork, limit: int) -> tuple[MplPath, int]:
    """One path of the streets (the ``limit`` longest edges), and its number of segments.

    One path, not a collection of one line each: a PDF writer handles a collection
    item by item in Python (16 s for 150,000 segments).
    """
    from matplotlib.path import Path as MplPath  # lazy: see the module notes

    u, v = net.edge_u, net.edge_v
    if len(u) > limit:
        keep = np.argsort(net.edge_length_m)[-limit:]
        u, v = u[keep], v[keep]
    xy = np.empty((2 * len(u), 2), dtype=np.float64)
    xy[0::2, 0], xy[0::2, 1] = net.node_x[u], net.node_y[u]
    xy[1::2, 0], xy[1::2, 1] = net.node_x[v], net.node_y[v]
    codes = np.empty(2 * len(u), dtype=MplPath.code_type)
    codes[0::2], codes[1::2] = MplPath.MOVETO, MplPath.LINETO
    return MplPath(xy, codes), len(u)


#: Above this many coordinates a shape is simplified ring by ring (Douglas-Peucker on each
#: ring as a line, :func:`_rings_simplified`): GEOS's topology-preserving simplifier takes
#: minutes on a city-wide union with ~20,000 holes (147 s at 100k nodes), and its
#: Douglas-Peucker on a polygon repairs validity after, which grows faster than the shape
#: (1.9 s at 100k nodes, over 5 minutes at 300k). The figure only fills the rings (non-zero
#: winding), so a ring that touches another after simplification draws alike at the
#: figure's tolerance.
LARGE_SIMPLIFY_COORDS = 20_000


def _rings_simplified(geom: shapely.Geometry, tolerance_m: float) -> shapely.Geometry | None:
    """Douglas-Peucker on every ring of a (Multi)Polygon, for drawing only (validity not repaired).

    A ring left with fewer than four coordinates or no area is dropped; a part whose
    shell is dropped goes with its holes. Linear in the coordinates.
    """
    parts = shapely.get_parts(np.asarray([geom], dtype=object))
    parts = parts[shapely.get_type_id(parts) == shapely.GeometryType.POLYGON]
    rings, part_of = shapely.get_rings(parts, return_index=True)
    if rings.size == 0:
        return None
    lines = shapely.simplify(
        shapely.linestrings(shapely.get_coordinates(rings), indices=_ring_index(rings)),
        tolerance_m,
        preserve_topology=False,
    )
    keep = shapely.get_num_coordinates(lines) >= 4
    closed = shapely.linearrings(
        shapely.get_coordinates(lines[keep]), indices=_ring_index(lines[keep])
    )
    has_area = shapely.area(shapely.polygons(closed)) > 0
    keep[keep] = has_area
    closed = closed[has_area]
    first = np.r_[True, part_of[1:] != part_of[:-1]]
    shell_kept = np.zeros(parts.size, dtype=bool)
    shell_kept[part_of[first]] = keep[first]
    with_shell = shell_kept[part_of[keep]]
    if not with_shell.any():
        return None
    kept_rings, kept_part = closed[with_shell], part_of[keep][with_shell]
    _, part_rank = np.unique(kept_part, return_inverse=True)
    polys = shapely.polygons(kept_rings, indices=part_rank)
    return polys[0] if polys.size == 1 else shapely.multipolygons(polys)


def _ring_index(geoms: NDArray[np.object_]) -> NDArray[np.intp]:
    """Return the geometry each coordinate of ``geoms`` belongs to (for ``indices=`` constructors)."""
    return np.repeat(np.arange(geoms.size), shapely.get_num_coordinates(geoms))


def _simplified(geoms: NDArray[np.object_], tolerance_m: float) -> NDArray[np.object_]:
    """Simplify ``geoms`` for drawing: topology-preserving, except for very large shapes."""
    geoms = np.asarray(geoms, dtype=object)
    out = geoms.copy()
    present = ~np.asarray(shapely.is_missing(geoms), dtype=bool)
    large = np.zeros(geoms.size, dtype=bool)
    large[present] = shapely.get_num_coordinates(geoms[present]) > LARGE_SIMPLIFY_COORDS
    small = present & ~large
    out[small] = shapely.simplify(geoms[small], tolerance_m, preserve_topology=True)
    for k in np.flatnonzero(large):
        out[k] = _rings_simplified(geoms[k], tolerance_m)
    return out


def _union_areas(
    areas: gpd.GeoDataFrame, simplify_m: float, by: str = "minutes"
) -> gpd.GeoDataFrame:
    """One (simplified) polygon per threshold: the ``"all"`` rows, else the union per ``by``."""
    if "center_id" in areas.columns and (areas["center_id"] == ALL_CENTERS).any():
        union = areas[areas["center_id"] == ALL_CENTERS][[by, "geometry"]]
    else:
        union = areas[[by, "geometry"]].dissolve(by=by, as_index=False)
    out = union.copy()
    out["geometry"] = _simplified(np.asarray(out.geometry.values, dtype=object), simplify_m)
    return _drawable(out)


def _polygons_path(geoms: NDArray[np.object_]) -> MplPath:
    """One compound path of every ring of ``geoms`` (exteriors counter-clockwise, holes clockwise).

    Drawn as one patch (non-zero fill: holes stay open), so a layer of 100,000
    polygons costs one path in the PNG and the PDF instead of one patch each.
    """
    from matplotlib.path import Path as MplPath  # lazy: see the module notes

    parts = shapely.get_parts(shapely.orient_polygons(np.asarray(geoms, dtype=object)))
    parts = parts[shapely.get_type_id(parts) == shapely.GeometryType.POLYGON]
    rings = shapely.get_rings(parts)
    xy, ring = shapely.get_coordinates(rings, return_index=True)
    if xy.shape[0] == 0:
        return MplPath(np.zeros((0, 2)))
    codes = np.full(xy.shape[0], MplPath.LINETO, dtype=MplPath.code_type)
    first = np.r_[True, ring[1:] != ring[:-1]]
    last = np.r_[ring[1:] != ring[:-1], True]
    codes[first] = MplPath.MOVETO
    codes[last] = MplPath.CLOSEPOLY
    return MplPath(xy, codes)


def _draw_polygons(
    ax: Axes, gdf: gpd.GeoDataFrame, *, color: str, alpha: float, zorder: float
) -> None:
    """Fill every polygon of ``gdf`` as one patch."""
    from matplotlib.patches import PathPatch  # lazy: see the module notes

    patch = PathPatch(
        _polygons_path(np.asarray(gdf.geometry.values, dtype=object)),
        facecolor=color,
        edgecolor="none",
        linewidth=0,
        alpha=alpha,
        zorder=zorder,
        transform=ax.transData,
    )
    # add_artist, not add_patch: updating the data limits walks every vertex in Python
    # (20 s for a 100k-node city); the figure frames its extent itself
    ax.add_artist(patch)


def _drawable(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Drop missing and empty geometries (geopandas warns when asked to draw nothing)."""
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    keep = ~np.asarray(shapely.is_missing(geoms), dtype=bool)
    keep[keep] = ~np.asarray(shapely.is_empty(geoms[keep]), dtype=bool)
    return gdf[keep]


def _area_layers(
    layers: FigureLayers,
) -> tuple[gpd.GeoDataFrame | None, gpd.GeoDataFrame | None, tuple[float, ...], str]:
    """Return the service areas, uncovered housing, thresholds and their column to draw.

    With distance thresholds (``--distance-m``) the distance layers, in meters;
    else the minute layers.
    """
    if layers.thresholds_m:
        return layers.distance_areas, layers.distance_uncovered, layers.thresholds_m, "meters"
    return layers.service_areas, layers.uncovered, layers.thresholds_min, "minutes"


def _area_label(kind: str, value: float, by: str, lang: str) -> str:
    """Legend text of a service area (``kind="service_area"``) or of uncovered housing, in its unit."""
    if by == "meters":
        return t(f"figure.{kind}_m", lang, meters=value)
    return t(f"figure.{kind}", lang, minutes=value)


def _draw_areas(ax: Axes, layers: FigureLayers, spec: FigureSpec, lang: str) -> list[Patch]:
    from matplotlib.patches import Patch  # lazy: see the module notes

    handles: list[Patch] = []
    areas, uncovered, thresholds, by = _area_layers(layers)
    if areas is not None:
        union = _union_areas(areas, spec.simplify_m, by)
        values = sorted({float(m) for m in union[by]}, reverse=True)
        for i, m in enumerate(values):  # the largest first, the nearest on top
            color = AREA_COLORS[min(len(values) - 1 - i, len(AREA_COLORS) - 1)]
            part = union[union[by].astype(float) == m]
            _draw_polygons(ax, part, color=color, alpha=0.55, zorder=2 + i / 10)
        for i, m in enumerate(sorted(values)):
            color = AREA_COLORS[min(i, len(AREA_COLORS) - 1)]
            label = _area_label("service_area", m, by, lang)
            handles.append(Patch(facecolor=color, alpha=0.55, label=label))
    if uncovered is not None and thresholds:
        last = max(thresholds)
        unc = uncovered[uncovered[by].astype(float) == last]
        simple = _simplified(np.asarray(unc.geometry.values, dtype=object), spec.simplify_m)
        unc = _drawable(unc.assign(geometry=simple))
        if len(unc):
            _draw_polygons(ax, unc, color=UNCOVERED_COLOR, alpha=0.6, zorder=3)
            label = _area_label("uncovered", last, by, lang)
            handles.append(Patch(facecolor=UNCOVERED_COLOR, alpha=0.6, label=label))
    return handles


def _draw_stations(ax: Axes, layers: FigureLayers, lang: str) -> list[Line2D]:
    from matplotlib.lines import Line2D  # lazy: see the module notes

    handles: list[Line2D] = []
    for z, state in enumerate(STATION_STATES):
        gdf = layers.stations.get(state)
        if gdf is None or len(gdf) == 0:
            continue
        pts = gdf.geometry.representative_point()
        marker, face, edge, size = STATION_STYLES[state]
        ax.scatter(
            pts.x,
            pts.y,
            s=size,
            marker=marker,
            c=face,
            edgecolors=edge,
            linewidths=0.8,
            zorder=5 + z,
        )
        handles.append(
            Line2D(
                [],
                [],
                linestyle="none",
                marker=marker,
                markersize=np.sqrt(size),
                markerfacecolor=face,
                markeredgecolor=edge,
                label=f"{t(f'figure.station.{state}', lang)} ({len(gdf):,})",
            )
        )
    return handles


def _nice_length_m(span_m: float) -> int:
    target = span_m / 5
    return max((n for n in _NICE_M if n <= target), default=_NICE_M[0])


def _draw_scale_and_north(ax: Axes, lang: str, font: font_manager.FontProperties | None) -> None:
    from matplotlib.patches import Rectangle  # lazy: see the module notes

    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    length = _nice_length_m(x1 - x0)
    bx, by = x0 + 0.04 * (x1 - x0), y0 + 0.05 * (y1 - y0)
    height = 0.008 * (y1 - y0)
    half = length / 2
    ax.add_patch(Rectangle((bx, by), half, height, facecolor="black", zorder=8))
    ax.add_patch(
        Rectangle((bx + half, by), half, height, facecolor="white", edgecolor="black", zorder=8)
    )
    text = f"{length / 1000:g} km" if length >= 1000 else f"{length} m"
    ax.text(bx, by + 2.2 * height, "0", fontsize=8, ha="center", zorder=8)
    ax.text(bx + length, by + 2.2 * height, text, fontsize=8, ha="center", zorder=8)
    ax.annotate(
        t("figure.north", lang),
        xy=(0.95, 0.95),
        xytext=(0.95, 0.86),
        xycoords="axes fraction",
        ha="center",
        va="center",
        fontsize=12,
        fontproperties=font,
        arrowprops={"facecolor": "black", "width": 4, "headwidth": 12, "headlength": 12},
        zorder=9,
    )


def _frame_extent(fig: Figure, ax: Axes, net: WalkNetwork) -> None:
    """Fit the network's extent into the axes with equal scale in x and y."""
    xmin, xmax = float(np.min(net.node_x)), float(np.max(net.node_x))
    ymin, ymax = float(np.min(net.node_y)), float(np.max(net.node_y))
    pad = 0.03 * max(xmax - xmin, ymax - ymin, 1.0)
    xmin, xmax, ymin, ymax = xmin - pad, xmax + pad, ymin - pad, ymax + pad
    bbox = ax.get_position()
    w_in, h_in = fig.get_size_inches()
    box_aspect = (bbox.height * h_in) / (bbox.width * w_in)
    cx, cy = (xmin + xmax) / 2, (ymin + ymax) / 2
    w, h = xmax - xmin, ymax - ymin
    if h / w > box_aspect:
        w = h / box_aspect
    else:
        h = w * box_aspect
    ax.set_xlim(cx - w / 2, cx + w / 2)
    ax.set_ylim(cy - h / 2, cy + h / 2)
    ax.set_aspect("equal", adjustable="box")


def _thresholds_text(thresholds: Sequence[float]) -> str:
    return " / ".join(f"{m:g}" for m in thresholds)


def map_figure(
    layers: FigureLayers,
    *,
    title: str,
    lang: str = "zh",
    spec: FigureSpec | None = None,
    date: dt.date | None = None,
) -> Figure:
    """Return the map figure: streets, service areas, uncovered housing, stations, map furniture.

    Parameters
    ----------
    layers
        What to draw (:func:`figure_layers`).
    title
        Figure title.
    lang
        ``"zh"`` or ``"en"`` for every label.
    spec
        Size and drawing budget; :class:`FigureSpec` defaults.
    date
        Date printed on the map; today (UTC) by default.

    Returns
    -------
    matplotlib.figure.Figure
        One axes; its legend lists the streets, the service area per threshold,
        the uncovered housing and each station state present, with counts.
    """
    from matplotlib.figure import Figure  # lazy: see the module notes
    from matplotlib.lines import Line2D
    from matplotlib.patches import PathPatch

    spec = spec or FigureSpec()
    t("report.title", lang)  # validates `lang`
    font = cjk_font()
    fig = Figure(figsize=(spec.width_px / spec.dpi, spec.height_px / spec.dpi), dpi=spec.dpi)
    ax = fig.add_axes((0.02, 0.1, 0.96, 0.8))
    ax.set_axis_off()
    _frame_extent(fig, ax, layers.net)
    streets, n_segments = _street_path(layers.net, spec.max_street_segments)
    ax.add_artist(
        PathPatch(
            streets,
            fill=False,
            edgecolor=STREET_COLOR,
            linewidth=0.35,
            zorder=1,
            transform=ax.transData,
        )
    )
    handles: list[Patch | Line2D] = [
        Line2D([], [], color=STREET_COLOR, linewidth=1.5, label=t("figure.streets", lang))
    ]
    handles += _draw_areas(ax, layers, spec, lang)
    handles += _draw_stations(ax, layers, lang)
    _frame_extent(fig, ax, layers.net)  # the layers' plot calls may have moved the limits
    _draw_scale_and_north(ax, lang, font)
    ax.legend(
        handles=handles,
        loc="lower right",
        prop=font,
        fontsize=9,
        framealpha=0.9,
    )
    legend = ax.get_legend()
    if font is not None and legend is not None:
        for text in legend.get_texts():
            text.set_fontproperties(font)
            text.set_fontsize(9)
    date = date or dt.datetime.now(dt.UTC).date()
    params = t(
        "figure.params_m" if layers.thresholds_m else "figure.params",
        lang,
        speed=layers.speed_kmh,
        thresholds=_thresholds_text(layers.thresholds_min),
        meters=_thresholds_text(layers.thresholds_m),
        scenario=layers.scenario or "—",
    )
    fig.suptitle(title, y=0.965, fontproperties=font, fontsize=16)
    fig.text(0.5, 0.915, params, ha="center", fontproperties=font, fontsize=10)
    footer = f"{t('figure.date', lang, date=date.isoformat())}    {t('figure.attribution', lang, stations=source_label(layers.stations_source, lang) or '—')}"
    fig.text(0.02, 0.04, footer, ha="left", fontproperties=font, fontsize=8, color="#444444")
    logger.info(
        "returned map figure %d×%d px with %d street segments",
        spec.width_px,
        spec.height_px,
        n_segments,
    )
    return fig


def _save(fig: Figure, fmt: str) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # without a CJK font matplotlib warns once per missing glyph; cjk_font warned once already
        warnings.filterwarnings("ignore", "Glyph .* missing from font", UserWarning)
        fig.savefig(buf, format=fmt, dpi=fig.dpi, metadata={"Creator": "Coverage Planner"})
    return buf.getvalue()


def map_png_bytes(fig: Figure) -> bytes:
    """Return the figure as PNG bytes at its own size and dpi (``map.png``)."""
    return _save(fig, "png")


def map_pdf_bytes(fig: Figure) -> bytes:
    """Return the figure as a one-page vector PDF with the fonts embedded (``map.pdf``)."""
    return _save(fig, "pdf")


# --- the output cache's key -------------------------------------------------------------


def _drawing_setup() -> dict[str, str]:
    """Return what besides the layers and the code shapes the drawn bytes: matplotlib's settings, the CJK font."""
    rc = matplotlib.rcParams
    settings = repr([(k, repr(rc[k])) for k in sorted(rc.keys()) if k != "backend"])
    font = _cjk_font_file()
    font_digest = ""
    if font is not None:
        with contextlib.suppress(OSError):
            font_digest = hashlib.sha256(Path(font).read_bytes()).hexdigest()
    return {
        "rc": hashlib.sha256(settings.encode()).hexdigest(),
        "font": f"{font}:{font_digest}",
    }


def _network_digest(net: WalkNetwork) -> str:
    """SHA-256 of what the figure takes from the network: node positions, edges and their lengths."""
    digest = hashlib.sha256()
    for arr in (net.node_x, net.node_y, net.edge_u, net.edge_v, net.edge_length_m):
        a = np.ascontiguousarray(arr)
        digest.update(f"{a.dtype.str}:{a.size};".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def _frames_digest(
    layers: FigureLayers, digests: FrameDigests
) -> dict[str, str | dict[str, str | None] | None] | None:
    """Digests of the layers' frames (every column and the geometry); ``None`` when one cannot be keyed."""
    frames = {
        "service_areas": layers.service_areas,
        "uncovered": layers.uncovered,
        "distance_areas": layers.distance_areas,
        "distance_uncovered": layers.distance_uncovered,
    }
    out: dict[str, str | dict[str, str | None] | None] = {}
    for name, gdf in frames.items():
        if gdf is None:
            out[name] = None
            continue
        columns = [c for c in gdf.columns if c != gdf.geometry.name]
        out[name] = digests.frame(gdf, columns)
        if out[name] is None:
            return None
    stations = {state: digests.frame(gdf, []) for state, gdf in layers.stations.items()}
    out["stations"] = dict(stations)
    return out


def figure_key(
    layers: FigureLayers,
    *,
    title: str,
    lang: str,
    spec: FigureSpec,
    date: dt.date,
    digests: FrameDigests,
) -> str | None:
    """Key of the figure :func:`map_figure` draws from these arguments, for the output cache.

    It holds everything drawn: the network's nodes and edges, every column and
    geometry of the area layers, the stations, the texts (title, language, date,
    parameters, attribution), the size, and what draws them (matplotlib's settings and
    the CJK font file; the package's code and the libraries' versions are in every key).

    Returns
    -------
    str or None
        :func:`coverage.outcache.piece_key` of it; ``None`` when a layer cannot be
        keyed exactly (the figure is then drawn, not cached).
    """
    frames = _frames_digest(layers, digests)
    if frames is None:
        return None
    parts = {
        "setup": _drawing_setup(),
        "spec": asdict(spec),
        "title": title,
        "lang": lang,
        "date": date.isoformat(),
        "net": _network_digest(layers.net),
        "frames": frames,
        "thresholds_min": list(layers.thresholds_min),
        "thresholds_m": list(layers.thresholds_m),
        "speed_kmh": layers.speed_kmh,
        "scenario": layers.scenario,
        "stations_source": layers.stations_source,
    }
    return piece_key("figure", parts)


#: How matplotlib's PDF writer starts the creation date in the document's info dictionary.
_PDF_CREATION_DATE = b"/CreationDate ("


def _pdf_date_now() -> bytes:
    """Return the ``CreationDate`` matplotlib's PDF writer puts into a PDF made now.

    ``SOURCE_DATE_EPOCH`` when set (reproducible builds), else the local time with the
    zone offset written as matplotlib writes it.
    """
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        when = dt.datetime.fromtimestamp(int(epoch), dt.UTC)
        return when.strftime("D:%Y%m%d%H%M%SZ").encode()
    text = dt.datetime.today().strftime("D:%Y%m%d%H%M%S")
    offset_s = time.altzone if time.daylight else time.timezone
    if offset_s == 0:
        return f"{text}Z".encode()
    sign, offset_s = ("+", -offset_s) if offset_s < 0 else ("-", offset_s)
    return f"{text}{sign}{offset_s // 3600:02d}'{offset_s % 3600:02d}'".encode()


def pdf_with_creation_date(pdf: bytes) -> bytes | None:
    """Return a cached ``map.pdf`` with the creation date a fresh drawing would get now.

    The date is the only part of the PDF that changes between two drawings of the
    same figure. It is replaced in place, so every byte offset stays valid.

    Returns
    -------
    bytes or None
        The PDF; ``None`` when it has no single creation date of the new date's length
        (draw it again instead).
    """
    at = pdf.rfind(_PDF_CREATION_DATE)
    if at < 0 or pdf.find(_PDF_CREATION_DATE) != at:
        return None
    start = at + len(_PDF_CREATION_DATE)
    end = pdf.find(b")", start)
    new = _pdf_date_now()
    if end - start != len(new) or not pdf.startswith(b"D:", start):
        return None
    return pdf[:start] + new + pdf[end:]
