"""Randomized simulation of a whole cluster (metadata quorum, controller, brokers,
partition replication, producers): many seeds, each under faults, then healing
and a convergence bound. Invariants run after every step.

A failing seed's report (pytest's summary line) carries the one command that
replays it exactly, with a full trace in the captured log:
    TRILOG_CLUSTER_SEED=<seed> python -m pytest tests/sim/test_cluster_sim.py -k replay
More seeds: TRILOG_CLUSTER_SEEDS=<n> (default run) or `pytest -m soak tests/sim`.
"""

from __future__ import annotations

import logging
import os

import pytest

from tests.sim.cluster_sim import run_seed
from tests.sim.raft_invariants import InvariantViolation

SEEDS = int(os.environ.get("TRILOG_CLUSTER_SEEDS", "1000"))
SOAK_SEEDS = int(os.environ.get("TRILOG_CLUSTER_SOAK_SEEDS", "20000"))
CHUNK = 100


def replay_command(seed: int) -> str:
    return f"TRILOG_CLUSTER_SEED={seed} python -m pytest tests/sim/test_cluster_sim.py -k replay"


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
    """Replays TRILOG_CLUSTER_SEED with a full trace (every message) in the captured log."""
    seed = os.environ.get("TRILOG_CLUSTER_SEED")
    if seed is None:
        pytest.skip("set TRILOG_CLUSTER_SEED to replay a seed")
    caplog.set_level(logging.DEBUG)
    assert run_seed(int(seed)).seed == int(seed)


def test_a_seed_reruns_identically() -> None:
    """Same seed, same run (the digest covers every delivered message and its time):
    no wall clock, global random or set order leaks in."""
    first = [run_seed(s) for s in range(40, 45)]
    assert first == [run_seed(s) for s in range(40, 45)]
    assert len({r.digest for r in first}) == len(first)


def _violations(seeds: range, **variant: bool) -> list[str]:
    found = []
    for seed in seeds:
        try:
            run_seed(seed, **variant)
        except InvariantViolation as exc:
            found.append(exc.invariant)
    return found


def test_checkers_catch_acks_all_completed_on_local_append() -> None:
    """The invariants are not vacuous: a leader that answers acks=all once the
    record is in its own log loses acknowledged records when it fails."""
    found = _violations(range(40), ack_on_local_append=True)
    assert "AckedNeverLost" in found, found


def test_checkers_catch_followers_that_skip_truncation() -> None:
    """A follower that fetches without the OffsetForLeaderEpoch truncation keeps a
    divergent suffix below the high watermark (KIP-101)."""
    found = _violations(range(60), skip_truncation=True)
    assert "ReplicasAgreeBelowHW" in found, found
