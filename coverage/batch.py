"""Batch audits: one coverage audit per district, run serially or on Dask.

The city is loaded once by the driver (network from the disk cache, centers and
demand computed once) and written to a work folder as files: the network as the
``.npz`` cache format, centers and demand as GeoParquet. Each district task gets
paths, not objects; a worker process loads each file once and keeps it
(:func:`_city_parts`), so a 100,000-node network is never pickled into tasks.

Border effects: a district's audit uses the part of the network and the centers
within ``buffer_m`` of the district (the longest threshold's walking distance
plus the largest access leg), and counts only the residents whose
representative point lies in the district. Any path of length ``D`` from a
resident stays within ``D`` of that resident, so the clipped search gives the
same minutes as a search on the whole city.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from coverage.errors import InputError
from coverage.network import (
    SNAP_DISTANCE_M,
    SNAP_EDGE,
    WalkNetwork,
    load_network,
    save_network,
    speed_ms,
)
from coverage.osm import ProgressFn

logger = logging.getLogger(__name__)

DISTRICT = "district"
STATUS = "status"
ERROR = "error"
BATCH_SCHEMA_VERSION = 1

#: Status values of a district row in ``summary.csv``.
STATUS_OK = "ok"
STATUS_SKIPPED = "skipped (up to date)"
STATUS_NO_RESIDENTS = "no residents"
STATUS_NO_NETWORK = "no walkable streets"
STATUS_ERROR = "error"


@dataclass(frozen=True)
class BatchParams:
    """Parameters shared by every district's audit."""

    speed_kmh: float = 4.5
    thresholds_min: tuple[float, ...] = (5.0, 15.0)
    new_k: int | None = None
    margin_m: float = 300.0
    with_polygons: bool = True

    def __post_init__(self) -> None:
        speed_ms(self.speed_kmh)
        t = self.thresholds_min
        if not t or any(x <= 0 for x in t) or list(t) != sorted(set(t)):
            msg = (
                f"`thresholds_min` must be positive and strictly increasing, e.g. (5, 15); got {t}."
            )
            raise InputError(msg)
        if self.new_k is not None and self.new_k <= 0:
            msg = f"`new_k` must be a positive number of new stations; got {self.new_k}."
            raise InputError(msg)

    @property
    def buffer_m(self) -> float:
        """Walking distance of the longest threshold plus a margin for access legs."""
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
    """
    from coverage.userfiles import read_polygons

    gdf = read_polygons(source, filename=filename)
    if name_column not in gdf.columns:
        cols = ", ".join(c for c in gdf.columns if c != gdf.geometry.name)
        msg = f"District file has no column {name_column!r}; columns found: {cols}. Pass the name column with `--name-column`."
        raise InputError(msg)
    return _normalise_districts(gdf.rename(columns={name_column: DISTRICT}))


def districts_from_osm(extract: Any, *, admin_level: str | None = None) -> gpd.GeoDataFrame:
    """District polygons from ``boundary=administrative`` in the OSM extract."""
    b = extract.boundaries
    if admin_level is not None:
        b = b[b["admin_level"].astype(str) == str(admin_level)]
    if b.empty:
        levels = sorted(set(extract.boundaries["admin_level"].dropna().astype(str)))
        msg = (
            f"The OSM file has no administrative boundaries at admin_level={admin_level!r} "
            f"(levels present: {', '.join(levels) or 'none'}). Give a districts file with `--districts`."
        )
        raise InputError(msg)
    gdf = b.rename(columns={"name": DISTRICT})
    gdf[DISTRICT] = gdf[DISTRICT].fillna(gdf["osm_id"].astype(str))
    return _normalise_districts(gdf)


def _normalise_districts(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    gdf = gdf[[DISTRICT, gdf.geometry.name]].copy()
    gdf = gdf[~gdf.geometry.is_empty & gdf.geometry.notna()]
    types = set(gdf.geometry.geom_type)
    if not types <= {"Polygon", "MultiPolygon"}:
        msg = f"Districts must be polygons; found {', '.join(sorted(types))}."
        raise InputError(msg)
    if gdf.empty:
        msg = "The districts file holds no polygons."
        raise InputError(msg)
    gdf[DISTRICT] = gdf[DISTRICT].astype(str).str.strip()
    dup = gdf[DISTRICT][gdf[DISTRICT].duplicated()].unique()
    if len(dup):
        # Several polygons of one district (islands): dissolve them.
        gdf = gdf.dissolve(by=DISTRICT, as_index=False)
    return gdf.reset_index(drop=True)


def safe_dirname(name: str) -> str:
    """A folder name for a district: no path separators, control characters or dots only.

    Chinese characters are kept; anything unsafe becomes ``_``.
    """
    s = unicodedata.normalize("NFC", str(name))
    s = "".join("_" if unicodedata.category(c).startswith("C") else c for c in s)
    s = re.sub(r'[\\/:*?"<>|]', "_", s).strip().strip(".")
    if (
        not s
        or s.upper() in {"CON", "PRN", "AUX", "NUL"}
        or re.fullmatch(r"(COM|LPT)\d", s.upper())
    ):
        s = f"_{s}"
    return s[:100]


# --- clipping -----------------------------------------------------------------


def clip_network(
    net: WalkNetwork, area: shapely.Geometry, *, keep_edges: Iterable[int] = ()
) -> tuple[WalkNetwork, np.ndarray]:
    """Return the edges of ``net`` that intersect ``area`` as a new network.

    Returns
    -------
    (WalkNetwork, numpy.ndarray)
        The clipped network and, for every edge of ``net``, its index in the
        clipped network (``-1`` where the edge was cut away).
    """
    hits = net.edge_tree.query(area, predicate="intersects")
    edges = np.unique(np.concatenate([hits, np.asarray(list(keep_edges), dtype=np.int64)]))
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


@lru_cache(maxsize=4)
def _city_parts(work_dir: str) -> tuple[WalkNetwork, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Load the shared city files once per worker process."""
    w = Path(work_dir)
    net = load_network(w / "network.npz")
    centers = gpd.read_parquet(w / "centers.parquet")
    demand = gpd.read_parquet(w / "demand.parquet")
    return net, centers, demand


def district_key(city_key: str, geometry_wkb: bytes, params: BatchParams) -> str:
    """Identity of one district's inputs: rerun only when this changes."""
    blob = json.dumps(
        {"city": city_key, "params": asdict(params), "v": BATCH_SCHEMA_VERSION}, sort_keys=True
    ).encode()
    return hashlib.sha256(blob + geometry_wkb).hexdigest()[:32]


def audit_district(
    work_dir: str,
    name: str,
    geometry_wkb: bytes,
    params: BatchParams,
    out_dir: str,
    key: str,
) -> dict[str, Any]:
    """Audit one district and write its outputs to ``out_dir``; return its summary row.

    Never raises for a problem of the district's own data: the row's ``status``
    and ``error`` say what happened.
    """
    t0 = time.perf_counter()
    row: dict[str, Any] = {DISTRICT: name, STATUS: STATUS_OK, ERROR: ""}
    try:
        row.update(_audit_district(work_dir, name, geometry_wkb, params, Path(out_dir), key))
    except Exception as exc:  # one bad district must not stop the batch
        logger.exception("district %s failed", name)
        row[STATUS] = STATUS_ERROR
        row[ERROR] = f"{type(exc).__name__}: {exc}"
    row["seconds"] = round(time.perf_counter() - t0, 3)
    return row


def _audit_district(
    work_dir: str, name: str, geometry_wkb: bytes, params: BatchParams, out_dir: Path, key: str
) -> dict[str, Any]:
    from coverage.audit import AuditParams, audit

    net, centers, demand = _city_parts(work_dir)
    area = shapely.from_wkb(geometry_wkb)
    rep = shapely.point_on_surface(demand.geometry.values)
    inside = shapely.contains_xy(area, shapely.get_x(rep), shapely.get_y(rep)) | shapely.intersects(
        area, rep
    )
    own = demand[inside]
    row: dict[str, Any] = {
        "population": float(own["population"].sum()) if len(own) else 0.0,
        "demand_units": len(own),
    }
    if own.empty or row["population"] <= 0:
        row[STATUS] = STATUS_NO_RESIDENTS
        _write_status(out_dir, name, key, row)
        return row
    zone = shapely.buffer(area, params.buffer_m)
    if net.edge_tree.query(area, predicate="intersects").size == 0:
        row[STATUS] = STATUS_NO_NETWORK
        _write_status(out_dir, name, key, row)
        return row
    sub, edge_map = clip_network(net, zone, keep_edges=own[SNAP_EDGE].to_numpy())
    local_demand = own.copy()
    local_demand[SNAP_EDGE] = edge_map[own[SNAP_EDGE].to_numpy()]
    local_centers = centers[edge_map[centers[SNAP_EDGE].to_numpy()] >= 0].copy()
    local_centers[SNAP_EDGE] = edge_map[local_centers[SNAP_EDGE].to_numpy()]
    # A center whose access leg alone exceeds the buffer cannot serve anyone here.
    local_centers = local_centers[local_centers[SNAP_DISTANCE_M] <= params.buffer_m]
    row["centers_in_district"] = int(shapely.contains(area, local_centers.geometry.values).sum())
    row["centers_used"] = len(local_centers)
    if local_centers.empty:
        row[STATUS] = STATUS_OK
        row.update(_no_center_shares(params, row["population"]))
        _write_status(out_dir, name, key, row)
        return row
    result = audit(
        sub,
        local_centers.reset_index(drop=True),
        local_demand.reset_index(drop=True),
        AuditParams(speed_kmh=params.speed_kmh, thresholds_min=params.thresholds_min),
        with_polygons=params.with_polygons,
    )
    for t, stats in result.coverage.items():
        row[f"share_{t}"] = float(stats.share)
        row[f"uncovered_population_{t}"] = float(result.population_total - stats.population_covered)
    siting = None
    if params.new_k:
        from coverage.siting import SitingParams, propose_sites

        siting = propose_sites(
            sub,
            local_demand.reset_index(drop=True),
            local_centers.reset_index(drop=True),
            params=SitingParams(
                k=params.new_k, minutes=max(params.thresholds_min), speed_kmh=params.speed_kmh
            ),
        )
        row["sites_proposed"] = len(siting.sites)
        row["share_after"] = float(siting.share_after)
    _write_district_outputs(out_dir, name, key, sub, result, siting, row)
    return row


def _no_center_shares(params: BatchParams, population: float) -> dict[str, float]:
    out: dict[str, float] = {}
    for t in params.thresholds_min:
        label = f"{t:g}"
        out[f"share_{label}"] = 0.0
        out[f"uncovered_population_{label}"] = population
    return out


def _write_status(out_dir: Path, name: str, key: str, row: Mapping[str, Any]) -> None:
    """A district without an audit still gets a complete, resumable output folder."""
    _commit_dir(out_dir, {"summary.json": _summary_bytes(name, key, row)})


def _summary_bytes(
    name: str, key: str, row: Mapping[str, Any], extra: Mapping[str, Any] | None = None
) -> bytes:
    doc = {
        "schema_version": BATCH_SCHEMA_VERSION,
        DISTRICT: name,
        "input_key": key,
        "row": dict(row),
    }
    if extra:
        doc.update(extra)
    return json.dumps(doc, ensure_ascii=False, indent=2, default=_json_default).encode("utf-8")


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    msg = f"not JSON serialisable: {type(o).__name__}"
    raise TypeError(msg)


def _write_district_outputs(
    out_dir: Path,
    name: str,
    key: str,
    net: WalkNetwork,
    result: Any,
    siting: Any,
    row: Mapping[str, Any],
) -> None:
    from coverage import export

    files = export.output_files(net=net, audit=result, siting=siting, title=name)
    summary = json.loads(files.pop("summary.json"))
    summary[DISTRICT] = name
    summary["input_key"] = key
    summary["row"] = dict(row)
    files["summary.json"] = json.dumps(
        summary, ensure_ascii=False, indent=2, default=_json_default
    ).encode()
    _commit_dir(out_dir, files)


def _commit_dir(out_dir: Path, files: Mapping[str, bytes | str]) -> None:
    """Write ``files`` into ``out_dir`` all-or-nothing (temporary folder, then rename)."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp-"))
    try:
        for fname, data in files.items():
            path = tmp / fname
            payload = data.encode("utf-8") if isinstance(data, str) else data
            with path.open("wb") as fh:
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
        old = None
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}-{time.monotonic_ns()}")
            out_dir.rename(old)
        tmp.rename(out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _is_complete(out_dir: Path, key: str) -> dict[str, Any] | None:
    summary = out_dir / "summary.json"
    if not summary.is_file():
        return None
    try:
        doc = json.loads(summary.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if doc.get("input_key") != key or not isinstance(doc.get("row"), dict):
        return None
    row: dict[str, Any] = doc["row"]
    return row if row.get(STATUS) != STATUS_ERROR else None


# --- the batch ------------------------------------------------------------------


@dataclass(frozen=True)
class BatchResult:
    """One row per district (``summary``) and where the outputs are."""

    summary: pd.DataFrame
    out_dir: Path


def prepare_work_dir(city: Any, work_dir: Path) -> str:
    """Write the city's network, centers and demand as files for the workers.

    Returns the city key (hash of the inputs) used to decide what to rerun.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    save_network(city.net, work_dir / "network.npz")
    _atomic_parquet(city.centers, work_dir / "centers.parquet")
    _atomic_parquet(city.demand, work_dir / "demand.parquet")
    h = hashlib.sha256()
    h.update(city.source_sha256.encode())
    for name in ("centers.parquet", "demand.parquet"):
        gdf = gpd.read_parquet(work_dir / name)
        h.update(
            pd.util.hash_pandas_object(gdf.drop(columns=gdf.geometry.name), index=True)
            .to_numpy()
            .tobytes()
        )
        h.update(b"".join(shapely.to_wkb(gdf.geometry.values)))
    _city_parts.cache_clear()
    return h.hexdigest()[:32]


def _atomic_parquet(gdf: gpd.GeoDataFrame, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".parquet")
    os.close(fd)
    try:
        gdf.to_parquet(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def run_districts(
    city: Any,
    districts: gpd.GeoDataFrame,
    out_dir: Path | str,
    *,
    params: BatchParams = BatchParams(),
    workers: int = 1,
    scheduler: str | None = None,
    force: bool = False,
    progress: ProgressFn | None = None,
) -> BatchResult:
    """Audit every district of ``city``; serially, on a local Dask cluster, or on ``scheduler``.

    Parameters
    ----------
    city
        A :class:`coverage.scenario.CityData`.
    districts
        Output of :func:`districts_from_file` or :func:`districts_from_osm`.
    out_dir
        ``OUT``: gets ``OUT/<district>/``, ``summary.csv``, ``summary.json``,
        ``districts.geojson`` and ``report.html``.
    workers
        ``1`` runs in this process; more starts a local Dask cluster with that
        many single-threaded worker processes.
    scheduler
        Address of an existing Dask scheduler (``tcp://HOST:PORT``); its workers
        must see ``out_dir`` at the same path (a shared file system).
    force
        Redo districts whose outputs are complete and up to date.

    Returns
    -------
    BatchResult
        ``summary`` has one row per district: ``district``, ``status``,
        ``error``, ``population``, ``share_<t>`` and ``uncovered_population_<t>``
        per threshold, ``centers_in_district``, ``sites_proposed`` and
        ``share_after`` with ``new_k``, ``seconds``.
    """
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = out / ".work"
    city_key = prepare_work_dir(city, work)
    d_proj = districts.to_crs(city.net.crs)
    tasks: list[tuple[str, bytes, str, Path]] = []
    used: dict[str, int] = {}
    for name, geom in zip(d_proj[DISTRICT], d_proj.geometry.values, strict=True):
        folder = safe_dirname(name)
        if folder in used:
            used[folder] += 1
            folder = f"{folder}_{used[folder]}"
        else:
            used[folder] = 0
        wkb = shapely.to_wkb(geom)
        tasks.append((name, wkb, district_key(city_key, wkb, params), out / folder))

    rows: dict[str, dict[str, Any]] = {}
    todo = []
    for name, wkb, key, path in tasks:
        done = None if force else _is_complete(path, key)
        if done is not None:
            rows[name] = {**done, STATUS: done.get(STATUS, STATUS_OK), "rerun": False}
        else:
            todo.append((name, wkb, key, path))
    if len(rows):
        logger.info("%d of %d districts up to date; skipping them", len(rows), len(tasks))

    total = len(tasks)

    def report(row: dict[str, Any]) -> None:
        rows[row[DISTRICT]] = {**row, "rerun": True}
        if progress:
            progress(len(rows) / total, f"district {row[DISTRICT]}: {row[STATUS]}")

    args = [(str(work), n, w, params, str(f), k) for n, w, k, f in todo]
    if scheduler is None and workers <= 1:
        for a in args:
            report(audit_district(*a))
    else:
        _run_on_dask(args, workers=workers, scheduler=scheduler, report=report)

    summary = pd.DataFrame([rows[n] for n, *_ in tasks])
    _write_batch_summary(out, summary, districts)
    return BatchResult(summary=summary, out_dir=out)


def _run_on_dask(
    args: list[tuple[Any, ...]],
    *,
    workers: int,
    scheduler: str | None,
    report: Callable[[dict[str, Any]], None],
) -> None:
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    try:
        if scheduler is not None:
            try:
                client = Client(scheduler, timeout="10s")
            except (OSError, TimeoutError) as exc:
                msg = f"Cannot reach the Dask scheduler at {scheduler!r} ({exc}). Start it with `dask scheduler` and check the address."
                raise InputError(msg) from exc
        else:
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.WARNING,
            )
            client = Client(cluster)
        with client:
            futures = [
                client.submit(audit_district, *a, key=f"district-{i}-{a[5]}", pure=False)
                for i, a in enumerate(args)
            ]
            for fut in as_completed(futures):
                report(fut.result())
    finally:
        if cluster is not None:
            cluster.close()


def _write_batch_summary(out: Path, summary: pd.DataFrame, districts: gpd.GeoDataFrame) -> None:
    share_cols = sorted(
        (c for c in summary.columns if c.startswith("share_") and c != "share_after"),
        key=lambda c: float(c.split("_")[1]),
    )
    first = [DISTRICT, STATUS, "population", *share_cols]
    cols = first + [c for c in summary.columns if c not in first]
    table = summary.reindex(columns=cols)
    layer = districts[[DISTRICT, districts.geometry.name]].merge(
        table.drop(columns=["error"], errors="ignore"), on=DISTRICT, how="left"
    )
    files: dict[str, bytes] = {
        "summary.csv": table.to_csv(index=False).encode("utf-8-sig"),
        "summary.json": json.dumps(
            {
                "schema_version": BATCH_SCHEMA_VERSION,
                "districts": table.replace({np.nan: None}).to_dict(orient="records"),
            },
            ensure_ascii=False,
            indent=2,
            default=_json_default,
        ).encode("utf-8"),
        "districts.geojson": layer.to_crs("EPSG:4326")
        .to_json(na="null", drop_id=True, ensure_ascii=False)
        .encode("utf-8"),
        "report.html": _index_html(table).encode("utf-8"),
    }
    for fname, data in files.items():
        _atomic_bytes(out / fname, data)


def _atomic_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _index_html(table: pd.DataFrame) -> str:
    """A small standalone page ranking districts by uncovered population."""
    import html

    unc = sorted(c for c in table.columns if c.startswith("uncovered_population_"))
    key = unc[-1] if unc else "population"
    ranked = table.sort_values(key, ascending=False, na_position="last")
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in ranked.columns if c != "rerun")
    body = []
    for _, r in ranked.iterrows():
        cells = []
        for c in ranked.columns:
            if c == "rerun":
                continue
            v = r[c]
            if isinstance(v, float) and c.startswith("share"):
                text = "" if np.isnan(v) else f"{v:.1%}"
            elif isinstance(v, float):
                text = "" if np.isnan(v) else f"{v:,.0f}" if abs(v) >= 10 else f"{v:.2f}"
            else:
                text = str(v)
            folder = safe_dirname(str(r[DISTRICT]))
            if c == DISTRICT:
                cells.append(
                    f'<td><a href="{html.escape(folder)}/report.html">{html.escape(text)}</a></td>'
                )
            else:
                cells.append(f"<td>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        "<!doctype html><html lang='zh'><head><meta charset='utf-8'>"
        "<title>各区覆盖审计 District coverage audit</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child{text-align:left}</style>"
        "</head><body><h1>各区覆盖审计 · District coverage audit</h1>"
        f"<p>按未覆盖人口排序 · ranked by uncovered population ({html.escape(key)}).</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        "<p>Map data © OpenStreetMap contributors (ODbL).</p></body></html>"
    )


def run_batch(
    *,
    osm: Path | str,
    districts: Path | str | None,
    out: Path | str,
    name_column: str = "name",
    admin_level: str | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    new_k: int | None = None,
    centers: Path | str | None = None,
    centers_crs: str = "wgs84",
    speed_kmh: float = 4.5,
    thresholds_min: tuple[float, ...] = (5.0, 15.0),
    force: bool = False,
    cache_dir: Path | str | None = None,
    progress: ProgressFn | None = None,
) -> BatchResult:
    """The ``coverage-planner batch`` command as a function (see :func:`run_districts`)."""
    from coverage.network import DEFAULT_CACHE_DIR
    from coverage.scenario import load_city

    params = BatchParams(speed_kmh=speed_kmh, thresholds_min=tuple(thresholds_min), new_k=new_k)
    if workers < 1:
        msg = f"`workers` must be at least 1; got {workers}."
        raise InputError(msg)
    city = load_city(
        osm,
        centers_file=centers,
        centers_crs=centers_crs,
        cache_dir=DEFAULT_CACHE_DIR if cache_dir is None else cache_dir,
    )
    if districts is not None:
        d = districts_from_file(districts, name_column=name_column)
    else:
        d = districts_from_osm(city.extract, admin_level=admin_level)
    return run_districts(
        city,
        d,
        out,
        params=params,
        workers=workers,
        scheduler=scheduler,
        force=force,
        progress=progress,
    )
