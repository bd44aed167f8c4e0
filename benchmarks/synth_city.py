"""A deterministic synthetic city written as a real OSM file, for benchmarks at scale.

The city is laid out in local UTM (zone 49N, around Taiyuan, 112.55°E 37.87°N) and
written as ``.osm.pbf`` (or ``.osm.bz2`` / ``.osm``) with pyosmium, so it goes
through the same reader (:func:`coverage.osm.read_osm`) as real extracts:

- a perturbed street grid with blocks of 80–200 m, a street hierarchy
  (primary / secondary / tertiary / residential / service / living_street) with
  Chinese names, missing links (dead ends), some ``oneway=yes`` streets;
- footways and paths through blocks (T-junctions in the middle of street
  segments), a few diagonal footways, isolated footway loops (dropped as small
  components), and ways the walking filter must drop (motorways, cycleways,
  ``access=private`` footways, ``highway=construction``, ``area=yes`` squares),
  several of them sharing nodes with the walkable grid;
- ``landuse=residential`` compounds over blocks (clustered, some named) and
  residential buildings with ``building:levels``;
- districts 区1..区N tiling the city as ``boundary=administrative`` /
  ``admin_level=6`` relations over shared boundary ways;
- existing centers (about 6 per 1,000 network nodes): ``office=government`` and
  ``amenity=community_centre`` nodes, some as building areas, a few duplicated.

``nodes`` is the target number of nodes of the *simplified* walking network (what
:func:`coverage.netcache.walk_network` returns); the generator counts junctions
and dead ends of its own layout and resizes the grid to land near the target.
The same ``nodes`` and ``seed`` give byte-identical files.

Usage::

    python benchmarks/synth_city.py --nodes 100000 --seed 1 --out /tmp/city.osm.pbf \\
        --districts-out /tmp/districts.geojson
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import osmium
import pyproj
from numpy.typing import NDArray
from osmium.osm.mutable import Node, Relation, Way

#: City centre (Taiyuan, Shanxi) and the metric CRS the layout is drawn in.
ORIGIN_LONLAT = (112.55, 37.87)
LAYOUT_CRS = "EPSG:32649"  # WGS 84 / UTM zone 49N

BLOCK_MIN_M = 80.0
BLOCK_MAX_M = 200.0
MAIN_EVERY = 6  # every 6th row/column is an arterial that never has gaps
P_MISSING = 0.08  # share of minor street segments left out (dead ends, superblocks)
P_FOOTPATH = 0.22  # share of blocks crossed by a footpath
P_DIAGONAL = 0.03  # share of blocks with a diagonal footway
P_ONEWAY = 0.05
CENTERS_PER_NODE = 0.006  # ~1,800 centers in a 300,000-node city
#: Share of residential compounds with apartment rows in a dense-demand city.
DENSE_BUILDING_SHARE = 1.0
#: Row pitch of apartment slabs in a dense-demand city (slabs are 12–18 m deep).
DENSE_ROW_M = 24.0
SUFFIXES = (".osm.pbf", ".osm.bz2", ".osm.gz", ".osm")

_RES_NAMES = (
    "和平",
    "幸福",
    "阳光",
    "康乐",
    "锦绣",
    "翠苑",
    "华庭",
    "御园",
    "汾河",
    "晋阳",
    "龙城",
    "并州",
)
_ROAD_WORDS = (
    "建设",
    "迎泽",
    "府西",
    "并州",
    "长风",
    "学府",
    "滨河",
    "新建",
    "解放",
    "五一",
    "胜利",
    "平阳",
)


@dataclass(frozen=True)
class CityStats:
    """What was written, for logs and benchmark reports."""

    path: Path
    target_nodes: int
    expected_network_nodes: int
    grid_rows: int
    grid_cols: int
    osm_nodes: int
    osm_ways: int
    osm_relations: int
    walkable_ways: int
    residential_areas: int
    buildings: int
    centers: int
    districts: int
    bbox: tuple[float, float, float, float]
    seconds: float


@dataclass
class _Layout:
    """Street topology of an R × C grid (before any OSM ids are assigned)."""

    x: NDArray[np.float64]  # (R, C) grid node coordinates, meters
    y: NDArray[np.float64]
    h_ok: NDArray[np.bool_]  # (R, C-1) horizontal segment (i, j)-(i, j+1) exists
    v_ok: NDArray[np.bool_]  # (R-1, C) vertical segment (i, j)-(i+1, j) exists
    h_t: NDArray[np.float64]  # where the segment's midpoint node sits (0..1)
    v_t: NDArray[np.float64]
    foot: NDArray[np.int8]  # (R-1, C-1): 0 none, 1 north-south footpath, 2 east-west
    diag: NDArray[np.bool_]  # (R-1, C-1) diagonal footway (i, j)-(i+1, j+1)

    @property
    def shape(self) -> tuple[int, int]:
        r, c = self.x.shape
        return int(r), int(c)

    def grid_degree(self) -> NDArray[np.int64]:
        r, c = self.shape
        deg = np.zeros((r, c), dtype=np.int64)
        deg[:, :-1] += self.h_ok
        deg[:, 1:] += self.h_ok
        deg[:-1, :] += self.v_ok
        deg[1:, :] += self.v_ok
        deg[:-1, :-1] += self.diag
        deg[1:, 1:] += self.diag
        return deg

    def junctions(self) -> int:
        """Nodes the simplified network keeps: grid nodes of degree ≠ 2 plus footpath T-junctions."""
        deg = self.grid_degree()
        keep = int(np.count_nonzero((deg != 2) & (deg > 0)))
        h_used = np.zeros(self.h_ok.shape, dtype=bool)
        v_used = np.zeros(self.v_ok.shape, dtype=bool)
        ns = self.foot == 1
        h_used[:-1, :] |= ns
        h_used[1:, :] |= ns
        ew = self.foot == 2
        v_used[:, :-1] |= ew
        v_used[:, 1:] |= ew
        return keep + int(np.count_nonzero(h_used)) + int(np.count_nonzero(v_used))


def _layout(rng: np.random.Generator, rows: int, cols: int) -> _Layout:
    widths = rng.uniform(BLOCK_MIN_M, BLOCK_MAX_M, cols - 1)
    heights = rng.uniform(BLOCK_MIN_M, BLOCK_MAX_M, rows - 1)
    gx = np.concatenate([[0.0], np.cumsum(widths)])
    gy = np.concatenate([[0.0], np.cumsum(heights)])
    gx -= gx[-1] / 2
    gy -= gy[-1] / 2
    x, y = np.meshgrid(gx, gy)
    # Gentle bends (streets are not ruler-straight) plus per-junction jitter.
    x = x + 25.0 * np.sin(y / 1700.0) + rng.normal(0.0, 4.0, x.shape).clip(-10, 10)
    y = y + 25.0 * np.sin(x / 2300.0) + rng.normal(0.0, 4.0, y.shape).clip(-10, 10)

    main_r = np.arange(rows) % MAIN_EVERY == 0
    main_c = np.arange(cols) % MAIN_EVERY == 0
    h_ok = rng.random((rows, cols - 1)) >= P_MISSING
    h_ok[main_r, :] = True
    v_ok = rng.random((rows - 1, cols)) >= P_MISSING
    v_ok[:, main_c] = True
    h_t = rng.uniform(0.35, 0.65, h_ok.shape)
    v_t = rng.uniform(0.35, 0.65, v_ok.shape)

    draw = rng.random((rows - 1, cols - 1))
    ns_ok = h_ok[:-1, :] & h_ok[1:, :]
    ew_ok = v_ok[:, :-1] & v_ok[:, 1:]
    want = draw < P_FOOTPATH
    pick_ns = rng.random(draw.shape) < 0.5
    foot = np.zeros(draw.shape, dtype=np.int8)
    foot[want & pick_ns & ns_ok] = 1
    foot[want & ~pick_ns & ew_ok] = 2
    foot[want & pick_ns & ~ns_ok & ew_ok] = 2
    foot[want & ~pick_ns & ~ew_ok & ns_ok] = 1
    diag = (draw >= P_FOOTPATH) & (draw < P_FOOTPATH + P_DIAGONAL)
    return _Layout(x, y, h_ok, v_ok, h_t, v_t, foot, diag)


def _grid_shape(junctions: float) -> tuple[int, int]:
    cols = max(8, round(math.sqrt(junctions * 1.3)))
    rows = max(8, round(junctions / cols))
    return rows, cols


class _Writer:
    """Collects nodes (numpy chunks), ways and relations with sequential ids."""

    def __init__(self) -> None:
        self.xs: list[NDArray[np.float64]] = []
        self.ys: list[NDArray[np.float64]] = []
        self.n_nodes = 0
        self.node_tags: dict[int, dict[str, str]] = {}
        self.ways: list[tuple[list[int], dict[str, str]]] = []
        self.relations: list[tuple[list[tuple[str, int, str]], dict[str, str]]] = []

    def nodes(self, x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.int64]:
        x = np.asarray(x, dtype=np.float64).ravel()
        y = np.asarray(y, dtype=np.float64).ravel()
        ids = np.arange(self.n_nodes + 1, self.n_nodes + 1 + x.size, dtype=np.int64)
        self.xs.append(x)
        self.ys.append(y)
        self.n_nodes += x.size
        return ids

    def node(self, x: float, y: float, tags: dict[str, str] | None = None) -> int:
        nid = int(self.nodes(np.array([x]), np.array([y]))[0])
        if tags:
            self.node_tags[nid] = tags
        return nid

    def way(self, refs: list[int], tags: dict[str, str]) -> int:
        self.ways.append((refs, tags))
        return len(self.ways)

    def ring(self, x: NDArray[np.float64], y: NDArray[np.float64], tags: dict[str, str]) -> int:
        ids = self.nodes(x, y).tolist()
        return self.way([*ids, ids[0]], tags)

    def relation(self, members: list[tuple[str, int, str]], tags: dict[str, str]) -> int:
        self.relations.append((members, tags))
        return len(self.relations)


def _street_ways(
    w: _Writer,
    rng: np.random.Generator,
    grid_id: NDArray[np.int64],
    seg_ok: NDArray[np.bool_],
    mid_id: NDArray[np.int64],
    *,
    horizontal: bool,
) -> int:
    """Write one family of streets (rows or columns) as ways split at gaps and at random."""
    lines = seg_ok.shape[0] if horizontal else seg_ok.shape[1]
    count = 0
    for k in range(lines):
        ok = seg_ok[k, :] if horizontal else seg_ok[:, k]
        mids = mid_id[k, :] if horizontal else mid_id[:, k]
        ends = grid_id[k, :] if horizontal else grid_id[:, k]
        if k % MAIN_EVERY == 0:
            hw = "primary" if k % (2 * MAIN_EVERY) == 0 else "secondary"
            suffix = "大街"
        else:
            hw = "tertiary" if k % 3 == 0 else "residential"
            suffix = "路" if horizontal else "街"
        word = _ROAD_WORDS[k % len(_ROAD_WORDS)]
        name = f"{word}{'东西' if horizontal else '南北'}{k + 1}{suffix}"
        splits = rng.random(ok.size) < 0.25
        refs: list[int] = []

        def flush(refs: list[int], hw: str = hw, name: str = name) -> None:
            nonlocal count
            if len(refs) < 2:
                return
            tags = {"highway": hw, "name": name}
            if hw == "residential":
                r = rng.random()
                if r < 0.08:
                    tags = {"highway": "service", "service": "alley"}
                elif r < 0.12:
                    tags = {"highway": "living_street", "name": name}
                elif r < 0.16:
                    tags["highway"] = "unclassified"
                if rng.random() < P_ONEWAY:
                    tags["oneway"] = "yes"
            elif rng.random() < 0.3:
                tags["sidewalk"] = "both"
            w.way(refs, tags)
            count += 1

        for s in range(ok.size):
            if not ok[s]:
                flush(refs)
                refs = []
                continue
            if not refs:
                refs = [int(ends[s])]
            refs += [int(mids[s]), int(ends[s + 1])]
            if splits[s]:
                flush(refs)
                refs = []
        flush(refs)
    return count


def _district_edges(extent: float, parts: int, rng: np.random.Generator) -> NDArray[np.float64]:
    edges = np.linspace(-extent, extent, parts + 1)
    if parts > 1:
        step = 2 * extent / parts
        edges[1:-1] += rng.uniform(-0.15, 0.15, parts - 1) * step
    return edges


def generate_city(
    out: Path | str,
    *,
    nodes: int,
    seed: int = 1,
    districts: int | None = None,
    districts_out: Path | str | None = None,
    dense: bool = False,
) -> CityStats:
    """Write a synthetic city of about ``nodes`` simplified network nodes to ``out``.

    Parameters
    ----------
    out
        Output file; the format follows the suffix (``.osm.pbf``, ``.osm.bz2``,
        ``.osm.gz`` or ``.osm``). Written atomically, replacing an existing file.
    nodes
        Target node count of the simplified walking network (1,000 to 2,000,000).
    seed
        Random seed; the same ``nodes`` and ``seed`` give a byte-identical file.
    districts
        Number of districts; default about one per 20,000 network nodes, at least 4.
    districts_out
        Also write the districts as GeoJSON (EPSG:4326, columns ``name``,
        ``admin_level``, ``district_id``).
    dense
        Dense demand, as building-level data gives: apartment rows (24 m apart,
        up to six) in every residential compound instead of in 12 % of them: about
        2.7 residential demand units per network node at 100k nodes.
        ``False`` leaves the file byte-identical to earlier versions.
    """
    t0 = time.perf_counter()
    out = Path(out)
    if not out.name.lower().endswith(SUFFIXES):
        msg = f"`out` must end with one of {', '.join(SUFFIXES)}; got {out.name!r}."
        raise ValueError(msg)
    if not 1_000 <= nodes <= 2_000_000:
        msg = f"`nodes` must be between 1,000 and 2,000,000; got {nodes}."
        raise ValueError(msg)

    # Size the grid: guess, count the junctions that layout gives, rescale once.
    rows, cols = _grid_shape(nodes / 1.4)
    probe = _layout(np.random.default_rng([seed, rows, cols]), rows, cols)
    rows, cols = _grid_shape(rows * cols * nodes / max(probe.junctions(), 1))
    rng = np.random.default_rng([seed, rows, cols])
    lay = _layout(rng, rows, cols)
    w = _Writer()

    # --- streets ------------------------------------------------------------
    deg = lay.grid_degree()
    grid_id = np.zeros((rows, cols), dtype=np.int64)
    used = deg > 0
    grid_id[used] = w.nodes(lay.x[used], lay.y[used])

    def mids(
        ok: NDArray[np.bool_],
        t: NDArray[np.float64],
        a: tuple[slice, slice],
        b: tuple[slice, slice],
    ) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
        mx = lay.x[a] + t * (lay.x[b] - lay.x[a]) + rng.normal(0, 1.5, t.shape)
        my = lay.y[a] + t * (lay.y[b] - lay.y[a]) + rng.normal(0, 1.5, t.shape)
        ids = np.zeros(ok.shape, dtype=np.int64)
        ids[ok] = w.nodes(mx[ok], my[ok])
        return ids, mx, my

    h_mid, hmx, hmy = mids(
        lay.h_ok, lay.h_t, (slice(None), slice(None, -1)), (slice(None), slice(1, None))
    )
    v_mid, vmx, vmy = mids(
        lay.v_ok, lay.v_t, (slice(None, -1), slice(None)), (slice(1, None), slice(None))
    )
    walkable = _street_ways(w, rng, grid_id, lay.h_ok, h_mid, horizontal=True)
    walkable += _street_ways(w, rng, grid_id, lay.v_ok, v_mid, horizontal=False)

    foot_kinds = ("footway", "footway", "footway", "path", "path", "pedestrian", "steps")
    for (i, j), kind in zip(np.argwhere(lay.foot > 0), lay.foot[lay.foot > 0], strict=True):
        if kind == 1:
            a, b = h_mid[i, j], h_mid[i + 1, j]
            ax, ay, bx, by = hmx[i, j], hmy[i, j], hmx[i + 1, j], hmy[i + 1, j]
        else:
            a, b = v_mid[i, j], v_mid[i, j + 1]
            ax, ay, bx, by = vmx[i, j], vmy[i, j], vmx[i, j + 1], vmy[i, j + 1]
        cx, cy = (ax + bx) / 2 + rng.normal(0, 8), (ay + by) / 2 + rng.normal(0, 8)
        tags = {"highway": foot_kinds[int(rng.integers(len(foot_kinds)))]}
        if tags["highway"] == "pedestrian" or rng.random() < 0.1:
            tags["name"] = f"步行街{i}-{j}"
        w.way([int(a), w.node(cx, cy), int(b)], tags)
        walkable += 1

    def through_block(i: int, j: int, a: int, b: int, tags: dict[str, str]) -> None:
        cx = (lay.x[i, j] + lay.x[i + 1, j + 1]) / 2 + rng.normal(0, 6)
        cy = (lay.y[i, j] + lay.y[i + 1, j + 1]) / 2 + rng.normal(0, 6)
        w.way([a, w.node(cx, cy), b], tags)

    for i, j in np.argwhere(lay.diag):
        through_block(
            int(i), int(j), int(grid_id[i, j]), int(grid_id[i + 1, j + 1]), {"highway": "footway"}
        )
        walkable += 1

    # Ways the walking filter must drop. Those across free blocks share grid nodes,
    # so keeping them by mistake would change the network's topology.
    free = np.argwhere((lay.foot == 0) & ~lay.diag & used[1:, :-1] & used[:-1, 1:])
    n_blocks = (rows - 1) * (cols - 1)
    n_bad = max(4, n_blocks // 400)
    bad_tags = (
        {"highway": "footway", "access": "private"},
        {"highway": "cycleway"},
        {"highway": "construction", "construction": "footway"},
        {"highway": "service", "service": "parking_aisle", "access": "private"},
        {"highway": "footway", "foot": "no"},
    )
    for n, k in enumerate(rng.choice(len(free), size=min(n_bad, len(free)), replace=False)):
        i, j = (int(v) for v in free[k])
        through_block(
            i, j, int(grid_id[i + 1, j]), int(grid_id[i, j + 1]), bad_tags[n % len(bad_tags)]
        )
    # Expressways on their own nodes (bridges: no junction with the streets they cross).
    xmin, xmax, ymin, ymax = lay.x.min(), lay.x.max(), lay.y.min(), lay.y.max()
    for n in range(max(1, rows // 80)):
        r = int(rng.integers(1, rows - 1))
        yy = float((lay.y[r - 1, :].mean() + lay.y[r, :].mean()) / 2)
        xx = np.arange(xmin, xmax, 250.0)
        ids = w.nodes(xx, np.full(xx.size, yy) + rng.normal(0, 2, xx.size)).tolist()
        w.way(
            ids,
            {
                "highway": "motorway",
                "oneway": "yes",
                "ref": f"G{20 + n}",
                "bridge": "yes",
                "layer": "1",
            },
        )
        link = w.nodes(np.array([xx[2] + 60.0]), np.array([yy + 40.0])).tolist()
        w.way([ids[2], *link], {"highway": "motorway_link", "oneway": "yes"})
    for n in range(max(1, cols // 80)):
        c = int(rng.integers(1, cols - 1))
        xx0 = float((lay.x[:, c - 1].mean() + lay.x[:, c].mean()) / 2)
        yy = np.arange(ymin, ymax, 250.0)
        ids = w.nodes(np.full(yy.size, xx0) + rng.normal(0, 2, yy.size), yy).tolist()
        w.way(ids, {"highway": "motorway", "ref": f"G{50 + n}", "bridge": "yes", "layer": "1"})

    # --- residential compounds, buildings, squares, stray loops -------------------
    cx = (lay.x[:-1, :-1] + lay.x[:-1, 1:] + lay.x[1:, :-1] + lay.x[1:, 1:]) / 4
    cy = (lay.y[:-1, :-1] + lay.y[:-1, 1:] + lay.y[1:, :-1] + lay.y[1:, 1:]) / 4
    # Clustered land use: each 8 × 8-block cell has its own residential propensity.
    cell = rng.uniform(0.15, 0.9, ((rows - 2) // 8 + 1, (cols - 2) // 8 + 1))
    ii, jj = np.meshgrid(np.arange(rows - 1), np.arange(cols - 1), indexing="ij")
    residential = rng.random(ii.shape) < cell[ii // 8, jj // 8]
    bi, bj = np.nonzero(residential)
    n_res = int(bi.size)
    corners = ((0, 0), (0, 1), (1, 1), (1, 0))
    px = np.stack([lay.x[bi + a, bj + b] for a, b in corners], axis=1)
    py = np.stack([lay.y[bi + a, bj + b] for a, b in corners], axis=1)
    bcx, bcy = cx[bi, bj][:, None], cy[bi, bj][:, None]
    # Inset ~10 m from the street centre lines.
    f = np.clip(1 - 10.0 / np.hypot(px - bcx, py - bcy), 0.5, 1)
    ring_ids = w.nodes(bcx + (px - bcx) * f, bcy + (py - bcy) * f).reshape(-1, 4).tolist()
    named = (rng.random(n_res) < 0.3).tolist()
    word = rng.integers(len(_RES_NAMES), size=n_res).tolist()
    for k, (ids, i, j) in enumerate(zip(ring_ids, bi.tolist(), bj.tolist(), strict=True)):
        tags = {"landuse": "residential"}
        if named[k]:
            tags["name"] = f"{_RES_NAMES[word[k]]}{i}-{j}号小区"
        w.way([*ids, ids[0]], tags)

    # Apartment rows in some compounds: two slabs per 35 m row, up to four rows.
    sel = np.nonzero(rng.random(n_res) < (DENSE_BUILDING_SHARE if dense else 0.12))[0]
    bw = np.hypot(px[sel, 1] - px[sel, 0], py[sel, 1] - py[sel, 0]) - 40
    bh = np.hypot(px[sel, 3] - px[sel, 0], py[sel, 3] - py[sel, 0]) - 40
    row_m, max_rows = (DENSE_ROW_M, 6) if dense else (35.0, 4)
    n_row = np.clip(bh // row_m, 1, max_rows).astype(np.int64)
    blk = np.repeat(np.arange(sel.size), 2 * n_row)
    first = np.repeat(np.cumsum(2 * n_row) - 2 * n_row, 2 * n_row)
    slot = np.arange(blk.size) - first
    row, side = slot // 2, np.where(slot % 2 == 0, -1.0, 1.0)
    n_bld = int(blk.size)
    width = np.minimum(rng.uniform(30, 60, n_bld), np.maximum(bw[blk] / 2 - 8, 12))
    depth = rng.uniform(12, 18, n_bld)
    bx0 = bcx[sel[blk], 0] + side * (4 + width / 2) - width / 2
    by0 = bcy[sel[blk], 0] - bh[blk] / 2 + row * row_m + 5
    bxs = np.stack([bx0, bx0 + width, bx0 + width, bx0], axis=1)
    bys = np.stack([by0, by0, by0 + depth, by0 + depth], axis=1)
    bld_ids = w.nodes(bxs, bys).reshape(-1, 4).tolist()
    kind = np.where(rng.random(n_bld) < 0.6, "residential", "apartments").tolist()
    levels = rng.choice(np.array([3, 5, 6, 7, 11, 18, 26, 33]), size=n_bld).tolist()
    has_levels = (rng.random(n_bld) < 0.8).tolist()
    for k, ids in enumerate(bld_ids):
        btags = {"building": kind[k]}
        if has_levels[k]:
            btags["building:levels"] = str(levels[k])
        w.way([*ids, ids[0]], btags)
    nonres = np.argwhere(~residential & (lay.foot == 0) & ~lay.diag)
    for n, k in enumerate(
        rng.choice(len(nonres), size=min(max(2, n_blocks // 300), len(nonres)), replace=False)
    ):
        i, j = (int(v) for v in nonres[k])
        s = float(rng.uniform(12, 25))
        xs = cx[i, j] + np.array([-s, s, s, -s])
        ys = cy[i, j] + np.array([-s, -s, s, s])
        if n % 2 == 0:  # a square: area=yes keeps it out of the walking network
            w.ring(xs, ys, {"highway": "pedestrian", "area": "yes", "name": f"广场{n}"})
        else:  # a stray loop with no link to the streets: not in the largest component
            w.ring(xs, ys, {"highway": "footway"})

    # --- districts ----------------------------------------------------------------
    n_d = districts if districts is not None else max(4, round(nodes / 20_000))
    d_rows = max(1, round(math.sqrt(n_d * (ymax - ymin) / (xmax - xmin))))
    d_cols = math.ceil(n_d / d_rows)
    margin = 300.0
    ex = _district_edges(max(-xmin, xmax) + margin, d_cols, rng)
    ey = _district_edges(max(-ymin, ymax) + margin, d_rows, rng)

    def boundary_line(
        xs: NDArray[np.float64], ys: NDArray[np.float64]
    ) -> tuple[list[float], list[float]]:
        n = max(2, int(np.hypot(xs[1] - xs[0], ys[1] - ys[0]) // 800) + 1)
        lx = np.linspace(xs[0], xs[1], n)
        ly = np.linspace(ys[0], ys[1], n)
        lx[1:-1] += rng.normal(0, 30, n - 2) * (ys[0] != ys[1])
        ly[1:-1] += rng.normal(0, 30, n - 2) * (xs[0] != xs[1])
        return lx.tolist(), ly.tolist()

    # Corner nodes are shared by the boundary ways that meet there.
    corner_id = w.nodes(*(a.ravel() for a in np.meshgrid(ex, ey))).reshape(ey.size, ex.size)
    btags = {"boundary": "administrative", "admin_level": "6"}
    h_way: dict[tuple[int, int], tuple[int, list[float], list[float]]] = {}
    v_way: dict[tuple[int, int], tuple[int, list[float], list[float]]] = {}
    for a in range(ey.size):
        for b in range(ex.size - 1):
            lx, ly = boundary_line(np.array([ex[b], ex[b + 1]]), np.array([ey[a], ey[a]]))
            inner = w.nodes(np.array(lx[1:-1]), np.array(ly[1:-1])).tolist()
            wid = w.way([int(corner_id[a, b]), *inner, int(corner_id[a, b + 1])], btags)
            h_way[a, b] = (wid, lx, ly)
    for b in range(ex.size):
        for a in range(ey.size - 1):
            lx, ly = boundary_line(np.array([ex[b], ex[b]]), np.array([ey[a], ey[a + 1]]))
            inner = w.nodes(np.array(lx[1:-1]), np.array(ly[1:-1])).tolist()
            wid = w.way([int(corner_id[a, b]), *inner, int(corner_id[a + 1, b])], btags)
            v_way[b, a] = (wid, lx, ly)
    district_rings: list[tuple[str, list[float], list[float]]] = []
    n_written = 0
    for a in range(d_rows):
        for b in range(d_cols):
            n_written += 1
            name = f"区{n_written}"
            bottom, right = h_way[a, b], v_way[b + 1, a]
            top, left = h_way[a + 1, b], v_way[b, a]
            w.relation(
                [("w", s[0], "outer") for s in (bottom, right, top, left)],
                {"type": "boundary", **btags, "name": name, "name:en": f"District {n_written}"},
            )
            rx = bottom[1] + right[1][1:] + top[1][::-1][1:] + left[1][::-1][1:]
            ry = bottom[2] + right[2][1:] + top[2][::-1][1:] + left[2][::-1][1:]
            district_rings.append((name, rx, ry))

    # --- existing centers ---------------------------------------------------------
    n_c = max(3, round(nodes * CENTERS_PER_NODE))
    cand = np.argwhere(used)
    picks = cand[rng.choice(len(cand), size=min(n_c, len(cand)), replace=False)]
    n_centers = 0
    for k, (i, j) in enumerate(picks):
        px = float(lay.x[i, j] + rng.choice([-1, 1]) * rng.uniform(8, 30))
        py = float(lay.y[i, j] + rng.choice([-1, 1]) * rng.uniform(8, 30))
        di = int(np.searchsorted(ey, py).clip(1, d_rows)) - 1
        dj = int(np.searchsorted(ex, px).clip(1, d_cols)) - 1
        dname = f"区{di * d_cols + dj + 1}"
        if rng.random() < 0.7:
            tags = {"office": "government", "government": "community"}
            tags["name"] = f"{dname}第{k + 1}社区党群服务中心"
        else:
            tags = {"amenity": "community_centre", "name": f"{dname}第{k + 1}社区服务中心"}
        if rng.random() < 0.15:
            s = 10.0
            w.ring(
                px + np.array([-s, s, s, -s]),
                py + np.array([-s, -s, s, s]),
                {"building": "public", **tags},
            )
        else:
            w.node(px, py, tags)
            if rng.random() < 0.02:  # the same office mapped twice, a few meters apart
                w.node(px + 4.0, py + 3.0, {"amenity": "community_centre", "name": tags["name"]})
        n_centers += 1

    # --- write ----------------------------------------------------------------------
    to_ll = pyproj.Transformer.from_crs(LAYOUT_CRS, "EPSG:4326", always_xy=True)
    ox0, oy0 = pyproj.Transformer.from_crs("EPSG:4326", LAYOUT_CRS, always_xy=True).transform(
        *ORIGIN_LONLAT
    )
    lon, lat = to_ll.transform(np.concatenate(w.xs) + ox0, np.concatenate(w.ys) + oy0)
    lon = np.round(np.asarray(lon), 7)
    lat = np.round(np.asarray(lat), 7)
    bbox = (float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max()))
    _write_osm(out, w, lon, lat, bbox)

    if districts_out is not None:
        _write_districts(Path(districts_out), district_rings, to_ll, (ox0, oy0))

    stats = CityStats(
        path=out,
        target_nodes=nodes,
        expected_network_nodes=lay.junctions(),
        grid_rows=rows,
        grid_cols=cols,
        osm_nodes=w.n_nodes,
        osm_ways=len(w.ways),
        osm_relations=len(w.relations),
        walkable_ways=walkable,
        residential_areas=n_res,
        buildings=n_bld,
        centers=n_centers,
        districts=len(district_rings),
        bbox=bbox,
        seconds=time.perf_counter() - t0,
    )
    return stats


def _write_osm(
    out: Path,
    w: _Writer,
    lon: NDArray[np.float64],
    lat: NDArray[np.float64],
    bbox: tuple[float, float, float, float],
) -> None:
    suffix = next(s for s in SUFFIXES if out.name.lower().endswith(s))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name[: -len(suffix)]}.tmp{os.getpid()}{suffix}")
    header = osmium.io.Header()
    header.set("generator", "coverage-planner synth_city")
    header.add_box(
        osmium.osm.Box(osmium.osm.Location(bbox[0], bbox[1]), osmium.osm.Location(bbox[2], bbox[3]))
    )
    writer: Any = osmium.SimpleWriter(str(tmp), header=header, overwrite=True)
    try:
        tags_of = w.node_tags
        for nid, (x, y) in enumerate(zip(lon.tolist(), lat.tolist(), strict=True), start=1):
            tags = tags_of.get(nid)
            if tags:
                writer.add_node(Node(id=nid, location=(x, y), tags=tags))
            else:
                writer.add_node(Node(id=nid, location=(x, y)))
        for wid, (refs, tags) in enumerate(w.ways, start=1):
            writer.add_way(Way(id=wid, nodes=refs, tags=tags))
        for rid, (members, tags) in enumerate(w.relations, start=1):
            writer.add_relation(Relation(id=rid, members=members, tags=tags))
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    writer.close()
    os.replace(tmp, out)


def _write_districts(
    path: Path,
    rings: list[tuple[str, list[float], list[float]]],
    to_ll: pyproj.Transformer,
    origin: tuple[float, float],
) -> None:
    import geopandas as gpd
    import shapely

    polys = []
    for _, rx, ry in rings:
        lon, lat = to_ll.transform(np.asarray(rx) + origin[0], np.asarray(ry) + origin[1])
        polys.append(shapely.Polygon(np.column_stack([np.round(lon, 7), np.round(lat, 7)])))
    gdf = gpd.GeoDataFrame(
        {
            "district_id": [f"D{k + 1}" for k in range(len(rings))],
            "name": [r[0] for r in rings],
            "admin_level": ["6"] * len(rings),
        },
        geometry=polys,
        crs="EPSG:4326",
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}.geojson")
    gdf.to_file(tmp, driver="GeoJSON")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, required=True, help="target simplified network nodes")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--out", type=Path, required=True, help=".osm.pbf, .osm.bz2, .osm.gz or .osm"
    )
    parser.add_argument("--districts", type=int, default=None, help="number of districts")
    parser.add_argument(
        "--districts-out", type=Path, default=None, help="also write districts GeoJSON"
    )
    parser.add_argument(
        "--dense", action="store_true", help="dense demand: apartment rows in most compounds"
    )
    args = parser.parse_args(argv)
    try:
        stats = generate_city(
            args.out,
            nodes=args.nodes,
            seed=args.seed,
            districts=args.districts,
            districts_out=args.districts_out,
            dense=args.dense,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"wrote {stats.path} in {stats.seconds:.1f} s: grid {stats.grid_rows}×{stats.grid_cols}, "
        f"~{stats.expected_network_nodes:,} network nodes (target {stats.target_nodes:,}), "
        f"{stats.osm_nodes:,} OSM nodes, {stats.osm_ways:,} ways, {stats.osm_relations} relations; "
        f"{stats.residential_areas:,} residential areas, {stats.buildings:,} buildings, "
        f"{stats.centers:,} centers, {stats.districts} districts",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
