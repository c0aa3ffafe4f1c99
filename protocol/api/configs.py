"""DescribeConfigs: topic and broker configuration (API key 32).

Declared field by field from Kafka's message schemas
(apache/kafka 1eb7644, clients/src/main/resources/common/message/):
DescribeConfigsRequest.json, DescribeConfigsResponse.json
"""

from protocol.schema import Field, Message

DescribeConfigsRequest = Message(
    api_key=32,
    name="DescribeConfigsRequest",
    valid_versions="0-4",
    flexible_versions="4+",
    fields=[
        Field(
            "Resources",
            "[]DescribeConfigsResource",
            fields=[
                Field("ResourceType", "int8"),
                Field("ResourceName", "string"),
                Field("ConfigurationKeys", "[]string", nullable_versions="0+"),
            ],
        ),
        Field("IncludeSynonyms", "bool", "1+", default=False),
        Field("IncludeDocumentation", "bool", "3+", default=False),
    ],
)

DescribeConfigsResponse = Message(
    api_key=32,
    name="DescribeConfigsResponse",
    valid_versions="0-4",
    flexible_versions="4+",
    fields=[
        Field("ThrottleTimeMs", "int32"),
        Field(
            "Results",
            "[]DescribeConfigsResult",
            fields=[
                Field("ErrorCode", "int16"),
                Field("ErrorMessage", "string", nullable_versions="0+"),
                Field("ResourceType", "int8"),
                Field("ResourceName", "string"),
                Field(
                    "Configs",
                    "[]DescribeConfigsResourceResult",
                    fields=[
                        Field("Name", "string"),
                        Field("Value", "string", nullable_versions="0+"),
                        Field("ReadOnly", "bool"),
                        Field("IsDefault", "bool", "0"),
                        Field("ConfigSource", "int8", "1+", default=-1, ignorable=True),
                        Field("IsSensitive", "bool"),
                        Field(
                            "Synonyms",
                            "[]DescribeConfigsSynonym",
                            "1+",
                            ignorable=True,
                            fields=[
                                Field("Name", "string", "1+"),
                                Field("Value", "string", "1+", nullable_versions="0+"),
                                Field("Source", "int8", "1+"),
                            ],
                        ),
                        Field("ConfigType", "int8", "3+", default=0, ignorable=True),
                        Field(
                            "Documentation", "string", "3+", nullable_versions="0+", ignorable=True
                        ),
                    ],
                ),
            ],
        ),
    ],
)
