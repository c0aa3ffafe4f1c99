"""The registry of every message trilog can parse: API key -> (request, response).

Declaring a schema here does not mean the broker serves it; the versions the
broker advertises and answers live in protocol/api_versions.py alone.
"""

from __future__ import annotations

from enum import IntEnum

from protocol.api.api_versions import ApiVersionsRequest, ApiVersionsResponse
from protocol.api.configs import DescribeConfigsRequest, DescribeConfigsResponse
from protocol.api.fetch import FetchRequest, FetchResponse
from protocol.api.group_offsets import (
    OffsetCommitRequest,
    OffsetCommitResponse,
    OffsetFetchRequest,
    OffsetFetchResponse,
)
from protocol.api.groups import (
    DeleteGroupsRequest,
    DeleteGroupsResponse,
    DescribeGroupsRequest,
    DescribeGroupsResponse,
    FindCoordinatorRequest,
    FindCoordinatorResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    JoinGroupRequest,
    JoinGroupResponse,
    LeaveGroupRequest,
    LeaveGroupResponse,
    ListGroupsRequest,
    ListGroupsResponse,
    SyncGroupRequest,
    SyncGroupResponse,
)
from protocol.api.leader_epoch import OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse
from protocol.api.list_offsets import ListOffsetsRequest, ListOffsetsResponse
from protocol.api.metadata import MetadataRequest, MetadataResponse
from protocol.api.produce import ProduceRequest, ProduceResponse
from protocol.api.producer_id import InitProducerIdRequest, InitProducerIdResponse
from protocol.api.quorum import (
    DescribeClusterRequest,
    DescribeClusterResponse,
    DescribeQuorumRequest,
    DescribeQuorumResponse,
)
from protocol.api.replicas import (
    AlterPartitionReassignmentsRequest,
    AlterPartitionReassignmentsResponse,
    ElectLeadersRequest,
    ElectLeadersResponse,
    ListPartitionReassignmentsRequest,
    ListPartitionReassignmentsResponse,
)
from protocol.api.topics import (
    CreatePartitionsRequest,
    CreatePartitionsResponse,
    CreateTopicsRequest,
    CreateTopicsResponse,
    DeleteTopicsRequest,
    DeleteTopicsResponse,
)
from protocol.schema import Message


class ApiKey(IntEnum):
    """Kafka's API keys (org.apache.kafka.common.protocol.ApiKeys) that trilog declares."""

    PRODUCE = 0
    FETCH = 1
    LIST_OFFSETS = 2
    METADATA = 3
    OFFSET_COMMIT = 8
    OFFSET_FETCH = 9
    FIND_COORDINATOR = 10
    JOIN_GROUP = 11
    HEARTBEAT = 12
    LEAVE_GROUP = 13
    SYNC_GROUP = 14
    DESCRIBE_GROUPS = 15
    LIST_GROUPS = 16
    API_VERSIONS = 18
    CREATE_TOPICS = 19
    DELETE_TOPICS = 20
    INIT_PRODUCER_ID = 22
    OFFSET_FOR_LEADER_EPOCH = 23
    DESCRIBE_CONFIGS = 32
    CREATE_PARTITIONS = 37
    DELETE_GROUPS = 42
    ELECT_LEADERS = 43
    ALTER_PARTITION_REASSIGNMENTS = 45
    LIST_PARTITION_REASSIGNMENTS = 46
    DESCRIBE_QUORUM = 55
    DESCRIBE_CLUSTER = 60


_PAIRS: tuple[tuple[Message, Message], ...] = (
    (ProduceRequest, ProduceResponse),
    (FetchRequest, FetchResponse),
    (ListOffsetsRequest, ListOffsetsResponse),
    (MetadataRequest, MetadataResponse),
    (OffsetCommitRequest, OffsetCommitResponse),
    (OffsetFetchRequest, OffsetFetchResponse),
    (FindCoordinatorRequest, FindCoordinatorResponse),
    (JoinGroupRequest, JoinGroupResponse),
    (HeartbeatRequest, HeartbeatResponse),
    (LeaveGroupRequest, LeaveGroupResponse),
    (SyncGroupRequest, SyncGroupResponse),
    (DescribeGroupsRequest, DescribeGroupsResponse),
    (ListGroupsRequest, ListGroupsResponse),
    (ApiVersionsRequest, ApiVersionsResponse),
    (CreateTopicsRequest, CreateTopicsResponse),
    (DeleteTopicsRequest, DeleteTopicsResponse),
    (InitProducerIdRequest, InitProducerIdResponse),
    (OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse),
    (DescribeConfigsRequest, DescribeConfigsResponse),
    (CreatePartitionsRequest, CreatePartitionsResponse),
    (DeleteGroupsRequest, DeleteGroupsResponse),
    (ElectLeadersRequest, ElectLeadersResponse),
    (AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse),
    (ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse),
    (DescribeQuorumRequest, DescribeQuorumResponse),
    (DescribeClusterRequest, DescribeClusterResponse),
)

MESSAGES: dict[int, tuple[Message, Message]] = {req.api_key: (req, resp) for req, resp in _PAIRS}
"""API key -> (request schema, response schema)."""

API_NAMES: dict[int, str] = {
    key: req.name.removesuffix("Request") for key, (req, _) in MESSAGES.items()
}
"""API key -> Kafka's API name ("Produce", "Fetch", ...), for logs and errors."""


def request_schema(api_key: int) -> Message:
    """The request schema for ``api_key``; KeyError if it is not declared."""
    return MESSAGES[api_key][0]


def response_schema(api_key: int) -> Message:
    """The response schema for ``api_key``; KeyError if it is not declared."""
    return MESSAGES[api_key][1]
