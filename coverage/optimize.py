"""Site selection on a plain coverage matrix: greedy, 1-swap, proven bounds, exact HiGHS.

Everything here works on a boolean matrix ``cover`` (candidates × demand units,
``scipy.sparse.csr_array``), a population vector ``weights`` and the demand
already covered ``covered0``, and knows nothing about geography (spopt's split:
the matrix core apart from the GeoDataFrame wrapper, :mod:`coverage.siting`).

- :func:`greedy_max_coverage`: lazy greedy (CELF), at least ``1 - 1/e`` of the
  optimum for ``k`` sites, ties broken by a secondary matrix then by index.
- :func:`swap_improve`: 1-swap local search, all swaps scored by one sparse product.
- :func:`upper_bound`: the submodular bound and the LP relaxation (HiGHS).
- :func:`solve_exact`: the maximal covering MIP; :func:`solve_min_sites`: the
  fewest sites reaching a target population.
- :func:`best_sites`: the whole recipe (greedy, swap, and on request the MIPs)
  under one wall-time budget (:class:`TimeBudget`) → :class:`SiteSelection`.

HiGHS is fed the objective in population, not shares, and a tight
``mip_rel_gap``: with shares it stops short of the optimum (docs/DESIGN.md).
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

# highspy is a required dependency and cheap once numpy and scipy are loaded
# (`python -X importtime`: ~8-13 ms of a ~2 s `import coverage.siting`), so it is
# imported here rather than lazily in each solver call.
import highspy
import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import sparse

from coverage.errors import InputError, SolverError
from coverage.progress import ProgressFn, cancel_check, cancel_requested

logger = logging.getLogger(__name__)

#: Values of :attr:`SiteSelection.method` (and of ``summary.json``'s ``siting.method``).
METHOD_GREEDY = "greedy+swap"
METHOD_EXACT = "exact"

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

# Relative slack when comparing covered population with a target.
_TARGET_RTOL = 1e-12

#: How a HiGHS call ended (:func:`_run_highs`): ran to its end or limit; interrupted by
#: a stop request (the instance holds its incumbent); left running in its thread (the
#: instance must not be read: its answer is the warm start).
RUN_DONE, RUN_STOPPED, RUN_ABANDONED = "done", "stopped", "abandoned"
#: Seconds between two polls of the stop request while HiGHS runs.
STOP_POLL_S = 0.1
#: Seconds HiGHS gets to honour a stop request before its thread is left to finish alone.
STOP_GRACE_S = 0.5
#: ``status`` of a solve cut short by a stop request.
STATUS_STOPPED = "stopped by the user"


# --- results --------------------------------------------------------------------------


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
        """Population covered with every chosen site open (``covered0`` included)."""
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
    stopped: bool = False


@dataclass(frozen=True)
class SiteSelection:
    """The sites :func:`best_sites` chose, in greedy order, and what is proven about them.

    Attributes
    ----------
    chosen
        Candidate indices, largest marginal population first.
    marginal_population, cumulative_population
        Per chosen site; ``cumulative_population`` includes ``population_before``.
    population_before, population_after, population_total
        Covered by ``covered0`` alone, with the chosen sites too, and in all.
    bound_population
        A proven upper bound on the best population coverable with ``k`` sites
        (never below ``population_after``).
    method
        ``"greedy+swap"`` or ``"exact"``.
    k
        The number of sites the solution was sized for (``len(chosen)``, except
        that an exact MIP may leave a site without gain closed).
    target_met
        None without a target share; otherwise whether it was reached.
    optimal, status
        Exact mode: whether HiGHS proved the set optimal, and its status string.
    swaps
        1-swaps applied after the greedy.
    min_sites_proven
        Exact mode with a target share: whether ``k`` is proven to be the fewest
        sites reaching it (None otherwise).
    bound_kind
        Capacitated siting: the bound that gave ``bound_population``
        (``submodular``, ``lp``, ``mip`` or ``optimal``); empty otherwise.
    """

    chosen: IntArray
    marginal_population: FloatArray
    cumulative_population: FloatArray
    population_before: float
    population_after: float
    population_total: float
    bound_population: float
    method: str
    k: int
    target_met: bool | None
    optimal: bool = False
    status: str = ""
    swaps: int = 0
    min_sites_proven: bool | None = None
    bound_kind: str = ""
    stopped: bool = False


class SolveOptions(Protocol):
    """What :func:`best_sites` reads from the siting parameters.

    :class:`coverage.siting.SitingParams` is the one parameter class and fits
    this protocol; it is spelled out here so the matrix core needs nothing from
    the geographic wrapper above it.
    """

    @property
    def k(self) -> int | None:
        """Number of sites, or None with ``target_share``."""

    @property
    def target_share(self) -> float | None:
        """Population share to reach, or None with ``k``."""

    @property
    def max_k(self) -> int:
        """Most sites allowed with ``target_share``."""

    @property
    def swap(self) -> bool:
        """Improve the greedy by 1-swaps."""

    @property
    def lp_bound(self) -> bool:
        """Solve the LP relaxation for a tighter bound."""

    @property
    def exact(self) -> bool:
        """Solve the MIPs in HiGHS."""

    @property
    def time_limit_s(self) -> float:
        """Wall-time budget of all solver calls together."""

    @property
    def mip_rel_gap(self) -> float:
        """Relative gap at which HiGHS stops the maximal covering MIP."""


@dataclass(frozen=True)
class TimeBudget:
    """One wall-time budget shared by several solver calls.

    ``deadline_s`` is a :func:`time.monotonic` reading; every call is still
    granted at least one second, so a late call returns its best solution
    instead of failing outright.
    """

    deadline_s: float

    @classmethod
    def start(cls, limit_s: float) -> TimeBudget:
        """Return a budget of ``limit_s`` seconds from now."""
        return cls(time.monotonic() + limit_s)

    def remaining_s(self) -> float:
        """Return the seconds left (at least one)."""
        return max(1.0, self.deadline_s - time.monotonic())


# --- checks and shared pieces -----------------------------------------------------------


def _check_matrix(
    cover: Any, weights: ArrayLike, covered0: ArrayLike | None
) -> tuple[sparse.csr_array, FloatArray, BoolArray]:
    """``cover`` as canonical boolean CSR, ``weights`` as floats, ``covered0`` as booleans."""
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


#: Nonzeros per row block of :func:`_float_rows` (8 MB of float64 ones).
_FLOAT_BLOCK_NNZ = 1 << 20


def _float_rows(C: sparse.csr_array) -> Iterator[tuple[int, int, sparse.csr_array]]:
    """Yield ``(a, b, C[a:b] as float64)`` in row blocks of about ``_FLOAT_BLOCK_NNZ`` nonzeros.

    A float copy of a city's whole coverage matrix costs 12 bytes per pair (over a GB at
    10⁸ pairs); a block shares ``C``'s column indices and one array of ones. A product is
    computed row by row, so by blocks it gives the same bits as on the whole float copy.
    """
    n = C.shape[0]
    ones = np.ones(min(C.nnz, _FLOAT_BLOCK_NNZ))
    a = 0
    while a < n:
        s = int(C.indptr[a])
        b = int(np.searchsorted(C.indptr, s + _FLOAT_BLOCK_NNZ, side="right")) - 1
        b = min(max(b, a + 1), n)
        e = int(C.indptr[b])
        data = ones[: e - s] if e - s <= ones.size else np.ones(e - s)  # a row longer than a block
        block = sparse.csr_array(
            (data, C.indices[s:e], C.indptr[a : b + 1] - s), shape=(b - a, C.shape[1])
        )
        yield a, b, block
        a = b


def _row_sums(C: sparse.csr_array, x: FloatArray) -> FloatArray:
    """Return ``C.astype(float) @ x`` for a boolean ``C`` without the float copy of ``C``."""
    out = np.zeros(C.shape[0])
    for a, b, block in _float_rows(C):
        out[a:b] = block @ x
    return out


def _row_gain(C: sparse.csr_array, c: int, w_open: FloatArray) -> float:
    # One summation routine everywhere, so equal gains compare equal and ties
    # fall to the candidate index deterministically.
    s, e = C.indptr[c], C.indptr[c + 1]
    return float(np.sum(w_open[C.indices[s:e]]))


def _reached(C: sparse.csr_array, c: int) -> IntArray:
    """Demand columns of candidate ``c``."""
    out: IntArray = C.indices[C.indptr[c] : C.indptr[c + 1]]
    return out


def covered_population(
    cover: Any, weights: ArrayLike, chosen: ArrayLike, *, covered0: ArrayLike | None = None
) -> float:
    """Return the population covered by ``chosen`` candidates together with ``covered0``."""
    C, w, c0 = _check_matrix(cover, weights, covered0)
    idx = np.asarray(chosen, dtype=np.int64)
    hit = c0.copy()
    if idx.size:
        hit[C[idx].indices] = True
    return float(w[hit].sum())


# --- greedy -----------------------------------------------------------------------------


def _check_goal(k: int | None, target_share: float | None, max_k: int) -> None:
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


def _tie_matrix(
    C: sparse.csr_array, w: FloatArray, c0: BoolArray, tie_cover: Any, tie_covered0: Any
) -> tuple[sparse.csr_array | None, BoolArray]:
    """Return the secondary (tie-break) matrix and its existing coverage, checked against ``C``."""
    if tie_cover is None:
        return None, np.zeros_like(c0)
    T, _, t0 = _check_matrix(tie_cover, w, tie_covered0)
    if T.shape != C.shape:
        msg = f"`tie_cover` must have the shape of `cover` {C.shape}; got {T.shape}."
        raise InputError(msg)
    return T, t0


def _lazy_greedy(
    C: sparse.csr_array,
    T: sparse.csr_array | None,
    w_open: FloatArray,
    t_open: FloatArray,
    *,
    covered: float,
    cap: int,
    goal: float | None,
) -> tuple[list[int], list[float], list[float]]:
    """CELF: pop the best stale gain, refresh it, take it when it is current.

    ``w_open`` and ``t_open`` (population not yet covered, primary and
    secondary) are updated in place. Stops at ``cap`` sites, when ``goal``
    population is covered, or when no candidate adds anything.
    """
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
        if goal is not None and covered >= goal * (1 - _TARGET_RTOL):
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
        w_open[_reached(C, c)] = 0.0
        if T is not None:
            t_open[_reached(T, c)] = 0.0
    return chosen, marginal, cumulative


def greedy_max_coverage(
    cover: Any,
    weights: ArrayLike,
    *,
    covered0: ArrayLike | None = None,
    k: int | None = None,
    target_share: float | None = None,
    max_k: int = 50,
    tie_cover: Any = None,
    tie_covered0: ArrayLike | None = None,
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
    max_k
        Most sites to choose with ``target_share``.
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
    _check_goal(k, target_share, max_k)
    T, t0 = _tie_matrix(C, w, c0, tie_cover, tie_covered0)
    total = float(w.sum())
    w_open = np.where(c0, 0.0, w)
    t_open = np.where(t0, 0.0, w)
    before = float(w.sum() - w_open.sum())
    cap = int(k) if k is not None else int(max_k)
    goal = target_share * total if target_share is not None else None
    chosen, marginal, cumulative = _lazy_greedy(
        C, T, w_open, t_open, covered=before, cap=cap, goal=goal
    )
    covered = cumulative[-1] if cumulative else before
    target_met: bool | None = None
    if goal is not None:
        target_met = bool(covered >= goal * (1 - _TARGET_RTOL))
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


def greedy_order(
    cover: Any, weights: ArrayLike, chosen: ArrayLike, *, covered0: ArrayLike | None = None
) -> tuple[IntArray, FloatArray]:
    """Order a fixed set of sites greedily (largest marginal first; ties by index).

    Returns
    -------
    tuple of numpy.ndarray
        The ordered candidate indices and each site's marginal population.
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
        w_open[_reached(C, c)] = 0.0
    return np.asarray(order, dtype=np.int64), np.asarray(marg, dtype=np.float64)


# --- local search -----------------------------------------------------------------------


def swap_improve(
    cover: Any,
    weights: ArrayLike,
    chosen: ArrayLike,
    *,
    covered0: ArrayLike | None = None,
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
    count = np.zeros(n_dem, dtype=np.int64)
    np.add.at(count, C[S].indices, 1)
    tol = 1e-9 * max(float(w.sum()), 1.0)
    swaps = 0
    while swaps < max_swaps:
        w_unc = np.where(~c0 & (count == 0), w, 0.0)
        gain_now = _row_sums(C, w_unc)
        uniq = np.where(~c0 & (count == 1), w, 0.0)
        U = C[S].astype(np.float64).multiply(uniq[None, :]).tocsr()  # k × n_dem: only s covers
        loss = np.asarray(U.sum(axis=1)).ravel()
        UT = U.T.tocsr()  # once, not per block
        M = np.zeros((n_cand, S.size))  # n_cand × k
        for a, b, block in _float_rows(C):
            M[a:b] = (block @ UT).toarray()
        delta = gain_now[:, None] + M - loss[None, :]
        delta[S, :] = -np.inf
        best = int(np.argmax(delta))
        c_in, j_out = divmod(best, S.size)
        if not delta[c_in, j_out] > tol:
            break
        c_out = int(S[j_out])
        np.add.at(count, _reached(C, c_out), -1)
        np.add.at(count, _reached(C, c_in), 1)
        S[j_out] = c_in
        swaps += 1
    pop = float(w[c0 | (count > 0)].sum())
    if swaps:
        logger.info("1-swap local search applied %d swaps", swaps)
    return SwapResult(S, pop, swaps)


# --- HiGHS ------------------------------------------------------------------------------


def _new_highs() -> highspy.Highs:
    """Return a silent, single-threaded, seeded HiGHS instance (reproducible runs)."""
    h = highspy.Highs()  # type: ignore[no-untyped-call]  # Highs.__init__ is unannotated
    h.setOptionValue("output_flag", False)
    h.setOptionValue("random_seed", 0)
    h.setOptionValue("threads", 1)
    return h


def _run_highs(h: highspy.Highs) -> str:
    """Run ``h``; inside a :func:`coverage.progress.cancellable` block, stop on request.

    Without a stop check this is ``h.run()``. With one, HiGHS runs in a worker thread
    (it releases the GIL) while this thread polls the check every :data:`STOP_POLL_S`;
    on a request the interrupt callbacks (MIP, simplex, IPM) stop it at HiGHS's next
    check. HiGHS checks them between nodes, not inside the MIP's root LP (seconds to
    minutes on a large instance), so after :data:`STOP_GRACE_S` the thread is left to
    finish on its own (it stops at its next check, or its time limit) and the caller
    falls back to its warm start.

    Returns
    -------
    str
        :data:`RUN_DONE`, :data:`RUN_STOPPED` (``h`` holds its incumbent) or
        :data:`RUN_ABANDONED` (``h`` is still running: do not read it).
    """
    check = cancel_check()
    if check is None:
        h.run()
        return RUN_DONE
    if check():
        return RUN_ABANDONED  # never started: nothing to read
    stop = threading.Event()

    def interrupt(event: Any) -> None:
        if stop.is_set():
            event.interrupt()

    h.cbMipInterrupt += interrupt
    h.cbSimplexInterrupt += interrupt
    h.cbIpmInterrupt += interrupt
    worker = threading.Thread(target=h.run, name="highs", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(STOP_POLL_S)
        if worker.is_alive() and check():
            stop.set()
            worker.join(STOP_GRACE_S)
            if worker.is_alive():
                logger.info(
                    "HiGHS did not stop within %.1f s; its thread finishes alone", STOP_GRACE_S
                )
                return RUN_ABANDONED
            return RUN_STOPPED
    return RUN_DONE


def _add_free_cols(h: highspy.Highs, cost: FloatArray) -> None:
    """Add one column in [0, 1] per entry of ``cost``, with no matrix entries yet."""
    n = cost.size
    h.addCols(
        n,
        cost,
        np.zeros(n),
        np.ones(n),
        0,
        np.zeros(0, dtype=np.int32),
        np.zeros(0, dtype=np.int32),
        np.zeros(0),
    )


def _add_cover_rows(h: highspy.Highs, CT: sparse.csr_array, n_cand: int) -> None:
    """Rows ``y_d - sum_{c covers d} x_c <= 0``, one per row of ``CT`` (demand × candidates).

    Each row holds the candidates covering ``d`` with -1, then ``y_d`` itself with +1.
    """
    n_y = CT.shape[0]
    if not n_y:
        return
    counts = np.diff(CT.indptr)
    starts = (CT.indptr[:-1] + np.arange(n_y)).astype(np.int32)
    idx = np.empty(CT.nnz + n_y, dtype=np.int32)
    val = np.empty(CT.nnz + n_y, dtype=np.float64)
    mask_y = np.zeros(CT.nnz + n_y, dtype=bool)
    mask_y[(starts + counts).astype(np.int64)] = True
    idx[mask_y] = (n_cand + np.arange(n_y)).astype(np.int32)
    val[mask_y] = 1.0
    idx[~mask_y] = CT.indices.astype(np.int32)
    val[~mask_y] = -1.0
    h.addRows(n_y, np.full(n_y, -highspy.kHighsInf), np.zeros(n_y), idx.size, starts, idx, val)


def _mclp_model(
    C: sparse.csr_array, w: FloatArray, c0: BoolArray, k: int, *, integral: bool
) -> tuple[highspy.Highs, int, IntArray]:
    """Build the maximal covering model in HiGHS (objective in population).

    Columns: one ``x`` per candidate, then one ``y`` per open, coverable,
    populated demand unit. Rows: ``y_d - sum_c x_c <= 0`` and ``sum x <= k``.
    Returns the model, the number of candidates and the demand units of ``y``.
    """
    n_cand = C.shape[0]
    coverable = np.zeros(C.shape[1], dtype=bool)
    coverable[C.indices] = True
    dem = np.flatnonzero(coverable & ~c0 & (w > 0))
    CT = sparse.csr_array(C[:, dem].T.astype(np.float64))  # demand × candidates
    h = _new_highs()
    _add_free_cols(h, np.zeros(n_cand))
    _add_free_cols(h, w[dem].astype(np.float64))
    _add_cover_rows(h, CT, n_cand)
    h.addRows(
        1,
        np.array([-highspy.kHighsInf]),
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


def _set_warm_start(
    h: highspy.Highs, C: sparse.csr_array, dem: IntArray, chosen: ArrayLike
) -> None:
    """Give HiGHS the solution "open ``chosen``" (x) with the demand it covers (y)."""
    ws = np.asarray(chosen, dtype=np.int64)
    x = np.zeros(C.shape[0])
    x[ws] = 1.0
    hit = np.zeros(C.shape[1], dtype=bool)
    if ws.size:
        hit[C[ws].indices] = True
    sol = highspy.HighsSolution()
    sol.col_value = list(np.concatenate([x, hit[dem].astype(np.float64)]))
    h.setSolution(sol)


def _solved_sites(h: highspy.Highs, n_cand: int) -> IntArray | None:
    """Return the candidates HiGHS opened, or None when it holds no feasible solution."""
    values = np.asarray(h.getSolution().col_value, dtype=np.float64)
    if values.size < n_cand or h.getInfo().primal_solution_status == 0:
        return None
    return np.flatnonzero(values[:n_cand] > 0.5).astype(np.int64)


#: Candidates (by population gain) in the first restricted LP of :func:`_lp_bound`; the
#: whole LP is solved at once when there are no more candidates than this.
LP_INITIAL_CANDIDATES = 500
#: Most candidates priced in per round of :func:`_lp_bound`.
LP_ADD_CANDIDATES = 500


def _lagrangian_bound(
    C: sparse.csr_array, w_open: FloatArray, lam: FloatArray, k: int
) -> tuple[float, FloatArray]:
    """Lagrangian bound of the covering LP at multipliers ``lam >= 0`` (any ``lam`` is valid).

    Relaxing ``y_d <= sum_c x_c`` with ``lam_d`` leaves ``sum_d max(0, w_d - lam_d)``
    plus the ``k`` largest positive candidate prices ``(C lam)_c``. Returns the bound
    (open demand only) and the prices.
    """
    price = _row_sums(C, lam)
    top = np.sort(np.maximum(price, 0.0))[::-1][:k]
    return float(np.maximum(w_open - lam, 0.0).sum() + top.sum()), price


def _padded(before: float, value: float) -> float:
    """Return ``before`` plus an LP ``value``, padded so the bound survives rounding.

    The value is optimal up to the solver's tolerance; the hair added keeps it valid.
    """
    return before + value * (1 + 1e-9) + 1e-9


def _lp_bound(
    C: sparse.csr_array, w: FloatArray, c0: BoolArray, chosen: IntArray, k: int, budget: TimeBudget
) -> float:
    """LP relaxation of the maximal covering model, by column generation (NaN when unsolved).

    The LP is solved on a few candidates (``chosen`` and the largest gains), then
    every other candidate is priced with the cover rows' duals ``lam`` (clipped to
    ``[0, w]``, still optimal): one whose price ``(C lam)_c`` exceeds the cardinality
    row's dual would improve the LP and joins the next round. With none left, the
    restricted optimum is the optimum of the whole LP, and the Lagrangian bound at
    ``lam`` certifies it. When the time runs out, the best Lagrangian bound so far
    (valid at any ``lam``) is returned instead.
    """
    n_cand = C.shape[0]
    coverable = np.zeros(C.shape[1], dtype=bool)
    coverable[C.indices] = True
    open_ = coverable & ~c0 & (w > 0)
    w_open = np.where(open_, w, 0.0)
    before = float(w[c0].sum())
    if n_cand <= LP_INITIAL_CANDIDATES:
        R = np.arange(n_cand, dtype=np.int64)
    else:
        gains = _row_sums(C, w_open)
        top = np.argsort(-gains, kind="stable")[:LP_INITIAL_CANDIDATES]
        R = np.union1d(chosen, top).astype(np.int64)
    best_lagrangian = float("inf")
    while True:
        h, _, dem = _mclp_model(sparse.csr_array(C[R]), w, c0, k, integral=False)
        h.setOptionValue("time_limit", budget.remaining_s())
        ran = _run_highs(h)
        if ran != RUN_DONE or h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            logger.warning(
                "LP bound not solved (%s); using the %s bound",
                "stopped on request"
                if ran != RUN_DONE
                else h.modelStatusToString(h.getModelStatus()),
                "Lagrangian" if np.isfinite(best_lagrangian) else "submodular",
            )
            return (
                _padded(before, best_lagrangian) if np.isfinite(best_lagrangian) else float("nan")
            )
        obj = float(h.getInfo().objective_function_value)
        lp_pop = _padded(before, obj)
        if R.size == n_cand:
            return lp_pop
        duals = np.abs(np.asarray(h.getSolution().row_dual, dtype=np.float64))
        lam = w_open.copy()  # open demand no candidate of R covers: lam_d = w_d
        lam[dem] = np.minimum(duals[: dem.size], w[dem])
        lagrangian, price = _lagrangian_bound(C, w_open, lam, k)
        best_lagrangian = min(best_lagrangian, lagrangian)
        excess = price - duals[-1] * (1 + 1e-9) - 1e-9
        excess[R] = 0.0
        enter = np.flatnonzero(excess > 0)
        logger.debug(
            "LP bound on %d of %d candidates: %.1f (Lagrangian %.1f), %d price in",
            R.size,
            n_cand,
            obj,
            lagrangian,
            enter.size,
        )
        if not enter.size:
            # lp_pop is the whole LP's optimum; the Lagrangian bound certifies it
            return min(lp_pop, _padded(before, lagrangian))
        enter = enter[np.argsort(-excess[enter], kind="stable")[:LP_ADD_CANDIDATES]]
        R = np.union1d(R, enter).astype(np.int64)


def upper_bound(
    cover: Any,
    weights: ArrayLike,
    chosen: ArrayLike,
    *,
    covered0: ArrayLike | None = None,
    k: int | None = None,
    lp: bool = True,
    time_limit_s: float = 60.0,
) -> Bound:
    """Upper bound on the best population coverable with ``k`` sites (plus ``covered0``).

    Two valid bounds, the smaller reported: the submodular bound (coverage of
    ``chosen`` plus the ``k`` largest marginal gains with respect to it) and,
    when ``lp``, the LP relaxation of the maximal covering model (HiGHS, by column
    generation from the candidates of largest gain: :func:`_lp_bound`).

    Returns
    -------
    Bound
        ``population`` (the better bound), ``submodular_population``,
        ``lp_population`` (NaN when not solved), ``k``.
    """
    C, w, c0 = _check_matrix(cover, weights, covered0)
    S = np.asarray(chosen, dtype=np.int64)
    kk = int(S.size if k is None else k)
    hit = c0.copy()
    if S.size:
        hit[C[S].indices] = True
    f_s = float(w[hit].sum())
    gains = _row_sums(C, np.where(hit, 0.0, w))
    top = np.sort(gains)[::-1][:kk]
    sub = f_s + float(top.sum())
    lp_pop = float("nan")
    if lp and kk > 0:
        lp_pop = _lp_bound(C, w, c0, S, kk, TimeBudget.start(time_limit_s))
    best = sub if not np.isfinite(lp_pop) else min(sub, lp_pop)
    return Bound(population=best, submodular_population=sub, lp_population=lp_pop, k=kk)


def solve_exact(
    cover: Any,
    weights: ArrayLike,
    k: int,
    *,
    covered0: ArrayLike | None = None,
    warm_start: ArrayLike | None = None,
    time_limit_s: float = 60.0,
    mip_rel_gap: float = 1e-7,
) -> ExactResult:
    """Solve the maximal covering MIP with HiGHS.

    Parameters
    ----------
    cover, weights, covered0
        The matrix, the population and the demand already covered.
    k
        Most sites to open.
    warm_start
        Candidate indices of a feasible solution (e.g. greedy + swap) passed to
        HiGHS with ``setSolution``.
    time_limit_s
        Wall-time limit; on expiry the best solution found and the dual bound
        are returned with ``optimal=False``.
    mip_rel_gap
        Relative gap at which HiGHS may stop.

    Returns
    -------
    ExactResult
        ``chosen``, ``population_covered``, ``bound_population``, ``optimal``,
        ``status``, ``runtime_s``.

    Raises
    ------
    SolverError
        When HiGHS finds no feasible solution at all.
    """
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
    ran = _run_highs(h)
    if ran == RUN_ABANDONED:
        return _warm_start_result(warm_start, lambda s: covered_population(C, w, s, covered0=c0))
    status = h.getModelStatus()
    status_s = h.modelStatusToString(status)
    chosen = _solved_sites(h, n_cand)
    if chosen is None:
        if ran == RUN_STOPPED:
            return _warm_start_result(
                warm_start, lambda s: covered_population(C, w, s, covered0=c0)
            )
        msg = f"HiGHS found no feasible solution ({status_s}); raise `time_limit_s` or use the greedy method."
        raise SolverError(msg)
    pop = covered_population(C, w, chosen, covered0=c0)
    optimal = status == highspy.HighsModelStatus.kOptimal
    dual = float(w[c0].sum()) + float(h.getInfo().mip_dual_bound)
    return ExactResult(
        chosen=chosen,
        population_covered=pop,
        bound_population=max(dual, pop),
        optimal=bool(optimal),
        status=STATUS_STOPPED if ran == RUN_STOPPED else status_s,
        runtime_s=float(h.getRunTime()),
        stopped=ran == RUN_STOPPED,
    )


def _warm_start_result(
    warm_start: ArrayLike | None, population: Callable[[IntArray], float]
) -> ExactResult:
    """Return a solve's warm start when a stop came before HiGHS could report an answer.

    ``population`` gives the residents the warm start covers (or serves, capacitated).
    """
    if warm_start is None:
        msg = "the solve was stopped before HiGHS found a solution; run it again or use the greedy method."
        raise SolverError(msg)
    chosen = np.asarray(warm_start, dtype=np.int64)
    return ExactResult(
        chosen=chosen,
        population_covered=population(chosen),
        bound_population=float("inf"),  # nothing proven
        optimal=False,
        status=STATUS_STOPPED,
        runtime_s=0.0,
        stopped=True,
    )


def solve_min_sites(
    cover: Any,
    weights: ArrayLike,
    target_population: float,
    *,
    covered0: ArrayLike | None = None,
    max_k: int,
    warm_start: ArrayLike | None = None,
    time_limit_s: float = 60.0,
) -> ExactResult:
    """Fewest sites covering at least ``target_population`` (covered0 counted): a HiGHS MIP.

    Minimises the number of sites subject to the covering rows of the maximal
    covering model and ``sum w_d y_d >= target_population - w(covered0)``, with at
    most ``max_k`` sites. ``optimal`` means the count is proven minimal;
    ``bound_population`` is the population covered by the solution found.

    Returns
    -------
    ExactResult
        ``chosen``, ``population_covered``, ``bound_population``, ``optimal``,
        ``status``, ``runtime_s``.

    Raises
    ------
    SolverError
        When HiGHS finds no solution reaching the target within ``max_k`` sites
        (the target is out of reach, or the time limit ran out first).
    """
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
            np.array([need * (1 - _TARGET_RTOL)]),
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
    ran = _run_highs(h)
    if ran == RUN_ABANDONED:
        return _warm_start_result(warm_start, lambda s: covered_population(C, w, s, covered0=c0))
    status = h.getModelStatus()
    status_s = h.modelStatusToString(status)
    chosen = _solved_sites(h, n_cand)
    if chosen is None and ran == RUN_STOPPED:
        return _warm_start_result(warm_start, lambda s: covered_population(C, w, s, covered0=c0))
    if chosen is None:
        msg = f"HiGHS found no set of at most {max_k} sites reaching the target ({status_s}); lower the target share or raise the cap on new sites."
        raise SolverError(msg)
    pop = covered_population(C, w, chosen, covered0=c0)
    return ExactResult(
        chosen=chosen,
        population_covered=pop,
        bound_population=pop,
        optimal=status == highspy.HighsModelStatus.kOptimal,
        status=STATUS_STOPPED if ran == RUN_STOPPED else status_s,
        runtime_s=float(h.getRunTime()),
        stopped=ran == RUN_STOPPED,
    )


# --- the recipe -------------------------------------------------------------------------


def _fewest_sites(
    C: sparse.csr_array,
    w: FloatArray,
    c0: BoolArray,
    chosen: IntArray,
    target_population: float,
    budget: TimeBudget,
) -> tuple[IntArray, bool]:
    """Replace ``chosen`` by fewer sites reaching the target, when the MIP finds them.

    Returns the sites to keep and whether their count is proven minimal.
    """
    kk = int(chosen.size)
    try:
        fewest = solve_min_sites(
            C,
            w,
            target_population,
            covered0=c0,
            max_k=kk,
            warm_start=chosen,
            time_limit_s=budget.remaining_s(),
        )
    except SolverError as exc:
        logger.warning("exact: minimum number of sites not found (%s); keeping %d", exc, kk)
        return chosen, False
    if fewest.population_covered < target_population * (1 - _TARGET_RTOL):
        return chosen, False  # solver tolerance: the "solution" misses the target
    if fewest.chosen.size < kk:
        logger.info(
            "exact: %d sites reach the target (greedy + swap needed %d)", fewest.chosen.size, kk
        )
        return fewest.chosen, fewest.optimal
    return chosen, fewest.optimal


def _exact_sites(
    C: sparse.csr_array,
    w: FloatArray,
    c0: BoolArray,
    chosen: IntArray,
    options: SolveOptions,
    budget: TimeBudget,
) -> tuple[IntArray, ExactResult]:
    """Solve the MIP with as many sites as ``chosen`` (its warm start); keep the better set."""
    ex = solve_exact(
        C,
        w,
        int(chosen.size),
        covered0=c0,
        warm_start=chosen,
        time_limit_s=budget.remaining_s(),
        mip_rel_gap=options.mip_rel_gap,
    )
    if ex.population_covered >= covered_population(C, w, chosen, covered0=c0):
        chosen = ex.chosen
    return chosen, ex


def _greedy_then_swap(
    C: sparse.csr_array,
    w: FloatArray,
    c0: BoolArray,
    options: SolveOptions,
    tie_cover: Any,
    tie_covered0: ArrayLike | None,
) -> tuple[GreedyResult, IntArray, int]:
    """Run the greedy, then 1-swaps when ``options.swap``: the result, the sites, the swaps."""
    g = greedy_max_coverage(
        C,
        w,
        covered0=c0,
        k=options.k,
        target_share=options.target_share,
        max_k=options.max_k,
        tie_cover=tie_cover,
        tie_covered0=tie_covered0,
    )
    if not (options.swap and g.chosen.size):
        return g, g.chosen, 0
    sw = swap_improve(C, w, g.chosen, covered0=c0)
    return g, sw.chosen, sw.swaps


def best_sites(
    cover: Any,
    weights: ArrayLike,
    options: SolveOptions,
    *,
    covered0: ArrayLike | None = None,
    tie_cover: Any = None,
    tie_covered0: ArrayLike | None = None,
    progress: ProgressFn | None = None,
    budget: TimeBudget | None = None,
) -> SiteSelection:
    """Choose sites by greedy + swap and, with ``options.exact``, prove them with HiGHS.

    Steps: :func:`greedy_max_coverage` (ties by ``tie_cover``), :func:`swap_improve`;
    then, under one :class:`TimeBudget` of ``options.time_limit_s``: with ``exact``
    and a reached ``target_share``, :func:`solve_min_sites` (the fewest sites);
    :func:`upper_bound`; with ``exact``, :func:`solve_exact` with that many sites.
    The final set is put in greedy order (:func:`greedy_order`).

    Parameters
    ----------
    cover, weights, covered0
        The matrix (candidates × demand), population and demand already covered.
    options
        ``k`` or ``target_share`` (with ``max_k``), ``swap``, ``lp_bound``,
        ``exact``, ``time_limit_s``, ``mip_rel_gap``: a
        :class:`coverage.siting.SitingParams`.
    tie_cover, tie_covered0
        Secondary-threshold matrix and its existing coverage (greedy ties).
    progress
        ``progress(fraction, message)``; reports once, when the bounds start.
    budget
        The run's budget when it started before this call (candidates and coverage
        sets inside it); default ``options.time_limit_s`` from the greedy's end.

    Inside a :func:`coverage.progress.cancellable` block, a stop request skips the
    solver steps still to come and cuts the running one short; the answer is the
    best found so far (HiGHS's incumbent, else greedy + swap) with ``stopped``.

    Returns
    -------
    SiteSelection
        ``chosen`` in greedy order, ``marginal_population``,
        ``cumulative_population``, ``population_before`` / ``_after`` /
        ``_total``, ``bound_population``, ``method``, ``k``, ``target_met``,
        ``optimal``, ``status``, ``swaps``, ``min_sites_proven``, ``stopped``.
    """
    C, w, c0 = _check_matrix(cover, weights, covered0)
    total = float(w.sum())
    g, chosen, swaps = _greedy_then_swap(C, w, c0, options, tie_cover, tie_covered0)
    stopped = cancel_requested()
    if progress and not stopped:
        progress(0.5, "bounds")
    budget = budget or TimeBudget.start(options.time_limit_s)
    min_sites_proven: bool | None = None
    if (
        options.exact
        and not stopped
        and chosen.size
        and options.target_share is not None
        and g.target_met
    ):
        # "How many stations until X %?": the fewest sites, then the best coverage with them
        chosen, min_sites_proven = _fewest_sites(
            C, w, c0, chosen, options.target_share * total, budget
        )
        stopped = cancel_requested()
    kk = int(chosen.size)
    before = float(w[c0].sum())
    bound_pop = before
    if kk:
        lp = options.lp_bound and not stopped
        bound = upper_bound(
            C, w, chosen, covered0=c0, k=kk, lp=lp, time_limit_s=budget.remaining_s()
        )
        bound_pop = bound.population
        stopped = stopped or cancel_requested()
    ex: ExactResult | None = None
    if options.exact and kk and not stopped:
        chosen, ex = _exact_sites(C, w, c0, chosen, options, budget)
        bound_pop = min(bound_pop, ex.bound_population)
        stopped = ex.stopped
    order, marg = greedy_order(C, w, chosen, covered0=c0)
    cum = before + np.cumsum(marg)
    after = float(cum[-1]) if cum.size else before
    target_met = g.target_met
    if options.target_share is not None:
        target_met = bool(after >= options.target_share * total * (1 - _TARGET_RTOL))
    return SiteSelection(
        chosen=order,
        marginal_population=marg,
        cumulative_population=cum,
        population_before=before,
        population_after=after,
        population_total=total,
        bound_population=max(bound_pop, after),
        method=METHOD_EXACT if ex is not None else METHOD_GREEDY,
        k=kk,
        target_met=target_met,
        optimal=ex.optimal if ex is not None else False,
        status=ex.status if ex is not None else "",
        swaps=swaps,
        min_sites_proven=min_sites_proven,
        stopped=stopped,
    )


# --- capacitated siting (issue 15) ------------------------------------------------------
#
# Facilities (existing centers, then candidate actions: a new site of one size at a
# location, or an enlargement of an existing center) serve the residents of the units they
# cover, each up to its capacity (floor area / standard m² per 100 households × 100
# households). The residents served by a set of facilities is a maximum flow (a
# transportation LP): x_fi >= 0 residents for every covered (facility, unit) pair,
# sum_f x_fi <= p_i, sum_i l_i x_fi <= K_f, where l_i is the capacity one resident of unit
# i uses: 1 when capacities are in residents (one household size for everybody), the unit's
# households per resident when a census gives households. In households y_fi = l_i x_fi
# this is a transportation problem whose objective weighs each unit by its residents per
# household (1 / l_i); such a value (a weighted polymatroid rank: a non-negative sum, over
# thresholds of 1 / l_i, of maximum flows to the units above the threshold) is monotone
# submodular in the set of open facilities, which the bounds below rely on. The greedy's
# own choice carries no such guarantee (see capacitated_greedy).

METHOD_CAP_GREEDY = "capacitated-greedy"
#: What the capacitated greedy guarantees, as summary.json's ``siting.guarantee`` says it.
CAPACITATED_GUARANTEE = (
    "none for the greedy: the capacitated objective's greedy rule has no approximation ratio "
    "(it does not reroute residents already served); upper_bound_share is a proven bound "
    "(bound_kind) and gap = upper_bound_share - share_after bounds the distance to the optimum"
)
METHOD_CAP_EXACT = "capacitated-exact"
#: Largest number of (facility, unit) pairs put into the exact MIP (refused beyond it).
CAP_LP_MAX_PAIRS = 3_000_000
#: Largest number of pairs for the LP bound, and its time limit: the relaxation of a city
#: (1,432 candidates × 2 sizes, 3e6 pairs) took HiGHS a minute; past these the
#: combinatorial bound stands alone.
CAP_BOUND_LP_MAX_PAIRS = 250_000
CAP_BOUND_LP_TIME_S = 10.0


@dataclass(frozen=True)
class CapacitatedModel:
    """A capacitated siting instance on plain arrays (no geography), validated on creation.

    Parameters
    ----------
    cover
        Boolean ``csr_array`` (facilities × demand units): the first ``n_existing``
        rows are the existing centers, the others the candidate actions.
    weights
        Residents per demand unit.
    capacity
        Residents each facility can serve (>= 0).
    n_existing
        Number of existing centers (always open).
    location
        Per action (``n_facilities - n_existing`` values): actions sharing a
        location exclude one another (one size per site); ``-1``: its own.
    load
        Per demand unit, the capacity one of its residents uses (>= 0): with
        ``capacity`` in households, the unit's households per resident (a
        census's households over its residents). ``None``: 1, ``capacity`` is
        in residents.
    """

    cover: sparse.csr_array
    weights: FloatArray
    capacity: FloatArray
    n_existing: int
    location: IntArray
    load: FloatArray | None = None

    def __post_init__(self) -> None:
        """Check shapes and values."""
        C, w, _ = _check_matrix(self.cover, self.weights, None)
        cap = np.asarray(self.capacity, dtype=np.float64)
        if cap.shape != (C.shape[0],) or not np.isfinite(cap).all() or (cap < 0).any():
            msg = f"`capacity` must hold one finite value >= 0 per facility ({C.shape[0]}); got shape {cap.shape}."
            raise InputError(msg)
        n_act = C.shape[0] - int(self.n_existing)
        loc = np.asarray(self.location, dtype=np.int64)
        if self.n_existing < 0 or n_act < 0 or loc.shape != (n_act,):
            msg = f"`location` must hold one value per action ({n_act}); got shape {loc.shape}."
            raise InputError(msg)
        if self.load is not None:
            load = np.asarray(self.load, dtype=np.float64)
            if load.shape != w.shape or not np.isfinite(load).all() or (load < 0).any():
                msg = f"`load` must hold one finite value >= 0 per demand unit ({w.size}); got shape {load.shape}."
                raise InputError(msg)
            object.__setattr__(self, "load", load)
        object.__setattr__(self, "cover", C)
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "capacity", cap)
        object.__setattr__(self, "location", loc)

    @property
    def unit_load(self) -> FloatArray:
        """Capacity used per resident of each unit (ones without :attr:`load`)."""
        return np.ones(self.weights.size) if self.load is None else self.load

    def restrict(self, rows: IntArray) -> CapacitatedModel:
        """Return the model of the existing centers plus the action ``rows`` (each its own location)."""
        return CapacitatedModel(
            self.cover[rows],
            self.weights,
            self.capacity[rows],
            self.n_existing,
            np.full(rows.size - self.n_existing, -1, dtype=np.int64),
            self.load,
        )

    @property
    def n_actions(self) -> int:
        """Number of candidate actions."""
        return int(self.cover.shape[0] - self.n_existing)

    def action_rows(self, actions: ArrayLike) -> IntArray:
        """Return the facility rows of actions (indices ``0 .. n_actions - 1``)."""
        return np.asarray(actions, dtype=np.int64) + int(self.n_existing)


#: The result of :func:`best_capacitated_sites`: a :class:`SiteSelection` whose
#: ``marginal_population`` / ``cumulative_population`` are residents served (the greedy's
#: residual rule), ``population_after`` the maximum flow of the choice, and ``bound_kind``
#: names the proven bound.
CapacitatedSelection = SiteSelection


def _served_lp(
    model: CapacitatedModel, rows: IntArray, extra_cap: FloatArray | None = None
) -> tuple[highspy.Highs, sparse.coo_array]:
    """Build the transportation LP of the facilities ``rows`` (residents served)."""
    C = model.cover[rows].tocoo()
    n_pairs, n_units, n_fac = C.nnz, model.cover.shape[1], rows.size
    cap = model.capacity[rows] if extra_cap is None else extra_cap
    h = _new_highs()
    # rows: units (sum_f x <= p_i), then facilities (sum_i x <= K_f)
    lo = np.full(n_units + n_fac, -highspy.kHighsInf)
    up = np.concatenate([model.weights, cap])
    h.addRows(lo.size, lo, up, 0, np.zeros(lo.size, dtype=np.int32), np.zeros(0, np.int32), [])
    starts = np.arange(0, 2 * n_pairs, 2, dtype=np.int32)
    idx = np.empty(2 * n_pairs, dtype=np.int32)
    idx[0::2] = C.col
    idx[1::2] = n_units + C.row
    val = np.ones(idx.size)
    val[1::2] = model.unit_load[C.col]
    h.addCols(
        n_pairs,
        np.ones(n_pairs),
        np.zeros(n_pairs),
        np.full(n_pairs, highspy.kHighsInf),
        idx.size,
        starts,
        idx,
        val,
    )
    h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    return h, C


def _max_flow(model: CapacitatedModel, rows: IntArray) -> tuple[float, FloatArray]:
    """Return the residents served by the facilities ``rows`` (maximum flow) and those left per unit.

    Raises
    ------
    SolverError
        When HiGHS does not solve the LP.
    """
    w = model.weights.copy()
    if rows.size == 0 or model.cover[rows].nnz == 0:
        return 0.0, w
    h, C = _served_lp(model, rows)
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        msg = f"HiGHS did not solve the served-residents LP ({h.modelStatusToString(h.getModelStatus())})."
        raise SolverError(msg)
    x = np.asarray(h.getSolution().col_value, dtype=np.float64)
    served = np.bincount(C.col, weights=x, minlength=w.size)
    return float(h.getInfo().objective_function_value), np.maximum(w - served, 0.0)


def _open_rows(model: CapacitatedModel, actions: ArrayLike) -> IntArray:
    """Return the facility rows of the existing centers plus ``actions``."""
    rows = np.concatenate([np.arange(model.n_existing), model.action_rows(actions)])
    return rows.astype(np.int64)


def served_population(model: CapacitatedModel, actions: ArrayLike = ()) -> float:
    """Return the residents served by the existing centers plus ``actions`` (maximum flow, HiGHS LP).

    Raises
    ------
    SolverError
        When HiGHS does not solve the LP.
    """
    return _max_flow(model, _open_rows(model, actions))[0]


def _fill_order(model: CapacitatedModel, units: IntArray) -> list[IntArray]:
    """Return ``units`` in groups of equal load, lightest first (the most residents per capacity)."""
    if model.load is None:
        return [units]
    load = model.load[units]
    return [units[load == v] for v in np.unique(load)]


def _fill(model: CapacitatedModel, row: int, residual: FloatArray, *, commit: bool = True) -> float:
    """Serve the residual residents of facility ``row`` up to its capacity; return how many.

    Units using the least capacity per resident go first, each group of equal
    load pro rata (one group without :attr:`CapacitatedModel.load`): the most
    residents this facility alone can serve from ``residual``, a value that only
    shrinks as ``residual`` does. ``commit`` applies the service to ``residual``.
    """
    cap_left = float(model.capacity[row])
    taken = 0.0
    for units in _fill_order(model, _reached(model.cover, row)):
        left = float(residual[units].sum())
        if left <= 0:
            continue
        per = 1.0 if model.load is None else float(model.load[units[0]])
        need = left * per
        frac = 1.0 if need <= cap_left else cap_left / need
        take = left if frac == 1.0 else cap_left / per
        taken += take
        cap_left -= need if frac == 1.0 else cap_left
        if commit and take > 0:
            residual[units] *= 1.0 - frac
        if frac < 1.0:
            break
    return taken


def capacitated_greedy(
    model: CapacitatedModel,
    *,
    k: int | None = None,
    target_share: float | None = None,
    max_k: int = 50,
    residual0: FloatArray | None = None,
) -> tuple[IntArray, FloatArray]:
    """Lazy greedy on the residual demand of the existing centers' maximum flow.

    Each step opens the action serving the most residents still unserved in
    its catchment (:func:`_fill`: ``min(capacity, residual residents covered)``
    with capacities in residents; at most one action per location), and serves
    them. Gains only shrink as the residual does, so the lazy (CELF) evaluation
    is exact for this rule.

    The rule never reroutes residents already served, so it is not the greedy of
    the served-residents function, and that function's (1 - 1/e) guarantee does
    not carry over: the choice has no proven approximation ratio, and it can
    fall below 1 - 1/e when the baseline flow serves residents from the wrong
    center (tests/test_optimize.py shows 0.55 of the optimum). What is proven
    is :func:`capacitated_bound`, and the reported gap.

    Parameters
    ----------
    residual0
        Residents per unit left unserved by the existing centers (their maximum
        flow), when the caller has it; computed otherwise.

    Returns
    -------
    tuple
        The chosen action indices in order, and the residual-rule gain of each.
    """
    _check_goal(k, target_share, max_k)
    cap_k = int(k if k is not None else max_k)
    if residual0 is None:
        residual0 = _max_flow(model, np.arange(model.n_existing, dtype=np.int64))[1]
    residual = np.array(residual0, dtype=np.float64)
    total = float(model.weights.sum())
    goal = None if target_share is None else target_share * total
    served = total - float(residual.sum())
    C = model.cover
    n0 = model.n_existing
    sums = C[n0:].astype(np.float64) @ residual if model.n_actions else np.zeros(0)
    # an upper bound on each first gain (exact with capacities in residents)
    gains0 = np.minimum(model.capacity[n0:], sums) if model.load is None else sums
    heap = [(-g, a) for a, g in enumerate(gains0) if g > 0]
    heapq.heapify(heap)
    used_loc: set[int] = set()
    chosen: list[int] = []
    gains: list[float] = []
    while heap and len(chosen) < cap_k:
        if goal is not None and served >= goal * (1 - _TARGET_RTOL):
            break
        _neg, a = heapq.heappop(heap)
        loc = int(model.location[a])
        if loc >= 0 and loc in used_loc:
            continue
        row = n0 + a
        fresh = _fill(model, row, residual, commit=False)
        if heap and fresh < -heap[0][0] - 1e-12:
            if fresh > 0:
                heapq.heappush(heap, (-fresh, a))
            continue
        if fresh <= 0:
            break
        take = _fill(model, row, residual)
        served += take
        chosen.append(a)
        gains.append(take)
        if loc >= 0:
            used_loc.add(loc)
    return np.asarray(chosen, dtype=np.int64), np.asarray(gains, dtype=np.float64)


def _top_k_per_location(values: FloatArray, location: IntArray, k: int) -> float:
    """Return the sum of the ``k`` largest ``values``, one per location."""
    v = values.copy()
    loc = location
    shared = loc >= 0
    if shared.any():
        order = np.lexsort((-v[shared], loc[shared]))
        idx = np.flatnonzero(shared)[order]
        first = np.ones(idx.size, dtype=bool)
        first[1:] = loc[idx][1:] != loc[idx][:-1]
        keep = np.zeros(v.size, dtype=bool)
        keep[~shared] = True
        keep[idx[first]] = True
        v = v[keep]
    return float(np.sort(v)[::-1][:k].sum())


def _residents_capacity(model: CapacitatedModel) -> FloatArray:
    """Return an upper bound on the residents each facility can serve: capacity / lightest load."""
    if model.load is None:
        return model.capacity
    C = model.cover.tocoo()
    live = model.weights[C.col] > 0
    rows, load = C.row[live], model.load[C.col[live]]
    lightest = np.full(model.cover.shape[0], np.inf)
    np.minimum.at(lightest, rows, load)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(lightest > 0, model.capacity / lightest, np.inf)
    return np.where(np.isinf(lightest), 0.0, out)


def capacitated_bound(
    model: CapacitatedModel,
    chosen: ArrayLike,
    k: int,
    *,
    served: float | None = None,
    before: float | None = None,
    lp: bool = True,
    time_limit_s: float = 60.0,
) -> tuple[float, str]:
    """Return a proven upper bound on the residents served with ``k`` actions, and its name.

    - ``submodular``: served(T) + the ``k`` largest bounds on single gains
      w.r.t. ``T``, for ``T`` the choice and for ``T`` empty (existing centers
      only); a gain is at most ``min(capacity, residents of the units it
      covers, residents unserved)``, one action per location (with
      :attr:`CapacitatedModel.load`, the capacity counts as residents at the
      lightest load among its units). Valid because
      served residents are a monotone submodular function of the open
      facilities (OPT <= f(T) + sum of its actions' gains w.r.t. T).
    - ``lp``: the LP relaxation of :func:`solve_capacitated_exact` (HiGHS),
      when the instance has at most :data:`CAP_BOUND_LP_MAX_PAIRS` pairs and
      HiGHS solves it within :data:`CAP_BOUND_LP_TIME_S`.
    """
    S = np.asarray(chosen, dtype=np.int64)
    f_s = served_population(model, S) if served is None else float(served)
    f_0 = served_population(model) if before is None else float(before)
    total = float(model.weights.sum())
    n0 = model.n_existing
    covered_pop = model.cover[n0:].astype(np.float64) @ model.weights
    per = np.minimum(_residents_capacity(model)[n0:], covered_pop)
    # the bound holds around any set: around S (the choice) and around the empty set
    single = np.minimum(per, total - f_s)
    single[S] = 0.0
    sub = f_s + _top_k_per_location(single, model.location, int(k))
    sub0 = f_0 + _top_k_per_location(np.minimum(per, total - f_0), model.location, int(k))
    best, kind = min(total, sub, sub0), "submodular"
    if lp and model.cover.nnz <= CAP_BOUND_LP_MAX_PAIRS and k > 0:
        h, _ = _cap_mip(model, int(k), integral=False)
        h.setOptionValue("time_limit", min(float(time_limit_s), CAP_BOUND_LP_TIME_S))
        if _run_highs(h) == RUN_DONE and h.getModelStatus() == highspy.HighsModelStatus.kOptimal:
            value = float(h.getInfo().objective_function_value) * (1 + 1e-9) + 1e-9
            if value < best:
                best, kind = value, "lp"
    return max(best, f_s), kind


def _cap_mip(
    model: CapacitatedModel, k: int, *, integral: bool, target: float | None = None
) -> tuple[highspy.Highs, int]:
    """Build the capacitated MIP: columns z (actions), then x (pairs); returns it and n_actions.

    max sum x  s.t.  sum_f x_fi <= p_i;  sum_i l_i x_fi <= K_f (existing);
    sum_i l_i x_ai - K_a z_a <= 0 and x_ai - p_i z_a <= 0 (actions); sum z <= k;
    sum of z at one location <= 1. With ``target``: min sum z s.t. sum x >= target.
    """
    C = model.cover.tocoo()
    n0, n_act, n_units = model.n_existing, model.n_actions, model.cover.shape[1]
    n_pairs = C.nnz
    act_pair = np.flatnonzero(C.row >= n0)
    locs = np.unique(model.location[model.location >= 0])
    # row blocks
    r_unit, r_fac = 0, n_units
    r_link = r_fac + model.cover.shape[0]
    r_k = r_link + act_pair.size
    r_loc = r_k + 1
    n_rows = r_loc + locs.size + (1 if target is not None else 0)
    h = _new_highs()
    up = np.concatenate(
        [
            model.weights,
            np.where(np.arange(model.cover.shape[0]) < n0, model.capacity, 0.0),
            np.zeros(act_pair.size),
            [float(k) if target is None else highspy.kHighsInf],
            np.ones(locs.size),
            [highspy.kHighsInf] if target is not None else [],
        ]
    )
    lo = np.full(n_rows, -highspy.kHighsInf)
    if target is not None:
        lo[-1] = float(target)
    h.addRows(n_rows, lo, up, 0, np.zeros(n_rows, dtype=np.int32), np.zeros(0, np.int32), [])
    # z columns: facility row (-K_a), link rows (-p_i), the k row, the location row
    pair_action = (C.row[act_pair] - n0).astype(np.int64)
    loc = model.location
    has_loc = loc >= 0
    loc_row = r_loc + np.searchsorted(locs, loc[has_loc])
    acts = np.arange(n_act, dtype=np.int64)
    z = sparse.coo_array(
        (
            np.concatenate(
                [
                    -model.capacity[n0:],
                    -model.weights[C.col[act_pair]],
                    np.ones(n_act),
                    np.ones(int(has_loc.sum())),
                ]
            ),
            (
                np.concatenate(
                    [
                        r_fac + n0 + acts,
                        r_link + np.arange(act_pair.size),
                        np.full(n_act, r_k),
                        loc_row,
                    ]
                ),
                np.concatenate([acts, pair_action, acts, acts[has_loc]]),
            ),
        ),
        shape=(n_rows, n_act),
    ).tocsc()
    cost_z = np.zeros(n_act) if target is None else np.ones(n_act)
    if n_act:
        h.addCols(
            n_act,
            cost_z,
            np.zeros(n_act),
            np.ones(n_act),
            z.nnz,
            z.indptr[:-1].astype(np.int32),
            z.indices.astype(np.int32),
            z.data.astype(np.float64),
        )
    # x columns: unit row, facility row, link row (actions), target row
    link_of_pair = np.full(n_pairs, -1, dtype=np.int64)
    link_of_pair[act_pair] = r_link + np.arange(act_pair.size)
    per = 2 + (link_of_pair >= 0).astype(np.int64) + (1 if target is not None else 0)
    xstarts = np.concatenate([[0], np.cumsum(per)[:-1]]).astype(np.int32)
    xidx = np.empty(int(per.sum()), dtype=np.int32)
    xidx[xstarts] = r_unit + C.col
    xidx[xstarts + 1] = r_fac + C.row
    has = link_of_pair >= 0
    xidx[xstarts[has] + 2] = link_of_pair[has]
    if target is not None:
        xidx[xstarts + per - 1] = n_rows - 1
    xval = np.ones(xidx.size)
    xval[xstarts + 1] = model.unit_load[C.col]
    cost_x = np.ones(n_pairs) if target is None else np.zeros(n_pairs)
    h.addCols(
        n_pairs,
        cost_x,
        np.zeros(n_pairs),
        np.full(n_pairs, highspy.kHighsInf),
        xidx.size,
        xstarts,
        xidx,
        xval,
    )
    h.changeObjectiveSense(
        highspy.ObjSense.kMaximize if target is None else highspy.ObjSense.kMinimize
    )
    if integral and n_act:
        h.changeColsIntegrality(
            n_act, np.arange(n_act, dtype=np.int32), np.full(n_act, highspy.HighsVarType.kInteger)
        )
    return h, n_act


def _cap_warm_start(h: highspy.Highs, model: CapacitatedModel, chosen: IntArray) -> None:
    """Give HiGHS the complete solution "open ``chosen``": z, and x from its maximum flow."""
    z = np.zeros(model.n_actions)
    z[chosen] = 1.0
    x = np.zeros(model.cover.nnz)
    rows = np.concatenate([np.arange(model.n_existing), model.action_rows(chosen)])
    if rows.size and model.cover[rows].nnz:
        lp, pairs = _served_lp(model, rows.astype(np.int64))
        lp.run()
        if lp.getModelStatus() == highspy.HighsModelStatus.kOptimal:
            flow = np.asarray(lp.getSolution().col_value, dtype=np.float64)
            X = sparse.csr_array(
                (flow, (rows[pairs.row], pairs.col)), shape=model.cover.shape
            )  # the MIP's x columns are the pairs of model.cover in COO order
            C = model.cover.tocoo()
            x = np.asarray(X[C.row, C.col], dtype=np.float64).ravel()
    sol = highspy.HighsSolution()
    sol.col_value = list(np.concatenate([z, x]))
    h.setSolution(sol)


def solve_capacitated_exact(
    model: CapacitatedModel,
    k: int | None = None,
    *,
    target_population: float | None = None,
    warm_start: ArrayLike | None = None,
    time_limit_s: float = 60.0,
    mip_rel_gap: float = 1e-7,
) -> ExactResult:
    """Solve the capacitated MIP with HiGHS: the best ``k`` actions, or the fewest reaching a target.

    Returns
    -------
    ExactResult
        ``chosen`` (actions), ``population_covered`` (residents served, maximum
        flow), ``bound_population`` (dual bound; with a target: the bound on the
        number of sites), ``optimal``, ``status``, ``runtime_s``.

    Raises
    ------
    InputError
        Neither or both of ``k`` and ``target_population``, or an instance
        over :data:`CAP_LP_MAX_PAIRS` pairs.
    SolverError
        When HiGHS finds no feasible solution.
    """
    if (k is None) == (target_population is None):
        msg = "Give exactly one of `k` or `target_population`."
        raise InputError(msg)
    if model.cover.nnz > CAP_LP_MAX_PAIRS:
        msg = f"the capacitated model has {model.cover.nnz:,} (facility, unit) pairs, more than {CAP_LP_MAX_PAIRS:,}; use the greedy method, fewer candidates (--candidates) or a shorter --minutes."
        raise InputError(msg)
    h, _ = _cap_mip(model, int(k or 0), integral=True, target=target_population)
    h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("mip_rel_gap", float(mip_rel_gap))
    if warm_start is not None:
        _cap_warm_start(h, model, np.asarray(warm_start, dtype=np.int64))
    ran = _run_highs(h)
    if ran == RUN_ABANDONED or (ran == RUN_STOPPED and h.getInfo().primal_solution_status == 0):
        return _warm_start_result(warm_start, lambda s: served_population(model, s))
    status = h.getModelStatus()
    status_s = h.modelStatusToString(status)
    values = np.asarray(h.getSolution().col_value, dtype=np.float64)
    if values.size < model.n_actions or h.getInfo().primal_solution_status == 0:
        msg = f"HiGHS found no feasible capacitated solution ({status_s}); raise `time_limit_s`, lower the target or use the greedy method."
        raise SolverError(msg)
    chosen = np.flatnonzero(values[: model.n_actions] > 0.5).astype(np.int64)
    served = served_population(model, chosen)
    dual = float(h.getInfo().mip_dual_bound)
    return ExactResult(
        chosen=chosen,
        population_covered=served,
        bound_population=max(dual, served) if target_population is None else dual,
        optimal=status == highspy.HighsModelStatus.kOptimal,
        status=STATUS_STOPPED if ran == RUN_STOPPED else status_s,
        runtime_s=float(h.getRunTime()),
        stopped=ran == RUN_STOPPED,
    )


def _cap_order(
    model: CapacitatedModel, chosen: IntArray, residual0: FloatArray
) -> tuple[IntArray, FloatArray]:
    """Order ``chosen`` by the greedy's residual rule restricted to them; return the order and gains."""
    if chosen.size == 0:
        return chosen, np.zeros(0)
    sub = model.restrict(_open_rows(model, chosen))
    order, gains = capacitated_greedy(sub, k=int(chosen.size), residual0=residual0)
    rest = np.setdiff1d(np.arange(chosen.size), order)  # actions adding nothing by that rule
    return chosen[np.concatenate([order, rest])], np.concatenate([gains, np.zeros(rest.size)])


def _cap_exact(
    model: CapacitatedModel,
    chosen: IntArray,
    served: float,
    target: float | None,
    options: SolveOptions,
    time_limit_s: float,
) -> tuple[IntArray, float, ExactResult, bool]:
    """Run the MIP warm-started from the greedy's ``chosen`` (serving ``served``); keep the better.

    Returns the choice, its served residents, the MIP's result and whether the greedy was kept.
    """
    fewest = target is not None and served >= target * (1 - 1e-9)
    if fewest:
        res = solve_capacitated_exact(
            model, target_population=target, warm_start=chosen, time_limit_s=time_limit_s
        )
    else:
        res = solve_capacitated_exact(
            model,
            k=int(options.k or options.max_k),
            warm_start=chosen,
            time_limit_s=time_limit_s,
            mip_rel_gap=options.mip_rel_gap,
        )
    if fewest or res.population_covered >= served - 1e-9:
        return res.chosen, res.population_covered, res, False
    # the MIP stopped (time limit) short of the greedy: keep the greedy
    logger.warning("capacitated MIP stopped short of the greedy (%s); greedy kept", res.status)
    return chosen, served, res, True


def best_capacitated_sites(
    model: CapacitatedModel, options: SolveOptions, *, budget: TimeBudget | None = None
) -> CapacitatedSelection:
    """Choose actions: capacitated greedy, then (``exact``) the HiGHS MIP warm-started from it.

    The maximum flow of the existing centers is solved once (the served
    residents before, and the greedy's starting residual), and the one of the
    final choice once (``population_after``).

    Parameters
    ----------
    model
        The instance.
    options
        ``k`` or ``target_share`` (with ``max_k``), ``exact`` (also solve the
        MIP: the best ``k`` actions, or the fewest reaching the target),
        ``time_limit_s``, ``mip_rel_gap``, ``lp_bound`` (as :class:`SolveOptions`).
    budget
        The run's budget when it started before this call; default
        ``options.time_limit_s`` from now. A stop request (as in :func:`best_sites`)
        keeps the greedy or the MIP's incumbent, with ``stopped``.

    Returns
    -------
    CapacitatedSelection
        ``marginal_population`` / ``cumulative_population`` follow the greedy's
        residual rule (a lower bound of the served residents); ``population_after``
        is the maximum flow of the whole choice (never less). The bound is the
        better of the submodular and LP bounds (``bound_kind``); ``optimal`` when
        the MIP proved it. The greedy itself has no proven ratio: the bound and
        the gap are the proof (:func:`capacitated_greedy`).
    """
    total = float(model.weights.sum())
    before, residual0 = _max_flow(model, np.arange(model.n_existing, dtype=np.int64))
    chosen, _ = capacitated_greedy(
        model,
        k=options.k,
        target_share=options.target_share,
        max_k=options.max_k,
        residual0=residual0,
    )
    served = served_population(model, chosen) if chosen.size else before
    method, optimal, status = METHOD_CAP_GREEDY, False, ""
    target = None if options.target_share is None else options.target_share * total
    mip_bound: float | None = None
    budget = budget or TimeBudget.start(options.time_limit_s)
    stopped = cancel_requested()
    if options.exact and model.n_actions and not stopped:
        picked, served, res, kept_greedy = _cap_exact(
            model, chosen, served, target, options, budget.remaining_s()
        )
        if kept_greedy:
            status = f"{res.status}; greedy kept (better than the MIP's incumbent)"
        else:
            chosen, method, optimal, status = picked, METHOD_CAP_EXACT, res.optimal, res.status
        mip_bound = res.bound_population if target is None else None
        stopped = res.stopped
    order, gains = _cap_order(model, chosen, residual0)
    cum = before + np.cumsum(gains)
    after = max(served, float(cum[-1])) if order.size else before
    k_bound = int(options.k if options.k is not None else max(order.size, 1))
    bound, kind = capacitated_bound(
        model,
        order,
        k_bound,
        served=after,
        before=before,
        lp=bool(options.lp_bound) and not (stopped or cancel_requested()),
        time_limit_s=budget.remaining_s(),
    )
    if mip_bound is not None and mip_bound < bound:
        bound, kind = mip_bound, "mip"
    if optimal and target is None:
        bound, kind = after, "optimal"
    return SiteSelection(
        chosen=order,
        marginal_population=gains,
        cumulative_population=cum,
        population_before=before,
        population_after=after,
        population_total=total,
        bound_population=max(bound, after),
        bound_kind=kind,
        method=method,
        k=int(order.size),
        target_met=None if target is None else bool(after >= target * (1 - 1e-9)),
        optimal=optimal,
        status=status,
        stopped=stopped,
    )
