"""Coverage Planner: walking-time coverage of community service centers.

The package is a library of small typed functions over GeoDataFrames, graphs
and arrays. Modules are ordered; each imports only from those before it (the
full order, with each module's one job, is in docs/ARCHITECTURE.md):

``osm`` → ``network`` → ``centers`` / ``demand`` → ``reach`` → ``isochrones``
→ ``audit`` → ``capacity`` → ``groups`` → ``optimize`` → ``siting`` → ``inputs``
→ ``scenario`` → ``maps`` / ``report`` → ``export`` → ``pipeline`` → ``batch``
→ ``cli``.
"""

from __future__ import annotations

__version__ = "0.1.0"

from coverage.errors import InputError, PlannerError, ResourceLimitError, SolverError

__all__ = ["InputError", "PlannerError", "ResourceLimitError", "SolverError", "__version__"]
