"""Existing service centers: from OSM tags or a user file, deduplicated, snapped."""

from __future__ import annotations

#: Column names of a centers GeoDataFrame (see docs/ARCHITECTURE.md).
CENTER_ID = "center_id"
NAME = "name"
SOURCE = "source"
LEVEL = "level"
