"""The on-disk cache of what a city load derives from an OSM file besides the network.

Demand units and OSM centers cost a full read of the OSM file, the residential
cell split and the snapping; a second run on the same file loads them from here
instead (:func:`coverage.inputs.load_city`). A cached frame is an ``.npz`` of
plain arrays (no pickles): numeric columns as arrays, text columns as one JSON
list, geometries as WKB in one byte buffer with offsets, and a JSON metadata
record with a SHA-256 checksum of the arrays. Its name is derived, like the
network cache's (:mod:`coverage.netcache`), from the input file's hash, the
parameters that shaped the frame, :data:`DERIVED_VERSION` and the network
version, so an edited extract, other parameters or a changed build never reuse a
stale file. An unreadable or corrupt file is logged and rebuilt; a frame the
format cannot hold exactly is simply not cached.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from coverage.fileio import atomic_write
from coverage.netcache import NETWORK_VERSION
from coverage.outcache import remember_geometry_digest, wkb_digest_head

logger = logging.getLogger(__name__)

#: Bump when demand or center derivation changes, so stale caches are not reused.
DERIVED_VERSION = "1"


def derived_key(source_sha256: str, kind: str, params: Mapping[str, Any]) -> str:
    """Key of one cached frame: input hash, ``kind``, its parameters and code versions."""
    blob = json.dumps(
        {
            "sha256": source_sha256,
            "kind": kind,
            "params": params,
            "derived_version": DERIVED_VERSION,
            "network_version": NETWORK_VERSION,
        },
        sort_keys=True,
        default=str,
    ).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def derived_path(cache_dir: Path | str, kind: str, key: str) -> Path:
    """File of the cached ``kind`` frame with ``key`` in ``cache_dir``."""
    return Path(cache_dir) / f"{kind}-{key}.npz"


def _frame_arrays(gdf: gpd.GeoDataFrame) -> tuple[dict[str, NDArray[Any]], dict[str, Any]] | None:
    """Return the frame as plain arrays and a column description (``None``: not storable)."""
    if not isinstance(gdf.index, pd.RangeIndex) or gdf.index.start != 0 or gdf.index.step != 1:
        return None
    geom_name = gdf.geometry.name
    arrays: dict[str, NDArray[Any]] = {}
    columns: list[dict[str, str]] = []
    for k, name in enumerate(gdf.columns):
        if name == geom_name:
            continue
        s = gdf[name]
        field = f"c{k}"
        if isinstance(s.dtype, np.dtype) and s.dtype.kind in "fiub":
            arrays[field] = s.to_numpy()
            columns.append({"name": str(name), "field": field, "kind": "array"})
            continue
        text = pd.api.types.is_string_dtype(s.dtype) and not pd.api.types.is_object_dtype(s.dtype)
        if not (pd.api.types.is_object_dtype(s.dtype) or text):
            return None
        values = [None if text and pd.isna(v) else v for v in s.tolist()]
        if not all(v is None or isinstance(v, str) for v in values):
            return None
        arrays[field] = np.frombuffer(json.dumps(values, ensure_ascii=False).encode(), np.uint8)
        columns.append({"name": str(name), "field": field, "kind": "text", "dtype": str(s.dtype)})
    wkb = shapely.to_wkb(np.asarray(gdf.geometry.values, dtype=object), hex=False)
    if any(w is None for w in wkb):
        return None
    lengths = np.fromiter((len(w) for w in wkb), dtype=np.int64, count=len(wkb))
    arrays["wkb"] = np.frombuffer(b"".join(wkb), dtype=np.uint8)
    arrays["wkb_offsets"] = np.concatenate([[0], np.cumsum(lengths)])
    desc = {
        "columns": columns,
        "order": [str(c) for c in gdf.columns],
        "geometry": str(geom_name),
        "crs": gdf.crs.to_string(),
    }
    return arrays, desc


def _checksum(arrays: Mapping[str, NDArray[Any]]) -> str:
    digest = hashlib.sha256()
    for name in sorted(arrays):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(arrays[name]).tobytes())
    return digest.hexdigest()


def save_frame(gdf: gpd.GeoDataFrame, path: Path) -> bool:
    """Write ``gdf`` to ``path`` atomically; ``False`` (nothing written) if not storable exactly."""
    packed = _frame_arrays(gdf)
    if packed is None:
        logger.info("not caching %s: a column the cache cannot hold exactly", path.name)
        return False
    arrays, desc = packed
    meta = {**desc, "derived_version": DERIVED_VERSION, "checksum": _checksum(arrays)}
    arrays["meta"] = np.frombuffer(json.dumps(meta, ensure_ascii=False).encode(), dtype=np.uint8)
    atomic_write(path, lambda fh: np.savez(fh, **arrays))  # type: ignore[arg-type]
    return True


def load_frame(path: Path) -> gpd.GeoDataFrame | None:
    """Read a frame written by :func:`save_frame`; ``None`` if absent, unreadable or corrupt."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(arrays.pop("meta").tobytes().decode())
        if meta.get("checksum") != _checksum(arrays):
            msg = "checksum mismatch"
            raise ValueError(msg)
        data: dict[str, Any] = {}
        for col in meta["columns"]:
            raw = arrays[col["field"]]
            if col["kind"] == "array":
                data[col["name"]] = raw
            else:
                values = pd.Series(json.loads(raw.tobytes().decode()), dtype=object)
                dtype = col.get("dtype", "object")
                data[col["name"]] = values if dtype == "object" else values.astype(dtype)
        buf, offsets = arrays["wkb"].tobytes(), arrays["wkb_offsets"]
        wkb = [buf[a:b] for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True)]
        geoms = shapely.from_wkb(np.asarray(wkb, dtype=object))
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, EOFError) as exc:
        logger.warning("derived-data cache %s is unusable (%s); rebuilding", path.name, exc)
        return None
    data[meta["geometry"]] = gpd.GeoSeries(geoms, crs=meta["crs"])
    frame = pd.DataFrame(data)[meta["order"]]
    gdf = gpd.GeoDataFrame(frame, geometry=meta["geometry"], crs=meta["crs"])
    # the WKB just decoded is what an output key would encode again (no missing shapes here)
    lengths = np.diff(offsets).astype(np.int64)
    digest = hashlib.sha256(wkb_digest_head(np.zeros(lengths.size, dtype=bool), lengths))
    digest.update(buf)
    remember_geometry_digest(gdf.geometry.values, digest.digest())
    return gdf
