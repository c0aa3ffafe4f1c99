"""Fetch requests: read record batches from partitions (API key 1).

Declared field by field from Kafka's message schemas
(apache/kafka 1eb7644, clients/src/main/resources/common/message/):
FetchRequest.json, FetchResponse.json
"""

from protocol.schema import Field, Message

FetchRequest = Message(
    api_key=1,
    name="FetchRequest",
    valid_versions="0-17",
    flexible_versions="12+",
    fields=[
        Field(
            "ClusterId",
            "string",
            "12+",
            nullable_versions="12+",
            default=None,
            tag=0,
            tagged_versions="12+",
            ignorable=True,
        ),
        Field("ReplicaId", "int32", "0-14", default=-1),
        Field(
            "ReplicaState",
            "ReplicaState",
            "15+",
            tag=1,
            tagged_versions="15+",
            fields=[
                Field("ReplicaId", "int32", "15+", default=-1),
                Field("ReplicaEpoch", "int64", "15+", default=-1),
            ],
        ),
        Field("MaxWaitMs", "int32"),
        Field("MinBytes", "int32"),
        Field("MaxBytes", "int32", "3+", default=2147483647, ignorable=True),
        Field("IsolationLevel", "int8", "4+", default=0, ignorable=True),
        Field("SessionId", "int32", "7+", default=0, ignorable=True),
        Field("SessionEpoch", "int32", "7+", default=-1, ignorable=True),
        Field(
            "Topics",
            "[]FetchTopic",
            fields=[
                Field("Topic", "string", "0-12", ignorable=True),
                Field("TopicId", "uuid", "13+", ignorable=True),
                Field(
                    "Partitions",
                    "[]FetchPartition",
                    fields=[
                        Field("Partition", "int32"),
                        Field("CurrentLeaderEpoch", "int32", "9+", default=-1, ignorable=True),
                        Field("FetchOffset", "int64"),
                        Field("LastFetchedEpoch", "int32", "12+", default=-1),
                        Field("LogStartOffset", "int64", "5+", default=-1, ignorable=True),
                        Field("PartitionMaxBytes", "int32"),
                        Field(
                            "ReplicaDirectoryId",
                            "uuid",
                            "17+",
                            tag=0,
                            tagged_versions="17+",
                            ignorable=True,
                        ),
                    ],
                ),
            ],
        ),
        Field(
            "ForgottenTopicsData",
            "[]ForgottenTopic",
            "7+",
            fields=[
                Field("Topic", "string", "7-12", ignorable=True),
                Field("TopicId", "uuid", "13+", ignorable=True),
                Field("Partitions", "[]int32", "7+"),
            ],
        ),
        Field("RackId", "string", "11+", default="", ignorable=True),
    ],
)

FetchResponse = Message(
    api_key=1,
    name="FetchResponse",
    valid_versions="0-17",
    flexible_versions="12+",
    fields=[
        Field("ThrottleTimeMs", "int32", "1+", ignorable=True),
        Field("ErrorCode", "int16", "7+", ignorable=True),
        Field("SessionId", "int32", "7+", default=0),
        Field(
            "Responses",
            "[]FetchableTopicResponse",
            fields=[
                Field("Topic", "string", "0-12", ignorable=True),
                Field("TopicId", "uuid", "13+", ignorable=True),
                Field(
                    "Partitions",
                    "[]PartitionData",
                    fields=[
                        Field("PartitionIndex", "int32"),
                        Field("ErrorCode", "int16"),
                        Field("HighWatermark", "int64"),
                        Field("LastStableOffset", "int64", "4+", default=-1, ignorable=True),
                        Field("LogStartOffset", "int64", "5+", default=-1, ignorable=True),
                        Field(
                            "DivergingEpoch",
                            "EpochEndOffset",
                            "12+",
                            tag=0,
                            tagged_versions="12+",
                            fields=[
                                Field("Epoch", "int32", "12+", default=-1),
                                Field("EndOffset", "int64", "12+", default=-1),
                            ],
                        ),
                        Field(
                            "CurrentLeader",
                            "LeaderIdAndEpoch",
                            "12+",
                            tag=1,
                            tagged_versions="12+",
                            fields=[
                                Field("LeaderId", "int32", "12+", default=-1),
                                Field("LeaderEpoch", "int32", "12+", default=-1),
                            ],
                        ),
                        Field(
                            "SnapshotId",
                            "SnapshotId",
                            "12+",
                            tag=2,
                            tagged_versions="12+",
                            fields=[
                                Field("EndOffset", "int64", default=-1),
                                Field("Epoch", "int32", default=-1),
                            ],
                        ),
                        Field(
                            "AbortedTransactions",
                            "[]AbortedTransaction",
                            "4+",
                            nullable_versions="4+",
                            ignorable=True,
                            fields=[
                                Field("ProducerId", "int64", "4+"),
                                Field("FirstOffset", "int64", "4+"),
                            ],
                        ),
                        Field("PreferredReadReplica", "int32", "11+", default=-1),
                        Field("Records", "records", nullable_versions="0+"),
                    ],
                ),
            ],
        ),
        Field(
            "NodeEndpoints",
            "[]NodeEndpoint",
            "16+",
            tag=0,
            tagged_versions="16+",
            fields=[
                Field("NodeId", "int32", "16+"),
                Field("Host", "string", "16+"),
                Field("Port", "int32", "16+"),
                Field("Rack", "string", "16+", nullable_versions="16+", default=None),
            ],
        ),
    ],
)
