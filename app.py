"""Coverage Planner: the Streamlit planning app (a thin shell over :mod:`coverage`).

widgets → :class:`coverage.scenario.Scenario` → :func:`coverage.pipeline.run` → map,
numbers, downloads. All planning logic lives in the library; this file only keeps session
state, caches and shows things.

Environment variables
---------------------
``COVERAGE_PLANNER_DEFAULT_OSM``
    OSM file loaded at start (default: the embedded Chengdu extract).
``COVERAGE_PLANNER_CACHE``
    Folder for the walking-network cache and saved uploads.
``COVERAGE_PLANNER_MAX_UPLOAD_MB``
    Largest OSM extract accepted, in MB (at most ``server.maxUploadSize``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import folium
import pandas as pd
import streamlit as st
from streamlit_folium import st_folium

from coverage import pipeline
from coverage.errors import InputError, PlannerError
from coverage.inputs import DEFAULT_CITY, CityData, CityInputs, FileInput, load_city
from coverage.network import DEFAULT_CACHE_DIR
from coverage.osm import DEFAULT_CENTER_TAGS
from coverage.scenario import AddedStation, Scenario, ScenarioResult, compare
from coverage.siting import SitingParams

logger = logging.getLogger("coverage.app")

ROOT = Path(__file__).resolve().parent
OSM_SUFFIXES = (".osm", ".osm.bz2", ".osm.gz", ".osm.pbf", ".pbf")
TABLE_SUFFIXES = ("geojson", "json", "gpkg", "csv", "txt")
#: Component iframe (…/component/streamlit_folium.st_folium/index.html) → app static root.
STATIC_URL = "../../app/static/"
MEMO_ENTRIES = 24
#: Wall-time limit of the exact optimizer in the app (the CLI's --time-limit-s).
EXACT_TIME_LIMIT_S = 60.0
THRESHOLD_CHOICES = (3.0, 5.0, 10.0, 15.0, 20.0, 30.0)
DEFAULT_TAGS = tuple(f"{k}={v}" for k, vals in DEFAULT_CENTER_TAGS.items() for v in vals)
TAG_CHOICES = (
    *DEFAULT_TAGS,
    "amenity=community_center",
    "office=association",
    "amenity=public_building",
)

# --- labels -----------------------------------------------------------------------------

#: App labels: key → (中文, English). Map and report labels come from coverage.i18n.
TEXT: dict[str, tuple[str, str]] = {
    "title": ("党群服务中心步行覆盖规划", "Walking coverage planner for community service centers"),
    "lang": ("语言 / Language", "语言 / Language"),
    "data": ("数据", "Data"),
    "data.source": ("路网数据", "Street data"),
    "data.default": ("内置示例城市", "Embedded example city"),
    "data.upload": ("上传 OSM 文件", "Upload an OSM extract"),
    "data.osm_file": (
        "OSM 文件（.osm / .osm.bz2 / .osm.pbf）",
        "OSM file (.osm / .osm.bz2 / .osm.pbf)",
    ),
    "data.limit": ("文件大小上限：{mb} MB", "Size limit: {mb} MB"),
    "data.centers": ("现有服务中心", "Existing centers"),
    "data.centers.osm": ("按 OSM 标签识别", "From OSM tags"),
    "data.centers.file": ("上传文件（GeoJSON / CSV）", "Upload a file (GeoJSON / CSV)"),
    "data.tags": ("OSM 标签", "OSM tags"),
    "data.centers_file": ("服务中心文件", "Centers file"),
    "data.crs": ("坐标系", "Coordinate system"),
    "data.population": (
        "人口文件（可选，面要素，含 population 字段）",
        "Population file (optional, polygons with a population column)",
    ),
    "data.population_column": ("人口字段名", "Population column"),
    "data.districts": ("行政区划边界（可选）", "District boundaries (optional)"),
    "data.district_column": ("区划名称字段", "District name column"),
    "data.load": ("加载数据", "Load data"),
    "data.loaded": (
        "{name}：路网 {nodes:,} 个节点，{centers} 个服务中心，{units:,} 个居住单元，约 {pop:,.0f} 人",
        "{name}: {nodes:,} network nodes, {centers} centers, {units:,} residential units, about {pop:,.0f} residents",
    ),
    "data.loading": ("正在加载城市数据…", "Loading the city…"),
    "data.osm_hint": (
        "服务中心取自 OSM 标签：OSM 往往只标注了一部分站点（这里 {n} 个），覆盖率会偏低。"
        "上传本市的站点清单（CSV / GeoJSON，支持高德 GCJ-02、百度 BD-09 坐标）可得到真实结果。",
        "Centers come from OSM tags: OSM usually maps only some of them ({n} here), so shares "
        "come out low. Upload the city's list of centers (CSV / GeoJSON; Amap GCJ-02 and Baidu "
        "BD-09 coordinates are accepted) for real figures.",
    ),
    "data.kept": ("仍使用之前的数据：{name}", "Still using the previous data: {name}"),
    "params": ("参数", "Parameters"),
    "speed": ("步行速度（公里/小时）", "Walking speed (km/h)"),
    "thresholds": ("步行时间阈值（分钟）", "Walking-time thresholds (minutes)"),
    "tiles": ("底图", "Base map"),
    "tiles.osm": ("OpenStreetMap", "OpenStreetMap"),
    "tiles.light": ("浅色", "Light"),
    "tiles.none": ("无底图", "None"),
    "scenario": ("方案", "Scenario"),
    "scenario.active": ("当前方案", "Active scenario"),
    "scenario.new_name": ("新方案名称", "New scenario name"),
    "scenario.copy": ("复制为新方案", "Copy as a new scenario"),
    "scenario.delete": ("删除当前方案", "Delete this scenario"),
    "scenario.exists": (
        "方案“{name}”已存在，请换一个名称。",
        "A scenario named “{name}” exists; choose another name.",
    ),
    "scenario.load": ("载入方案 JSON", "Load a scenario JSON"),
    "scenario.loaded": ("已载入方案“{name}”。", "Loaded scenario “{name}”."),
    "edit": ("站点调整", "Edit stations"),
    "edit.clicked": (
        "地图上选中的位置：{lat:.5f}, {lon:.5f}",
        "Point picked on the map: {lat:.5f}, {lon:.5f}",
    ),
    "edit.click_hint": (
        "在地图上单击选择新站点位置。",
        "Click the map to pick a new station site.",
    ),
    "edit.name": ("新站点名称", "New station name"),
    "edit.add": ("在选中位置新增站点", "Add a station at the picked point"),
    "edit.added": ("新增站点：{n} 个", "Stations added: {n}"),
    "edit.undo": ("撤销最后一个新增站点", "Remove the last added station"),
    "edit.close": ("关闭现有服务中心", "Close existing centers"),
    "opt": ("选址优化", "Site optimizer"),
    "opt.mode": ("目标", "Goal"),
    "opt.mode.k": ("新增 k 个站点", "Add k stations"),
    "opt.mode.share": ("达到目标覆盖率", "Reach a target share"),
    "opt.k": ("新增站点数 k", "Number of new stations k"),
    "opt.share": ("目标覆盖率", "Target share"),
    "opt.minutes": ("优化所用阈值（分钟）", "Threshold to optimise (minutes)"),
    "opt.exact": (
        "精确求解（HiGHS 整数规划，最多 {s:g} 秒）",
        "Exact (HiGHS integer program, up to {s:g} s)",
    ),
    "opt.exact_help": (
        "默认的贪心 + 交换算法快且可解释；精确求解给出可证明的最优解。按目标覆盖率时，"
        "先求达到目标所需的最少站点数。",
        "Greedy + swap (the default) is fast and explainable; the exact mode proves the optimum. "
        "With a target share it first finds the fewest stations that reach it.",
    ),
    "opt.run": ("运行选址优化", "Run the optimizer"),
    "opt.running": ("正在计算建议站点…", "Proposing sites…"),
    "opt.none": (
        "运行选址优化后，这里会列出建议站点。",
        "Run the optimizer to list proposed sites here.",
    ),
    "opt.accept_pick": ("选择要采纳的站点（排序号）", "Sites to accept (rank)"),
    "opt.accept": ("采纳所选站点", "Accept selected sites"),
    "opt.reject": ("放弃建议", "Reject the proposal"),
    "opt.accepted": ("已采纳站点：{n} 个", "Accepted sites: {n}"),
    "opt.summary": (
        "方法 {method}：覆盖率 {before:.1%} → {after:.1%}（可达上界 {bound:.1%}）",
        "Method {method}: share {before:.1%} → {after:.1%} (upper bound {bound:.1%})",
    ),
    "metric.share": ("{m:g} 分钟步行覆盖率", "Share within {m:g} min"),
    "metric.uncovered": ("{m:g} 分钟未覆盖人口", "Residents beyond {m:g} min"),
    "metric.centers": ("服务中心", "Service centers"),
    "metric.share_after": ("采纳建议后 {m:g} 分钟覆盖率", "Share within {m:g} min with proposal"),
    "running": ("正在计算覆盖…", "Computing coverage…"),
    "running.areas": ("正在绘制服务范围…", "Drawing service areas…"),
    "tab.sites": ("建议站点", "Proposed sites"),
    "tab.curve": ("覆盖曲线", "Coverage curve"),
    "tab.districts": ("分区统计", "By district"),
    "tab.compare": ("方案对比", "Compare scenarios"),
    "tab.export": ("导出", "Downloads"),
    "curve.minutes": ("步行时间内可达人口比例", "Share of residents within x minutes"),
    "curve.sites": ("新增站点数与覆盖率", "Share covered by number of new sites"),
    "districts.none": (
        "上传行政区划边界后显示分区统计。",
        "Upload district boundaries to see this table.",
    ),
    "compare.pick": ("对比的方案", "Scenarios to compare"),
    "compare.one": (
        "至少需要两个方案：先“复制为新方案”再修改。",
        "Make at least two scenarios (Copy as a new scenario) to compare.",
    ),
    "export.layer": ("{layer}（GeoJSON）", "{layer} (GeoJSON)"),
    "export.summary_json": ("汇总 summary.json", "Summary (summary.json)"),
    "export.summary_csv": ("汇总 summary.csv", "Summary (summary.csv)"),
    "export.scenario": ("方案 scenario.json", "Scenario (scenario.json)"),
    "export.report": ("报告 report.html", "Report (report.html)"),
    "layer.centers": ("服务中心", "Centers"),
    "layer.service_areas": ("服务范围", "Service areas"),
    "layer.demand": ("居住单元与步行时间", "Residential units with minutes"),
    "layer.uncovered": ("未覆盖区域", "Uncovered areas"),
    "layer.sites": ("建议站点", "Proposed sites"),
    "err.input": ("无法使用这个输入：{msg}", "This input cannot be used: {msg}"),
    "err.hint": (
        "请检查文件格式和坐标系后重新上传；当前会话和其它方案不受影响。",
        "Check the file format and coordinate system, then upload again; this session and your other scenarios are unaffected.",
    ),
    "err.unexpected": (
        "出现意外错误（{kind}）。已保留当前会话；请重试，若仍失败请把所用文件发给维护人员。",
        "Something unexpected went wrong ({kind}). The session is kept; try again, and if it fails again send the file you used to the maintainers.",
    ),
    "warn": ("提示：{msg}", "Note: {msg}"),
    "choose": ("请选择", "Choose"),
    "map.fallback": (
        "（地图模块未就绪：仅显示路网范围与服务中心）",
        "(map module not ready: showing the network extent and centers only)",
    ),
    "col.rank": ("排序", "Rank"),
    "col.lon": ("经度", "Lon"),
    "col.lat": ("纬度", "Lat"),
    "col.marginal": ("新增覆盖人口", "Added population"),
    "col.cumulative_share": ("累计覆盖率", "Cumulative share"),
    "col.district": ("区划", "District"),
    "col.population": ("人口", "Population"),
    "col.share": ("{m:g} 分钟覆盖率", "Share within {m:g} min"),
}


def lang() -> str:
    return str(st.session_state.get("lang", "zh"))


def tr(key: str, **values: Any) -> str:
    """App label ``key`` in the session's language."""
    text = TEXT[key][0 if lang() == "zh" else 1]
    return text.format(**values) if values else text


def i18n(key: str, default: str, **values: Any) -> str:
    """A label from :mod:`coverage.i18n` when it has ``key``; ``default`` otherwise."""
    try:
        from coverage.i18n import t

        return t(key, lang(), **values)
    except (ImportError, KeyError):
        return default


# --- configuration ----------------------------------------------------------------------


def cache_dir() -> Path:
    return Path(os.environ.get("COVERAGE_PLANNER_CACHE") or DEFAULT_CACHE_DIR)


def default_osm() -> Path:
    return Path(os.environ.get("COVERAGE_PLANNER_DEFAULT_OSM") or DEFAULT_CITY)


def max_upload_mb() -> int:
    """The OSM upload limit shown on screen: the env setting capped by Streamlit's own."""
    server = int(st.get_option("server.maxUploadSize"))
    env = os.environ.get("COVERAGE_PLANNER_MAX_UPLOAD_MB")
    try:
        return min(server, int(env)) if env else server
    except ValueError:
        return server


def ensure_static() -> None:
    """Make ./static (served at app/static/) hold the vendored map assets."""
    target = ROOT / "static"
    if target.exists():
        return
    try:
        from coverage.maps import static_dir

        source = Path(static_dir())
    except (ImportError, AttributeError):
        source = ROOT / "coverage" / "static"
    try:
        target.symlink_to(source, target_is_directory=True)
    except OSError:  # no symlinks (Windows without developer mode): copy instead
        shutil.copytree(source, target, dirs_exist_ok=True)


# --- uploads ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    """An uploaded file: its name, bytes and sha256 (the cache key)."""

    kind: str
    name: str
    data: bytes
    sha256: str


def accept_upload(kind: str, name: str, data: bytes, *, max_mb: int | None = None) -> Upload:
    """Check an upload's name and size; the contents are checked when the city loads.

    Raises
    ------
    InputError
        Unknown kind, unsupported suffix, empty or too large file.
    """
    lower = name.lower()
    if kind == "osm":
        if not lower.endswith(OSM_SUFFIXES):
            msg = f"{name!r} is not an OSM extract; expected one of {', '.join(OSM_SUFFIXES)}. Export it from openstreetmap.org, Geofabrik or BBBike."
            raise InputError(msg)
    elif kind in ("centers", "population", "districts"):
        if not lower.endswith(TABLE_SUFFIXES):
            msg = f"{name!r} is not a GeoJSON, GeoPackage or CSV file; save it as one of .geojson, .gpkg or .csv."
            raise InputError(msg)
    else:
        msg = f"unknown upload kind {kind!r}"
        raise InputError(msg)
    if not data:
        msg = f"{name!r} is empty; upload the file again."
        raise InputError(msg)
    limit = max_mb if max_mb is not None else max_upload_mb()
    if len(data) > limit * 1_000_000:
        msg = f"{name!r} is {len(data) / 1e6:.0f} MB, more than the {limit} MB limit; cut a smaller area (e.g. with osmium extract) or ask the administrator to raise the limit."
        raise InputError(msg)
    return Upload(kind, name, data, hashlib.sha256(data).hexdigest())


def osm_upload_path(up: Upload) -> Path:
    """Write an uploaded OSM extract once, named by its hash, and return the path."""
    folder = cache_dir() / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    suffix = next(
        s for s in sorted(OSM_SUFFIXES, key=len, reverse=True) if up.name.lower().endswith(s)
    )
    path = folder / f"{up.sha256[:20]}{suffix}"
    if not path.exists():
        tmp = path.with_suffix(path.suffix + ".part")
        tmp.write_bytes(up.data)
        tmp.replace(path)
    return path


# --- city loading -----------------------------------------------------------------------


def parse_tags(tags: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for tag in tags:
        k, _, v = tag.partition("=")
        out.setdefault(k.strip(), []).append(v.strip())
    return {k: tuple(v) for k, v in out.items()}


class CitySlot:
    """Holder for one city's data; filled once, then shared read-only by every session.

    ``st.cache_resource`` keeps the slots (keyed by the spec's hash); the slow load runs
    outside the cached function so that it can drive an ``st.progress`` bar (elements
    created inside a cached function would be replayed on every cache hit).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.city: CityData | None = None


@st.cache_resource(max_entries=4, show_spinner=False)
def city_slot(key: str) -> CitySlot:
    return CitySlot()


def city_inputs(
    osm: Path,
    *,
    center_tags: tuple[str, ...] = DEFAULT_TAGS,
    centers: Upload | None = None,
    crs: str = "wgs84",
    population: Upload | None = None,
    population_column: str = "population",
    districts: Upload | None = None,
    district_column: str = "name",
) -> CityInputs:
    """Return the :class:`CityInputs` of the sidebar's choices (uploads as bytes with their names)."""

    def upload(up: Upload | None) -> FileInput | None:
        return None if up is None else FileInput(up.data, up.name)

    return CityInputs(
        osm=osm,
        crs=crs,
        centers=upload(centers),
        center_tags=parse_tags(center_tags) if centers is None else DEFAULT_CENTER_TAGS,
        population=upload(population),
        population_column=population_column,
        districts=upload(districts),
        district_name_column=district_column,
        cache_dir=cache_dir(),
    )


def current_city() -> CityData:
    """Return the session's city; a failed load keeps the previous one (or the default)."""
    ss = st.session_state
    spec: CityInputs = ss.setdefault("city_spec", city_inputs(default_osm()))
    key = spec.key()
    bar = st.empty()

    def progress(fraction: float, message: str) -> None:
        bar.progress(min(max(fraction, 0.0), 1.0), text=f"{tr('data.loading')} {message}")

    slot = city_slot(key)
    try:
        with slot.lock:  # two sessions asking for the same new city load it once
            if slot.city is None:
                slot.city = load_city(spec, progress=progress)
                logger.info("app loaded city %s", ss.get("city_name", spec.osm.name))
            city = slot.city
    finally:
        bar.empty()
    return city


def apply_pending_load() -> None:
    """Try the spec the user asked for; on failure show why and keep the previous spec."""
    ss = st.session_state
    pending: CityInputs | None = ss.pop("pending_spec", None)
    if pending is None:
        return
    previous: CityInputs | None = ss.get("city_spec")
    previous_name = ss.get("city_name", previous.osm.name if previous else "")
    ss["city_spec"] = pending
    ss["city_name"] = ss.pop("pending_name", pending.osm.name)
    try:
        with capture_warnings():
            current_city()
    except Exception as exc:
        ss["city_spec"] = previous
        ss["city_name"] = previous_name
        show_error(exc)
        if previous is not None:
            st.info(tr("data.kept", name=previous_name))
    else:
        reset_results()


# --- scenarios and results --------------------------------------------------------------


def scenarios() -> OrderedDict[str, Scenario]:
    ss = st.session_state
    if "scenarios" not in ss:
        ss["scenarios"] = OrderedDict({"baseline": Scenario(name="baseline")})
        ss["active"] = "baseline"
    result: OrderedDict[str, Scenario] = ss["scenarios"]
    return result


def active() -> Scenario:
    return scenarios()[st.session_state["active"]]


def set_active(s: Scenario) -> None:
    scenarios()[st.session_state["active"]] = s


def reset_results() -> None:
    st.session_state["memo"] = OrderedDict()
    st.session_state["maps"] = OrderedDict()


def memo_get(store: str, key: Any, make: Callable[[], Any]) -> Any:
    """Session memo with LRU eviction: results never leak into other sessions."""
    memo: OrderedDict[Any, Any] = st.session_state.setdefault(store, OrderedDict())
    if key in memo:
        memo.move_to_end(key)
        return memo[key]
    value = make()
    memo[key] = value
    while len(memo) > MEMO_ENTRIES:
        memo.popitem(last=False)
    return value


def _run(city: CityData, s: Scenario, *, with_polygons: bool, label: str) -> ScenarioResult:
    slot = st.empty()  # the status box goes away once the work is done
    with slot.status(label, expanded=False):
        bar = st.progress(0.0)

        def progress(fraction: float, message: str) -> None:
            bar.progress(min(max(fraction, 0.0), 1.0), text=message)

        res = pipeline.run(city, s, with_polygons=with_polygons, progress=progress)
    slot.empty()
    return res


class ResultSlot:
    """One scenario result, computed once and shared read-only by every session
    (results are frozen; the scenarios themselves stay in each session's state)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.value: ScenarioResult | None = None


@st.cache_resource(max_entries=64, show_spinner=False)
def result_slot(key: str) -> ResultSlot:
    return ResultSlot()


def shared_result(key: tuple[str, str, str], make: Callable[[], ScenarioResult]) -> ScenarioResult:
    slot = result_slot(hashlib.sha256(json.dumps(key).encode()).hexdigest())
    with slot.lock:
        if slot.value is None:
            slot.value = make()
        return slot.value


def numbers_for(city: CityData, city_key: str, s: Scenario) -> ScenarioResult:
    """Return the scenario's numbers (and proposed sites), without polygons: fast, shown first."""
    label = tr("opt.running") if s.siting else tr("running")
    return shared_result(
        (city_key, s.to_json(), "numbers"),
        lambda: _run(city, s, with_polygons=False, label=label),
    )


def result_for(city: CityData, city_key: str, s: Scenario) -> ScenarioResult:
    """Numbers plus service-area and uncovered polygons (for the map and downloads).

    The polygons do not depend on a siting request, so they are memoised without it and
    proposing sites never redraws them.
    """
    numbers = numbers_for(city, city_key, s)
    plain = replace(s, siting=None)
    areas = shared_result(
        (city_key, plain.to_json(), "areas"),
        lambda: _run(city, plain, with_polygons=True, label=tr("running.areas")),
    )
    return ScenarioResult(
        scenario=s,
        centers=areas.centers,
        audit=areas.audit,
        siting=numbers.siting,
        districts=areas.districts,
    )


# --- callbacks (run before the script reruns) -------------------------------------------


def on_params() -> None:
    ss = st.session_state
    thresholds = tuple(sorted(float(x) for x in ss["thresholds"])) or (5.0, 15.0)
    s = active()
    audit = replace(s.audit, speed_kmh=float(ss["speed"]), thresholds_min=thresholds)
    set_active(replace(s, audit=audit))


def sync_widgets() -> None:
    """Show the active scenario's parameters in the widgets."""
    ss = st.session_state
    s = active()
    ss["speed"] = float(s.speed_kmh)
    ss["thresholds"] = [float(t) for t in s.thresholds_min]
    ss["closed"] = list(s.closed)


def on_switch() -> None:
    st.session_state["active"] = st.session_state["active_pick"]
    sync_widgets()


def on_copy() -> None:
    ss = st.session_state
    name = str(ss.get("new_name") or "").strip() or f"scenario {len(scenarios()) + 1}"
    if name in scenarios():
        ss["flash"] = ("warning", tr("scenario.exists", name=name))
        return
    scenarios()[name] = replace(active(), name=name)
    ss["active"] = name
    ss["active_pick"] = name
    ss["new_name"] = ""


def on_delete() -> None:
    ss = st.session_state
    if len(scenarios()) <= 1:
        return
    del scenarios()[ss["active"]]
    ss["active"] = next(iter(scenarios()))
    ss["active_pick"] = ss["active"]
    sync_widgets()


def on_add_station() -> None:
    ss = st.session_state
    click = ss.get("clicked")
    if not click:
        return
    s = active()
    name = str(ss.get("station_name") or "").strip() or f"+{len(s.added) + 1}"
    set_active(
        s.with_added(AddedStation(lon=float(click["lng"]), lat=float(click["lat"]), name=name))
    )
    ss["clicked"] = None
    ss["station_name"] = ""


def on_undo_added() -> None:
    s = active()
    if s.added:
        set_active(replace(s, added=s.added[:-1]))


def on_close() -> None:
    set_active(replace(active(), closed=tuple(st.session_state["closed"])))


def on_optimize() -> None:
    ss = st.session_state
    s = active()
    # speed and tie-break minutes come from the pipeline (coverage.pipeline.siting_params)
    minutes = float(ss.get("opt_minutes") or max(s.thresholds_min))
    common: dict[str, Any] = {
        "minutes": minutes,
        "exact": bool(ss.get("opt_exact", False)),
        "time_limit_s": EXACT_TIME_LIMIT_S,
    }
    if ss.get("opt_mode", "k") == "k":
        req = SitingParams(k=int(ss.get("opt_k", 3)), **common)
    else:
        req = SitingParams(target_share=float(ss.get("opt_share", 0.9)), **common)
    set_active(replace(s, siting=req))


def on_accept(sites: list[dict[str, Any]]) -> None:
    ss = st.session_state
    picked = set(ss.get("accept_ranks") or [])
    s = active()
    new = tuple(
        AddedStation(lon=float(r["lon"]), lat=float(r["lat"]), name=f"#{int(r['rank'])}")
        for r in sites
        if int(r["rank"]) in picked
    )
    set_active(replace(s, accepted_sites=(*s.accepted_sites, *new), siting=None))
    ss["accept_ranks"] = []


def on_reject() -> None:
    set_active(replace(active(), siting=None))
    st.session_state["accept_ranks"] = []


def on_scenario_upload() -> None:
    up = st.session_state.get("scenario_upload")
    if up is not None:
        st.session_state["pending_scenario"] = up.getvalue()


def load_scenario_json(data: bytes) -> Scenario:
    """Parse a saved scenario and make it the active one under a free name."""
    s = Scenario.from_json(data)
    name = s.name
    i = 2
    while name in scenarios():
        name = f"{s.name} ({i})"
        i += 1
    s = replace(s, name=name)
    scenarios()[name] = s
    st.session_state["active"] = name
    st.session_state["active_pick"] = name
    sync_widgets()
    return s


# --- errors and warnings ----------------------------------------------------------------


def show_error(exc: BaseException) -> None:
    """Explain an error in the page; never a traceback."""
    if isinstance(exc, PlannerError):
        st.error(f"{tr('err.input', msg=exc)}\n\n{tr('err.hint')}")
        logger.info("input refused: %s", exc)
    else:
        st.error(tr("err.unexpected", kind=type(exc).__name__))
        logger.exception("unexpected error in the app")


class capture_warnings:  # noqa: N801 - used like a function: `with capture_warnings():`
    """Record library warnings (recoverable oddities) and show them as st.warning."""

    def __enter__(self) -> None:
        self._cm = warnings.catch_warnings(record=True)
        self._log = self._cm.__enter__()
        warnings.simplefilter("always")

    def __exit__(self, *exc: object) -> None:
        self._cm.__exit__(*exc)
        seen = set()
        for w in self._log or []:
            if issubclass(
                w.category,
                (DeprecationWarning, PendingDeprecationWarning, FutureWarning, ResourceWarning),
            ):
                continue
            text = str(w.message)
            if text not in seen:
                seen.add(text)
                st.warning(tr("warn", msg=text))


# --- map --------------------------------------------------------------------------------


def localize_assets(m: folium.Map) -> folium.Map:
    """Point every CDN script/stylesheet of ``m`` at the files served from ./static."""
    try:
        from coverage.maps import use_local_assets
    except ImportError:
        pass
    else:
        return use_local_assets(m, base_url=STATIC_URL)
    local = {
        "leaflet.js": "vendor/leaflet/leaflet.js",
        "leaflet.css": "vendor/leaflet/leaflet.css",
        "jquery": "vendor/jquery/jquery-3.7.1.min.js",
        "bootstrap.bundle.min.js": "vendor/bootstrap/bootstrap.bundle.min.js",
        "bootstrap.min.css": "vendor/bootstrap/bootstrap.min.css",
        "leaflet.awesome-markers.js": "vendor/awesome-markers/leaflet.awesome-markers.js",
        "leaflet.awesome-markers.css": "vendor/awesome-markers/leaflet.awesome-markers.css",
        "all.min.css": "vendor/fontawesome/css/all.min.css",
    }

    def fix(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
        out = []
        for name, url in items:
            for needle, path in local.items():
                if needle in url:
                    out.append((name, STATIC_URL + path))
                    break
        return out

    def walk(el: Any) -> None:
        for attr in ("default_js", "default_css"):
            if getattr(el, attr, None):
                setattr(el, attr, fix(list(getattr(el, attr))))
        for child in getattr(el, "_children", {}).values():
            walk(child)

    walk(m)
    return m


def drop_colormaps(m: folium.Map) -> None:
    """streamlit-folium loads d3 from a CDN for every branca ColorMap; offline that
    request fails and the whole map stays blank, so keep legends as plain HTML."""
    import branca.colormap

    def walk(el: Any) -> None:
        children = getattr(el, "_children", {})
        for name in list(children):
            if isinstance(children[name], branca.colormap.ColorMap):
                del children[name]
            else:
                walk(children[name])

    walk(m)


def build_map(city: CityData, res: ScenarioResult, tiles: str) -> folium.Map:
    a = res.audit
    sites = res.siting.sites if res.siting is not None else None
    try:
        from coverage.maps import coverage_map
    except ImportError:
        m = fallback_map(city, res, tiles)
    else:
        m = coverage_map(
            centers=res.centers,
            service_areas=a.service_areas,
            demand=a.demand,
            uncovered=a.uncovered,
            sites=sites,
            districts=city.districts,
            lang=lang(),
            tiles={"osm": "openstreetmap", "light": "light"}.get(tiles),
            thresholds_min=tuple(res.scenario.thresholds_min),
            district_name_column="district",
        )
    drop_colormaps(m)
    return localize_assets(m)


def fallback_map(city: CityData, res: ScenarioResult, tiles: str) -> folium.Map:
    """A plain map (network extent + centers) used until coverage.maps lands."""
    import geopandas as gpd
    from shapely.geometry import box

    x, y = city.net.node_x, city.net.node_y
    extent = gpd.GeoSeries([box(x.min(), y.min(), x.max(), y.max())], crs=city.net.crs).to_crs(4326)
    minx, miny, maxx, maxy = extent.total_bounds
    tile_url = {"osm": "OpenStreetMap", "light": "CartoDB positron"}.get(tiles)
    m = folium.Map(tiles=tile_url, attr="© OpenStreetMap contributors", control_scale=True)
    m.fit_bounds([[miny, minx], [maxy, maxx]])
    folium.GeoJson(
        extent.__geo_interface__,
        name="extent",
        style_function=lambda _: {"fill": False, "color": "#555"},
    ).add_to(m)
    group = folium.FeatureGroup(name=i18n("map.layer.centers", "centers")).add_to(m)
    for _, row in res.centers.to_crs(4326).iterrows():
        folium.CircleMarker(
            [row.geometry.y, row.geometry.x],
            radius=7,
            color="#b2182b",
            fill=True,
            tooltip=str(row.get("name") or row["center_id"]),
        ).add_to(group)
    folium.LayerControl().add_to(m)
    return m


# --- numbers ----------------------------------------------------------------------------


def minutes_key(t: float) -> str:
    return f"{t:g}"


def headline(res: ScenarioResult, base: ScenarioResult | None) -> None:
    a = res.audit
    ts = list(res.scenario.thresholds_min)
    cols = st.columns(len(ts) + 2)
    for col, t in zip(cols, ts, strict=False):
        stats = a.coverage[minutes_key(t)]
        delta = None
        if base is not None and minutes_key(t) in base.audit.coverage:
            d = stats.share - base.audit.coverage[minutes_key(t)].share
            delta = f"{d * 100:+.1f} pp"
        col.metric(tr("metric.share", m=t), f"{stats.share:.1%}", delta=delta)
    tmax = max(ts)
    uncovered = a.population_total - a.coverage[minutes_key(tmax)].population_covered
    cols[-2].metric(tr("metric.uncovered", m=tmax), f"{uncovered:,.0f}")
    cols[-1].metric(tr("metric.centers"), f"{len(res.centers)}")
    if res.siting is not None:
        st.caption(
            tr(
                "opt.summary",
                method=res.siting.method,
                before=res.siting.share_before,
                after=res.siting.share_after,
                bound=getattr(res.siting, "upper_bound_share", float("nan")),
            )
        )


def sites_frame(res: ScenarioResult) -> pd.DataFrame:
    sites = res.siting.sites.to_crs(4326)
    df = pd.DataFrame(
        {
            "rank": sites["rank"].astype(int).to_numpy(),
            "lon": sites.geometry.x.round(6).to_numpy(),
            "lat": sites.geometry.y.round(6).to_numpy(),
            "marginal_population": sites["marginal_population"].round(0).to_numpy(),
            "cumulative_share": sites["cumulative_share"].to_numpy(),
        }
    )
    return df


def minutes_curve(res: ScenarioResult) -> pd.DataFrame:
    d = res.audit.demand
    minutes = d["minutes_to_nearest"].to_numpy(dtype=float)
    pop = d["population"].to_numpy(dtype=float)
    total = pop.sum() or 1.0
    xs = list(range(0, 31))
    shares = [float(pop[minutes <= x].sum() / total) for x in xs]
    label = tr("curve.minutes")
    return pd.DataFrame({label: shares}, index=pd.Index(xs, name="min"))


# --- exports ----------------------------------------------------------------------------

DOWNLOADS: tuple[tuple[str, str, str], ...] = (
    ("centers.geojson", "layer.centers", "application/geo+json"),
    ("service_areas.geojson", "layer.service_areas", "application/geo+json"),
    ("demand.geojson", "layer.demand", "application/geo+json"),
    ("uncovered.geojson", "layer.uncovered", "application/geo+json"),
    ("proposed_sites.geojson", "layer.sites", "application/geo+json"),
    ("summary.json", "export.summary_json", "application/json"),
    ("summary.csv", "export.summary_csv", "text/csv"),
    ("report.html", "export.report", "text/html"),
)


def export_files(city: CityData, res: ScenarioResult, language: str) -> dict[str, bytes]:
    """Every file of the output contract for ``res`` (coverage.export), plus summary.csv."""
    from coverage import export

    files = export.output_files(
        res,
        city,
        title=i18n("report.title", TEXT["title"][0 if language == "zh" else 1], lang=language),
        extra={"scenario": res.scenario.to_dict()},
        lang=language,
    )
    rows = [
        {
            "scenario": res.scenario.name,
            "threshold_min": k,
            "population_covered": v.population_covered,
            "population_total": res.audit.population_total,
            "share": v.share,
            "units_covered": v.units_covered,
        }
        for k, v in res.audit.coverage.items()
    ]
    files["summary.csv"] = pd.DataFrame(rows).to_csv(index=False).encode("utf-8-sig")
    return files


class LazyFiles:
    """Builds the export files on the first download click (in Streamlit's download
    thread), once, then serves every button from memory."""

    def __init__(self, make: Callable[[], dict[str, bytes]]) -> None:
        self._make = make
        self._lock = threading.Lock()
        self._files: dict[str, bytes] | None = None

    def get(self, name: str) -> bytes:
        with self._lock:
            if self._files is None:
                self._files = self._make()
        return self._files.get(name, b"")


def downloads(city: CityData, city_key: str, res: ScenarioResult) -> None:
    language = lang()
    lazy: LazyFiles = memo_get(
        "exports",
        (city_key, res.scenario.to_json(), language),
        lambda: LazyFiles(lambda: export_files(city, res, language)),
    )
    cols = st.columns(3)
    i = 0
    for name, label, mime in DOWNLOADS:
        if name == "proposed_sites.geojson" and res.siting is None:
            continue
        text = tr("export.layer", layer=tr(label)) if name.endswith(".geojson") else tr(label)
        cols[i % 3].download_button(
            text,
            data=(lambda n=name: lazy.get(n)),
            file_name=name,
            mime=mime,
            key=f"dl_{name}",
            on_click="ignore",
        )
        i += 1
    cols[i % 3].download_button(
        tr("export.scenario"),
        data=res.scenario.to_json().encode("utf-8"),
        file_name=f"scenario-{res.scenario.name}.json",
        mime="application/json",
        key="dl_scenario",
        on_click="ignore",
    )


def district_table(city: CityData, res: ScenarioResult) -> pd.DataFrame:
    from coverage.export import district_coverage

    df = district_coverage(res.audit.demand, city.districts, res.audit.params.thresholds_min)
    names = {"district": tr("col.district"), "population": tr("col.population")}
    for t in res.scenario.thresholds_min:
        names[f"share_{minutes_key(t)}"] = tr("col.share", m=t)
    return df.rename(columns=names)


# --- page -------------------------------------------------------------------------------


def sidebar_data() -> None:
    ss = st.session_state
    sb = st.sidebar
    with sb.expander(tr("data"), expanded=False):
        source = st.radio(
            tr("data.source"),
            ["default", "upload"],
            format_func=lambda v: tr(f"data.{v}"),
            key="source",
            horizontal=True,
        )
        mb = max_upload_mb()
        osm_file = None
        if source == "upload":
            osm_file = st.file_uploader(
                tr("data.osm_file"),
                type=["osm", "bz2", "gz", "pbf"],
                key="osm_upload",
                help=tr("data.limit", mb=mb),
            )
            st.caption(tr("data.limit", mb=mb))
        centers_src = st.radio(
            tr("data.centers"),
            ["osm", "file"],
            format_func=lambda v: tr(f"data.centers.{v}"),
            key="centers_src",
        )
        centers_file = None
        if centers_src == "osm":
            st.multiselect(
                tr("data.tags"),
                TAG_CHOICES,
                default=list(DEFAULT_TAGS),
                key="tags",
                placeholder=tr("choose"),
            )
        else:
            centers_file = st.file_uploader(
                tr("data.centers_file"),
                type=["geojson", "json", "csv", "gpkg"],
                key="centers_upload",
            )
            st.selectbox(
                tr("data.crs"),
                ["wgs84", "gcj02", "bd09"],
                format_func=lambda v: {
                    "wgs84": "WGS-84 (GPS/OSM)",
                    "gcj02": "GCJ-02 (高德/腾讯)",
                    "bd09": "BD-09 (百度)",
                }[v],
                key="centers_crs",
            )
        pop_file = st.file_uploader(
            tr("data.population"), type=["geojson", "json", "gpkg", "csv"], key="pop_upload"
        )
        st.text_input(tr("data.population_column"), value="population", key="pop_column")
        dist_file = st.file_uploader(
            tr("data.districts"), type=["geojson", "json", "gpkg"], key="dist_upload"
        )
        st.text_input(tr("data.district_column"), value="name", key="dist_column")
        if st.button(tr("data.load"), key="load_data", type="primary"):
            ss["pending_upload"] = {
                "source": source,
                "osm": (osm_file.name, osm_file.getvalue()) if osm_file is not None else None,
                "centers": (centers_file.name, centers_file.getvalue())
                if centers_file is not None
                else None,
                "population": (pop_file.name, pop_file.getvalue())
                if pop_file is not None
                else None,
                "districts": (dist_file.name, dist_file.getvalue())
                if dist_file is not None
                else None,
            }


def handle_pending_upload() -> None:
    """Turn ``session_state['pending_upload']`` (from the Load button, or set directly by
    tests) into the CityInputs to load; bad files show an error and change nothing."""
    ss = st.session_state
    req: Mapping[str, Any] | None = ss.pop("pending_upload", None)
    if not req:
        return
    try:
        if req.get("osm"):
            up = accept_upload("osm", *req["osm"])
            osm_path, osm_name = osm_upload_path(up), up.name
        elif req.get("source", "default") == "default":
            osm_path, osm_name = default_osm(), default_osm().name
        else:
            prev: CityInputs | None = ss.get("city_spec")
            osm_path = prev.osm if prev else default_osm()
            osm_name = str(ss.get("city_name", osm_path.name))
        uploads = {
            k: accept_upload(k, *req[k]) if req.get(k) else None
            for k in ("centers", "population", "districts")
        }
        ss["pending_spec"] = city_inputs(
            osm_path,
            center_tags=tuple(ss.get("tags") or DEFAULT_TAGS),
            centers=uploads["centers"],
            crs=str(ss.get("centers_crs", "wgs84")),
            population=uploads["population"],
            population_column=str(ss.get("pop_column") or "population"),
            districts=uploads["districts"],
            district_column=str(ss.get("dist_column") or "name"),
        )
        ss["pending_name"] = osm_name
    except Exception as exc:
        show_error(exc)


def sidebar_scenarios(city: CityData) -> None:
    ss = st.session_state
    sb = st.sidebar
    sb.subheader(tr("scenario"))
    if ss.get("pending_scenario") is not None:  # before the widgets that show the active one
        try:
            loaded = load_scenario_json(ss.pop("pending_scenario"))
            sb.success(tr("scenario.loaded", name=loaded.name))
        except Exception as exc:
            with sb:
                show_error(exc)
    names = list(scenarios())
    ss["active_pick"] = ss["active"]
    sb.selectbox(tr("scenario.active"), names, key="active_pick", on_change=on_switch)
    c1, c2 = sb.columns([3, 2])
    c1.text_input(
        tr("scenario.new_name"),
        key="new_name",
        label_visibility="collapsed",
        placeholder=tr("scenario.new_name"),
    )
    c2.button(tr("scenario.copy"), key="copy_scenario", on_click=on_copy)
    if len(names) > 1:
        sb.button(tr("scenario.delete"), key="delete_scenario", on_click=on_delete)
    sb.file_uploader(
        tr("scenario.load"), type=["json"], key="scenario_upload", on_change=on_scenario_upload
    )
    sb.subheader(tr("params"))
    s = active()
    ss.setdefault("speed", float(s.speed_kmh))
    ss.setdefault("thresholds", [float(t) for t in s.thresholds_min])
    sb.slider(tr("speed"), 2.0, 7.0, step=0.1, key="speed", on_change=on_params)
    sb.multiselect(
        tr("thresholds"),
        sorted({*THRESHOLD_CHOICES, *s.thresholds_min}),
        key="thresholds",
        placeholder=tr("choose"),
        on_change=on_params,
    )
    sb.radio(
        tr("tiles"),
        ["osm", "light", "none"],
        format_func=lambda v: tr(f"tiles.{v}"),
        key="tiles",
        horizontal=True,
    )

    sb.subheader(tr("edit"))
    click = ss.get("clicked")
    if click:
        sb.caption(tr("edit.clicked", lat=click["lat"], lon=click["lng"]))
    else:
        sb.caption(tr("edit.click_hint"))
    sb.text_input(tr("edit.name"), key="station_name")
    sb.button(tr("edit.add"), key="add_station", on_click=on_add_station, disabled=not click)
    if s.added:
        sb.caption(tr("edit.added", n=len(s.added)))
        sb.button(tr("edit.undo"), key="undo_added", on_click=on_undo_added)
    base = city.centers
    labels = {str(r.center_id): f"{r.name or r.center_id}" for r in base.itertuples()}
    ss.setdefault("closed", list(s.closed))
    sb.multiselect(
        tr("edit.close"),
        list(labels),
        format_func=lambda c: labels.get(c, c),
        key="closed",
        placeholder=tr("choose"),
        on_change=on_close,
    )

    sb.subheader(tr("opt"))
    sb.radio(
        tr("opt.mode"),
        ["k", "share"],
        format_func=lambda v: tr(f"opt.mode.{v}"),
        key="opt_mode",
        horizontal=True,
    )
    if ss.get("opt_mode", "k") == "k":
        sb.number_input(tr("opt.k"), min_value=1, max_value=50, value=3, step=1, key="opt_k")
    else:
        sb.slider(tr("opt.share"), 0.5, 1.0, value=0.9, step=0.01, key="opt_share")
    sb.selectbox(tr("opt.minutes"), sorted(s.thresholds_min, reverse=True), key="opt_minutes")
    sb.checkbox(tr("opt.exact", s=EXACT_TIME_LIMIT_S), key="opt_exact", help=tr("opt.exact_help"))
    sb.button(tr("opt.run"), key="run_optimizer", on_click=on_optimize, type="primary")


def read_click() -> None:
    """Pick up the map's last click (the component's value) before widgets draw."""
    ss = st.session_state
    value = ss.get("map")
    click = value.get("last_clicked") if isinstance(value, Mapping) else None
    if click and click != ss.get("click_seen"):
        ss["click_seen"] = click
        ss["clicked"] = {"lat": float(click["lat"]), "lng": float(click["lng"])}


def main() -> None:
    st.set_page_config(page_title="Coverage Planner", page_icon="🗺️", layout="wide")
    ensure_static()
    ss = st.session_state
    st.sidebar.radio(
        tr("lang"),
        ["zh", "en"],
        format_func=lambda v: {"zh": "中文", "en": "English"}[v],
        key="lang",
        horizontal=True,
    )
    st.title(tr("title"))
    flash = ss.pop("flash", None)
    if flash:
        getattr(st, flash[0])(flash[1])

    sidebar_data()
    handle_pending_upload()
    apply_pending_load()
    try:
        with capture_warnings():
            city = current_city()
    except Exception as exc:  # the default city itself failed: say so, stop this run
        show_error(exc)
        ss.pop("city_spec", None)
        return
    city_key = ss["city_spec"].key()
    if ss.get("city_key") != city_key:  # a new city: old results and closures do not apply
        ss["city_key"] = city_key
        reset_results()
    scenarios()
    read_click()
    sidebar_scenarios(city)
    st.caption(
        tr(
            "data.loaded",
            name=city.source_name,
            nodes=int(city.net.n_nodes),
            centers=len(city.centers),
            units=len(city.demand),
            pop=float(city.demand["population"].sum()) if "population" in city.demand else 0.0,
        )
    )
    if "source" in city.centers and (city.centers["source"] == "osm").all():
        st.caption(tr("data.osm_hint", n=len(city.centers)))

    s = active()
    try:
        with capture_warnings():
            numbers = numbers_for(city, city_key, s)
            first = next(iter(scenarios().values()))
            base = numbers_for(city, city_key, first) if first is not s else None
        headline(numbers, base)  # numbers first: the map's polygons take longer
        with capture_warnings():
            res = result_for(city, city_key, s)
    except Exception as exc:
        show_error(exc)
        return

    tiles = str(ss.get("tiles", "osm"))
    try:
        with capture_warnings():
            m = memo_get(
                "maps", (city_key, s.to_json(), lang(), tiles), lambda: build_map(city, res, tiles)
            )
    except Exception as exc:
        show_error(exc)
        m = None
    if m is not None:
        st_folium(
            m, key="map", height=560, use_container_width=True, returned_objects=["last_clicked"]
        )

    tabs = st.tabs(
        [tr("tab.sites"), tr("tab.curve"), tr("tab.districts"), tr("tab.compare"), tr("tab.export")]
    )
    with tabs[0]:
        if s.accepted_sites:
            st.caption(tr("opt.accepted", n=len(s.accepted_sites)))
        if res.siting is None or len(res.siting.sites) == 0:
            st.info(tr("opt.none"))
        else:
            df = sites_frame(res)
            st.dataframe(
                df.rename(
                    columns={
                        "rank": tr("col.rank"),
                        "lon": tr("col.lon"),
                        "lat": tr("col.lat"),
                        "marginal_population": tr("col.marginal"),
                        "cumulative_share": tr("col.cumulative_share"),
                    }
                ),
                hide_index=True,
                key="sites_table",
            )
            records = df.to_dict("records")
            st.multiselect(
                tr("opt.accept_pick"),
                [int(r) for r in df["rank"]],
                key="accept_ranks",
                placeholder=tr("choose"),
            )
            c1, c2 = st.columns(2)
            c1.button(
                tr("opt.accept"),
                key="accept_sites",
                on_click=on_accept,
                args=(records,),
                type="primary",
            )
            c2.button(tr("opt.reject"), key="reject_sites", on_click=on_reject)
    with tabs[1]:
        st.caption(tr("curve.minutes"))
        st.line_chart(minutes_curve(res))
        if res.siting is not None and len(res.siting.curve):
            st.caption(tr("curve.sites"))
            st.line_chart(res.siting.curve.set_index("k")[["share"]])
    with tabs[2]:
        if city.districts is None:
            st.info(tr("districts.none"))
        else:
            try:
                st.dataframe(district_table(city, res), hide_index=True, key="district_table")
            except Exception as exc:
                show_error(exc)
    with tabs[3]:
        names = list(scenarios())
        if len(names) < 2:
            st.info(tr("compare.one"))
        else:
            picked = st.multiselect(
                tr("compare.pick"),
                names,
                default=names,
                key="compare_pick",
                placeholder=tr("choose"),
            )
            if len(picked) >= 2:
                try:
                    with capture_warnings():
                        results = {n: numbers_for(city, city_key, scenarios()[n]) for n in picked}
                    st.dataframe(compare(results), key="compare_table")
                except Exception as exc:
                    show_error(exc)
    with tabs[4]:
        downloads(city, city_key, res)


def run() -> None:
    try:
        main()
    except Exception as exc:  # last resort: the session survives, the user sees what to do
        show_error(exc)


if __name__ == "__main__":  # `streamlit run app.py` and AppTest; importing runs nothing
    run()
