"""Bilingual (Chinese / English) labels for maps, the report and the app.

One flat dict, :data:`MESSAGES`, maps a message id to its text in each language. Add a key by
adding one entry with both ``"zh"`` and ``"en"``; :func:`t` looks it up and fills ``{named}``
placeholders with :meth:`str.format`. Group keys by prefix (``map.``, ``report.``, ``app.``)
so that several modules can share the file without collisions.
"""

from __future__ import annotations

from typing import Final

from coverage.errors import InputError

#: Supported languages; the first is the default.
LANGS: Final = ("zh", "en")

#: Message id → {language → text}. Every entry has every language in :data:`LANGS`.
MESSAGES: Final[dict[str, dict[str, str]]] = {
    # --- maps -----------------------------------------------------------------------------
    "map.attribution": {
        "zh": "© OpenStreetMap contributors",
        "en": "© OpenStreetMap contributors",
    },
    "map.tiles.osm": {"zh": "OpenStreetMap 底图", "en": "OpenStreetMap"},
    "map.tiles.light": {"zh": "浅色底图", "en": "Light basemap"},
    "map.layer.centers": {"zh": "现有党群服务中心", "en": "Existing service centers"},
    "map.layer.service_area": {
        "zh": "{minutes}分钟步行服务范围",
        "en": "{minutes}-minute walking service area",
    },
    "map.layer.service_area_per_center": {
        "zh": "{minutes}分钟服务范围（按中心）",
        "en": "{minutes}-minute service area (per center)",
    },
    "map.layer.demand": {
        "zh": "居民步行时间（分钟）",
        "en": "Residents' walking time (minutes)",
    },
    "map.layer.demand_grid": {
        "zh": "居民步行时间（{cell_m}米网格）",
        "en": "Residents' walking time ({cell_m} m grid)",
    },
    "map.layer.uncovered": {
        "zh": "{minutes}分钟未覆盖居住区",
        "en": "Residential areas beyond {minutes} minutes",
    },
    "map.layer.sites": {"zh": "建议新增站点", "en": "Proposed sites"},
    "map.layer.districts": {"zh": "行政区划", "en": "Districts"},
    "map.legend.title": {"zh": "图例", "en": "Legend"},
    "map.legend.minutes_bin": {"zh": "{lo}–{hi} 分钟", "en": "{lo}–{hi} min"},
    "map.legend.minutes_le": {"zh": "≤ {hi} 分钟", "en": "≤ {hi} min"},
    "map.legend.minutes_gt": {"zh": "> {lo} 分钟", "en": "> {lo} min"},
    "map.legend.unreachable": {"zh": "无法步行到达", "en": "Unreachable"},
    "map.field.name": {"zh": "名称", "en": "Name"},
    "map.field.center_id": {"zh": "编号", "en": "ID"},
    "map.field.level": {"zh": "级别", "en": "Level"},
    "map.field.source": {"zh": "来源", "en": "Source"},
    "map.field.population": {"zh": "人口", "en": "Population"},
    "map.field.minutes": {"zh": "步行时间（分钟）", "en": "Walking time (min)"},
    "map.field.unreachable_population": {
        "zh": "无法到达人口",
        "en": "Population unreachable",
    },
    "map.field.area_m2": {"zh": "面积（平方米）", "en": "Area (m²)"},
    "map.field.rank": {"zh": "排序", "en": "Rank"},
    "map.field.marginal_population": {"zh": "新增覆盖人口", "en": "Added population covered"},
    "map.field.cumulative_population": {"zh": "累计覆盖人口", "en": "Cumulative population"},
    "map.field.cumulative_share": {"zh": "累计覆盖率", "en": "Cumulative share"},
    "map.field.demand_id": {"zh": "单元编号", "en": "Unit ID"},
    "map.field.district": {"zh": "区划", "en": "District"},
    # --- report ---------------------------------------------------------------------------
    "report.title": {
        "zh": "党群服务中心步行覆盖评估报告",
        "en": "Walking coverage of community service centers",
    },
    "report.headline.share": {
        "zh": "{minutes}分钟步行覆盖率",
        "en": "Share within {minutes} minutes",
    },
    "report.headline.uncovered": {
        "zh": "{minutes}分钟未覆盖人口",
        "en": "Population beyond {minutes} minutes",
    },
    "report.headline.population": {"zh": "总人口", "en": "Population"},
    "report.headline.centers": {"zh": "服务中心数量", "en": "Service centers"},
    "report.headline.share_after": {
        "zh": "新增站点后覆盖率",
        "en": "Share after proposed sites",
    },
    "report.section.map": {"zh": "地图", "en": "Map"},
    "report.section.curve": {"zh": "覆盖率曲线", "en": "Coverage curve"},
    "report.curve.x": {"zh": "新增站点数", "en": "Sites added"},
    "report.curve.y": {"zh": "覆盖率", "en": "Share covered"},
    "report.table.centers": {"zh": "各服务中心统计", "en": "Per-center statistics"},
    "report.table.sites": {"zh": "建议新增站点", "en": "Proposed sites"},
    "report.table.districts": {"zh": "各区划覆盖情况", "en": "Coverage by district"},
    "report.empty": {"zh": "（无数据）", "en": "(no rows)"},
    "report.rows_truncated": {
        "zh": "仅显示前 {shown} 行，共 {total} 行。",
        "en": "Showing the first {shown} of {total} rows.",
    },
    "report.footer": {
        "zh": "由 Coverage Planner 生成；地图数据 © OpenStreetMap contributors（ODbL）。",
        "en": "Made with Coverage Planner; map data © OpenStreetMap contributors (ODbL).",
    },
}


def t(key: str, lang: str = "zh", /, **values: object) -> str:
    """Return the label `key` in language `lang`, with ``{placeholders}`` filled in.

    Parameters
    ----------
    key
        Message id, a key of :data:`MESSAGES` (for example ``"map.layer.centers"``).
    lang
        ``"zh"`` or ``"en"``.
    **values
        Values for the message's ``{named}`` placeholders.

    Returns
    -------
    str
        The text, not HTML-escaped: escape it where it goes into HTML.

    Raises
    ------
    InputError
        If `lang` is not supported.
    KeyError
        If `key` is not a message id.
    """
    if lang not in LANGS:
        msg = f"`lang` must be one of {LANGS}, got {lang!r}; pass lang='zh' or lang='en'."
        raise InputError(msg)
    try:
        entry = MESSAGES[key]
    except KeyError:
        msg = f"no message {key!r} in coverage.i18n.MESSAGES; add it with both 'zh' and 'en'."
        raise KeyError(msg) from None
    text = entry[lang]
    return text.format(**values) if values else text
