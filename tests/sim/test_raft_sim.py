"""Randomized simulation of the controller quorum's Raft: many seeds, each a
whole cluster under faults, then healing and a convergence bound.

A failing seed's report (pytest's summary line) carries the one command that
replays it exactly:
    TRILOG_SIM_SEED=<seed> python -m pytest tests/sim/test_raft_sim.py -k replay
More seeds: TRILOG_SIM_SEEDS=<n> (default run) or `pytest -m soak tests/sim`.
"""

from __future__ import annotations

import logging
import os

import pytest

from tests.sim.raft_cluster import run_seed
from tests.sim.raft_invariants import InvariantViolation

SEEDS = int(os.environ.get("TRILOG_SIM_SEEDS", "1000"))
SOAK_SEEDS = int(os.environ.get("TRILOG_SIM_SOAK_SEEDS", "20000"))
CHUNK = 100


def replay_command(seed: int) -> str:
    return f"TRILOG_SIM_SEED={seed} python -m pytest tests/sim/test_raft_sim.py -k replay"


def run_seeds(seeds: range) -> None:
    for seed in seeds:
        try:
            run_seed(seed)
        except Exception as exc:
            pytest.fail(f"seed {seed}: {exc}\nreplay: {replay_command(seed)}", pytrace=False)


@pytest.mark.parametrize("first", range(0, SEEDS, CHUNK), ids=lambda s: f"seeds{s}+")
def test_random_seeds(first: int) -> None:
    run_seeds(range(first, min(first + CHUNK, SEEDS)))


@pytest.mark.soak
def test_random_seeds_soak() -> None:
    run_seeds(range(SEEDS, SEEDS + SOAK_SEEDS))


def test_replay(caplog: pytest.LogCaptureFixture) -> None:
    """Replays TRILOG_SIM_SEED with a full trace in the captured log."""
    seed = os.environ.get("TRILOG_SIM_SEED")
    if seed is None:
        pytest.skip("set TRILOG_SIM_SEED to replay a seed")
    caplog.set_level(logging.DEBUG)
    assert run_seed(int(seed)).seed == int(seed)


def test_a_seed_reruns_identically() -> None:
    """Same seed, same run: no wall clock, global random or set order leaks in."""
    assert [run_seed(s) for s in range(20, 25)] == [run_seed(s) for s in range(20, 25)]


def test_checkers_catch_a_driver_that_sends_before_persisting() -> None:
    """The invariants are not vacuous: break the persist-before-send rule and
    some seed must produce a violation (a lost vote or a lost acked entry)."""
    violations = []
    for seed in range(100):
        try:
            run_seed(seed, send_before_persist=True)
        except InvariantViolation as exc:
            violations.append(exc.invariant)
    assert violations, "100 seeds with a broken driver and no violation found"
    assert {"MonotonicTerm", "LeaderCompleteness"} & set(violations), violations
