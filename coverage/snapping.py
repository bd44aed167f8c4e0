"""Snapping: where points and frames join the walking network.

A point joins the network at the nearest point of the nearest walkable *edge*
(not the nearest node: a node can lie on a badly connected way far off while a
street passes close by). The join is described by the edge index, the offset
along that edge from its ``u`` end and the straight-line access distance, which
the searches walk at the same speed as the streets.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pyproj
import shapely
from numpy.typing import NDArray

from coverage.errors import InputError
from coverage.network import WalkNetwork
from coverage.parallel import elementwise_in_threads

#: Columns added by :func:`snap_frame`.
SNAP_EDGE = "snap_edge"
SNAP_OFFSET_M = "snap_offset_m"
SNAP_DISTANCE_M = "snap_distance_m"


@dataclass(frozen=True)
class Snap:
    """Where points join the network: the nearest point on the nearest edge.

    ``offset_m`` is measured along edge ``edge`` from its ``u`` end.
    """

    edge: NDArray[np.int64]
    offset_m: NDArray[np.float64]
    distance_m: NDArray[np.float64]
    x: NDArray[np.float64]
    y: NDArray[np.float64]

    def __len__(self) -> int:
        """Return the number of snapped points."""
        return int(self.edge.size)


def snap_points(net: WalkNetwork, x: NDArray[np.float64], y: NDArray[np.float64]) -> Snap:
    """Snap projected points to the nearest point on a walkable edge.

    Parameters
    ----------
    net
        The walking network.
    x, y
        Point coordinates in ``net.crs``.

    Returns
    -------
    Snap
        Edge index, offset along the edge, straight-line access distance and
        the snapped coordinates, one per input point.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.size == 0:
        empty_f = np.empty(0, dtype=np.float64)
        return Snap(np.empty(0, dtype=np.int64), empty_f, empty_f, empty_f, empty_f)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        msg = "Points to snap have NaN or infinite coordinates; drop or fix them first."
        raise InputError(msg)
    pts = shapely.points(x, y)
    # the tree queries and the line measures release the GIL: chunks of points in threads
    nearest = elementwise_in_threads(lambda chunk: _nearest_edge(net.edge_tree, chunk), pts)
    edge = nearest[:, 0].astype(np.int64)
    distance = nearest[:, 1]
    lines = net.edge_geometry[edge]
    offset = elementwise_in_threads(shapely.line_locate_point, lines, pts)
    on = elementwise_in_threads(shapely.line_interpolate_point, lines, offset)
    offset = np.clip(
        offset * (net.edge_length_m[edge] / np.maximum(shapely.length(lines), 1e-12)),
        0.0,
        net.edge_length_m[edge],
    )
    return Snap(
        edge=edge,
        offset_m=offset.astype(np.float64),
        distance_m=distance,
        x=shapely.get_x(on),
        y=shapely.get_y(on),
    )


def _nearest_edge(tree: shapely.STRtree, pts: NDArray[np.object_]) -> NDArray[np.float64]:
    """Return one row per point, in order: the nearest edge's index and its distance.

    Of several edges at the same distance, the first the tree yields (the same whichever
    chunk of points a point is queried with).
    """
    idx, dist = tree.query_nearest(pts, return_distance=True, all_matches=False)
    order = np.argsort(idx[0], kind="stable")
    pi, ei, d = idx[0][order], idx[1][order], dist[order]
    first = np.ones(pi.size, dtype=bool)
    first[1:] = pi[1:] != pi[:-1]
    out = np.empty((pts.size, 2), dtype=np.float64)
    out[pi[first], 0] = ei[first]  # exact: edge indices are far below 2**53
    out[pi[first], 1] = d[first]
    return out


def require_net_crs(net: WalkNetwork, gdf: object, what: str) -> None:
    """Refuse anything but a GeoDataFrame in ``net.crs`` (a mismatch would give wrong distances).

    Raises
    ------
    InputError
        ``gdf`` is not a GeoDataFrame, or not in ``net.crs``; the message names ``what``.
    """
    if not isinstance(gdf, gpd.GeoDataFrame):
        msg = f"`{what}` must be a GeoDataFrame; got {type(gdf).__name__}."
        raise InputError(msg)
    if gdf.crs is None or not pyproj.CRS.from_user_input(gdf.crs).equals(
        pyproj.CRS.from_user_input(net.crs)
    ):
        msg = f"`{what}` is in {gdf.crs}, the network in {net.crs}; project it first (`{what}.to_crs(net.crs)`)."
        raise InputError(msg)


def snap_frame(net: WalkNetwork, gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Return a copy of ``gdf`` with the snap columns added.

    Points snap as they are; polygons and lines snap from a representative
    point inside them. ``gdf`` must already be in ``net.crs``: a CRS mismatch
    raises instead of producing wrong distances.

    Parameters
    ----------
    net
        The walking network.
    gdf
        Features in ``net.crs``; never modified.

    Returns
    -------
    geopandas.GeoDataFrame
        ``gdf``'s columns and index, plus ``snap_edge`` (index into
        ``net.edge_*``), ``snap_offset_m`` (along that edge from its ``u`` end)
        and ``snap_distance_m`` (straight-line access distance).

    Raises
    ------
    InputError
        ``gdf`` is not a GeoDataFrame, or not in ``net.crs``.
    """
    require_net_crs(net, gdf, "gdf")
    out = gdf.copy()
    geoms = out.geometry.values
    pts = np.where(
        shapely.get_type_id(geoms) == shapely.GeometryType.POINT,
        geoms,
        shapely.point_on_surface(geoms),
    )
    snap = snap_points(net, shapely.get_x(pts), shapely.get_y(pts))
    out[SNAP_EDGE] = snap.edge
    out[SNAP_OFFSET_M] = snap.offset_m
    out[SNAP_DISTANCE_M] = snap.distance_m
    return out
