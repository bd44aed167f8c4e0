"""Station siting: candidates → coverage sets → greedy max-coverage with a proven bound.

The optimizer core works on a plain boolean matrix (candidates × demand units,
``scipy.sparse.csr_array``) and a population vector, and knows nothing about
geography: :func:`greedy_max_coverage` (lazy greedy, CELF), :func:`swap_improve`
(1-swap local search), :func:`upper_bound` (submodular and LP bounds) and
:func:`solve_exact` (the maximal covering MIP in HiGHS). The geographic wrapper
builds that matrix from the walking network (:func:`candidate_sites`,
:func:`candidates_from_file`, :func:`coverage_sets`) and returns a
:class:`SitingResult` from :func:`propose_sites`.
"""

from __future__ import annotations

import heapq
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from numpy.typing import NDArray
from scipy import sparse
from scipy.spatial import cKDTree

from coverage.centers import CENTER_ID
from coverage.demand import POPULATION
from coverage.errors import InputError, SolverError
from coverage.network import (
    DEFAULT_SPEED_KMH,
    SNAP_DISTANCE_M,
    SNAP_EDGE,
    SNAP_OFFSET_M,
    WalkNetwork,
    snap_frame,
    snap_points,
    speed_ms,
)
from coverage.progress import ProgressFn, sub_progress
from coverage.reach import (
    Snapped,
    nearest_points_m,
    pairs_within_m,
    point_xy,
    require_snapped,
    snap_arrays,
)

logger = logging.getLogger(__name__)

#: Column names of a candidates / sites GeoDataFrame.
CANDIDATE_ID = "candidate_id"
CANDIDATE_SOURCE = "source"
RANK = "rank"
MARGINAL_POPULATION = "marginal_population"
CUMULATIVE_POPULATION = "cumulative_population"
CUMULATIVE_SHARE = "cumulative_share"
#: Column names of the coverage curve.
CURVE_K = "k"
CURVE_SHARE = "share"
CURVE_POPULATION = "population_covered"

METHOD_GREEDY = "greedy+swap"
METHOD_EXACT = "exact"

# Floating-point slack when comparing walked meters with a threshold.
_LIMIT_EPS_M = 1e-6

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


# --- parameters and results ---------------------------------------------------


def _finite_number(name: str, value: Any, *, what: str) -> float:
    """``value`` as a finite float, or an InputError naming the parameter."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, str) or not math.isfinite(number):
        msg = f"`{name}` must be {what}; got {value!r}."
        raise InputError(msg)
    return number


@dataclass(frozen=True)
class SitingParams:
    """What to optimise and how.

    Give exactly one of ``k`` (number of new stations) or ``target_share``
    (population share to reach within ``minutes``, with at most ``max_k``
    stations). ``secondary_minutes`` breaks ties between equal primary gains.
    With ``exact`` and ``target_share``, a first MIP finds the fewest sites that
    reach the target (at most as many as greedy + swap needed), a second one the
    best coverage with that many. ``time_limit_s`` is the wall-time budget of all
    solver calls of one run together (LP bound, and in exact mode the MIPs).
    """

    k: int | None = None
    target_share: float | None = None
    max_k: int = 50
    minutes: float = 15.0
    secondary_minutes: float | None = 5.0
    speed_kmh: float = DEFAULT_SPEED_KMH
    spacing_m: float = 100.0
    max_distance_m: float = 300.0
    exact: bool = False
    time_limit_s: float = 60.0
    mip_rel_gap: float = 1e-7
    swap: bool = True
    lp_bound: bool = True

    def __post_init__(self) -> None:
        if (self.k is None) == (self.target_share is None):
            msg = f"Give exactly one of `k` (number of new stations) or `target_share` (e.g. 0.95); got k={self.k!r}, target_share={self.target_share!r}."
            raise InputError(msg)
        if self.k is not None:
            k = _finite_number("k", self.k, what="a positive whole number of new stations")
            if isinstance(self.k, bool) or int(k) != k or k <= 0:
                msg = f"`k` must be a positive whole number of new stations; got {self.k!r}."
                raise InputError(msg)
        if self.target_share is not None:
            share = _finite_number(
                "target_share", self.target_share, what="a population share in (0, 1]"
            )
            if not 0 < share <= 1:
                msg = f"`target_share` must be a population share in (0, 1], e.g. 0.95; got {self.target_share!r}."
                raise InputError(msg)
        max_k = _finite_number("max_k", self.max_k, what="a positive whole number")
        if isinstance(self.max_k, bool) or int(max_k) != max_k or max_k <= 0:
            msg = f"`max_k` must be a positive whole number; got {self.max_k!r}."
            raise InputError(msg)
        for name in ("minutes", "spacing_m", "max_distance_m", "time_limit_s"):
            value = _finite_number(name, getattr(self, name), what="a positive number")
            if value <= 0:
                msg = f"`{name}` must be a positive number; got {getattr(self, name)!r}."
                raise InputError(msg)
        if self.secondary_minutes is not None:
            value = _finite_number(
                "secondary_minutes",
                self.secondary_minutes,
                what="a positive number of minutes or None",
            )
            if value <= 0:
                msg = f"`secondary_minutes` must be a positive number of minutes or None; got {self.secondary_minutes!r}."
                raise InputError(msg)
        gap = _finite_number("mip_rel_gap", self.mip_rel_gap, what="a number in [0, 1)")
        if not 0 <= gap < 1:
            msg = f"`mip_rel_gap` must be in [0, 1); got {self.mip_rel_gap!r}."
            raise InputError(msg)
        speed_ms(self.speed_kmh)


@dataclass(frozen=True)
class GreedyResult:
    """Sites chosen by the lazy greedy, in the order chosen.

    Populations are in the units of ``weights``; ``cumulative_population``
    includes the population already covered (``population_before``).
    """

    chosen: IntArray
    marginal_population: FloatArray
    cumulative_population: FloatArray
    population_before: float
    population_total: float
    target_met: bool | None

    @property
    def population_after(self) -> float:
        return float(self.cumulative_population[-1]) if self.chosen.size else self.population_before


@dataclass(frozen=True)
class SwapResult:
    """A set of sites after 1-swap local search and its covered population."""

    chosen: IntArray
    population_covered: float
    swaps: int


@dataclass(frozen=True)
class Bound:
    """Upper bounds on the best population coverable with ``k`` more sites.

    ``population`` is the smaller (better) of the valid bounds; ``lp_population``
    is NaN when the LP was not solved.
    """

    population: float
    submodular_population: float
    lp_population: float
    k: int


@dataclass(frozen=True)
class ExactResult:
    """The maximal covering MIP solved by HiGHS.

    ``optimal`` is True when HiGHS proved optimality within ``mip_rel_gap``;
    otherwise ``bound_population`` is the solver's dual bound at the time limit.
    """

    chosen: IntArray
    population_covered: float
    bound_population: float
    optimal: bool
    status: str
    runtime_s: float


@dataclass(frozen=True)
class SitingResult:
    """Proposed sites and their effect.

    Attributes
    ----------
    sites
        GeoDataFrame in ``net.crs``: ``rank`` (1 = first), ``candidate_id``,
        ``marginal_population`` (newly covered within the primary threshold),
        ``cumulative_population`` and ``cumulative_share`` (covered in total,
        existing centers included), snap columns, geometry (the point on the
        walkable network).
    curve
        DataFrame ``k`` (0..K), ``share``, ``population_covered``.
    method
        ``"greedy+swap"`` or ``"exact"``.
    upper_bound_share
        A proven upper bound on the best share reachable with ``k`` sites.
    gap
        ``upper_bound_share - share_after``.
    minutes_after
        Per demand unit (same index as the demand frame): walking minutes to the
        nearest existing or proposed station; NaN when none is reachable.
    target_met
        None when ``k`` was given; otherwise whether ``target_share`` was reached
        within ``max_k`` sites (a warning is logged when it was not).
    optimal
        True when the reported solution is proven optimal (exact mode).
    min_sites_proven
        Exact mode with ``target_share`` only: True when ``k`` is proven to be the
        fewest sites reaching the target (``None`` otherwise).
    """

    params: SitingParams
    sites: gpd.GeoDataFrame
    curve: pd.DataFrame
    method: str
    k: int
    share_before: float
    share_after: float
    upper_bound_share: float
    gap: float
    minutes_after: pd.Series
    population_total: float
    n_candidates: int
    target_met: bool | None = None
    optimal: bool = False
    solver_status: str = ""
    swaps: int = 0
    min_sites_proven: bool | None = None

    def summary(self) -> dict[str, Any]:
        """The ``siting`` section of ``summary.json``."""
        out: dict[str, Any] = {
            "method": self.method,
            "k": self.k,
            "share_before": self.share_before,
            "share_after": self.share_after,
            "upper_bound_share": self.upper_bound_share,
            "gap": self.gap,
        }
        if self.target_met is not None:
            out["target_share"] = self.params.target_share
            out["target_met"] = self.target_met
        return out


# --- matrix core --------------------------------------------------------------


def _check_matrix(
    cover: Any, weights: Any, covered0: Any
) -> tuple[sparse.csr_array, FloatArray, BoolArray]:
    if not sparse.issparse(cover) or cover.ndim != 2:
        msg = f"`cover` must be a 2-D scipy sparse matrix (candidates × demand); got {type(cover).__name__}."
        raise InputError(msg)
    C = sparse.csr_array(cover, dtype=bool)
    C.sum_duplicates()
    C.sort_indices()
    n_dem = C.shape[1]
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n_dem,):
        msg = f"`weights` must have one value per demand unit ({n_dem}); got shape {w.shape}."
        raise InputError(msg)
    if not np.isfinite(w).all() or (w < 0).any():
        msg = "`weights` (population) must be finite and non-negative; fix or drop the offending demand units."
        raise InputError(msg)
    if covered0 is None:
        c0 = np.zeros(n_dem, dtype=bool)
    else:
        c0 = np.asarray(covered0, dtype=bool)
        if c0.shape != (n_dem,):
            msg = (
                f"`covered0` must have one boolean per demand unit ({n_dem}); got shape {c0.shape}."
            )
            raise InputError(msg)
    return C, w, c0


def _row_gain(C: sparse.csr_array, c: int, w_open: FloatArray) -> float:
    # One summation routine everywhere, so equal gains compare equal and ties
    # fall to the candidate index deterministically.
    s, e = C.indptr[c], C.indptr[c + 1]
    return float(np.sum(w_open[C.indices[s:e]]))


def greedy_max_coverage(
    cover: Any,
    weights: Any,
    *,
    covered0: Any = None,
    k: int | None = None,
    target_share: float | None = None,
    max_k: int = 50,
    tie_cover: Any = None,
    tie_covered0: Any = None,
) -> GreedyResult:
    """Greedy maximal coverage with lazy evaluation (CELF).

    Parameters
    ----------
    cover
        Boolean sparse matrix, candidates × demand units: ``cover[c, d]`` when
        candidate ``c`` reaches demand unit ``d`` within the primary threshold.
    weights
        Population per demand unit.
    covered0
        Demand already covered by existing centers (counts as covered).
    k
        Number of sites to choose; or
    target_share
        Share of total population to reach, choosing at most ``max_k`` sites.
        An unreachable target logs a warning and sets ``target_met=False``.
    tie_cover, tie_covered0
        Secondary-threshold matrix and its existing coverage; equal primary
        gains are broken by secondary gain, then by the lower candidate index.

    Returns
    -------
    GreedyResult
        ``chosen`` (candidate indices in order), ``marginal_population``,
        ``cumulative_population``. Stops early once no candidate adds anything.
    """
    C, w, c0 = _check_matrix(cover, weights, covered0)
    if (k is None) == (target_share is None):
        msg = f"Give exactly one of `k` or `target_share`; got k={k!r}, target_share={target_share!r}."
        raise InputError(msg)
    if k is not None and k <= 0:
        msg = f"`k` must be a positive number of sites; got {k!r}."
        raise InputError(msg)
    if target_share is not None and not 0 < target_share <= 1:
        msg = f"`target_share` must be in (0, 1]; got {target_share!r}."
        raise InputError(msg)
    if max_k <= 0:
        msg = f"`max_k` must be positive; got {max_k!r}."
        raise InputError(msg)
    if tie_cover is not None:
        T, _, t0 = _check_matrix(tie_cover, w, tie_covered0)
        if T.shape != C.shape:
            msg = f"`tie_cover` must have the shape of `cover` {C.shape}; got {T.shape}."
            raise InputError(msg)
    else:
        T, t0 = None, np.zeros_like(c0)
    total = float(w.sum())
    w_open = np.where(c0, 0.0, w)
    t_open = np.where(t0, 0.0, w)
    before = float(w.sum() - w_open.sum())
    covered = before
    cap = int(k) if k is not None else int(max_k)
    goal = (target_share or 0.0) * total

    heap: list[tuple[float, float, int, int]] = []
    for c in range(C.shape[0]):
        g = _row_gain(C, c, w_open)
        t = _row_gain(T, c, t_open) if T is not None else 0.0
        heap.append((-g, -t, c, 0))
    heapq.heapify(heap)

    chosen: list[int] = []
    marginal: list[float] = []
    cumulative: list[float] = []
    while len(chosen) < cap and heap:
        if target_share is not None and covered >= goal * (1 - 1e-12):
            break
        neg_g, neg_t, c, stamp = heapq.heappop(heap)
        if stamp != len(chosen):
            g = _row_gain(C, c, w_open)
            t = _row_gain(T, c, t_open) if T is not None else 0.0
            heapq.heappush(heap, (-g, -t, c, len(chosen)))
            continue
        if neg_g == 0.0 and neg_t == 0.0:
            logger.info("stopped after %d sites: no candidate covers anyone new", len(chosen))
            break
        chosen.append(c)
        marginal.append(-neg_g)
        covered += -neg_g
        cumulative.append(covered)
        w_open[C.indices[C.indptr[c] : C.indptr[c + 1]]] = 0.0
        if T is not None:
            t_open[T.indices[T.indptr[c] : T.indptr[c + 1]]] = 0.0
    target_met: bool | None = None
    if target_share is not None:
        target_met = bool(covered >= goal * (1 - 1e-12))
        if not target_met:
            logger.warning(
                "target share %.3f is not reachable with at most %d sites; the best reached is %.4f",
                target_share,
                cap,
                covered / total if total else 0.0,
            )
    return GreedyResult(
        chosen=np.asarray(chosen, dtype=np.int64),
        marginal_population=np.asarray(marginal, dtype=np.float64),
        cumulative_population=np.asarray(cumulative, dtype=np.float64),
        population_before=before,
        population_total=total,
        target_met=target_met,
    )


def covered_population(cover: Any, weights: Any, chosen: Any, *, covered0: Any = None) -> float:
    """Population covered by ``chosen`` candidates together with ``covered0``."""
    C, w, c0 = _check_matrix(cover, weights, covered0)
    idx = np.asarray(chosen, dtype=np.int64)
    hit = c0.copy()
    if idx.size:
        hit[C[idx].indices] = True
    return float(w[hit].sum())


def swap_improve(
    cover: Any,
    weights: Any,
    chosen: Any,
    *,
    covered0: Any = None,
    max_swaps: int = 1000,
) -> SwapResult:
    """Improve a set of sites by 1-swaps until no single swap adds population.

    Each round scores every (chosen, unchosen) pair at once with one sparse
    product and applies the best improving swap (ties: lowest indices).

    Returns
    -------
    SwapResult
        ``chosen`` (same size as the input), ``population_covered`` (with
        ``covered0``), ``swaps`` applied.
    """
    C, w, c0 = _check_matrix(cover, weights, covered0)
    S = np.asarray(chosen, dtype=np.int64).copy()
    n_cand, n_dem = C.shape
    if S.size == 0 or S.size >= n_cand:
        return SwapResult(S, covered_population(C, w, S, covered0=c0), 0)
    Cf = C.astype(np.float64)
    count = np.zeros(n_dem, dtype=np.int64)
    np.add.at(count, C[S].indices, 1)
    tol = 1e-9 * max(float(w.sum()), 1.0)
    swaps = 0
    while swaps < max_swaps:
        w_unc = np.where(~c0 & (count == 0), w, 0.0)
        gain_now = Cf @ w_unc
        uniq = np.where(~c0 & (count == 1), w, 0.0)
        U = Cf[S].multiply(uniq[None, :]).tocsr()  # k × n_dem: population only s covers
        loss = np.asarray(U.sum(axis=1)).ravel()
        M = (Cf @ U.T).toarray()  # n_cand × k
        delta = gain_now[:, None] + M - loss[None, :]
        delta[S, :] = -np.inf
        best = int(np.argmax(delta))
        c_in, j_out = divmod(best, S.size)
        if not delta[c_in, j_out] > tol:
            break
        c_out = int(S[j_out])
        np.add.at(count, C.indices[C.indptr[c_out] : C.indptr[c_out + 1]], -1)
        np.add.at(count, C.indices[C.indptr[c_in] : C.indptr[c_in + 1]], 1)
        S[j_out] = c_in
        swaps += 1
    pop = float(w[c0 | (count > 0)].sum())
    if swaps:
        logger.info("1-swap local search applied %d swaps", swaps)
    return SwapResult(S, pop, swaps)


def greedy_order(
    cover: Any, weights: Any, chosen: Any, *, covered0: Any = None
) -> tuple[IntArray, FloatArray]:
    """Order a fixed set of sites greedily (largest marginal first; ties by index).

    Returns the ordered indices and each site's marginal population.
    """
    C, w, c0 = _check_matrix(cover, weights, covered0)
    rest = sorted(int(c) for c in np.asarray(chosen, dtype=np.int64))
    w_open = np.where(c0, 0.0, w)
    order: list[int] = []
    marg: list[float] = []
    while rest:
        gains = [_row_gain(C, c, w_open) for c in rest]
        j = int(np.argmax(gains))
        c = rest.pop(j)
        order.append(c)
        marg.append(gains[j])
        w_open[C.indices[C.indptr[c] : C.indptr[c + 1]]] = 0.0
    return np.asarray(order, dtype=np.int64), np.asarray(marg, dtype=np.float64)


def _mclp_model(
    C: sparse.csr_array, w: FloatArray, c0: BoolArray, k: int, *, integral: bool
) -> tuple[Any, int, IntArray]:
    """Build the maximal covering model in HiGHS (objective in population).

    Columns: one ``x`` per candidate, then one ``y`` per open, coverable,
    populated demand unit. Rows: ``y_d - sum_c x_c <= 0`` and ``sum x <= k``.
    """
    import highspy

    n_cand = C.shape[0]
    coverable = np.zeros(C.shape[1], dtype=bool)
    coverable[C.indices] = True
    dem = np.flatnonzero(coverable & ~c0 & (w > 0))
    CT = sparse.csr_array(C[:, dem].T.astype(np.float64))  # demand × candidates
    n_y = dem.size
    h = highspy.Highs()  # type: ignore[no-untyped-call]  # highspy ships no stubs for it
    h.setOptionValue("output_flag", False)
    h.setOptionValue("random_seed", 0)
    h.setOptionValue("threads", 1)
    inf = highspy.kHighsInf
    h.addCols(
        n_cand,
        np.zeros(n_cand),
        np.zeros(n_cand),
        np.ones(n_cand),
        0,
        np.zeros(0, dtype=np.int32),
        np.zeros(0, dtype=np.int32),
        np.zeros(0),
    )
    h.addCols(
        n_y,
        w[dem].astype(np.float64),
        np.zeros(n_y),
        np.ones(n_y),
        0,
        np.zeros(0, dtype=np.int32),
        np.zeros(0, dtype=np.int32),
        np.zeros(0),
    )
    # Rows for y_d: the candidates covering d with -1, then y_d itself with +1.
    counts = np.diff(CT.indptr)
    starts = (CT.indptr[:-1] + np.arange(n_y)).astype(np.int32)
    idx = np.empty(CT.nnz + n_y, dtype=np.int32)
    val = np.empty(CT.nnz + n_y, dtype=np.float64)
    pos = starts[:, None] if n_y else np.zeros((0, 1), dtype=np.int32)
    mask_y = np.zeros(CT.nnz + n_y, dtype=bool)
    mask_y[(pos[:, 0] + counts).astype(np.int64)] = True
    idx[mask_y] = (n_cand + np.arange(n_y)).astype(np.int32)
    val[mask_y] = 1.0
    idx[~mask_y] = CT.indices.astype(np.int32)
    val[~mask_y] = -1.0
    if n_y:
        h.addRows(n_y, np.full(n_y, -inf), np.zeros(n_y), idx.size, starts, idx, val)
    h.addRows(
        1,
        np.array([-inf]),
        np.array([float(k)]),
        n_cand,
        np.array([0], dtype=np.int32),
        np.arange(n_cand, dtype=np.int32),
        np.ones(n_cand),
    )
    h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    if integral:
        h.changeColsIntegrality(
            n_cand,
            np.arange(n_cand, dtype=np.int32),
            np.full(n_cand, highspy.HighsVarType.kInteger),
        )
    return h, n_cand, dem


def _set_warm_start(h: Any, C: sparse.csr_array, dem: IntArray, chosen: Any) -> None:
    """Give HiGHS the solution "open ``chosen``" (x) with the demand it covers (y)."""
    import highspy

    ws = np.asarray(chosen, dtype=np.int64)
    x = np.zeros(C.shape[0])
    x[ws] = 1.0
    hit = np.zeros(C.shape[1], dtype=bool)
    if ws.size:
        hit[C[ws].indices] = True
    sol = highspy.HighsSolution()
    sol.col_value = list(np.concatenate([x, hit[dem].astype(np.float64)]))
    h.setSolution(sol)


def upper_bound(
    cover: Any,
    weights: Any,
    chosen: Any,
    *,
    covered0: Any = None,
    k: int | None = None,
    lp: bool = True,
    time_limit_s: float = 60.0,
) -> Bound:
    """Upper bound on the best population coverable with ``k`` sites (plus ``covered0``).

    Two valid bounds, the smaller reported: the submodular bound (coverage of
    ``chosen`` plus the ``k`` largest marginal gains with respect to it) and,
    when ``lp``, the LP relaxation of the maximal covering model (HiGHS).
    """
    C, w, c0 = _check_matrix(cover, weights, covered0)
    S = np.asarray(chosen, dtype=np.int64)
    kk = int(S.size if k is None else k)
    hit = c0.copy()
    if S.size:
        hit[C[S].indices] = True
    f_s = float(w[hit].sum())
    gains = sparse.csr_array(C.astype(np.float64)) @ np.where(hit, 0.0, w)
    top = np.sort(gains)[::-1][:kk]
    sub = f_s + float(top.sum())
    lp_pop = float("nan")
    if lp and kk > 0:
        import highspy

        h, _, _ = _mclp_model(C, w, c0, kk, integral=False)
        h.setOptionValue("time_limit", float(time_limit_s))
        h.run()
        if h.getModelStatus() == highspy.HighsModelStatus.kOptimal:
            # Optimal LP value up to the solver's tolerance; add a hair so the
            # bound stays valid under rounding.
            obj = float(h.getInfo().objective_function_value)
            lp_pop = float(w[c0].sum()) + obj * (1 + 1e-9) + 1e-9
        else:
            logger.warning(
                "LP bound not solved (%s); using the submodular bound",
                h.modelStatusToString(h.getModelStatus()),
            )
    best = sub if not np.isfinite(lp_pop) else min(sub, lp_pop)
    return Bound(population=best, submodular_population=sub, lp_population=lp_pop, k=kk)


def solve_exact(
    cover: Any,
    weights: Any,
    k: int,
    *,
    covered0: Any = None,
    warm_start: Any = None,
    time_limit_s: float = 60.0,
    mip_rel_gap: float = 1e-7,
) -> ExactResult:
    """Solve the maximal covering MIP with HiGHS.

    Parameters
    ----------
    warm_start
        Candidate indices of a feasible solution (e.g. greedy + swap) passed to
        HiGHS with ``setSolution``.
    time_limit_s
        Wall-time limit; on expiry the best solution found and the dual bound
        are returned with ``optimal=False``.

    Raises
    ------
    SolverError
        When HiGHS finds no feasible solution at all.
    """
    import highspy

    C, w, c0 = _check_matrix(cover, weights, covered0)
    if int(k) != k or k <= 0:
        msg = f"`k` must be a positive whole number of sites; got {k!r}."
        raise InputError(msg)
    h, n_cand, dem = _mclp_model(C, w, c0, int(k), integral=True)
    h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("mip_rel_gap", float(mip_rel_gap))
    h.setOptionValue("mip_abs_gap", 1e-6)
    if warm_start is not None:
        _set_warm_start(h, C, dem, warm_start)
    h.run()
    status = h.getModelStatus()
    status_s = h.modelStatusToString(status)
    info = h.getInfo()
    values = np.asarray(h.getSolution().col_value, dtype=np.float64)
    if values.size < n_cand or info.primal_solution_status == 0:
        msg = f"HiGHS found no feasible solution ({status_s}); raise `time_limit_s` or use the greedy method."
        raise SolverError(msg)
    chosen = np.flatnonzero(values[:n_cand] > 0.5).astype(np.int64)
    pop = covered_population(C, w, chosen, covered0=c0)
    optimal = status == highspy.HighsModelStatus.kOptimal
    base = float(w[c0].sum())
    bound = (
        base + float(info.mip_dual_bound)
        if not optimal
        else max(pop, base + float(info.mip_dual_bound))
    )
    bound = max(bound, pop)
    return ExactResult(
        chosen=chosen,
        population_covered=pop,
        bound_population=bound,
        optimal=bool(optimal),
        status=status_s,
        runtime_s=float(h.getRunTime()),
    )


def solve_min_sites(
    cover: Any,
    weights: Any,
    target_population: float,
    *,
    covered0: Any = None,
    max_k: int,
    warm_start: Any = None,
    time_limit_s: float = 60.0,
) -> ExactResult:
    """Fewest sites covering at least ``target_population`` (covered0 counted): a HiGHS MIP.

    Minimises the number of sites subject to the covering rows of the maximal
    covering model and ``sum w_d y_d >= target_population - w(covered0)``, with at
    most ``max_k`` sites. ``optimal`` means the count is proven minimal;
    ``bound_population`` is the population covered by the solution found.

    Raises
    ------
    SolverError
        When HiGHS finds no solution reaching the target within ``max_k`` sites
        (the target is out of reach, or the time limit ran out first).
    """
    import highspy

    C, w, c0 = _check_matrix(cover, weights, covered0)
    if int(max_k) != max_k or max_k <= 0:
        msg = f"`max_k` must be a positive whole number of sites; got {max_k!r}."
        raise InputError(msg)
    h, n_cand, dem = _mclp_model(C, w, c0, int(max_k), integral=True)
    n_y = dem.size
    need = float(target_population) - float(w[c0].sum())
    h.changeObjectiveSense(highspy.ObjSense.kMinimize)
    cols = np.arange(n_cand + n_y, dtype=np.int32)
    h.changeColsCost(cols.size, cols, np.concatenate([np.ones(n_cand), np.zeros(n_y)]))
    if n_y:
        h.addRows(
            1,
            np.array([need * (1 - 1e-12)]),
            np.array([highspy.kHighsInf]),
            n_y,
            np.array([0], dtype=np.int32),
            (n_cand + np.arange(n_y)).astype(np.int32),
            w[dem].astype(np.float64),
        )
    h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("mip_abs_gap", 0.5)  # counts are whole numbers: within 0.5 is proven
    if warm_start is not None:
        _set_warm_start(h, C, dem, warm_start)
    h.run()
    status = h.getModelStatus()
    status_s = h.modelStatusToString(status)
    values = np.asarray(h.getSolution().col_value, dtype=np.float64)
    if values.size < n_cand or h.getInfo().primal_solution_status == 0:
        msg = f"HiGHS found no set of at most {max_k} sites reaching the target ({status_s}); lower the target share or raise the cap on new sites."
        raise SolverError(msg)
    chosen = np.flatnonzero(values[:n_cand] > 0.5).astype(np.int64)
    pop = covered_population(C, w, chosen, covered0=c0)
    return ExactResult(
        chosen=chosen,
        population_covered=pop,
        bound_population=pop,
        optimal=status == highspy.HighsModelStatus.kOptimal,
        status=status_s,
        runtime_s=float(h.getRunTime()),
    )


# --- network search -----------------------------------------------------------


def _limit_m(minutes: float, speed_kmh: float) -> float:
    if not (math.isfinite(minutes) and minutes > 0):
        msg = f"`minutes` must be a positive number; got {minutes!r}."
        raise InputError(msg)
    return float(minutes) * 60.0 * speed_ms(speed_kmh)


def _snap_arrays(gdf: gpd.GeoDataFrame, what: str) -> tuple[IntArray, FloatArray, FloatArray]:
    return snap_arrays(gdf, what)


def _point_xy(
    net: WalkNetwork, edge: IntArray, offset_m: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Coordinates of points given by edge and offset along it from ``u``."""
    return point_xy(net, edge, offset_m)


def _cells(
    x: FloatArray, y: FloatArray, x0: float, y0: float, size: float
) -> tuple[IntArray, IntArray]:
    return (
        np.floor((x - x0) / size).astype(np.int64),
        np.floor((y - y0) / size).astype(np.int64),
    )


def coverage_sets(
    net: WalkNetwork,
    candidates: gpd.GeoDataFrame,
    demand: gpd.GeoDataFrame,
    *,
    minutes: float,
    speed_kmh: float = DEFAULT_SPEED_KMH,
    progress: ProgressFn | None = None,
) -> sparse.csr_array:
    """Which demand units each candidate reaches within ``minutes`` on foot.

    Walking distance = candidate access leg + network path between the two
    snapped points (through edge ends, or along the edge when both share it) +
    demand access leg, as :func:`coverage.reach.pairs_within_m` finds it: the
    work grows with the area reached, not with the city.

    Parameters
    ----------
    candidates, demand
        GeoDataFrames in ``net.crs`` with the snap columns.
    minutes, speed_kmh
        The walking threshold.

    Returns
    -------
    scipy.sparse.csr_array
        Boolean, ``len(candidates) × len(demand)``, rows and columns in frame order.
    """
    limit = _limit_m(minutes, speed_kmh)
    ce, co, ca = require_snapped(net, candidates, "candidates")
    de, do, da = require_snapped(net, demand, "demand")
    return _coverage_matrix(net, ce, co, ca, de, do, da, limit, progress=progress)


def _coverage_matrix(
    net: WalkNetwork,
    ce: IntArray,
    co: FloatArray,
    ca: FloatArray,
    de: IntArray,
    do: FloatArray,
    da: FloatArray,
    limit: float,
    *,
    progress: ProgressFn | None = None,
) -> sparse.csr_array:
    """Boolean candidates × demand matrix of the pairs within ``limit`` meters (see :func:`coverage_sets`)."""
    n_c, n_d = ce.size, de.size
    pairs = pairs_within_m(
        net,
        Snapped(ce, co, ca),
        Snapped(de, do, da),
        limit_m=limit + _LIMIT_EPS_M,
        progress=progress,
    )
    out = sparse.csr_array(
        (np.ones(len(pairs), dtype=bool), (pairs.source, pairs.point)), shape=(n_c, n_d)
    )
    out.sort_indices()
    logger.info(
        "coverage sets: %d candidates × %d demand units within %.0f m, %d pairs",
        n_c,
        n_d,
        limit,
        out.nnz,
    )
    return out


def nearest_source_m(
    net: WalkNetwork,
    src_edge: IntArray,
    src_offset_m: FloatArray,
    src_access_m: FloatArray,
    edge: IntArray,
    offset_m: FloatArray,
    access_m: FloatArray,
) -> tuple[FloatArray, IntArray]:
    """Walking meters from each point to the nearest source, and that source's index.

    :func:`coverage.reach.nearest_points_m` on arrays (unreachable points get
    ``inf`` and ``-1``).
    """
    return nearest_points_m(
        net, Snapped(src_edge, src_offset_m, src_access_m), Snapped(edge, offset_m, access_m)
    )


# --- candidates ---------------------------------------------------------------


def _to_net_crs(gdf: gpd.GeoDataFrame, net: WalkNetwork, what: str) -> gpd.GeoDataFrame:
    if not isinstance(gdf, gpd.GeoDataFrame):
        msg = f"`{what}` must be a GeoDataFrame; got {type(gdf).__name__}."
        raise InputError(msg)
    if gdf.crs is None:
        msg = f"`{what}` has no CRS; set it (`gdf.set_crs('EPSG:4326')` for longitude/latitude)."
        raise InputError(msg)
    crs = pyproj.CRS.from_user_input(gdf.crs)
    if crs.equals(pyproj.CRS.from_user_input(net.crs)):
        return gdf
    if crs.equals(pyproj.CRS.from_epsg(4326)):
        return gdf.to_crs(net.crs)
    msg = f"`{what}` is in {crs.to_string()}; expected EPSG:4326 or the network's {net.crs}. Reproject it (`gdf.to_crs('EPSG:4326')`)."
    raise InputError(msg)


def _excluded(
    x: FloatArray, y: FloatArray, exclude: gpd.GeoDataFrame | None, net: WalkNetwork
) -> BoolArray:
    out = np.zeros(x.size, dtype=bool)
    if exclude is None or x.size == 0:
        return out
    ex = _to_net_crs(exclude, net, "exclude")
    geoms = ex.geometry.values
    geoms = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    kinds = shapely.get_type_id(geoms)
    poly = (kinds == shapely.GeometryType.POLYGON) | (kinds == shapely.GeometryType.MULTIPOLYGON)
    if not poly.all():
        msg = f"`exclude` must hold Polygon or MultiPolygon geometries; got {int((~poly).sum())} others. Drop or buffer them first."
        raise InputError(msg)
    tree = shapely.STRtree(geoms)
    hits = tree.query(shapely.points(x, y), predicate="intersects")
    out[hits[0]] = True
    return out


def _candidate_frame(
    net: WalkNetwork,
    edge: IntArray,
    offset_m: FloatArray,
    access_m: FloatArray,
    ids: Sequence[str],
    source: str,
) -> gpd.GeoDataFrame:
    x, y = _point_xy(net, edge, offset_m)
    return gpd.GeoDataFrame(
        {
            CANDIDATE_ID: pd.Series(list(ids), dtype=object),
            CANDIDATE_SOURCE: source,
            SNAP_EDGE: edge.astype(np.int64),
            SNAP_OFFSET_M: offset_m.astype(np.float64),
            SNAP_DISTANCE_M: access_m.astype(np.float64),
        },
        geometry=shapely.points(x, y),
        crs=net.crs,
    )


def candidate_sites(
    net: WalkNetwork,
    demand: gpd.GeoDataFrame,
    *,
    spacing_m: float = 100.0,
    max_distance_m: float = 300.0,
    exclude: gpd.GeoDataFrame | None = None,
    edge_points: bool = True,
) -> gpd.GeoDataFrame:
    """Candidate station sites on the walking network near residential demand.

    Network nodes (and, with ``edge_points``, points every ``spacing_m`` along
    longer edges) within ``max_distance_m`` of a demand unit, outside the
    ``exclude`` polygons, thinned deterministically so no two candidates are
    closer than ``spacing_m`` (intersections with more streets win).

    Parameters
    ----------
    demand
        Demand units in ``net.crs`` (polygons or points).
    exclude
        Polygons (EPSG:4326 or ``net.crs``) where no station may go.

    Returns
    -------
    geopandas.GeoDataFrame
        In ``net.crs``: ``candidate_id`` (``"n<i>"``), ``source`` (``"network"``),
        ``snap_edge``, ``snap_offset_m``, ``snap_distance_m`` (0), geometry (the point).
    """
    for name, value in (("spacing_m", spacing_m), ("max_distance_m", max_distance_m)):
        if not (math.isfinite(value) and value > 0):
            msg = f"`{name}` must be a positive number of meters; got {value!r}."
            raise InputError(msg)
    dem = _check_demand_frame(net, demand, need_snap=False)
    # Nodes: each takes an incident edge (offset 0 at u, full length at v).
    n = net.n_nodes
    node_edge = np.full(n, -1, dtype=np.int64)
    node_off = np.zeros(n, dtype=np.float64)
    ev_idx = np.arange(net.n_edges)[::-1]
    node_edge[net.edge_v[ev_idx]] = ev_idx
    node_off[net.edge_v[ev_idx]] = net.edge_length_m[ev_idx]
    eu_idx = np.arange(net.n_edges)[::-1]
    node_edge[net.edge_u[eu_idx]] = eu_idx
    node_off[net.edge_u[eu_idx]] = 0.0
    has = node_edge >= 0
    degree = np.bincount(net.edge_u, minlength=n) + np.bincount(net.edge_v, minlength=n)
    p_edge = [node_edge[has]]
    p_off = [node_off[has]]
    p_rank = [-degree[has].astype(np.float64)]
    if edge_points:
        m = np.floor(net.edge_length_m / spacing_m).astype(np.int64)
        m = np.where(net.edge_length_m > spacing_m, m, 0)
        if m.sum():
            e = np.repeat(np.arange(net.edge_length_m.size), m)
            j = np.arange(int(m.sum())) - np.repeat(np.cumsum(m) - m, m) + 1
            p_edge.append(e.astype(np.int64))
            p_off.append(net.edge_length_m[e] * j / (m[e] + 1))
            p_rank.append(np.ones(e.size))  # after every node
    edge = np.concatenate(p_edge)
    off = np.concatenate(p_off)
    rank = np.concatenate(p_rank)
    x, y = _point_xy(net, edge, off)
    dgeoms = dem.geometry.values
    dgeoms = dgeoms[~(shapely.is_missing(dgeoms) | shapely.is_empty(dgeoms))]
    near = _near_demand(x, y, dgeoms, max_distance_m)
    if not near.any():
        msg = f"No network point lies within {max_distance_m:g} m of the {len(dem)} demand units; check that demand and network cover the same area, or raise `max_distance_m`."
        raise InputError(msg)
    excl = _excluded(x, y, exclude, net)
    ok = near & ~excl
    if not ok.any():
        msg = f"All {int(near.sum())} candidate points near demand fall inside the `exclude` polygons; shrink the exclusions or pass candidates explicitly."
        raise InputError(msg)
    sel = np.flatnonzero(ok)
    keep = _thin(x[sel], y[sel], rank[sel], spacing_m)
    sel = np.sort(sel[keep])
    width = max(len(str(sel.size)), 1)
    ids = [f"n{i:0{width}d}" for i in range(sel.size)]
    out = _candidate_frame(net, edge[sel], off[sel], np.zeros(sel.size), ids, "network")
    logger.info(
        "returned %d candidate sites (spacing %.0f m, from %d points near demand, %d excluded)",
        len(out),
        spacing_m,
        int(near.sum()),
        int((near & excl).sum()),
    )
    return out


def _near_demand(
    x: FloatArray, y: FloatArray, dgeoms: NDArray[np.object_], max_distance_m: float
) -> BoolArray:
    """Which points lie within ``max_distance_m`` of a demand geometry.

    A point within ``max_distance_m`` of a unit's representative point (which lies in
    the unit) is near; one farther than ``max_distance_m`` plus the largest unit's
    diagonal from every representative point is not. Only the points in between take
    the exact (and slow) polygon distance test.
    """
    if dgeoms.size == 0 or x.size == 0:
        return np.zeros(x.size, dtype=bool)
    rep = shapely.point_on_surface(dgeoms)
    b = shapely.bounds(dgeoms)
    reach_m = float(np.hypot(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]).max())
    tree = cKDTree(np.column_stack([shapely.get_x(rep), shapely.get_y(rep)]))
    d, _ = tree.query(
        np.column_stack([x, y]), k=1, distance_upper_bound=max_distance_m + reach_m + 1e-6
    )
    near = np.asarray(d <= max_distance_m, dtype=bool)
    maybe = np.flatnonzero(~near & np.isfinite(d))
    if maybe.size:
        hits = shapely.STRtree(dgeoms).query(
            shapely.points(x[maybe], y[maybe]), predicate="dwithin", distance=max_distance_m
        )
        near[maybe[hits[0]]] = True
    return near


def _thin(x: FloatArray, y: FloatArray, rank: FloatArray, spacing_m: float) -> IntArray:
    """Indices of points kept so that no two lie closer than ``spacing_m``.

    First one point per grid cell of side ``spacing_m / sqrt 2`` (two points in
    one cell are always too close), then a greedy pass in priority order
    (``rank``, then index) over the remaining conflicting pairs.
    """
    if x.size == 0:
        return np.empty(0, dtype=np.int64)
    cell = spacing_m / math.sqrt(2.0)
    gx, gy = _cells(x, y, float(x.min()), float(y.min()), cell)
    order = np.lexsort((np.arange(x.size), rank, gy, gx))
    first = np.ones(order.size, dtype=bool)
    first[1:] = (gx[order][1:] != gx[order][:-1]) | (gy[order][1:] != gy[order][:-1])
    pre = order[first]
    pre = pre[np.lexsort((pre, rank[pre]))]  # priority order
    tree = cKDTree(np.column_stack([x[pre], y[pre]]))
    pairs = tree.query_pairs(r=spacing_m * (1 - 1e-9), output_type="ndarray")
    if pairs.size == 0:
        return pre
    a = np.concatenate([pairs[:, 0], pairs[:, 1]])
    b = np.concatenate([pairs[:, 1], pairs[:, 0]])
    nb = sparse.csr_array((np.ones(a.size, dtype=np.int8), (a, b)), shape=(pre.size, pre.size))
    removed = np.zeros(pre.size, dtype=bool)
    kept: list[int] = []
    indptr, indices = nb.indptr, nb.indices
    for i in range(pre.size):  # pre is already in priority order
        if removed[i]:
            continue
        kept.append(i)
        removed[indices[indptr[i] : indptr[i + 1]]] = True
    return pre[np.asarray(kept, dtype=np.int64)]


def candidates_from_file(
    net: WalkNetwork,
    gdf: gpd.GeoDataFrame,
    *,
    id_column: str | None = None,
    max_snap_m: float = 500.0,
    exclude: gpd.GeoDataFrame | None = None,
) -> gpd.GeoDataFrame:
    """Candidate sites from a user's points (already read, EPSG:4326 or ``net.crs``).

    Each point is snapped to the nearest walkable edge; its straight-line access
    leg counts in the walking time. The returned geometry is the snapped point.

    Parameters
    ----------
    id_column
        Column holding unique candidate ids (default: ``candidate_id`` or
        ``id`` when present, else ``"f<row>"``).
    max_snap_m
        Points farther than this from any walkable street are refused.

    Returns
    -------
    geopandas.GeoDataFrame
        Same columns as :func:`candidate_sites` with ``source="file"``.

    Raises
    ------
    InputError
        No usable points; points off the walking network; all points excluded.
    """
    g = _to_net_crs(gdf, net, "candidates")
    geoms = g.geometry.values
    usable = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    usable &= shapely.get_type_id(geoms) == shapely.GeometryType.POINT
    if not usable.any():
        msg = f"The candidates file has no usable Point geometries ({len(g)} rows); give one point per candidate site (lon/lat in EPSG:4326)."
        raise InputError(msg)
    dropped = int((~usable).sum())
    if dropped:
        logger.warning("ignored %d candidate rows without a usable point", dropped)
    g = g[usable]
    col = id_column
    if col is None:
        col = next((c for c in (CANDIDATE_ID, "id") if c in g.columns), None)
    elif col not in g.columns:
        msg = (
            f"`id_column` {col!r} is not a column of the candidates; columns are {list(g.columns)}."
        )
        raise InputError(msg)
    ids = [str(v) for v in g[col]] if col is not None else [f"f{i}" for i in np.flatnonzero(usable)]
    if len(set(ids)) != len(ids):
        msg = (
            f"Candidate ids in column {col!r} are not unique; make them unique or drop `id_column`."
        )
        raise InputError(msg)
    px = shapely.get_x(g.geometry.values).astype(np.float64)
    py = shapely.get_y(g.geometry.values).astype(np.float64)
    snap = snap_points(net, px, py)
    far = snap.distance_m > max_snap_m
    if far.any():
        bad = [ids[i] for i in np.flatnonzero(far)[:5]]
        msg = f"{int(far.sum())} candidates lie more than {max_snap_m:g} m from the walking network (e.g. {bad}), so they are not reachable on it; remove them, check their coordinates (WGS-84 expected), or raise `max_snap_m`."
        raise InputError(msg)
    excl = _excluded(snap.x, snap.y, exclude, net)
    if excl.all():
        msg = f"All {len(ids)} candidates fall inside the `exclude` polygons; nothing is left to choose from."
        raise InputError(msg)
    keep = np.flatnonzero(~excl)
    out = _candidate_frame(
        net,
        snap.edge[keep],
        snap.offset_m[keep],
        snap.distance_m[keep],
        [ids[i] for i in keep],
        "file",
    )
    logger.info("returned %d candidate sites from file (%d excluded)", len(out), int(excl.sum()))
    return out


# --- geographic wrapper -------------------------------------------------------


def _check_demand_frame(net: WalkNetwork, demand: Any, *, need_snap: bool) -> gpd.GeoDataFrame:
    if not isinstance(demand, gpd.GeoDataFrame):
        msg = f"`demand` must be a GeoDataFrame of demand units; got {type(demand).__name__}."
        raise InputError(msg)
    if demand.crs is None or not pyproj.CRS.from_user_input(demand.crs).equals(
        pyproj.CRS.from_user_input(net.crs)
    ):
        msg = f"`demand` is in {demand.crs}, the network in {net.crs}; project it first (`demand.to_crs(net.crs)`)."
        raise InputError(msg)
    if len(demand) == 0:
        msg = "`demand` has no rows; there is nobody to cover. Check the residential areas of the extract."
        raise InputError(msg)
    if need_snap:
        if POPULATION not in demand.columns:
            msg = f"`demand` needs a `{POPULATION}` column (people per unit); got columns {list(demand.columns)}."
            raise InputError(msg)
        if not all(c in demand.columns for c in (SNAP_EDGE, SNAP_OFFSET_M, SNAP_DISTANCE_M)):
            demand = snap_frame(net, demand)
    return demand


def propose_sites(
    net: WalkNetwork,
    demand: gpd.GeoDataFrame,
    centers: gpd.GeoDataFrame | NDArray[np.bool_] | None = None,
    *,
    params: SitingParams,
    candidates: gpd.GeoDataFrame | None = None,
    exclude: gpd.GeoDataFrame | None = None,
    closed: Sequence[str] = (),
    progress: ProgressFn | None = None,
) -> SitingResult:
    """Propose new station sites that cover the most residents within ``params.minutes``.

    Parameters
    ----------
    net
        The walking network.
    demand
        Demand units (``net.crs``, ``population``, snap columns).
    centers
        Existing centers (``net.crs``, ``center_id``, snap columns); their
        coverage counts as already covered. Or a boolean array ``covered0`` (one
        per demand unit, primary threshold); then ``minutes_after`` counts the
        proposed sites only. ``None``: no existing centers.
    params
        What to optimise (:class:`SitingParams`).
    candidates
        Candidate sites (from :func:`candidate_sites` or
        :func:`candidates_from_file`); default: :func:`candidate_sites` with
        ``params.spacing_m`` and ``params.max_distance_m``.
    exclude
        Polygons where no station may go (EPSG:4326 or ``net.crs``).
    closed
        ``center_id`` values of existing centers to treat as closed.
    progress
        ``progress(fraction, message)``.

    Returns
    -------
    SitingResult
        ``sites`` (``rank``, ``candidate_id``, ``marginal_population``,
        ``cumulative_population``, ``cumulative_share``, geometry), ``curve``
        (``k``, ``share``, ``population_covered``), ``method``, ``k``,
        ``share_before``, ``share_after``, ``upper_bound_share``, ``gap``,
        ``minutes_after`` (Series, demand index).
    """
    if not isinstance(params, SitingParams):
        msg = f"`params` must be a SitingParams; got {type(params).__name__}."
        raise InputError(msg)
    dem = _check_demand_frame(net, demand, need_snap=True)
    w = dem[POPULATION].to_numpy(dtype=np.float64)
    if not np.isfinite(w).all() or (w < 0).any():
        msg = (
            "`demand.population` must be finite and non-negative; fix or drop the offending units."
        )
        raise InputError(msg)
    total = float(w.sum())
    if total <= 0:
        msg = "`demand` has zero total population; nothing to cover. Check the population model."
        raise InputError(msg)
    de, do, da = _snap_arrays(dem, "demand")
    ms = speed_ms(params.speed_kmh)
    limit = _limit_m(params.minutes, params.speed_kmh)
    limit2 = (
        _limit_m(params.secondary_minutes, params.speed_kmh)
        if params.secondary_minutes is not None
        else None
    )

    # Existing centers.
    src_e = np.empty(0, dtype=np.int64)
    src_o = np.empty(0, dtype=np.float64)
    src_a = np.empty(0, dtype=np.float64)
    covered0_given: BoolArray | None = None
    if centers is None:
        pass
    elif isinstance(centers, gpd.GeoDataFrame):
        cen = centers
        if len(cen):
            if not pyproj.CRS.from_user_input(cen.crs).equals(pyproj.CRS.from_user_input(net.crs)):
                msg = f"`centers` is in {cen.crs}, the network in {net.crs}; project it first (`centers.to_crs(net.crs)`)."
                raise InputError(msg)
            if closed:
                if CENTER_ID not in cen.columns:
                    msg = f"`closed` names centers by `{CENTER_ID}`, but `centers` has no such column."
                    raise InputError(msg)
                unknown = sorted(set(closed) - set(cen[CENTER_ID].astype(str)))
                if unknown:
                    msg = f"`closed` names unknown center ids {unknown[:5]}; use values of `centers.{CENTER_ID}`."
                    raise InputError(msg)
                cen = cen[~cen[CENTER_ID].astype(str).isin(set(closed))]
            if not all(c in cen.columns for c in (SNAP_EDGE, SNAP_OFFSET_M, SNAP_DISTANCE_M)):
                cen = snap_frame(net, cen)
            src_e, src_o, src_a = _snap_arrays(cen, "centers")
    else:
        covered0_given = np.asarray(centers, dtype=bool)
        if covered0_given.shape != (len(dem),):
            msg = f"`centers` as a covered0 array needs one boolean per demand unit ({len(dem)}); got shape {covered0_given.shape}."
            raise InputError(msg)
    dist0, _ = nearest_source_m(net, src_e, src_o, src_a, de, do, da)
    if covered0_given is not None:
        covered0 = covered0_given
        tie0 = np.zeros_like(covered0)
    else:
        covered0 = dist0 <= limit + _LIMIT_EPS_M
        tie0 = dist0 <= (limit2 or 0.0) + _LIMIT_EPS_M
    if progress:
        progress(0.05, "existing coverage")

    # Candidates and coverage sets.
    if candidates is None:
        cands = candidate_sites(
            net,
            dem,
            spacing_m=params.spacing_m,
            max_distance_m=params.max_distance_m,
            exclude=exclude,
        )
    else:
        cands = _to_net_crs(candidates, net, "candidates")
        if cands is not candidates or not all(
            c in cands.columns for c in (SNAP_EDGE, SNAP_OFFSET_M, SNAP_DISTANCE_M, CANDIDATE_ID)
        ):
            cands = candidates_from_file(net, cands, exclude=exclude)
        elif exclude is not None:
            excl = _excluded(
                shapely.get_x(cands.geometry.values).astype(np.float64),
                shapely.get_y(cands.geometry.values).astype(np.float64),
                exclude,
                net,
            )
            if excl.all():
                msg = f"All {len(cands)} candidates fall inside the `exclude` polygons; nothing is left to choose from."
                raise InputError(msg)
            cands = cands[~excl]
        cands = cands.reset_index(drop=True)
    if len(cands) == 0:
        msg = "No candidate sites to choose from; pass candidates or widen `max_distance_m`."
        raise InputError(msg)
    ce, co, ca = _snap_arrays(cands, "candidates")
    cover = _coverage_matrix(
        net, ce, co, ca, de, do, da, limit, progress=sub_progress(progress, 0.05, 0.45)
    )
    tie_cover = (
        _coverage_matrix(
            net, ce, co, ca, de, do, da, limit2, progress=sub_progress(progress, 0.45, 0.7)
        )
        if limit2 is not None
        else None
    )

    # Optimise.
    g = greedy_max_coverage(
        cover,
        w,
        covered0=covered0,
        k=params.k,
        target_share=params.target_share,
        max_k=params.max_k,
        tie_cover=tie_cover,
        tie_covered0=tie0,
    )
    chosen = g.chosen
    swaps = 0
    if params.swap and chosen.size:
        sw = swap_improve(cover, w, chosen, covered0=covered0)
        chosen, swaps = sw.chosen, sw.swaps
    if progress:
        progress(0.8, "bounds")
    kk = int(chosen.size)
    method = METHOD_GREEDY
    optimal = False
    status = ""
    min_sites_proven: bool | None = None
    # one wall-time budget for every solver call below (min count, LP bound, MIP)
    deadline = time.monotonic() + params.time_limit_s

    def remaining_s() -> float:
        return max(1.0, deadline - time.monotonic())

    if params.exact and kk and params.target_share is not None and g.target_met:
        # "How many stations until X %?": the fewest sites, then the best coverage with them
        target_pop = params.target_share * total
        try:
            fewest = solve_min_sites(
                cover,
                w,
                target_pop,
                covered0=covered0,
                max_k=kk,
                warm_start=chosen,
                time_limit_s=remaining_s(),
            )
        except SolverError as exc:
            logger.warning("exact: minimum number of sites not found (%s); keeping %d", exc, kk)
            min_sites_proven = False
        else:
            min_sites_proven = fewest.optimal
            reaches = fewest.population_covered >= target_pop * (1 - 1e-12)
            if reaches and fewest.chosen.size < kk:
                logger.info(
                    "exact: %d sites reach the target (greedy + swap needed %d)",
                    fewest.chosen.size,
                    kk,
                )
                chosen, kk = fewest.chosen, int(fewest.chosen.size)
            elif not reaches:  # solver tolerance: the "solution" misses the target
                min_sites_proven = False
    if kk:
        bound = upper_bound(
            cover,
            w,
            chosen,
            covered0=covered0,
            k=kk,
            lp=params.lp_bound,
            time_limit_s=remaining_s(),
        )
        bound_pop = bound.population
    else:
        bound_pop = float(w[covered0].sum())
    if params.exact and kk:
        ex = solve_exact(
            cover,
            w,
            kk,
            covered0=covered0,
            warm_start=chosen,
            time_limit_s=remaining_s(),
            mip_rel_gap=params.mip_rel_gap,
        )
        if ex.population_covered >= covered_population(cover, w, chosen, covered0=covered0):
            chosen = ex.chosen
        method, optimal, status = METHOD_EXACT, ex.optimal, ex.status
        bound_pop = min(bound_pop, ex.bound_population)
    order, marg = greedy_order(cover, w, chosen, covered0=covered0)
    before = float(w[covered0].sum())
    cum = before + np.cumsum(marg)
    after = float(cum[-1]) if cum.size else before
    bound_pop = max(bound_pop, after)
    target_met = g.target_met
    if params.target_share is not None:
        target_met = bool(after >= params.target_share * total * (1 - 1e-12))

    x, y = _point_xy(net, ce[order], co[order])
    sites = gpd.GeoDataFrame(
        {
            RANK: np.arange(1, order.size + 1, dtype=np.int64),
            CANDIDATE_ID: cands[CANDIDATE_ID].to_numpy()[order],
            MARGINAL_POPULATION: marg,
            CUMULATIVE_POPULATION: cum,
            CUMULATIVE_SHARE: cum / total,
            SNAP_EDGE: ce[order],
            SNAP_OFFSET_M: co[order],
            SNAP_DISTANCE_M: ca[order],
        },
        geometry=shapely.points(x, y),
        crs=net.crs,
    )
    curve = pd.DataFrame(
        {
            CURVE_K: np.arange(order.size + 1, dtype=np.int64),
            CURVE_SHARE: np.concatenate([[before], cum]) / total,
            CURVE_POPULATION: np.concatenate([[before], cum]),
        }
    )
    if progress:
        progress(0.9, "minutes after")
    dist_after, _ = nearest_source_m(
        net,
        np.concatenate([src_e, ce[order]]),
        np.concatenate([src_o, co[order]]),
        np.concatenate([src_a, ca[order]]),
        de,
        do,
        da,
    )
    minutes_after = pd.Series(
        np.where(np.isfinite(dist_after), dist_after / ms / 60.0, np.nan),
        index=demand.index,
        name="minutes_after",
    )
    share_before, share_after = before / total, after / total
    ub_share = min(1.0, bound_pop / total)
    result = SitingResult(
        params=params,
        sites=sites,
        curve=curve,
        method=method,
        k=kk,
        share_before=share_before,
        share_after=share_after,
        upper_bound_share=ub_share,
        gap=max(0.0, ub_share - share_after),
        minutes_after=minutes_after,
        population_total=total,
        n_candidates=len(cands),
        target_met=target_met,
        optimal=optimal,
        solver_status=status,
        swaps=swaps,
        min_sites_proven=min_sites_proven,
    )
    if progress:
        progress(1.0, "sites proposed")
    logger.info(
        "proposed %d sites (%s): share %.4f → %.4f, bound %.4f, gap %.4f",
        kk,
        method,
        share_before,
        share_after,
        ub_share,
        result.gap,
    )
    return result
