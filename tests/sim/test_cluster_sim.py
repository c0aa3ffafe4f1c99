"""Randomized simulation of a whole cluster (metadata quorum, controller, brokers,
partition replication, producers): many seeds, each under faults, then healing
and a convergence bound. Invariants run after every step.

A failing seed's report (pytest's summary line) carries the one command that
replays it exactly, with a full trace in the captured log:
    TRILOG_CLUSTER_SEED=<seed> python -m pytest tests/sim/test_cluster_sim.py -k replay
More seeds: TRILOG_CLUSTER_SEEDS=<n> (default run) or `pytest -m soak tests/sim`.
"""

from __future__ import annotations

import pytest

from tests.sim.cluster_sim import run_seed
from tests.sim.seeds import Seeds

SIM = Seeds("TRILOG_CLUSTER", "tests/sim/test_cluster_sim.py", run_seed, soak_default=5000)
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
    """Same seed, same run (the digest covers every delivered message and its time):
    no wall clock, global random or set order leaks in."""
    first = [run_seed(s) for s in range(40, 45)]
    assert first == [run_seed(s) for s in range(40, 45)]
    assert len({r.digest for r in first}) == len(first)


def test_checkers_catch_acks_all_completed_on_local_append() -> None:
    """The invariants are not vacuous: a leader that answers acks=all once the
    record is in its own log loses acknowledged records when it fails."""
    found = SIM.violations(range(40), ack_on_local_append=True)
    assert "AckedNeverLost" in found, found


def test_checkers_catch_followers_that_skip_truncation() -> None:
    """A follower that fetches without the OffsetForLeaderEpoch truncation keeps a
    divergent suffix below the high watermark (KIP-101)."""
    found = SIM.violations(range(60), skip_truncation=True)
    assert "ReplicasAgreeBelowHW" in found, found
