"""Residential demand units with population estimates, snapped to the network."""

from __future__ import annotations

#: Column names of a demand GeoDataFrame (see docs/ARCHITECTURE.md).
DEMAND_ID = "demand_id"
POPULATION = "population"
KIND = "kind"
NAME = "name"
