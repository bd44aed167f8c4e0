"""The on-disk network cache: build a walking network once per input file, then load it.

A cached network is an ``.npz`` file of plain arrays (no pickles) with a JSON
metadata record and a SHA-256 checksum of the arrays. Its name is derived from
the input file's hash, the build parameters and :data:`NETWORK_VERSION`, so an
edited extract or a changed build never reuses a stale file. A corrupt or
unreadable cache file is logged and rebuilt; an unwritable cache folder only
costs the rebuild next time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray

from coverage.errors import InputError
from coverage.fileio import atomic_write
from coverage.network import WalkNetwork, network_from_ways
from coverage.osm import OsmExtract, check_osm_file, file_sha256, read_osm
from coverage.progress import ProgressFn

logger = logging.getLogger(__name__)

#: Bump when the network build changes, so stale caches are not reused.
NETWORK_VERSION = "4"  # 4: UTM zone from the median node; segments > 20 km dropped
DEFAULT_CACHE_DIR = Path(
    os.environ.get("COVERAGE_PLANNER_CACHE", Path.home() / ".cache" / "coverage-planner")
)


def cache_key(source_sha256: str) -> str:
    """Key of a cached network: input file hash, build parameters and code version."""
    params = {"network_version": NETWORK_VERSION, "filter": "walk"}
    blob = json.dumps({"sha256": source_sha256, **params}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def save_network(net: WalkNetwork, path: Path) -> Path:
    """Write ``net`` to ``path`` (``.npz``) atomically, with a checksum of the arrays."""
    arrays = _network_arrays(net)
    meta = {
        "crs": net.crs,
        "source_sha256": net.source_sha256,
        "stats": net.stats,
        "network_version": NETWORK_VERSION,
        "checksum": _checksum(arrays),
    }
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    return atomic_write(path, lambda fh: np.savez(fh, **arrays))  # type: ignore[arg-type]


def load_network(path: Path) -> WalkNetwork:
    """Read a network written by :func:`save_network`.

    Raises
    ------
    InputError
        The file is unreadable, has no valid metadata or fails its checksum; the
        message says to delete it so that it is rebuilt.
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        msg = f"Network cache {path.name!r} is unreadable ({exc}); delete it to rebuild."
        raise InputError(msg) from exc
    try:
        meta = json.loads(arrays.pop("meta").tobytes().decode())
    except (KeyError, ValueError) as exc:
        msg = f"Network cache {path.name!r} has no valid metadata; delete it to rebuild."
        raise InputError(msg) from exc
    if meta.get("checksum") != _checksum(arrays):
        msg = f"Network cache {path.name!r} failed its checksum; delete it to rebuild."
        raise InputError(msg)
    geometry = shapely.from_ragged_array(
        shapely.GeometryType.LINESTRING, arrays["geom_coords"], (arrays["geom_offsets"],)
    )
    return WalkNetwork(
        crs=meta["crs"],
        node_osmid=arrays["node_osmid"],
        node_x=arrays["node_x"],
        node_y=arrays["node_y"],
        edge_u=arrays["edge_u"],
        edge_v=arrays["edge_v"],
        edge_length_m=arrays["edge_length_m"],
        edge_highway=arrays["edge_highway"].astype(object),
        edge_geometry=np.asarray(geometry, dtype=object),
        source_sha256=meta["source_sha256"],
        stats=meta["stats"],
    )


def _network_arrays(net: WalkNetwork) -> dict[str, NDArray[Any]]:
    _, coords, (offsets,) = shapely.to_ragged_array(net.edge_geometry)
    return {
        "node_osmid": net.node_osmid,
        "node_x": net.node_x,
        "node_y": net.node_y,
        "edge_u": net.edge_u,
        "edge_v": net.edge_v,
        "edge_length_m": net.edge_length_m,
        "edge_highway": net.edge_highway.astype(str),
        "geom_coords": coords,
        "geom_offsets": offsets,
    }


def _checksum(arrays: dict[str, NDArray[Any]]) -> str:
    digest = hashlib.sha256()
    for name in sorted(arrays):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(arrays[name]).tobytes())
    return digest.hexdigest()


def walk_network(
    path: Path | str,
    *,
    cache_dir: Path | str | None = DEFAULT_CACHE_DIR,
    extract: OsmExtract | None = None,
    memory_budget_bytes: int | None = None,
    progress: ProgressFn | None = None,
    sha256: str | None = None,
) -> WalkNetwork:
    """Return the walking network of an OSM file, from the disk cache when possible.

    Parameters
    ----------
    path
        Local OSM file (see :func:`coverage.osm.read_osm`).
    cache_dir
        Folder of cached networks; ``None`` disables the cache. A corrupt cache
        file is logged, ignored and rebuilt.
    extract
        An already-read extract of ``path``, to avoid reading the file twice.
    memory_budget_bytes
        See :func:`coverage.osm.check_osm_file`.
    progress
        Called with ``(fraction, message)``.
    sha256
        The file's SHA-256 when the caller has it already (saves hashing it again).

    Returns
    -------
    WalkNetwork
        The network :func:`coverage.network.network_from_ways` builds from ``path``.

    Raises
    ------
    InputError
        ``path`` is not a usable OSM file (see :func:`coverage.osm.check_osm_file`).
    """
    p = check_osm_file(path, memory_budget_bytes=memory_budget_bytes)
    sha = extract.sha256 if extract is not None else sha256 or file_sha256(p)
    cache_file = Path(cache_dir) / f"walk-{cache_key(sha)}.npz" if cache_dir is not None else None
    if cache_file is not None and cache_file.exists():
        try:
            net = load_network(cache_file)
        except InputError as exc:
            logger.warning("%s; rebuilding", exc)
        else:
            logger.info("loaded cached network %s (%d nodes)", cache_file.name, net.n_nodes)
            if progress:
                progress(1.0, "network loaded from cache")
            return net
    if extract is None:
        extract = read_osm(p, memory_budget_bytes=memory_budget_bytes)
    if progress:
        progress(0.1, "building the network")
    # the array build gives the same network as network_from_graph(walk_graph(...))
    # (tests/test_network.py checks it on the real fixtures) at ~1/80 of the time
    net = network_from_ways(extract, source_sha256=sha)
    if cache_file is not None:
        try:
            save_network(net, cache_file)
        except OSError as exc:
            logger.warning("could not write network cache %s: %s", cache_file, exc)
    if progress:
        progress(1.0, "network built")
    return net
