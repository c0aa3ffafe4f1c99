"""Reassignment while producing (real processes): 1,2,3 -> 2,3,1 (the preferred leader
changes) and a changed replica set, under an idempotent acks=all producer; no
acknowledged write is lost and the new replicas hold the same bytes."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from tests.cluster_faults.clients import (
    SeqProducer,
    check_acked_present_once_in_order,
    read_partition_raw,
)
from tests.cluster_faults.cluster import DevCluster, wait_until
from tests.cluster_faults.test_faults import TOPIC_CONFIG, wait_logs_identical

pytestmark = pytest.mark.clients

COMMAND_TIMEOUT_S = 120
MOVE_DEADLINE_S = 60


def trilog(cluster: DevCluster, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "broker.cli", *args, "--bootstrap", cluster.bootstrap()],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )


def produce_while(cluster: DevCluster, topic: str, action) -> SeqProducer:
    """Run `action` in a thread while an idempotent acks=all producer sends 1,000/s."""
    producer = SeqProducer(cluster.bootstrap(), topic)
    done = threading.Event()
    failure: list[BaseException] = []

    def run_action() -> None:
        try:
            action()
        except BaseException as exc:  # reported below, in the test's thread
            failure.append(exc)
        finally:
            done.set()

    worker = threading.Thread(target=run_action)
    producer.run(1.0, rate=1000)
    worker.start()
    while not done.is_set():
        producer.run(0.5, rate=1000)
    producer.run(1.0, rate=1000)
    worker.join()
    if failure:
        raise failure[0]
    assert producer.flush(60) == 0
    assert not producer.errors, producer.errors[:5]
    return producer


def reassign_and_wait(cluster: DevCluster, topic: str, replicas: list[int]) -> None:
    text = ",".join(map(str, replicas))
    done = trilog(
        cluster,
        "partition",
        "reassign",
        "--topic",
        topic,
        "--partition",
        "0",
        "--replicas",
        text,
        "--wait",
    )
    assert done.returncode == 0, done.stderr
    wait_until(
        lambda: list(cluster.partition_view(topic).replicas) == replicas,
        MOVE_DEADLINE_S,
        f"{topic}-0 replicas {replicas}",
    )


def test_reorder_then_preferred_election_while_producing(dev_cluster: DevCluster) -> None:
    topic = "reorder"
    dev_cluster.create_topic(topic, 1, 3, TOPIC_CONFIG)
    first = list(dev_cluster.partition_view(topic).replicas)
    target = first[1:] + first[:1]  # 1,2,3 -> 2,3,1

    def move() -> None:
        reassign_and_wait(dev_cluster, topic, target)
        elected = trilog(
            dev_cluster, "leader", "elect", "--topic", topic, "--partition", "0", "--preferred"
        )
        assert elected.returncode == 0, elected.stderr
        wait_until(
            lambda: dev_cluster.leader_of(topic) == target[0],
            MOVE_DEADLINE_S,
            f"leader {target[0]}",
        )

    producer = produce_while(dev_cluster, topic, move)
    records = read_partition_raw(dev_cluster.port(target[0]), topic, 0)
    check_acked_present_once_in_order(producer.acked, records)
    wait_logs_identical(dev_cluster, topic, dev_cluster.ids)


def test_changed_replica_set_while_producing(dev_cluster: DevCluster) -> None:
    topic = "moved"
    dev_cluster.create_topic(topic, 1, 2, {"min.insync.replicas": "1"})
    first = list(dev_cluster.partition_view(topic).replicas)
    spare = next(b for b in dev_cluster.ids if b not in first)
    target = [first[1], spare]  # drop the first replica (the leader), add the spare

    producer = produce_while(
        dev_cluster, topic, lambda: reassign_and_wait(dev_cluster, topic, target)
    )
    leader = dev_cluster.leader_of(topic)
    assert leader in target
    records = read_partition_raw(dev_cluster.port(leader), topic, 0)
    check_acked_present_once_in_order(producer.acked, records)
    wait_logs_identical(dev_cluster, topic, target)
