"""A group of three `trilog consume --group` processes over six partitions of a
`trilog dev --brokers 3` cluster, with commits after printing:

1. SIGKILL one consumer: its partitions move to the other two once its session
   (6 s) expires, and nothing is skipped;
2. SIGKILL the broker hosting the group's coordinator: the consumers find the
   new coordinator and resume from the committed offsets (not from the start);
3. every record produced is printed at least once, every partition gap-free.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import pytest
import trio

from consumer.group import find_coordinator
from producer.client import Cluster, ConnectionPool, parse_bootstrap
from tests.clients_groups.conftest import create_topics, produce_values, wait_until
from tests.clients_groups.devcluster import CLI, DevCluster

pytestmark = pytest.mark.clients

PARTITIONS = 6
ROUND = 300
SESSION_TIMEOUT_MS = 6000
HEARTBEAT_MS = SESSION_TIMEOUT_MS // 3  # what `trilog consume` derives
TAKEOVER_S = (SESSION_TIMEOUT_MS + 2 * HEARTBEAT_MS) / 1000 + 3  # + rejoin and one fetch


@dataclass
class Member:
    """One consumer process and the (partition, offset, value, time) lines it printed."""

    process: subprocess.Popen
    log: BinaryIO
    lines: list = field(default_factory=list)
    reader: threading.Thread | None = None

    def read(self) -> None:
        for raw in self.process.stdout:
            where, _, value = raw.rstrip(b"\n").partition(b"\t")
            partition, _, offset = where.partition(b":")
            self.lines.append((int(partition), int(offset), value, time.monotonic()))


def start_member(bootstrap: str, log_path: Path) -> Member:
    log = log_path.open("wb")
    process = subprocess.Popen(
        [*CLI, "consume", "t", "--group", "g", "--from-beginning", "--print-offset",
         "--session-timeout-ms", str(SESSION_TIMEOUT_MS), "-b", bootstrap],
        stdout=subprocess.PIPE,
        stderr=log,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    member = Member(process, log)
    member.reader = threading.Thread(target=member.read, daemon=True)
    member.reader.start()
    return member


def stop(member: Member) -> None:
    member.process.kill()
    member.process.wait(timeout=10)
    if member.reader is not None:
        member.reader.join(timeout=10)
    member.process.stdout.close()
    member.log.close()


def values(tag: str) -> list[bytes]:
    return [f"{tag}-{i}".encode() for i in range(ROUND)]


def printed(members: list[Member], since: float = 0.0) -> set[bytes]:
    return {v for m in members for _, _, v, t in list(m.lines) if t >= since}


async def coordinator_node(cluster: DevCluster) -> int:
    async with trio.open_nursery() as nursery:
        pool = ConnectionPool(nursery)
        meta = Cluster(parse_bootstrap(cluster.bootstrap), pool, allow_auto_topic_creation=False)
        _, port = await find_coordinator(meta, pool, "g", 10000)
        nursery.cancel_scope.cancel()
    return cluster.node_of_port(port)


async def test_consumer_and_coordinator_crashes(tmp_path):
    cluster = DevCluster(tmp_path)
    members: list[Member] = []
    try:
        await cluster.wait_ready()
        await create_topics("127.0.0.1", cluster.port(1), {"t": PARTITIONS}, factor=3)
        await produce_values(cluster.bootstrap, "t", values("a"), PARTITIONS)
        members = [start_member(cluster.bootstrap, tmp_path / f"c{i}.log") for i in range(3)]
        await wait_until(lambda: printed(members) >= set(values("a")), "round a", 90)

        members[0].process.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        await produce_values(cluster.bootstrap, "t", values("b"), PARTITIONS)
        survivors = members[1:]
        await wait_until(lambda: printed(survivors, killed_at) >= set(values("b")), "b", 60)
        took_s = (
            max(t for m in survivors for *_, v, t in m.lines if v.startswith(b"b-")) - killed_at
        )
        assert took_s < TAKEOVER_S, f"partitions moved after {took_s:.1f} s"

        before = {
            p: max(o for m in members for p2, o, *_ in m.lines if p2 == p)
            for p in range(PARTITIONS)
        }
        node = await coordinator_node(cluster)
        cluster.kill(node)
        crashed_at = time.monotonic()
        await produce_values(cluster.bootstrap, "t", values("c"), PARTITIONS)
        await wait_until(lambda: printed(survivors, crashed_at) >= set(values("c")), "c", 90)
        _check_resumed(survivors, before, crashed_at)
        _check_none_skipped(members)
        sys.stderr.write(f"takeover after consumer kill: {took_s:.1f} s\n")
    finally:
        for member in members:
            stop(member)
        cluster.close()


def _check_resumed(survivors: list[Member], before: dict[int, int], since: float) -> None:
    """After the coordinator moved, each partition restarted near its last printed
    offset (its committed offset), not at the start of the log."""
    first_after: dict[int, int] = {}
    for m in survivors:
        for p, o, _, t in list(m.lines):
            if t >= since:
                first_after[p] = min(o, first_after.get(p, o))
    for p, offset in first_after.items():
        assert offset > before[p] - ROUND // PARTITIONS, (p, offset, before[p])


def _check_none_skipped(members: list[Member]) -> None:
    offsets: dict[int, set[int]] = defaultdict(set)
    for m in members:
        for p, o, *_ in list(m.lines):
            offsets[p].add(o)
    per_partition = 3 * ROUND // PARTITIONS
    assert {
        p: sorted(s) == list(range(per_partition)) for p, s in offsets.items()
    } == dict.fromkeys(range(PARTITIONS), True)
    assert printed(members) == set(values("a") + values("b") + values("c"))
