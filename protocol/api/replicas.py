"""Leadership and replica placement: ElectLeaders (43),
AlterPartitionReassignments (45), ListPartitionReassignments (46).

Declared field by field from Kafka's message schemas
(apache/kafka 1eb7644, clients/src/main/resources/common/message/):
ElectLeadersRequest.json, ElectLeadersResponse.json
AlterPartitionReassignmentsRequest.json, AlterPartitionReassignmentsResponse.json
ListPartitionReassignmentsRequest.json, ListPartitionReassignmentsResponse.json
"""

from protocol.schema import Field, Message

ElectLeadersRequest = Message(
    api_key=43,
    name="ElectLeadersRequest",
    valid_versions="0-2",
    flexible_versions="2+",
    fields=[
        Field("ElectionType", "int8", "1+"),
        Field(
            "TopicPartitions",
            "[]TopicPartitions",
            nullable_versions="0+",
            fields=[
                Field("Topic", "string"),
                Field("Partitions", "[]int32"),
            ],
        ),
        Field("TimeoutMs", "int32", default=60000),
    ],
)

ElectLeadersResponse = Message(
    api_key=43,
    name="ElectLeadersResponse",
    valid_versions="0-2",
    flexible_versions="2+",
    fields=[
        Field("ThrottleTimeMs", "int32"),
        Field("ErrorCode", "int16", "1+"),
        Field(
            "ReplicaElectionResults",
            "[]ReplicaElectionResult",
            fields=[
                Field("Topic", "string"),
                Field(
                    "PartitionResult",
                    "[]PartitionResult",
                    fields=[
                        Field("PartitionId", "int32"),
                        Field("ErrorCode", "int16"),
                        Field("ErrorMessage", "string", nullable_versions="0+"),
                    ],
                ),
            ],
        ),
    ],
)

AlterPartitionReassignmentsRequest = Message(
    api_key=45,
    name="AlterPartitionReassignmentsRequest",
    valid_versions="0",
    flexible_versions="0+",
    fields=[
        Field("TimeoutMs", "int32", default=60000),
        Field(
            "Topics",
            "[]ReassignableTopic",
            fields=[
                Field("Name", "string"),
                Field(
                    "Partitions",
                    "[]ReassignablePartition",
                    fields=[
                        Field("PartitionIndex", "int32"),
                        Field("Replicas", "[]int32", nullable_versions="0+", default=None),
                    ],
                ),
            ],
        ),
    ],
)

AlterPartitionReassignmentsResponse = Message(
    api_key=45,
    name="AlterPartitionReassignmentsResponse",
    valid_versions="0",
    flexible_versions="0+",
    fields=[
        Field("ThrottleTimeMs", "int32"),
        Field("ErrorCode", "int16"),
        Field("ErrorMessage", "string", nullable_versions="0+"),
        Field(
            "Responses",
            "[]ReassignableTopicResponse",
            fields=[
                Field("Name", "string"),
                Field(
                    "Partitions",
                    "[]ReassignablePartitionResponse",
                    fields=[
                        Field("PartitionIndex", "int32"),
                        Field("ErrorCode", "int16"),
                        Field("ErrorMessage", "string", nullable_versions="0+"),
                    ],
                ),
            ],
        ),
    ],
)

ListPartitionReassignmentsRequest = Message(
    api_key=46,
    name="ListPartitionReassignmentsRequest",
    valid_versions="0",
    flexible_versions="0+",
    fields=[
        Field("TimeoutMs", "int32", default=60000),
        Field(
            "Topics",
            "[]ListPartitionReassignmentsTopics",
            nullable_versions="0+",
            default=None,
            fields=[
                Field("Name", "string"),
                Field("PartitionIndexes", "[]int32"),
            ],
        ),
    ],
)

ListPartitionReassignmentsResponse = Message(
    api_key=46,
    name="ListPartitionReassignmentsResponse",
    valid_versions="0",
    flexible_versions="0+",
    fields=[
        Field("ThrottleTimeMs", "int32"),
        Field("ErrorCode", "int16"),
        Field("ErrorMessage", "string", nullable_versions="0+"),
        Field(
            "Topics",
            "[]OngoingTopicReassignment",
            fields=[
                Field("Name", "string"),
                Field(
                    "Partitions",
                    "[]OngoingPartitionReassignment",
                    fields=[
                        Field("PartitionIndex", "int32"),
                        Field("Replicas", "[]int32"),
                        Field("AddingReplicas", "[]int32"),
                        Field("RemovingReplicas", "[]int32"),
                    ],
                ),
            ],
        ),
    ],
)
