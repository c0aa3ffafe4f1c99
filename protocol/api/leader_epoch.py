"""OffsetForLeaderEpoch: end offset of a leader epoch, for follower truncation (API key 23).

Declared field by field from Kafka's message schemas
(apache/kafka 1eb7644, clients/src/main/resources/common/message/):
OffsetForLeaderEpochRequest.json, OffsetForLeaderEpochResponse.json
"""

from protocol.schema import Field, Message

OffsetForLeaderEpochRequest = Message(
    api_key=23,
    name="OffsetForLeaderEpochRequest",
    valid_versions="0-4",
    flexible_versions="4+",
    fields=[
        Field("ReplicaId", "int32", "3+", default=-2, ignorable=True),
        Field(
            "Topics",
            "[]OffsetForLeaderTopic",
            fields=[
                Field("Topic", "string"),
                Field(
                    "Partitions",
                    "[]OffsetForLeaderPartition",
                    fields=[
                        Field("Partition", "int32"),
                        Field("CurrentLeaderEpoch", "int32", "2+", default=-1, ignorable=True),
                        Field("LeaderEpoch", "int32"),
                    ],
                ),
            ],
        ),
    ],
)

OffsetForLeaderEpochResponse = Message(
    api_key=23,
    name="OffsetForLeaderEpochResponse",
    valid_versions="0-4",
    flexible_versions="4+",
    fields=[
        Field("ThrottleTimeMs", "int32", "2+", ignorable=True),
        Field(
            "Topics",
            "[]OffsetForLeaderTopicResult",
            fields=[
                Field("Topic", "string"),
                Field(
                    "Partitions",
                    "[]EpochEndOffset",
                    fields=[
                        Field("ErrorCode", "int16"),
                        Field("Partition", "int32"),
                        Field("LeaderEpoch", "int32", "1+", default=-1, ignorable=True),
                        Field("EndOffset", "int64", default=-1),
                    ],
                ),
            ],
        ),
    ],
)
