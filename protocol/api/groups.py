"""Consumer group membership: FindCoordinator (10), JoinGroup (11), Heartbeat (12),
LeaveGroup (13), SyncGroup (14), DescribeGroups (15), ListGroups (16), DeleteGroups (42).

Declared field by field from Kafka's message schemas
(apache/kafka 1eb7644, clients/src/main/resources/common/message/):
FindCoordinatorRequest.json, FindCoordinatorResponse.json
JoinGroupRequest.json, JoinGroupResponse.json
HeartbeatRequest.json, HeartbeatResponse.json
LeaveGroupRequest.json, LeaveGroupResponse.json
SyncGroupRequest.json, SyncGroupResponse.json
DescribeGroupsRequest.json, DescribeGroupsResponse.json
ListGroupsRequest.json, ListGroupsResponse.json
DeleteGroupsRequest.json, DeleteGroupsResponse.json
"""

from protocol.schema import Field, Message

FindCoordinatorRequest = Message(
    api_key=10,
    name="FindCoordinatorRequest",
    valid_versions="0-6",
    flexible_versions="3+",
    fields=[
        Field("Key", "string", "0-3"),
        Field("KeyType", "int8", "1+", default=0),
        Field("CoordinatorKeys", "[]string", "4+"),
    ],
)

FindCoordinatorResponse = Message(
    api_key=10,
    name="FindCoordinatorResponse",
    valid_versions="0-6",
    flexible_versions="3+",
    fields=[
        Field("ThrottleTimeMs", "int32", "1+", ignorable=True),
        Field("ErrorCode", "int16", "0-3"),
        Field("ErrorMessage", "string", "1-3", nullable_versions="1-3", ignorable=True),
        Field("NodeId", "int32", "0-3"),
        Field("Host", "string", "0-3"),
        Field("Port", "int32", "0-3"),
        Field(
            "Coordinators",
            "[]Coordinator",
            "4+",
            fields=[
                Field("Key", "string", "4+"),
                Field("NodeId", "int32", "4+"),
                Field("Host", "string", "4+"),
                Field("Port", "int32", "4+"),
                Field("ErrorCode", "int16", "4+"),
                Field("ErrorMessage", "string", "4+", nullable_versions="4+", ignorable=True),
            ],
        ),
    ],
)

JoinGroupRequest = Message(
    api_key=11,
    name="JoinGroupRequest",
    valid_versions="0-9",
    flexible_versions="6+",
    fields=[
        Field("GroupId", "string"),
        Field("SessionTimeoutMs", "int32"),
        Field("RebalanceTimeoutMs", "int32", "1+", default=-1, ignorable=True),
        Field("MemberId", "string"),
        Field("GroupInstanceId", "string", "5+", nullable_versions="5+", default=None),
        Field("ProtocolType", "string"),
        Field(
            "Protocols",
            "[]JoinGroupRequestProtocol",
            fields=[
                Field("Name", "string"),
                Field("Metadata", "bytes"),
            ],
        ),
        Field("Reason", "string", "8+", nullable_versions="8+", default=None, ignorable=True),
    ],
)

JoinGroupResponse = Message(
    api_key=11,
    name="JoinGroupResponse",
    valid_versions="0-9",
    flexible_versions="6+",
    fields=[
        Field("ThrottleTimeMs", "int32", "2+", ignorable=True),
        Field("ErrorCode", "int16"),
        Field("GenerationId", "int32", default=-1),
        Field("ProtocolType", "string", "7+", nullable_versions="7+", default=None, ignorable=True),
        Field("ProtocolName", "string", nullable_versions="7+"),
        Field("Leader", "string"),
        Field("SkipAssignment", "bool", "9+", default=False),
        Field("MemberId", "string"),
        Field(
            "Members",
            "[]JoinGroupResponseMember",
            fields=[
                Field("MemberId", "string"),
                Field(
                    "GroupInstanceId",
                    "string",
                    "5+",
                    nullable_versions="5+",
                    default=None,
                    ignorable=True,
                ),
                Field("Metadata", "bytes"),
            ],
        ),
    ],
)

HeartbeatRequest = Message(
    api_key=12,
    name="HeartbeatRequest",
    valid_versions="0-4",
    flexible_versions="4+",
    fields=[
        Field("GroupId", "string"),
        Field("GenerationId", "int32"),
        Field("MemberId", "string"),
        Field("GroupInstanceId", "string", "3+", nullable_versions="3+", default=None),
    ],
)

HeartbeatResponse = Message(
    api_key=12,
    name="HeartbeatResponse",
    valid_versions="0-4",
    flexible_versions="4+",
    fields=[
        Field("ThrottleTimeMs", "int32", "1+", ignorable=True),
        Field("ErrorCode", "int16"),
    ],
)

LeaveGroupRequest = Message(
    api_key=13,
    name="LeaveGroupRequest",
    valid_versions="0-5",
    flexible_versions="4+",
    fields=[
        Field("GroupId", "string"),
        Field("MemberId", "string", "0-2"),
        Field(
            "Members",
            "[]MemberIdentity",
            "3+",
            fields=[
                Field("MemberId", "string", "3+"),
                Field("GroupInstanceId", "string", "3+", nullable_versions="3+", default=None),
                Field(
                    "Reason", "string", "5+", nullable_versions="5+", default=None, ignorable=True
                ),
            ],
        ),
    ],
)

LeaveGroupResponse = Message(
    api_key=13,
    name="LeaveGroupResponse",
    valid_versions="0-5",
    flexible_versions="4+",
    fields=[
        Field("ThrottleTimeMs", "int32", "1+", ignorable=True),
        Field("ErrorCode", "int16"),
        Field(
            "Members",
            "[]MemberResponse",
            "3+",
            fields=[
                Field("MemberId", "string", "3+"),
                Field("GroupInstanceId", "string", "3+", nullable_versions="3+"),
                Field("ErrorCode", "int16", "3+"),
            ],
        ),
    ],
)

SyncGroupRequest = Message(
    api_key=14,
    name="SyncGroupRequest",
    valid_versions="0-5",
    flexible_versions="4+",
    fields=[
        Field("GroupId", "string"),
        Field("GenerationId", "int32"),
        Field("MemberId", "string"),
        Field("GroupInstanceId", "string", "3+", nullable_versions="3+", default=None),
        Field("ProtocolType", "string", "5+", nullable_versions="5+", default=None, ignorable=True),
        Field("ProtocolName", "string", "5+", nullable_versions="5+", default=None, ignorable=True),
        Field(
            "Assignments",
            "[]SyncGroupRequestAssignment",
            fields=[
                Field("MemberId", "string"),
                Field("Assignment", "bytes"),
            ],
        ),
    ],
)

SyncGroupResponse = Message(
    api_key=14,
    name="SyncGroupResponse",
    valid_versions="0-5",
    flexible_versions="4+",
    fields=[
        Field("ThrottleTimeMs", "int32", "1+", ignorable=True),
        Field("ErrorCode", "int16"),
        Field("ProtocolType", "string", "5+", nullable_versions="5+", default=None, ignorable=True),
        Field("ProtocolName", "string", "5+", nullable_versions="5+", default=None, ignorable=True),
        Field("Assignment", "bytes"),
    ],
)

DescribeGroupsRequest = Message(
    api_key=15,
    name="DescribeGroupsRequest",
    valid_versions="0-5",
    flexible_versions="5+",
    fields=[
        Field("Groups", "[]string"),
        Field("IncludeAuthorizedOperations", "bool", "3+"),
    ],
)

DescribeGroupsResponse = Message(
    api_key=15,
    name="DescribeGroupsResponse",
    valid_versions="0-5",
    flexible_versions="5+",
    fields=[
        Field("ThrottleTimeMs", "int32", "1+", ignorable=True),
        Field(
            "Groups",
            "[]DescribedGroup",
            fields=[
                Field("ErrorCode", "int16"),
                Field("GroupId", "string"),
                Field("GroupState", "string"),
                Field("ProtocolType", "string"),
                Field("ProtocolData", "string"),
                Field(
                    "Members",
                    "[]DescribedGroupMember",
                    fields=[
                        Field("MemberId", "string"),
                        Field(
                            "GroupInstanceId",
                            "string",
                            "4+",
                            nullable_versions="4+",
                            default=None,
                            ignorable=True,
                        ),
                        Field("ClientId", "string"),
                        Field("ClientHost", "string"),
                        Field("MemberMetadata", "bytes"),
                        Field("MemberAssignment", "bytes"),
                    ],
                ),
                Field("AuthorizedOperations", "int32", "3+", default=-2147483648),
            ],
        ),
    ],
)

ListGroupsRequest = Message(
    api_key=16,
    name="ListGroupsRequest",
    valid_versions="0-5",
    flexible_versions="3+",
    fields=[
        Field("StatesFilter", "[]string", "4+"),
        Field("TypesFilter", "[]string", "5+"),
    ],
)

ListGroupsResponse = Message(
    api_key=16,
    name="ListGroupsResponse",
    valid_versions="0-5",
    flexible_versions="3+",
    fields=[
        Field("ThrottleTimeMs", "int32", "1+", ignorable=True),
        Field("ErrorCode", "int16"),
        Field(
            "Groups",
            "[]ListedGroup",
            fields=[
                Field("GroupId", "string"),
                Field("ProtocolType", "string"),
                Field("GroupState", "string", "4+", ignorable=True),
                Field("GroupType", "string", "5+", ignorable=True),
            ],
        ),
    ],
)

DeleteGroupsRequest = Message(
    api_key=42,
    name="DeleteGroupsRequest",
    valid_versions="0-2",
    flexible_versions="2+",
    fields=[
        Field("GroupsNames", "[]string"),
    ],
)

DeleteGroupsResponse = Message(
    api_key=42,
    name="DeleteGroupsResponse",
    valid_versions="0-2",
    flexible_versions="2+",
    fields=[
        Field("ThrottleTimeMs", "int32"),
        Field(
            "Results",
            "[]DeletableGroupResult",
            fields=[
                Field("GroupId", "string"),
                Field("ErrorCode", "int16"),
            ],
        ),
    ],
)
