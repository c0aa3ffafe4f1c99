"""Byte-exact checks against encodings written out by hand from the protocol guide."""

from __future__ import annotations

from protocol.api import MESSAGES, ApiKey
from protocol.headers import decode_request, decode_response, encode_request, encode_response


def h(text: str) -> bytes:
    """Hex with spaces and comments (after '#') allowed, one field per line."""
    return bytes.fromhex("".join(line.split("#")[0] for line in text.splitlines()))


def test_api_versions_v0_response() -> None:
    expected = h("""
        00000007        # correlation id (response header v0)
        0000            # error code
        00000002        # api_keys: ARRAY of 2
        0000 0003 0008  # Produce 3..8
        0012 0000 0002  # ApiVersions 0..2
    """)
    body = {
        "api_keys": [
            {"api_key": 0, "min_version": 3, "max_version": 8},
            {"api_key": 18, "min_version": 0, "max_version": 2},
        ]
    }
    assert encode_response(ApiKey.API_VERSIONS, 0, 7, body) == expected
    correlation_id, decoded = decode_response(ApiKey.API_VERSIONS, 0, expected)
    assert correlation_id == 7
    assert decoded.api_keys[1].max_version == 2


def test_api_versions_v3_response_keeps_header_v0() -> None:
    expected = h("""
        00000009        # correlation id; no header tagged fields (KIP-511)
        0000            # error code
        02              # api_keys: COMPACT_ARRAY of 1
        0012 0000 0003  # ApiVersions 0..3
        00              # api key entry tagged fields
        00000000        # throttle time ms
        01              # tagged fields: 1
        01 08           # tag 1 (FinalizedFeaturesEpoch), 8 bytes
        0000000000000005
    """)
    body = {
        "api_keys": [{"api_key": 18, "min_version": 0, "max_version": 3}],
        "finalized_features_epoch": 5,
    }
    assert encode_response(ApiKey.API_VERSIONS, 3, 9, body) == expected
    _, decoded = decode_response(ApiKey.API_VERSIONS, 3, expected)
    assert decoded.finalized_features_epoch == 5
    assert decoded.supported_features == []


def test_metadata_v1_request() -> None:
    expected = h("""
        0003 0001 0000002a  # api key 3, version 1, correlation id 42
        0002 6162           # client id "ab"
        00000002            # topics: ARRAY of 2
        0001 78             # name "x"
        0002 797a           # name "yz"
    """)
    body = {"topics": [{"name": "x"}, {"name": "yz"}]}
    assert encode_request(ApiKey.METADATA, 1, 42, "ab", body) == expected
    header, decoded = decode_request(expected)
    assert (header.api_key, header.api_version, header.correlation_id) == (3, 1, 42)
    assert header.client_id == "ab"
    assert header.header_version == 1
    assert decoded == body


def test_metadata_v1_request_null_topics_means_all() -> None:
    expected = h("0003 0001 00000001 ffff ffffffff")
    assert encode_request(ApiKey.METADATA, 1, 1, None, {"topics": None}) == expected
    header, body = decode_request(expected)
    assert header.client_id is None
    assert body.topics is None


def test_create_topics_v5_response_with_tagged_field() -> None:
    expected = h("""
        00000003            # correlation id
        00                  # response header v1 tagged fields
        00000000            # throttle time ms
        02                  # topics: COMPACT_ARRAY of 1
        02 74               # name "t" (COMPACT_STRING)
        0000                # error code
        00                  # error message null (COMPACT_NULLABLE_STRING)
        00000003            # num partitions
        0002                # replication factor
        01                  # configs: empty COMPACT_NULLABLE_ARRAY
        01                  # tagged fields: 1
        00 02 0028          # tag 0 TopicConfigErrorCode, 2 bytes: INVALID_CONFIG (40)
        00                  # response tagged fields
    """)
    body = {
        "topics": [
            {
                "name": "t",
                "error_code": 0,
                "error_message": None,
                "num_partitions": 3,
                "replication_factor": 2,
                "configs": [],
                "topic_config_error_code": 40,
            }
        ]
    }
    assert encode_response(ApiKey.CREATE_TOPICS, 5, 3, body) == expected
    _, decoded = decode_response(ApiKey.CREATE_TOPICS, 5, expected)
    assert decoded.topics[0].topic_config_error_code == 40
    assert "topic_id" not in decoded.topics[0]


def test_create_topics_v4_request_is_not_flexible() -> None:
    expected = h("""
        0013 0004 00000005  # CreateTopics v4, correlation id 5
        0001 63             # client id "c"
        00000001            # topics: ARRAY of 1
        0001 74             # name "t"
        00000001            # num partitions 1
        0003                # replication factor 3
        00000000            # assignments: empty
        00000001            # configs: 1
        000e 636c65616e75702e706f6c696379  # "cleanup.policy"
        0007 636f6d70616374 # "compact"
        00007530            # timeout ms 30000
        00                  # validate only false
    """)
    body = {
        "topics": [
            {
                "name": "t",
                "num_partitions": 1,
                "replication_factor": 3,
                "configs": [{"name": "cleanup.policy", "value": "compact"}],
            }
        ],
        "timeout_ms": 30000,
    }
    assert encode_request(ApiKey.CREATE_TOPICS, 4, 5, "c", body) == expected


def test_produce_v9_request_flexible_header_and_body() -> None:
    records = b"\x00" * 61
    expected = (
        h("""
        0000 0009 00000001  # Produce v9, correlation id 1
        0001 70             # client id "p": still INT16 length in header v2
        00                  # header tagged fields
        00                  # transactional id null (COMPACT_NULLABLE_STRING)
        ffff                # acks -1
        00007530            # timeout ms 30000
        02                  # topic data: 1
        02 74               # name "t"
        02                  # partition data: 1
        00000000            # index 0
        3e                  # records: COMPACT_RECORDS of 61 bytes
    """)
        + records
        + h("""
        00                  # partition tagged fields
        00                  # topic tagged fields
        00                  # request tagged fields
    """)
    )
    body = {
        "acks": -1,
        "timeout_ms": 30000,
        "topic_data": [{"name": "t", "partition_data": [{"index": 0, "records": records}]}],
    }
    assert encode_request(ApiKey.PRODUCE, 9, 1, "p", body) == expected
    header, decoded = decode_request(expected)
    assert header.header_version == 2
    assert decoded.topic_data[0].partition_data[0].records == records


def test_produce_v3_body_layout() -> None:
    request, _ = MESSAGES[ApiKey.PRODUCE]
    expected = h("""
        0002 6964           # transactional id "id"
        0001                # acks 1
        000003e8            # timeout ms 1000
        00000000            # topic data: empty
    """)
    assert request.encode({"transactional_id": "id", "acks": 1, "timeout_ms": 1000}, 3) == expected
