"""Topic administration: CreateTopics (19), DeleteTopics (20), CreatePartitions (37).

Declared field by field from Kafka's message schemas
(apache/kafka 1eb7644, clients/src/main/resources/common/message/):
CreateTopicsRequest.json, CreateTopicsResponse.json
DeleteTopicsRequest.json, DeleteTopicsResponse.json
CreatePartitionsRequest.json, CreatePartitionsResponse.json
"""

from protocol.schema import Field, Message

CreateTopicsRequest = Message(
    api_key=19,
    name="CreateTopicsRequest",
    valid_versions="0-7",
    flexible_versions="5+",
    fields=[
        Field(
            "Topics",
            "[]CreatableTopic",
            fields=[
                Field("Name", "string"),
                Field("NumPartitions", "int32"),
                Field("ReplicationFactor", "int16"),
                Field(
                    "Assignments",
                    "[]CreatableReplicaAssignment",
                    fields=[
                        Field("PartitionIndex", "int32"),
                        Field("BrokerIds", "[]int32"),
                    ],
                ),
                Field(
                    "Configs",
                    "[]CreatableTopicConfig",
                    fields=[
                        Field("Name", "string"),
                        Field("Value", "string", nullable_versions="0+"),
                    ],
                ),
            ],
        ),
        Field("timeoutMs", "int32", default=60000),
        Field("validateOnly", "bool", "1+", default=False),
    ],
)

CreateTopicsResponse = Message(
    api_key=19,
    name="CreateTopicsResponse",
    valid_versions="0-7",
    flexible_versions="5+",
    fields=[
        Field("ThrottleTimeMs", "int32", "2+", ignorable=True),
        Field(
            "Topics",
            "[]CreatableTopicResult",
            fields=[
                Field("Name", "string"),
                Field("TopicId", "uuid", "7+", ignorable=True),
                Field("ErrorCode", "int16"),
                Field("ErrorMessage", "string", "1+", nullable_versions="0+", ignorable=True),
                Field(
                    "TopicConfigErrorCode",
                    "int16",
                    "5+",
                    tag=0,
                    tagged_versions="5+",
                    ignorable=True,
                ),
                Field("NumPartitions", "int32", "5+", default=-1, ignorable=True),
                Field("ReplicationFactor", "int16", "5+", default=-1, ignorable=True),
                Field(
                    "Configs",
                    "[]CreatableTopicConfigs",
                    "5+",
                    nullable_versions="5+",
                    ignorable=True,
                    fields=[
                        Field("Name", "string", "5+"),
                        Field("Value", "string", "5+", nullable_versions="5+"),
                        Field("ReadOnly", "bool", "5+"),
                        Field("ConfigSource", "int8", "5+", default=-1, ignorable=True),
                        Field("IsSensitive", "bool", "5+"),
                    ],
                ),
            ],
        ),
    ],
)

DeleteTopicsRequest = Message(
    api_key=20,
    name="DeleteTopicsRequest",
    valid_versions="0-6",
    flexible_versions="4+",
    fields=[
        Field(
            "Topics",
            "[]DeleteTopicState",
            "6+",
            fields=[
                Field("Name", "string", "6+", nullable_versions="6+", default=None),
                Field("TopicId", "uuid", "6+"),
            ],
        ),
        Field("TopicNames", "[]string", "0-5", ignorable=True),
        Field("TimeoutMs", "int32"),
    ],
)

DeleteTopicsResponse = Message(
    api_key=20,
    name="DeleteTopicsResponse",
    valid_versions="0-6",
    flexible_versions="4+",
    fields=[
        Field("ThrottleTimeMs", "int32", "1+", ignorable=True),
        Field(
            "Responses",
            "[]DeletableTopicResult",
            fields=[
                Field("Name", "string", nullable_versions="6+"),
                Field("TopicId", "uuid", "6+", ignorable=True),
                Field("ErrorCode", "int16"),
                Field(
                    "ErrorMessage",
                    "string",
                    "5+",
                    nullable_versions="5+",
                    default=None,
                    ignorable=True,
                ),
            ],
        ),
    ],
)

CreatePartitionsRequest = Message(
    api_key=37,
    name="CreatePartitionsRequest",
    valid_versions="0-3",
    flexible_versions="2+",
    fields=[
        Field(
            "Topics",
            "[]CreatePartitionsTopic",
            fields=[
                Field("Name", "string"),
                Field("Count", "int32"),
                Field(
                    "Assignments",
                    "[]CreatePartitionsAssignment",
                    nullable_versions="0+",
                    fields=[
                        Field("BrokerIds", "[]int32"),
                    ],
                ),
            ],
        ),
        Field("TimeoutMs", "int32"),
        Field("ValidateOnly", "bool"),
    ],
)

CreatePartitionsResponse = Message(
    api_key=37,
    name="CreatePartitionsResponse",
    valid_versions="0-3",
    flexible_versions="2+",
    fields=[
        Field("ThrottleTimeMs", "int32"),
        Field(
            "Results",
            "[]CreatePartitionsTopicResult",
            fields=[
                Field("Name", "string"),
                Field("ErrorCode", "int16"),
                Field("ErrorMessage", "string", nullable_versions="0+", default=None),
            ],
        ),
    ],
)
