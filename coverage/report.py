"""The standalone ``report.html``: headline numbers, the map, the tables and a coverage curve.

It prints on A4 (``@media print``): the static map image (``map.png``, from
:mod:`coverage.figure`) replaces the interactive map, which has no zoom buttons in print,
so the map fits on page 1; tables wrap in a smaller font and never run past the page. The
report states the walking speed, thresholds, scenario, date, what "covered" means and the
population source, with one number format (shares with one decimal, whole residents).
:func:`report_pdf_bytes` prints it to ``report.pdf`` through headless Chromium when present.

One HTML file that opens from ``file://`` with no network: the map from
:func:`coverage.maps.coverage_map` is inlined by :func:`coverage.assets.offline_map_html` and
embedded as an ``<iframe srcdoc>``, the curve is inline SVG, and a Content-Security-Policy
forbids any request but tile images (when the map has tiles). Every cell, header and title is
HTML-escaped.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import logging
import math
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import folium
import geopandas as gpd
import numpy as np
import pandas as pd

from coverage.assets import has_tile_layer, offline_map_html
from coverage.errors import InputError
from coverage.i18n import t
from coverage.inputs import centers_source_label
from coverage.maps import AREA_COLORS, escape_html, format_number, is_missing

logger = logging.getLogger(__name__)

__all__ = ["chromium_path", "report_html", "report_pdf_bytes"]


def _curve_svg(curve: pd.DataFrame, lang: str, *, width: int = 560, height: int = 300) -> str:
    """Inline SVG line chart of ``share`` (0–1) against ``k``."""
    data = curve[["k", "share"]].dropna().sort_values("k")
    if data.empty:
        return f"<p>{escape_html(t('report.empty', lang))}</p>"
    left, right, top, bottom = 56, 16, 12, 40
    pw, ph = width - left - right, height - top - bottom
    k = data["k"].to_numpy(dtype=float)
    share = np.clip(data["share"].to_numpy(dtype=float), 0.0, 1.0)
    k_max = max(float(k.max()), 1.0)
    k_min = min(float(k.min()), 0.0)
    span = (k_max - k_min) or 1.0

    def x(v: float) -> float:
        return left + (v - k_min) / span * pw

    def y(v: float) -> float:
        return top + (1.0 - v) * ph

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="cp-curve" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape_html(t("report.section.curve", lang))}">'
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#ddd"/>'
            f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" font-size="11">{tick:.0%}</text>'
        )
    step = max(1, math.ceil(span / 10))
    for tick_k in range(math.ceil(k_min), math.floor(k_max) + 1, step):
        parts.append(
            f'<text x="{x(tick_k):.1f}" y="{top + ph + 16}" text-anchor="middle" font-size="11">{tick_k}</text>'
        )
    points = " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in zip(k, share, strict=True))
    parts.append(
        f'<polyline points="{points}" fill="none" stroke="{AREA_COLORS[1]}" stroke-width="2"/>'
    )
    parts.extend(
        f'<circle cx="{x(a):.1f}" cy="{y(b):.1f}" r="3" fill="{AREA_COLORS[0]}"/>'
        for a, b in zip(k, share, strict=True)
    )
    parts.append(
        f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + ph}" stroke="#333"/>'
        f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" stroke="#333"/>'
        f'<text x="{left + pw / 2:.1f}" y="{height - 6}" text-anchor="middle" font-size="12">{escape_html(t("report.curve.x", lang))}</text>'
        f'<text transform="translate(14 {top + ph / 2:.1f}) rotate(-90)" text-anchor="middle" font-size="12">{escape_html(t("report.curve.y", lang))}</text>'
        "</svg>"
    )
    return "".join(parts)


#: Table columns shown as percentages with one decimal (shares, 0–1).
_SHARE_COLUMN = re.compile(r"(^|_)share(_|$)")
#: Table columns shown as whole residents.
_RESIDENTS_COLUMN = re.compile(r"^(population|marginal_population|cumulative_population)")


def _cell(value: object, column: str = "") -> str:
    if is_missing(value):
        return "—"
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    ):
        if _SHARE_COLUMN.search(column):
            return f"{float(value):.1%}"
        if _RESIDENTS_COLUMN.match(column):
            return f"{float(value):,.0f}"
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if v.is_integer() and abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:,.3f}".rstrip("0").rstrip(".") if abs(v) < 1000 else f"{v:,.1f}"
    if isinstance(value, (bool, np.bool_)):
        return "✓" if value else "✗"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    return html.escape(str(value))


def _table_html(df: pd.DataFrame, lang: str, max_rows: int) -> str:
    frame = (
        pd.DataFrame(df.drop(columns=df.geometry.name)) if isinstance(df, gpd.GeoDataFrame) else df
    )
    if frame.empty:
        return f"<p>{escape_html(t('report.empty', lang))}</p>"
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    names = [str(c) for c in frame.columns]
    body = "".join(
        "<tr>"
        + "".join(f"<td>{_cell(v, c)}</td>" for v, c in zip(row, names, strict=True))
        + "</tr>"
        for row in frame.head(max_rows).itertuples(index=False, name=None)
    )
    note = ""
    if len(frame) > max_rows:
        note = f"<p class='cp-note'>{escape_html(t('report.rows_truncated', lang, shown=max_rows, total=len(frame)))}</p>"
    return f"<div class='cp-table'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>{note}"


def _headlines(summary: Mapping[str, Any], lang: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    coverage = summary.get("coverage") or {}
    population = (summary.get("demand") or {}).get("population")
    # distance keys ("300m", issue 15) get their own headlines after the minutes
    keys = sorted((k for k in coverage if not str(k).endswith("m")), key=lambda s: float(s))
    for key in keys:
        share = coverage[key].get("share")
        if not is_missing(share):
            out.append((t("report.headline.share", lang, minutes=key), f"{float(share):.1%}"))
    for key in sorted((k for k in coverage if str(k).endswith("m")), key=lambda s: float(s[:-1])):
        share = coverage[key].get("share")
        if not is_missing(share):
            out.append((t("report.headline.share_m", lang, meters=key[:-1]), f"{float(share):.1%}"))
    if keys and population is not None:
        last = keys[-1]
        covered = coverage[last].get("population_covered")
        if covered is not None:
            out.append(
                (
                    t("report.headline.uncovered", lang, minutes=last),
                    format_number(max(float(population) - float(covered), 0.0)),
                )
            )
    if population is not None:
        out.append((t("report.headline.population", lang), format_number(float(population))))
    centers = summary.get("centers")
    count = centers.get("count") if isinstance(centers, Mapping) else centers
    if count is not None:
        out.append((t("report.headline.centers", lang), format_number(int(count))))
    siting = summary.get("siting")
    if isinstance(siting, Mapping) and siting.get("share_after") is not None:
        out.append((t("report.headline.share_after", lang), f"{float(siting['share_after']):.1%}"))
    return out


_REPORT_CSS: Final = """
body { margin: 0; padding: 24px; font: 14px/1.5 system-ui, -apple-system, "PingFang SC",
  "Microsoft YaHei", "Noto Sans CJK SC", "Segoe UI", sans-serif; color: #222; background: #fafafa; }
main { max-width: 1200px; margin: 0 auto; }
h1 { font-size: 22px; margin: 0 0 16px; }
h2 { font-size: 17px; margin: 28px 0 10px; }
.cp-cards { display: flex; flex-wrap: wrap; gap: 12px; }
.cp-card { background: #fff; border: 1px solid #e3e3e3; border-radius: 6px; padding: 10px 14px;
  min-width: 150px; }
.cp-card .v { font-size: 22px; font-weight: 600; }
.cp-card .k { color: #666; font-size: 12px; }
iframe.cp-map { width: 100%; height: 620px; border: 1px solid #ccc; border-radius: 4px;
  background: #fff; }
.cp-table { overflow-x: auto; background: #fff; border: 1px solid #e3e3e3; }
table { border-collapse: collapse; font-size: 13px; width: 100%; }
th, td { padding: 4px 8px; border-bottom: 1px solid #eee; text-align: left; white-space: nowrap; }
thead th { background: #f1f1f1; position: sticky; top: 0; }
.cp-note, footer { color: #666; font-size: 12px; }
footer { margin-top: 32px; }
.cp-params { background: #fff; border: 1px solid #e3e3e3; width: 100%; }
.cp-params th { width: 22%; background: #f7f7f7; white-space: normal; }
.cp-params td { white-space: normal; }
img.cp-print-map { display: none; }
@page { size: A4 portrait; margin: 12mm; }
@media print {
  body { padding: 0; background: #fff; font-size: 11px; }
  main { max-width: none; }
  h1 { font-size: 18px; margin-bottom: 8px; }
  h2 { font-size: 13px; margin: 14px 0 6px; break-after: avoid; }
  .cp-cards { gap: 6px; }
  .cp-card { min-width: 0; padding: 4px 8px; }
  .cp-card .v { font-size: 15px; }
  iframe.cp-map.cp-has-image { display: none; }
  iframe.cp-map { width: 100%; height: 120mm; }
  img.cp-print-map { display: block; width: 100%; height: auto; max-height: 150mm;
    object-fit: contain; break-inside: avoid; }
  .cp-table { overflow: visible; border: none; }
  table { table-layout: fixed; width: 100%; font-size: 8px; }
  th, td { white-space: normal; overflow-wrap: anywhere; word-break: break-word;
    padding: 2px 3px; }
  thead { display: table-header-group; }
  thead th { position: static; }
  tr { break-inside: avoid; }
  svg.cp-curve { max-width: 100%; height: auto; }
  .leaflet-control-zoom, .leaflet-control-layers { display: none !important; }
}
"""
#: Added to the interactive map's own page: no zoom buttons or layer switcher in print.
_MAP_PRINT_CSS: Final = (
    "<style>@media print { .leaflet-control-zoom, .leaflet-control-layers "
    "{ display: none !important; } }</style>"
)


def _population_text(model: Mapping[str, Any], lang: str) -> str:
    source = str(model.get("source") or "")
    if source == "osm":
        return t("report.population.osm", lang)
    if model.get("file"):
        return t("report.population.file", lang, name=str(model["file"]))
    return source or "—"


def _params_rows(summary: Mapping[str, Any], lang: str) -> list[tuple[str, str]]:
    """Return (label, value) rows: speed, thresholds, scenario, date, definition, sources."""
    params = summary.get("params") or {}
    speed = params.get("walk_speed_kmh")
    thresholds = " / ".join(f"{float(m):g}" for m in params.get("thresholds_min") or [])
    scenario = summary.get("scenario")
    name = scenario.get("name") if isinstance(scenario, Mapping) else scenario
    date = summary.get("date") or dt.datetime.now(dt.UTC).date().isoformat()
    rows: list[tuple[str, str]] = []
    if speed is not None:
        rows.append(
            (t("report.param.speed", lang), t("report.param.speed_value", lang, speed=float(speed)))
        )
    if thresholds:
        rows.append(
            (
                t("report.param.thresholds", lang),
                t("report.param.thresholds_value", lang, thresholds=thresholds),
            )
        )
    rows.append((t("report.param.scenario", lang), str(name or "—")))
    rows.append((t("report.param.date", lang), str(date)))
    if speed is not None and thresholds:
        rows.append(
            (
                t("report.param.definition", lang),
                t("report.definition", lang, minutes=thresholds, speed=float(speed)),
            )
        )
    model = params.get("population_model")
    if isinstance(model, Mapping):
        rows.append((t("report.param.population", lang), _population_text(model, lang)))
    if summary.get("stations_source"):
        rows.append((t("report.param.stations", lang), str(summary["stations_source"])))
    return rows


def _params_html(summary: Mapping[str, Any], lang: str) -> str:
    body = "".join(
        f"<tr><th>{escape_html(k)}</th><td>{escape_html(v)}</td></tr>"
        for k, v in _params_rows(summary, lang)
    )
    return f"<table class='cp-params'><tbody>{body}</tbody></table>"


def _map_html(map_page: str, lang: str, map_image: bytes | None) -> str:
    label = escape_html(t("report.section.map", lang))
    page = map_page.replace("</head>", _MAP_PRINT_CSS + "</head>", 1)
    has_image = " cp-has-image" if map_image else ""
    out = (
        f"<iframe class='cp-map{has_image}' title='{label}' "
        f'srcdoc="{html.escape(page, quote=True)}"></iframe>'
    )
    if map_image:
        data = base64.b64encode(map_image).decode("ascii")
        alt = escape_html(t("report.map_image", lang))
        out += f"<img class='cp-print-map' alt='{alt}' src='data:image/png;base64,{data}'>"
    return out


def report_html(
    *,
    title: str,
    summary: Mapping[str, Any],
    map: folium.Map,
    tables: Mapping[str, pd.DataFrame],
    lang: str = "zh",
    curve: pd.DataFrame | None = None,
    max_rows: int = 1000,
    map_image: bytes | None = None,
) -> str:
    """Return the standalone ``report.html``: headline numbers, the map, tables, a curve.

    Every script and stylesheet is inlined and a Content-Security-Policy forbids any other
    request, so the page opens from ``file://`` with no network. If the map has a tile layer,
    tile images are the only requests allowed.

    Parameters
    ----------
    title
        Page title (escaped).
    summary
        The ``summary.json`` dict: ``coverage`` (threshold string → ``share``,
        ``population_covered``), ``demand.population``, ``centers`` (count, or a dict with
        ``count``), ``params`` (``walk_speed_kmh``, ``thresholds_min``,
        ``population_model``) and optionally ``siting.share_after``, ``scenario.name``,
        ``date`` (ISO; today by default) and ``stations_source`` (text).
    map
        The map, usually from :func:`coverage.maps.coverage_map`; embedded as an ``<iframe srcdoc>`` so its
        full-page styles do not leak into the report.
    tables
        Section title (or an i18n key such as ``"report.table.centers"``) → table. Every
        cell and header is HTML-escaped; GeoDataFrames lose their geometry column.
    lang
        ``"zh"`` or ``"en"``.
    curve
        Optional coverage curve, columns ``k`` and ``share`` (0–1), drawn as inline SVG.
    max_rows
        Rows shown per table; a note says when a table was cut.
    map_image
        PNG of the map (``map.png``): printed instead of the interactive map, which
        cannot be printed reliably. Without it the interactive map is printed, without
        its zoom buttons.

    Returns
    -------
    str
        A complete HTML document (UTF-8).
    """
    t("report.title", lang)  # validates `lang`
    map_page = offline_map_html(map)
    img_src = "data: https:" if has_tile_layer(map) else "data:"
    csp = (
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        f"img-src {img_src}; font-src data:; frame-src 'self' about:"
    )
    cards = "".join(
        f"<div class='cp-card'><div class='v'>{escape_html(v)}</div><div class='k'>{escape_html(k)}</div></div>"
        for k, v in _headlines(summary, lang)
    )
    sections = [
        f"<h2>{escape_html(t('report.section.map', lang))}</h2>",
        _map_html(map_page, lang, map_image),
        f"<h2>{escape_html(t('report.section.params', lang))}</h2>",
        _params_html(summary, lang),
    ]
    if curve is not None:
        missing = {"k", "share"} - set(curve.columns)
        if missing:
            msg = f"`curve` needs columns 'k' and 'share', missing {sorted(missing)}; pass SitingResult.curve."
            raise InputError(msg)
        sections.append(f"<h2>{escape_html(t('report.section.curve', lang))}</h2>")
        sections.append(_curve_svg(curve, lang))
    for name, table in tables.items():
        heading = t(name, lang) if name.startswith("report.table.") else name
        sections.append(f"<h2>{escape_html(heading)}</h2>")
        sections.append(_table_html(table, lang, max_rows))
    page = f"""<!DOCTYPE html>
<html lang="{"zh-CN" if lang == "zh" else "en"}">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape_html(title)}</title>
<style>{_REPORT_CSS}</style>
</head>
<body>
<main>
<h1>{escape_html(title)}</h1>
<div class="cp-cards">{cards}</div>
<p class="cp-note">{escape_html(centers_source_label(summary.get("centers_source"), lang))}</p>
{"".join(sections)}
<footer>{escape_html(t("report.footer", lang))}</footer>
</main>
</body>
</html>
"""
    logger.info("returned report of %.1f kB", len(page.encode("utf-8")) / 1e3)
    return page


# --- report.pdf -------------------------------------------------------------------------

#: Longest time, in seconds, Chromium may take to print the report.
PDF_TIMEOUT_S = 180
_CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium_path() -> str | None:
    """Return the headless Chromium (Debian's ``chromium``) on this machine, or ``None``."""
    for name in _CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def report_pdf_bytes(page: str, *, timeout_s: float = PDF_TIMEOUT_S) -> bytes | None:
    """Print ``report.html`` to an A4 PDF with headless Chromium; ``None`` when there is none.

    Chromium runs offline (every host name fails to resolve) with a throw-away profile,
    ``--print-to-pdf`` and no header or footer; the report's ``@media print`` rules
    decide the layout.

    Parameters
    ----------
    page
        The report (:func:`report_html`).
    timeout_s
        Longest wait for Chromium.

    Returns
    -------
    bytes or None
        The PDF, or ``None`` when no Chromium is installed or it failed (logged).
    """
    exe = chromium_path()
    if exe is None:
        return None
    with tempfile.TemporaryDirectory(prefix="coverage-planner-pdf-") as tmp:
        folder = Path(tmp)
        src = folder / "report.html"
        out = folder / "report.pdf"
        src.write_text(page, encoding="utf-8")
        cmd = [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--virtual-time-budget=5000",
            "--no-pdf-header-footer",
            f"--user-data-dir={folder / 'profile'}",
            f"--print-to-pdf={out}",
            src.as_uri(),
        ]
        try:
            done = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            logger.warning("Chromium could not print report.pdf: %s", exc)
            return None
        if not out.is_file() or out.stat().st_size == 0:
            logger.warning(
                "Chromium did not print report.pdf (exit %s): %s",
                done.returncode,
                done.stderr.strip()[-300:],
            )
            return None
        data = out.read_bytes()
    logger.info("printed report.pdf, %.1f kB", len(data) / 1e3)
    return data
