"""Process faults against a real 3-broker cluster (`trilog dev`), checked with real clients.

Each test starts its own cluster (about 2 s), injects SIGKILL / SIGSTOP / SIGCONT by PID and
checks the invariants of shared/ARCHITECTURE.md from outside: Metadata (leader, ISR,
controller), what confluent-kafka acknowledged, what a consumer reads back, and the replicas'
segment files byte for byte. The long variants are marked soak (pytest -m soak).
"""

from __future__ import annotations

import logging
import time

import pytest

from broker.dev import DEV_CONTROLLER
from protocol.errors import ErrorCode
from tests.cluster_faults.clients import (
    SeqProducer,
    check_acked_present_once_in_order,
    fetch_raw,
    produce_raw,
    read_partition,
    read_partition_raw,
    seq_of,
)
from tests.cluster_faults.cluster import DevCluster, wait_until

pytestmark = pytest.mark.clients

SESSION_TIMEOUT_S = DEV_CONTROLLER["broker_session_timeout_ms"] / 1000
# fencing, election and metadata propagation on a loaded 2-core machine
FAILOVER_SLACK_S = 4.0
CATCH_UP_DEADLINE_S = 60.0
TOPIC_CONFIG = {"min.insync.replicas": "2"}


def others(cluster: DevCluster, *excluded: int) -> list[int]:
    return [i for i in cluster.live() if i not in excluded]


def wait_new_leader(cluster: DevCluster, topic: str, old: int, via: int, partition: int = 0) -> int:
    """The new leader of the partition as broker `via` sees it, once it is not `old`."""

    def moved() -> int:
        leader = cluster.leader_of(topic, partition, via=via)
        return leader if leader not in (-1, old) else 0

    return wait_until(
        moved, SESSION_TIMEOUT_S + FAILOVER_SLACK_S, f"{topic}: a leader other than {old}"
    )


def wait_logs_identical(
    cluster: DevCluster, topic: str, brokers: list[int], partition: int = 0
) -> bytes:
    """Until every broker in `brokers` holds the same non-empty segment bytes; those bytes."""

    def identical() -> bytes | None:
        files = [cluster.segment_files(i, topic, partition) for i in brokers]
        sizes = {sum(p.stat().st_size for p in paths) for paths in files}
        if len(sizes) != 1 or 0 in sizes:
            return None
        logs = {cluster.log_bytes(i, topic, partition) for i in brokers}
        return logs.pop() if len(logs) == 1 else None

    return wait_until(
        identical, CATCH_UP_DEADLINE_S, f"{topic}-0 byte-identical on brokers {brokers}"
    )


def test_replicas_are_byte_identical_after_100k_acks_all(dev_cluster: DevCluster) -> None:
    topic = "identical"
    dev_cluster.create_topic(topic, 1, 3, TOPIC_CONFIG)
    producer = SeqProducer(
        dev_cluster.bootstrap(),
        topic,
        config={"linger.ms": 5, "batch.num.messages": 10_000, "enable.idempotence": False},
    )
    for _ in range(100_000):
        producer.send()
        if producer.sent % 1000 == 0:
            producer.poll(0)
    assert producer.flush(120) == 0
    assert not producer.errors
    assert len(producer.acked) == 100_000

    data = wait_logs_identical(dev_cluster, topic, dev_cluster.ids)
    assert len(data) >= 100_000 * 100
    assert max(a.offset for a in producer.acked.values()) == 99_999


def test_killed_follower_leaves_isr_and_rejoins_after_restart(dev_cluster: DevCluster) -> None:
    topic = "follower"
    dev_cluster.create_topic(topic, 1, 3, TOPIC_CONFIG)
    leader = dev_cluster.leader_of(topic)
    controller = dev_cluster.controller_id()
    follower = next(i for i in others(dev_cluster, leader) if i != controller)
    producer = SeqProducer(dev_cluster.bootstrap(), topic)
    producer.run(1.0, rate=500)

    t_kill = dev_cluster.kill(follower)
    wait_until(
        lambda: follower not in dev_cluster.partition_view(topic, via=leader).isr,
        SESSION_TIMEOUT_S + FAILOVER_SLACK_S,
        f"broker {follower} out of the ISR",
    )
    shrunk_after_s = time.monotonic() - t_kill
    producer.run(2.0, rate=500)  # acks=all goes on with the ISR at min.insync.replicas
    assert producer.flush(30) == 0
    assert not producer.errors
    assert len(producer.acked) == producer.sent
    assert shrunk_after_s < SESSION_TIMEOUT_S + FAILOVER_SLACK_S

    dev_cluster.restart(follower)
    wait_until(
        lambda: follower in dev_cluster.partition_view(topic, via=leader).isr,
        CATCH_UP_DEADLINE_S,
        f"broker {follower} back in the ISR",
    )
    wait_logs_identical(dev_cluster, topic, [leader, follower])
    dev_cluster.check_alive()


def test_two_replicas_down_refuses_acks_all_but_takes_acks_1(cluster_factory) -> None:
    """Five brokers so the controller quorum (3 of 5) outlives two dead replicas: with all
    three voters in a 3-node cluster, two dead replicas would also stop the controller and the
    ISR could never shrink (as in KRaft)."""
    cluster = cluster_factory(brokers=5)
    topic = "nonenough"
    cluster.create_topic(topic, 1, 3, TOPIC_CONFIG)
    view = cluster.partition_view(topic)
    leader = view.leader
    followers = [r for r in view.replicas if r != leader]
    for follower in followers:
        cluster.kill(follower)
    wait_until(
        lambda: cluster.partition_view(topic, via=leader).isr == (leader,),
        SESSION_TIMEOUT_S + 2 * FAILOVER_SLACK_S,
        f"ISR down to the leader {leader}",
    )
    port = cluster.port(leader)

    refused = produce_raw(port, topic, 0, acks=-1, values=[b"all"])
    assert refused.error_code == ErrorCode.NOT_ENOUGH_REPLICAS
    taken = produce_raw(port, topic, 0, acks=1, values=[b"one"])
    assert taken.error_code == ErrorCode.NONE and taken.base_offset >= 0

    from confluent_kafka import KafkaError

    strict = SeqProducer(
        cluster.bootstrap(cluster.live()),
        topic,
        config={"enable.idempotence": False, "retries": 0, "message.timeout.ms": 5_000},
    )
    strict.send()
    strict.flush(30)
    assert not strict.acked
    assert strict.errors, "acks=all was acknowledged with one replica in sync"
    assert {code for _, code, _ in strict.errors} == {KafkaError.NOT_ENOUGH_REPLICAS}, strict.errors
    relaxed = SeqProducer(
        cluster.bootstrap(cluster.live()),
        topic,
        config={"enable.idempotence": False, "acks": "1", "message.timeout.ms": 5_000},
    )
    relaxed.send()
    assert relaxed.flush(30) == 0 and len(relaxed.acked) == 1, relaxed.errors
    cluster.check_alive()


def run_leader_kill(cluster: DevCluster, topic: str, seconds: float, kill_at_s: float) -> float:
    """An idempotent acks=all producer at 1,000/s; SIGKILL the partition leader at kill_at_s.
    Checks the failover and the read-back; returns the gap (kill -> first ack after it)."""
    leader = cluster.leader_of(topic)
    start = len(read_partition_raw(cluster.port(leader), topic, 0))  # earlier rounds' records
    producer = SeqProducer(cluster.bootstrap(), topic)
    killed: list[float] = []

    def inject(elapsed_s: float) -> None:
        if not killed and elapsed_s >= kill_at_s:
            killed.append(cluster.kill(leader))

    producer.run(seconds, rate=1000, on_tick=inject)
    survivor = others(cluster, leader)[0]
    new_leader = wait_new_leader(cluster, topic, leader, via=survivor)
    assert producer.flush(60) == 0
    assert not producer.errors, producer.errors[:5]
    assert len(producer.acked) == producer.sent
    gap_s = producer.first_ack_after(killed[0]) - killed[0]
    assert gap_s < SESSION_TIMEOUT_S + FAILOVER_SLACK_S, f"gap {gap_s:.2f} s"

    records = read_partition_raw(cluster.port(new_leader), topic, 0)
    check_acked_present_once_in_order(producer.acked, records, start=start)
    assert len(records) - start == producer.sent
    assert cluster.leader_of(topic, via=new_leader) == new_leader
    return gap_s


def test_leader_kill_idempotent_producer_loses_nothing(dev_cluster: DevCluster) -> None:
    topic = "leaderkill"
    dev_cluster.create_topic(topic, 1, 3, TOPIC_CONFIG)
    run_leader_kill(dev_cluster, topic, seconds=6.0, kill_at_s=1.5)
    dev_cluster.check_alive()


@pytest.mark.soak
def test_leader_kill_restart_rounds(dev_cluster: DevCluster) -> None:
    """Ten rounds of: kill the leader under load, restart it, wait for it to rejoin the ISR."""
    topic = "leaderrounds"
    dev_cluster.create_topic(topic, 1, 3, TOPIC_CONFIG)
    for round_ in range(10):
        leader = dev_cluster.leader_of(topic)
        run_leader_kill(dev_cluster, f"{topic}", seconds=5.0, kill_at_s=1.0 + round_ % 3)
        dev_cluster.restart(leader)
        wait_until(
            lambda leader=leader: leader in dev_cluster.partition_view(topic).isr,
            CATCH_UP_DEADLINE_S,
            f"round {round_}: broker {leader} back in the ISR",
        )
    wait_logs_identical(dev_cluster, topic, dev_cluster.ids)


def test_controller_kill_then_later_broker_failure_is_handled(dev_cluster: DevCluster) -> None:
    topic = "ctrl"
    dev_cluster.create_topic(topic, 3, 3, TOPIC_CONFIG)
    controller = dev_cluster.controller_id()
    assert controller in dev_cluster.ids
    t_kill = dev_cluster.kill(controller)
    survivor = others(dev_cluster, controller)[0]
    new_controller = wait_until(
        lambda: (c := dev_cluster.controller_id(via=survivor)) not in (-1, controller) and c,
        SESSION_TIMEOUT_S + FAILOVER_SLACK_S,
        f"a controller other than {controller}",
    )
    assert time.monotonic() - t_kill < SESSION_TIMEOUT_S + FAILOVER_SLACK_S
    # the old controller's partitions moved too
    for p in range(3):
        wait_until(
            lambda p=p: dev_cluster.leader_of(topic, p, via=survivor) not in (-1, controller),
            SESSION_TIMEOUT_S + FAILOVER_SLACK_S,
            f"{topic}-{p} led by a live broker",
        )

    # Bring it back (two of three voters must stay up), then fail a leader that is not the
    # new controller: the new controller must fence it and move its partitions.
    dev_cluster.restart(controller)
    wait_until(
        lambda: all(
            controller in dev_cluster.partition_view(topic, p, via=new_controller).isr
            for p in range(3)
        ),
        CATCH_UP_DEADLINE_S,
        f"broker {controller} back in every ISR",
    )
    leaders = {dev_cluster.leader_of(topic, p, via=new_controller) for p in range(3)}
    victim = next((b for b in sorted(leaders) if b != new_controller), None)
    if victim is None:  # every partition led by the new controller: fail the other broker
        victim = next(b for b in others(dev_cluster, new_controller))
    led = [p for p in range(3) if dev_cluster.leader_of(topic, p, via=new_controller) == victim]
    dev_cluster.kill(victim)
    for p in led:
        wait_until(
            lambda p=p: dev_cluster.leader_of(topic, p, via=new_controller) not in (-1, victim),
            SESSION_TIMEOUT_S + FAILOVER_SLACK_S,
            f"{topic}-{p} moved off broker {victim}",
        )
    wait_until(
        lambda: all(
            victim not in dev_cluster.partition_view(topic, p, via=new_controller).isr
            for p in range(3)
        ),
        SESSION_TIMEOUT_S + FAILOVER_SLACK_S,
        f"broker {victim} out of every ISR",
    )
    assert dev_cluster.controller_id(via=new_controller) == new_controller
    dev_cluster.check_alive()


def pick_partition(cluster: DevCluster, topic: str, leader_is_controller: bool) -> int | None:
    view = cluster.metadata()
    for p in range(3):
        if (view.partition(topic, p).leader == view.controller_id) == leader_is_controller:
            return p
    return None


def run_sigstop_leader(cluster: DevCluster, topic: str, leader_is_controller: bool) -> None:
    """SIGSTOP a partition leader (that is, or is not, the active controller) past the
    session timeout while an acks=all producer runs, produce through the new leader,
    SIGCONT: the old leader must step down and converge, and every acknowledged value must
    be in the log once."""
    cluster.create_topic(topic, 3, 3, TOPIC_CONFIG)
    p = pick_partition(cluster, topic, leader_is_controller)
    if p is None:
        pytest.skip(f"no partition of {topic} fits leader_is_controller={leader_is_controller}")
    leader = cluster.leader_of(topic, p)
    survivors = others(cluster, leader)
    producer = SeqProducer(cluster.bootstrap(), topic, partition=p)
    producer.run(1.0, rate=500)
    cluster.stop(leader)
    try:
        new_leader = wait_new_leader(cluster, topic, leader, via=survivors[0], partition=p)
        # the new leader takes writes while the old one is frozen with its sockets open
        wait_until(
            lambda: leader not in cluster.partition_view(topic, p, via=new_leader).isr,
            SESSION_TIMEOUT_S + FAILOVER_SLACK_S,
            f"broker {leader} out of the ISR",
        )
        producer.run(2.0, rate=500)
        during = produce_raw(cluster.port(new_leader), topic, p, acks=-1, values=[b"-"])
        assert during.error_code == ErrorCode.NONE
    finally:
        cluster.cont(leader)
    producer.run(2.0, rate=500)
    assert producer.flush(60) == 0
    assert not producer.errors, producer.errors[:5]

    wait_until(
        lambda: cluster.partition_view(topic, p, via=leader).leader == new_leader,
        CATCH_UP_DEADLINE_S,
        f"old leader {leader} follows {new_leader}",
    )
    wait_until(
        lambda: leader in cluster.partition_view(topic, p, via=new_leader).isr,
        CATCH_UP_DEADLINE_S,
        f"broker {leader} back in the ISR",
    )
    wait_logs_identical(cluster, topic, cluster.ids, partition=p)
    records = read_partition_raw(cluster.port(new_leader), topic, p)
    assert [o for o, _ in records] == list(range(len(records)))
    assert sum(1 for _, v in records if v == b"-") == 1
    at = {o: v for o, v in records}
    lost = [
        s
        for s, a in producer.acked.items()
        if at.get(a.offset, b"-")[:1] == b"-" or seq_of(at[a.offset]) != s
    ]
    assert not lost, f"{len(lost)} acknowledged values lost, e.g. {lost[:5]}"
    seqs = [seq_of(v) for _, v in records if v != b"-"]
    assert len(seqs) == len(set(seqs)), "a value is in the log twice"
    cluster.check_alive()


@pytest.mark.parametrize("leader_is_controller", [False, True], ids=["leader", "controller"])
def test_sigstopped_leader_is_fenced_and_converges(
    dev_cluster: DevCluster, leader_is_controller: bool
) -> None:
    run_sigstop_leader(dev_cluster, "stopped", leader_is_controller)


@pytest.mark.soak
def test_sigstop_rounds(dev_cluster: DevCluster) -> None:
    for round_ in range(6):
        run_sigstop_leader(dev_cluster, f"stopped{round_}", leader_is_controller=round_ % 2 == 0)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_consumer_with_rack_reads_from_its_racks_follower(cluster_factory) -> None:
    """Broker i is in rack r<i>; a consumer in the rack of a follower F of the partition
    (the issue's r2 when broker 1 leads) is sent to F by the leader and fetches from it."""
    cluster = cluster_factory(via_dev=False, racks=["r1", "r2", "r3"])
    assert cluster.metadata().brokers == {1: "r1", 2: "r2", 3: "r3"}
    topic = "racks"
    cluster.create_topic(topic, 1, 3, TOPIC_CONFIG)
    leader = cluster.leader_of(topic)
    follower = others(cluster, leader)[0]
    rack = f"r{follower}"
    producer = SeqProducer(cluster.bootstrap(), topic)
    for _ in range(200):
        producer.send()
    assert producer.flush(30) == 0 and len(producer.acked) == 200

    # KIP-392 through our codecs: the leader sends a consumer in the follower's rack there,
    # at once, also to a long poll (librdkafka's max_wait 500 ms, min_bytes 1)
    for max_wait_ms in (0, 500):
        answer = fetch_raw(cluster.port(leader), topic, 0, 0, rack, max_wait_ms=max_wait_ms)
        assert answer.error_code == ErrorCode.NONE
        assert answer.preferred_read_replica == follower, f"max_wait_ms={max_wait_ms}"

    # librdkafka follows that answer: its fetches go to the follower
    collect = _Collect()
    logger = logging.getLogger("cluster_faults.rdkafka")
    logger.setLevel(logging.DEBUG)  # librdkafka's debug=fetch lines arrive at DEBUG
    logger.addHandler(collect)
    logger.propagate = False
    try:
        records = read_partition(
            cluster.bootstrap([leader]),
            topic,
            0,
            200,
            extra={"client.rack": rack, "debug": "fetch", "logger": logger},
        )
    finally:
        logger.removeHandler(collect)
    assert [seq_of(v) for _, v in records] == list(range(200))
    to_follower = f"127.0.0.1:{cluster.port(follower)}/{follower}"
    fetches = [line for line in collect.lines if "Fetch" in line]
    assert any(to_follower in line for line in fetches), "\n".join(fetches[-30:])
    cluster.check_alive()
