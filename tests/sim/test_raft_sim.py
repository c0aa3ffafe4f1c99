"""Randomized simulation of the controller quorum's Raft: many seeds, each a
whole cluster under faults, then healing and a convergence bound.

A failing seed's report (pytest's summary line) carries the one command that
replays it exactly:
    TRILOG_SIM_SEED=<seed> python -m pytest tests/sim/test_raft_sim.py -k replay
More seeds: TRILOG_SIM_SEEDS=<n> (default run) or `pytest -m soak tests/sim`.
"""

from __future__ import annotations

import pytest

from tests.sim.raft_cluster import run_seed
from tests.sim.seeds import Seeds

SIM = Seeds("TRILOG_SIM", "tests/sim/test_raft_sim.py", run_seed)
SEEDS = SIM.count
CHUNK = 100


@pytest.mark.parametrize("first", range(0, SEEDS, CHUNK), ids=lambda s: f"seeds{s}+")
def test_random_seeds(first: int) -> None:
    SIM.run(range(first, min(first + CHUNK, SEEDS)))


@pytest.mark.soak
def test_random_seeds_soak() -> None:
    SIM.run(range(SEEDS, SEEDS + SIM.soak_count))


def test_replay(caplog: pytest.LogCaptureFixture) -> None:
    """Replays the seed in the environment with a full trace in the captured log."""
    SIM.replay(caplog)


def test_a_seed_reruns_identically() -> None:
    """Same seed, same run: no wall clock, global random or set order leaks in."""
    assert [run_seed(s) for s in range(20, 25)] == [run_seed(s) for s in range(20, 25)]


def test_checkers_catch_a_driver_that_sends_before_persisting() -> None:
    """The invariants are not vacuous: break the persist-before-send rule and
    some seed must produce a violation (a lost vote or a lost acked entry)."""
    violations = SIM.violations(range(100), send_before_persist=True)
    assert violations, "100 seeds with a broken driver and no violation found"
    assert {"MonotonicTerm", "LeaderCompleteness"} & set(violations), violations
