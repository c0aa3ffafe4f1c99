"""InitProducerId: producer ids and epochs for idempotence (API key 22).

Declared field by field from Kafka's message schemas
(apache/kafka 1eb7644, clients/src/main/resources/common/message/):
InitProducerIdRequest.json, InitProducerIdResponse.json
"""

from protocol.schema import Field, Message

InitProducerIdRequest = Message(
    api_key=22,
    name="InitProducerIdRequest",
    valid_versions="0-5",
    flexible_versions="2+",
    fields=[
        Field("TransactionalId", "string", nullable_versions="0+"),
        Field("TransactionTimeoutMs", "int32"),
        Field("ProducerId", "int64", "3+", default=-1),
        Field("ProducerEpoch", "int16", "3+", default=-1),
    ],
)

InitProducerIdResponse = Message(
    api_key=22,
    name="InitProducerIdResponse",
    valid_versions="0-5",
    flexible_versions="2+",
    fields=[
        Field("ThrottleTimeMs", "int32", ignorable=True),
        Field("ErrorCode", "int16"),
        Field("ProducerId", "int64", default=-1),
        Field("ProducerEpoch", "int16"),
    ],
)
