"""Metadata: brokers, topics, partitions, leaders and ISRs (API key 3).

Declared field by field from Kafka's message schemas
(apache/kafka 1eb7644, clients/src/main/resources/common/message/):
MetadataRequest.json, MetadataResponse.json
"""

from protocol.schema import Field, Message

MetadataRequest = Message(
    api_key=3,
    name="MetadataRequest",
    valid_versions="0-12",
    flexible_versions="9+",
    fields=[
        Field(
            "Topics",
            "[]MetadataRequestTopic",
            nullable_versions="1+",
            fields=[
                Field("TopicId", "uuid", "10+", ignorable=True),
                Field("Name", "string", nullable_versions="10+"),
            ],
        ),
        Field("AllowAutoTopicCreation", "bool", "4+", default=True),
        Field("IncludeClusterAuthorizedOperations", "bool", "8-10"),
        Field("IncludeTopicAuthorizedOperations", "bool", "8+"),
    ],
)

MetadataResponse = Message(
    api_key=3,
    name="MetadataResponse",
    valid_versions="0-12",
    flexible_versions="9+",
    fields=[
        Field("ThrottleTimeMs", "int32", "3+", ignorable=True),
        Field(
            "Brokers",
            "[]MetadataResponseBroker",
            fields=[
                Field("NodeId", "int32"),
                Field("Host", "string"),
                Field("Port", "int32"),
                Field("Rack", "string", "1+", nullable_versions="1+", default=None, ignorable=True),
            ],
        ),
        Field("ClusterId", "string", "2+", nullable_versions="2+", default=None, ignorable=True),
        Field("ControllerId", "int32", "1+", default=-1, ignorable=True),
        Field(
            "Topics",
            "[]MetadataResponseTopic",
            fields=[
                Field("ErrorCode", "int16"),
                Field("Name", "string", nullable_versions="12+"),
                Field("TopicId", "uuid", "10+", ignorable=True),
                Field("IsInternal", "bool", "1+", default=False, ignorable=True),
                Field(
                    "Partitions",
                    "[]MetadataResponsePartition",
                    fields=[
                        Field("ErrorCode", "int16"),
                        Field("PartitionIndex", "int32"),
                        Field("LeaderId", "int32"),
                        Field("LeaderEpoch", "int32", "7+", default=-1, ignorable=True),
                        Field("ReplicaNodes", "[]int32"),
                        Field("IsrNodes", "[]int32"),
                        Field("OfflineReplicas", "[]int32", "5+", ignorable=True),
                    ],
                ),
                Field("TopicAuthorizedOperations", "int32", "8+", default=-2147483648),
            ],
        ),
        Field("ClusterAuthorizedOperations", "int32", "8-10", default=-2147483648),
    ],
)
