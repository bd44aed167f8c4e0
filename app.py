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
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import folium
import pandas as pd
import streamlit as st
from streamlit_folium import st_folium

from coverage import export, pipeline
from coverage.assets import static_dir, use_local_assets
from coverage.errors import InputError, PlannerError
from coverage.i18n import LANG_NAMES, LANGS, t
from coverage.inputs import DEFAULT_CITY, CityData, CityInputs, FileInput, load_city
from coverage.maps import MapLayers, coverage_map
from coverage.names import share_column, uncovered_column
from coverage.netcache import DEFAULT_CACHE_DIR
from coverage.osm import DEFAULT_CENTER_TAGS
from coverage.scenario import AddedStation, Scenario, ScenarioResult
from coverage.siting import SitingParams
from coverage.tables import (
    compare_labels,
    compare_scenarios,
    district_labels,
    headline_numbers,
    minutes_curve,
    site_labels,
    sites_frame,
)

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


def lang() -> str:
    """Return the session's language, ``"zh"`` (the default) or ``"en"``."""
    return str(st.session_state.get("lang", "zh"))


def tr(key: str, **values: Any) -> str:
    """Return the app label ``app.<key>`` of :mod:`coverage.i18n` in the session's language."""
    return t(f"app.{key}", lang(), **values)


# --- configuration ----------------------------------------------------------------------


def cache_dir() -> Path:
    """Return the folder for the walking-network cache and saved uploads."""
    return Path(os.environ.get("COVERAGE_PLANNER_CACHE") or DEFAULT_CACHE_DIR)


def default_osm() -> Path:
    """Return the OSM file loaded at start (``COVERAGE_PLANNER_DEFAULT_OSM`` or the embedded city)."""
    return Path(os.environ.get("COVERAGE_PLANNER_DEFAULT_OSM") or DEFAULT_CITY)


def max_upload_mb() -> int:
    """Return the OSM upload limit in MB: the env setting capped by Streamlit's own."""
    server = int(st.get_option("server.maxUploadSize"))
    env = os.environ.get("COVERAGE_PLANNER_MAX_UPLOAD_MB")
    try:
        return min(server, int(env)) if env else server
    except ValueError:
        return server


def ensure_static() -> None:
    """Make ./static (served at app/static/) hold the vendored map assets.

    The repository carries ./static as a link to coverage/static; a copy of the app without
    it gets the link again, or a copy where links cannot be made.
    """
    target = ROOT / "static"
    if target.exists():
        return
    try:
        target.symlink_to(static_dir(), target_is_directory=True)
    except OSError:  # no symlinks (Windows without developer mode): copy instead
        shutil.copytree(static_dir(), target, dirs_exist_ok=True)


# --- uploads ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    """An uploaded file: its name, bytes and sha256 (the cache key)."""

    kind: str
    name: str
    data: bytes
    sha256: str


def accept_upload(
    kind: str, name: str, data: bytes, *, max_mb: int | None = None, language: str = "en"
) -> Upload:
    """Check an upload's name and size; the contents are checked when the city loads.

    Messages are in `language` (the app passes the session's; the user's own file name kept).

    Raises
    ------
    InputError
        Unknown kind, unsupported suffix, empty or too large file.
    """
    lower = name.lower()
    if kind == "osm":
        if not lower.endswith(OSM_SUFFIXES):
            raise InputError(
                t("app.upload.not_osm", language, name=name, suffixes=", ".join(OSM_SUFFIXES))
            )
    elif kind in ("centers", "population", "districts"):
        if not lower.endswith(TABLE_SUFFIXES):
            raise InputError(t("app.upload.not_table", language, name=name))
    else:
        msg = f"unknown upload kind {kind!r}"
        raise InputError(msg)
    if not data:
        raise InputError(t("app.upload.empty", language, name=name))
    limit = max_mb if max_mb is not None else max_upload_mb()
    if len(data) > limit * 1_000_000:
        raise InputError(
            t("app.upload.too_large", language, name=name, mb=len(data) / 1e6, limit=limit)
        )
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
    """Return ``("amenity=a", "amenity=b")`` as ``{"amenity": ("a", "b")}``."""
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
    """Return the process-wide slot of the city with spec hash `key`."""
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


def load_spec(spec: CityInputs) -> CityData:
    """Load (or take from the shared cache) the city of `spec`, showing progress."""
    bar = st.empty()

    def progress(fraction: float, message: str) -> None:
        bar.progress(min(max(fraction, 0.0), 1.0), text=f"{tr('data.loading')} {message}")

    slot = city_slot(spec.key())
    try:
        with slot.lock:  # two sessions asking for the same new city load it once
            if slot.city is None:
                slot.city = load_city(spec, progress=progress)
                logger.info("app loaded city %s", spec.osm.name)
            city = slot.city
    finally:
        bar.empty()
    return city


def current_city() -> CityData:
    """Return the session's city (the default one until another has loaded)."""
    ss = st.session_state
    spec: CityInputs = ss.setdefault("city_spec", city_inputs(default_osm()))
    return load_spec(spec)


def apply_pending_load() -> None:
    """Load the city the user asked for, then commit it to the session.

    The session's spec changes only after the new city has loaded: a failed (or
    interrupted) load leaves the session exactly as it was, and the request is gone, so
    it is not retried on the next rerun.
    """
    ss = st.session_state
    pending: CityInputs | None = ss.pop("pending_spec", None)
    name = str(ss.pop("pending_name", pending.osm.name if pending else ""))
    if pending is None:
        return
    try:
        with capture_warnings():
            city = load_spec(pending)
    except Exception as exc:
        show_error(exc)
        previous: CityInputs | None = ss.get("city_spec")
        if previous is not None:
            st.info(tr("data.kept", name=ss.get("city_name", previous.osm.name)))
        return
    ss["city_spec"] = pending
    ss["city_name"] = name
    reset_results()
    drop_unknown_closures(city)


def drop_unknown_closures(city: CityData) -> None:
    """Drop, from every scenario, closures of centers the newly loaded city lacks (with a notice)."""
    ss = st.session_state
    known = {str(c) for c in city.centers["center_id"]}
    dropped: set[str] = set()
    for name, s in list(scenarios().items()):
        keep = tuple(c for c in s.closed if str(c) in known)
        if keep != tuple(s.closed):
            dropped.update(str(c) for c in s.closed if str(c) not in known)
            scenarios()[name] = replace(s, closed=keep)
    if "closed" in ss:
        ss["closed"] = [c for c in ss["closed"] if str(c) in known]
    if dropped:
        st.warning(tr("data.closures_dropped", n=len(dropped), ids=", ".join(sorted(dropped)[:5])))


# --- scenarios and results --------------------------------------------------------------


def scenarios() -> OrderedDict[str, Scenario]:
    """Return the session's scenarios by name (a lone ``baseline`` at first)."""
    ss = st.session_state
    if "scenarios" not in ss:
        ss["scenarios"] = OrderedDict({"baseline": Scenario(name="baseline")})
        ss["active"] = "baseline"
    result: OrderedDict[str, Scenario] = ss["scenarios"]
    return result


def active() -> Scenario:
    """Return the session's active scenario."""
    return scenarios()[st.session_state["active"]]


def set_active(s: Scenario) -> None:
    """Replace the active scenario by `s` (same name)."""
    scenarios()[st.session_state["active"]] = s


def reset_results() -> None:
    """Forget the session's memoised results (after a new city is loaded)."""
    st.session_state["memo"] = OrderedDict()


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
    """One scenario result, computed once and shared read-only by every session.

    Results are frozen; the scenarios themselves stay in each session's state.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.value: ScenarioResult | None = None


@st.cache_resource(max_entries=64, show_spinner=False)
def result_slot(key: str) -> ResultSlot:
    """Return the process-wide slot of the result with hash `key`."""
    return ResultSlot()


def shared_result(key: tuple[str, str, str], make: Callable[[], ScenarioResult]) -> ScenarioResult:
    """Return the result for `key` (city, scenario JSON, kind), computing it once for all sessions."""
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
    """Copy the speed and threshold widgets into the active scenario."""
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
    """Make the picked scenario the active one."""
    st.session_state["active"] = st.session_state["active_pick"]
    sync_widgets()


def on_copy() -> None:
    """Copy the active scenario under the new name and make the copy active."""
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
    """Delete the active scenario (never the last one)."""
    ss = st.session_state
    if len(scenarios()) <= 1:
        return
    del scenarios()[ss["active"]]
    ss["active"] = next(iter(scenarios()))
    ss["active_pick"] = ss["active"]
    sync_widgets()


def on_add_station() -> None:
    """Add a station at the map click to the active scenario."""
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
    """Remove the active scenario's last added station."""
    s = active()
    if s.added:
        set_active(replace(s, added=s.added[:-1]))


def on_close() -> None:
    """Copy the closed-centers widget into the active scenario."""
    set_active(replace(active(), closed=tuple(st.session_state["closed"])))


def on_optimize() -> None:
    """Run the optimizer panel's request on the active scenario."""
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
    """Add the picked proposed sites (rows of :func:`coverage.tables.sites_frame`) as stations."""
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
    """Drop the active scenario's siting request and its proposal."""
    set_active(replace(active(), siting=None))
    st.session_state["accept_ranks"] = []


def on_scenario_upload() -> None:
    """Keep an uploaded scenario JSON until the next run loads it."""
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


@contextmanager
def capture_warnings() -> Iterator[None]:
    """Record library warnings (recoverable oddities) and show each distinct one as st.warning."""
    with warnings.catch_warnings(record=True) as log:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            _show_warnings(log)


def _show_warnings(log: list[warnings.WarningMessage]) -> None:
    seen = set()
    for w in log:
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


def build_map(city: CityData, res: ScenarioResult, tiles: str) -> folium.Map:
    """Return the scenario's map, its Leaflet taken from ./static (no CDN)."""
    a = res.audit
    cap_res = getattr(res, "capacity", None)  # issue 15: when the centers carry floor areas
    layers = MapLayers(
        centers=res.centers,
        service_areas=a.service_areas,
        demand=a.demand,
        uncovered=a.uncovered,
        sites=res.siting.sites if res.siting is not None else None,
        districts=city.districts,
        district_name_column="district",
        capacity=None if cap_res is None else cap_res.demand,
        capacity_standard_m2=30.0
        if cap_res is None
        else cap_res.params.standard_m2_per_100_households,
    )
    m = coverage_map(
        layers,
        lang=lang(),
        tiles={"osm": "openstreetmap", "light": "light"}.get(tiles),
        thresholds_min=tuple(res.scenario.thresholds_min),
    )
    return use_local_assets(m, base_url=STATIC_URL)


# --- numbers ----------------------------------------------------------------------------


def headline(res: ScenarioResult, base: ScenarioResult | None) -> None:
    """Show the headline metrics of `res` (numbers first: the map's polygons take longer).

    Parameters
    ----------
    res
        The active scenario's result.
    base
        The first scenario's result, to show each share's change from it; None when `res`
        is the first scenario.
    """
    numbers = headline_numbers(res)
    before = headline_numbers(base) if base is not None else {}
    ts = list(res.scenario.thresholds_min)
    cols = st.columns(len(ts) + 2)
    for col, minutes in zip(cols, ts, strict=False):
        key = share_column(minutes)
        share = numbers[key]
        delta = f"{(share - before[key]) * 100:+.1f} pp" if key in before else None
        col.metric(tr("metric.share", m=minutes), f"{share:.1%}", delta=delta)
    tmax = max(ts)
    cols[-2].metric(tr("metric.uncovered", m=tmax), f"{numbers[uncovered_column(tmax)]:,.0f}")
    cols[-1].metric(tr("metric.centers"), f"{int(numbers['centers'])}")
    if res.siting is not None:
        st.caption(
            tr(
                "opt.summary",
                method=res.siting.method,
                before=res.siting.share_before,
                after=res.siting.share_after,
                bound=res.siting.upper_bound_share,
            )
        )
    capacity = getattr(res, "capacity", None)
    if capacity is not None:  # issue 15: the centers carry floor areas, or the scenario asks
        st.caption(
            tr(
                "capacity.headline",
                share=capacity.share_meeting_standard,
                standard=capacity.params.standard_m2_per_100_households,
                unknown=capacity.share_unknown,
            )
        )


# --- exports ----------------------------------------------------------------------------

#: Download buttons: file of the output contract, label key, MIME type.
DOWNLOADS: tuple[tuple[str, str, str], ...] = (
    (export.CENTERS_GEOJSON, "layer.centers", "application/geo+json"),
    (export.SERVICE_AREAS_GEOJSON, "layer.service_areas", "application/geo+json"),
    (export.DEMAND_GEOJSON, "layer.demand", "application/geo+json"),
    (export.UNCOVERED_GEOJSON, "layer.uncovered", "application/geo+json"),
    (export.PROPOSED_SITES_GEOJSON, "layer.sites", "application/geo+json"),
    (export.SUMMARY_JSON, "export.summary_json", "application/json"),
    (export.SUMMARY_CSV, "export.summary_csv", "text/csv"),
    (export.REPORT_HTML, "export.report", "text/html"),
)


def export_files(city: CityData, res: ScenarioResult, language: str) -> dict[str, bytes]:
    """Return every file of the output contract for `res`, as the CLI writes it.

    Parameters
    ----------
    city
        The loaded city (network, source file, population model, districts).
    res
        The scenario's result, with polygons.
    language
        ``"zh"`` or ``"en"``, for ``report.html``.

    Returns
    -------
    dict
        File name → bytes (:func:`coverage.export.output_files`).
    """
    return export.output_files(
        res,
        city,
        title=t("report.title", language),
        extra={"scenario": res.scenario.to_dict()},
        lang=language,
    )


class LazyFiles:
    """Export files built on the first download click, once, then served from memory.

    The first click runs in Streamlit's download thread, so drawing the page never waits
    for the export.
    """

    def __init__(self, make: Callable[[], dict[str, bytes]]) -> None:
        self._make = make
        self._lock = threading.Lock()
        self._files: dict[str, bytes] | None = None

    def get(self, name: str) -> bytes:
        """Return the bytes of file `name` (empty when the bundle has no such file)."""
        with self._lock:
            if self._files is None:
                self._files = self._make()
        return self._files.get(name, b"")


def downloads(city: CityData, city_key: str, res: ScenarioResult) -> None:
    """Show one download button per file of the output contract, plus the scenario JSON."""
    language = lang()
    lazy: LazyFiles = memo_get(
        "exports",
        (city_key, res.scenario.to_json(), language),
        lambda: LazyFiles(lambda: export_files(city, res, language)),
    )
    cols = st.columns(3)
    i = 0
    for name, label, mime in DOWNLOADS:
        if name == export.PROPOSED_SITES_GEOJSON and res.siting is None:
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
    """Return the per-district coverage table with on-screen column names.

    Returns
    -------
    pandas.DataFrame
        :func:`coverage.export.district_coverage`'s columns, named by
        :func:`coverage.tables.district_labels`.
    """
    df = export.district_coverage(res.audit.demand, city.districts, res.audit.params.thresholds_min)
    return df.rename(columns=district_labels(res.scenario.thresholds_min, lang()))


# --- page -------------------------------------------------------------------------------


def sidebar_data() -> None:
    """Show the data panel (street data, centers, population, districts); Load queues an upload."""
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
                key="centers_upload",
            )
            st.selectbox(
                tr("data.crs"),
                ["wgs84", "gcj02", "bd09"],
                format_func=lambda v: tr(f"crs.{v}"),
                key="centers_crs",
            )
        pop_file = st.file_uploader(tr("data.population"), key="pop_upload")
        st.text_input(tr("data.population_column"), value="population", key="pop_column")
        dist_file = st.file_uploader(tr("data.districts"), key="dist_upload")
        st.text_input(tr("data.district_column"), value="name", key="dist_column")
        if st.button(tr("data.load"), key="load_data", type="primary"):
            ss["pending_upload"] = {
                "source": source,
                "centers_src": centers_src,
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


def refuse_missing_files(req: Mapping[str, Any]) -> None:
    """Refuse a Load whose chosen file is missing (e.g. refused by the uploader).

    A refused centers file must never fall back silently to the OSM centers, nor a refused
    OSM extract to the previous city.

    Raises
    ------
    InputError
        "Upload an OSM file" was chosen with no accepted OSM file, or "centers from a file"
        with no accepted centers file.
    """
    if req.get("source") == "upload" and not req.get("osm"):
        raise InputError(tr("data.missing_osm"))
    if req.get("centers_src") == "file" and not req.get("centers"):
        raise InputError(tr("data.missing_centers"))


def handle_pending_upload() -> None:
    """Turn ``session_state['pending_upload']`` into the CityInputs to load.

    The request comes from the Load button (or straight from tests); bad files show an
    error and change nothing.
    """
    ss = st.session_state
    req: Mapping[str, Any] | None = ss.pop("pending_upload", None)
    if not req:
        return
    try:
        refuse_missing_files(req)
        if req.get("osm"):
            up = accept_upload("osm", *req["osm"], language=lang())
            osm_path, osm_name = osm_upload_path(up), up.name
        elif req.get("source", "default") == "default":
            osm_path, osm_name = default_osm(), default_osm().name
        else:
            prev: CityInputs | None = ss.get("city_spec")
            osm_path = prev.osm if prev else default_osm()
            osm_name = str(ss.get("city_name", osm_path.name))
        uploads = {
            k: accept_upload(k, *req[k], language=lang()) if req.get(k) else None
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


def sidebar_scenario_picker() -> None:
    """Show the scenario picker: switch, copy, delete, load a saved scenario JSON."""
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


def sidebar_params() -> None:
    """Show the active scenario's walking speed and thresholds, and the base-map choice."""
    ss = st.session_state
    sb = st.sidebar
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


def sidebar_edit(city: CityData) -> None:
    """Show the station editor: add a station at the map click, undo, close centers."""
    ss = st.session_state
    sb = st.sidebar
    s = active()
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


def sidebar_optimizer() -> None:
    """Show the optimizer panel: k sites or a target share, threshold, exact mode, run."""
    ss = st.session_state
    sb = st.sidebar
    s = active()
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


def sidebar_scenarios(city: CityData) -> None:
    """Show the scenario sidebar: picker, parameters, station editor, optimizer."""
    sidebar_scenario_picker()
    sidebar_params()
    sidebar_edit(city)
    sidebar_optimizer()


def read_click() -> None:
    """Pick up the map's last click (the component's value) before widgets draw."""
    ss = st.session_state
    value = ss.get("map")
    click = value.get("last_clicked") if isinstance(value, Mapping) else None
    if click and click != ss.get("click_seen"):
        ss["click_seen"] = click
        ss["clicked"] = {"lat": float(click["lat"]), "lng": float(click["lng"])}


def page_header() -> None:
    """Set up the page: configuration, map assets, language picker, title, flash message."""
    st.set_page_config(page_title="Coverage Planner", page_icon="🗺️", layout="wide")
    ensure_static()
    st.sidebar.radio(
        tr("lang"),
        list(LANGS),
        format_func=lambda v: LANG_NAMES[v],
        key="lang",
        horizontal=True,
    )
    st.title(tr("title"))
    flash = st.session_state.pop("flash", None)
    if flash:
        getattr(st, flash[0])(flash[1])


def page_city() -> tuple[CityData, str] | None:
    """Show the data panel, apply a requested load and return the session's city.

    Returns
    -------
    tuple or None
        The city and its cache key; None (the error is shown) when even the default city
        cannot be loaded.
    """
    ss = st.session_state
    sidebar_data()
    handle_pending_upload()
    apply_pending_load()
    try:
        with capture_warnings():
            city = current_city()
    except Exception as exc:  # the default city itself failed: say so, stop this run
        show_error(exc)
        ss.pop("city_spec", None)
        return None
    city_key: str = ss["city_spec"].key()
    if ss.get("city_key") != city_key:  # a new city: old results and closures do not apply
        ss["city_key"] = city_key
        reset_results()
    return city, city_key


def city_caption(city: CityData) -> None:
    """Say which data is loaded, and why OSM-tagged centers may understate coverage."""
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


def page_result(city: CityData, city_key: str, s: Scenario) -> ScenarioResult | None:
    """Show the headline numbers of `s`, then return its full result (with polygons).

    Returns
    -------
    ScenarioResult or None
        None (the error is shown) when the scenario cannot be computed.
    """
    try:
        with capture_warnings():
            numbers = numbers_for(city, city_key, s)
            first = next(iter(scenarios().values()))
            base = numbers_for(city, city_key, first) if first is not s else None
        headline(numbers, base)  # numbers first: the map's polygons take longer
        with capture_warnings():
            return result_for(city, city_key, s)
    except Exception as exc:
        show_error(exc)
        return None


def map_section(city: CityData, city_key: str, s: Scenario, res: ScenarioResult) -> None:
    """Show the coverage map: a fresh folium map on every rerun, built from the cached result.

    streamlit-folium mutates the figure while it renders it, so a Map object handed to
    `st_folium` a second time renders broken JavaScript and a 0 px iframe
    (docs/WALKTHROUGH.md step 3). Only results are cached; the Map is rebuilt each time.
    """
    tiles = str(st.session_state.get("tiles", "osm"))
    try:
        with capture_warnings():
            m = build_map(city, res, tiles)
    except Exception as exc:
        show_error(exc)
        m = None
    if m is not None:
        st_folium(
            m, key="map", height=560, use_container_width=True, returned_objects=["last_clicked"]
        )


def sites_tab(s: Scenario, res: ScenarioResult) -> None:
    """Show the proposed sites with the buttons to accept some or reject the proposal."""
    if s.accepted_sites:
        st.caption(tr("opt.accepted", n=len(s.accepted_sites)))
    if res.siting is None or len(res.siting.sites) == 0:
        st.info(tr("opt.none"))
        return
    df = sites_frame(res.siting.sites)
    st.dataframe(df.rename(columns=site_labels(lang())), hide_index=True, key="sites_table")
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


def curve_tab(res: ScenarioResult) -> None:
    """Show the share of residents within x minutes and, with a proposal, the sites curve."""
    st.caption(tr("curve.minutes"))
    curve = minutes_curve(res.audit.demand)
    st.line_chart(curve.rename(columns={"share": tr("curve.minutes")}).rename_axis("min"))
    if res.siting is not None and len(res.siting.curve):
        st.caption(tr("curve.sites"))
        st.line_chart(res.siting.curve.set_index("k")[["share"]])


def districts_tab(city: CityData, res: ScenarioResult) -> None:
    """Show coverage per district, or how to get it."""
    if city.districts is None:
        st.info(tr("districts.none"))
        return
    try:
        st.dataframe(district_table(city, res), hide_index=True, key="district_table")
    except Exception as exc:
        show_error(exc)


def compare_tab(city: CityData, city_key: str) -> None:
    """Show the picked scenarios side by side (numbers only, no polygons)."""
    names = list(scenarios())
    if len(names) < 2:
        st.info(tr("compare.one"))
        return
    picked = st.multiselect(
        tr("compare.pick"),
        names,
        default=names,
        key="compare_pick",
        placeholder=tr("choose"),
    )
    if len(picked) < 2:
        return
    try:
        with capture_warnings():
            results = {n: numbers_for(city, city_key, scenarios()[n]) for n in picked}
        ts = sorted({float(m) for r in results.values() for m in r.scenario.thresholds_min})
        labels = compare_labels(ts, lang())
        table = compare_scenarios(results).rename(columns=labels)
        st.dataframe(table.rename_axis(labels["scenario"]), key="compare_table")
    except Exception as exc:
        show_error(exc)


def result_tabs(city: CityData, city_key: str, s: Scenario, res: ScenarioResult) -> None:
    """Show the tabs below the map: sites, curves, districts, comparison, downloads."""
    tabs = st.tabs(
        [tr("tab.sites"), tr("tab.curve"), tr("tab.districts"), tr("tab.compare"), tr("tab.export")]
    )
    with tabs[0]:
        sites_tab(s, res)
    with tabs[1]:
        curve_tab(res)
    with tabs[2]:
        districts_tab(city, res)
    with tabs[3]:
        compare_tab(city, city_key)
    with tabs[4]:
        downloads(city, city_key, res)


def main() -> None:
    """Draw the page: header, data, scenario sidebar, numbers, map, tabs."""
    page_header()
    loaded = page_city()
    if loaded is None:
        return
    city, city_key = loaded
    scenarios()
    read_click()
    sidebar_scenarios(city)
    city_caption(city)
    s = active()
    res = page_result(city, city_key, s)
    if res is None:
        return
    map_section(city, city_key, s, res)
    result_tabs(city, city_key, s, res)


def run() -> None:
    """Run the page; an unexpected error is shown and the session survives."""
    try:
        main()
    except Exception as exc:  # last resort: the session survives, the user sees what to do
        show_error(exc)


if __name__ == "__main__":  # `streamlit run app.py` and AppTest; importing runs nothing
    run()
