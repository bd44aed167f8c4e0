"""Generate the hand-made OSM test grids with known lengths.

Run from the repository root: ``.venv/bin/python tests/data/make_grid.py``.
It rewrites ``tests/data/grid.osm`` and ``tests/data/grid_clipped.osm``; both
are committed, so tests never need this script.

Node positions are laid out in UTM zone 50N (EPSG:32650, near Beijing) and
inverse-projected to WGS-84 with 7 decimals (OSM's own precision, ~1 cm), so
after the network is projected back to UTM every grid edge is 100 m long to
within a centimetre.

Layout (UTM metres from the origin ``(ORIGIN_E, ORIGIN_N)``):

* a 5 x 5 grid of intersections at 100 m spacing: 5 east-west ways
  (``highway=residential``; the middle one ``oneway=yes``) and 5 north-south
  ways (``highway=footway``), 4,000 m in total. Simplification removes the four
  corner nodes (two neighbours each), leaving 21 nodes and 36 undirected edges.
* a disconnected footway of 3 nodes, 200 m long, 600 m east of the grid:
  simplified to 2 nodes and dropped as not the largest component.
* ways that must NOT become walkable edges, each a 100 m spur from a grid node
  to a node of its own: ``highway=motorway``, ``highway=primary`` + ``foot=no``,
  ``highway=service`` + ``access=private``, ``highway=construction``, and a
  closed ``highway=pedestrian`` + ``area=yes`` square.
* a ``building=residential`` outline of 20 x 30 m (600 m²) and a
  ``landuse=residential`` polygon of 80 x 80 m (6,400 m²).
* an ``office=government`` node at (150, 130): its nearest edge point is
  (150, 100), 30 m away.

``grid_clipped.osm`` is the same grid as a clipping extract would cut it: grid
node (0, 2) (row 0, column 2) is missing, which trims the row-0 way into two
pieces and the column-2 way into one; a footway whose nodes are all missing
but one, and one whose nodes are all missing, are dropped.
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import quoteattr

import pyproj

HERE = Path(__file__).resolve().parent
UTM = "EPSG:32650"
ORIGIN_E = 440_000.0
ORIGIN_N = 4_428_000.0
SPACING_M = 100.0
SIZE = 5

_to_lonlat = pyproj.Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)


def grid_node_id(row: int, col: int) -> int:
    """OSM id of grid intersection (``row`` north, ``col`` east), 1-based."""
    return 1 + row * SIZE + col


def build(clipped: bool = False) -> str:
    nodes: dict[int, tuple[float, float, dict[str, str]]] = {}
    ways: list[tuple[int, list[int], dict[str, str]]] = []

    def node(nid: int, x_m: float, y_m: float, **tags: str) -> int:
        nodes[nid] = (x_m, y_m, tags)
        return nid

    for r in range(SIZE):
        for c in range(SIZE):
            node(grid_node_id(r, c), c * SPACING_M, r * SPACING_M)
    for r in range(SIZE):
        tags = {"highway": "residential", "name": f"Row {r}"}
        if r == 2:
            tags["oneway"] = "yes"
        ways.append((100 + r, [grid_node_id(r, c) for c in range(SIZE)], tags))
    for c in range(SIZE):
        ways.append((200 + c, [grid_node_id(r, c) for r in range(SIZE)], {"highway": "footway"}))

    # Disconnected component: 3 nodes, 200 m, well east of the grid.
    ids = [node(300 + i, 1000.0 + i * SPACING_M, 0.0) for i in range(3)]
    ways.append((300, ids, {"highway": "footway", "name": "Island path"}))

    # Excluded spurs: each would add one node and one 100 m edge if it were kept.
    spurs = [
        ({"highway": "motorway"}, (0, 0), (-100.0, 0.0)),
        ({"highway": "primary", "foot": "no"}, (1, 0), (-100.0, 100.0)),
        ({"highway": "service", "access": "private"}, (2, 0), (-100.0, 200.0)),
        ({"highway": "construction"}, (3, 0), (-100.0, 300.0)),
    ]
    for k, (tags, (r, c), (x, y)) in enumerate(spurs):
        nid = node(400 + k, x, y)
        ways.append((400 + k, [grid_node_id(r, c), nid], tags))
    # Pedestrian area: a closed 100 m square hanging off the top-right node.
    top_right = grid_node_id(SIZE - 1, SIZE - 1)
    a = node(410, 500.0, 400.0)
    b = node(411, 500.0, 500.0)
    d = node(412, 400.0, 500.0)
    ways.append((410, [top_right, a, b, d, top_right], {"highway": "pedestrian", "area": "yes"}))

    # Building 20 x 30 m and residential landuse 80 x 80 m, inside grid cells.
    bx = [node(500 + i, x, y) for i, (x, y) in enumerate([(10, 10), (30, 10), (30, 40), (10, 40)])]
    ways.append((500, [*bx, bx[0]], {"building": "residential", "building:levels": "6"}))
    lx = [
        node(510 + i, x, y)
        for i, (x, y) in enumerate([(210, 210), (290, 210), (290, 290), (210, 290)])
    ]
    ways.append((510, [*lx, lx[0]], {"landuse": "residential", "name": "Grid Garden"}))

    node(600, 150.0, 130.0, office="government", name="Grid community service center")

    if clipped:
        del nodes[grid_node_id(0, 2)]
        ways.append((700, [9001, grid_node_id(2, 2), 9002], {"highway": "footway"}))
        ways.append((701, [9003, 9004], {"highway": "footway"}))

    lon_min = lat_min = float("inf")
    lon_max = lat_max = float("-inf")
    node_lines = []
    for nid in sorted(nodes):
        x, y, tags = nodes[nid]
        lon, lat = _to_lonlat.transform(ORIGIN_E + x, ORIGIN_N + y)
        lon_min, lon_max = min(lon_min, lon), max(lon_max, lon)
        lat_min, lat_max = min(lat_min, lat), max(lat_max, lat)
        attrs = f'id="{nid}" version="1" lat="{lat:.7f}" lon="{lon:.7f}"'
        if tags:
            node_lines.append(f"  <node {attrs}>")
            node_lines.extend(
                f"    <tag k={quoteattr(k)} v={quoteattr(v)}/>" for k, v in tags.items()
            )
            node_lines.append("  </node>")
        else:
            node_lines.append(f"  <node {attrs}/>")
    way_lines = []
    for wid, refs, tags in ways:
        way_lines.append(f'  <way id="{wid}" version="1">')
        way_lines.extend(f'    <nd ref="{ref}"/>' for ref in refs)
        way_lines.extend(f"    <tag k={quoteattr(k)} v={quoteattr(v)}/>" for k, v in tags.items())
        way_lines.append("  </way>")
    head = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<osm version="0.6" generator="tests/data/make_grid.py">',
        f'  <bounds minlat="{lat_min:.7f}" minlon="{lon_min:.7f}" '
        f'maxlat="{lat_max:.7f}" maxlon="{lon_max:.7f}"/>',
    ]
    return "\n".join([*head, *node_lines, *way_lines, "</osm>", ""])


def main() -> None:
    (HERE / "grid.osm").write_text(build(clipped=False), encoding="utf-8")
    (HERE / "grid_clipped.osm").write_text(build(clipped=True), encoding="utf-8")


if __name__ == "__main__":
    main()
