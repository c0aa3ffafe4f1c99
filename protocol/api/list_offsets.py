"""ListOffsets: look up offsets by timestamp, earliest or latest (API key 2).

Declared field by field from Kafka's message schemas
(apache/kafka 1eb7644, clients/src/main/resources/common/message/):
ListOffsetsRequest.json, ListOffsetsResponse.json
"""

from protocol.schema import Field, Message

ListOffsetsRequest = Message(
    api_key=2,
    name="ListOffsetsRequest",
    valid_versions="0-10",
    flexible_versions="6+",
    fields=[
        Field("ReplicaId", "int32"),
        Field("IsolationLevel", "int8", "2+"),
        Field(
            "Topics",
            "[]ListOffsetsTopic",
            fields=[
                Field("Name", "string"),
                Field(
                    "Partitions",
                    "[]ListOffsetsPartition",
                    fields=[
                        Field("PartitionIndex", "int32"),
                        Field("CurrentLeaderEpoch", "int32", "4+", default=-1, ignorable=True),
                        Field("Timestamp", "int64"),
                        Field("MaxNumOffsets", "int32", "0", default=1),
                    ],
                ),
            ],
        ),
        Field("TimeoutMs", "int32", "10+", ignorable=True),
    ],
)

ListOffsetsResponse = Message(
    api_key=2,
    name="ListOffsetsResponse",
    valid_versions="0-10",
    flexible_versions="6+",
    fields=[
        Field("ThrottleTimeMs", "int32", "2+", ignorable=True),
        Field(
            "Topics",
            "[]ListOffsetsTopicResponse",
            fields=[
                Field("Name", "string"),
                Field(
                    "Partitions",
                    "[]ListOffsetsPartitionResponse",
                    fields=[
                        Field("PartitionIndex", "int32"),
                        Field("ErrorCode", "int16"),
                        Field("OldStyleOffsets", "[]int64", "0"),
                        Field("Timestamp", "int64", "1+", default=-1),
                        Field("Offset", "int64", "1+", default=-1),
                        Field("LeaderEpoch", "int32", "4+", default=-1),
                    ],
                ),
            ],
        ),
    ],
)
