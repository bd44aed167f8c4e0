"""The on-disk cache of finished output pieces: a re-run hands back the bytes it wrote before.

A piece is the bytes of one output file (a GeoJSON layer, ``map.png``, ``map.pdf``),
kept in the city's cache folder under a key that is a digest of everything those bytes
are made from: the property values and dtypes of the frame written, its geometry as
WKB, its CRS, the source of the modules that write it and the versions of the
libraries that do (:func:`piece_key`). The key is content, never provenance: an input
that changed in any way gets another key and can never meet a stale piece.

A piece file is raw bytes, no pickles: a magic tag, the payload's length, the
payload's SHA-256, the payload. A truncated or corrupt file fails that check, is
logged and ignored, and the writer's fresh bytes replace it. Files are written
atomically (a temporary file renamed over the target) but not flushed to disk: a
piece torn by a crash only fails its checksum, and a run never waits for the cache.
The pieces of a folder are kept within a byte budget (:data:`OUTPUT_CACHE_MAX_BYTES`),
the least recently used removed first.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import logging
import os
import platform
import struct
import tempfile
import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from numpy.typing import NDArray

from coverage.fileio import TEMP_FILE_PREFIX

logger = logging.getLogger(__name__)

#: Bump when the piece format or the meaning of a key changes.
PIECE_VERSION = "1"
#: Most bytes the pieces of one cache folder may take; the least recently used go first.
OUTPUT_CACHE_MAX_BYTES = 2 * 1024**3
#: Name prefix of every piece file (``piece-<kind>-<key>.bin``).
PIECE_PREFIX = "piece-"
_MAGIC = b"CPPIECE1"
_HEADER = struct.Struct("<8sQ32s")  # magic, payload length, SHA-256 of the payload


def library_versions() -> dict[str, str]:
    """Versions of Python and of the libraries whose output ends up in the pieces."""
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "shapely": shapely.__version__,
        "geos": shapely.geos_version_string,
        "pyproj": pyproj.__version__,
        "proj": pyproj.proj_version_str,
        **{name: _version(name) for name in ("matplotlib", "folium", "branca", "jinja2")},
    }


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return ""


#: The package whose code makes the pieces: its sources and vendored files are in every key.
PACKAGE_DIR = Path(__file__).resolve().parent


def package_digest(root: Path = PACKAGE_DIR) -> str | None:
    """SHA-256 of every module and vendored file of the package (``None``: one is unreadable).

    Part of every key, so a piece made by other code is never reused; a few
    milliseconds per call. A process keeps the code it imported: a long-running one
    (the app) whose files are replaced on disk keys with the new files' digest.
    """
    digest = hashlib.sha256()
    try:
        files = sorted(
            p
            for p in root.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
        )
        for path in files:
            data = path.read_bytes()
            name = path.relative_to(root).as_posix().encode()
            digest.update(struct.pack("<QQ", len(name), len(data)) + name)
            digest.update(data)
    except OSError:
        return None
    return digest.hexdigest()


def piece_key(kind: str, parts: Mapping[str, Any]) -> str | None:
    """Key of the ``kind`` piece made from ``parts`` (JSON-ready digests and values).

    Returns
    -------
    str or None
        32 hex digits of the SHA-256 of ``kind``, ``parts``, :data:`PIECE_VERSION`,
        :func:`library_versions` and :func:`package_digest`; ``None`` when the
        package cannot be read or ``parts`` is not JSON (nothing is then cached).
    """
    code = package_digest()
    if code is None:
        return None
    doc = {
        "kind": kind,
        "version": PIECE_VERSION,
        "libraries": library_versions(),
        "code": code,
        **parts,
    }
    try:
        blob = json.dumps(doc, sort_keys=True, ensure_ascii=True, allow_nan=False).encode()
    except (TypeError, ValueError):
        return None
    return hashlib.sha256(blob).hexdigest()[:32]


def geometry_digest(geoms: Any) -> bytes:
    """SHA-256 of a geometry array: count, missing mask, WKB lengths and the WKB (extended, with Z).

    An array holding the very geometry objects of one whose digest is known (a frame
    read from a cache, see :func:`remember_geometry_digest`, or a copy of it) gets that
    digest without encoding its WKB again.
    """
    arr = np.asarray(geoms, dtype=object)
    if _DIGESTS:  # the identities cost ~15 ms per 276k shapes: only when one may match
        known = _DIGESTS.get(_object_ids(arr))
        if known is not None:
            return known
    wkb = np.asarray(shapely.to_wkb(arr, output_dimension=3), dtype=object)
    missing = np.asarray(shapely.is_missing(arr), dtype=bool)
    wkb[missing] = b""
    lengths = np.fromiter(map(len, wkb), dtype=np.int64, count=wkb.size)
    digest = hashlib.sha256(wkb_digest_head(missing, lengths))
    for _ in map(digest.update, wkb):  # one C call per shape, no joined copy
        pass
    return digest.digest()


def wkb_digest_head(missing: NDArray[np.bool_], lengths: NDArray[np.int64]) -> bytes:
    """Return the bytes :func:`geometry_digest` hashes before the WKB: count, missing mask, WKB lengths."""
    return struct.pack("<Q", missing.size) + missing.tobytes() + lengths.tobytes()


def _object_ids(arr: NDArray[np.object_]) -> NDArray[np.intp]:
    return np.fromiter(map(id, arr.ravel()), dtype=np.intp, count=arr.size)


class _DigestMemo:
    """Geometry digests of live arrays, keyed by the identities of the geometry objects they hold.

    Shapely geometries are immutable, and an entry holds its own references to the
    objects it was made from, so no other object can take their identities while the
    entry lives: an array holding the same objects in the same order has the same WKB.
    An entry lives as long as the array it was remembered for (then its objects are
    released); entries are only added for frames read from a cache.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[bytes, tuple[object, NDArray[np.object_], NDArray[np.intp], bytes]] = {}

    def __bool__(self) -> bool:
        """Whether any digest is remembered."""
        with self._lock:
            return bool(self._entries)

    def get(self, ids: NDArray[np.intp]) -> bytes | None:
        key = hashlib.sha256(ids.tobytes()).digest()
        with self._lock:
            entry = self._entries.get(key)
        if entry is None:
            return None
        _, _, held_ids, digest = entry
        return digest if np.array_equal(held_ids, ids) else None

    def put(self, owner: Any, digest: bytes) -> None:
        held = np.array(np.asarray(owner, dtype=object).ravel(), dtype=object)  # own references
        ids = _object_ids(held)
        key = hashlib.sha256(ids.tobytes()).digest()
        token = object()
        with self._lock:
            self._entries[key] = (token, held, ids, digest)
        weakref.finalize(owner, self._forget, key, token)

    def _forget(self, key: bytes, token: object) -> None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] is token:
                del self._entries[key]


_DIGESTS = _DigestMemo()


def remember_geometry_digest(values: Any, digest: bytes) -> None:
    """Record that the geometry array ``values`` has :func:`geometry_digest` ``digest``.

    For a reader that has just decoded ``values`` from WKB it holds (a cache
    file): it knows the digest from those bytes (:func:`wkb_digest_head` and the
    WKB), so the writers' keys need not encode the geometries again. ``values``
    must support weak references (a ``GeometryArray`` or numpy array does).
    """
    _DIGESTS.put(values, digest)


def column_digest(series: pd.Series) -> bytes | None:
    """SHA-256 of a column's dtype and values, ``None`` when the values cannot be keyed exactly.

    Numeric and boolean numpy columns are hashed as raw bytes; any other column as the
    JSON of its values (which tells ``1`` from ``"1"`` and ``1.0``, and ``None`` from
    NaN). Values JSON cannot write (``pd.NA``, timestamps, numpy scalars inside an
    object column) make the column unkeyable: the piece is then built, not cached.
    """
    digest = hashlib.sha256(str(series.dtype).encode() + b"\0")
    dtype = series.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
        digest.update(np.ascontiguousarray(series.to_numpy()).tobytes())
        return digest.digest()
    try:
        text = json.dumps(series.to_numpy(dtype=object).tolist(), ensure_ascii=True)
    except (TypeError, ValueError):
        return None
    digest.update(text.encode())
    return digest.digest()


class FrameDigests:
    """Digests of frames, each geometry and column hashed once while this object lives (one output build).

    A frame is remembered by identity and held, so its id cannot be reused for
    another frame; build one per output and drop it after.
    """

    def __init__(self) -> None:
        self._geometry: dict[int, tuple[gpd.GeoDataFrame, bytes]] = {}
        self._columns: dict[tuple[int, str], tuple[gpd.GeoDataFrame, bytes | None]] = {}

    def geometry(self, gdf: gpd.GeoDataFrame) -> bytes:
        """SHA-256 of ``gdf``'s active geometry (:func:`geometry_digest`)."""
        kept = self._geometry.get(id(gdf))
        if kept is None or kept[0] is not gdf:
            kept = (gdf, geometry_digest(gdf.geometry.values))
            self._geometry[id(gdf)] = kept
        return kept[1]

    def _column(self, gdf: gpd.GeoDataFrame, column: str) -> bytes | None:
        kept = self._columns.get((id(gdf), column))
        if kept is None or kept[0] is not gdf:
            kept = (gdf, column_digest(gdf[column]))
            self._columns[(id(gdf), column)] = kept
        return kept[1]

    def frame(self, gdf: gpd.GeoDataFrame, columns: Sequence[str]) -> str | None:
        """Digest of ``gdf``'s ``columns`` (names, dtypes, values), geometry and CRS; ``None``: unkeyable."""
        digest = hashlib.sha256()
        crs = "" if gdf.crs is None else pyproj.CRS.from_user_input(gdf.crs).to_wkt()
        head = {"columns": [str(c) for c in columns], "crs": crs, "rows": len(gdf)}
        digest.update(json.dumps(head, ensure_ascii=True).encode() + b"\0")
        for c in columns:
            part = self._column(gdf, c)
            if part is None:
                return None
            digest.update(part)
        digest.update(self.geometry(gdf))
        return digest.hexdigest()


def piece_path(folder: Path, kind: str, key: str) -> Path:
    """File of the ``kind`` piece with ``key`` in ``folder``."""
    return folder / f"{PIECE_PREFIX}{kind}-{key}.bin"


def read_piece(folder: Path, kind: str, key: str) -> bytes | None:
    """Return the cached piece, or ``None`` when it is absent, unreadable, truncated or corrupt."""
    path = piece_path(folder, kind, key)
    try:
        with path.open("rb") as fh:
            head = fh.read(_HEADER.size)
            payload = fh.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        logger.warning("output cache %s is unreadable (%s); rebuilding", path.name, exc)
        return None
    ok = len(head) == _HEADER.size
    if ok:
        magic, size, checksum = _HEADER.unpack(head)
        ok = magic == _MAGIC and size == len(payload)
        ok = ok and hashlib.sha256(payload).digest() == checksum
    if not ok:
        logger.warning("output cache %s is truncated or corrupt; rebuilding", path.name)
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # recently used: kept longest
    logger.info("reused %s from the output cache (%s)", kind, path.name)
    return payload


def write_piece(
    folder: Path, kind: str, key: str, data: bytes, *, max_bytes: int = OUTPUT_CACHE_MAX_BYTES
) -> bool:
    """Keep ``data`` as the ``kind`` piece with ``key``; ``False`` if not kept (too large, or a write error, logged).

    Afterwards the oldest pieces of ``folder`` are removed until all of them fit in ``max_bytes``.
    """
    if len(data) + _HEADER.size > max_bytes:
        return False
    path = piece_path(folder, kind, key)
    tmp: str | None = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=TEMP_FILE_PREFIX)
        with os.fdopen(fd, "wb") as fh:
            fh.write(_HEADER.pack(_MAGIC, len(data), hashlib.sha256(data).digest()))
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        logger.warning("could not write the output cache %s: %s", path, exc)
        return False
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    _evict(folder, keep=path, max_bytes=max_bytes)
    return True


def _evict(folder: Path, *, keep: Path, max_bytes: int) -> None:
    """Remove the least recently used pieces of ``folder`` (never ``keep``) until they fit in ``max_bytes``."""
    pieces: list[tuple[int, int, Path]] = []
    for path in folder.glob(f"{PIECE_PREFIX}*.bin"):
        with contextlib.suppress(OSError):
            st = path.stat()
            pieces.append((st.st_mtime_ns, st.st_size, path))
    total = sum(size for _, size, _ in pieces)
    for _, size, path in sorted(pieces, key=lambda p: (p[0], p[2].name)):
        if total <= max_bytes:
            break
        if path == keep:
            continue
        with contextlib.suppress(OSError):
            path.unlink()
            total -= size
            logger.info("removed %s from the output cache (over %d bytes)", path.name, max_bytes)


@dataclass(frozen=True, eq=False)
class PieceStore:
    """The output cache of one output build: its folder and the digests of the frames written.

    Parameters
    ----------
    folder
        Cache folder; ``None``: nothing is read or kept.
    max_bytes
        Budget of the folder's pieces (:func:`write_piece`).
    digests
        Frame digests of this build (each geometry hashed once).
    """

    folder: Path | None
    max_bytes: int = OUTPUT_CACHE_MAX_BYTES
    digests: FrameDigests = field(default_factory=FrameDigests)

    def read(self, kind: str, key: str | None) -> bytes | None:
        """Return the cached ``kind`` piece of ``key`` (``None``: no cache, no key, or not cached)."""
        if self.folder is None or key is None:
            return None
        return read_piece(self.folder, kind, key)

    def write(self, kind: str, key: str | None, data: bytes) -> None:
        """Keep ``data`` as the ``kind`` piece of ``key`` (nothing without a cache or a key)."""
        if self.folder is not None and key is not None:
            write_piece(self.folder, kind, key, data, max_bytes=self.max_bytes)
