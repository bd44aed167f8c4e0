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
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from coverage.errors import InputError
from coverage.fileio import atomic_write, atomic_write_bytes, json_bytes
from coverage.names import share_column, threshold_key, uncovered_column
from coverage.netcache import load_network, save_network
from coverage.network import WalkNetwork, speed_ms
from coverage.parallel import THREADS_ENV, worker_threads
from coverage.progress import ProgressFn, sub_progress
from coverage.snapping import SNAP_DISTANCE_M, SNAP_EDGE

logger = logging.getLogger(__name__)

#: Summary columns (``share_<t>`` and ``uncovered_population_<t>`` per threshold).
DISTRICT = "district"
STATUS = "status"
ERROR = "error"
POPULATION = "population"
DEMAND_UNITS = "demand_units"
CENTERS = "centers"
CENTERS_USED = "centers_used"
SITES_PROPOSED = "sites_proposed"
SHARE_AFTER = "share_after"
FOLDER = "folder"
SECONDS = "seconds"
RECOMPUTED = "recomputed"

BATCH_SCHEMA_VERSION = 2
BATCH_JSON = "batch.json"
WORK_DIR = ".work"
#: How long to wait for an existing Dask scheduler to answer.
SCHEDULER_TIMEOUT_S = 10.0

#: Status values of a district row in ``summary.csv``.
STATUS_OK = "ok"
STATUS_NO_CENTERS = "no centers within reach"
STATUS_NO_RESIDENTS = "no residents"
STATUS_NO_NETWORK = "no walkable streets"
STATUS_ERROR = "error"

_TMP_PATTERN = re.compile(r"^\..+\.(tmp|old)-")


@dataclass(frozen=True)
class BatchParams:
    """Parameters shared by every district's audit.

    Parameters
    ----------
    speed_kmh
        Walking speed.
    thresholds_min
        Strictly increasing minutes, e.g. ``(5, 15)``.
    new_k
        New sites to propose per district (``None``: audit only).
    margin_m
        Added to the longest threshold's walking distance to get the clipping buffer.
    with_polygons
        Build service-area polygons (the slowest part of an audit).
    with_report
        Write each district's ``report.html`` (a map page of about 1 MB per
        1,000 demand units).
    """

    speed_kmh: float = 4.5
    thresholds_min: tuple[float, ...] = (5.0, 15.0)
    new_k: int | None = None
    margin_m: float = 300.0
    with_polygons: bool = True
    with_report: bool = True

    def __post_init__(self) -> None:
        from coverage.audit import AuditParams

        # AuditParams validates speed and thresholds with the audit's own messages.
        checked = AuditParams(speed_kmh=self.speed_kmh, thresholds_min=tuple(self.thresholds_min))
        object.__setattr__(self, "thresholds_min", tuple(checked.thresholds_min))
        if self.new_k is not None and (
            isinstance(self.new_k, bool) or int(self.new_k) != self.new_k or self.new_k <= 0
        ):
            msg = f"`new_k` must be a positive whole number of new stations per district; got {self.new_k!r}."
            raise InputError(msg)
        if not math.isfinite(self.margin_m) or self.margin_m < 0:
            msg = f"`margin_m` must be a non-negative distance in meters; got {self.margin_m!r}."
            raise InputError(msg)

    @property
    def buffer_m(self) -> float:
        """Walking distance of the longest threshold plus the margin."""
        return max(self.thresholds_min) * 60.0 * speed_ms(self.speed_kmh) + self.margin_m


# --- districts ----------------------------------------------------------------


def districts_from_file(
    source: Path | str | bytes, *, name_column: str = "name", filename: str | None = None
) -> gpd.GeoDataFrame:
    """Read district boundaries (GeoJSON / GeoPackage) into a ``district`` column.

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326, columns ``district`` (unique name) and geometry (polygons).

    Raises
    ------
    InputError
        No column ``name_column``, features that are not polygons, no features.
    """
    from coverage.userfiles import read_polygons

    gdf = read_polygons(source, filename=filename)
    if name_column not in gdf.columns:
        cols = ", ".join(str(c) for c in gdf.columns if c != gdf.geometry.name) or "none"
        msg = f"The districts file has no column {name_column!r}; columns found: {cols}. Pass the name column with `--name-column`."
        raise InputError(msg)
    out = gdf[[name_column, gdf.geometry.name]].rename(columns={name_column: DISTRICT})
    return normalise_districts(out)


def districts_from_osm(extract: Any, *, admin_level: str | int | None = None) -> gpd.GeoDataFrame:
    """District polygons from ``boundary=administrative`` in the OSM extract.

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326, columns ``district`` (the boundary's name, else its OSM id) and geometry.
    """
    b = extract.boundaries
    levels = sorted(set(b["admin_level"].dropna().astype(str))) if len(b) else []
    if admin_level is not None:
        b = b[b["admin_level"].astype(str) == str(admin_level)]
    elif len(levels) > 1:
        # Levels nest (city ⊃ district ⊃ street): mixing them would double count.
        counts = b["admin_level"].astype(str).value_counts()
        chosen = max(levels, key=lambda lv: (int(counts.get(lv, 0)), _level_number(lv)))
        warnings.warn(
            f"The OSM file has administrative boundaries at levels {', '.join(levels)}; "
            f"using admin_level={chosen} (the most boundaries). Choose with `--admin-level`.",
            stacklevel=2,
        )
        b = b[b["admin_level"].astype(str) == chosen]
    if b.empty:
        msg = (
            f"The OSM file has no administrative boundaries at admin_level={admin_level!r} "
            f"(levels present: {', '.join(levels) or 'none'}). Give a districts file with `--districts`."
        )
        raise InputError(msg)
    gdf = b.rename(columns={"name": DISTRICT})
    gdf[DISTRICT] = gdf[DISTRICT].where(gdf[DISTRICT].notna(), gdf["osm_id"].astype(str))
    return normalise_districts(gdf[[DISTRICT, gdf.geometry.name]])


def _level_number(level: str) -> float:
    try:
        return float(level)
    except ValueError:
        return -1.0


def normalise_districts(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Check and tidy a district layer: polygons, names as text, one row per name.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``district`` and geometry, RangeIndex; rows of one name dissolved.
    """
    if not isinstance(gdf, gpd.GeoDataFrame) or DISTRICT not in gdf.columns:
        msg = f"`districts` must be a GeoDataFrame with a {DISTRICT!r} column; read it with `districts_from_file`."
        raise InputError(msg)
    if gdf.crs is None:
        msg = "`districts` has no CRS; set it (e.g. `gdf.set_crs('EPSG:4326')`)."
        raise InputError(msg)
    gdf = gdf[[DISTRICT, gdf.geometry.name]].copy()
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
    if gdf.empty:
        msg = "The districts layer holds no polygons; check the file and its name column."
        raise InputError(msg)
    types = set(gdf.geometry.geom_type)
    if not types <= {"Polygon", "MultiPolygon"}:
        msg = f"Districts must be polygons; found {', '.join(sorted(types))}. Use the polygon layer of the boundaries."
        raise InputError(msg)
    names = gdf[DISTRICT]
    if names.isna().any():
        msg = f"{int(names.isna().sum())} district(s) have no name; fill the name column."
        raise InputError(msg)
    gdf[DISTRICT] = names.astype(str).str.strip()
    if gdf[DISTRICT].duplicated().any():
        # Several polygons of one district (islands): one row each.
        gdf = gdf.dissolve(by=DISTRICT, as_index=False, sort=False)
    gdf.geometry = shapely.make_valid(gdf.geometry.values)
    return gdf.reset_index(drop=True)


def district_folders(names: Sequence[str]) -> list[str]:
    """A unique, safe folder name per district (Chinese kept; clashes get ``_2``, ``_3``...)."""
    from coverage.export import safe_filename

    out: list[str] = []
    seen: set[str] = set()
    for name in names:
        base = safe_filename(name, default="district")
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
    source_name: str = ""
    source_sha256: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


@lru_cache(maxsize=2)
def _city_parts(
    work_dir: str, city_key: str
) -> tuple[WalkNetwork, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Load the shared city files once per worker process (``city_key`` keys the cache)."""
    w = Path(work_dir)
    net = load_network(w / "network.npz")
    centers = gpd.read_parquet(w / "centers.parquet")
    demand = gpd.read_parquet(w / "demand.parquet")
    _ = net.edge_tree  # build the spatial index once, not per district
    logger.info("worker loaded city %s: %d nodes", city_key[:8], net.n_nodes)
    return net, centers, demand


def district_key(
    city_key: str, geometry_wkb: bytes, demand_rows: NDArray[np.int64], params: BatchParams
) -> str:
    """Identity of one district's inputs: its outputs are redone only when this changes."""
    blob = json.dumps(
        {"city": city_key, "params": asdict(params), "v": BATCH_SCHEMA_VERSION}, sort_keys=True
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


def _audit_district(task: DistrictTask) -> dict[str, Any]:
    from coverage.audit import AuditParams, audit

    params = task.params
    net, centers, demand = _city_parts(task.work_dir, task.city_key)
    area = shapely.from_wkb(task.geometry_wkb)
    own = demand.iloc[np.asarray(task.demand_rows, dtype=np.int64)]
    population = float(own[POPULATION].sum()) if len(own) else 0.0
    row: dict[str, Any] = {
        DISTRICT: task.name,
        STATUS: STATUS_OK,
        ERROR: "",
        POPULATION: population,
        DEMAND_UNITS: len(own),
    }
    row[CENTERS] = int(shapely.covers(area, np.asarray(centers.geometry.values)).sum())
    if own.empty or population <= 0:
        row[STATUS] = STATUS_NO_RESIDENTS
        _write_status(task, row)
        return row
    if net.edge_tree.query(area, predicate="intersects").size == 0:
        row[STATUS] = STATUS_NO_NETWORK
        _write_status(task, row)
        return row
    zone = shapely.buffer(area, params.buffer_m)
    sub, edge_map = clip_network(net, zone, keep_edges=own[SNAP_EDGE].to_numpy())
    local_demand = own.copy()
    local_demand[SNAP_EDGE] = edge_map[own[SNAP_EDGE].to_numpy()]
    local_demand = local_demand.reset_index(drop=True)
    c_edge = edge_map[centers[SNAP_EDGE].to_numpy()]
    # A center whose access leg alone exceeds the buffer cannot serve anyone here.
    keep = (c_edge >= 0) & (centers[SNAP_DISTANCE_M].to_numpy() <= params.buffer_m)
    local_centers = centers[keep].copy()
    local_centers[SNAP_EDGE] = c_edge[keep]
    local_centers = local_centers.reset_index(drop=True)
    row[CENTERS_USED] = len(local_centers)
    siting = _propose(sub, local_demand, local_centers, area, params) if params.new_k else None
    if siting is not None:
        row[SITES_PROPOSED] = len(siting.sites)
        row[SHARE_AFTER] = float(siting.share_after)
    if local_centers.empty:
        # still a full audit (nobody covered): its uncovered areas are the district's gap map
        row[STATUS] = STATUS_NO_CENTERS
    result = audit(
        sub,
        local_centers,
        local_demand,
        AuditParams(speed_kmh=params.speed_kmh, thresholds_min=params.thresholds_min),
        with_polygons=params.with_polygons,
    )
    for t in params.thresholds_min:
        stats = result.coverage[threshold_key(t)]
        row[share_column(t)] = float(stats.share)
        row[uncovered_column(t)] = float(result.population_total - stats.population_covered)
    _write_audit(task, sub, result, siting, row)
    return row


def _propose(
    net: WalkNetwork,
    demand: gpd.GeoDataFrame,
    centers: gpd.GeoDataFrame,
    area: shapely.Geometry,
    params: BatchParams,
) -> Any:
    """New sites for one district, placed inside it when it has any candidate."""
    from coverage.siting import SitingParams, candidate_sites, propose_sites

    sp = SitingParams(
        k=params.new_k, minutes=max(params.thresholds_min), speed_kmh=params.speed_kmh
    )
    cand = candidate_sites(net, demand, spacing_m=sp.spacing_m, max_distance_m=sp.max_distance_m)
    inside = cand[shapely.covers(area, np.asarray(cand.geometry.values))]
    return propose_sites(
        net,
        demand,
        centers if len(centers) else None,
        params=sp,
        candidates=(inside if len(inside) else cand).reset_index(drop=True),
    )


def _write_status(task: DistrictTask, row: Mapping[str, Any]) -> None:
    """A district without an audit still gets a complete, resumable output folder."""
    from coverage import export

    doc = {
        "schema_version": export.SCHEMA_VERSION,
        DISTRICT: task.name,
        STATUS: row[STATUS],
        POPULATION: row.get(POPULATION, 0.0),
        "input": {"file": task.source_name, "sha256": task.source_sha256},
    }
    _commit(task, {export.SUMMARY_JSON: json_bytes(doc)}, row)


def _write_audit(
    task: DistrictTask, net: WalkNetwork, result: Any, siting: Any, row: Mapping[str, Any]
) -> None:
    from coverage import export

    files = export.output_files(
        net=net,
        audit=result,
        siting=siting,
        title=task.name,
        source_name=task.source_name,
        source_sha256=task.source_sha256,
        extra={DISTRICT: task.name, "clip_buffer_m": task.params.buffer_m, **task.extra},
        report=task.params.with_report,
    )
    _commit(task, files, row)


def _commit(task: DistrictTask, files: dict[str, bytes], row: Mapping[str, Any]) -> None:
    """Add ``batch.json`` (input key, row, checksums) and swap the folder in atomically."""
    from coverage import export

    stamp = {
        "schema_version": BATCH_SCHEMA_VERSION,
        DISTRICT: task.name,
        "input_key": task.key,
        "row": dict(row),
        "files": {n: hashlib.sha256(b).hexdigest() for n, b in sorted(files.items())},
    }
    files[BATCH_JSON] = json_bytes(stamp)
    target = Path(task.out_dir)
    if (target / BATCH_JSON).is_file() and not (target / export.SUMMARY_JSON).is_file():
        # Our own folder, damaged (summary.json deleted): export refuses to replace a
        # folder without it, so move the remains aside; the sweep removes them.
        target.rename(target.with_name(f".{target.name}.old-{os.getpid()}-{time.monotonic_ns()}"))
    export.write_outputs(target, files)


def completed_row(out_dir: Path | str, key: str) -> dict[str, Any] | None:
    """The stored summary row of a district whose outputs are complete for ``key``, else None.

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


def prepare_work_dir(city: Any, work_dir: Path) -> str:
    """Write the city's network, centers and demand as files for the workers.

    Returns
    -------
    str
        The city key (hash of the files' content) that decides what to rerun.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    save_network(city.net, work_dir / "network.npz")
    _atomic_parquet(city.centers, work_dir / "centers.parquet")
    _atomic_parquet(city.demand, work_dir / "demand.parquet")
    h = hashlib.sha256()
    h.update(city.net.source_sha256.encode())
    h.update(str(getattr(city, "source_sha256", "")).encode())
    for name in ("centers.parquet", "demand.parquet"):
        gdf = gpd.read_parquet(work_dir / name)
        table = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
        h.update(pd.util.hash_pandas_object(table, index=True).to_numpy().tobytes())
        h.update(b"".join(shapely.to_wkb(np.asarray(gdf.geometry.values))))
    return h.hexdigest()[:32]


def _atomic_parquet(gdf: gpd.GeoDataFrame, path: Path) -> None:
    atomic_write(path, gdf.to_parquet)


def _sweep_temporaries(out: Path) -> None:
    """Remove half-written folders left by a run that was killed."""
    with contextlib.suppress(OSError):
        for p in out.iterdir():
            if _TMP_PATTERN.match(p.name):
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        p.unlink()


def run_districts(
    city: Any,
    districts: gpd.GeoDataFrame,
    out_dir: Path | str,
    *,
    params: BatchParams | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    force: bool = False,
    progress: ProgressFn | None = None,
) -> BatchResult:
    """Audit every district of ``city``; serially, on a local Dask cluster, or on ``scheduler``.

    Parameters
    ----------
    city
        A :class:`coverage.scenario.CityData` (``net``, ``centers``, ``demand``).
    districts
        Output of :func:`districts_from_file` or :func:`districts_from_osm`.
    out_dir
        ``OUT``: gets ``OUT/<district>/``, ``summary.csv``, ``summary.json``,
        ``districts.geojson`` and ``report.html``.
    params
        Shared parameters (default :class:`BatchParams`).
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
        ``uncovered_population_<t>`` per threshold, ``centers`` (in the
        district), ``centers_used`` (within the buffer), ``demand_units``,
        ``sites_proposed`` and ``share_after`` (longest threshold) with
        ``new_k``, ``error``, ``seconds``, ``folder``, ``recomputed``.
    """
    params = BatchParams() if params is None else params
    if isinstance(workers, bool) or int(workers) != workers or workers < 1:
        msg = f"`workers` must be a whole number of at least 1; got {workers!r}."
        raise InputError(msg)
    if scheduler is not None:
        _check_scheduler_address(scheduler)
    districts = normalise_districts(districts)
    out = Path(out_dir).expanduser().absolute()
    if out.exists() and not out.is_dir():
        msg = f"Output path {str(out)!r} is a file; give a folder with `--out`."
        raise InputError(msg)
    out.mkdir(parents=True, exist_ok=True)
    _sweep_temporaries(out)
    work = out / WORK_DIR
    t0 = time.perf_counter()
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
                params=params,
                out_dir=str(out / folders[i]),
                key=district_key(city_key, wkb, rows, params),
                source_name=str(getattr(city, "source_name", "")),
                source_sha256=str(getattr(city, "source_sha256", "")),
            )
        )
    logger.info("prepared %d districts in %.1f s", len(tasks), time.perf_counter() - t0)

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

    try:
        if not todo:
            pass
        elif scheduler is None and workers <= 1:
            for task in todo:
                report(audit_district(task))
        else:
            _run_on_dask(todo, workers=workers, scheduler=scheduler, report=report)
    except BaseException:
        if scheduler is None:  # our own workers are gone: nothing can still be writing
            _sweep_temporaries(out)
        raise

    summary = _summary_table(
        [{**rows_by_name[t.name], FOLDER: Path(t.out_dir).name} for t in tasks], params
    )
    _write_batch_summary(out, summary, districts, params, city)
    n_err = int((summary[STATUS] == STATUS_ERROR).sum())
    logger.info(
        "batch of %d districts done in %.1f s: %d recomputed, %d failed",
        total,
        time.perf_counter() - t0,
        int(summary[RECOMPUTED].sum()),
        n_err,
    )
    return BatchResult(summary=summary, out_dir=out)


def _check_scheduler_address(address: str) -> None:
    if not isinstance(address, str) or not re.fullmatch(
        r"(tcp|tls|inproc|ucx|ws|wss)://[^\s/]+(:\d+)?/?", address
    ):
        msg = f"`scheduler` must be a Dask scheduler address such as 'tcp://10.0.0.5:8786'; got {address!r}."
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
            silence_logs=logging.WARNING,
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
    if params.new_k:
        cols += [SITES_PROPOSED, SHARE_AFTER]
    cols += [ERROR, SECONDS, FOLDER, RECOMPUTED]
    table = pd.DataFrame(rows).reindex(columns=cols)
    table[ERROR] = table[ERROR].fillna("")
    table[RECOMPUTED] = table[RECOMPUTED].astype(bool)
    for c in (DEMAND_UNITS, CENTERS, CENTERS_USED, *([SITES_PROPOSED] if params.new_k else [])):
        table[c] = table[c].astype("Int64")
    return table


def _write_batch_summary(
    out: Path,
    summary: pd.DataFrame,
    districts: gpd.GeoDataFrame,
    params: BatchParams,
    city: Any,
) -> None:
    from coverage import export

    layer = gpd.GeoDataFrame(
        summary.drop(columns=[ERROR, RECOMPUTED]),
        geometry=np.asarray(districts.geometry.values),
        crs=districts.crs,
    )
    doc = {
        "schema_version": BATCH_SCHEMA_VERSION,
        "input": {
            "file": getattr(city, "source_name", None),
            "sha256": getattr(city, "source_sha256", None),
        },
        "params": {
            "walk_speed_kmh": params.speed_kmh,
            "thresholds_min": list(params.thresholds_min),
            "new_k": params.new_k,
            "clip_buffer_m": params.buffer_m,
        },
        "districts": summary.to_dict(orient="records"),
    }
    files: dict[str, bytes] = {
        "summary.csv": export.csv_bytes(summary),
        "summary.json": json_bytes(doc),
        "districts.geojson": export.geojson_bytes(layer, what="districts"),
        "report.html": _index_html(summary, params).encode("utf-8"),
    }
    for fname, data in files.items():
        atomic_write_bytes(out / fname, data)


def _cell(column: str, value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and column.startswith("share"):
        return f"{value:.1%}"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 10 else f"{value:.2f}"
    return str(value)


def _index_html(table: pd.DataFrame, params: BatchParams) -> str:
    """A standalone page ranking districts by uncovered population at the longest threshold."""
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
    *,
    osm: Path | str,
    districts: Path | str | None,
    out: Path | str,
    name_column: str = "name",
    admin_level: str | int | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    new_k: int | None = None,
    centers: Path | str | None = None,
    centers_crs: str = "wgs84",
    speed_kmh: float = 4.5,
    thresholds_min: Sequence[float] = (5.0, 15.0),
    force: bool = False,
    cache_dir: Path | str | None = None,
    progress: ProgressFn | None = None,
) -> BatchResult:
    """The ``coverage-planner batch`` command as a function (see :func:`run_districts`).

    Loading the city takes the first 30 % of ``progress``; the districts the rest.
    """
    from coverage.netcache import DEFAULT_CACHE_DIR
    from coverage.scenario import load_city

    params = BatchParams(speed_kmh=speed_kmh, thresholds_min=tuple(thresholds_min), new_k=new_k)
    if isinstance(workers, bool) or int(workers) != workers or workers < 1:
        msg = f"`workers` must be a whole number of at least 1; got {workers!r}."
        raise InputError(msg)
    if scheduler is not None:
        _check_scheduler_address(scheduler)
        _probe_scheduler(scheduler)  # fail before the slow city load
    d = None
    if districts is not None:  # a bad districts file fails before the slow city load
        d = districts_from_file(districts, name_column=name_column)

    city = load_city(
        osm,
        centers_file=centers,
        centers_crs=centers_crs,
        cache_dir=DEFAULT_CACHE_DIR if cache_dir is None else cache_dir,
        progress=sub_progress(progress, 0.0, 0.3),
    )
    if d is None:
        d = districts_from_osm(city.extract, admin_level=admin_level)
    return run_districts(
        city,
        d,
        out,
        params=params,
        workers=workers,
        scheduler=scheduler,
        force=force,
        progress=sub_progress(progress, 0.3, 1.0),
    )
