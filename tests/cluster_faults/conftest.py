"""Fixtures for multi-process fault tests: a `DevCluster` of 3 (or more) broker processes.

`cluster_factory(**kwargs)` starts a DevCluster (tests/cluster_faults/cluster.py) under the
test's tmp_path and returns it once every broker answers Metadata listing all of them.
Every process it started is SIGKILLed by PID and process group when the test ends, however
it ends; a broker stack trace in any log fails the test at teardown. The brokers' logs stay in
tmp_path (dev.log, broker-<i>/broker.log) for a look after a failure. TRILOG_BROKER_SRC=DIR
runs the brokers from another checkout (A/B runs, or a fix under review).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cluster_faults.cluster import DevCluster


def assert_no_traceback(cluster: DevCluster) -> None:
    text = cluster.logs()
    at = text.find("Traceback")
    excerpt = text[max(at - 2000, 0) : at + 4000]
    assert at < 0, f"a broker logged {text.count('Traceback')} stack trace(s):\n{excerpt}"


@pytest.fixture
def cluster_factory(tmp_path: Path) -> Iterator[Callable[..., DevCluster]]:
    made: list[DevCluster] = []

    def make(**kwargs: object) -> DevCluster:
        kwargs.setdefault("src", os.environ.get("TRILOG_BROKER_SRC") or None)
        cluster = DevCluster(tmp_path / f"cluster{len(made)}", **kwargs)
        made.append(cluster)
        cluster.start()
        return cluster

    try:
        yield make
    finally:
        for cluster in made:
            cluster.close()
    for cluster in made:
        assert_no_traceback(cluster)


@pytest.fixture
def dev_cluster(cluster_factory: Callable[..., DevCluster]) -> DevCluster:
    """`trilog dev --brokers 3` on free ports (session timeout 1.5 s, RF 3, min ISR 2)."""
    return cluster_factory()
