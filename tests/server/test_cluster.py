"""Three brokers in one process, each a controller voter (the dev cluster's shape):
quorum, registration, replication with acks=all, ISR changes, leader failover."""

import socket
from contextlib import asynccontextmanager
from dataclasses import replace

import trio

from broker.config import BrokerConfig
from broker.server.broker import Broker, serve_broker
from producer.client import connect
from protocol.api import ApiKey
from protocol.errors import ErrorCode
from protocol.records import build_batch, iter_records
from tests.server.test_broker_apis import create_topic, fetch, produce

DEADLINE_S = 60


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def cluster_configs(tmp_path, n=3, learners=0, dedicated=False, **controller) -> list[BrokerConfig]:
    """n voters (broker + controller, or controller only when dedicated) and
    `learners` broker-only nodes after them."""
    total = n + learners
    ports = free_ports(2 * total)
    voters = ",".join(f"{i + 1}@127.0.0.1:{ports[total + i]}" for i in range(n))
    learner_list = ",".join(f"{i + 1}@127.0.0.1:{ports[total + i]}" for i in range(n, total))
    base = BrokerConfig()
    configs = []
    for i in range(total):
        n_ = total
        configs.append(
            replace(
                base,
                broker=replace(base.broker, node_id=i + 1, data_dir=str(tmp_path / f"b{i + 1}")),
                network=replace(base.network, listeners=f"PLAINTEXT://127.0.0.1:{ports[i]}"),
                controller=replace(
                    base.controller,
                    process_roles=(
                        ("controller" if dedicated else "broker,controller") if i < n else "broker"
                    ),
                    quorum_voters=voters,
                    quorum_learners=learner_list,
                    listener=f"127.0.0.1:{ports[n_ + i]}",
                    election_timeout_ms=300,
                    quorum_heartbeat_interval_ms=50,
                    broker_session_timeout_ms=2000,
                    broker_heartbeat_interval_ms=200,
                    **controller,
                ),
                replication=replace(
                    base.replication, replica_lag_time_max_ms=2000, replica_fetch_wait_max_ms=100
                ),
                base_dir=str(tmp_path),
            )
        )
    return configs


class Node:
    def __init__(self, config: BrokerConfig):
        self.config = config
        self.scope: trio.CancelScope | None = None
        self.broker: Broker | None = None

    @property
    def address(self):
        listener = self.config.listeners[0]
        return listener.host, listener.port

    async def start(self, nursery: trio.Nursery) -> None:
        self.broker = Broker(self.config)
        self.scope = trio.CancelScope()

        async def run(task_status=trio.TASK_STATUS_IGNORED):
            with self.scope:
                await serve_broker(self.broker, task_status=task_status)

        nursery.start_soon(run)

    def kill(self) -> None:
        """Stop at once (no controlled shutdown), as a crash would, minus the disk."""
        self.scope.cancel()


@asynccontextmanager
async def running_cluster(tmp_path, learners=0, dedicated=False, **controller):
    configs = cluster_configs(tmp_path, learners=learners, dedicated=dedicated, **controller)
    nodes = [Node(c) for c in configs]
    async with trio.open_nursery() as nursery:
        for node in nodes:
            await node.start(nursery)
        brokers = [n for n in nodes if n.config.is_broker]
        with trio.fail_after(DEADLINE_S):
            while not all(n.broker.lifecycle.unfenced.is_set() for n in brokers):
                await trio.sleep(0.01)  # poll: waiting on a condition, bounded by a deadline
        try:
            yield nodes
        finally:
            nursery.cancel_scope.cancel()


async def wait_for(predicate, what: str):
    with trio.fail_after(DEADLINE_S):
        while not predicate():
            await trio.sleep(0.01)  # poll: waiting on a condition, bounded by a deadline


def partition_state(node: Node, topic: str, index: int = 0):
    return node.broker.plane.image.topic(topic).partitions[index]


async def test_three_brokers_replicate_acks_all_and_agree_byte_for_byte(tmp_path):
    async with running_cluster(tmp_path) as nodes:
        async with connect(*nodes[0].address) as conn:
            body = {"topics": None}
            brokers = (await conn.request(ApiKey.METADATA, body)).brokers
            assert sorted(b.node_id for b in brokers) == [1, 2, 3]
            assert (
                await create_topic(conn, "r3", 1, {"min.insync.replicas": "2"}, factor=3)
                is not None
            )
        topic = "r3"
        await wait_for(lambda: all(n.broker.replicas.get(topic, 0) for n in nodes), "replicas")
        state = partition_state(nodes[0], topic)
        assert len(state.replicas) == 3 and len(state.isr) == 3
        leader = nodes[state.leader - 1]
        async with connect(*leader.address) as conn:
            for i in range(20):
                batch = build_batch([(None, b"m%d" % i, (), 1000)])
                result = await produce(conn, topic, batch, acks=-1)
                assert result.error_code == 0 and result.base_offset == i
            part = await fetch(conn, topic, 0)
            assert [r.value for r in iter_records(part.records)][:3] == [b"m0", b"m1", b"m2"]
        await wait_for(
            lambda: all(n.broker.replicas.get(topic, 0).log.log_end_offset == 20 for n in nodes),
            "followers caught up",
        )
        logs = [bytes(n.broker.replicas.get(topic, 0).log.read(0, 1 << 20).data) for n in nodes]
        assert logs[0] == logs[1] == logs[2]


async def test_leader_failover_elects_an_isr_member_and_keeps_acknowledged_data(tmp_path):
    async with running_cluster(tmp_path) as nodes:
        async with connect(*nodes[0].address) as conn:
            await create_topic(conn, "f", 1, {"min.insync.replicas": "2"}, factor=3)
        await wait_for(lambda: all(n.broker.replicas.get("f", 0) for n in nodes), "replicas")
        state = partition_state(nodes[0], "f")
        old = nodes[state.leader - 1]
        async with connect(*old.address) as conn:
            for i in range(10):
                assert (
                    await produce(conn, "f", build_batch([(None, b"a%d" % i, (), 1)]), acks=-1)
                ).error_code == 0
        old.kill()
        survivors = [n for n in nodes if n is not old]
        await wait_for(
            lambda: (
                partition_state(survivors[0], "f").leader not in (old.config.broker.node_id, -1)
            ),
            "new leader",
        )
        new_state = partition_state(survivors[0], "f")
        assert new_state.leader_epoch > state.leader_epoch
        new_leader = nodes[new_state.leader - 1]
        await wait_for(lambda: new_leader.broker.replicas.get("f", 0).is_leader, "leader role")
        async with connect(*new_leader.address) as conn:
            result = await produce(conn, "f", build_batch([(None, b"after", (), 1)]), acks=-1)
            assert result.error_code == 0 and result.base_offset == 10
            values = [r.value for r in iter_records((await fetch(conn, "f", 0)).records)]
            assert values == [b"a%d" % i for i in range(10)] + [b"after"]


async def test_acks_all_refused_when_isr_below_min(tmp_path):
    async with running_cluster(tmp_path) as nodes:
        async with connect(*nodes[0].address) as conn:
            await create_topic(conn, "m", 1, {"min.insync.replicas": "3"}, factor=3)
        await wait_for(lambda: all(n.broker.replicas.get("m", 0) for n in nodes), "replicas")
        state = partition_state(nodes[0], "m")
        follower = next(n for n in nodes if n.config.broker.node_id != state.leader)
        follower.kill()
        leader = nodes[state.leader - 1]
        await wait_for(lambda: len(partition_state(leader, "m").isr) == 2, "isr shrink")
        async with connect(*leader.address) as conn:
            refused = await produce(conn, "m", build_batch([(None, b"x", (), 1)]), acks=-1)
            assert refused.error_code == ErrorCode.NOT_ENOUGH_REPLICAS
            accepted = await produce(conn, "m", build_batch([(None, b"y", (), 1)]), acks=1)
            assert accepted.error_code == 0


async def test_broker_only_learner_gets_metadata_and_replicas(tmp_path):
    async with running_cluster(tmp_path, learners=1) as nodes:
        learner = nodes[3]
        assert learner.broker.raft.status().role == "learner"
        async with connect(*learner.address) as conn:
            brokers = (await conn.request(ApiKey.METADATA, {"topics": None})).brokers
            assert sorted(b.node_id for b in brokers) == [1, 2, 3, 4]
            assert (await create_topic(conn, "wide", 4, factor=2)).error_code == 0
        await wait_for(lambda: learner.broker.plane.image.topic("wide") is not None, "metadata")
        hosted = [p for p in range(4) if 4 in partition_state(learner, "wide", p).replicas]
        assert hosted, "round-robin placement gives the learner broker some replicas"
        await wait_for(lambda: all(learner.broker.replicas.get("wide", p) for p in hosted), "open")


async def test_dedicated_controllers_and_broker_only_nodes(tmp_path):
    """Three controller-only voters, two broker-only learners: the brokers register,
    replicate and fail over under controllers that host no partitions."""
    async with running_cluster(tmp_path, learners=2, dedicated=True) as nodes:
        controllers, brokers = nodes[:3], nodes[3:]
        assert all(n.broker.replicas.partitions == {} for n in controllers)
        async with connect(*brokers[0].address) as conn:
            metadata = await conn.request(ApiKey.METADATA, {"topics": None})
            assert sorted(b.node_id for b in metadata.brokers) == [4, 5]
            assert metadata.controller_id in (1, 2, 3)
            assert (await create_topic(conn, "d", 1, factor=2)).error_code == 0
        await wait_for(lambda: all(n.broker.replicas.get("d", 0) for n in brokers), "replicas")
        leader = nodes[partition_state(brokers[0], "d").leader - 1]
        async with connect(*leader.address) as conn:
            result = await produce(conn, "d", build_batch([(None, b"x", (), 1)]), acks=-1)
            assert result.error_code == 0
        active = next(n for n in controllers if n.broker.quorum.is_leader)
        active.kill()
        others = [n for n in controllers if n is not active]
        await wait_for(lambda: any(n.broker.quorum.is_leader for n in others), "new quorum leader")
        async with connect(*brokers[0].address) as conn:
            assert (await create_topic(conn, "after", 1, factor=2)).error_code == 0


async def test_replication_throttle_caps_follower_catch_up(tmp_path):
    """With replication_throttle_bytes_per_s set, followers copy no faster than that."""
    rate = 256 * 1024
    configs = cluster_configs(tmp_path)
    throttled = [
        replace(c, replication=replace(c.replication, replication_throttle_bytes_per_s=rate))
        for c in configs
    ]
    nodes = [Node(c) for c in throttled]
    async with trio.open_nursery() as nursery:
        for node in nodes:
            await node.start(nursery)
        await wait_for(lambda: all(n.broker.lifecycle.unfenced.is_set() for n in nodes), "up")
        async with connect(*nodes[0].address) as conn:
            await create_topic(conn, "slow", 1, factor=3)
        await wait_for(lambda: all(n.broker.replicas.get("slow", 0) for n in nodes), "replicas")
        leader = nodes[partition_state(nodes[0], "slow").leader - 1]
        total = 0
        start = trio.current_time()
        async with connect(*leader.address) as conn:
            for i in range(12):  # 12 x 64 KiB = 768 KiB, three seconds' worth at the rate
                batch = build_batch([(None, bytes([i]) * 65536, (), 1)])
                assert (await produce(conn, "slow", batch, acks=1)).error_code == 0
                total += len(batch)
        end = leader.broker.replicas.get("slow", 0).log.log_end_offset
        await wait_for(
            lambda: all(n.broker.replicas.get("slow", 0).log.log_end_offset == end for n in nodes),
            "followers caught up",
        )
        elapsed = trio.current_time() - start
        # one second of burst allowance, then the rate: never faster than that
        assert elapsed >= (total - rate) / rate * 0.9, (elapsed, total)
        nursery.cancel_scope.cancel()


def test_token_bucket_allows_the_rate_with_one_second_of_burst(autojump_clock):
    from broker.server.fetchers import TokenBucket

    async def check():
        bucket = TokenBucket(1000)
        assert bucket.allowance() == 1000
        bucket.spend(1000)
        assert bucket.allowance() == 0
        await trio.sleep(0.5)  # virtual time (autojump clock): elapses at once
        assert 450 <= bucket.allowance() <= 550
        assert TokenBucket(-1).allowance() is None

    trio.run(check, clock=autojump_clock)
