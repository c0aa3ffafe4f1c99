"""Produce requests: append record batches to partitions (API key 0).

Declared field by field from Kafka's message schemas
(apache/kafka 1eb7644, clients/src/main/resources/common/message/):
ProduceRequest.json, ProduceResponse.json
"""

from protocol.schema import Field, Message

ProduceRequest = Message(
    api_key=0,
    name="ProduceRequest",
    valid_versions="0-11",
    flexible_versions="9+",
    fields=[
        Field("TransactionalId", "string", "3+", nullable_versions="3+", default=None),
        Field("Acks", "int16"),
        Field("TimeoutMs", "int32"),
        Field(
            "TopicData",
            "[]TopicProduceData",
            fields=[
                Field("Name", "string"),
                Field(
                    "PartitionData",
                    "[]PartitionProduceData",
                    fields=[
                        Field("Index", "int32"),
                        Field("Records", "records", nullable_versions="0+"),
                    ],
                ),
            ],
        ),
    ],
)

ProduceResponse = Message(
    api_key=0,
    name="ProduceResponse",
    valid_versions="0-11",
    flexible_versions="9+",
    fields=[
        Field(
            "Responses",
            "[]TopicProduceResponse",
            fields=[
                Field("Name", "string"),
                Field(
                    "PartitionResponses",
                    "[]PartitionProduceResponse",
                    fields=[
                        Field("Index", "int32"),
                        Field("ErrorCode", "int16"),
                        Field("BaseOffset", "int64"),
                        Field("LogAppendTimeMs", "int64", "2+", default=-1, ignorable=True),
                        Field("LogStartOffset", "int64", "5+", default=-1, ignorable=True),
                        Field(
                            "RecordErrors",
                            "[]BatchIndexAndErrorMessage",
                            "8+",
                            ignorable=True,
                            fields=[
                                Field("BatchIndex", "int32", "8+"),
                                Field(
                                    "BatchIndexErrorMessage",
                                    "string",
                                    "8+",
                                    nullable_versions="8+",
                                    default=None,
                                ),
                            ],
                        ),
                        Field(
                            "ErrorMessage",
                            "string",
                            "8+",
                            nullable_versions="8+",
                            default=None,
                            ignorable=True,
                        ),
                        Field(
                            "CurrentLeader",
                            "LeaderIdAndEpoch",
                            "10+",
                            tag=0,
                            tagged_versions="10+",
                            fields=[
                                Field("LeaderId", "int32", "10+", default=-1),
                                Field("LeaderEpoch", "int32", "10+", default=-1),
                            ],
                        ),
                    ],
                ),
            ],
        ),
        Field("ThrottleTimeMs", "int32", "1+", default=0, ignorable=True),
        Field(
            "NodeEndpoints",
            "[]NodeEndpoint",
            "10+",
            tag=0,
            tagged_versions="10+",
            fields=[
                Field("NodeId", "int32", "10+"),
                Field("Host", "string", "10+"),
                Field("Port", "int32", "10+"),
                Field("Rack", "string", "10+", nullable_versions="10+", default=None),
            ],
        ),
    ],
)
