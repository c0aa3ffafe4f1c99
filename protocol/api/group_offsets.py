"""Committed consumer offsets: OffsetCommit (8), OffsetFetch (9).

Declared field by field from Kafka's message schemas
(apache/kafka 1eb7644, clients/src/main/resources/common/message/):
OffsetCommitRequest.json, OffsetCommitResponse.json
OffsetFetchRequest.json, OffsetFetchResponse.json
"""

from protocol.schema import Field, Message

OffsetCommitRequest = Message(
    api_key=8,
    name="OffsetCommitRequest",
    valid_versions="0-9",
    flexible_versions="8+",
    fields=[
        Field("GroupId", "string"),
        Field("GenerationIdOrMemberEpoch", "int32", "1+", default=-1, ignorable=True),
        Field("MemberId", "string", "1+", ignorable=True),
        Field("GroupInstanceId", "string", "7+", nullable_versions="7+", default=None),
        Field("RetentionTimeMs", "int64", "2-4", default=-1, ignorable=True),
        Field(
            "Topics",
            "[]OffsetCommitRequestTopic",
            fields=[
                Field("Name", "string"),
                Field(
                    "Partitions",
                    "[]OffsetCommitRequestPartition",
                    fields=[
                        Field("PartitionIndex", "int32"),
                        Field("CommittedOffset", "int64"),
                        Field("CommittedLeaderEpoch", "int32", "6+", default=-1, ignorable=True),
                        Field("CommitTimestamp", "int64", "1", default=-1),
                        Field("CommittedMetadata", "string", nullable_versions="0+"),
                    ],
                ),
            ],
        ),
    ],
)

OffsetCommitResponse = Message(
    api_key=8,
    name="OffsetCommitResponse",
    valid_versions="0-9",
    flexible_versions="8+",
    fields=[
        Field("ThrottleTimeMs", "int32", "3+", ignorable=True),
        Field(
            "Topics",
            "[]OffsetCommitResponseTopic",
            fields=[
                Field("Name", "string"),
                Field(
                    "Partitions",
                    "[]OffsetCommitResponsePartition",
                    fields=[
                        Field("PartitionIndex", "int32"),
                        Field("ErrorCode", "int16"),
                    ],
                ),
            ],
        ),
    ],
)

OffsetFetchRequest = Message(
    api_key=9,
    name="OffsetFetchRequest",
    valid_versions="0-9",
    flexible_versions="6+",
    fields=[
        Field("GroupId", "string", "0-7"),
        Field(
            "Topics",
            "[]OffsetFetchRequestTopic",
            "0-7",
            nullable_versions="2-7",
            fields=[
                Field("Name", "string", "0-7"),
                Field("PartitionIndexes", "[]int32", "0-7"),
            ],
        ),
        Field(
            "Groups",
            "[]OffsetFetchRequestGroup",
            "8+",
            fields=[
                Field("GroupId", "string", "8+"),
                Field(
                    "MemberId", "string", "9+", nullable_versions="9+", default=None, ignorable=True
                ),
                Field("MemberEpoch", "int32", "9+", default=-1, ignorable=True),
                Field(
                    "Topics",
                    "[]OffsetFetchRequestTopics",
                    "8+",
                    nullable_versions="8+",
                    fields=[
                        Field("Name", "string", "8+"),
                        Field("PartitionIndexes", "[]int32", "8+"),
                    ],
                ),
            ],
        ),
        Field("RequireStable", "bool", "7+", default=False),
    ],
)

OffsetFetchResponse = Message(
    api_key=9,
    name="OffsetFetchResponse",
    valid_versions="0-9",
    flexible_versions="6+",
    fields=[
        Field("ThrottleTimeMs", "int32", "3+", ignorable=True),
        Field(
            "Topics",
            "[]OffsetFetchResponseTopic",
            "0-7",
            fields=[
                Field("Name", "string", "0-7"),
                Field(
                    "Partitions",
                    "[]OffsetFetchResponsePartition",
                    "0-7",
                    fields=[
                        Field("PartitionIndex", "int32", "0-7"),
                        Field("CommittedOffset", "int64", "0-7"),
                        Field("CommittedLeaderEpoch", "int32", "5-7", default=-1, ignorable=True),
                        Field("Metadata", "string", "0-7", nullable_versions="0-7"),
                        Field("ErrorCode", "int16", "0-7"),
                    ],
                ),
            ],
        ),
        Field("ErrorCode", "int16", "2-7", default=0, ignorable=True),
        Field(
            "Groups",
            "[]OffsetFetchResponseGroup",
            "8+",
            fields=[
                Field("GroupId", "string", "8+"),
                Field(
                    "Topics",
                    "[]OffsetFetchResponseTopics",
                    "8+",
                    fields=[
                        Field("Name", "string", "8+"),
                        Field(
                            "Partitions",
                            "[]OffsetFetchResponsePartitions",
                            "8+",
                            fields=[
                                Field("PartitionIndex", "int32", "8+"),
                                Field("CommittedOffset", "int64", "8+"),
                                Field(
                                    "CommittedLeaderEpoch",
                                    "int32",
                                    "8+",
                                    default=-1,
                                    ignorable=True,
                                ),
                                Field("Metadata", "string", "8+", nullable_versions="8+"),
                                Field("ErrorCode", "int16", "8+"),
                            ],
                        ),
                    ],
                ),
                Field("ErrorCode", "int16", "8+", default=0),
            ],
        ),
    ],
)
