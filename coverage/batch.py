"""Batch audits: one coverage audit per district, run serially or on Dask.

The city is loaded once by the driver (network from the disk cache, centers and
demand computed once) and written to a work folder as files: the network as the
``.npz`` cache format, centers and demand as GeoParquet. Each district task gets
paths, not objects; a worker process loads each file once and keeps it
(:func:`_city_parts`), so a 100,000-node network is never pickled into tasks.

Border effects: the driver assigns every demand unit to the first district
holding its representative point, so each resident is counted once. A
district's audit then uses the part of the network and the centers within
``buffer_m`` of the district (the longest threshold's walking distance plus a
margin). A walk of length ``D`` from a resident, access legs included, never
leaves the disc of radius ``D`` around the resident, so every path that decides
coverage lies in the buffer and the clipped search gives the same minutes as a
search on the whole city, up to the longest threshold (docs/BATCH.md).

Outputs: ``OUT/<district>/`` holds the audit output contract
(:func:`coverage.export.output_files`) plus ``batch.json`` (the input key and
checksums of the files, for resuming); ``OUT`` holds ``summary.csv``,
``summary.json``, ``districts.geojson`` and ``report.html``. Every folder and
file is written all-or-nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import json
import logging
import math
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None  # type: ignore[assignment]

from coverage import export, i18n, pipeline
from coverage.capacity import compliance_params
from coverage.errors import InputError
from coverage.fileio import atomic_write, atomic_write_bytes, json_bytes, jsonable, strip_controls
from coverage.inputs import (
    DISTRICT,
    CityData,
    CityInputs,
    check_inputs,
    districts_from_osm,
    load_city,
    normalise_districts,
)
from coverage.names import level_covered_column, share_column, threshold_key, uncovered_column
from coverage.netcache import load_network, save_network
from coverage.network import WalkNetwork, speed_ms
from coverage.parallel import THREADS_ENV, worker_threads
from coverage.pipeline import audit_params
from coverage.progress import ProgressFn, sub_progress
from coverage.scenario import Scenario
from coverage.siting import SitingParams, candidate_sites
from coverage.snapping import SNAP_DISTANCE_M, SNAP_EDGE
from coverage.standards import (
    AREA,
    COMPLIANCE_COLUMNS,
    PASSED,
    compliance_rows,
)
from coverage.tables import compare_labels, district_labels

logger = logging.getLogger(__name__)

#: Summary columns (``share_<t>`` and ``uncovered_population_<t>`` per threshold).
STATUS = "status"
ERROR = "error"
POPULATION = "population"
DEMAND_UNITS = "demand_units"
CENTERS = "centers"
CENTERS_USED = "centers_used"
SITES_PROPOSED = "sites_proposed"
SHARE_AFTER = "share_after"
#: Share of residents reaching the floor-area standard (issue 15), when the centers carry floor areas.
CAPACITY_SHARE = "share_meeting_capacity_standard"
FOLDER = "folder"
SECONDS = "seconds"
RECOMPUTED = "recomputed"

#: Version of ``batch.json`` and the batch ``summary.json``; part of every district's key, so a
#: new version redoes the districts. 3: the ``compliance`` rows and section (with a standard).
BATCH_SCHEMA_VERSION = 3
#: Top-level table of every district × judged level, with a standard (issue 15 follow-up).
COMPLIANCE_CSV = "compliance.csv"
#: Key of a district row holding its compliance rows (kept in ``batch.json``, not in ``summary.csv``).
COMPLIANCE = "compliance"
BATCH_JSON = "batch.json"
WORK_DIR = ".work"
CENTERS_PARQUET = "centers.parquet"
DEMAND_PARQUET = "demand.parquet"
CANDIDATES_PARQUET = "candidates.parquet"
EXCLUSIONS_PARQUET = "exclusions.parquet"
#: How long to wait for an existing Dask scheduler to answer.
SCHEDULER_TIMEOUT_S = 10.0

#: Status values of a district row in ``summary.csv``.
STATUS_OK = "ok"
STATUS_NO_CENTERS = "no centers within reach"
STATUS_NO_RESIDENTS = "no residents"
STATUS_NO_NETWORK = "no walkable streets"
STATUS_ERROR = "error"

#: Our own temporary names (:data:`coverage.export.TEMP_PREFIX`); the sweep touches nothing else.
#: A batch run's names carry its tag (8 hex digits and ``-``) after ``tmp-`` / ``old-``.
_TMP_PATTERN = re.compile(rf"^{re.escape(export.TEMP_PREFIX)}(tmp|old)-(?:([0-9a-f]{{8}})-)?")


@dataclass(frozen=True)
class BatchParams:
    """What every district runs, and how its outputs are written.

    Parameters
    ----------
    scenario
        Audit and siting parameters and edits (closed centers) for every
        district; each district goes through :func:`coverage.pipeline.run`.
    margin_m
        Added to the longest audited threshold's walking distance to get the
        clipping buffer.
    with_polygons
        Build service-area polygons (the slowest part of an audit).
    with_report
        Write each district's ``report.html`` (a map page of about 1 MB per
        1,000 demand units).
    lang
        Language of the reports (``zh`` or ``en``).
    with_pdf
        Also print each district's ``report.pdf`` with headless Chromium (``--pdf``).
    """

    scenario: Scenario = field(default_factory=Scenario)
    margin_m: float = 300.0
    with_polygons: bool = True
    with_report: bool = True
    lang: str = "zh"
    with_pdf: bool = False

    def __post_init__(self) -> None:
        """Validate and normalise the fields."""
        if not isinstance(self.scenario, Scenario):
            msg = f"`scenario` must be a Scenario; got {type(self.scenario).__name__}."
            raise InputError(msg)
        if not math.isfinite(self.margin_m) or self.margin_m < 0:
            msg = f"`margin_m` must be a non-negative distance in meters; got {self.margin_m!r}."
            raise InputError(msg)

    @property
    def thresholds_min(self) -> tuple[float, ...]:
        """The thresholds every district audits (:func:`coverage.pipeline.audit_params`)."""
        return tuple(audit_params(self.scenario).thresholds_min)

    @property
    def buffer_m(self) -> float:
        """Walking distance of the longest audited threshold plus the margin."""
        speed = self.scenario.audit.speed_kmh
        return max(self.thresholds_min) * 60.0 * speed_ms(speed) + self.margin_m

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values: the scenario and the output options (part of each district's key)."""
        return {
            "scenario": self.scenario.to_dict(),
            "margin_m": self.margin_m,
            "with_polygons": self.with_polygons,
            "with_report": self.with_report,
            "lang": self.lang,
            # only when asked, so the keys of earlier outputs stay valid
            **({"with_pdf": True} if self.with_pdf else {}),
        }


# --- districts ----------------------------------------------------------------


def district_folders(names: Sequence[str]) -> list[str]:
    """Return a unique, safe folder name per district (Chinese kept; clashes get ``_2``, ``_3``...)."""
    out: list[str] = []
    seen: set[str] = set()
    for name in names:
        base = export.safe_filename(name, default="district")
        folder, n = base, 1
        while folder.casefold() in seen or folder == WORK_DIR:
            n += 1
            folder = f"{base}_{n}"
        seen.add(folder.casefold())
        out.append(folder)
    return out


def assign_demand(demand: gpd.GeoDataFrame, districts: gpd.GeoDataFrame) -> NDArray[np.int64]:
    """Index of the district holding each demand unit's representative point.

    A point on a shared border goes to the first district, so every unit counts once.

    Returns
    -------
    numpy.ndarray
        One district position per demand row; ``-1`` outside every district.
    """
    pts = shapely.point_on_surface(np.asarray(demand.geometry.values, dtype=object))
    d = districts.to_crs(demand.crs)
    tree = shapely.STRtree(np.asarray(d.geometry.values, dtype=object))
    unit, dist = tree.query(pts, predicate="intersects")
    first = np.full(len(demand), len(d), dtype=np.int64)
    np.minimum.at(first, unit, dist.astype(np.int64))  # the first district wins
    return np.where(first < len(d), first, -1)


# --- clipping -----------------------------------------------------------------


def clip_network(
    net: WalkNetwork, area: shapely.Geometry, *, keep_edges: Sequence[int] | NDArray[Any] = ()
) -> tuple[WalkNetwork, NDArray[np.int64]]:
    """Return the edges of ``net`` that intersect ``area`` (plus ``keep_edges``) as a new network.

    Returns
    -------
    (WalkNetwork, numpy.ndarray)
        The clipped network and, for every edge of ``net``, its index in the
        clipped network (``-1`` where the edge was cut away).
    """
    hits = net.edge_tree.query(area, predicate="intersects")
    edges = np.unique(np.concatenate([hits, np.asarray(keep_edges, dtype=np.int64)]))
    nodes = np.unique(np.concatenate([net.edge_u[edges], net.edge_v[edges]]))
    node_map = np.full(net.n_nodes, -1, dtype=np.int64)
    node_map[nodes] = np.arange(nodes.size)
    edge_map = np.full(net.n_edges, -1, dtype=np.int64)
    edge_map[edges] = np.arange(edges.size)
    sub = WalkNetwork(
        crs=net.crs,
        node_osmid=net.node_osmid[nodes],
        node_x=net.node_x[nodes],
        node_y=net.node_y[nodes],
        edge_u=node_map[net.edge_u[edges]],
        edge_v=node_map[net.edge_v[edges]],
        edge_length_m=net.edge_length_m[edges],
        edge_highway=net.edge_highway[edges],
        edge_geometry=net.edge_geometry[edges],
        source_sha256=net.source_sha256,
        stats={"clipped_from_nodes": net.n_nodes},
    )
    return sub, edge_map


# --- one district -----------------------------------------------------------


@dataclass(frozen=True)
class DistrictTask:
    """Everything a worker needs for one district: small values and file paths only."""

    work_dir: str
    city_key: str
    name: str
    geometry_wkb: bytes
    demand_rows: NDArray[np.int64]
    params: BatchParams
    out_dir: str
    key: str
    run_tag: str = ""
    source_name: str = ""
    source_sha256: str = ""
    population_model: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)
    centers_source: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _CityParts:
    """The shared city as a worker loads it from the work folder."""

    net: WalkNetwork
    centers: gpd.GeoDataFrame
    demand: gpd.GeoDataFrame
    candidates: gpd.GeoDataFrame | None
    exclusions: gpd.GeoDataFrame | None


def _read_optional(path: Path) -> gpd.GeoDataFrame | None:
    return gpd.read_parquet(path) if path.is_file() else None


@lru_cache(maxsize=2)
def _city_parts(work_dir: str, city_key: str) -> _CityParts:
    """Load the shared city files once per worker process (``city_key`` keys the cache)."""
    w = Path(work_dir)
    net = load_network(w / "network.npz")
    parts = _CityParts(
        net=net,
        centers=gpd.read_parquet(w / CENTERS_PARQUET),
        demand=gpd.read_parquet(w / DEMAND_PARQUET),
        candidates=_read_optional(w / CANDIDATES_PARQUET),
        exclusions=_read_optional(w / EXCLUSIONS_PARQUET),
    )
    _ = net.edge_tree  # build the spatial index once, not per district
    logger.info("worker loaded city %s: %d nodes", city_key[:8], net.n_nodes)
    return parts


def district_key(
    city_key: str, geometry_wkb: bytes, demand_rows: NDArray[np.int64], params: BatchParams
) -> str:
    """Identity of one district's inputs: its outputs are redone only when this changes."""
    blob = json.dumps(
        {"city": city_key, "params": params.to_dict(), "v": BATCH_SCHEMA_VERSION},
        sort_keys=True,
        default=str,
    ).encode()
    rows = np.ascontiguousarray(demand_rows, dtype=np.int64).tobytes()
    return hashlib.sha256(blob + geometry_wkb + rows).hexdigest()[:32]


def audit_district(task: DistrictTask) -> dict[str, Any]:
    """Audit one district and write its outputs to ``task.out_dir``; return its summary row.

    Never raises for a problem of the district itself: the row's ``status`` and
    ``error`` say what happened (``KeyboardInterrupt`` still stops it).
    """
    t0 = time.perf_counter()
    row: dict[str, Any] = {DISTRICT: task.name, STATUS: STATUS_OK, ERROR: ""}
    try:
        row.update(_audit_district(task))
    except Exception as exc:  # one bad district must not stop the batch
        logger.exception("district %s failed", task.name)
        row[STATUS] = STATUS_ERROR
        row[ERROR] = f"{type(exc).__name__}: {exc}"
    row[SECONDS] = round(time.perf_counter() - t0, 3)
    return row


def _remap(
    frame: gpd.GeoDataFrame, edge_map: NDArray[np.int64], keep: NDArray[np.bool_] | None = None
) -> gpd.GeoDataFrame:
    """Rows of ``frame`` whose snap edge survives the clipping, with the clipped edge index."""
    edge = edge_map[frame[SNAP_EDGE].to_numpy()]
    ok = edge >= 0 if keep is None else (edge >= 0) & keep
    out = frame[ok].copy()
    out[SNAP_EDGE] = edge[ok]
    return out.reset_index(drop=True)


def clipped_city(
    parts: _CityParts, area: shapely.Geometry, own: gpd.GeoDataFrame, task: DistrictTask
) -> CityData:
    """Return the city around one district: its demand, the network and centers within the buffer.

    Returns
    -------
    CityData
        ``net`` clipped to ``area`` grown by the buffer (plus the edges the
        district's residents snap to), ``demand`` the district's own units,
        ``centers`` whose snap edge survives and whose access leg fits in the
        buffer; with siting, ``candidates`` (see :func:`_district_candidates`).
    """
    buffer_m = task.params.buffer_m
    zone = shapely.buffer(area, buffer_m)
    sub, edge_map = clip_network(parts.net, zone, keep_edges=own[SNAP_EDGE].to_numpy())
    # A center whose access leg alone exceeds the buffer cannot serve anyone here.
    near = parts.centers[SNAP_DISTANCE_M].to_numpy() <= buffer_m
    demand = _remap(own, edge_map)
    city = CityData(
        source_name=task.source_name,
        source_sha256=task.source_sha256,
        net=sub,
        centers=_remap(parts.centers, edge_map, near),
        demand=demand,
        population_model=dict(task.population_model),
        centers_source=dict(task.centers_source),
        exclusions=parts.exclusions,
    )
    siting = task.params.scenario.siting
    if siting is None:
        return city
    return replace(city, candidates=_district_candidates(parts, city, area, edge_map, siting))


def _district_candidates(
    parts: _CityParts,
    city: CityData,
    area: shapely.Geometry,
    edge_map: NDArray[np.int64],
    siting: SitingParams,
) -> gpd.GeoDataFrame:
    """Candidate sites of one district: inside it when it has any, else all within the buffer.

    The user's candidates when given, else points along the clipped streets
    near the district's residents.
    """
    if parts.candidates is not None:
        cand = _remap(parts.candidates, edge_map)
    else:
        cand = candidate_sites(
            city.net,
            city.demand,
            spacing_m=siting.spacing_m,
            max_distance_m=siting.max_distance_m,
        )
    inside = cand[shapely.covers(area, np.asarray(cand.geometry.values))]
    return (inside if len(inside) else cand).reset_index(drop=True)


def _audit_district(task: DistrictTask) -> dict[str, Any]:
    params = task.params
    parts = _city_parts(task.work_dir, task.city_key)
    area = shapely.from_wkb(task.geometry_wkb)
    own = parts.demand.iloc[np.asarray(task.demand_rows, dtype=np.int64)]
    population = float(own[POPULATION].sum()) if len(own) else 0.0
    row: dict[str, Any] = {
        DISTRICT: task.name,
        STATUS: STATUS_OK,
        ERROR: "",
        POPULATION: population,
        DEMAND_UNITS: len(own),
    }
    row[CENTERS] = int(shapely.covers(area, np.asarray(parts.centers.geometry.values)).sum())
    if own.empty or population <= 0:
        row[STATUS] = STATUS_NO_RESIDENTS
        _status_compliance(task, own, row)
        _write_status(task, row)
        return row
    if parts.net.edge_tree.query(area, predicate="intersects").size == 0:
        row[STATUS] = STATUS_NO_NETWORK
        _status_compliance(task, own, row)
        _write_status(task, row)
        return row
    city = clipped_city(parts, area, own, task)
    row[CENTERS_USED] = len(city.centers)
    result = pipeline.run(city, params.scenario, with_polygons=params.with_polygons)
    if result.siting is not None:
        row[SITES_PROPOSED] = len(result.siting.sites)
        row[SHARE_AFTER] = float(result.siting.share_after)
    if result.capacity is not None:
        row[CAPACITY_SHARE] = float(result.capacity.share_meeting_standard)
    # every unit of the district's own demand counts in it (the batch's assignment)
    rows = pipeline.area_compliance(result, [task.name] * len(result.audit.demand), [task.name])
    if rows is not None:
        row[COMPLIANCE] = _compliance_records(rows)
    if city.centers.empty:
        # still a full audit (nobody covered): its uncovered areas are the district's gap map
        row[STATUS] = STATUS_NO_CENTERS
    audited = result.audit
    for t in audited.params.thresholds_min:
        stats = audited.coverage[threshold_key(t)]
        row[share_column(t)] = float(stats.share)
        row[uncovered_column(t)] = float(audited.population_total - stats.population_covered)
    files = export.output_files(
        result,
        city,
        title=task.name,
        extra={DISTRICT: task.name, "clip_buffer_m": params.buffer_m, **task.extra},
        lang=params.lang,
        report=params.with_report,
        documents=replace(export.DEFAULT_DOCUMENTS, pdf=params.with_pdf and params.with_report),
    )
    _commit(task, files, row)
    return row


def _compliance_records(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a district's compliance table as plain JSON values (kept in ``batch.json``)."""
    return [dict(jsonable(r)) for r in rows.drop(columns=[AREA]).to_dict(orient="records")]


def _status_compliance(task: DistrictTask, own: gpd.GeoDataFrame, row: dict[str, Any]) -> None:
    """Compliance rows of a district without an audit: its residents, none of them within reach."""
    audit = audit_params(task.params.scenario)
    if audit.standard is None:
        return
    demand = pd.DataFrame(own).copy()
    for level, _ in audit.standard.judged():
        demand[level_covered_column(level)] = False  # no street: nobody walks to a center
    cparams = compliance_params(audit, task.params.scenario.capacity)
    labels = [task.name] * len(demand)
    rows = compliance_rows(demand, labels, [task.name], audit.standard, cparams)
    row[COMPLIANCE] = _compliance_records(rows)


def _write_status(task: DistrictTask, row: Mapping[str, Any]) -> None:
    """Write the folder of a district without an audit (complete and resumable all the same)."""
    doc = {
        "schema_version": export.SCHEMA_VERSION,
        DISTRICT: task.name,
        STATUS: row[STATUS],
        POPULATION: row.get(POPULATION, 0.0),
        "input": {"file": task.source_name, "sha256": task.source_sha256},
    }
    _commit(task, {export.SUMMARY_JSON: json_bytes(doc)}, row)


def _commit(task: DistrictTask, files: dict[str, bytes], row: Mapping[str, Any]) -> None:
    """Add ``batch.json`` (input key, row, checksums) and swap the folder in atomically."""
    stamp = {
        "schema_version": BATCH_SCHEMA_VERSION,
        DISTRICT: task.name,
        "input_key": task.key,
        "row": dict(row),
        "files": {n: hashlib.sha256(b).hexdigest() for n, b in sorted(files.items())},
    }
    files[BATCH_JSON] = json_bytes(stamp)
    # A district folder is replaced only when it carries our marker (export.check_output_dir).
    export.write_outputs(Path(task.out_dir), files, tag=task.run_tag)


def completed_row(out_dir: Path | str, key: str) -> dict[str, Any] | None:
    """Return the stored summary row of a district whose outputs are complete for ``key``, else None.

    Complete means ``batch.json`` has this input key and every file it lists is
    present with the recorded SHA-256.
    """
    folder = Path(out_dir)
    try:
        doc = json.loads((folder / BATCH_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("input_key") != key:
        return None
    row, files = doc.get("row"), doc.get("files")
    if not isinstance(row, dict) or not isinstance(files, dict) or not files:
        return None
    if row.get(STATUS) == STATUS_ERROR:
        return None
    for name, digest in files.items():
        try:
            if hashlib.sha256((folder / name).read_bytes()).hexdigest() != digest:
                return None
        except OSError:
            return None
    return row


# --- the batch ------------------------------------------------------------------


@dataclass(frozen=True)
class BatchResult:
    """One row per district (``summary``) and where the outputs are."""

    summary: pd.DataFrame
    out_dir: Path


def prepare_work_dir(city: CityData, work_dir: Path) -> str:
    """Write the city's network, centers, demand (and candidates, exclusions) for the workers.

    Returns
    -------
    str
        The city key (hash of the files' content) that decides what to rerun.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    save_network(city.net, work_dir / "network.npz")
    layers = {
        CENTERS_PARQUET: city.centers,
        DEMAND_PARQUET: city.demand,
        CANDIDATES_PARQUET: city.candidates,
        EXCLUSIONS_PARQUET: city.exclusions,
    }
    h = hashlib.sha256()
    h.update(city.net.source_sha256.encode())
    h.update(str(city.source_sha256).encode())
    for name, frame in layers.items():
        path = work_dir / name
        if frame is None:
            path.unlink(missing_ok=True)
            h.update(f"{name}: none".encode())
            continue
        _atomic_parquet(frame, path)
        gdf = gpd.read_parquet(path)
        table = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
        h.update(pd.util.hash_pandas_object(table, index=True).to_numpy().tobytes())
        h.update(b"".join(shapely.to_wkb(np.asarray(gdf.geometry.values))))
    return h.hexdigest()[:32]


def _atomic_parquet(gdf: gpd.GeoDataFrame, path: Path) -> None:
    atomic_write(path, gdf.to_parquet)


def _sweep_temporaries(out: Path, tag: str = "") -> None:
    """Remove half-written files and folders of this run (``tag``) and of runs that are gone.

    A name tagged by another run is left alone while that run holds its lock
    (:func:`_run_lock`): two batches on one folder never delete each other's
    files in the making. Untagged names come from older versions and are removed.
    """
    with contextlib.suppress(OSError):
        for p in out.iterdir():
            m = _TMP_PATTERN.match(p.name)
            if m is None or (
                m.group(2) and f"{m.group(2)}-" != tag and _run_alive(out, m.group(2))
            ):
                continue
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    p.unlink()
    with contextlib.suppress(OSError):  # locks of runs that were killed
        for p in (out / WORK_DIR).glob("run-*.lock"):
            other = p.stem.removeprefix("run-")
            if (
                f"{other}-" != tag
                and re.fullmatch("[0-9a-f]{8}", other)
                and not _run_alive(out, other)
            ):
                p.unlink()


def _lock_path(out: Path, tag: str) -> Path:
    return out / WORK_DIR / f"run-{tag.rstrip('-')}.lock"


def _run_alive(out: Path, tag: str) -> bool:
    """Whether the batch run tagged ``tag`` still holds its lock on ``out`` (unknown: assume so)."""
    if fcntl is None:  # pragma: no cover - not on POSIX: never touch another run's names
        return True
    try:
        fd = os.open(_lock_path(out, tag), os.O_RDWR)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


@contextlib.contextmanager
def _run_lock(out: Path) -> Iterator[str]:
    """Hold this run's lock in ``OUT/.work`` and yield its tag (8 hex digits and ``-``)."""
    tag = f"{uuid.uuid4().hex[:8]}-"
    path = _lock_path(out, tag)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield tag
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask where the system has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def capped_workers(workers: int, n_tasks: int) -> int:
    """Return ``workers`` capped at the usable cores and the districts to run, warning when capped."""
    cap = max(1, min(usable_cores(), n_tasks))
    if workers > cap:
        logger.warning(
            "--workers %d capped at %d (%d usable cores, %d districts to run)",
            workers,
            cap,
            usable_cores(),
            n_tasks,
        )
        return cap
    return workers


def _check_workers(workers: int, scheduler: str | None) -> None:
    if isinstance(workers, bool) or int(workers) != workers or workers < 1:
        msg = f"`workers` must be a whole number of at least 1; got {workers!r}."
        raise InputError(msg)
    if scheduler is not None:
        _check_scheduler_address(scheduler)


def _output_folder(out_dir: Path | str) -> Path:
    """Return ``OUT`` ready for a batch: new, empty, or an earlier batch's (its marker says so).

    A folder holding anything else is refused (:func:`coverage.export.check_output_dir`);
    a symbolic link is followed. The marker is written first, so even a killed run
    leaves a folder the next run recognises.
    """
    out = export.check_output_dir(out_dir, kind="batch")
    try:
        out.mkdir(parents=True, exist_ok=True)
        if export.read_marker(out) is None:
            atomic_write_bytes(out / export.MARKER, export.marker_bytes("batch"))
    except OSError as exc:
        msg = f"Cannot write the output folder {str(out)[:200]!r}: {exc.strerror or exc}. Check the path and its permissions."
        raise InputError(msg) from exc
    return out


def _district_tasks(
    city: CityData, districts: gpd.GeoDataFrame, out: Path, params: BatchParams
) -> list[DistrictTask]:
    """One task per district of ``city``, whose centers are already the scenario's."""
    scenario = params.scenario
    work = out / WORK_DIR
    city_key = prepare_work_dir(city, work)
    d_proj = districts.to_crs(city.net.crs)
    owner = assign_demand(city.demand, d_proj)
    outside = owner < 0
    if outside.any():
        logger.warning(
            "%d demand units (population %.0f) lie outside every district and are not counted",
            int(outside.sum()),
            float(city.demand[POPULATION].to_numpy()[outside].sum()),
        )
    # Each district runs the scenario on centers already in force: no second closing.
    district_params = replace(
        params, scenario=replace(scenario, closed=(), added=(), accepted_sites=())
    )
    extra = {"closed_centers": list(scenario.closed)} if scenario.closed else {}
    folders = district_folders(list(d_proj[DISTRICT]))
    tasks: list[DistrictTask] = []
    for i, (name, geom) in enumerate(zip(d_proj[DISTRICT], d_proj.geometry.values, strict=True)):
        wkb = shapely.to_wkb(geom)
        rows = np.flatnonzero(owner == i).astype(np.int64)
        tasks.append(
            DistrictTask(
                work_dir=str(work),
                city_key=city_key,
                name=str(name),
                geometry_wkb=wkb,
                demand_rows=rows,
                params=district_params,
                out_dir=str(out / folders[i]),
                key=district_key(city_key, wkb, rows, params),
                source_name=city.source_name,
                source_sha256=city.source_sha256,
                population_model=dict(city.population_model),
                extra=extra,
                centers_source=dict(city.centers_source),
            )
        )
    return tasks


def _run_tasks(
    tasks: list[DistrictTask],
    *,
    workers: int,
    scheduler: str | None,
    force: bool,
    progress: ProgressFn | None,
) -> dict[str, dict[str, Any]]:
    """Run the districts not up to date; return every district's row by name."""
    rows_by_name: dict[str, dict[str, Any]] = {}
    todo: list[DistrictTask] = []
    for task in tasks:
        done = None if force else completed_row(task.out_dir, task.key)
        if done is not None:
            rows_by_name[task.name] = {**done, RECOMPUTED: False}
        else:
            todo.append(task)
    total = len(tasks)
    if rows_by_name:
        logger.info("%d of %d districts up to date; skipping them", len(rows_by_name), total)
    if progress:
        progress(len(rows_by_name) / total, f"{len(rows_by_name)} of {total} districts up to date")

    def report(row: dict[str, Any]) -> None:
        rows_by_name[row[DISTRICT]] = {**row, RECOMPUTED: True}
        if progress:
            progress(
                len(rows_by_name) / total,
                f"{len(rows_by_name)}/{total} districts · {row[DISTRICT]}: {row[STATUS]}",
            )

    if scheduler is None:
        workers = capped_workers(workers, len(todo))
    if not todo:
        pass
    elif scheduler is None and workers <= 1:
        for task in todo:
            report(audit_district(task))
    else:
        _run_on_dask(todo, workers=workers, scheduler=scheduler, report=report)
    return rows_by_name


def run_districts(
    city: CityData,
    districts: gpd.GeoDataFrame,
    out_dir: Path | str,
    *,
    params: BatchParams | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    force: bool = False,
    progress: ProgressFn | None = None,
) -> BatchResult:
    """Run ``params.scenario`` on every district of ``city``; serially, on local Dask, or on ``scheduler``.

    Parameters
    ----------
    city
        The loaded city (:func:`coverage.inputs.load_city`).
    districts
        Output of :func:`coverage.inputs.districts_from_file` or
        :func:`coverage.inputs.districts_from_osm` (any CRS).
    out_dir
        ``OUT``: gets ``OUT/<district>/``, ``summary.csv``, ``summary.json``,
        ``districts.geojson`` and ``report.html``.
    params
        The scenario and output options (default :class:`BatchParams`).
    workers
        ``1`` runs in this process; more starts a local Dask cluster with that
        many single-threaded worker processes.
    scheduler
        Address of an existing Dask scheduler (``tcp://HOST:PORT``); its workers
        must see ``out_dir`` at the same path (a shared file system).
    force
        Redo districts whose outputs are complete and up to date.
    progress
        ``progress(fraction, message)`` after each district.

    Returns
    -------
    BatchResult
        ``summary`` has one row per district, in input order: ``district``,
        ``status``, ``population``, ``share_<t>`` and
        ``uncovered_population_<t>`` per audited threshold, ``centers`` (in the
        district), ``centers_used`` (within the buffer), ``demand_units``,
        ``sites_proposed`` and ``share_after`` (siting minutes) when siting,
        ``share_meeting_capacity_standard`` when the centers carry floor areas,
        ``error``, ``seconds``, ``folder``, ``recomputed``.
    """
    params = BatchParams() if params is None else params
    _check_workers(workers, scheduler)
    districts = normalise_districts(districts)
    # no ESC/NUL in rows, files or logs; names that then coincide are one district
    plain = districts[DISTRICT].map(strip_controls)
    if not plain.equals(districts[DISTRICT]):
        districts = normalise_districts(districts.assign(**{DISTRICT: plain}))
    # the centers in force (closures and additions applied once, here), before anything is written
    in_force = replace(city, centers=pipeline.scenario_centers(city, params.scenario))
    out = _output_folder(out_dir)
    with _run_lock(out) as tag:
        _sweep_temporaries(out, tag)  # leftovers of killed runs, never a running one's
        t0 = time.perf_counter()
        tasks = [replace(t, run_tag=tag) for t in _district_tasks(in_force, districts, out, params)]
        logger.info("prepared %d districts in %.1f s", len(tasks), time.perf_counter() - t0)
        try:
            rows_by_name = _run_tasks(
                tasks, workers=workers, scheduler=scheduler, force=force, progress=progress
            )
        except BaseException:
            if scheduler is None:  # our own workers are gone: nothing can still be writing
                _sweep_temporaries(out, tag)
            raise
        summary = _summary_table(
            [{**rows_by_name[t.name], FOLDER: Path(t.out_dir).name} for t in tasks], params
        )
        rows = [rows_by_name[t.name] for t in tasks]
        _write_batch_summary(out, summary, districts, params, city, rows=rows, tag=tag)
    logger.info(
        "batch of %d districts done in %.1f s: %d recomputed, %d failed",
        len(tasks),
        time.perf_counter() - t0,
        int(summary[RECOMPUTED].sum()),
        int((summary[STATUS] == STATUS_ERROR).sum()),
    )
    return BatchResult(summary=summary, out_dir=out)


def _check_scheduler_address(address: str) -> None:
    if not isinstance(address, str) or not re.fullmatch(
        r"(tcp|tls|inproc|ucx|ws|wss)://[^\s/]+(:\d+)?/?", address
    ):
        msg = f"`scheduler` must be a Dask scheduler address such as 'tcp://10.0.0.5:8786'; got {address[:80]!r}."
        raise InputError(msg)
    port = re.fullmatch(r"(tcp|tls|ws|wss)://(\[[^\]]*\]|[^\s/:\[]+)(:(\d+))?/?", address)
    if address.startswith(("tcp:", "tls:", "ws:", "wss:")) and (
        port is None or port.group(4) is None
    ):
        msg = f"`scheduler` address {address[:80]!r} has no port; give it as 'tcp://HOST:PORT', e.g. 'tcp://10.0.0.5:8786' (the port `dask scheduler` prints)."
        raise InputError(msg)
    if port is not None and not 0 < int(port.group(4)) < 65536:
        msg = f"`scheduler` port must be in 1..65535; got {address[:80]!r}."
        raise InputError(msg)


def _probe_scheduler(address: str) -> None:
    """Refuse a ``tcp://`` scheduler address where nothing listens."""
    m = re.fullmatch(r"tcp://\[?([^\]/]+?)\]?:(\d+)/?", address)
    if m is None:
        return
    try:
        with socket.create_connection((m.group(1), int(m.group(2))), timeout=SCHEDULER_TIMEOUT_S):
            pass
    except OSError as exc:
        msg = f"Cannot reach the Dask scheduler at {address!r} ({exc.strerror or exc}). Start it with `dask scheduler` and check the address, or run locally with `--workers N`."
        raise InputError(msg) from exc


def _run_on_dask(
    tasks: list[DistrictTask],
    *,
    workers: int,
    scheduler: str | None,
    report: Callable[[dict[str, Any]], None],
) -> None:
    with _quiet_distributed():
        _run_on_client(tasks, workers=workers, scheduler=scheduler, report=report)


@contextlib.contextmanager
def _quiet_distributed() -> Iterator[None]:
    """Keep distributed's own log records below ERROR out of the driver's output."""
    log = logging.getLogger("distributed")
    previous = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(previous)


def _run_on_client(
    tasks: list[DistrictTask],
    *,
    workers: int,
    scheduler: str | None,
    report: Callable[[dict[str, Any]], None],
) -> None:
    # lazy: distributed takes ~0.45 s to import and only parallel runs need it
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=f"{SCHEDULER_TIMEOUT_S}s")
        except (OSError, TimeoutError) as exc:
            msg = f"Cannot reach the Dask scheduler at {scheduler!r} ({type(exc).__name__}: {exc}). Start it with `dask scheduler` and check the address, or run locally with `--workers N`."
            raise InputError(msg) from exc
    else:
        # each worker process gets its share of the cores for the audit's GEOS threads
        share = max(1, worker_threads() // max(1, workers))
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            env={THREADS_ENV: str(share)},
            dashboard_address=None,
            # The scheduler's HTTP server still binds; a free port avoids a warning
            # (and a clash) when another cluster holds the default 8787.
            scheduler_kwargs={"dashboard_address": ":0"},
            # a successful run must not print the workers' shutdown tracebacks
            silence_logs=logging.ERROR,
        )
        client = Client(cluster)
    try:
        with client:
            futures = {
                client.submit(audit_district, t, key=f"district-{t.key}", pure=False): t
                for t in tasks
            }
            for fut in as_completed(futures):
                task = futures[fut]
                try:
                    row = fut.result()
                except Exception as exc:  # the worker died (memory, kill): record it
                    row = {
                        DISTRICT: task.name,
                        STATUS: STATUS_ERROR,
                        ERROR: f"{type(exc).__name__}: {exc}",
                    }
                report(row)
    finally:
        if cluster is not None:
            cluster.close()


def _summary_table(rows: list[dict[str, Any]], params: BatchParams) -> pd.DataFrame:
    cols = [DISTRICT, STATUS, POPULATION]
    cols += [share_column(t) for t in params.thresholds_min]
    cols += [uncovered_column(t) for t in params.thresholds_min]
    cols += [CENTERS, CENTERS_USED, DEMAND_UNITS]
    siting = params.scenario.siting is not None
    if siting:
        cols += [SITES_PROPOSED, SHARE_AFTER]
    if any(CAPACITY_SHARE in r for r in rows):
        cols.append(CAPACITY_SHARE)
    cols += [ERROR, SECONDS, FOLDER, RECOMPUTED]
    table = pd.DataFrame(rows).reindex(columns=cols)
    table[ERROR] = table[ERROR].fillna("")
    table[RECOMPUTED] = table[RECOMPUTED].astype(bool)
    for c in (DEMAND_UNITS, CENTERS, CENTERS_USED, *([SITES_PROPOSED] if siting else [])):
        table[c] = table[c].astype("Int64")
    return table


def _write_batch_summary(
    out: Path,
    summary: pd.DataFrame,
    districts: gpd.GeoDataFrame,
    params: BatchParams,
    city: CityData,
    *,
    rows: Sequence[Mapping[str, Any]] = (),
    tag: str = "",
) -> None:
    siting = params.scenario.siting
    layer = gpd.GeoDataFrame(
        summary.drop(columns=[ERROR, RECOMPUTED]),
        geometry=np.asarray(districts.geometry.values),
        crs=districts.crs,
    )
    doc = {
        "schema_version": BATCH_SCHEMA_VERSION,
        "input": {"file": city.source_name, "sha256": city.source_sha256},
        "params": {
            "walk_speed_kmh": params.scenario.audit.speed_kmh,
            "thresholds_min": list(params.thresholds_min),
            "new_k": siting.k if siting is not None else None,
            "target_share": siting.target_share if siting is not None else None,
            "siting_minutes": siting.minutes if siting is not None else None,
            "closed_centers": list(params.scenario.closed),
            "clip_buffer_m": params.buffer_m,
        },
        "centers_source": dict(city.centers_source) or None,
        **({"census": dict(city.census)} if city.census is not None else {}),
        "districts": summary.to_dict(orient="records"),
    }
    files: dict[str, bytes] = {
        "summary.csv": export.csv_bytes(summary),
        "summary.json": json_bytes(doc),
        "districts.geojson": export.geojson_bytes(layer, what="districts"),
        "report.html": _index_html(summary, params).encode("utf-8"),
        export.TABLES_XLSX: _summary_workbook(summary, params),
    }
    compliance = _compliance_table(rows, params)
    if compliance is not None:
        doc[COMPLIANCE] = _compliance_section(compliance, params, city)
        files["summary.json"] = json_bytes(doc)
        files[COMPLIANCE_CSV] = export.csv_bytes(compliance)
    for fname, data in files.items():
        atomic_write_bytes(out / fname, data, tag=tag)


def _compliance_table(
    rows: Sequence[Mapping[str, Any]], params: BatchParams
) -> pd.DataFrame | None:
    """Return every district × judged level (districts in input order), or None without a standard."""
    standard = audit_params(params.scenario).standard
    if standard is None:
        return None
    records: list[dict[str, Any]] = []
    for r in rows:
        for c in r.get(COMPLIANCE) or ():
            records.append({DISTRICT: r[DISTRICT], STATUS: r[STATUS], **c})
    cols = [DISTRICT, STATUS, *(c for c in COMPLIANCE_COLUMNS if c != AREA)]
    return pd.DataFrame(records).reindex(columns=cols)


def _compliance_section(table: pd.DataFrame, params: BatchParams, city: CityData) -> dict[str, Any]:
    """Return the batch summary's ``compliance``: the standard, :func:`export.compliance_section`, the pass counts."""
    audit = audit_params(params.scenario)
    capacity = pipeline.capacity_params(city, params.scenario)
    return {
        "areas": "districts",
        "standard": None if audit.standard is None else audit.standard.key,
        **export.compliance_section(table, audit, capacity),
        "districts_passed": _passed_counts(table),
    }


def _passed_counts(table: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Per judged level: how many districts pass, fail, or cannot be judged (no residents)."""
    out: dict[str, dict[str, int]] = {}
    for level, g in table.groupby("level", sort=False):
        values = list(g[PASSED])  # True, False, or None (an area without residents)
        out[str(level)] = {
            "passed": sum(v is True or v is np.True_ for v in values),
            "failed": sum(v is False or v is np.False_ for v in values),
            "not_judged": sum(
                v is None or (isinstance(v, float) and math.isnan(v)) for v in values
            ),
        }
    return out


def _summary_workbook(summary: pd.DataFrame, params: BatchParams) -> bytes:
    """Return the top-level ``tables.xlsx``: one row per district, headers in ``params.lang``."""
    thresholds = params.thresholds_min
    labels = {
        **compare_labels(thresholds, params.lang),
        **district_labels(thresholds, params.lang),
    }
    table = summary.drop(columns=[c for c in (RECOMPUTED,) if c in summary.columns])
    title = i18n.t("xlsx.sheet.areas", params.lang)
    return export.workbook_bytes([export.Sheet(title, table, labels)])


def _cell(column: str, value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and column.startswith("share"):
        return f"{value:.1%}"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 10 else f"{value:.2f}"
    return str(value)


def _index_html(table: pd.DataFrame, params: BatchParams) -> str:
    """Return a standalone page ranking districts by uncovered population at the longest threshold."""
    key = uncovered_column(max(params.thresholds_min))
    ranked = table.sort_values(key, ascending=False, na_position="last", kind="stable")
    cols = [c for c in ranked.columns if c not in (FOLDER, RECOMPUTED)]
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = []
    for rec in ranked.to_dict(orient="records"):
        cells = []
        for c in cols:
            text = html.escape(_cell(c, rec[c]))
            if c == DISTRICT and params.with_report:
                href = html.escape(f"{rec[FOLDER]}/report.html", quote=True)
                cells.append(f'<td><a href="{href}">{text}</a></td>')
            else:
                cells.append(f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        "<!doctype html><html lang='zh'><head><meta charset='utf-8'>"
        "<title>各区覆盖审计 District coverage audit</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
        "td:first-child,td:nth-child(2){text-align:left}</style>"
        "</head><body><h1>各区覆盖审计 · District coverage audit</h1>"
        f"<p>按未覆盖人口排序 · ranked by uncovered population ({html.escape(key)}). "
        "Map layer: <code>districts.geojson</code>.</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        "<p>Map data © OpenStreetMap contributors (ODbL).</p></body></html>\n"
    )


def run_batch(
    inputs: CityInputs,
    *,
    out: Path | str,
    params: BatchParams | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    force: bool = False,
    progress: ProgressFn | None = None,
) -> BatchResult:
    """Run the ``coverage-planner batch`` command as a function (see :func:`run_districts`).

    The districts are ``inputs.districts`` (read in ``inputs.crs``, like every
    user file), else the OSM administrative boundaries at
    ``inputs.admin_level`` (chosen when ``None``). Loading the city takes the
    first 30 % of ``progress``; the districts the rest.

    Returns
    -------
    BatchResult
        As :func:`run_districts`.
    """
    _check_workers(workers, scheduler)
    if scheduler is not None:
        _probe_scheduler(scheduler)  # fail before the slow city load
    check_inputs(inputs)  # a bad districts or centers file fails before the slow city load
    export.check_output_dir(out, kind="batch")  # so does a folder that is not ours
    city = load_city(inputs, progress=sub_progress(progress, 0.0, 0.3))
    districts = city.districts
    if districts is None:
        if city.extract is None:  # pragma: no cover - load_city always keeps the extract
            msg = "No districts: give a districts file with `--districts`."
            raise InputError(msg)
        districts = districts_from_osm(city.extract, admin_level=inputs.admin_level)
    return run_districts(
        city,
        districts,
        out,
        params=params,
        workers=workers,
        scheduler=scheduler,
        force=force,
        progress=sub_progress(progress, 0.3, 1.0),
    )
