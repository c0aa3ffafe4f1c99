"""The controller quorum and the cluster, as operators see them:
DescribeQuorum (55) and DescribeCluster (60).

Declared field by field from Kafka's message schemas
(clients/src/main/resources/common/message/, as shipped in kafka-python 3.0.12):
DescribeQuorumRequest.json, DescribeQuorumResponse.json,
DescribeClusterRequest.json, DescribeClusterResponse.json
"""

from protocol.schema import Field, Message


def _replica_state() -> list[Field]:
    """Kafka's common struct ReplicaState (a voter or an observer of the metadata log)."""
    return [
        Field("ReplicaId", "int32"),
        Field("ReplicaDirectoryId", "uuid", "2+"),
        Field("LogEndOffset", "int64"),
        Field("LastFetchTimestamp", "int64", "1+", ignorable=True, default=-1),
        Field("LastCaughtUpTimestamp", "int64", "1+", ignorable=True, default=-1),
    ]


DescribeQuorumRequest = Message(
    api_key=55,
    name="DescribeQuorumRequest",
    valid_versions="0-2",
    flexible_versions="0+",
    fields=[
        Field(
            "Topics",
            "[]TopicData",
            fields=[
                Field("TopicName", "string"),
                Field("Partitions", "[]PartitionData", fields=[Field("PartitionIndex", "int32")]),
            ],
        ),
    ],
)

DescribeQuorumResponse = Message(
    api_key=55,
    name="DescribeQuorumResponse",
    valid_versions="0-2",
    flexible_versions="0+",
    fields=[
        Field("ErrorCode", "int16"),
        Field("ErrorMessage", "string", "2+", nullable_versions="2+", ignorable=True),
        Field(
            "Topics",
            "[]TopicData",
            fields=[
                Field("TopicName", "string"),
                Field(
                    "Partitions",
                    "[]PartitionData",
                    fields=[
                        Field("PartitionIndex", "int32"),
                        Field("ErrorCode", "int16"),
                        Field(
                            "ErrorMessage",
                            "string",
                            "2+",
                            nullable_versions="2+",
                            ignorable=True,
                        ),
                        Field("LeaderId", "int32"),
                        Field("LeaderEpoch", "int32"),
                        Field("HighWatermark", "int64"),
                        Field("CurrentVoters", "[]ReplicaState", fields=_replica_state()),
                        Field("Observers", "[]ReplicaState", fields=_replica_state()),
                    ],
                ),
            ],
        ),
        Field(
            "Nodes",
            "[]Node",
            "2+",
            fields=[
                Field("NodeId", "int32", "2+"),
                Field(
                    "Listeners",
                    "[]Listener",
                    "2+",
                    fields=[
                        Field("Name", "string", "2+"),
                        Field("Host", "string", "2+"),
                        Field("Port", "uint16", "2+"),
                    ],
                ),
            ],
        ),
    ],
)

DescribeClusterRequest = Message(
    api_key=60,
    name="DescribeClusterRequest",
    valid_versions="0-2",
    flexible_versions="0+",
    fields=[
        Field("IncludeClusterAuthorizedOperations", "bool"),
        Field("EndpointType", "int8", "1+", default=1),
        Field("IncludeFencedBrokers", "bool", "2+"),
    ],
)

DescribeClusterResponse = Message(
    api_key=60,
    name="DescribeClusterResponse",
    valid_versions="0-2",
    flexible_versions="0+",
    fields=[
        Field("ThrottleTimeMs", "int32"),
        Field("ErrorCode", "int16"),
        Field("ErrorMessage", "string", nullable_versions="0+", default=None),
        Field("EndpointType", "int8", "1+", default=1),
        Field("ClusterId", "string"),
        Field("ControllerId", "int32", default=-1),
        Field(
            "Brokers",
            "[]DescribeClusterBroker",
            fields=[
                Field("BrokerId", "int32"),
                Field("Host", "string"),
                Field("Port", "int32"),
                Field("Rack", "string", nullable_versions="0+", default=None),
                Field("IsFenced", "bool", "2+"),
            ],
        ),
        Field("ClusterAuthorizedOperations", "int32", default=-2147483648),
    ],
)
