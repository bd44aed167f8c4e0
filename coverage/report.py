"""The standalone ``report.html``: headline numbers, the map, the tables and a coverage curve.

One HTML file that opens from ``file://`` with no network: the map from
:func:`coverage.maps.coverage_map` is inlined by :func:`coverage.assets.offline_map_html` and
embedded as an ``<iframe srcdoc>``, the curve is inline SVG, and a Content-Security-Policy
forbids any request but tile images (when the map has tiles). Every cell, header and title is
HTML-escaped.
"""

from __future__ import annotations

import html
import logging
import math
from collections.abc import Mapping
from typing import Any, Final

import folium
import geopandas as gpd
import numpy as np
import pandas as pd

from coverage.assets import has_tile_layer, offline_map_html
from coverage.errors import InputError
from coverage.i18n import t
from coverage.maps import AREA_COLORS, escape_html, format_number, is_missing

logger = logging.getLogger(__name__)

__all__ = ["report_html"]


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


def _cell(value: object) -> str:
    if is_missing(value):
        return "—"
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
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>"
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
"""


def report_html(
    *,
    title: str,
    summary: Mapping[str, Any],
    map: folium.Map,
    tables: Mapping[str, pd.DataFrame],
    lang: str = "zh",
    curve: pd.DataFrame | None = None,
    max_rows: int = 1000,
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
        ``count``) and optionally ``siting.share_after``.
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
        f"<iframe class='cp-map' title='{escape_html(t('report.section.map', lang))}' "
        f'srcdoc="{html.escape(map_page, quote=True)}"></iframe>',
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
{"".join(sections)}
<footer>{escape_html(t("report.footer", lang))}</footer>
</main>
</body>
</html>
"""
    logger.info("returned report of %.1f kB", len(page.encode("utf-8")) / 1e3)
    return page
