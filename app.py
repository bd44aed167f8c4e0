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

import functools
import hashlib
import json
import logging
import os
import re
import shutil
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import folium
import pandas as pd
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx
from streamlit_folium import st_folium

from coverage import export, pipeline
from coverage.assets import static_dir, use_local_assets
from coverage.audit import PER_CENTER_POLYGONS_MAX
from coverage.capacity import DEFAULT_STANDARD_M2_PER_100_HOUSEHOLDS, CapacityParams
from coverage.centers import FLOOR_AREA_M2
from coverage.errors import InputError, PlannerError, ResourceLimitError
from coverage.groups import OLDER_PATTERN, OLDER_SPEED_KMH, GroupParams, group_names
from coverage.i18n import LANG_NAMES, LANGS, MESSAGES, t
from coverage.inputs import (
    DEFAULT_CITY,
    CityData,
    CityInputs,
    FileInput,
    centers_source_label,
    load_city,
)
from coverage.isochrones import ALL_CENTERS
from coverage.maps import MapLayers, coverage_map, place_frame, street_frame
from coverage.names import share_column, uncovered_column
from coverage.netcache import DEFAULT_CACHE_DIR
from coverage.osm import DEFAULT_CENTER_TAGS
from coverage.progress import ProgressFn, cancellable, sub_progress
from coverage.scenario import AddedStation, Scenario, ScenarioResult
from coverage.siting import SitingParams, SitingSets, siting_sets_key
from coverage.standards import DEFAULT_HOUSEHOLD_SIZE, PRESETS, Standard, standard_from_bytes
from coverage.tables import (
    NO_CHANGE_SHARE,
    compare_scenarios,
    compare_view,
    compliance_view,
    district_view,
    groups_view,
    headline_numbers,
    method_label,
    minutes_curve,
    percent,
    share_change,
    sites_frame,
    sites_view,
    standard_view,
    station_labels,
    station_states,
    stations_view,
)
from coverage.userfiles import XLSX_MAX_UNCOMPRESSED_BYTES, check_xlsx_archive

logger = logging.getLogger("coverage.app")

ROOT = Path(__file__).resolve().parent
OSM_SUFFIXES = (".osm", ".osm.bz2", ".osm.gz", ".osm.pbf", ".pbf")
TABLE_SUFFIXES = ("geojson", "json", "gpkg", "csv", "txt", "xlsx")
#: Component iframe (…/component/streamlit_folium.st_folium/index.html) → app static root.
STATIC_URL = "../../app/static/"
MEMO_ENTRIES = 24
#: Download bundles kept per session (the scenarios last shown): each holds its result with
#: polygons and, once built, every file's bytes, hundreds of MB each at 300k nodes.
EXPORTS_KEPT = 2
#: Wall-time limit of the exact optimizer in the app, as its label says.
EXACT_TIME_LIMIT_S = 60.0
#: The solver's share of that limit (the CLI's --time-limit-s); candidates, coverage sets and
#: the greedy start take the rest, so the whole exact run stays within the label.
EXACT_SOLVER_S = 40.0
#: The first scenario's name: it is never edited in place (edits go into a working scenario).
BASELINE = "baseline"
WORKING = "working"
#: Internal names and temporary paths never shown to a planner (pyogrio's /vsimem/…, tmp files).
#: A library progress message with a counter, e.g. "service areas 3/12".
COUNTED_STAGE = re.compile(r"^(.*?) (\d+)/(\d+)$")
INTERNAL_PATH = re.compile(
    r"(/vsimem/\S+|/tmp/\S+|[0-9a-f]{20}(?:\.osm(?:\.bz2|\.gz|\.pbf)?|\.pbf))"
)
THRESHOLD_CHOICES = (3.0, 5.0, 10.0, 15.0, 20.0, 30.0)
#: Distance thresholds offered (GB 50180-2018: 300 / 500 / 800–1000 m).
DISTANCE_CHOICES_M = (300.0, 500.0, 800.0, 1000.0)
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


def stage(message: str) -> str:
    """Return a library progress message (English, e.g. "service areas 3/12") in the UI language.

    Messages without a label (``app.stage.*``) show as a plain "working" in Chinese, so the
    zh page never shows English stage names.
    """
    counted = COUNTED_STAGE.match(message)
    if counted:
        what, i, n = counted.groups()
        return tr("stage.counted", what=stage(what), i=i, n=n)
    key = "stage." + message.replace(" ", "_").replace("-", "_")
    if f"app.{key}" in MESSAGES:
        return tr(key)
    return message if lang() == "en" else tr("stage.other")


# --- configuration ----------------------------------------------------------------------


#: Choice widgets whose options are shown translated: key → (label prefix, options). Streamlit
#: keeps a radio's or selectbox's value as its shown label; after a language switch the page
#: still holds the old language's label, which the new options do not contain.
TRANSLATED_CHOICES: dict[str, tuple[str, tuple[str, ...]]] = {
    "opt_mode": ("opt.mode", ("k", "share")),
    "source": ("data", ("default", "upload")),
    "centers_src": ("data.centers", ("default", "osm", "file")),
    "tiles": ("tiles", ("osm", "light", "streets")),
    "centers_crs": ("crs", ("wgs84", "gcj02", "bd09")),
}


def choice(key: str, default: str) -> str:
    """Return the option of translated choice widget `key` (its label in any language mapped back)."""
    prefix, options = TRANSLATED_CHOICES[key]
    value = st.session_state.get(key, default)
    if value in options:
        return str(value)
    for option in options:
        if any(value == t(f"app.{prefix}.{option}", language) for language in LANGS):
            return option
    return default


def keep_choices() -> None:
    """Put every translated choice widget's option back in session state before it is drawn.

    After a language switch (or when the page sent a label of the other language) the widget
    is set from its option, so the page shows it in the new language and callbacks read the
    option, never a label: the optimizer stays in its mode after 中文 → English.
    """
    ss = st.session_state
    switched = ss.get("lang_seen") != ss.get("lang")
    ss["lang_seen"] = ss.get("lang")
    for key, (_, options) in TRANSLATED_CHOICES.items():
        if key not in ss:
            continue
        value = choice(key, options[0])
        if switched or ss[key] != value:
            ss[key] = value


def cache_dir() -> Path:
    """Return the folder for the walking-network cache and saved uploads."""
    return Path(os.environ.get("COVERAGE_PLANNER_CACHE") or DEFAULT_CACHE_DIR)


def default_osm() -> Path:
    """Return the OSM file loaded at start (``COVERAGE_PLANNER_DEFAULT_OSM`` or the embedded city)."""
    return Path(os.environ.get("COVERAGE_PLANNER_DEFAULT_OSM") or DEFAULT_CITY)


#: From this many network nodes the map is drawn at once from the numbers (stations, each
#: resident's walking minutes) and the service and uncovered areas are built below it; the
#: page then reruns and draws them. On the embedded city (3,062 nodes) a speed change drew
#: its final map after 2.6 s, and 4.0 s this way (the map is drawn twice); at 100k nodes the
#: areas take 13–18 s to build, at 300k 41–66 s (docs/BENCHMARKS.md), with no map meanwhile.
MAP_FIRST_NODES = 20_000


def map_first(city: CityData) -> bool:
    """Return whether the city is large enough to draw its map before its areas are built.

    The threshold is :data:`MAP_FIRST_NODES`, or the environment variable
    ``COVERAGE_PLANNER_MAP_FIRST_NODES`` (a whole number of nodes) when set.
    """
    env = os.environ.get("COVERAGE_PLANNER_MAP_FIRST_NODES", "").strip()
    limit = int(env) if env.isdigit() else MAP_FIRST_NODES
    return int(city.net.n_nodes) >= limit


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
    elif kind in ("centers", "population", "districts", "census"):
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
    if lower.endswith(".xlsx"):  # issue 14: a broken or expanding workbook, in the user's language
        try:
            check_xlsx_archive(name, data)
        except ResourceLimitError as exc:
            mb = XLSX_MAX_UNCOMPRESSED_BYTES / 1e6
            raise InputError(t("app.upload.xlsx_too_large", language, name=name, mb=mb)) from exc
        except InputError as exc:
            raise InputError(t("app.upload.xlsx_broken", language, name=name)) from exc
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
        bar.progress(min(max(fraction, 0.0), 1.0), text=f"{tr('data.loading')} {stage(message)}")

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
    ss["loading_name"] = name
    try:
        with capture_warnings():
            city = load_spec(pending)
    except Exception as exc:
        show_error(exc)
        ss.pop("loading_name", None)
        previous: CityInputs | None = ss.get("city_spec")
        if previous is not None:
            notice("info", tr("data.kept", name=ss.get("city_name", previous.osm.name)))
        return
    ss.pop("loading_name", None)
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
        notice(
            "warning",
            tr("data.closures_dropped", n=len(dropped), ids=", ".join(sorted(dropped)[:5])),
        )


# --- scenarios and results --------------------------------------------------------------


def scenarios() -> OrderedDict[str, Scenario]:
    """Return the session's scenarios by name (a lone ``baseline`` at first)."""
    ss = st.session_state
    if "scenarios" not in ss:
        ss["scenarios"] = OrderedDict({BASELINE: Scenario(name=BASELINE)})
        ss["active"] = BASELINE
    result: OrderedDict[str, Scenario] = ss["scenarios"]
    return result


def active() -> Scenario:
    """Return the session's active scenario."""
    return scenarios()[st.session_state["active"]]


def baseline_name() -> str:
    """Return the first scenario's name (the baseline the others are measured from)."""
    return next(iter(scenarios()))


def set_active(s: Scenario) -> None:
    """Store an edit of the active scenario; an edit of the baseline goes into a working copy.

    The baseline is never edited in place: its edit becomes (or replaces) the working
    scenario, which then is the active one (the widgets already show the edit).
    """
    ss = st.session_state
    name = ss["active"]
    if name == baseline_name():
        name, i = WORKING, 2
        while name in scenarios():
            name = f"{WORKING} {i}"
            i += 1
        ss["active"] = name
        ss["active_pick"] = name
    scenarios()[name] = replace(s, name=name)


def scenario_label(name: str) -> str:
    """Return a scenario's name as shown: the baseline and working scenario in the UI language."""
    if name == BASELINE:
        return tr("scenario.baseline")
    if name == WORKING or name.startswith(f"{WORKING} "):
        return tr("scenario.working") + name.removeprefix(WORKING)
    return name


def reset_results() -> None:
    """Forget the session's memoised results (after a new city is loaded)."""
    st.session_state["memo"] = OrderedDict()


def memo_get(store: str, key: Any, make: Callable[[], Any], entries: int = MEMO_ENTRIES) -> Any:
    """Session memo with LRU eviction (`entries` kept): results never leak into other sessions."""
    memo: OrderedDict[Any, Any] = st.session_state.setdefault(store, OrderedDict())
    if key in memo:
        memo.move_to_end(key)
        return memo[key]
    value = make()
    memo[key] = value
    while len(memo) > entries:
        memo.popitem(last=False)
    return value


def rerun_pending() -> bool:
    """Return whether a click (Stop, or any widget) waits for this script run to end.

    Streamlit acts on a click only at the script's next page call; a HiGHS solve makes
    none for up to its time limit. The solver polls this (:func:`coverage.progress.cancellable`)
    and stops within a second. Streamlit has no public call for it; without the private
    request state this says False and the click waits for the solve, as before.
    """
    requests = getattr(get_script_run_ctx(), "script_requests", None)
    state = getattr(requests, "_state", None)
    return state is not None and getattr(state, "name", "CONTINUE") != "CONTINUE"


def _run(
    city: CityData,
    s: Scenario,
    *,
    with_polygons: bool,
    label: str,
    per_center: bool | None = None,
    base: ScenarioResult | None = None,
    city_key: str = "",
    cache_polygons: bool = False,
) -> ScenarioResult:
    """Run `s` on `city` in a status box, stoppable; `base`: its numbers without siting to reuse.

    With `cache_polygons` the service areas are kept in (and read from) the city's cache
    folder, keyed by the network, the centers and the parameters
    (:func:`coverage.pipeline.run`).
    """
    slot = st.empty()  # the status box goes away once the work is done
    stopping = threading.Event()

    def stop_check() -> bool:
        if rerun_pending():
            stopping.set()
        return stopping.is_set()

    with slot.status(label, expanded=False):
        bar = st.progress(0.0)

        def progress(fraction: float, message: str) -> None:
            if not stopping.is_set():  # a page call now would end the run before it returns
                bar.progress(min(max(fraction, 0.0), 1.0), text=stage(message))

        with cancellable(stop_check):
            reuse, rest = None, progress
            if base is not None:
                sets = shared_siting_sets(city, city_key, s, sub_progress(progress, 0.0, 0.7))
                reuse, rest = (
                    pipeline.Reuse(audited=base, siting_sets=sets),
                    sub_progress(progress, 0.7, 1.0),
                )
            res = pipeline.run(
                city,
                s,
                with_polygons=with_polygons,
                per_center_polygons=per_center,
                progress=rest,
                reuse=reuse,
                cache_polygons=cache_polygons,
                numbers_only=not with_polygons,  # the headline's run: the map's builds the areas
            )
        if res.siting is not None and res.siting.stopped:
            # kept for on_stop (the click's callback runs first on the rerun); another
            # click restarts the solve
            st.session_state["stopped_run"] = (s.to_json(), res)
    slot.empty()
    return res


class ResultSlot:
    """One scenario result, computed once and shared read-only by every session.

    Results are frozen; the scenarios themselves stay in each session's state.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.value: ScenarioResult | None = None
        self.elapsed_s = 0.0


@st.cache_resource(max_entries=64, show_spinner=False)
def result_slot(key: str) -> ResultSlot:
    """Return the process-wide slot of the result with hash `key`."""
    return ResultSlot()


#: Results with polygons kept per server (the baseline's and the latest scenarios'): each
#: holds a city's service and uncovered areas, several hundred MB at 300k nodes, and a
#: planner trying speeds would otherwise keep one per speed (6.8 GB after three at 300k).
AREAS_KEPT = 4


@st.cache_resource(max_entries=AREAS_KEPT, show_spinner=False)
def areas_slot(key: str) -> ResultSlot:
    """Return the process-wide slot of the result with polygons with hash `key`."""
    return ResultSlot()


def shared_result(key: tuple[str, str, str], make: Callable[[], ScenarioResult]) -> ScenarioResult:
    """Return the result for `key` (city, scenario JSON, kind), computing it once for all sessions."""
    kept = st.session_state.get("kept_results", {}).get(key)
    if kept is not None:  # a stopped solve this session chose to keep (on_stop)
        return kept  # type: ignore[no-any-return]
    slots = areas_slot if key[2].startswith("areas") else result_slot
    slot = slots(hashlib.sha256(json.dumps(key).encode()).hexdigest())
    with slot.lock:
        if slot.value is None:
            t0 = time.perf_counter()
            value = make()
            if value.siting is not None and value.siting.stopped:
                return value  # never shared: another session's run is not stopped
            slot.value = value
            slot.elapsed_s = time.perf_counter() - t0
        return slot.value


class SetsSlot:
    """The candidates and coverage sets of one city and siting limits, shared read-only."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.value: SitingSets | None = None


@st.cache_resource(max_entries=4, show_spinner=False)
def sets_slot(key: str) -> SetsSlot:
    """Return the process-wide slot of the siting sets with hash `key`."""
    return SetsSlot()


def shared_siting_sets(
    city: CityData, city_key: str, s: Scenario, progress: ProgressFn | None
) -> SitingSets | None:
    """Return the siting sets of `s` on the city (built once per city and limits, for every k).

    ``None`` when `s` proposes no sites or a capacitated siting (which builds its own).
    """
    sp = pipeline.siting_params(s)
    if sp is None or sp.capacitated:
        return None
    key = json.dumps([city_key, list(siting_sets_key(sp, len(city.demand)))])
    slot = sets_slot(hashlib.sha256(key.encode()).hexdigest())
    with slot.lock:
        if slot.value is None:
            slot.value = pipeline.siting_sets_for(city, s, progress)
        return slot.value


def elapsed_s(s: Scenario) -> float:
    """Return how long the numbers (and proposal) of `s` took to compute, in seconds."""
    key = (str(st.session_state.get("city_key", "")), s.to_json(), "numbers")
    return result_slot(hashlib.sha256(json.dumps(key).encode()).hexdigest()).elapsed_s


def has_result(s: Scenario) -> bool:
    """Return whether the numbers of `s` on the session's city are already computed."""
    key = (str(st.session_state.get("city_key", "")), s.to_json(), "numbers")
    if key in st.session_state.get("kept_results", {}):
        return True
    return result_slot(hashlib.sha256(json.dumps(key).encode()).hexdigest()).value is not None


def numbers_for(city: CityData, city_key: str, s: Scenario) -> ScenarioResult:
    """Return the scenario's numbers (and proposed sites), without polygons: fast, shown first."""
    if s.siting is None:
        return shared_result(
            (city_key, s.to_json(), "numbers"),
            lambda: _run(city, s, with_polygons=False, label=tr("running")),
        )
    # a proposal reuses the scenario's own numbers and the coverage sets of any earlier k
    base = numbers_for(city, city_key, replace(s, siting=None))
    return shared_result(
        (city_key, s.to_json(), "numbers"),
        lambda: _run(
            city, s, with_polygons=False, label=tr("opt.running"), base=base, city_key=city_key
        ),
    )


def result_for(city: CityData, city_key: str, s: Scenario) -> ScenarioResult:
    """Numbers plus service-area and uncovered polygons (for the map and downloads).

    The polygons do not depend on a siting request, so they are memoised without it and
    proposing sites never redraws them. Each station's own service areas (one union per
    station and threshold: seconds with the 91 embedded stations) are built only when the
    planner shows them on the map (``own_areas``); the downloads build them on their own
    (:func:`with_own_areas`). The capacity and group results come with the polygons.
    The untouched baseline's areas (what every new session opens on) are kept in the
    city's cache folder: a new server process on a city already seen reads them.
    """
    numbers = numbers_for(city, city_key, s)
    plain = replace(s, siting=None)
    own = bool(st.session_state.get("own_areas"))
    areas = shared_result(
        areas_key(city_key, s),
        lambda: _run(
            city,
            plain,
            with_polygons=True,
            label=tr("running.areas"),
            per_center=None if own else False,
            cache_polygons=plain == Scenario(name=BASELINE),
        ),
    )
    return replace(areas, scenario=s, siting=numbers.siting)


def has_own_areas(res: ScenarioResult) -> bool:
    """Return whether `res` has what the CLI exports: each station's own service areas.

    The audit builds them up to ``PER_CENTER_POLYGONS_MAX`` stations; above, the CLI's
    bundle has the unions only, and so does the app's.
    """
    areas = res.audit.service_areas
    if len(res.centers) == 0 or len(res.centers) > PER_CENTER_POLYGONS_MAX or not len(areas):
        return True
    return bool((areas["center_id"] != ALL_CENTERS).any())


def with_own_areas(city: CityData, res: ScenarioResult) -> ScenarioResult:
    """Return `res` with each station's own service areas, as ``coverage-planner audit`` writes.

    Runs in the download thread on the first click (no page elements): the audit with
    polygons again, this time per station; the proposal is `res`'s.
    """
    if has_own_areas(res):
        return res
    full = pipeline.run(city, replace(res.scenario, siting=None), with_polygons=True)
    return replace(full, scenario=res.scenario, siting=res.siting)


# --- callbacks (run before the script reruns) -------------------------------------------


def on_params() -> None:
    """Copy the speed and threshold widgets into the active scenario."""
    ss = st.session_state
    thresholds = tuple(sorted(float(x) for x in ss["thresholds"])) or (5.0, 15.0)
    s = active()
    audit = replace(s.audit, speed_kmh=float(ss["speed"]), thresholds_min=thresholds)
    # issue 15: distance thresholds and a standard (exclusive with per-level minutes)
    distances = tuple(sorted(float(x) for x in ss.get("distances") or ()))
    standard = picked_standard(ss.get("standard"))
    audit = replace(
        audit,
        thresholds_m=distances,
        standard=standard,
        level_thresholds_min=None if standard is not None else audit.level_thresholds_min,
    )
    set_active(replace(s, audit=audit))


def sync_widgets() -> None:
    """Show the active scenario's parameters in the widgets."""
    ss = st.session_state
    s = active()
    ss["speed"] = float(s.speed_kmh)
    ss["thresholds"] = [float(t) for t in s.thresholds_min]
    ss["distances"] = [float(d) for d in s.audit.thresholds_m]
    ss["standard"] = standard_choice(s.audit.standard)
    cap = s.capacity or CapacityParams()
    ss["household_size"] = float(cap.household_size)
    ss["capacity_standard"] = float(cap.standard_m2_per_100_households)
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


def on_reset() -> None:
    """Make the active scenario the baseline again (same name): no edits, no proposal."""
    ss = st.session_state
    if ss["active"] == baseline_name():
        return
    scenarios()[ss["active"]] = replace(scenarios()[baseline_name()], name=ss["active"])
    ss["accept_ranks"] = []
    sync_widgets()


def on_delete() -> None:
    """Delete the active scenario (never the baseline)."""
    ss = st.session_state
    if len(scenarios()) <= 1 or ss["active"] == baseline_name():
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
    name = str(ss.get("station_name") or "").strip() or tr("edit.default_name", n=len(s.added) + 1)
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
        "time_limit_s": EXACT_SOLVER_S,
    }
    if choice("opt_mode", "k") == "k":
        req = SitingParams(k=int(ss.get("opt_k", 3)), **common)
    else:
        req = SitingParams(target_share=float(ss.get("opt_share_pct", 90)) / 100.0, **common)
    set_active(replace(s, siting=req))


def on_stop() -> None:
    """Keep the stopped solve's best sites, or drop the request when none came back yet.

    The click stops the solver (:func:`rerun_pending`); the run keeps its answer in
    ``stopped_run``, and this callback runs first on the rerun.
    """
    ss = st.session_state
    s = active()
    stopped = ss.pop("stopped_run", None)
    if s.siting is None:
        return
    if stopped is not None and stopped[0] == s.to_json():
        key = (str(ss.get("city_key", "")), s.to_json(), "numbers")
        ss.setdefault("kept_results", {})[key] = stopped[1]
        ss["flash"] = ("info", tr("opt.stopped_kept"))
        return
    scenarios()[ss["active"]] = replace(s, siting=None)
    ss["flash"] = ("info", tr("opt.stopped"))


def on_restore() -> None:
    """Restore every closed center of the active scenario."""
    set_active(replace(active(), closed=()))
    st.session_state["closed"] = []


def renamed(
    s: Scenario, rows: list[dict[str, Any]], edits: Mapping[Any, Mapping[str, Any]], column: str
) -> Scenario:
    """Return `s` with the station names edited in the stations table.

    Parameters
    ----------
    s
        The active scenario.
    rows
        Per table row: ``state`` and ``edit_index`` (position in ``s.added`` or
        ``s.accepted_sites``; -1 for the city's own centers, whose names stay).
    edits
        The data editor's ``edited_rows``: row position → {shown column → new value}.
    column
        The shown name of the name column.
    """
    added, accepted = list(s.added), list(s.accepted_sites)
    for pos, change in edits.items():
        name = str(change.get(column, "")).strip()
        row = rows[int(pos)] if int(pos) < len(rows) else None
        if not name or row is None or int(row["edit_index"]) < 0:
            continue
        target = added if row["state"] == "added" else accepted
        i = int(row["edit_index"])
        if i < len(target):
            target[i] = replace(target[i], name=name)
    return replace(s, added=tuple(added), accepted_sites=tuple(accepted))


def on_names() -> None:
    """Copy the names edited in the stations table into the active scenario."""
    ss = st.session_state
    edits = (ss.get("stations_editor") or {}).get("edited_rows", {})
    s = active()
    # the editor reports edits by the shown column name
    new = renamed(s, ss.get("stations_rows", []), edits, station_labels(lang())["name"])
    if new != s:
        set_active(new)


def on_accept(sites: list[dict[str, Any]]) -> None:
    """Add the picked proposed sites (rows of :func:`coverage.tables.sites_frame`) as stations."""
    ss = st.session_state
    picked = set(ss.get("accept_ranks") or [])
    s = active()
    rows = [r for r in sites if int(r["rank"]) in picked]
    first = len(s.accepted_sites) + 1  # accepted sites are numbered on, never "#1" twice
    new = tuple(
        AddedStation(
            lon=float(r["lon"]),
            lat=float(r["lat"]),
            name=tr("opt.accepted_name", rank=first + i),
        )
        for i, r in enumerate(rows)
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


def translated(prefix: str, obj: object) -> str:
    """Return a library error or warning in the session's language, without internal paths.

    An object with a ``code`` that the label table translates (``app.<prefix>.<code>``) is
    shown in the user's language with its ``params``; any other keeps its message. Either
    way internal paths (``/vsimem/…``, temporary files, the hash names of saved uploads) are
    replaced by the name of the file the user uploaded.
    """
    name = str(st.session_state.get("loading_name") or st.session_state.get("city_name") or "")

    def clean(text: str) -> str:
        return INTERNAL_PATH.sub(name or "…", text)

    code = getattr(obj, "code", None)
    key = f"app.{prefix}.{code}"
    if code and key in MESSAGES:
        params = {
            k: clean(v) if isinstance(v, str) else v for k, v in getattr(obj, "params", {}).items()
        }
        try:
            return t(key, lang(), **params)
        except (KeyError, IndexError, ValueError):
            logger.info("%s %s lacks parameters for its translation", prefix, code)
    return clean(str(obj))


def error_text(exc: PlannerError) -> str:
    """Return a library error in the session's language (:func:`translated`)."""
    return translated("err", exc)


def show_error(exc: BaseException) -> None:
    """Explain an error in the page; never a traceback."""
    if isinstance(exc, PlannerError):
        st.error(f"{tr('err.input', msg=error_text(exc))}\n\n{tr('err.hint')}")
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
    quiet = (DeprecationWarning, PendingDeprecationWarning, FutureWarning, ResourceWarning)
    for w in log:
        if not issubclass(w.category, quiet):
            notice("warning", tr("warn", msg=warning_text(w.message)))


def notice(kind: Literal["info", "warning", "success"], text: str) -> None:
    """Show a one-shot message once per run; kept for the next run if this one is cut short.

    A run stopped for a rerun (:func:`main`'s after the service areas are built, or a click
    mid-run) is followed by one that reads cached results, which warn no more, and a
    callback's flash is gone: :func:`page_header` shows the messages again.
    """
    shown = st.session_state.setdefault("notices", [])
    if [kind, text] in shown:
        return
    shown.append([kind, text])
    getattr(st, kind)(text)


def warning_text(message: Warning | str) -> str:
    """Return a library warning in the session's language (:func:`translated`)."""
    return translated("warn", message)


# --- map --------------------------------------------------------------------------------


@st.cache_resource(max_entries=4, show_spinner=False)
def base_layers(city_key: str, _city: CityData) -> tuple[Any, Any]:
    """Return the city's light street lines and place labels (computed once per city)."""
    streets = street_frame(_city.net)
    places = _city.places  # cached with the city: a warm load (no OSM read) still has them
    if places is None:
        ex = _city.extract
        places = place_frame([] if ex is None else [ex.residential, ex.boundaries])
    if len(places):
        places = places.to_crs(_city.net.crs)
    return streets, places


#: The tiles choice → folium tiles of :func:`coverage.maps.coverage_map` (none: offline streets).
TILE_NAMES: dict[str, Literal["openstreetmap", "light"]] = {
    "osm": "openstreetmap",
    "light": "light",
}


def build_map(city: CityData, res: ScenarioResult, tiles: str) -> folium.Map:
    """Return the scenario's map, its Leaflet taken from ./static (no CDN).

    The stations are drawn by state (existing, added, accepted, closed); the network's
    streets and the file's place names are a light vector base that reads offline.
    """
    a = res.audit
    streets, places = base_layers(str(st.session_state.get("city_key", "")), city)
    cap_res = getattr(res, "capacity", None)  # issue 15: when the centers carry floor areas
    layers = MapLayers(
        centers=station_states(city.centers, res),
        streets=streets,
        places=places if len(places) else None,
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
        tiles=TILE_NAMES.get(tiles),
        thresholds_min=tuple(res.scenario.thresholds_min),
    )
    return use_local_assets(m, base_url=STATIC_URL)


# --- numbers ----------------------------------------------------------------------------


def share_delta(share: float, before: float | None) -> str | None:
    """Return a metric's change from the baseline, or None (nothing shown) when there is none."""
    if before is None or abs(share - before) < NO_CHANGE_SHARE:
        return None
    return share_change(share - before, lang())  # the tables' wording, one place


def headline(res: ScenarioResult, base: ScenarioResult | None, source: str = "") -> None:
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
    speed = float(res.scenario.speed_kmh)
    cols = st.columns(len(ts) + 2)
    for col, minutes in zip(cols, ts, strict=False):
        key = share_column(minutes)
        col.metric(
            tr("metric.share", m=minutes),
            percent(numbers[key]),
            delta=share_delta(numbers[key], before.get(key)),
            help=tr("help.coverage", m=minutes, v=speed, source=source),
        )
    tmax = max(ts)
    cols[-2].metric(
        tr("metric.uncovered", m=tmax),
        f"{numbers[uncovered_column(tmax)]:,.0f}",
        help=tr("help.uncovered", m=tmax, source=source),
    )
    cols[-1].metric(tr("metric.centers"), f"{int(numbers['centers'])}", help=tr("help.centers"))
    if res.siting is not None:
        st.caption(optimizer_answer(res))
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


def exact_time(res: ScenarioResult) -> str:
    """Return " took X s (limit 60 s)" for an exact run, else ""."""
    if res.siting is not None and res.siting.stopped:
        return " " + tr("opt.stopped_note")
    if res.siting is None or not res.siting.params.exact:
        return ""
    return " " + tr("opt.elapsed", s=elapsed_s(res.scenario), limit=EXACT_TIME_LIMIT_S)


def optimizer_answer(res: ScenarioResult) -> str:
    """Return the optimizer's answer in words: how many stations, the shares, what is proven."""
    si = res.siting
    assert si is not None
    n = len(si.sites)
    common = {
        "n": n,
        "m": float(si.params.minutes),
        "before": percent(si.share_before),
        "after": percent(si.share_after),
        "method": method_label(si.method, lang()),
    }
    if si.params.target_share is None:
        return tr("opt.answer_k", bound=percent(si.upper_bound_share), **common) + exact_time(res)
    target = percent(si.params.target_share)
    if si.target_met is False:
        return tr("opt.not_met", target=target, n=n, after=common["after"])
    text = tr("opt.answer_share", target=target, **common)
    proof = tr("opt.proven", n=n) if si.min_sites_proven else tr("opt.not_proven", n=n)
    return f"{text} {proof}{exact_time(res)}"


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
    # issue 14: the documents
    (
        export.TABLES_XLSX,
        "export.tables",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    (export.MAP_PNG, "export.map_png", "image/png"),
    (export.MAP_PDF, "export.map_pdf", "application/pdf"),
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
        File name → bytes (:func:`coverage.export.output_files`); ``summary.csv`` is the
        planner's form (:func:`coverage.export.summary_csv_bytes` with `language`).
    """
    files = export.output_files(
        res,
        city,
        title=t("report.title", language),
        extra={"scenario": res.scenario.to_dict()},
        lang=language,
    )
    # the planner's summary.csv: labelled columns, whole residents, shares in percent
    files[export.SUMMARY_CSV] = export.summary_csv_bytes(
        res.audit, scenario=res.scenario.name, lang=language
    )
    return files


class LazyValue:
    """A value computed on first use, once, under a lock (from any thread)."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._lock = threading.Lock()
        self._value: Any = None
        self._done = False

    def get(self) -> Any:
        """Return the value, computing it on the first call."""
        with self._lock:
            if not self._done:
                self._value, self._done = self._make(), True
        return self._value


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
    # each station's own areas: one audit per scenario, whichever languages are exported
    full: LazyValue = memo_get(
        "exports_full",
        (city_key, res.scenario.to_json()),
        lambda: LazyValue(lambda: with_own_areas(city, res)),
        EXPORTS_KEPT,
    )
    lazy: LazyFiles = memo_get(
        "exports",
        (city_key, res.scenario.to_json(), language),
        lambda: LazyFiles(lambda: export_files(city, full.get(), language)),
        EXPORTS_KEPT,
    )
    cols = st.columns(3)
    i = 0
    for name, label, mime in DOWNLOADS:
        if name == export.PROPOSED_SITES_GEOJSON and res.siting is None:
            continue
        text = tr("export.layer", layer=tr(label)) if name.endswith(".geojson") else tr(label)
        cols[i % 3].download_button(
            text,
            data=functools.partial(lazy.get, name),
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
    return district_view(df, res.scenario.thresholds_min, lang())


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
            ["default", "osm", "file"],
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
                select_all=False,  # Streamlit labels its bulk option in English only
            )
        elif centers_src == "file":
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
            st.text_input(  # issue 15: the centers' floor area, for the capacity audit
                tr("data.floor_column"),
                value="",
                key="floor_column",
                help=tr("data.floor_column_help"),
            )
        pop_file = st.file_uploader(tr("data.population"), key="pop_upload")
        st.text_input(tr("data.population_column"), value="population", key="pop_column")
        st.text_input(  # issue 15: population groups of the population file
            tr("data.group_columns"), value="", key="group_columns", help=tr("data.group_help")
        )
        census_file = st.file_uploader(tr("data.census"), key="census_upload")  # issue 14
        st.text_input(tr("data.census_column"), value="", key="census_column")
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
                "census": (census_file.name, census_file.getvalue())
                if census_file is not None
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
        spec = city_inputs(
            osm_path,
            center_tags=tuple(ss.get("tags") or DEFAULT_TAGS),
            centers=uploads["centers"],
            crs=choice("centers_crs", "wgs84"),
            population=uploads["population"],
            population_column=str(ss.get("pop_column") or "population"),
            districts=uploads["districts"],
            district_column=str(ss.get("dist_column") or "name"),
        )
        census = (
            accept_upload("census", *req["census"], language=lang()) if req.get("census") else None
        )
        floor = str(ss.get("floor_column") or "").strip() or None
        groups = tuple(
            g.strip() for g in re.split(r"[,，、]", str(ss.get("group_columns") or "")) if g.strip()
        )
        ss["pending_spec"] = replace(
            spec,
            center_columns=replace(spec.center_columns, floor_area=floor),
            population_groups=groups,
            osm_centers=req.get("centers_src") == "osm",
            census=None if census is None else FileInput(census.data, census.name),
            census_column=str(ss.get("census_column") or "").strip() or None,
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
    sb.selectbox(
        tr("scenario.active"),
        names,
        key="active_pick",
        on_change=on_switch,
        format_func=scenario_label,
    )
    if ss["active"] == names[0]:
        sb.caption(tr("scenario.baseline_note"))
    else:
        sb.button(tr("scenario.reset"), key="reset_scenario", on_click=on_reset)
    c1, c2 = sb.columns([3, 2])
    c1.text_input(
        tr("scenario.new_name"),
        key="new_name",
        label_visibility="collapsed",
        placeholder=tr("scenario.new_name"),
    )
    c2.button(tr("scenario.copy"), key="copy_scenario", on_click=on_copy)
    if len(names) > 1 and ss["active"] != names[0]:
        sb.button(tr("scenario.delete"), key="delete_scenario", on_click=on_delete)
    sb.file_uploader(
        tr("scenario.load"), type=["json"], key="scenario_upload", on_change=on_scenario_upload
    )


def sidebar_params(city: CityData) -> None:
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
        select_all=False,  # Streamlit labels its bulk option in English only
    )
    sidebar_standard(s)
    sidebar_capacity(s, city)
    sidebar_group_speeds(s, city)
    sb.radio(
        tr("tiles"),
        ["osm", "light", "streets"],
        format_func=lambda v: tr(f"tiles.{v}"),
        key="tiles",
        horizontal=True,
    )
    sb.checkbox(tr("own_areas"), key="own_areas", help=tr("own_areas.help"))


def picked_standard(value: Any) -> Standard | None:
    """Return the preset the standard widget shows (by key or, after a relabel, by title)."""
    if value == LOCAL_STANDARD:
        return local_standard()
    by_title = {p.title: p for p in PRESETS.values()}
    return PRESETS.get(str(value)) or by_title.get(str(value))


def sidebar_standard(s: Scenario) -> None:
    """Show the distance thresholds and the planning standard of the active scenario (issue 15)."""
    ss = st.session_state
    sb = st.sidebar
    ss.setdefault("distances", [float(d) for d in s.audit.thresholds_m])
    ss.setdefault("standard", standard_choice(s.audit.standard))
    sb.multiselect(
        tr("std.distances"),
        sorted({*DISTANCE_CHOICES_M, *s.audit.thresholds_m}),
        key="distances",
        format_func=lambda d: f"{d:g} m",
        placeholder=tr("choose"),
        on_change=on_params,
        select_all=False,  # Streamlit labels its bulk option in English only
    )
    sb.selectbox(
        tr("std.standard"),
        ["", *PRESETS, *standard_file_option()],
        format_func=standard_labeller(),
        key="standard",
        on_change=on_params,
    )
    sidebar_standard_file()


# --- issue 15: a local standard file next to the presets ---------------------------------

#: The standard widget's value for the local standard read from an uploaded file.
LOCAL_STANDARD = "__local__"


def local_standard() -> Standard | None:
    """Return the local standard of this session (the last file read), if any."""
    std = st.session_state.get("standard_local")
    return std if isinstance(std, Standard) else None


def standard_choice(std: Standard | None) -> str:
    """Return the standard widget's value for ``std``: a preset key, the local entry, or ``""``."""
    if std is None:
        return ""
    if PRESETS.get(std.key) == std:
        return std.key
    st.session_state["standard_local"] = std  # a scenario's own (file) standard
    return LOCAL_STANDARD


def standard_file_option() -> list[str]:
    """Return the local standard's entry for the standard widget (none before a file is read)."""
    return [LOCAL_STANDARD] if local_standard() is not None else []


def standard_labeller() -> Callable[[str], str]:
    """Return the labels of the standard widget's entries (fixed now: no session lookups later)."""
    std = local_standard()
    local = tr("std.file_option", title=std.title if std is not None else "")
    none = tr("std.none")
    return lambda key: local if key == LOCAL_STANDARD else (PRESETS[key].title if key else none)


def on_standard_upload() -> None:
    """Queue the uploaded standard file (read on the next run, as tests queue one)."""
    up = st.session_state.get("standard_upload")
    if up is not None:
        st.session_state["pending_standard"] = (str(up.name), bytes(up.getvalue()))


def handle_pending_standard() -> None:
    """Read ``session_state['pending_standard']`` (file name, bytes) and judge the scenario by it.

    A file that does not parse or validate is explained in the session's language
    (its ``code`` and ``params``, the file's own name) and changes nothing.
    """
    ss = st.session_state
    pending = ss.pop("pending_standard", None)
    if not pending:
        return
    name, data = pending
    try:
        std = standard_from_bytes(data, name=str(name))
    except PlannerError as exc:
        show_error(exc)
        return
    ss["standard_local"] = std
    ss["standard_local_name"] = Path(str(name)).name
    ss["standard"] = LOCAL_STANDARD
    s = active()
    set_active(replace(s, audit=replace(s.audit, standard=std, level_thresholds_min=None)))


def sidebar_standard_file() -> None:
    """Show the uploader of a local standard file (TOML / JSON / CSV, as ``--standard FILE``)."""
    ss = st.session_state
    sb = st.sidebar
    sb.file_uploader(
        tr("std.file"),
        type=["toml", "json", "csv"],
        key="standard_upload",
        on_change=on_standard_upload,
        help=tr("std.file_help"),
    )
    std = local_standard()
    if std is not None and ss.get("standard") == LOCAL_STANDARD:
        names = "、" if lang() == "zh" else ", "
        sb.caption(
            tr(
                "std.file_loaded",
                name=str(ss.get("standard_local_name") or std.key),
                levels=len(std.circles),
                names=names.join(map(circle_label, std.circles)),
            )
        )


def circle_label(circle: Any) -> str:
    """Return a level of a local standard as the tables name it (街道 for ``street``), else its name."""
    key = f"table.level.{circle.key}"
    if circle.name == circle.key and key in MESSAGES:
        return t(key, lang())
    return str(circle.name)


# --- issue 15: walking speed per population group ----------------------------------------


def group_speed_key(name: str) -> str:
    """Return the widget key of a group's walking speed."""
    return f"group_speed::{name}"


def sidebar_group_speeds(s: Scenario, city: CityData) -> None:
    """Show one walking speed per population group of the city (issue 15), with its default's source."""
    names = group_names(city.demand)
    if not names:
        return
    ss = st.session_state
    with st.sidebar.expander(tr("grpspeed.title"), expanded=bool(s.groups.speeds_kmh)):
        st.caption(tr("grpspeed.caption", older=OLDER_SPEED_KMH))
        for name in names:
            default = GroupParams().speed_of(name, s.speed_kmh)
            ss[group_speed_key(name)] = float(s.groups.speed_of(name, s.speed_kmh))
            older = bool(OLDER_PATTERN.search(name))
            st.number_input(
                tr("grpspeed.speed", group=name),
                min_value=0.5,
                max_value=30.0,
                step=0.1,
                format="%.1f",
                key=group_speed_key(name),
                on_change=on_group_speed,
                args=(name,),
                help=tr("grpspeed.help_older" if older else "grpspeed.help", v=default),
            )


def on_group_speed(name: str) -> None:
    """Copy a group's walking speed into the active scenario (only when it is not the default)."""
    s = active()
    value = float(st.session_state[group_speed_key(name)])
    speeds = dict(s.groups.speeds_kmh)
    if abs(value - GroupParams().speed_of(name, s.speed_kmh)) < 1e-9:
        speeds.pop(name, None)
    else:
        speeds[name] = value
    set_active(replace(s, groups=GroupParams(speeds)))


def compliance_section(res: ScenarioResult) -> None:
    """Show the per-level, per-district and per-group tables (issue 15), labelled."""
    groups = getattr(res, "groups", None)
    if groups is not None and len(groups):
        st.subheader(tr("groups.title"))
        st.caption(tr("groups.help"))
        st.dataframe(groups_view(groups, lang()), hide_index=True, key="groups_table")
    if res.audit.params.standard is None:
        return
    st.subheader(tr("std.levels"))
    st.dataframe(
        standard_view(res.audit.standard_table, lang()), hide_index=True, key="standard_table"
    )
    if res.compliance is not None:
        st.subheader(tr("std.compliance"))
        st.caption(tr("std.compliance_help"))
        st.dataframe(
            compliance_view(res.compliance, lang()), hide_index=True, key="compliance_table"
        )


def sidebar_capacity(s: Scenario, city: CityData) -> None:
    """Show the floor-area capacity parameters of the active scenario (issue 15).

    The capacity audit needs the centers' floor areas (the centers file's floor-area
    column); without them the widgets are disabled and say how to get them.
    """
    ss = st.session_state
    cap = s.capacity or CapacityParams()
    ss.setdefault("household_size", float(cap.household_size))
    ss.setdefault("capacity_standard", float(cap.standard_m2_per_100_households))
    has_floor = FLOOR_AREA_M2 in city.centers.columns and bool(
        city.centers[FLOOR_AREA_M2].notna().any()
    )
    with st.sidebar.expander(tr("cap.title"), expanded=s.capacity is not None):
        st.caption(tr("cap.help") if has_floor else tr("cap.no_floor"))
        st.number_input(
            tr("cap.household_size"),
            min_value=0.5,
            max_value=20.0,
            step=0.01,
            format="%.2f",
            key="household_size",
            on_change=on_capacity,
            disabled=not has_floor,
            help=tr("cap.household_size_help", v=DEFAULT_HOUSEHOLD_SIZE),
        )
        st.number_input(
            tr("cap.standard"),
            min_value=1.0,
            max_value=1000.0,
            step=1.0,
            format="%.0f",
            key="capacity_standard",
            on_change=on_capacity,
            disabled=not has_floor,
            help=tr("cap.standard_help", v=DEFAULT_STANDARD_M2_PER_100_HOUSEHOLDS),
        )


def on_capacity() -> None:
    """Copy the capacity widgets into the active scenario (its capacity audit then runs)."""
    ss = st.session_state
    s = active()
    cap = replace(
        s.capacity or CapacityParams(),
        household_size=float(ss["household_size"]),
        standard_m2_per_100_households=float(ss["capacity_standard"]),
    )
    set_active(replace(s, capacity=cap))


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
    if s.closed:
        # above the list, not below it: the focused list wraps its tags onto a second row
        # and shrinks back when the click on this button blurs it, so a button below moved
        # up ~30 px between mouse-down and mouse-up and the first click was lost
        sb.button(tr("edit.restore"), key="restore_closed", on_click=on_restore)
    sb.multiselect(
        tr("edit.close"),
        list(labels),
        format_func=lambda c: labels.get(c, c),
        key="closed",
        placeholder=tr("choose"),
        on_change=on_close,
        select_all=False,  # Streamlit labels its bulk option in English only
    )


def sidebar_optimizer() -> Any:
    """Show the optimizer panel: k sites or a target share, threshold, exact mode, run.

    Returns the placeholder of the Stop button, shown while a proposal is being computed
    (the page empties it once the proposal is there).
    """
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
    if choice("opt_mode", "k") == "k":
        sb.number_input(tr("opt.k"), min_value=1, max_value=50, value=3, step=1, key="opt_k")
    else:
        sb.slider(
            tr("opt.share_pct"), 50, 100, value=90, step=1, format="%d%%", key="opt_share_pct"
        )
    sb.selectbox(tr("opt.minutes"), sorted(s.thresholds_min, reverse=True), key="opt_minutes")
    sb.checkbox(
        tr("opt.exact", s=EXACT_TIME_LIMIT_S),
        key="opt_exact",
        help=f"{tr('opt.exact_help')} {tr('opt.budget', s=EXACT_TIME_LIMIT_S)}",
    )
    sb.button(tr("opt.run"), key="run_optimizer", on_click=on_optimize, type="primary")
    stop = sb.empty()
    if s.siting is not None and not has_result(s):
        # drawn before the solve starts: a click interrupts the run, then on_stop drops it
        stop.button(tr("opt.stop"), key="stop_optimizer", on_click=on_stop)
    return stop


def sidebar_scenarios(city: CityData) -> Any:
    """Show the scenario sidebar: picker, parameters, station editor, optimizer.

    Returns the optimizer's Stop-button placeholder (:func:`sidebar_optimizer`).
    """
    sidebar_scenario_picker()
    sidebar_params(city)
    sidebar_edit(city)
    return sidebar_optimizer()


#: The map's click fields (streamlit-folium): a click on empty map, and a click on a layer.
#: Leaflet stops a click that opens a layer's popup (a station, a residential cell, an
#: uncovered area) before the map sees it, so such a click arrives only as the second.
CLICK_FIELDS: tuple[str, ...] = ("last_clicked", "last_object_clicked")


def read_click() -> None:
    """Pick up the map's last click (the component's value) before widgets draw."""
    ss = st.session_state
    value = ss.get("map")
    if not isinstance(value, Mapping):
        return
    for field in CLICK_FIELDS:
        click = value.get(field)
        if click and click != ss.get(f"{field}_seen"):
            ss[f"{field}_seen"] = click
            ss["clicked"] = {"lat": float(click["lat"]), "lng": float(click["lng"])}


def uploader_css() -> str:
    """Return the style that shows the file uploaders' own texts in the session's language.

    Streamlit 1.67 writes "Upload" and "200MB per file" into every uploader with no way to
    translate them; the style hides those texts and draws ours, with the limit that applies
    (:func:`max_upload_mb`, which may be below Streamlit's own).
    """
    browse = tr("upload.browse").replace('"', "")
    drop = tr("upload.drop", mb=max_upload_mb()).replace('"', "")
    zone = '[data-testid="stFileUploaderDropzone"]'
    return (
        "<style>"
        f"{zone} button [data-testid='stMarkdownContainer'] p {{font-size: 0 !important;}}"
        f"{zone} button [data-testid='stMarkdownContainer'] p::after "
        f'{{content: "{browse}"; font-size: 0.875rem;}}'
        f"{zone} [data-testid='stFileUploaderDropzoneInstructions'] * "
        "{white-space: normal !important; overflow: visible !important;}"
        f"{zone} [data-testid='stFileUploaderDropzoneInstructions'] span {{font-size: 0 !important;}}"
        f"{zone} [data-testid='stFileUploaderDropzoneInstructions'] span::after "
        f'{{content: "{drop}"; font-size: 0.8rem;}}'
        "</style>"
    )


def page_header() -> None:
    """Set up the page: configuration, map assets, language picker, title, flash message."""
    st.set_page_config(page_title="Coverage Planner", page_icon="🗺️", layout="wide")
    ensure_static()
    keep_choices()
    st.html(uploader_css())
    st.sidebar.radio(
        tr("lang"),
        list(LANGS),
        format_func=lambda v: LANG_NAMES[v],
        key="lang",
        horizontal=True,
    )
    st.title(tr("title"))
    ss = st.session_state
    # a run that did not reach its end (the page's own rerun, or a click mid-run) showed
    # its messages to no one for long: they are shown again
    carried = [] if ss.get("run_ended", True) else ss.get("notices", [])
    ss["notices"], ss["run_ended"] = [], False
    flash = ss.pop("flash", None)
    with st.container():  # one element whatever it holds: the map below keeps its place
        for kind, text in [*carried, *([flash] if flash else [])]:
            notice(kind, text)


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


def city_name(city: CityData) -> str:
    """Return the loaded OSM file's own name (an upload is saved under its hash)."""
    return str(st.session_state.get("city_name") or city.source_name)


def population_source(city: CityData) -> str:
    """Return where the residents come from, in the session's language."""
    model = dict(city.population_model or {})
    source = str(model.get("source", "osm"))
    file = Path(str(model.get("file") or "")).name
    if source == "file":
        return tr("pop.file", file=file, column=str(model.get("column", "")))
    if source == "raster":
        return tr("pop.raster", file=file)
    return tr("pop.osm")


def city_caption(city: CityData) -> None:
    """Say which data is loaded, and why OSM-tagged centers may understate coverage."""
    st.caption(
        tr(
            "data.loaded",
            name=city_name(city),
            nodes=int(city.net.n_nodes),
            centers=len(city.centers),
            units=len(city.demand),
            pop=float(city.demand["population"].sum()) if "population" in city.demand else 0.0,
        )
    )
    st.caption(centers_source_label(city.centers_source, lang()))
    if "source" in city.centers and (city.centers["source"] == "osm").all():
        st.caption(tr("data.osm_hint", n=len(city.centers)))


def areas_key(city_key: str, s: Scenario) -> tuple[str, str, str]:
    """Return the key of the service and uncovered areas of `s` (:func:`result_for`)."""
    own = bool(st.session_state.get("own_areas"))
    plain = replace(s, siting=None)
    return (city_key, plain.to_json(), "areas" if own else "areas:unions")


def has_areas(city_key: str, s: Scenario) -> bool:
    """Return whether the areas of `s` are in memory (then the map is drawn with them at once)."""
    key = areas_key(city_key, s)
    digest = hashlib.sha256(json.dumps(key).encode()).hexdigest()
    return areas_slot(digest).value is not None  # a slot made here is filled next


def page_result(
    city: CityData, city_key: str, s: Scenario
) -> tuple[ScenarioResult, ScenarioResult | None] | None:
    """Show the headline numbers of `s`; return them and its full result if its areas are built.

    Returns
    -------
    tuple or None
        The numbers, and the result with polygons (None while they are to be built); None
        (the error is shown) when the scenario cannot be computed.
    """
    try:
        # one capture: the numbers and the polygons runs warn about the same oddities once
        with capture_warnings():
            numbers = numbers_for(city, city_key, s)
            first = next(iter(scenarios().values()))
            base = numbers_for(city, city_key, first) if first is not s else None
            headline(numbers, base, population_source(city))  # numbers first
            later = map_first(city) and not has_areas(city_key, s)
            full = None if later else result_for(city, city_key, s)
            return numbers, full
    except Exception as exc:
        show_error(exc)
        return None


def build_areas(city: CityData, city_key: str, s: Scenario) -> bool:
    """Build the areas of `s` in a status box below the drawn map; return whether they are built.

    :func:`main` then reruns the page, which draws the map and the tabs with them.
    """
    try:
        with capture_warnings():
            result_for(city, city_key, s)
    except Exception as exc:
        show_error(exc)
        return False
    return True


def map_section(city: CityData, city_key: str, s: Scenario, res: ScenarioResult) -> None:
    """Show the coverage map: a fresh folium map on every rerun, built from the cached result.

    streamlit-folium mutates the figure while it renders it, so a Map object handed to
    `st_folium` a second time renders broken JavaScript and a 0 px iframe
    (docs/WALKTHROUGH.md step 3). Only results are cached; the Map is rebuilt each time.
    """
    tiles = choice("tiles", "osm")
    try:
        with capture_warnings():
            m = build_map(city, res, tiles)
    except Exception as exc:
        show_error(exc)
        m = None
    if m is not None:
        st_folium(
            m, key="map", height=560, use_container_width=True, returned_objects=list(CLICK_FIELDS)
        )


def sites_tab(s: Scenario, res: ScenarioResult) -> None:
    """Show the proposed sites with the buttons to accept some or reject the proposal."""
    if s.accepted_sites:
        st.caption(tr("opt.accepted", n=len(s.accepted_sites)))
    if res.siting is None or len(res.siting.sites) == 0:
        st.info(tr("opt.none"))
        return
    df = sites_frame(res.siting.sites)
    st.dataframe(sites_view(df, lang()), hide_index=True, key="sites_table")
    records = df.to_dict("records")
    st.multiselect(
        tr("opt.accept_pick"),
        [int(r) for r in df["rank"]],
        key="accept_ranks",
        placeholder=tr("choose"),
        select_all=False,  # Streamlit labels its bulk option in English only
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
    curve = minutes_curve(res.audit.demand) * 100.0
    st.line_chart(
        curve.rename(columns={"share": tr("curve.y_share")}),
        x_label=tr("curve.x_minutes"),
        y_label=tr("curve.y_share"),
    )
    if res.siting is not None and len(res.siting.curve):
        st.caption(tr("curve.sites"))
        label = tr("curve.y_sites", m=float(res.siting.params.minutes))
        sites = res.siting.curve.set_index("k")[["share"]] * 100.0
        st.line_chart(
            sites.rename(columns={"share": label}),
            x_label=tr("curve.x_sites"),
            y_label=label,
        )


def stations_tab(city: CityData, res: ScenarioResult) -> None:
    """Show every station with its state; added and accepted stations' names are editable."""
    states = station_states(city.centers, res)
    table = stations_view(states, lang())
    st.session_state["stations_rows"] = [
        {"edit_index": int(i), "state": str(state)}
        for i, state in zip(table["edit_index"], states["state"], strict=True)
    ]
    st.caption(tr("stations.hint"))
    shown = table.drop(columns=["edit_index"]).rename(columns=station_labels(lang()))
    locked = [c for c in shown.columns if c != station_labels(lang())["name"]]
    st.data_editor(
        shown,
        hide_index=True,
        disabled=locked,
        key="stations_editor",
        on_change=on_names,
    )


def districts_tab(city: CityData, res: ScenarioResult) -> None:
    """Show coverage per district, or how to get it."""
    if city.districts is None:
        st.info(tr("districts.none"))
        compliance_section(res)
        return
    try:
        st.dataframe(district_table(city, res), hide_index=True, key="district_table")
        compliance_section(res)
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
        format_func=scenario_label,
        select_all=False,  # Streamlit labels its bulk option in English only
    )
    if len(picked) < 2:
        return
    try:
        with capture_warnings():
            results = {n: numbers_for(city, city_key, scenarios()[n]) for n in picked}
        table = compare_view(results, lang())
        table.index = [scenario_label(str(n)) for n in table.index]
        st.dataframe(table.rename_axis(tr("scenario")), key="compare_table")
        ts = sorted({float(m) for r in results.values() for m in r.scenario.thresholds_min})
        language = lang()
        st.download_button(  # issue 14: the comparison as a workbook, built on the click
            tr("export.compare_xlsx"),
            data=functools.partial(
                export.comparison_workbook_bytes, compare_scenarios(results), ts, lang=language
            ),
            file_name="scenarios.xlsx",
            mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            key="dl_compare_xlsx",
            on_click="ignore",
        )
    except Exception as exc:
        show_error(exc)


def result_tabs(city: CityData, city_key: str, s: Scenario, res: ScenarioResult) -> None:
    """Show the tabs below the map: sites, curves, districts, comparison, downloads."""
    tabs = st.tabs(
        [
            tr("tab.sites"),
            tr("tab.stations"),
            tr("tab.curve"),
            tr("tab.districts"),
            tr("tab.compare"),
            tr("tab.export"),
        ]
    )
    with tabs[0]:
        sites_tab(s, res)
    with tabs[1]:
        stations_tab(city, res)
    with tabs[2]:
        curve_tab(res)
    with tabs[3]:
        districts_tab(city, res)
    with tabs[4]:
        compare_tab(city, city_key)
    with tabs[5]:
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
    handle_pending_standard()
    stop = sidebar_scenarios(city)
    city_caption(city)
    s = active()
    with st.container():  # what varies between reruns stays in it: the map keeps its place
        got = page_result(city, city_key, s)
    numbers, res = (None, None) if got is None else got
    if numbers is None or numbers.siting is None or not numbers.siting.stopped:
        stop.empty()  # the proposal is computed (or failed): nothing left to stop
    if numbers is None:
        return
    map_section(city, city_key, s, numbers if res is None else res)
    building = st.container()  # always drawn: the tabs below keep their place (and tab)
    if res is None:
        # the map came at once, from the numbers (stations, walking minutes); the service
        # and uncovered areas are built below it, and the rerun draws them with the tabs
        with building:
            built = build_areas(city, city_key, s)
        if built:
            st.rerun()  # the notices are shown again (page_header)
        return
    result_tabs(city, city_key, s, res)


def run() -> None:
    """Run the page; an unexpected error is shown and the session survives."""
    try:
        main()
    except Exception as exc:  # last resort: the session survives, the user sees what to do
        show_error(exc)
    # not reached when Streamlit stops the run for a rerun (a BaseException)
    st.session_state["run_ended"] = True


if __name__ == "__main__":  # `streamlit run app.py` and AppTest; importing runs nothing
    run()
