"""The matrix core: greedy, swap, bounds and HiGHS against brute force on small instances."""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
import pytest
from scipy import sparse

from coverage.errors import InputError, SolverError
from coverage.optimize import (
    METHOD_CAP_EXACT,
    METHOD_CAP_GREEDY,
    METHOD_EXACT,
    METHOD_GREEDY,
    CapacitatedModel,
    TimeBudget,
    best_capacitated_sites,
    best_sites,
    capacitated_bound,
    capacitated_greedy,
    covered_population,
    greedy_max_coverage,
    greedy_order,
    served_population,
    solve_capacitated_exact,
    solve_exact,
    solve_min_sites,
    swap_improve,
    upper_bound,
)
from coverage.progress import cancellable


@dataclass(frozen=True)
class Options:
    """The fields best_sites reads (coverage.siting.SitingParams has them too)."""

    k: int | None = None
    target_share: float | None = None
    max_k: int = 50
    swap: bool = True
    lp_bound: bool = True
    exact: bool = False
    time_limit_s: float = 30.0
    mip_rel_gap: float = 1e-7


# --- small random instances -----------------------------------------------------


def random_instance(
    seed: int, n_cand: int = 10, n_dem: int = 25, density: float = 0.18
) -> tuple[sparse.csr_array, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    dense = rng.random((n_cand, n_dem)) < density
    cover = sparse.csr_array(dense)
    weights = rng.integers(1, 100, n_dem).astype(float)
    covered0 = rng.random(n_dem) < 0.15
    return cover, weights, covered0


def covered_by(cover: sparse.csr_array, w: np.ndarray, c0: np.ndarray, sites: Any) -> float:
    """Population covered by ``sites`` with ``c0``, from the dense matrix (independent of the module)."""
    dense = cover.toarray()
    return float(w[c0 | dense[list(sites)].any(axis=0)].sum())


def brute_force(cover: sparse.csr_array, w: np.ndarray, c0: np.ndarray, k: int) -> float:
    return max(
        covered_by(cover, w, c0, s) for s in itertools.combinations(range(cover.shape[0]), k)
    )


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_greedy_and_swap_within_1_minus_1_over_e_of_brute_force(seed: int, k: int) -> None:
    cover, w, c0 = random_instance(seed)
    opt = brute_force(cover, w, c0, k)
    g = greedy_max_coverage(cover, w, covered0=c0, k=k)
    base = float(w[c0].sum())
    assert g.population_after - base >= (1 - 1 / math.e) * (opt - base) - 1e-9
    assert g.population_after == pytest.approx(covered_population(cover, w, g.chosen, covered0=c0))
    if g.chosen.size:
        sw = swap_improve(cover, w, g.chosen, covered0=c0)
        assert sw.population_covered >= g.population_after - 1e-9
        assert sw.population_covered <= opt + 1e-9
        assert len(set(sw.chosen.tolist())) == sw.chosen.size


@pytest.mark.parametrize("seed", range(10))
def test_exact_equals_brute_force_and_bound_is_above(seed: int) -> None:
    cover, w, c0 = random_instance(seed, n_cand=11, n_dem=30)
    k = 3
    opt = brute_force(cover, w, c0, k)
    g = greedy_max_coverage(cover, w, covered0=c0, k=k)
    ex = solve_exact(cover, w, k, covered0=c0, warm_start=g.chosen, time_limit_s=30)
    assert ex.optimal
    assert ex.population_covered == pytest.approx(opt, rel=1e-9)
    assert ex.bound_population >= opt - 1e-6
    b = upper_bound(cover, w, g.chosen, covered0=c0, k=k)
    assert b.population >= opt - 1e-9
    assert b.submodular_population >= opt - 1e-9
    assert b.lp_population >= opt - 1e-6
    assert b.population == pytest.approx(min(b.submodular_population, b.lp_population))


def lp_relaxation(cover: sparse.csr_array, w: np.ndarray, c0: np.ndarray, k: int) -> float:
    """The maximal covering LP on every candidate and demand unit, by scipy's linprog."""
    from scipy.optimize import linprog

    dense = cover.toarray().astype(float)
    n_cand, n_dem = dense.shape
    # variables x (candidates), y (demand); maximise w.y with y <= C^T x, sum x <= k
    cost = np.concatenate([np.zeros(n_cand), -np.where(c0, 0.0, w)])
    a_ub = np.block([[-dense.T, np.eye(n_dem)], [np.ones((1, n_cand)), np.zeros((1, n_dem))]])
    b_ub = np.concatenate([np.zeros(n_dem), [k]])
    res = linprog(cost, A_ub=a_ub, b_ub=b_ub, bounds=(0, 1), method="highs")
    assert res.status == 0
    return float(w[c0].sum()) - float(res.fun)


@pytest.mark.parametrize("seed", range(16))
@pytest.mark.parametrize("k", [1, 3, 5])
def test_lp_bound_by_column_generation_equals_the_whole_lp(
    seed: int, k: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a few candidates in the first round and per round, so pricing has to bring the rest
    import coverage.optimize as optimize

    monkeypatch.setattr(optimize, "LP_INITIAL_CANDIDATES", 2)
    monkeypatch.setattr(optimize, "LP_ADD_CANDIDATES", 2)
    cover, w, c0 = random_instance(seed, n_cand=40, n_dem=60, density=0.08)
    whole = lp_relaxation(cover, w, c0, k)
    g = greedy_max_coverage(cover, w, covered0=c0, k=k)
    b = upper_bound(cover, w, g.chosen, covered0=c0, k=k)
    assert b.lp_population == pytest.approx(whole, rel=1e-7)
    assert b.lp_population >= whole - 1e-6
    if seed < 4:
        assert b.population >= brute_force(cover, w, c0, k) - 1e-9


@pytest.mark.parametrize("seed", range(8))
def test_lagrangian_bound_is_above_the_lp_at_any_multipliers(seed: int) -> None:
    from coverage.optimize import _lagrangian_bound

    cover, w, c0 = random_instance(seed, n_cand=12, n_dem=30)
    k = 3
    w_open = np.where(c0, 0.0, w)
    lam = np.random.default_rng(seed).random(w.size) * w_open * 1.5
    value, _ = _lagrangian_bound(sparse.csr_array(cover.astype(float)), w_open, lam, k)
    assert float(w[c0].sum()) + value >= lp_relaxation(cover, w, c0, k) - 1e-6


def test_greedy_is_deterministic_and_breaks_ties_by_secondary_then_index() -> None:
    # Candidates 0, 1, 2 cover the same population within the primary threshold;
    # 2 covers more within the secondary one, so it wins; 0 beats 1 on index.
    cover = sparse.csr_array(np.array([[1, 1, 0], [1, 1, 0], [1, 1, 0]], dtype=bool))
    tie = sparse.csr_array(np.array([[1, 0, 0], [1, 0, 0], [1, 1, 0]], dtype=bool))
    w = np.array([5.0, 5.0, 0.0])
    g = greedy_max_coverage(cover, w, k=1, tie_cover=tie)
    assert g.chosen.tolist() == [2]
    g = greedy_max_coverage(cover, w, k=1)
    assert g.chosen.tolist() == [0]
    cover, w, c0 = random_instance(3, n_cand=40, n_dem=80)
    runs = [greedy_max_coverage(cover, w, covered0=c0, k=5).chosen.tolist() for _ in range(3)]
    assert runs[0] == runs[1] == runs[2]


def test_greedy_stops_when_nothing_is_left_to_cover() -> None:
    cover = sparse.csr_array(np.array([[1, 0], [0, 1], [1, 1]], dtype=bool))
    g = greedy_max_coverage(cover, np.array([1.0, 1.0]), k=3)
    assert g.chosen.tolist() == [2]
    assert g.population_after == 2.0


def test_target_share_met_and_unreachable(caplog: pytest.LogCaptureFixture) -> None:
    cover = sparse.csr_array(np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0]], dtype=bool))
    w = np.array([60.0, 30.0, 10.0])
    g = greedy_max_coverage(cover, w, target_share=0.6)
    assert g.chosen.tolist() == [0]
    assert g.target_met is True
    with caplog.at_level(logging.WARNING, logger="coverage.optimize"):
        g = greedy_max_coverage(cover, w, target_share=0.95, max_k=5)
    assert g.target_met is False
    assert g.population_after == 90.0
    assert "not reachable" in caplog.text


def test_matrix_core_rejects_mismatched_inputs() -> None:
    cover = sparse.csr_array(np.eye(3, dtype=bool))
    with pytest.raises(InputError, match="weights"):
        greedy_max_coverage(cover, np.ones(2), k=1)
    with pytest.raises(InputError, match="covered0"):
        greedy_max_coverage(cover, np.ones(3), covered0=np.zeros(4, bool), k=1)
    with pytest.raises(InputError, match="`k`"):
        greedy_max_coverage(cover, np.ones(3), k=0)
    with pytest.raises(InputError):
        greedy_max_coverage(np.eye(3), np.ones(3), k=1)


def _fewest_by_brute_force(
    cover: sparse.csr_array, w: np.ndarray, c0: np.ndarray, target: float
) -> int | None:
    for k in range(1, cover.shape[0] + 1):
        if brute_force(cover, w, c0, k) >= target * (1 - 1e-12):
            return k
    return None


@pytest.mark.parametrize("seed", range(8))
def test_min_sites_equals_brute_force(seed: int) -> None:
    cover, w, c0 = random_instance(seed, n_cand=10, n_dem=30, density=0.15)
    reachable = covered_population(cover, w, np.arange(cover.shape[0]), covered0=c0)
    target = float(w[c0].sum()) + 0.8 * (reachable - float(w[c0].sum()))
    fewest = _fewest_by_brute_force(cover, w, c0, target)
    assert fewest is not None
    res = solve_min_sites(cover, w, target, covered0=c0, max_k=cover.shape[0], time_limit_s=30)
    assert res.optimal
    assert res.chosen.size == fewest
    assert res.population_covered >= target * (1 - 1e-12)


def test_min_sites_beats_greedy_on_the_classic_trap() -> None:
    """Greedy takes the big middle set first and needs 3 sites for everyone; 2 suffice."""
    cover = sparse.csr_array(
        np.array(
            [
                [1, 1, 1, 1, 0, 0],  # the middle: largest, but not in the best pair
                [1, 1, 0, 0, 1, 0],
                [0, 0, 1, 1, 0, 1],
            ],
            dtype=bool,
        )
    )
    w = np.ones(6)
    g = greedy_max_coverage(cover, w, target_share=1.0, max_k=3)
    assert g.chosen.size == 3
    res = solve_min_sites(cover, w, 6.0, max_k=3, warm_start=g.chosen, time_limit_s=10)
    assert res.optimal
    assert sorted(res.chosen.tolist()) == [1, 2]
    assert res.population_covered == 6.0


def test_min_sites_out_of_reach_is_a_solver_error() -> None:
    cover, w, c0 = random_instance(1)
    with pytest.raises(SolverError, match="lower the target"):
        solve_min_sites(cover, w, float(w.sum()) * 2, covered0=c0, max_k=3, time_limit_s=10)


def test_covered_population_matches_dense_count() -> None:
    cover, w, c0 = random_instance(5)
    for sites in ([], [0], [1, 4, 7], list(range(10))):
        assert covered_population(cover, w, sites, covered0=c0) == covered_by(cover, w, c0, sites)


def test_greedy_order_puts_largest_marginal_first() -> None:
    cover = sparse.csr_array(np.array([[1, 0, 0, 0], [1, 1, 1, 0], [0, 0, 1, 1]], dtype=bool))
    w = np.array([1.0, 2.0, 3.0, 4.0])
    order, marg = greedy_order(cover, w, [0, 2, 1])
    # 1 covers 6, 2 covers 7: 2 first (7), then 1 adds units 0 and 1 (3), then 0 adds nothing.
    assert order.tolist() == [2, 1, 0]
    assert marg.tolist() == [7.0, 3.0, 0.0]


@pytest.mark.parametrize("seed", range(8))
def test_best_sites_exact_equals_brute_force(seed: int) -> None:
    cover, w, c0 = random_instance(seed, n_cand=11, n_dem=30)
    opt = brute_force(cover, w, c0, 3)
    sel = best_sites(cover, w, Options(k=3, exact=True), covered0=c0)
    assert sel.method == METHOD_EXACT
    assert sel.optimal
    assert sel.population_after == pytest.approx(opt, rel=1e-12)
    assert sel.population_after == pytest.approx(covered_by(cover, w, c0, sel.chosen), rel=1e-12)
    assert sel.bound_population >= opt - 1e-9
    assert sel.population_before == float(w[c0].sum())
    assert sel.population_total == float(w.sum())


@pytest.mark.parametrize("seed", range(8))
def test_best_sites_greedy_is_ordered_and_bounded(seed: int) -> None:
    cover, w, c0 = random_instance(seed, n_cand=11, n_dem=30)
    opt = brute_force(cover, w, c0, 3)
    sel = best_sites(cover, w, Options(k=3), covered0=c0)
    assert sel.method == METHOD_GREEDY
    assert not sel.optimal
    assert sel.k == sel.chosen.size == 3
    assert sel.bound_population >= opt - 1e-9 >= sel.population_after - 2e-9
    base = float(w[c0].sum())
    assert sel.population_after - base >= (1 - 1 / math.e) * (opt - base) - 1e-9
    # greedy order: each site's marginal is what it adds to the ones before it
    for r in range(3):
        gain = covered_by(cover, w, c0, sel.chosen[: r + 1]) - covered_by(
            cover, w, c0, sel.chosen[:r]
        )
        assert sel.marginal_population[r] == pytest.approx(gain, abs=1e-9)
    assert (np.diff(sel.marginal_population) <= 1e-9).all()
    np.testing.assert_allclose(sel.cumulative_population, base + np.cumsum(sel.marginal_population))


@pytest.mark.parametrize("seed", range(6))
def test_best_sites_exact_target_takes_the_fewest_sites(seed: int) -> None:
    cover, w, c0 = random_instance(seed, n_cand=10, n_dem=30, density=0.15)
    share = 0.9 * covered_by(cover, w, c0, range(10)) / float(w.sum())
    fewest = _fewest_by_brute_force(cover, w, c0, share * float(w.sum()))
    sel = best_sites(cover, w, Options(target_share=share, max_k=10, exact=True), covered0=c0)
    greedy = best_sites(cover, w, Options(target_share=share, max_k=10), covered0=c0)
    assert sel.target_met is True
    assert sel.min_sites_proven is True
    assert sel.k == sel.chosen.size == fewest <= greedy.k
    assert sel.population_after >= share * float(w.sum()) * (1 - 1e-12)
    assert greedy.min_sites_proven is None


def test_best_sites_on_the_classic_trap() -> None:
    cover = sparse.csr_array(
        np.array([[1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 1, 0], [0, 0, 1, 1, 0, 1]], dtype=bool)
    )
    w = np.ones(6)
    greedy = best_sites(cover, w, Options(target_share=1.0, max_k=3, swap=False))
    exact = best_sites(cover, w, Options(target_share=1.0, max_k=3, exact=True))
    assert greedy.k == 3
    assert sorted(exact.chosen.tolist()) == [1, 2]
    assert exact.population_after == 6.0
    assert exact.min_sites_proven is True


def test_best_sites_reports_progress_once() -> None:
    cover, w, c0 = random_instance(2)
    seen: list[tuple[float, str]] = []
    best_sites(cover, w, Options(k=2), covered0=c0, progress=lambda f, m: seen.append((f, m)))
    assert seen == [(0.5, "bounds")]


def hard_instance(n_cand: int = 500, n_dem: int = 4000) -> tuple[sparse.csr_array, np.ndarray]:
    """Clustered covering sets: HiGHS needs seconds to prove 20 sites on it (2 s at 500 × 4000)."""
    rng = np.random.default_rng(1)
    m = rng.integers(20, 120, n_cand)
    rows = np.repeat(np.arange(n_cand), m)
    cols = (np.repeat(rng.integers(n_dem, size=n_cand), m) + rng.integers(-66, 66, m.sum())) % n_dem
    cover = sparse.csr_array((np.ones(rows.size, bool), (rows, cols)), shape=(n_cand, n_dem))
    return cover, rng.integers(1, 100, n_dem).astype(float)


def test_stop_request_before_the_solver_keeps_greedy_and_says_stopped() -> None:
    cover, w, c0 = random_instance(3)
    plain = best_sites(cover, w, Options(k=3), covered0=c0)
    with cancellable(lambda: True):
        sel = best_sites(cover, w, Options(k=3, exact=True), covered0=c0)
    assert sel.stopped
    assert sel.method == METHOD_GREEDY
    assert not sel.optimal
    assert sorted(sel.chosen) == sorted(plain.chosen)
    assert sel.population_after == pytest.approx(covered_by(cover, w, c0, sel.chosen))
    # the submodular bound alone still holds
    assert sel.bound_population >= brute_force(cover, w, c0, 3) - 1e-9
    assert not best_sites(cover, w, Options(k=3, exact=True), covered0=c0).stopped


def test_stop_request_cuts_a_running_highs_solve_short() -> None:
    # HiGHS runs into its time limit on this one; HiGHS polls its interrupt only between
    # nodes, so a stop inside the root LP leaves its thread to finish: keep the limit short
    cover, w = hard_instance(1000, 8000)
    flag = threading.Event()
    t0 = time.perf_counter()
    threading.Timer(0.5, flag.set).start()
    with cancellable(flag.is_set):
        ex = solve_exact(
            cover, w, 20, warm_start=greedy_max_coverage(cover, w, k=20).chosen, time_limit_s=6.0
        )
    elapsed = time.perf_counter() - t0
    assert elapsed < 0.5 + 1.5, elapsed  # within a second of the request, not the 6 s
    assert ex.stopped
    assert not ex.optimal
    g = greedy_max_coverage(cover, w, k=20)
    zero = np.zeros(w.size, dtype=bool)
    assert ex.population_covered >= covered_by(cover, w, zero, g.chosen) - 1e-9  # never worse
    assert ex.population_covered == pytest.approx(covered_by(cover, w, zero, ex.chosen))
    assert ex.chosen.size <= 20


def test_time_budget_counts_down_and_grants_a_second() -> None:
    budget = TimeBudget.start(30.0)
    assert 29.0 < budget.remaining_s() <= 30.0
    spent = TimeBudget(time.monotonic() - 5.0)
    assert spent.remaining_s() == 1.0


# --- capacitated siting (issue 15) -------------------------------------------------------


def cap_instance(seed: int, n_exist: int = 2, n_loc: int = 5, sizes: int = 2) -> CapacitatedModel:
    """Existing centers and ``n_loc`` locations with ``sizes`` sizes each, plus 2 enlargements."""
    rng = np.random.default_rng(100 + seed)
    n_dem = 14
    exist = rng.random((n_exist, n_dem)) < 0.3
    loc_cover = rng.random((n_loc, n_dem)) < 0.3
    rows = [exist]
    cap = list(rng.integers(20, 120, n_exist).astype(float))
    location: list[int] = []
    for size in range(sizes):
        rows.append(loc_cover)
        cap += list(rng.integers(30, 90, n_loc).astype(float) * (1 + size))
        location += list(range(n_loc))
    rows.append(exist)  # enlarging each existing center: same catchment, more capacity
    cap += [40.0] * n_exist
    location += [n_loc + e for e in range(n_exist)]
    return CapacitatedModel(
        sparse.csr_array(np.vstack(rows)),
        rng.integers(5, 60, n_dem).astype(float),
        np.array(cap),
        n_exist,
        np.array(location),
    )


def max_flow(model: CapacitatedModel, actions: Any) -> float:
    """Residents served, by networkx's maximum flow (independent of HiGHS)."""
    g = nx.DiGraph()
    dense = model.cover.toarray()
    rows = list(range(model.n_existing)) + [model.n_existing + a for a in actions]
    for r in rows:
        g.add_edge("s", ("f", r), capacity=float(model.capacity[r]))
        for i in np.flatnonzero(dense[r]):
            g.add_edge(("f", r), ("u", int(i)))
    for i, w in enumerate(model.weights):
        g.add_edge(("u", i), "t", capacity=float(w))
    if "s" not in g:
        return 0.0
    return float(nx.maximum_flow_value(g, "s", "t"))


def feasible_sets(model: CapacitatedModel, k: int) -> Any:
    for combo in itertools.combinations(range(model.n_actions), k):
        locs = [int(model.location[a]) for a in combo]
        if len(set(locs)) == len(locs):
            yield combo


def cap_brute_force(model: CapacitatedModel, k: int) -> float:
    return max(max_flow(model, s) for s in feasible_sets(model, k))


@pytest.mark.parametrize("seed", range(6))
def test_served_population_is_the_maximum_flow(seed: int) -> None:
    model = cap_instance(seed)
    rng = np.random.default_rng(seed)
    for _ in range(3):
        acts = rng.choice(model.n_actions, size=3, replace=False)
        assert served_population(model, acts) == pytest.approx(max_flow(model, acts), abs=1e-6)
    assert served_population(model) == pytest.approx(max_flow(model, []), abs=1e-6)


@pytest.mark.parametrize(("seed", "k"), [(s, k) for s in range(8) for k in (1, 2, 3)])
def test_capacitated_greedy_and_bounds_against_brute_force(seed: int, k: int) -> None:
    model = cap_instance(seed)
    best = cap_brute_force(model, k)
    sel = best_capacitated_sites(model, Options(k=k))
    assert sel.method == METHOD_CAP_GREEDY
    # at most one action per location, and the served value is the chosen set's maximum flow
    assert len({int(model.location[a]) for a in sel.chosen}) == sel.chosen.size
    assert sel.population_after == pytest.approx(max_flow(model, sel.chosen), abs=1e-6)
    assert sel.population_after <= best + 1e-6
    # observed on these instances (the residual rule has no proven ratio of its own)
    assert sel.population_after >= (1 - 1 / math.e) * best - 1e-6
    # both bounds are proven upper bounds on the best k actions
    sub, kind = capacitated_bound(model, sel.chosen, k, lp=False)
    assert kind == "submodular"
    assert sub >= best - 1e-6
    assert sel.bound_population >= best - 1e-6
    assert sel.bound_population <= sub + 1e-6


@pytest.mark.parametrize(("seed", "k"), [(s, k) for s in range(8) for k in (1, 2, 3)])
def test_capacitated_exact_equals_brute_force(seed: int, k: int) -> None:
    model = cap_instance(seed)
    best = cap_brute_force(model, k)
    sel = best_capacitated_sites(model, Options(k=k, exact=True))
    assert sel.method == METHOD_CAP_EXACT
    assert sel.optimal
    assert sel.population_after == pytest.approx(best, abs=1e-6)
    assert sel.bound_population == pytest.approx(best, abs=1e-6)
    assert sel.chosen.size <= k


@pytest.mark.parametrize("seed", range(6))
def test_capacitated_fewest_sites_equals_brute_force(seed: int) -> None:
    model = cap_instance(seed)
    total = float(model.weights.sum())
    reach = cap_brute_force(model, 3)
    target = 0.9 * reach
    fewest = next(
        k
        for k in range(0, 4)
        if any(max_flow(model, s) >= target - 1e-9 for s in feasible_sets(model, k))
    )
    res = solve_capacitated_exact(model, target_population=target, time_limit_s=30)
    assert res.optimal
    assert res.chosen.size == fewest
    assert res.population_covered >= target - 1e-6
    # the recipe: greedy reaches the target share, the MIP may need fewer sites
    sel = best_capacitated_sites(model, Options(target_share=target / total, max_k=10, exact=True))
    assert sel.k == fewest
    assert sel.target_met


def test_capacitated_greedy_takes_existing_load_into_account() -> None:
    """One center (capacity 50) already serves unit 0 (50 residents): a new site there adds nothing."""
    cover = sparse.csr_array(np.array([[1, 0], [1, 0], [0, 1]], dtype=bool))
    model = CapacitatedModel(
        cover, np.array([50.0, 30.0]), np.array([50.0, 100.0, 20.0]), 1, np.array([-1, -1])
    )
    chosen, gains = capacitated_greedy(model, k=1)
    assert chosen.tolist() == [1]  # the site over unit 1, not the bigger one over unit 0
    assert gains.tolist() == [20.0]


# --- capacitated siting with census households: capacity in households ---------------------


def household_instance(seed: int) -> tuple[CapacitatedModel, np.ndarray, np.ndarray]:
    """``cap_instance`` with capacities in households and units of 1-4 persons per household.

    Returns the model (``load`` = households per resident) and, per unit, its
    households and its persons per household (whole numbers, for networkx).
    """
    base = cap_instance(seed)
    rng = np.random.default_rng(500 + seed)
    n_dem = base.weights.size
    households = rng.integers(2, 25, n_dem).astype(float)
    persons = rng.integers(1, 5, n_dem).astype(float)
    model = CapacitatedModel(
        base.cover,
        households * persons,
        np.round(base.capacity / 2.5),
        base.n_existing,
        base.location,
        load=1.0 / persons,
    )
    return model, households, persons


def household_flow(
    model: CapacitatedModel, households: np.ndarray, persons: Any, actions: Any
) -> float:
    """Residents served with capacities in households, by networkx (no HiGHS).

    In households the problem is a transportation problem whose unit edges carry
    ``persons`` residents per household: the maximum flow of least cost (cost
    ``-persons``) is also the one serving the most residents, because an
    augmenting path never lowers the flow into any unit.
    """
    g = nx.DiGraph()
    dense = model.cover.toarray()
    rows = list(range(model.n_existing)) + [model.n_existing + a for a in actions]
    for r in rows:
        g.add_edge("s", ("f", r), capacity=int(model.capacity[r]), weight=0)
        for i in np.flatnonzero(dense[r]):
            g.add_edge(("f", r), ("u", int(i)), weight=0)
    for i, h in enumerate(households):
        g.add_edge(("u", i), "t", capacity=int(h), weight=-int(persons[i]))
    if "s" not in g:
        return 0.0
    flow = nx.max_flow_min_cost(g, "s", "t")
    return float(-nx.cost_of_flow(g, flow))


@pytest.mark.parametrize("seed", range(6))
def test_household_capacity_served_is_the_weighted_flow(seed: int) -> None:
    model, hh, persons = household_instance(seed)
    rng = np.random.default_rng(seed)
    for _ in range(3):
        acts = rng.choice(model.n_actions, size=3, replace=False)
        assert served_population(model, acts) == pytest.approx(
            household_flow(model, hh, persons, acts), abs=1e-6
        )
    assert served_population(model) == pytest.approx(
        household_flow(model, hh, persons, []), abs=1e-6
    )


@pytest.mark.parametrize(("seed", "k"), [(s, k) for s in range(8) for k in (1, 2, 3)])
def test_household_capacity_greedy_exact_and_gap_against_brute_force(seed: int, k: int) -> None:
    model, hh, persons = household_instance(seed)
    best = max(household_flow(model, hh, persons, s) for s in feasible_sets(model, k))
    greedy = best_capacitated_sites(model, Options(k=k))
    assert greedy.population_after == pytest.approx(
        household_flow(model, hh, persons, greedy.chosen), abs=1e-6
    )
    assert greedy.population_after <= best + 1e-6
    # the reported gap covers the true distance to the optimum
    assert greedy.bound_population >= best - 1e-6
    sub, _ = capacitated_bound(model, greedy.chosen, k, lp=False)
    assert sub >= best - 1e-6
    exact = best_capacitated_sites(model, Options(k=k, exact=True))
    assert exact.optimal
    assert exact.population_after == pytest.approx(best, abs=1e-6)
    assert exact.bound_population == pytest.approx(best, abs=1e-6)


@pytest.mark.parametrize(("seed", "k"), [(s, k) for s in range(10) for k in (1, 2, 3)])
def test_capacitated_gap_is_a_true_gap(seed: int, k: int) -> None:
    """The reported gap (bound − served) is never smaller than optimum − served, by brute force."""
    model = cap_instance(seed + 40, n_loc=6)
    best = cap_brute_force(model, k)
    for lp in (False, True):
        sel = best_capacitated_sites(model, Options(k=k, lp_bound=lp))
        assert sel.population_after == pytest.approx(max_flow(model, sel.chosen), abs=1e-6)
        gap = sel.bound_population - sel.population_after
        assert gap >= best - sel.population_after - 1e-6
        assert sel.bound_population <= model.weights.sum() + 1e-6


def test_capacitated_greedy_has_no_ratio_of_its_own() -> None:
    """The residual rule keeps the baseline flow; where that flow uses the wrong center, it is fooled.

    Center E (capacity 10) covers units a and b (10 residents each); a maximum flow
    of E alone may serve a. Action X (capacity 10) covers only a, action Y
    (capacity 1) only b. From that flow the rule sees X as worthless and opens Y:
    11 served, where X (E rerouted to b) serves 20, i.e. 0.55 of the optimum,
    below 1 - 1/e. The bound, not the greedy, is the proof: the reported gap
    covers the optimum.
    """
    cover = sparse.csr_array(np.array([[1, 1], [1, 0], [0, 1]], dtype=bool))
    model = CapacitatedModel(
        cover, np.array([10.0, 10.0]), np.array([10.0, 10.0, 1.0]), 1, np.array([-1, -1])
    )
    best = cap_brute_force(model, 1)
    assert best == 20.0
    chosen, gains = capacitated_greedy(model, k=1, residual0=np.array([0.0, 10.0]))
    assert chosen.tolist() == [1]
    assert gains.tolist() == [1.0]
    served = served_population(model, chosen)
    assert served == pytest.approx(11.0)
    assert served < (1 - 1 / math.e) * best
    bound, _ = capacitated_bound(model, chosen, 1, lp=False)
    assert bound >= best - 1e-9
    sel = best_capacitated_sites(model, Options(k=1))
    assert sel.bound_population >= best - 1e-9


@pytest.mark.parametrize("seed", range(4))
def test_served_residents_are_submodular_by_brute_force(seed: int) -> None:
    """The bound's premise, checked by networkx: f(A + x) - f(A) >= f(B + x) - f(B) for A ⊆ B.

    Served residents (a maximum flow; with household capacities a weighted one) are a
    monotone submodular function of the open actions; the greedy's residual rule is not
    this function's greedy, which is why it has no ratio of its own.
    """
    rng = np.random.default_rng(900 + seed)
    plain = cap_instance(seed)
    loaded, hh, persons = household_instance(seed)
    cases = [
        (plain, lambda acts: max_flow(plain, acts)),
        (loaded, lambda acts: household_flow(loaded, hh, persons, acts)),
    ]
    for model, f in cases:
        for _ in range(12):
            b = rng.choice(model.n_actions, size=4, replace=False)
            a = b[: rng.integers(0, 4)]
            x = int(rng.choice(np.setdiff1d(np.arange(model.n_actions), b)))
            fa, fb = f(list(a)), f(list(b))
            assert fb >= fa - 1e-9  # monotone
            assert f([*a, x]) - fa >= f([*b, x]) - fb - 1e-9  # diminishing returns


@pytest.mark.parametrize("seed", range(6))
def test_float_row_blocks_give_the_bits_of_the_float_matrix(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # blocks of one row each (a nonzero per block at most) up to the whole matrix in one block
    import coverage.optimize as optimize

    cover, w, c0 = random_instance(seed, n_cand=40, n_dem=60, density=0.1)
    dense = cover.toarray()
    dense[[3, 17]] = False  # rows that cover nobody
    cover = sparse.csr_array(dense)
    x = np.random.default_rng(seed).random(60) * 1e3
    whole = cover.astype(np.float64) @ x
    picks = []
    for block_nnz in (1, 7, 1 << 22):
        monkeypatch.setattr(optimize, "_FLOAT_BLOCK_NNZ", block_nnz)
        np.testing.assert_array_equal(optimize._row_sums(cover, x), whole)
        sel = best_sites(cover, w, Options(k=4), covered0=c0)
        picks.append((list(sel.chosen), list(sel.cumulative_population), sel.bound_population))
    assert picks[0] == picks[1] == picks[2]
    assert picks[0][1][-1] >= (1 - 1 / math.e) * brute_force(cover, w, c0, 4) - 1e-9
