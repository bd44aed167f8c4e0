"""Bilingual (Chinese / English) labels: the one label table of maps, the report, tables and the app.

One flat dict, :data:`MESSAGES`, maps a message id to its text in each language. Add a key by
adding one entry with both ``"zh"`` and ``"en"``; :func:`t` looks it up and fills ``{named}``
placeholders with :meth:`str.format` (format specs such as ``{m:g}`` or ``{pop:,.0f}`` work).
Keys are grouped by prefix: ``map.`` (coverage.maps), ``report.`` (report.html), ``table.``
(coverage.tables) and ``app.`` (the Streamlit app, which looks its labels up as
``t("app." + key, lang)``). ``tests/test_i18n.py`` checks that every entry has both languages
with the same placeholders.
"""

from __future__ import annotations

from typing import Final

from coverage.errors import InputError

#: Supported languages; the first is the default.
LANGS: Final = ("zh", "en")
#: Each language's own name, for a language picker (shown the same in every language).
LANG_NAMES: Final[dict[str, str]] = {"zh": "中文", "en": "English"}

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
    "report.empty": {"zh": "（无数据）", "en": "(no rows)"},
    "report.rows_truncated": {
        "zh": "仅显示前 {shown} 行，共 {total} 行。",
        "en": "Showing the first {shown} of {total} rows.",
    },
    "report.footer": {
        "zh": "由 Coverage Planner 生成；地图数据 © OpenStreetMap contributors（ODbL）。",
        "en": "Made with Coverage Planner; map data © OpenStreetMap contributors (ODbL).",
    },
    # --- app (app.py) --------------------------------------------------------------------
    "app.title": {
        "zh": "党群服务中心步行覆盖规划",
        "en": "Walking coverage planner for community service centers",
    },
    "app.lang": {"zh": "语言 / Language", "en": "语言 / Language"},
    "app.data": {"zh": "数据", "en": "Data"},
    "app.data.source": {"zh": "路网数据", "en": "Street data"},
    "app.data.default": {"zh": "内置示例城市", "en": "Embedded example city"},
    "app.data.upload": {"zh": "上传 OSM 文件", "en": "Upload an OSM extract"},
    "app.data.osm_file": {
        "zh": "OSM 文件（.osm / .osm.bz2 / .osm.pbf）",
        "en": "OSM file (.osm / .osm.bz2 / .osm.pbf)",
    },
    "app.data.limit": {"zh": "文件大小上限：{mb} MB", "en": "Size limit: {mb} MB"},
    "app.upload.browse": {"zh": "选择文件", "en": "Choose a file"},
    "app.upload.drop": {
        "zh": "可拖放到此处，每个文件不超过 {mb} MB",
        "en": "Or drop it here; at most {mb} MB",
    },
    "app.data.centers": {"zh": "现有服务中心", "en": "Existing centers"},
    "app.data.centers.osm": {"zh": "按 OSM 标签识别", "en": "From OSM tags"},
    "app.data.centers.file": {
        "zh": "上传文件（GeoJSON / CSV）",
        "en": "Upload a file (GeoJSON / CSV)",
    },
    "app.data.tags": {"zh": "OSM 标签", "en": "OSM tags"},
    "app.data.centers_file": {"zh": "服务中心文件", "en": "Centers file"},
    "app.data.crs": {"zh": "坐标系", "en": "Coordinate system"},
    "app.data.population": {
        "zh": "人口文件（可选，面要素，含 population 字段）",
        "en": "Population file (optional, polygons with a population column)",
    },
    "app.data.population_column": {"zh": "人口字段名", "en": "Population column"},
    "app.data.districts": {"zh": "行政区划边界（可选）", "en": "District boundaries (optional)"},
    "app.data.district_column": {"zh": "区划名称字段", "en": "District name column"},
    "app.data.load": {"zh": "加载数据", "en": "Load data"},
    "app.data.loaded": {
        "zh": "{name}：路网 {nodes:,} 个节点，{centers} 个服务中心，{units:,} 个居住单元，约 {pop:,.0f} 人",
        "en": "{name}: {nodes:,} network nodes, {centers} centers, {units:,} residential units, about {pop:,.0f} residents",
    },
    "app.data.loading": {"zh": "正在加载城市数据…", "en": "Loading the city…"},
    "app.data.osm_hint": {
        "zh": "服务中心取自 OSM 标签：OSM 往往只标注了一部分站点（这里 {n} 个），覆盖率会偏低。上传本市的站点清单（CSV / GeoJSON，支持高德 GCJ-02、百度 BD-09 坐标）可得到真实结果。",
        "en": "Centers come from OSM tags: OSM usually maps only some of them ({n} here), so shares come out low. Upload the city's list of centers (CSV / GeoJSON; Amap GCJ-02 and Baidu BD-09 coordinates are accepted) for real figures.",
    },
    "app.data.kept": {
        "zh": "仍使用之前的数据：{name}",
        "en": "Still using the previous data: {name}",
    },
    "app.data.missing_osm": {
        "zh": "没有可用的 OSM 文件：请选择 .osm / .osm.bz2 / .osm.gz / .osm.pbf 文件后再加载。未加载任何数据。",
        "en": "No usable OSM file: choose an .osm / .osm.bz2 / .osm.gz / .osm.pbf file, then load again. Nothing was loaded.",
    },
    "app.data.missing_centers": {
        "zh": "没有可用的服务中心文件：请选择 .geojson / .gpkg / .csv 文件，或改选“按 OSM 标签识别”。未加载任何数据。",
        "en": "No usable centers file: choose a .geojson / .gpkg / .csv file, or pick “From OSM tags”. Nothing was loaded.",
    },
    "app.data.closures_dropped": {
        "zh": "新数据中没有 {n} 个已关闭的服务中心，已从所有方案中取消这些关闭：{ids}",
        "en": "The new data lacks {n} closed centers; their closures were dropped from every scenario: {ids}",
    },
    "app.upload.not_osm": {
        "zh": "“{name}”不是 OSM 文件，应为以下格式之一：{suffixes}。可从 openstreetmap.org、Geofabrik 或 BBBike 导出。",
        "en": "{name!r} is not an OSM extract; expected one of {suffixes}. Export it from openstreetmap.org, Geofabrik or BBBike.",
    },
    "app.upload.not_table": {
        "zh": "“{name}”不是 GeoJSON、GeoPackage、CSV 或 Excel 工作簿文件，请另存为 .geojson、.gpkg、.csv 或 Excel 工作簿。",
        "en": "{name!r} is not a GeoJSON, GeoPackage, CSV or Excel (.xlsx) file; save it as one of .geojson, .gpkg, .csv or .xlsx.",
    },
    "app.upload.empty": {
        "zh": "“{name}”是空文件，请重新上传。",
        "en": "{name!r} is empty; upload the file again.",
    },
    "app.upload.too_large": {
        "zh": "“{name}”有 {mb:.0f} MB，超过 {limit} MB 上限；请裁剪更小的范围（如用 osmium extract），或请管理员提高上限。",
        "en": "{name!r} is {mb:.0f} MB, more than the {limit} MB limit; cut a smaller area (e.g. with osmium extract) or ask the administrator to raise the limit.",
    },
    "app.params": {"zh": "参数", "en": "Parameters"},
    "app.speed": {"zh": "步行速度（公里/小时）", "en": "Walking speed (km/h)"},
    "app.thresholds": {"zh": "步行时间阈值（分钟）", "en": "Walking-time thresholds (minutes)"},
    "app.tiles": {"zh": "底图", "en": "Base map"},
    "app.tiles.osm": {"zh": "OpenStreetMap", "en": "OpenStreetMap"},
    "app.tiles.light": {"zh": "浅色", "en": "Light"},
    "app.scenario": {"zh": "方案", "en": "Scenario"},
    "app.scenario.active": {"zh": "当前方案", "en": "Active scenario"},
    "app.scenario.new_name": {"zh": "新方案名称", "en": "New scenario name"},
    "app.scenario.copy": {"zh": "复制为新方案", "en": "Copy as a new scenario"},
    "app.scenario.delete": {"zh": "删除当前方案", "en": "Delete this scenario"},
    "app.scenario.exists": {
        "zh": "方案“{name}”已存在，请换一个名称。",
        "en": "A scenario named “{name}” exists; choose another name.",
    },
    "app.scenario.load": {"zh": "载入方案 JSON", "en": "Load a scenario JSON"},
    "app.scenario.loaded": {"zh": "已载入方案“{name}”。", "en": "Loaded scenario “{name}”."},
    "app.edit": {"zh": "站点调整", "en": "Edit stations"},
    "app.edit.clicked": {
        "zh": "地图上选中的位置：{lat:.5f}, {lon:.5f}",
        "en": "Point picked on the map: {lat:.5f}, {lon:.5f}",
    },
    "app.edit.click_hint": {
        "zh": "在地图上单击选择新站点位置。",
        "en": "Click the map to pick a new station site.",
    },
    "app.edit.name": {"zh": "新站点名称", "en": "New station name"},
    "app.edit.add": {"zh": "在选中位置新增站点", "en": "Add a station at the picked point"},
    "app.edit.added": {"zh": "新增站点：{n} 个", "en": "Stations added: {n}"},
    "app.edit.undo": {"zh": "撤销最后一个新增站点", "en": "Remove the last added station"},
    "app.edit.close": {"zh": "关闭现有服务中心", "en": "Close existing centers"},
    "app.opt": {"zh": "选址优化", "en": "Site optimizer"},
    "app.opt.mode": {"zh": "目标", "en": "Goal"},
    "app.opt.mode.k": {"zh": "新增 k 个站点", "en": "Add k stations"},
    "app.opt.mode.share": {"zh": "达到目标覆盖率", "en": "Reach a target share"},
    "app.opt.k": {"zh": "新增站点数 k", "en": "Number of new stations k"},
    "app.opt.minutes": {"zh": "优化所用阈值（分钟）", "en": "Threshold to optimise (minutes)"},
    "app.opt.exact": {
        "zh": "精确求解（HiGHS 整数规划，最多 {s:g} 秒）",
        "en": "Exact (HiGHS integer program, up to {s:g} s)",
    },
    "app.opt.exact_help": {
        "zh": "默认的贪心 + 交换算法快且可解释；精确求解给出可证明的最优解。按目标覆盖率时，先求达到目标所需的最少站点数。",
        "en": "Greedy + swap (the default) is fast and explainable; the exact mode proves the optimum. With a target share it first finds the fewest stations that reach it.",
    },
    "app.opt.run": {"zh": "运行选址优化", "en": "Run the optimizer"},
    "app.opt.running": {"zh": "正在计算建议站点…", "en": "Proposing sites…"},
    "app.opt.none": {
        "zh": "运行选址优化后，这里会列出建议站点。",
        "en": "Run the optimizer to list proposed sites here.",
    },
    "app.opt.accept_pick": {"zh": "选择要采纳的站点（排序号）", "en": "Sites to accept (rank)"},
    "app.opt.accept": {"zh": "采纳所选站点", "en": "Accept selected sites"},
    "app.opt.reject": {"zh": "放弃建议", "en": "Reject the proposal"},
    "app.opt.accepted": {"zh": "已采纳站点：{n} 个", "en": "Accepted sites: {n}"},
    "app.metric.share": {"zh": "{m:g} 分钟步行覆盖率", "en": "Share within {m:g} min"},
    "app.metric.uncovered": {"zh": "{m:g} 分钟未覆盖人口", "en": "Residents beyond {m:g} min"},
    "app.metric.centers": {"zh": "服务中心", "en": "Service centers"},
    "app.running": {"zh": "正在计算覆盖…", "en": "Computing coverage…"},
    "app.running.areas": {"zh": "正在绘制服务范围…", "en": "Drawing service areas…"},
    "app.tab.sites": {"zh": "建议站点", "en": "Proposed sites"},
    "app.tab.curve": {"zh": "覆盖曲线", "en": "Coverage curve"},
    "app.tab.districts": {"zh": "分区统计", "en": "By district"},
    "app.tab.compare": {"zh": "方案对比", "en": "Compare scenarios"},
    "app.tab.export": {"zh": "导出", "en": "Downloads"},
    "app.curve.minutes": {
        "zh": "步行时间内可达人口比例",
        "en": "Share of residents within x minutes",
    },
    "app.curve.sites": {"zh": "新增站点数与覆盖率", "en": "Share covered by number of new sites"},
    "app.districts.none": {
        "zh": "上传行政区划边界后显示分区统计。",
        "en": "Upload district boundaries to see this table.",
    },
    "app.compare.pick": {"zh": "对比的方案", "en": "Scenarios to compare"},
    "app.compare.one": {
        "zh": "至少需要两个方案：先“复制为新方案”再修改。",
        "en": "Make at least two scenarios (Copy as a new scenario) to compare.",
    },
    "app.export.layer": {"zh": "{layer}（GeoJSON）", "en": "{layer} (GeoJSON)"},
    "app.export.summary_json": {"zh": "汇总 summary.json", "en": "Summary (summary.json)"},
    "app.export.summary_csv": {"zh": "汇总 summary.csv", "en": "Summary (summary.csv)"},
    "app.export.scenario": {"zh": "方案 scenario.json", "en": "Scenario (scenario.json)"},
    "app.export.report": {"zh": "报告 report.html", "en": "Report (report.html)"},
    "app.layer.centers": {"zh": "服务中心", "en": "Centers"},
    "app.layer.service_areas": {"zh": "服务范围", "en": "Service areas"},
    "app.layer.demand": {"zh": "居住单元与步行时间", "en": "Residential units with minutes"},
    "app.layer.uncovered": {"zh": "未覆盖区域", "en": "Uncovered areas"},
    "app.layer.sites": {"zh": "建议站点", "en": "Proposed sites"},
    "app.err.input": {"zh": "无法使用这个输入：{msg}", "en": "This input cannot be used: {msg}"},
    "app.err.hint": {
        "zh": "请检查文件格式和坐标系后重新上传；当前会话和其它方案不受影响。",
        "en": "Check the file format and coordinate system, then upload again; this session and your other scenarios are unaffected.",
    },
    "app.err.unexpected": {
        "zh": "出现意外错误（{kind}）。已保留当前会话；请重试，若仍失败请把所用文件发给维护人员。",
        "en": "Something unexpected went wrong ({kind}). The session is kept; try again, and if it fails again send the file you used to the maintainers.",
    },
    "app.warn": {"zh": "提示：{msg}", "en": "Note: {msg}"},
    "app.choose": {"zh": "请选择", "en": "Choose"},
    "app.crs.wgs84": {"zh": "WGS-84 (GPS/OSM)", "en": "WGS-84 (GPS/OSM)"},
    "app.crs.gcj02": {"zh": "GCJ-02 (高德/腾讯)", "en": "GCJ-02 (Amap/Tencent)"},
    "app.crs.bd09": {"zh": "BD-09 (百度)", "en": "BD-09 (Baidu)"},
    # --- issue 15: standards, distance thresholds, compliance (app.py) ---
    "app.std.distances": {"zh": "步行距离阈值（米）", "en": "Walking distance thresholds (m)"},
    "app.std.standard": {"zh": "规划标准（分级评估）", "en": "Planning standard (per level)"},
    "app.std.none": {"zh": "不按标准评估", "en": "No standard"},
    "app.std.levels": {"zh": "按标准分级覆盖", "en": "Coverage per level against the standard"},
    "app.std.compliance": {"zh": "各片区达标情况", "en": "Compliance per area"},
    "report.headline.share_m": {"zh": "{meters} 米步行覆盖率", "en": "Share within {meters} m"},
    # --- issue 13: planner-ready app (numbers, station states, scenarios, errors, base layer) ---
    "table.no_change": {"zh": "无变化", "en": "no change"},
    "table.points": {"zh": "{value} 个百分点", "en": "{value} points"},
    "table.method.greedy": {
        "zh": "快速算法（逐个选点，再交换改进）",
        "en": "fast heuristic (one site at a time, then swaps)",
    },
    "table.method.exact": {"zh": "精确整数规划（HiGHS）", "en": "exact integer program (HiGHS)"},
    "table.state": {"zh": "状态", "en": "State"},
    "table.state.existing": {"zh": "现有", "en": "Existing"},
    "table.state.added": {"zh": "新增", "en": "Added"},
    "table.state.accepted": {"zh": "采纳的建议站点", "en": "Accepted proposal"},
    "table.state.closed": {"zh": "已关闭（可恢复）", "en": "Closed (restorable)"},
    "table.level.district": {"zh": "区级", "en": "District"},
    "table.level.street": {"zh": "街道", "en": "Street"},
    "table.level.community": {"zh": "社区", "en": "Community"},
    "table.level.grid": {"zh": "网格", "en": "Grid"},
    "table.summary.scenario": {"zh": "方案", "en": "Scenario"},
    "table.summary.threshold_min": {
        "zh": "步行时间阈值（分钟）",
        "en": "Walking-time threshold (min)",
    },
    "table.summary.population_covered": {"zh": "覆盖人口", "en": "Residents covered"},
    "table.summary.population_total": {"zh": "总人口", "en": "Residents in all"},
    "table.summary.share": {"zh": "覆盖率（%）", "en": "Share covered (%)"},
    "table.summary.units_covered": {"zh": "覆盖居住单元数", "en": "Residential units covered"},
    "map.layer.added": {"zh": "新增站点", "en": "Added stations"},
    "map.layer.accepted": {"zh": "采纳的建议站点", "en": "Accepted sites"},
    "map.layer.closed": {"zh": "已关闭的服务中心（可恢复）", "en": "Closed centers (restorable)"},
    "map.layer.streets": {"zh": "街道（离线底图）", "en": "Streets (offline base map)"},
    "map.layer.places": {"zh": "地名", "en": "Place names"},
    "app.tiles.streets": {"zh": "离线街道", "en": "Offline streets"},
    "app.help.coverage": {
        "zh": "覆盖：沿街道步行到最近的服务中心不超过 {m:g} 分钟（步速 {v:g} 公里/小时，含从住处走到最近街道的一段）。人口来源：{source}。",
        "en": "Covered: the nearest service center is at most {m:g} minutes away walking along the streets at {v:g} km/h, including the walk from home to the nearest street. Residents: {source}.",
    },
    "app.help.uncovered": {
        "zh": "步行超过 {m:g} 分钟（或无法步行到达）才能到最近服务中心的居民人数。人口来源：{source}。",
        "en": "Residents more than {m:g} minutes' walk from the nearest center (or with no walking route). Residents: {source}.",
    },
    "app.help.centers": {
        "zh": "当前方案中正在使用的服务中心数（现有 − 关闭 + 新增 + 采纳）。",
        "en": "Centers in force in this scenario (existing − closed + added + accepted).",
    },
    "app.pop.osm": {
        "zh": "按 OSM 建筑和居住用地估算",
        "en": "estimated from OSM buildings and residential land use",
    },
    "app.pop.file": {
        "zh": "人口文件“{file}”（字段 {column}）",
        "en": "population file “{file}” (column {column})",
    },
    "app.pop.raster": {"zh": "人口栅格“{file}”", "en": "population raster “{file}”"},
    "app.curve.x_minutes": {"zh": "步行时间（分钟）", "en": "Walking time (min)"},
    "app.curve.y_share": {"zh": "可达居民比例（%）", "en": "Residents within reach (%)"},
    "app.curve.x_sites": {"zh": "新增站点数", "en": "New stations"},
    "app.curve.y_sites": {"zh": "{m:g} 分钟覆盖率（%）", "en": "Share within {m:g} min (%)"},
    "app.opt.share_pct": {"zh": "目标覆盖率（%）", "en": "Target share (%)"},
    "app.opt.answer_k": {
        "zh": "新增 {n} 个站点：{m:g} 分钟覆盖率 {before} → {after}（{n} 个站点可证明最多达到 {bound}）。方法：{method}。",
        "en": "{n} new stations: share within {m:g} min {before} → {after} ({n} stations can reach at most {bound}, proven). Method: {method}.",
    },
    "app.opt.answer_share": {
        "zh": "需新增 {n} 个站点：{m:g} 分钟覆盖率 {before} → {after}（目标 {target}）。方法：{method}。",
        "en": "{n} new stations needed: share within {m:g} min {before} → {after} (target {target}). Method: {method}.",
    },
    "app.opt.proven": {"zh": "已证明 {n} 是最少站点数。", "en": "{n} is proven to be the fewest."},
    "app.opt.not_proven": {
        "zh": "未证明 {n} 是最少站点数（勾选“精确求解”可证明）。",
        "en": "{n} is not proven to be the fewest (tick Exact to prove it).",
    },
    "app.opt.not_met": {
        "zh": "达不到目标 {target}：新增 {n} 个站点后最多 {after}。",
        "en": "The target {target} cannot be reached: {n} new stations give at most {after}.",
    },
    "app.opt.budget": {
        "zh": "精确求解用时上限 {s:g} 秒（含贪心初解）；到时给出当前最好的解，并说明是否已证明最优。",
        "en": "The exact solve stops after {s:g} s in all (greedy start included) and keeps its best solution so far, saying whether it is proven.",
    },
    "app.opt.stop": {"zh": "停止求解", "en": "Stop the solve"},
    "app.opt.elapsed": {
        "zh": "计算用时 {s:.1f} 秒（上限 {limit:g} 秒）。",
        "en": "Computed in {s:.1f} s (limit {limit:g} s).",
    },
    "app.opt.stopped": {
        "zh": "已停止选址优化；方案未改变。",
        "en": "The optimizer was stopped; the scenario is unchanged.",
    },
    "app.opt.stopped_kept": {
        "zh": "已停止求解：保留到停止时找到的最好方案（未证明最优）。",
        "en": "The solve was stopped: the best sites found until then are kept (not proven optimal).",
    },
    "app.opt.stopped_note": {
        "zh": "求解已被停止，此为停止时的最好方案，未证明最优。",
        "en": "The solve was stopped; these are the best sites found until then, not proven optimal.",
    },
    "app.opt.accepted_name": {"zh": "采纳站点 {rank}", "en": "Accepted site {rank}"},
    "app.edit.default_name": {"zh": "新增站点 {n}", "en": "New station {n}"},
    "app.edit.restore": {"zh": "恢复全部关闭的中心", "en": "Restore every closed center"},
    "app.scenario.baseline": {"zh": "基准方案", "en": "Baseline"},
    "app.scenario.working": {"zh": "工作方案", "en": "Working scenario"},
    "app.scenario.reset": {"zh": "重置为基准方案", "en": "Reset to the baseline"},
    "app.scenario.baseline_note": {
        "zh": "基准方案保持原样；修改会放入“工作方案”。",
        "en": "The baseline stays as loaded; edits go into the working scenario.",
    },
    "app.tab.stations": {"zh": "站点", "en": "Stations"},
    "app.stations.hint": {
        "zh": "新增和采纳站点的名称可以直接修改；已关闭的中心可在“关闭现有服务中心”中恢复。",
        "en": "Names of added and accepted stations can be edited here; closed centers are restored under Close existing centers.",
    },
    "app.stage.reading_OSM_file": {"zh": "读取 OSM 文件", "en": "reading the OSM file"},
    "app.stage.OSM_file_read": {"zh": "OSM 文件已读取", "en": "OSM file read"},
    "app.stage.building_raw_graph": {"zh": "构建路网", "en": "building the street graph"},
    "app.stage.building_the_network": {"zh": "构建步行网络", "en": "building the walking network"},
    "app.stage.projecting_to_UTM": {"zh": "投影到平面坐标", "en": "projecting to meters"},
    "app.stage.simplifying": {"zh": "简化路网", "en": "simplifying the network"},
    "app.stage.network_built": {"zh": "步行网络已建成", "en": "walking network built"},
    "app.stage.network_loaded_from_cache": {
        "zh": "已从缓存读取步行网络",
        "en": "walking network read from the cache",
    },
    "app.stage.estimating_residents": {"zh": "估算居民人数", "en": "estimating residents"},
    "app.stage.city_loaded": {"zh": "城市数据已加载", "en": "city loaded"},
    "app.stage.minutes_to_the_nearest_center": {
        "zh": "计算到最近服务中心的步行时间",
        "en": "walking minutes to the nearest center",
    },
    "app.stage.per_center_reach": {
        "zh": "计算各中心的步行范围",
        "en": "each center's walking reach",
    },
    "app.stage.coverage_by_level": {"zh": "按级别统计覆盖", "en": "coverage by level"},
    "app.stage.uncovered_areas": {"zh": "计算未覆盖区域", "en": "uncovered areas"},
    "app.stage.service_areas": {"zh": "绘制服务范围", "en": "service areas"},
    "app.stage.audit_done": {"zh": "覆盖评估完成", "en": "coverage computed"},
    "app.stage.existing_coverage": {"zh": "现有覆盖", "en": "existing coverage"},
    "app.stage.walking_reach": {"zh": "候选站点的步行范围", "en": "candidate sites' walking reach"},
    "app.stage.per_source_reach": {
        "zh": "候选站点的步行范围",
        "en": "candidate sites' walking reach",
    },
    "app.stage.bounds": {"zh": "求解并计算上界", "en": "solving and bounding"},
    "app.stage.minutes_after": {
        "zh": "新增站点后的步行时间",
        "en": "walking minutes with the new sites",
    },
    "app.stage.sites_proposed": {"zh": "建议站点已得出", "en": "sites proposed"},
    "app.stage.other": {"zh": "计算中", "en": "working"},
    "app.stage.counted": {"zh": "{what}（{i}/{n}）", "en": "{what} ({i}/{n})"},
    "app.warn.centers.far_from_street": {
        "zh": "{n} 个服务中心距最近的可步行街道超过 {m:.0f} 米：{listing}。它们的步行时间包含这段直线距离，请检查位置。",
        "en": "{n} centers are more than {m:.0f} m from the nearest walkable street: {listing}. Their walking times include that straight-line walk; check their positions.",
    },
    "app.warn.centers.outside": {
        "zh": "{total} 个服务中心中有 {n} 个在路网范围之外，已略去：{listing}。请检查坐标系和 OSM 文件的范围。",
        "en": "{n} of {total} centers lie outside the walking network's extent and were left out: {listing}. Check the coordinate system and the OSM extract's area.",
    },
    "app.warn.centers.unknown_levels": {
        "zh": "站点等级一列中有无法识别的值：{values}；这些站点的等级留空。请使用 {levels}（或 {aliases}）。",
        "en": "The level column has values that are not a known level: {values}; they are left empty. Use one of {levels} (or {aliases}).",
    },
    "app.warn.districts.admin_levels": {
        "zh": "OSM 文件含有多个行政级别（{levels}）的边界，已采用边界最多的级别 {chosen}。如需其他级别，请上传片区文件。",
        "en": "The OSM file has administrative boundaries at levels {levels}; using admin_level={chosen} (the most boundaries). Upload a districts file for another level.",
    },
    "app.err.osm.folder": {
        "zh": "“{name}”是一个文件夹，请选择其中的 OSM 文件（如 city.osm.pbf）。",
        "en": "{name!r} is a folder; choose the OSM file inside it (e.g. city.osm.pbf).",
    },
    "app.err.osm.not_found": {
        "zh": "找不到 OSM 文件“{name}”。请检查路径（文件从本机读取，不会下载）。",
        "en": "OSM file {name!r} not found. Check the path (it is read from local disk; nothing is downloaded).",
    },
    "app.err.osm.unsupported": {
        "zh": "“{name}”不是支持的 OSM 文件格式，应为 {suffixes} 之一。请从 OpenStreetMap 重新导出为上述格式之一。",
        "en": "{name!r} is not a supported OSM file; expected one of {suffixes}. Export the area from OpenStreetMap again, or convert it with osmium.",
    },
    "app.err.osm.empty": {
        "zh": "OSM 文件“{name}”是空文件（0 字节），请重新导出。",
        "en": "OSM file {name!r} is empty (0 bytes). Export the area again.",
    },
    "app.err.osm.not_pbf": {
        "zh": "“{name}”不是有效的 .osm.pbf 文件（文件头不正确）。请重新导出。",
        "en": "{name!r} is not an OSM PBF file (its header is not an OSMHeader block). Export it again.",
    },
    "app.err.osm.memory": {
        "zh": "处理“{name}”估计需要 {need_gb:.1f} GB 内存，超过上限 {budget_gb:.1f} GB。请截取更小的范围（如 osmium extract -b 西,南,东,北）。",
        "en": "{name!r} needs an estimated {need_gb:.1f} GB of memory, more than the budget of {budget_gb:.1f} GB. Cut a smaller extract (e.g. osmium extract -b W,S,E,N).",
    },
    "app.err.osm.expands": {
        "zh": "“{name}”解压后超过 {limit_mb:.0f} MB，超出内存上限。请截取更小的范围。",
        "en": "{name!r} expands to more than {limit_mb:.0f} MB of XML, beyond the memory budget. Cut a smaller extract.",
    },
    "app.err.osm.corrupt": {
        "zh": "“{name}”已损坏或不完整，无法解压。请重新复制或导出。",
        "en": "{name!r} is corrupted or truncated and cannot be decompressed. Copy or export it again.",
    },
    "app.err.osm.doctype": {
        "zh": "“{name}”含有文档类型或实体声明。OpenStreetMap 文件从不包含这些声明（可被用于攻击），文件已拒绝。请重新导出。",
        "en": "{name!r} declares a DOCTYPE or entities, which OpenStreetMap files never do (they can be used for attacks); the file is refused. Export the area again.",
    },
    "app.err.osm.compressed": {
        "zh": "“{name}”是压缩文件，请把扩展名改为 {suffix}。",
        "en": "{name!r} is a compressed file; name it with the {suffix} extension.",
    },
    "app.err.osm.not_xml": {
        "zh": "“{name}”不是 OpenStreetMap 数据文件。应为 openstreetmap.org 或其他工具导出的 .osm、.osm.bz2、.osm.gz 或 .osm.pbf 文件。",
        "en": "{name!r} is not OpenStreetMap XML. Expected a .osm, .osm.bz2, .osm.gz or .osm.pbf file as exported by openstreetmap.org, Overpass or osmium.",
    },
    "app.err.osm.too_many": {
        "zh": "“{name}”的要素数量超出内存上限 {budget_gb:.1f} GB 所能处理的范围，读取已停止。请截取更小的范围。",
        "en": "{name!r} holds more OSM data than the memory budget of {budget_gb:.1f} GB allows; reading stopped. Cut a smaller extract.",
    },
    "app.err.osm.missing_nodes": {
        "zh": "“{name}”中的道路引用了 {n:,} 个文件中没有的节点，不像真实地区的截取。请用 osmium extract 重新截取（保留完整道路）。",
        "en": "{name!r}: walkable ways reference {n:,} nodes that are not in the file; this is not an extract of a real place. Cut it again with osmium extract --strategy complete_ways.",
    },
    "app.err.osm.unparsable": {
        "zh": "“{name}”无法按 OpenStreetMap 数据解析，文件可能不完整或已损坏。请重新导出。",
        "en": "{name!r} could not be parsed as OpenStreetMap data; it may be truncated or corrupted. Export it again.",
    },
    "app.err.osm.no_ways": {
        "zh": "“{name}”中没有可步行的道路（允许行人通行的道路），无法建立步行路网。请确认范围覆盖建成区并包含道路。",
        "en": "{name!r} contains no walkable ways (highway=* open to pedestrians), so there is no street network. Check that the extract covers a built-up area and includes highways.",
    },
    "app.err.file.unsupported": {
        "zh": "“{name}”的格式不支持，应为 {suffixes} 之一。请在地理信息软件或表格软件中另存为 GeoJSON、GeoPackage、带经纬度列的 CSV 或 Excel 工作簿。",
        "en": "{name!r} has an unsupported format; expected one of {suffixes}. Save it from your GIS or spreadsheet as GeoJSON, GeoPackage, CSV or Excel .xlsx with longitude/latitude columns.",
    },
    "app.err.file.empty": {
        "zh": "“{name}”是空文件，请重新导出，至少包含一个要素或一行数据。",
        "en": "{name!r} is empty; export it again with at least one feature or row.",
    },
    "app.err.file.encoding": {
        "zh": "“{name}”既不是 UTF-8 也不是 GBK 编码的文本，请另存为 CSV UTF-8（Excel：另存为 → CSV UTF-8）。",
        "en": "{name!r} is neither UTF-8 nor GBK text; save it again as CSV UTF-8.",
    },
    "app.err.file.csv_unreadable": {
        "zh": "“{name}”无法按 CSV 读取：应有一行表头，数据用逗号分隔。",
        "en": "{name!r} could not be read as CSV: expected a header row and comma-separated values.",
    },
    "app.err.file.no_rows": {
        "zh": "“{name}”只有表头，没有数据行。",
        "en": "{name!r} has a header but no data rows.",
    },
    "app.err.file.geo_unreadable": {
        "zh": "“{name}”无法按 GeoJSON / GeoPackage 读取，请检查文件是否完整、格式是否与扩展名一致。",
        "en": "{name!r} could not be read as GeoJSON / GeoPackage; check that the file is complete and in the format its extension says.",
    },
    "app.err.file.no_geometry": {
        "zh": "“{name}”没有几何列；带坐标的表格请另存为含经纬度列的 CSV。",
        "en": "{name!r} has no geometry column; save a table with coordinates as CSV with longitude/latitude columns.",
    },
    "app.err.file.no_features": {
        "zh": "“{name}”不含任何要素，请重新导出图层。",
        "en": "{name!r} contains no features; export the layer again.",
    },
    "app.err.file.lat_range": {
        "zh": "“{name}”：第 {rows} 行的纬度超出 ±90°，请检查经纬度列（CSV 不接受以米为单位的投影坐标）。",
        "en": "{name!r}: latitudes on rows {rows} are outside ±90°; check the coordinate columns (projected meters are not accepted in CSV).",
    },
    "app.err.file.lon_range": {
        "zh": "“{name}”：第 {rows} 行的经度超出 ±180°，请导出以度为单位的经纬度。",
        "en": "{name!r}: longitudes on rows {rows} are outside ±180°; export longitude/latitude in degrees.",
    },
    "app.err.file.no_coordinates": {
        "zh": "“{name}”中找不到经纬度列（现有列：{columns}），请添加名为 lon / lat（或 经度 / 纬度）的列。",
        "en": "{name!r} has no longitude/latitude columns (columns: {columns}); add columns named lon / lat.",
    },
    # --- issue 15 app side (F1): own service areas, capacity widgets, labelled tables, error codes ---
    "app.own_areas": {
        "zh": "显示各站点自身的服务范围",
        "en": "Show each station's own service area",
    },
    "app.own_areas.help": {
        "zh": "在地图上增加每个站点各自的服务范围图层（站点多时较慢）；导出的 service_areas.geojson 总是包含它们。",
        "en": "Adds a layer with each station's own service area to the map (slower with many stations); the exported service_areas.geojson always has them.",
    },
    "app.groups.title": {"zh": "各人群覆盖率", "en": "Coverage per population group"},
    "app.groups.help": {
        "zh": "每个人群按各自的步行速度计算（老年人默认较慢）。",
        "en": "Each group is judged at its own walking speed (older residents slower by default).",
    },
    "app.std.compliance_help": {
        "zh": "每个片区、每个级别只按本级站点和本级阈值评估；建筑面积一栏在服务中心带有建筑面积时才有值。",
        "en": "Each area and level is judged only by that level's own centers and threshold; the floor-area columns are filled when the centers carry floor areas.",
    },
    "app.std.file": {
        "zh": "或上传本地标准文件（TOML / JSON / CSV）",
        "en": "Or upload a local standard (TOML / JSON / CSV)",
    },
    "app.std.file_help": {
        "zh": "每行一级：`level`（站点级别）、`minutes` 和/或 `meters`、可选 `source`、`target_share`；格式见 `docs/STANDARDS.md`。",
        "en": "One level per row: level (the centers' level), minutes and/or meters, optional source and target_share; see docs/STANDARDS.md.",
    },
    "app.std.file_option": {"zh": "本地标准：{title}", "en": "Local standard: {title}"},
    "app.std.file_loaded": {
        "zh": "已读取本地标准“{name}”：{levels} 级（{names}）。",
        "en": "Local standard {name!r} read: {levels} level(s) ({names}).",
    },
    "app.grpspeed.title": {"zh": "各人群步行速度", "en": "Walking speed per group"},
    "app.grpspeed.caption": {
        "zh": "60 岁及以上等老年人群默认 {older:g} 公里/小时：60 岁以上行人过街步速的第 15 百分位（0.92 米/秒，Fitzpatrick 等 2006，TCRP 第 112 号报告）；其他人群默认与步行速度参数相同。",
        "en": "Older groups (60+ and the like) default to {older:g} km/h: the 15th-percentile crossing speed of pedestrians over 60 (0.92 m/s, Fitzpatrick et al. 2006, TCRP Report 112); other groups default to the walking speed parameter.",
    },
    "app.grpspeed.speed": {
        "zh": "“{group}”步行速度（公里/小时）",
        "en": "Walking speed of {group} (km/h)",
    },
    "app.grpspeed.help_older": {
        "zh": "默认 {v:g} 公里/小时（老年人，来源见上）",
        "en": "Default {v:g} km/h (older residents, source above)",
    },
    "app.grpspeed.help": {
        "zh": "默认 {v:g} 公里/小时（与步行速度参数相同）",
        "en": "Default {v:g} km/h (the walking speed parameter)",
    },
    "app.cap.title": {"zh": "容量（建筑面积）", "en": "Capacity (floor area)"},
    "app.cap.help": {
        "zh": "服务中心带有建筑面积时，按两步移动搜索法计算每百户可达建筑面积，并与标准比较。",
        "en": "When the centers carry floor areas, the floor area reachable per 100 households (2SFCA) is compared with the standard.",
    },
    "app.cap.no_floor": {
        "zh": "当前站点没有建筑面积。请在“数据”中上传带建筑面积列的站点文件，即可按容量评估。",
        "en": "The stations have no floor areas. Load a centers file with a floor-area column under Data to audit capacity.",
    },
    "app.cap.household_size": {"zh": "户均人口（人/户）", "en": "Household size (persons)"},
    "app.cap.household_size_help": {
        "zh": "户数 = 人口 ÷ 户均人口；默认 {v:g}（2020 年第七次全国人口普查）。",
        "en": "Households = residents ÷ household size; default {v:g} (2020 census).",
    },
    "app.cap.standard": {
        "zh": "容量标准（㎡/百户）",
        "en": "Capacity standard (m² per 100 households)",
    },
    "app.cap.standard_help": {
        "zh": "默认 {v:g} ㎡/百户（2022 年完整社区建设试点通知：社区综合服务设施每百户不低于 30 ㎡）。",
        "en": "Default {v:g} m² per 100 households (the 2022 complete-community pilot notice: at least 30 m² per 100 households).",
    },
    "app.data.floor_column": {
        "zh": "建筑面积字段（可选，㎡）",
        "en": "Floor-area column (optional, m²)",
    },
    "app.data.floor_column_help": {
        "zh": "站点文件中建筑面积所在的列；留空时自动识别“建筑面积”等常见列名。",
        "en": "The centers file's column with each center's floor area; blank: the usual names (floor_area_m2, …) are detected.",
    },
    "app.data.group_columns": {
        "zh": "人群字段（可选，用逗号分隔）",
        "en": "Population group columns (optional, comma-separated)",
    },
    "app.data.group_help": {
        "zh": "人口文件中各人群人数所在的列，例如 60岁及以上, 0-14岁。",
        "en": "Columns of the population file with each group's residents, e.g. age_60_plus, age_0_14.",
    },
    "app.err.census.no_column": {
        "zh": "“{name}”中没有“{column}”列（现有列：{columns}），请检查字段名。",
        "en": "{name!r} has no column {column!r} (columns: {columns}); check the column name.",
    },
    "app.err.census.no_population": {
        "zh": "“{name}”中找不到普查人口列（现有列：{columns}），请在“普查人口字段名”中填写人口所在的列。",
        "en": "{name!r} has no census population column (columns: {columns}); type the population column's name in the census column box.",
    },
    "app.err.census.not_polygons": {
        "zh": "“{name}”中的普查单元必须是面（每个街道或社区一个面），请上传边界图层；点状人口请作为人口文件上传。",
        "en": "{name!r}: census areas must be polygons (one per street or community); upload the boundaries, or load points as a population file.",
    },
    "app.err.census.nothing_placed": {
        "zh": "“{name}”中没有任何普查单元落在路网范围内的居住用地或街道上，请检查坐标系（高德 / 百度坐标误作 WGS-84 会偏移 300–700 米）以及范围是否覆盖 OSM 文件。",
        "en": "No census area of {name!r} could be placed on the network's residential land or streets; check the coordinate system (Amap / Baidu coordinates read as WGS-84 shift by 300–700 m) and that the areas cover the OSM extract.",
    },
    "app.err.districts.no_column": {
        "zh": "行政区划文件中没有“{column}”列（现有列：{columns}），请在“区划名称字段”中填写名称所在的列。",
        "en": "The districts file has no column {column!r} (columns: {columns}); type the name column in the district name box.",
    },
    "app.err.districts.empty": {
        "zh": "行政区划文件中没有面要素，请检查文件。",
        "en": "The districts file holds no polygons; check the file.",
    },
    "app.err.districts.not_polygons": {
        "zh": "行政区划必须是面，文件中是：{types}。请上传边界的面图层。",
        "en": "Districts must be polygons; the file holds {types}. Upload the polygon layer of the boundaries.",
    },
    "app.err.districts.unnamed": {
        "zh": "有 {n} 个区划没有名称，请补全名称列。",
        "en": "{n} district(s) have no name; fill the name column.",
    },
    "app.err.file.not_polygons": {
        "zh": "“{name}”应为面图层，但第 {rows} 个要素是 {types}，请上传面（区域）图层。",
        "en": "{name!r}: expected polygons, but features {rows} are {types}; upload a polygon (area) layer.",
    },
    "app.err.xlsx.unreadable": {
        "zh": "“{name}”不是可读取的 Excel 工作簿，请在表格软件中重新另存为 Excel 工作簿，或另存为 CSV UTF-8。",
        "en": "{name!r} is not a readable Excel workbook; save it again from Excel or WPS as .xlsx, or as CSV UTF-8.",
    },
    "app.err.xlsx.too_large": {
        "zh": "“{name}”过大，请只把数据所在的工作表另存为新的 Excel 工作簿，或另存为 CSV UTF-8。",
        "en": "{name!r} is too large; save only the table's sheet as a new .xlsx, or as CSV UTF-8.",
    },
    "app.err.xlsx.too_many_columns": {
        "zh": "“{name}”的工作表超过 {n} 列，请只保留数据表的列。",
        "en": "{name!r}: the sheet has more than {n} columns; keep only the table's columns.",
    },
    "app.err.xlsx.too_many_rows": {
        "zh": "“{name}”的工作表超过 {n:,} 行，请拆分表格或只保留规划范围内的数据。",
        "en": "{name!r}: the sheet has more than {n:,} rows; split the table or keep only the area you plan for.",
    },
    "app.err.xlsx.no_sheet": {
        "zh": "“{name}”中没有名为“{sheet}”的工作表，现有工作表：{sheets}。",
        "en": "{name!r} has no sheet {sheet!r}; its sheets are: {sheets}.",
    },
    "app.err.xlsx.empty_sheet": {
        "zh": "“{name}”的工作表是空的，请在第一个工作表中放入表头（如 名称、经度、纬度）和数据行。",
        "en": "{name!r}: the sheet is empty; put a header row (e.g. name, lon, lat) and data rows in the first sheet.",
    },
    "app.err.standard.unknown": {
        "zh": "没有名为“{name}”的规划标准，可用的预设为：{presets}。",
        "en": "There is no standard {name!r}; the presets are {presets}.",
    },
    "app.err.standard.invalid": {
        "zh": "标准文件“{name}”不是有效的 {format} 文件，请检查格式。",
        "en": "The standard file {name!r} is not valid {format}; check its syntax.",
    },
    "app.err.standard.format": {
        "zh": "标准文件“{name}”的格式不支持，请使用 `.toml`、`.json` 或 `.csv` 文件。",
        "en": "The standard file {name!r} has an unsupported format; use .toml, .json or .csv.",
    },
    "app.err.standard.encoding": {
        "zh": "标准文件“{name}”不是 UTF-8 文本，请另存为 UTF-8 编码。",
        "en": "The standard file {name!r} is not UTF-8 text; save it as UTF-8.",
    },
    "app.err.standard.structure": {
        "zh": "标准文件“{name}”的结构不对：TOML/JSON 需要一个 `levels` 列表，CSV 需要含 `level` 以及 `minutes` 和/或 `meters` 的表头。",
        "en": "The standard file {name!r} has the wrong structure: TOML/JSON need a `levels` list, CSV a header with `level` and `minutes` and/or `meters`.",
    },
    "app.err.standard.no_levels": {
        "zh": "标准文件“{name}”没有任何级别，请至少给出一级（`level`，以及 `minutes` 和/或 `meters`）。",
        "en": "The standard file {name!r} has no levels; give at least one (level, minutes and/or meters).",
    },
    "app.err.standard.unknown_field": {
        "zh": "标准文件“{name}”含有无法识别的字段：{fields}。可用字段：`level`、`name`、`minutes`、`meters`、`source`、`target_share`、`notes`。",
        "en": "The standard file {name!r} has unknown field(s): {fields}. Known: level, name, minutes, meters, source, target_share, notes.",
    },
    "app.err.standard.no_level": {
        "zh": "标准文件“{name}”第 {row} 级缺少 `level`：请填写它评估的站点级别（如 `community`）。",
        "en": "The standard file {name!r}, level {row}: `level` is missing; name the center level it judges (e.g. community).",
    },
    "app.err.standard.duplicate_level": {
        "zh": "标准文件“{name}”中级别“{level}”出现了不止一次，每级只能给一次。",
        "en": "The standard file {name!r} gives the level {level!r} more than once; give each level once.",
    },
    "app.err.standard.no_limit": {
        "zh": "标准文件“{name}”中级别“{level}”没有步行阈值，请给出 `minutes` 和/或 `meters`（如 `meters = 300`）。",
        "en": "The standard file {name!r}, level {level!r}: give `minutes` and/or `meters` (e.g. meters = 300).",
    },
    "app.err.standard.bad_value": {
        "zh": "标准文件“{name}”中级别“{level}”的数值有误：`minutes` 须在 0–{max_min} 分钟之间，`meters` 须在 0–{max_m} 米之间，`target_share` 须在 0–1 之间。",
        "en": "The standard file {name!r}, level {level!r}: a value is out of range; minutes must be in (0, {max_min}], meters in (0, {max_m}], target_share in (0, 1].",
    },
    "app.err.standard.too_large": {
        "zh": "标准文件“{name}”过大，一个标准只需几行。",
        "en": "The standard file {name!r} is too large; a standard is a few lines.",
    },
    "table.yes": {"zh": "是", "en": "yes"},
    "table.no": {"zh": "否", "en": "no"},
    "table.std.circle": {"zh": "生活圈", "en": "Life circle"},
    "table.std.threshold_min": {"zh": "阈值（分钟）", "en": "Threshold (min)"},
    "table.std.threshold_m": {"zh": "阈值（米）", "en": "Threshold (m)"},
    "table.std.centers": {"zh": "本级站点数", "en": "Centers of the level"},
    "table.std.population_covered": {"zh": "覆盖人口", "en": "Residents covered"},
    "table.std.share": {"zh": "覆盖率", "en": "Share covered"},
    "table.std.source": {"zh": "依据", "en": "Source"},
    "table.cmp.area": {"zh": "片区", "en": "Area"},
    "table.cmp.residents": {"zh": "人口", "en": "Residents"},
    "table.cmp.households": {"zh": "户数", "en": "Households"},
    "table.cmp.target": {"zh": "目标覆盖率", "en": "Target share"},
    "table.cmp.passed": {"zh": "是否达标", "en": "Passed"},
    "table.cmp.reachable_m2": {"zh": "可达建筑面积（㎡）", "en": "Floor area reachable (m²)"},
    "table.cmp.required_m2": {"zh": "所需建筑面积（㎡）", "en": "Floor area required (m²)"},
    "table.cmp.deficit_m2": {"zh": "面积缺口（㎡）", "en": "Floor-area deficit (m²)"},
    "table.grp.group": {"zh": "人群", "en": "Group"},
    "table.grp.speed_kmh": {"zh": "步行速度（公里/小时）", "en": "Walking speed (km/h)"},
    "table.grp.minutes": {"zh": "阈值（分钟）", "en": "Threshold (min)"},
    "table.grp.population": {"zh": "人群人口", "en": "Group residents"},
    # --- tables (coverage.tables) ---------------------------------------------------------
    "table.lon": {"zh": "经度", "en": "Lon"},
    "table.lat": {"zh": "纬度", "en": "Lat"},
    "table.share": {"zh": "{minutes:g} 分钟覆盖率", "en": "Share within {minutes:g} min"},
    "table.share_change": {
        "zh": "{minutes:g} 分钟覆盖率变化",
        "en": "Change in share within {minutes:g} min",
    },
    "table.uncovered": {
        "zh": "{minutes:g} 分钟未覆盖人口",
        "en": "Residents not within {minutes:g} min",
    },
    "table.covered": {"zh": "{minutes:g} 分钟覆盖人口", "en": "Residents within {minutes:g} min"},
    "table.units": {"zh": "居住单元数", "en": "Residential units"},
    "table.scenario": {"zh": "方案", "en": "Scenario"},
    "table.centers": {"zh": "服务中心数", "en": "Centers"},
    "table.population": {"zh": "总人口", "en": "Residents"},
    "table.share_after": {"zh": "优化后覆盖率", "en": "Share after siting"},
    "table.sites_proposed": {"zh": "建议站点数", "en": "Sites proposed"},
    "table.stations_added": {"zh": "新增站点数", "en": "Stations added"},
    "table.stations_closed": {"zh": "关闭站点数", "en": "Stations closed"},
    # --- issue 14: station source, census population ---
    "centers_source.embedded": {
        "zh": "站点：内置的街道办事处和社区居委会位置（{attribution}；GCJ-02 坐标；标准 {standard}）",
        "en": "Stations: the embedded street offices and community committees ({attribution}; GCJ-02 coordinates; standard {standard})",
    },
    "centers_source.level.street": {"zh": "街道", "en": "street"},
    "centers_source.level.community": {"zh": "社区", "en": "community"},
    "centers_source.standard": {"zh": "{level} {minutes:g} 分钟", "en": "{level} {minutes:g} min"},
    "centers_source.osm": {
        "zh": "站点：OpenStreetMap 中按标签识别的中心（{tags}）",
        "en": "Stations: centers tagged in OpenStreetMap ({tags})",
    },
    "centers_source.file": {
        "zh": "站点：用户文件 {file}（坐标系 {crs}）",
        "en": "Stations: user file {file} (coordinates {crs})",
    },
    "app.data.centers.default": {
        "zh": "内置站点（街道、社区）",
        "en": "Embedded stations (street, community)",
    },
    "app.data.census": {
        "zh": "普查人口（可选，街道或社区的面，含人口字段）",
        "en": "Census population (optional, street or community polygons with counts)",
    },
    "app.data.census_column": {"zh": "普查人口字段名", "en": "Census population column"},
    # --- issue 14: Excel workbook, map figure, printable report ---
    "xlsx.sheet.coverage": {"zh": "覆盖率", "en": "Coverage"},
    "xlsx.sheet.levels": {"zh": "按级别", "en": "By level"},
    "xlsx.sheet.areas": {"zh": "按区划", "en": "By area"},
    "xlsx.sheet.sites": {"zh": "建议站点", "en": "Proposed sites"},
    "xlsx.sheet.scenarios": {"zh": "方案比较", "en": "Scenarios"},
    "xlsx.col.threshold": {"zh": "步行时间阈值（分钟）", "en": "Walking-time threshold (min)"},
    "xlsx.col.population_covered": {"zh": "覆盖人口", "en": "Residents covered"},
    "xlsx.col.share": {"zh": "覆盖率", "en": "Share covered"},
    "xlsx.col.units_covered": {"zh": "覆盖居住单元数", "en": "Residential units covered"},
    "figure.streets": {"zh": "街道", "en": "Streets"},
    "figure.service_area": {
        "zh": "步行 {minutes:g} 分钟服务范围",
        "en": "Within a {minutes:g} min walk",
    },
    "figure.uncovered": {
        "zh": "{minutes:g} 分钟未覆盖的居住区",
        "en": "Housing beyond {minutes:g} min",
    },
    "figure.station.existing": {"zh": "现有站点", "en": "Existing stations"},
    "figure.station.added": {"zh": "新增站点", "en": "Added stations"},
    "figure.station.closed": {"zh": "已关闭站点", "en": "Closed stations"},
    "figure.station.proposed": {"zh": "建议新增站点", "en": "Proposed sites"},
    "figure.params": {
        "zh": "步行速度 {speed:g} 公里/小时；阈值 {thresholds} 分钟；方案：{scenario}",
        "en": "Walking speed {speed:g} km/h; thresholds {thresholds} min; scenario: {scenario}",
    },
    "figure.date": {"zh": "制图日期：{date}", "en": "Date: {date}"},
    "figure.attribution": {
        "zh": "街道与居住区 © OpenStreetMap contributors（ODbL）；站点：{stations}",
        "en": "Streets and housing © OpenStreetMap contributors (ODbL); stations: {stations}",
    },
    "figure.north": {"zh": "北", "en": "N"},
    "figure.stations.osm": {"zh": "OpenStreetMap 标注", "en": "OpenStreetMap tags"},
    "figure.stations.file": {"zh": "规划者提供的站点表", "en": "the planner's station file"},
    "figure.stations.added": {"zh": "方案新增", "en": "added in the scenario"},
    # --- issues 14/15 follow-up (areas): distance thresholds on map.png, census areas in tables.xlsx ---
    "xlsx.sheet.census_areas": {"zh": "按普查区", "en": "By census area"},
    "xlsx.col.census_area": {"zh": "普查区编号", "en": "Census area no."},
    "xlsx.col.census_name": {"zh": "普查区", "en": "Census area"},
    "xlsx.col.census_method": {"zh": "人口落位方式", "en": "How residents were placed"},
    "xlsx.col.census_population": {"zh": "普查人口", "en": "Census population"},
    "xlsx.col.census_placed": {"zh": "已落位人口", "en": "Residents placed"},
    "xlsx.col.households": {"zh": "户数", "en": "Households"},
    "xlsx.col.floor_reachable": {
        "zh": "可达建筑面积（平方米）",
        "en": "Floor area within reach (m²)",
    },
    "xlsx.col.floor_required": {"zh": "所需建筑面积（平方米）", "en": "Floor area required (m²)"},
    "xlsx.col.floor_deficit": {"zh": "建筑面积缺口（平方米）", "en": "Floor area deficit (m²)"},
    "table.share_m": {"zh": "{meters:g} 米覆盖率", "en": "Share within {meters:g} m"},
    "table.covered_m": {"zh": "{meters:g} 米覆盖人口", "en": "Residents within {meters:g} m"},
    "figure.service_area_m": {
        "zh": "步行 {meters:g} 米服务范围",
        "en": "Within a {meters:g} m walk",
    },
    "figure.uncovered_m": {
        "zh": "{meters:g} 米未覆盖的居住区",
        "en": "Housing beyond {meters:g} m",
    },
    "figure.params_m": {
        "zh": "步行速度 {speed:g} 公里/小时；阈值 {thresholds} 分钟、{meters} 米（路网步行距离）；方案：{scenario}",
        "en": "Walking speed {speed:g} km/h; thresholds {thresholds} min and {meters} m (network walking distance); scenario: {scenario}",
    },
    "report.section.params": {"zh": "参数与定义", "en": "Parameters and definitions"},
    "report.param.speed": {"zh": "步行速度", "en": "Walking speed"},
    "report.param.speed_value": {"zh": "{speed:g} 公里/小时", "en": "{speed:g} km/h"},
    "report.param.thresholds": {"zh": "步行时间阈值", "en": "Walking-time thresholds"},
    "report.param.thresholds_value": {"zh": "{thresholds} 分钟", "en": "{thresholds} min"},
    "report.param.scenario": {"zh": "方案", "en": "Scenario"},
    "report.param.date": {"zh": "日期", "en": "Date"},
    "report.param.population": {"zh": "人口来源", "en": "Population source"},
    "report.param.stations": {"zh": "站点来源", "en": "Stations source"},
    "report.param.definition": {"zh": "“覆盖”的定义", "en": "What “covered” means"},
    "report.definition": {
        "zh": "住处沿街道步行到最近的服务中心不超过 {minutes} 分钟（步行速度 {speed:g} 公里/小时），含从住处走到街道的一段。",
        "en": "A home is covered when the walk along the streets to the nearest center takes at most {minutes} min at {speed:g} km/h, including the walk from home to the street.",
    },
    "report.population.osm": {
        "zh": "由 OpenStreetMap 居住建筑与居住用地估算",
        "en": "estimated from OpenStreetMap residential buildings and land use",
    },
    "report.population.file": {"zh": "人口文件 {name}", "en": "population file {name}"},
    "report.map_image": {"zh": "覆盖地图", "en": "Coverage map"},
    "app.upload.xlsx_broken": {
        "zh": "“{name}”不是可读取的 Excel 工作簿，请用 Excel 重新另存为工作簿，或另存为 CSV 文件。",
        "en": "{name!r} is not a readable Excel workbook; save it again as a workbook from Excel, or as CSV.",
    },
    "app.upload.xlsx_too_large": {
        "zh": "“{name}”解压后超过 {mb:.0f} MB 或包含过多部件，请只把站点表所在的工作表另存为新工作簿，或另存为 CSV 文件。",
        "en": "{name!r} expands to more than {mb:.0f} MB or holds too many parts; save only the table's sheet as a new workbook, or as CSV.",
    },
    "app.export.tables": {"zh": "汇总表（Excel 工作簿）", "en": "Tables (tables.xlsx)"},
    "app.export.map_png": {"zh": "地图图片", "en": "Map image (map.png)"},
    "app.export.map_pdf": {"zh": "地图（可打印的矢量文件）", "en": "Map for print (map.pdf)"},
    "app.export.compare_xlsx": {
        "zh": "下载方案比较（Excel 工作簿）",
        "en": "Download the comparison (Excel workbook)",
    },
    # --- issue 15: capacity (floor area, 2SFCA) and population groups ---
    "map.layer.capacity": {
        "zh": "每百户可达建筑面积（㎡，两步移动搜索法）",
        "en": "Floor area reachable per 100 households (m², 2SFCA)",
    },
    "map.field.households": {"zh": "户数", "en": "Households"},
    "map.field.m2_per_100_households": {
        "zh": "每百户可达面积（㎡）",
        "en": "m² per 100 households",
    },
    "map.legend.capacity_below_half": {
        "zh": "< {half:g} ㎡/百户",
        "en": "< {half:g} m² per 100 households",
    },
    "map.legend.capacity_below": {
        "zh": "{half:g}–{standard:g} ㎡/百户（未达标）",
        "en": "{half:g}–{standard:g} m² per 100 households (below standard)",
    },
    "map.legend.capacity_meets": {
        "zh": "≥ {standard:g} ㎡/百户（达标）",
        "en": "≥ {standard:g} m² per 100 households (meets standard)",
    },
    "map.legend.capacity_unknown": {
        "zh": "未知（服务中心缺少建筑面积）",
        "en": "Unknown (a center lacks its floor area)",
    },
    "app.capacity.headline": {
        "zh": "{share:.1%} 的居民每百户可达 ≥ {standard:g} ㎡（{unknown:.1%} 未知）",
        "en": "{share:.1%} of residents reach ≥ {standard:g} m² per 100 households ({unknown:.1%} unknown)",
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
