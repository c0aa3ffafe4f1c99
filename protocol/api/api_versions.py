"""ApiVersions: which API versions the broker serves (API key 18).

Declared field by field from Kafka's message schemas
(apache/kafka 1eb7644, clients/src/main/resources/common/message/):
ApiVersionsRequest.json, ApiVersionsResponse.json
"""

from protocol.schema import Field, Message

ApiVersionsRequest = Message(
    api_key=18,
    name="ApiVersionsRequest",
    valid_versions="0-4",
    flexible_versions="3+",
    fields=[
        Field("ClientSoftwareName", "string", "3+", ignorable=True),
        Field("ClientSoftwareVersion", "string", "3+", ignorable=True),
    ],
)

ApiVersionsResponse = Message(
    api_key=18,
    name="ApiVersionsResponse",
    valid_versions="0-4",
    flexible_versions="3+",
    fields=[
        Field("ErrorCode", "int16"),
        Field(
            "ApiKeys",
            "[]ApiVersion",
            fields=[
                Field("ApiKey", "int16"),
                Field("MinVersion", "int16"),
                Field("MaxVersion", "int16"),
            ],
        ),
        Field("ThrottleTimeMs", "int32", "1+", ignorable=True),
        Field(
            "SupportedFeatures",
            "[]SupportedFeatureKey",
            "3+",
            tag=0,
            tagged_versions="3+",
            ignorable=True,
            fields=[
                Field("Name", "string", "3+"),
                Field("MinVersion", "int16", "3+"),
                Field("MaxVersion", "int16", "3+"),
            ],
        ),
        Field(
            "FinalizedFeaturesEpoch",
            "int64",
            "3+",
            default=-1,
            tag=1,
            tagged_versions="3+",
            ignorable=True,
        ),
        Field(
            "FinalizedFeatures",
            "[]FinalizedFeatureKey",
            "3+",
            tag=2,
            tagged_versions="3+",
            ignorable=True,
            fields=[
                Field("Name", "string", "3+"),
                Field("MaxVersionLevel", "int16", "3+"),
                Field("MinVersionLevel", "int16", "3+"),
            ],
        ),
        Field(
            "ZkMigrationReady",
            "bool",
            "3+",
            default=False,
            tag=3,
            tagged_versions="3+",
            ignorable=True,
        ),
    ],
)
