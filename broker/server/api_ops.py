"""Handlers for operator commands: ElectLeaders, AlterPartitionReassignments,
ListPartitionReassignments (forwarded to the active controller), and
DescribeQuorum, DescribeCluster (answered from this node's Raft status and image).

Trilog's one extension to the wire: an ElectLeaders request (v2, flexible) with
election type 2, TO_BROKER, moves leadership to the broker named in the
request's tagged field TARGET_BROKER_TAG (an int32). Kafka knows only types 0
(preferred) and 1 (unclean); any other type, or TO_BROKER without its target,
is answered INVALID_REQUEST. The tag is read from the fields the schema keeps
as unknown, so the declared schema stays Kafka's byte for byte.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from broker.controller.controller import ElectionResult, ElectionType, ToBroker
from broker.server.controller_service import (
    AlterReassignment,
    ControllerReply,
    ElectLeaders,
    ListReassignments,
)
from protocol.api import ApiKey
from protocol.errors import ErrorCode
from protocol.headers import RequestHeader
from protocol.schema import UNKNOWN_TAGGED_FIELDS, Data

if TYPE_CHECKING:
    from broker.server.broker import Broker

log = logging.getLogger(__name__)

ELECTION_TYPE_TO_BROKER = 2
"""Trilog's election type: leadership to the broker named in TARGET_BROKER_TAG."""
TARGET_BROKER_TAG = 10_000
"""Request-level tagged field of ElectLeaders v2+ carrying the target broker (int32)."""
METADATA_TOPIC = "__cluster_metadata"
CONTROLLER_LISTENER = "CONTROLLER"
REQUEST_TIMEOUT_MS_MIN = 1_000
REQUEST_TIMEOUT_MS_MAX = 300_000

Handler = Callable[[RequestHeader, Data], Any]


def handlers(broker: Broker) -> dict[int, Handler]:
    """The operator APIs, bound to broker, for Broker.dispatcher()."""
    return {
        ApiKey.ELECT_LEADERS: lambda h, b: elect_leaders(broker, h, b),
        ApiKey.ALTER_PARTITION_REASSIGNMENTS: lambda h, b: alter_partition_reassignments(
            broker, h, b
        ),
        ApiKey.LIST_PARTITION_REASSIGNMENTS: lambda h, b: list_partition_reassignments(
            broker, h, b
        ),
        ApiKey.DESCRIBE_QUORUM: lambda h, b: describe_quorum(broker, h, b),
        ApiKey.DESCRIBE_CLUSTER: lambda h, b: describe_cluster(broker, h, b),
    }


def target_broker_tag(broker_id: int) -> dict[int, bytes]:
    """The tagged fields a client sets for a TO_BROKER election (CLI side)."""
    return {TARGET_BROKER_TAG: struct.pack(">i", broker_id)}


def _deadline_s(timeout_ms: int) -> float:
    return min(max(timeout_ms, REQUEST_TIMEOUT_MS_MIN), REQUEST_TIMEOUT_MS_MAX) / 1000


async def _ask(broker: Broker, request: Any, deadline_s: float) -> ControllerReply | None:
    """The controller's reply, or None when none came within deadline_s."""
    with trio.move_on_after(deadline_s):
        return await broker.controller_request(request)
    return None


# -- ElectLeaders -------------------------------------------------------------------


def _election(body: Data) -> ElectionType | ToBroker | str:
    """The election a request asks for, or why it is not a valid one."""
    kind = body.get("election_type", ElectionType.PREFERRED.value)  # v0: preferred only
    if kind == ELECTION_TYPE_TO_BROKER:
        raw = (body.get(UNKNOWN_TAGGED_FIELDS) or {}).get(TARGET_BROKER_TAG)
        if raw is None or len(raw) != 4:
            return "election type 2 (trilog TO_BROKER) needs its target broker tag"
        if body.topic_partitions is None:
            return "a TO_BROKER election needs named partitions"
        return ToBroker(struct.unpack(">i", raw)[0])
    try:
        return ElectionType(kind)
    except ValueError:
        return f"unknown election type {kind}"


def _targets(body: Data) -> list[tuple[str, int]] | None:
    if body.topic_partitions is None:
        return None
    wanted = [(t.topic, p) for t in body.topic_partitions for p in t.partitions]
    return list(dict.fromkeys(wanted))


def _election_response(
    results: list[tuple[str, int, int, str | None]], error: ErrorCode = ErrorCode.NONE
) -> dict[str, Any]:
    """(topic, partition, error code, message) rows grouped by topic, in first-seen order."""
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for topic, partition, code, message in results:
        by_topic.setdefault(topic, []).append(
            {"partition_id": partition, "error_code": code, "error_message": message}
        )
    return {
        "error_code": error,
        "replica_election_results": [
            {"topic": topic, "partition_result": rows} for topic, rows in by_topic.items()
        ],
    }


def elect_leaders(broker: Broker, header: RequestHeader, body: Data) -> Any:
    """Preferred, unclean or (trilog) to-broker elections, decided by the controller."""
    election = _election(body)
    targets = _targets(body)
    if isinstance(election, str):
        rows = [(t, p, ErrorCode.INVALID_REQUEST, election) for t, p in targets or ()]
        return _election_response(rows, ErrorCode.INVALID_REQUEST)

    async def forward() -> dict[str, Any]:
        request = ElectLeaders(tuple(targets) if targets is not None else None, election)
        reply = await _ask(broker, request, _deadline_s(body.timeout_ms))
        if reply is None or reply.error != ErrorCode.NONE:
            code = ErrorCode.REQUEST_TIMED_OUT if reply is None else reply.error
            rows = [(t, p, code, "the controller did not answer") for t, p in targets or ()]
            return _election_response(rows, code)
        results: list[ElectionResult] = reply.response
        for result in results:
            if result.data_may_be_lost:
                log.warning(
                    "%s-%d: unclean election of broker %d; data may be lost",
                    result.topic,
                    result.partition,
                    result.leader,
                )
        rows = [(r.topic, r.partition, r.error, r.message) for r in results]
        return _election_response(rows)

    return forward


# -- reassignments ------------------------------------------------------------------


def alter_partition_reassignments(broker: Broker, header: RequestHeader, body: Data) -> Any:
    """Start, redirect or (null replicas) cancel reassignments, one partition at a time."""

    async def forward() -> dict[str, Any]:
        answers: dict[tuple[str, int], tuple[int, str | None]] = {}
        with trio.move_on_after(_deadline_s(body.timeout_ms)):
            for topic in body.topics:
                for item in topic.partitions:
                    target = None if item.replicas is None else tuple(item.replicas)
                    request = AlterReassignment(topic.name, item.partition_index, target)
                    reply = await broker.controller_request(request)
                    answers[topic.name, item.partition_index] = (
                        (reply.response.error, reply.response.message)
                        if reply.error == ErrorCode.NONE
                        else (reply.error, None)
                    )
        timed_out = (ErrorCode.REQUEST_TIMED_OUT, "the controller did not answer in time")
        return {
            "error_code": ErrorCode.NONE,
            "responses": [
                {
                    "name": topic.name,
                    "partitions": [
                        _reassignment_row(
                            item.partition_index,
                            *answers.get((topic.name, item.partition_index), timed_out),
                        )
                        for item in topic.partitions
                    ],
                }
                for topic in body.topics
            ],
        }

    return forward


def _reassignment_row(index: int, code: int, message: str | None) -> dict[str, Any]:
    return {"partition_index": index, "error_code": code, "error_message": message}


def list_partition_reassignments(broker: Broker, header: RequestHeader, body: Data) -> Any:
    """Reassignments in progress, as the active controller sees them."""
    wanted = (
        None
        if body.topics is None
        else {(t.name, p) for t in body.topics for p in t.partition_indexes}
    )

    async def forward() -> dict[str, Any]:
        reply = await _ask(broker, ListReassignments(), _deadline_s(body.timeout_ms))
        if reply is None or reply.error != ErrorCode.NONE:
            code = ErrorCode.REQUEST_TIMED_OUT if reply is None else reply.error
            return {"error_code": code, "error_message": "the controller did not answer"}
        by_topic: dict[str, list[dict[str, Any]]] = {}
        for r in reply.response:
            if wanted is None or (r.topic, r.partition) in wanted:
                by_topic.setdefault(r.topic, []).append(
                    {
                        "partition_index": r.partition,
                        "replicas": list(r.replicas),
                        "adding_replicas": list(r.adding_replicas),
                        "removing_replicas": list(r.removing_replicas),
                    }
                )
        topics = [{"name": name, "partitions": rows} for name, rows in sorted(by_topic.items())]
        return {"error_code": ErrorCode.NONE, "topics": topics}

    return forward


# -- DescribeQuorum, DescribeCluster ------------------------------------------------


def describe_quorum(broker: Broker, header: RequestHeader, body: Data) -> dict[str, Any]:
    """The metadata log's quorum, from the leader's view (Kafka: only the leader answers;
    another voter says NOT_LEADER_OR_FOLLOWER and names the leader it knows)."""
    wanted = [(t.topic_name, p.partition_index) for t in body.topics for p in t.partitions]
    if wanted != [(METADATA_TOPIC, 0)]:
        topics = [
            {
                "topic_name": t.topic_name,
                "partitions": [
                    {
                        "partition_index": p.partition_index,
                        "error_code": ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                        "error_message": f"only {METADATA_TOPIC}-0 has a quorum",
                        "leader_id": -1,
                    }
                    for p in t.partitions
                ],
            }
            for t in body.topics
        ]
        return {"error_code": ErrorCode.INVALID_REQUEST, "topics": topics}
    status = broker.raft.status()
    partition: dict[str, Any] = {
        "partition_index": 0,
        "leader_id": status.leader_id if status.leader_id is not None else -1,
        "leader_epoch": status.term,
        "high_watermark": status.commit_index,
    }
    if status.role != "leader":
        partition["error_code"] = ErrorCode.NOT_LEADER_OR_FOLLOWER
        partition["error_message"] = f"node {broker.node_id} is not the quorum leader"
    else:
        partition.update(_quorum_members(broker, status))
    nodes = [
        {"node_id": v, "listeners": [{"name": CONTROLLER_LISTENER, "host": h, "port": p}]}
        for v, (h, p) in sorted(broker.config.voters.items())
    ]
    topic = {"topic_name": METADATA_TOPIC, "partitions": [partition]}
    return {"error_code": ErrorCode.NONE, "topics": [topic], "nodes": nodes}


def _quorum_members(broker: Broker, status: Any) -> dict[str, list[dict[str, Any]]]:
    """Voters and observers with their log end offsets (the leader's own is its last index)."""
    matched = {f.node_id: f for f in status.followers}
    voters = []
    for voter in sorted(broker.config.voters):
        if voter == status.node_id:
            end = status.last_index
        else:
            end = matched[voter].match_index if voter in matched else -1
        voters.append({"replica_id": voter, "log_end_offset": end})
    observers = [
        {"replica_id": f.node_id, "log_end_offset": f.match_index}
        for f in status.followers
        if f.learner
    ]
    return {"current_voters": voters, "observers": observers}


def describe_cluster(broker: Broker, header: RequestHeader, body: Data) -> dict[str, Any]:
    """Registered brokers (fenced ones too when asked, v2), the cluster id, the controller."""
    endpoint = body.get("endpoint_type", 1)
    if endpoint != 1:
        code = (
            ErrorCode.MISMATCHED_ENDPOINT_TYPE
            if endpoint == 2
            else ErrorCode.UNSUPPORTED_ENDPOINT_TYPE
        )
        return {
            "error_code": code,
            "error_message": f"endpoint type {endpoint}: ask for brokers (1)",
        }
    include_fenced = body.get("include_fenced_brokers", False)
    image = broker.plane.image
    brokers = [
        {
            "broker_id": b,
            "host": reg.listeners[0].host,
            "port": reg.listeners[0].port,
            "rack": reg.rack,
            "is_fenced": reg.fenced,
        }
        for b, reg in sorted(image.brokers.items())
        if reg.listeners and (include_fenced or not reg.fenced)
    ]
    leader = broker.quorum.leader_id
    return {
        "cluster_id": broker.cluster_id,
        "controller_id": leader if leader is not None else -1,
        "brokers": brokers,
    }
