"""The trio shell (GroupService) over a real Broker's logs, on trio's autojump clock.

No sockets: handlers are called as the dispatcher calls them. Timers (the
initial rebalance delay, session expiry) run in virtual time, so these take
milliseconds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from broker.coordinator import OFFSETS_TOPIC, GroupConfig
from broker.server.api_groups import GroupService, partition_for
from broker.server.broker import Broker, serve_broker
from protocol.api import ApiKey
from protocol.errors import ErrorCode
from protocol.headers import RequestHeader
from protocol.schema import Data
from tests.server.conftest import make_config

GROUP_CONFIG = GroupConfig(initial_rebalance_delay_ms=3000, offsets_topic_num_partitions=4)


def _virtual_ms() -> int:
    return int(trio.current_time() * 1000)


@asynccontextmanager
async def group_service(tmp_path) -> AsyncIterator[tuple[Broker, GroupService]]:
    """A served broker (no client is connected) whose GroupService runs on trio's clock."""
    broker = Broker(make_config(tmp_path))
    service = broker.groups = GroupService(broker, GROUP_CONFIG, clock=_virtual_ms)
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_broker, broker)
        yield broker, service
        nursery.cancel_scope.cancel()


async def call(service: GroupService, api: int, version: int, **body: Any) -> dict[str, Any]:
    """One request through the handler table; awaits a delayed answer."""
    header = RequestHeader(api, version, 1, "test-client", 1)
    result = service.handlers()[api](header, Data(body))
    return result if isinstance(result, dict) else await result()


async def join_when_loaded(service: GroupService, **body: Any) -> dict[str, Any]:
    """JoinGroup, retrying while the coordinator loads (what clients do)."""
    with trio.fail_after(10):
        while True:
            reply = await call(service, ApiKey.JOIN_GROUP, 3, **body)
            if reply["error_code"] != ErrorCode.COORDINATOR_LOAD_IN_PROGRESS:
                return reply
            await trio.sleep(0.1)  # poll: waiting on a condition, bounded by a deadline


JOIN = {
    "group_id": "g",
    "session_timeout_ms": 10000,
    "rebalance_timeout_ms": 60000,
    "member_id": "",
    "protocol_type": "consumer",
    "protocols": [{"name": "range", "metadata": b"sub"}],
}


async def test_find_coordinator_creates_the_offsets_topic(tmp_path, autojump_clock) -> None:
    async with group_service(tmp_path) as (broker, service):
        assert await call(service, ApiKey.JOIN_GROUP, 3, **JOIN) == {
            "error_code": ErrorCode.NOT_COORDINATOR,
            "generation_id": -1,
            "protocol_name": "",
            "leader": "",
            "member_id": "",
            "members": [],
        }
        found = await call(service, ApiKey.FIND_COORDINATOR, 1, key="g", key_type=0)
        assert (found["error_code"], found["node_id"]) == (ErrorCode.NONE, broker.node_id)
        assert (found["host"], found["port"]) == broker.advertised
        topic = broker.metadata.image.topic(OFFSETS_TOPIC)
        assert topic.configs["retention.ms"] == "-1" and len(topic.partitions) == 4
        with trio.fail_after(10):  # the broker's replicas follow the image, then we do
            while sorted(service.coordinators) != [0, 1, 2, 3]:
                await trio.sleep(0.01)  # poll: waiting on a condition, bounded by a deadline
        txn = await call(service, ApiKey.FIND_COORDINATOR, 1, key="tx", key_type=1)
        assert txn["error_code"] == ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED


async def test_join_waits_out_the_initial_delay_then_commits_survive_restart(
    tmp_path, autojump_clock
) -> None:
    async with group_service(tmp_path) as (broker, service):
        await call(service, ApiKey.FIND_COORDINATOR, 0, key="g")
        start = trio.current_time()
        joined = await join_when_loaded(service, **JOIN)
        assert joined["generation_id"] == 1
        assert trio.current_time() - start >= GROUP_CONFIG.initial_rebalance_delay_ms / 1000
        member = joined["member_id"]
        synced = await call(
            service,
            ApiKey.SYNC_GROUP,
            3,
            group_id="g",
            generation_id=1,
            member_id=member,
            assignments=[{"member_id": member, "assignment": b"all"}],
        )
        assert synced["assignment"] == b"all"
        commit = await call(
            service,
            ApiKey.OFFSET_COMMIT,
            7,
            group_id="g",
            generation_id_or_member_epoch=1,
            member_id=member,
            topics=[{"name": "t", "partitions": [{"partition_index": 0, "committed_offset": 17}]}],
        )
        assert commit["topics"][0]["partitions"][0]["error_code"] == ErrorCode.NONE
        partition = broker.replicas.get(OFFSETS_TOPIC, partition_for("g", 4))
        assert partition.log.log_end_offset == 2  # the group's metadata, then the commit
    async with group_service(tmp_path) as (broker, service):
        with trio.fail_after(10):
            index = partition_for("g", 4)
            while index not in service.coordinators or service.coordinators[index].loading:
                await trio.sleep(0.01)  # poll: waiting on a condition, bounded by a deadline
        fetched = await call(service, ApiKey.OFFSET_FETCH, 5, group_id="g", topics=None)
        assert fetched["topics"] == [
            {
                "name": "t",
                "partitions": [
                    {
                        "partition_index": 0,
                        "committed_offset": 17,
                        "committed_leader_epoch": -1,
                        "metadata": "",
                        "error_code": ErrorCode.NONE,
                    }
                ],
            }
        ]
        described = await call(service, ApiKey.DESCRIBE_GROUPS, 4, groups=["g", "other"])
        assert [g["group_state"] for g in described["groups"]] == ["Stable", "Dead"]
        await trio.sleep(11)  # the member stopped heartbeating with the old broker
        described = await call(service, ApiKey.DESCRIBE_GROUPS, 4, groups=["g"])
        assert described["groups"][0]["group_state"] == "Empty"
        listed = await call(service, ApiKey.LIST_GROUPS, 2)
        assert [(g["group_id"], g["protocol_type"]) for g in listed["groups"]] == [
            ("g", "consumer")
        ]
