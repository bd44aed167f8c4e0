"""Read raw OpenStreetMap extracts from disk, never touching the internet.

What is read: walkable ways, residential features, candidate service centers and
administrative boundaries. This module never builds a network; :mod:`coverage.network` does that from the
ways returned here. All coordinates returned are WGS-84 (EPSG:4326).

Files are streamed with libosmium (``pyosmium``), which reads ``.osm``,
``.osm.bz2``, ``.osm.gz`` and ``.osm.pbf``. XML input is checked before parsing:
a document type declaration (the vehicle of entity-expansion and external-entity
attacks) is refused, and so is XML whose root element is not ``<osm>``.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import logging
import re
import zlib

try:
    import resource  # POSIX only: honour an address-space limit (ulimit -v)
except ImportError:  # pragma: no cover - Windows
    resource = None  # type: ignore[assignment]
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import osmium
import pandas as pd
import psutil
import shapely
from numpy.typing import NDArray

from coverage.errors import InputError, ResourceLimitError
from coverage.progress import ProgressFn

logger = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".osm", ".osm.bz2", ".osm.gz", ".osm.pbf", ".pbf", ".xml")

#: osmnx 2's ``network_type="walk"`` filter, applied as regex searches exactly as
#: Overpass does (``!~`` matches anywhere, so ``motor`` excludes ``motorway_link``).
WALK_EXCLUDED = {
    "highway": re.compile(
        "abandoned|bus_guideway|construction|cycleway|motor|no|planned|platform|"
        "proposed|raceway|razed"
    ),
    "area": re.compile("yes"),
    "foot": re.compile("no"),
    "service": re.compile("private"),
    "access": re.compile("private"),
}

#: Usual OSM tags of community service offices (党群服务中心 and the like).
DEFAULT_CENTER_TAGS: Mapping[str, tuple[str, ...]] = {
    "office": ("government",),
    "amenity": ("townhall", "community_centre", "social_facility", "social_centre"),
}

#: ``building=*`` values whose residents count as demand.
RESIDENTIAL_BUILDINGS = frozenset(
    {
        "residential",
        "apartments",
        "house",
        "detached",
        "semidetached_house",
        "terrace",
        "dormitory",
        "bungalow",
        "yes;residential",
    }
)

# Column names of the returned GeoDataFrames.
OSM_ID = "osm_id"
OSM_TYPE = "osm_type"
KIND = "kind"
NAME = "name"
LEVELS = "building_levels"
ADMIN_LEVEL = "admin_level"
TAGS = "tags"

_XML_SUFFIXES = (".osm", ".xml", ".osm.bz2", ".osm.gz")
_PROLOG_LIMIT_BYTES = 1 << 20
# Memory guard. Uncompressed-size expansion per format and peak bytes of working
# memory per byte of OSM XML. Measured on the Chengdu extract (2026-11-22): the
# .bz2 expands 8.3x (420 kB -> 3.47 MB of XML) and reading + building the network
# (osmnx simplification included) raised peak RSS by 75 MB, i.e. ~22 bytes per XML
# byte; 25 leaves a margin. PBF is ~10x smaller than the XML it encodes.
_EXPANSION = {".bz2": 8.5, ".gz": 7.0, ".pbf": 10.0}
_MEMORY_PER_XML_BYTE = 25.0
#: Streaming budget: peak bytes of working memory per walkable-way node reference
#: and per entity (center node, street way or area that passes the tag filter), counted while
#: reading. A reference is kept as an id, a lon and a lat in Python lists
#: (~100 bytes), then copied into arrays and the network (~3x); an entity keeps a
#: row, tags and a geometry. A PBF (or XML) can declare far more of either than
#: its size suggests (delta-coded refs compress to a few bits each), so these
#: caps, not the file size, bound the memory of a small file.
BYTES_PER_NODE_REF = 300
BYTES_PER_ENTITY = 2000
#: Missing node refs cost time, not memory (each is looked up and skipped). A
#: clipped extract misses a few refs at its edge; past this many, and more missing
#: than present, the file is not an extract of a real place and is refused.
MAX_MISSING_NODE_REFS = 1_000_000


@dataclass(frozen=True)
class WalkWays:
    """Walkable ways as flat arrays; way ``i`` spans ``offsets[i]:offsets[i+1]``.

    A way trimmed because of missing nodes can appear as several pieces with the
    same ``way_id``.
    """

    way_id: NDArray[np.int64]
    highway: NDArray[np.object_]
    offsets: NDArray[np.int64]
    node_id: NDArray[np.int64]
    lon: NDArray[np.float64]
    lat: NDArray[np.float64]

    def __len__(self) -> int:
        """Return the number of way pieces."""
        return int(self.way_id.size)


@dataclass(frozen=True)
class ReadStats:
    """What the reader kept and what it had to repair."""

    walkable_ways: int = 0
    ways_trimmed: int = 0
    ways_dropped: int = 0
    missing_node_refs: int = 0
    residential_features: int = 0
    center_features: int = 0
    boundaries: int = 0


@dataclass(frozen=True)
class OsmExtract:
    """Everything the planner needs from one OSM file, in EPSG:4326."""

    path: Path
    sha256: str
    bounds: tuple[float, float, float, float] | None
    ways: WalkWays
    residential: gpd.GeoDataFrame
    center_features: gpd.GeoDataFrame
    boundaries: gpd.GeoDataFrame
    stats: ReadStats = field(default_factory=ReadStats)


def file_sha256(path: Path | str, *, chunk_bytes: int = 1 << 20) -> str:
    """Return the hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while chunk := fh.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def check_osm_file(path: Path | str, *, memory_budget_bytes: int | None = None) -> Path:
    """Validate an OSM file before parsing it and return its resolved path.

    Parameters
    ----------
    path
        ``.osm``, ``.osm.bz2``, ``.osm.gz`` or ``.osm.pbf`` file.
    memory_budget_bytes
        Refuse files whose estimated processing memory exceeds this. ``None``
        uses 80 % of the memory available now.

    Raises
    ------
    InputError
        Missing file, unsupported extension, corrupt compression, XML that is not
        OSM, or XML with a document type declaration (entity expansion).
    ResourceLimitError
        The estimated memory need exceeds the budget.
    """
    p = Path(path)
    if p.is_dir():
        msg = f"{str(p)!r} is a folder; expected an OSM file inside it (e.g. `city.osm.pbf`)."
        raise InputError(msg, code="osm.folder", params={"name": p.name})
    if not p.is_file():
        msg = f"OSM file not found: {str(p)!r}. Check the path (it is read from local disk; nothing is downloaded)."
        raise InputError(msg, code="osm.not_found", params={"name": p.name})
    name = p.name.lower()
    if not name.endswith(SUPPORTED_SUFFIXES):
        msg = (
            f"Unsupported OSM file {p.name!r}: expected one of "
            f"{', '.join(SUPPORTED_SUFFIXES)}. Export the area from OpenStreetMap "
            "(or convert it with osmium) to one of these formats."
        )
        raise InputError(
            msg,
            code="osm.unsupported",
            params={"name": p.name, "suffixes": ", ".join(SUPPORTED_SUFFIXES)},
        )
    size = p.stat().st_size
    if size == 0:
        msg = f"OSM file {p.name!r} is empty (0 bytes). Export the area again."
        raise InputError(msg, code="osm.empty", params={"name": p.name})
    _check_memory(p, size, memory_budget_bytes)
    if name.endswith(_XML_SUFFIXES):
        _check_xml_prolog(p)
    elif not _looks_like_pbf(p):
        msg = f"{p.name!r} is not an OSM PBF file (its header is not an OSMHeader block)."
        raise InputError(msg, code="osm.not_pbf", params={"name": p.name})
    return p.resolve()


def default_memory_budget_bytes() -> int:
    """Return the default memory budget in bytes: 80% of the memory available now.

    Available is what psutil reports, or less under an address-space limit
    (``ulimit -v``): the limit minus what the process has mapped already.
    """
    available = int(psutil.virtual_memory().available)
    if resource is not None:
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            mapped = int(psutil.Process().memory_info().vms)
            available = min(available, max(0, soft - mapped))
    return int(available * 0.8)


def _check_memory(p: Path, size: int, budget: int | None) -> None:
    suffix = p.suffix.lower()
    xml_bytes = size * _EXPANSION.get(suffix, 1.0)
    need = int(xml_bytes * _MEMORY_PER_XML_BYTE)
    if budget is None:
        budget = default_memory_budget_bytes()
    if need > budget:
        msg = (
            f"{p.name!r} ({size / 1e6:.1f} MB) needs an estimated {need / 1e9:.1f} GB of "
            f"memory to process, more than the budget of {budget / 1e9:.1f} GB. Cut a "
            "smaller extract (e.g. `osmium extract -b W,S,E,N`) or raise the budget."
        )
        raise ResourceLimitError(
            msg,
            code="osm.memory",
            params={"name": p.name, "need_gb": need / 1e9, "budget_gb": budget / 1e9},
        )


def _check_expanded_size(p: Path, budget: int | None) -> bytearray | None:
    """Decompress a compressed XML file once, refusing it past the budget; return its XML.

    :func:`_check_memory` estimates from a typical compression ratio; a
    decompression bomb (a few MB of repetitive XML expanding to GBs) defeats
    that. This streams the file through the decompressor, counting bytes, and
    stops as soon as the budget is exceeded, so it never decompresses more
    than ``budget / _MEMORY_PER_XML_BYTE`` bytes.

    The bytes it counted are the ones osmium parses (:func:`read_osm` hands them
    over as a buffer), so the guard costs no second decompression; libosmium
    would otherwise decompress the file twice more (its area pass reads the
    file twice). Holding the XML costs one byte per XML byte of the
    ``_MEMORY_PER_XML_BYTE`` budgeted. Returns ``None`` for an uncompressed or
    PBF file, which osmium reads from disk.
    """
    name = p.name.lower()
    if not name.endswith((".bz2", ".gz")):
        return None
    if budget is None:
        budget = default_memory_budget_bytes()
    limit = int(budget / _MEMORY_PER_XML_BYTE)
    xml = bytearray()
    try:
        with _open_text(p) as fh:
            while chunk := fh.read(1 << 20):
                if len(xml) + len(chunk) > limit:
                    msg = (
                        f"{p.name!r} ({p.stat().st_size / 1e6:.1f} MB compressed) expands to more "
                        f"than {limit / 1e6:.0f} MB of XML, which would need more than the memory "
                        f"budget of {budget / 1e9:.1f} GB to process. Cut a smaller extract "
                        "(e.g. `osmium extract -b W,S,E,N`) or raise the budget."
                    )
                    raise ResourceLimitError(
                        msg,
                        code="osm.expands",
                        params={"name": p.name, "limit_mb": limit / 1e6},
                    )
                xml += chunk
    except (OSError, EOFError, zlib.error) as exc:
        msg = f"{p.name!r} is corrupted or truncated and cannot be decompressed ({exc}). Copy or export it again."
        raise InputError(msg, code="osm.corrupt", params={"name": p.name}) from exc
    return xml


def _open_text(p: Path) -> Any:
    name = p.name.lower()
    if name.endswith(".bz2"):
        return bz2.open(p, "rb")
    if name.endswith(".gz"):
        return gzip.open(p, "rb")
    return p.open("rb")


_MAGIC = {b"\x1f\x8b": ".osm.gz", b"BZh": ".osm.bz2", b"PK\x03\x04": ".zip"}


def _check_xml_prolog(p: Path) -> None:
    """Read up to the root element; refuse DOCTYPE/ENTITY and non-OSM roots.

    Only the prolog (XML declaration, comments, processing instructions) may
    precede ``<osm``; the scan stops at the first element, so a hostile file
    is rejected after reading at most ``_PROLOG_LIMIT_BYTES``.
    """
    head = b""
    verdict: tuple[str, bytes] | None = None
    try:
        with _open_text(p) as fh:
            while len(head) < _PROLOG_LIMIT_BYTES:
                chunk = fh.read(65536)
                if not chunk:
                    break
                head += chunk
                verdict = _first_element(head)
                if verdict is not None:
                    break
    except (OSError, EOFError, zlib.error) as exc:
        msg = f"{p.name!r} is corrupted or truncated and cannot be decompressed ({exc}). Copy or export it again."
        raise InputError(msg, code="osm.corrupt", params={"name": p.name}) from exc
    if verdict is None:
        verdict = _first_element(head, final=True)
    kind, detail = verdict if verdict is not None else ("none", b"")
    if kind == "doctype" and re.match(rb"<!DOCTYPE\s+html", detail, re.IGNORECASE):
        kind, detail = "element", b"html"
    if kind == "doctype":
        msg = (
            f"{p.name!r} declares a DOCTYPE or entities ({detail[:40]!r}). OpenStreetMap "
            "files never do, and such declarations can be used for entity-expansion and "
            "external-entity attacks, so the file is refused. Export the area again "
            "from OpenStreetMap, or remove the declaration."
        )
        raise InputError(msg, code="osm.doctype", params={"name": p.name})
    if kind == "element" and detail == b"osm":
        return
    magic = next((ext for m, ext in _MAGIC.items() if head.startswith(m)), None)
    if magic is not None:
        hint = f"it is a compressed file; name it with the {magic!r} extension"
    elif kind == "element":
        hint = f"its root element is <{detail.decode(errors='replace')}>, not <osm>"
        if detail.lower() == b"html":
            hint += " (a web page, perhaps a download error page)"
    else:
        hint = f"no <osm> root element in its first {len(head)} bytes (it starts with {head.lstrip()[:40]!r})"
    msg = (
        f"{p.name!r} is not OpenStreetMap XML: {hint}. Expected an <osm> document as "
        "exported by openstreetmap.org, Overpass or osmium (.osm, .osm.bz2, .osm.gz) or "
        "an .osm.pbf file."
    )
    code = "osm.compressed" if magic is not None else "osm.not_xml"
    raise InputError(msg, code=code, params={"name": p.name, "suffix": magic or ""})


_PI_OR_COMMENT = re.compile(rb"\s*(<\?.*?\?>|<!--.*?-->)", re.DOTALL)
_ELEMENT = re.compile(rb"\s*<([A-Za-z_][\w.:-]*)")


def _first_element(head: bytes, *, final: bool = False) -> tuple[str, bytes] | None:
    """Classify what follows the prolog of ``head``.

    Returns ``("element", name)``, ``("doctype", text)`` or ``("none", b"")``;
    ``None`` when more bytes are needed to decide (unless ``final``).
    """
    pos = 3 if head.startswith(b"\xef\xbb\xbf") else 0
    while True:
        m = _PI_OR_COMMENT.match(head, pos)
        if m is None:
            break
        pos = m.end()
    rest = head[pos:].lstrip()
    if rest[:2] == b"<!" and not rest.startswith(b"<!--"):
        return ("doctype", rest)
    m = _ELEMENT.match(head, pos)
    if m is not None and m.end() < len(head):
        return ("element", m.group(1))
    if final or (rest and not rest.startswith(b"<")):
        return ("none", b"")
    return None


def _looks_like_pbf(p: Path) -> bool:
    with p.open("rb") as fh:
        head = fh.read(64)
    return b"OSMHeader" in head


def _is_walkable(tags: Mapping[str, str]) -> bool:
    if "highway" not in tags:
        return False
    return not any(
        key in tags and pattern.search(tags[key]) for key, pattern in WALK_EXCLUDED.items()
    )


def _matches(tags: Any, wanted: Mapping[str, tuple[str, ...]]) -> bool:
    for key, values in wanted.items():
        value = tags.get(key)
        if value is not None and (not values or value in values):
            return True
    return False


def _parse_levels(value: str | None) -> float:
    if value is None:
        return float("nan")
    try:
        levels = float(value.split(";")[0].strip())
    except ValueError:
        return float("nan")
    return levels if 0 < levels < 200 else float("nan")


_Piece = tuple[list[int], list[tuple[float, float]]]


def _way_pieces(obj: Any) -> tuple[list[_Piece], int]:
    """Split a way into its runs of present nodes; return the runs and the missing-node count.

    A run needs two nodes to be a way piece; shorter runs are dropped.
    """
    run_ids: list[int] = []
    run_xy: list[tuple[float, float]] = []
    pieces: list[_Piece] = []
    missing = 0
    for nref in obj.nodes:
        loc = nref.location
        if loc.valid():
            run_ids.append(nref.ref)
            run_xy.append((loc.lon, loc.lat))
        else:
            missing += 1
            if len(run_ids) >= 2:
                pieces.append((run_ids, run_xy))
            run_ids, run_xy = [], []
    if len(run_ids) >= 2:
        pieces.append((run_ids, run_xy))
    return pieces, missing


class _Collector:
    """Rows gathered while streaming one OSM file (private to :func:`read_osm`)."""

    def __init__(
        self, center_tags: Mapping[str, tuple[str, ...]], admin_levels: tuple[str, ...] | None
    ) -> None:
        self.center_tags = center_tags
        self.center_keys = list(center_tags)
        self.admin_levels = admin_levels
        self.way_ids: list[int] = []
        self.highways: list[str] = []
        self.offsets: list[int] = [0]
        self.node_ids: list[int] = []
        self.lons: list[float] = []
        self.lats: list[float] = []
        self.trimmed = self.dropped = self.missing = 0
        self.res_rows: list[dict[str, Any]] = []
        self.res_wkb: list[bytes] = []
        self.ctr_rows: list[dict[str, Any]] = []
        self.ctr_xy: list[tuple[float, float]] = []
        self.bnd_rows: list[dict[str, Any]] = []
        self.bnd_wkb: list[bytes] = []
        self.wkb = osmium.geom.WKBFactory()
        self.entities = self.refs = 0
        self.set_budget("", default_memory_budget_bytes())

    def set_budget(self, name: str, budget_bytes: int) -> None:
        """Refuse, while streaming, more node refs or entities than ``budget_bytes`` allows."""
        self.name = name
        self.budget_bytes = budget_bytes
        self.max_refs = max(1, budget_bytes // BYTES_PER_NODE_REF)
        self.max_entities = max(1, budget_bytes // BYTES_PER_ENTITY)

    def _refuse(self, what: str, limit: int) -> None:
        msg = (
            f"{self.name!r} holds more than {limit:,} {what}, more than the memory budget of "
            f"{self.budget_bytes / 1e9:.1f} GB allows; reading stopped there. Cut a smaller "
            "extract (e.g. `osmium extract -b W,S,E,N`) or raise the budget (--max-memory-gb)."
        )
        raise ResourceLimitError(
            msg,
            code="osm.too_many",
            params={"name": self.name, "budget_gb": self.budget_bytes / 1e9},
        )

    def _check_missing(self) -> None:
        present = self.refs - self.missing
        if self.missing > MAX_MISSING_NODE_REFS and self.missing > present:
            msg = (
                f"{self.name!r}: walkable ways reference {self.missing:,} nodes that are not in "
                f"the file (and only {present:,} that are); this is not an extract of a real "
                "place. Cut it again with `osmium extract --strategy complete_ways`."
            )
            raise ResourceLimitError(
                msg, code="osm.missing_nodes", params={"name": self.name, "n": self.missing}
            )

    def add(self, obj: Any) -> None:
        """Take what is wanted from one node, way or area."""
        self.entities += 1
        if self.entities > self.max_entities:
            self._refuse("OSM entities (tagged nodes, ways and areas)", self.max_entities)
        if obj.is_node():
            self._node(obj)
        elif obj.is_way():
            self._way(obj)
        elif obj.is_area():
            self._area(obj)

    def _center(self, obj: Any, osm_type: str, xy: tuple[float, float]) -> None:
        tags = obj.tags
        osm_id = obj.id if osm_type == "node" else obj.orig_id()
        self.ctr_rows.append(
            {
                OSM_ID: osm_id,
                OSM_TYPE: osm_type,
                NAME: tags.get("name"),
                TAGS: _tag_string(tags, self.center_keys),
            }
        )
        self.ctr_xy.append(xy)

    def _node(self, obj: Any) -> None:
        if _matches(obj.tags, self.center_tags) and obj.location.valid():
            self._center(obj, "node", (obj.location.lon, obj.location.lat))

    def _way(self, obj: Any) -> None:
        tags = obj.tags
        if not _is_walkable(tags):
            return
        # counted before the refs are walked: a way of 10^8 refs is refused at once
        self.refs += len(obj.nodes)
        if self.refs > self.max_refs:
            self._refuse("node references in walkable ways", self.max_refs)
        pieces, missing = _way_pieces(obj)
        if missing:
            self.missing += missing
            self._check_missing()
            if pieces:
                self.trimmed += 1
            else:
                self.dropped += 1
        hw = tags.get("highway")
        for ids, xy in pieces:
            self.way_ids.append(obj.id)
            self.highways.append(hw)
            self.node_ids.extend(ids)
            self.lons.extend(x for x, _ in xy)
            self.lats.extend(y for _, y in xy)
            self.offsets.append(len(self.node_ids))

    def _area(self, obj: Any) -> None:
        tags = obj.tags
        landuse = tags.get("landuse")  # each tag read once: 300,000 areas in a big city
        residential = landuse == "residential" or tags.get("building") in RESIDENTIAL_BUILDINGS
        boundary = tags.get("boundary") == "administrative"
        center = _matches(tags, self.center_tags)
        if not (residential or boundary or center):
            return
        try:
            geom = bytes.fromhex(self.wkb.create_multipolygon(obj))
        except RuntimeError:
            return  # incomplete ring in a clipped extract
        osm_type = "way" if obj.from_way() else "relation"
        if residential:
            self.res_rows.append(
                {
                    OSM_ID: obj.orig_id(),
                    OSM_TYPE: osm_type,
                    KIND: "landuse" if landuse == "residential" else "building",
                    NAME: tags.get("name"),
                    LEVELS: _parse_levels(tags.get("building:levels")),
                }
            )
            self.res_wkb.append(geom)
        level = tags.get("admin_level") if boundary else None
        if boundary and (self.admin_levels is None or level in self.admin_levels):
            self.bnd_rows.append(
                {OSM_ID: obj.orig_id(), NAME: tags.get("name"), ADMIN_LEVEL: level}
            )
            self.bnd_wkb.append(geom)
        if center:
            centroid = shapely.centroid(shapely.from_wkb(geom))
            self._center(obj, osm_type, (centroid.x, centroid.y))

    def walk_ways(self) -> WalkWays:
        """Return the walkable way pieces gathered so far as arrays."""
        return WalkWays(
            way_id=np.asarray(self.way_ids, dtype=np.int64),
            highway=np.asarray(self.highways, dtype=object),
            offsets=np.asarray(self.offsets, dtype=np.int64),
            node_id=np.asarray(self.node_ids, dtype=np.int64),
            lon=np.asarray(self.lons, dtype=np.float64),
            lat=np.asarray(self.lats, dtype=np.float64),
        )

    def frames(self) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
        """Return ``(residential, centers, boundaries)`` GeoDataFrames in EPSG:4326."""
        residential = _frame(
            self.res_rows,
            shapely.from_wkb(self.res_wkb) if self.res_wkb else [],
            [OSM_ID, OSM_TYPE, KIND, NAME, LEVELS],
        )
        centers = _frame(
            self.ctr_rows,
            shapely.points(self.ctr_xy) if self.ctr_xy else [],
            [OSM_ID, OSM_TYPE, NAME, TAGS],
        )
        centers = centers.drop_duplicates(subset=[OSM_TYPE, OSM_ID]).reset_index(drop=True)
        boundaries = _frame(
            self.bnd_rows,
            shapely.from_wkb(self.bnd_wkb) if self.bnd_wkb else [],
            [OSM_ID, NAME, ADMIN_LEVEL],
        )
        return residential, centers, boundaries


def _only_for(filt: Any, entity: Any) -> Any:
    """Return ``filt`` applied to ``entity`` objects only (the others pass it)."""
    filt.enable_for(entity)
    return filt


def _stream(
    p: Path, xml: bytearray | None, collector: _Collector
) -> tuple[float, float, float, float] | None:
    """Stream ``p`` (or its decompressed ``xml``) through ``collector``; return the header's bounds."""
    keys = collector.center_keys
    source = str(p) if xml is None else osmium.io.FileBuffer(xml, "osm")
    area_keys = ("landuse", "building", "boundary", *keys)
    processor = (
        osmium.FileProcessor(source)
        .with_locations()
        .with_areas(osmium.filter.KeyFilter(*area_keys))
        .with_filter(osmium.filter.KeyFilter("highway", *area_keys))
    )
    # Only what the collector keeps reaches Python (half the objects of a city): ways
    # as streets, areas as land, nodes as centers. The location and area handlers
    # run before these filters, so buildings still become areas.
    for wanted, entity in ((("highway",), osmium.osm.WAY), (area_keys, osmium.osm.AREA)):
        processor.with_filter(_only_for(osmium.filter.KeyFilter(*wanted), entity))
    kept = osmium.osm.WAY | osmium.osm.AREA  # relations return as areas
    if keys:
        processor.with_filter(_only_for(osmium.filter.KeyFilter(*keys), osmium.osm.NODE))
        kept |= osmium.osm.NODE
    processor.with_filter(osmium.filter.EntityFilter(kept))
    try:
        box = processor.header.box()
        bounds = (
            (box.bottom_left.lon, box.bottom_left.lat, box.top_right.lon, box.top_right.lat)
            if box.valid()
            else None
        )
        for obj in processor:
            collector.add(obj)
    except ResourceLimitError:
        raise
    except (RuntimeError, osmium.InvalidLocationError, ValueError, OverflowError) as exc:
        # libosmium reports parse, decompression and format errors as RuntimeError
        # (or InvalidLocationError for bad coordinates), from its reader thread.
        msg = f"{p.name!r} could not be parsed as OpenStreetMap data: {exc}. The file may be truncated or corrupted; export it again."
        raise InputError(msg, code="osm.unparsable", params={"name": p.name}) from exc
    return bounds


def _check_ways(p: Path, ways: WalkWays, collector: _Collector) -> None:
    """Refuse a file without walkable ways; warn about ways trimmed or dropped by clipping."""
    if len(ways) == 0:
        msg = (
            f"{p.name!r} contains no walkable ways (highway=* open to pedestrians), so "
            "there is no street network to walk on. Check that the extract covers a "
            "built-up area and includes highways."
        )
        raise InputError(msg, code="osm.no_ways", params={"name": p.name})
    trimmed, dropped = collector.trimmed, collector.dropped
    if trimmed or dropped:
        logger.warning(
            "%s: %d ways referenced %d missing nodes (clipped extract): %d trimmed, %d dropped",
            p.name,
            trimmed + dropped,
            collector.missing,
            trimmed,
            dropped,
        )


def read_osm(
    path: Path | str,
    *,
    center_tags: Mapping[str, tuple[str, ...]] = DEFAULT_CENTER_TAGS,
    admin_levels: tuple[str, ...] | None = None,
    memory_budget_bytes: int | None = None,
    progress: ProgressFn | None = None,
    sha256: str | None = None,
) -> OsmExtract:
    """Read an OSM extract: walkable ways, residential areas, centers, boundaries.

    Ways whose nodes are partly missing (clipped extracts) are trimmed to the
    runs of nodes that are present; a way with no run of two nodes is dropped.
    Both counts are logged and returned in ``stats``.

    Parameters
    ----------
    path
        Local ``.osm``, ``.osm.bz2``, ``.osm.gz`` or ``.osm.pbf`` file.
    center_tags
        ``{key: values}`` identifying existing service centers; an empty tuple of
        values matches any value of the key.
    admin_levels
        ``admin_level`` values of the boundaries to keep; ``None`` keeps all.
    memory_budget_bytes
        See :func:`check_osm_file`.
    progress
        Called with ``(fraction, message)`` as reading advances.
    sha256
        The file's SHA-256 when the caller has it already (saves hashing it again).

    Returns
    -------
    OsmExtract
        ``residential`` has columns ``osm_id``, ``osm_type``, ``kind``
        (``"landuse"`` or ``"building"``), ``name``, ``building_levels``;
        ``center_features`` has ``osm_id``, ``osm_type``, ``name``, ``tags``
        (points); ``boundaries`` has ``osm_id``, ``name``, ``admin_level``.

    Raises
    ------
    InputError
        The file is not usable OSM data (see :func:`check_osm_file`), cannot be
        parsed, or has no walkable ways.
    ResourceLimitError
        The file would need more memory than the budget.
    """
    p = check_osm_file(path, memory_budget_bytes=memory_budget_bytes)
    xml = _check_expanded_size(p, memory_budget_bytes)
    sha = sha256 or file_sha256(p)
    if progress:
        progress(0.0, "reading OSM file")
    collector = _Collector(center_tags, admin_levels)
    budget = default_memory_budget_bytes() if memory_budget_bytes is None else memory_budget_bytes
    collector.set_budget(p.name, budget)
    bounds = _stream(p, xml, collector)
    del xml  # the parsed XML is not kept
    ways = collector.walk_ways()
    _check_ways(p, ways, collector)
    residential, centers, boundaries = collector.frames()
    stats = ReadStats(
        walkable_ways=len(set(collector.way_ids)),
        ways_trimmed=collector.trimmed,
        ways_dropped=collector.dropped,
        missing_node_refs=collector.missing,
        residential_features=len(residential),
        center_features=len(centers),
        boundaries=len(boundaries),
    )
    if progress:
        progress(1.0, "OSM file read")
    logger.info(
        "read %s: %d walkable ways, %d residential features, %d center features, %d boundaries",
        p.name,
        stats.walkable_ways,
        stats.residential_features,
        stats.center_features,
        stats.boundaries,
    )
    return OsmExtract(
        path=p,
        sha256=sha,
        bounds=bounds,
        ways=ways,
        residential=residential,
        center_features=centers,
        boundaries=boundaries,
        stats=stats,
    )


def _tag_string(tags: Any, keys: list[str]) -> str:
    return ";".join(f"{k}={tags.get(k)}" for k in keys if tags.get(k) is not None)


def _frame(rows: list[dict[str, Any]], geoms: Any, columns: list[str]) -> gpd.GeoDataFrame:
    data = pd.DataFrame(rows, columns=columns)
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geoms, crs="EPSG:4326"), crs="EPSG:4326")


# --- named places (the offline map's labels) --------------------------------------------

#: Most place names kept for the map (the largest named residential areas and boundaries).
MAX_PLACES = 150


def place_frame(
    named: Sequence[gpd.GeoDataFrame], *, max_places: int = MAX_PLACES
) -> gpd.GeoDataFrame:
    """Return named places as label points: the largest named areas of the given frames.

    Parameters
    ----------
    named
        Frames with a ``name`` column (e.g. an OSM extract's ``residential`` and
        ``boundaries``), in one CRS; rows without a name are skipped.
    max_places
        Most labels kept (the largest areas first); the map draws this many.

    Returns
    -------
    geopandas.GeoDataFrame
        ``name``, geometry (a point inside each area) in the frames' CRS.
    """
    frames = [f[["name", "geometry"]] for f in named if f is not None and "name" in f.columns]
    frames = [f[f["name"].notna() & (f["name"].astype(str).str.strip() != "")] for f in frames]
    frames = [f for f in frames if len(f)]
    if not frames:
        return gpd.GeoDataFrame({"name": []}, geometry=[], crs=4326)
    both = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=frames[0].crs)
    both = both.drop_duplicates("name")
    area = (
        both.to_crs(both.estimate_utm_crs()).area.to_numpy()
        if both.crs and both.crs.is_geographic
        else both.area.to_numpy()
    )
    both = both.iloc[np.argsort(-area, kind="stable")[:max_places]]
    return gpd.GeoDataFrame(
        {"name": both["name"].astype(str).to_numpy()},
        geometry=both.geometry.representative_point().to_numpy(),
        crs=both.crs,
    )


def named_places(extract: OsmExtract, *, max_places: int = MAX_PLACES) -> gpd.GeoDataFrame:
    """Return the extract's place labels: :func:`place_frame` of its residential areas and boundaries.

    Returns
    -------
    geopandas.GeoDataFrame
        ``name``, geometry (points, EPSG:4326).
    """
    return place_frame([extract.residential, extract.boundaries], max_places=max_places)
