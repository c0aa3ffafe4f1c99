"""THE table of which API versions trilog serves, and the ApiVersions answers.

``SERVED`` is the single source of truth: the broker advertises exactly these
ranges in ApiVersions and dispatches only these. ``PLANNED`` holds APIs whose
schemas are declared (protocol/api/) but whose broker side is not written
yet; serving one is moving its line from ``PLANNED`` to ``SERVED``.
"""

from __future__ import annotations

from typing import Any

from protocol.api import MESSAGES, ApiKey
from protocol.errors import ErrorCode
from protocol.headers import encode_response

SERVED: dict[int, tuple[int, int]] = {
    ApiKey.API_VERSIONS: (0, 2),
    # Produce v0-2 are advertised but answered UNSUPPORTED_VERSION, as Kafka 4.0
    # does (KIP-896, KAFKA-18659): librdkafka < 2.11.1 checks exact versions and
    # fails against a broker whose advertised Produce range does not start at 0.
    ApiKey.PRODUCE: (0, 8),
    ApiKey.FETCH: (4, 11),
    ApiKey.LIST_OFFSETS: (1, 5),
    ApiKey.METADATA: (0, 8),
    ApiKey.CREATE_TOPICS: (2, 4),
    ApiKey.DELETE_TOPICS: (1, 3),
    ApiKey.CREATE_PARTITIONS: (0, 1),
    ApiKey.DESCRIBE_CONFIGS: (1, 3),
    ApiKey.INIT_PRODUCER_ID: (0, 1),
    ApiKey.OFFSET_FOR_LEADER_EPOCH: (2, 3),
    ApiKey.FIND_COORDINATOR: (0, 2),
    ApiKey.JOIN_GROUP: (0, 5),
    ApiKey.SYNC_GROUP: (0, 3),
    ApiKey.HEARTBEAT: (0, 3),
    ApiKey.LEAVE_GROUP: (0, 3),
    ApiKey.OFFSET_COMMIT: (2, 7),
    ApiKey.OFFSET_FETCH: (1, 5),
    ApiKey.LIST_GROUPS: (0, 2),
    ApiKey.DESCRIBE_GROUPS: (0, 4),
    ApiKey.DELETE_GROUPS: (0, 1),
    ApiKey.ELECT_LEADERS: (0, 2),
    ApiKey.ALTER_PARTITION_REASSIGNMENTS: (0, 0),
    ApiKey.LIST_PARTITION_REASSIGNMENTS: (0, 0),
    ApiKey.DESCRIBE_QUORUM: (0, 2),
    ApiKey.DESCRIBE_CLUSTER: (0, 2),
}
"""API key -> (min, max) version the broker implements and advertises."""

PLANNED: dict[int, tuple[int, int]] = {}
"""Declared, not yet served: the ranges these APIs will be served at."""


def is_served(api_key: int, api_version: int) -> bool:
    """True if the broker implements ``api_version`` of ``api_key``."""
    versions = SERVED.get(api_key)
    return versions is not None and versions[0] <= api_version <= versions[1]


def api_versions_response_body(
    version: int, error_code: int = ErrorCode.NONE, throttle_time_ms: int = 0
) -> dict[str, Any]:
    """The ApiVersions response body listing ``SERVED`` (fields the version lacks are dropped)."""
    api_keys = [
        {"api_key": int(key), "min_version": low, "max_version": high}
        for key, (low, high) in sorted(SERVED.items())
    ]
    return {
        "error_code": int(error_code),
        "api_keys": api_keys,
        "throttle_time_ms": throttle_time_ms,
    }


def unsupported_api_versions_response(correlation_id: int) -> bytes:
    """The answer to an ApiVersions request at a version we do not serve (KIP-511).

    Built from the request's first 8 bytes only (its body may be a layout we
    cannot parse): response header v0, then a v0 body with UNSUPPORTED_VERSION
    and our table, from which the client picks a version it shares with us.
    Kafka lists only the ApiVersions entry here; the full table is a superset.
    """
    body = api_versions_response_body(0, ErrorCode.UNSUPPORTED_VERSION)
    return encode_response(ApiKey.API_VERSIONS, 0, correlation_id, body)


def _check_table() -> None:
    """Every served or planned range lies inside its declared schema's valid versions."""
    for key, (low, high) in (SERVED | PLANNED).items():
        valid = MESSAGES[key][0].valid_versions
        if not (low in valid and high in valid and low <= high):
            raise AssertionError(f"api {key}: versions {low}-{high} outside {valid}")
    if SERVED.keys() & PLANNED.keys():
        raise AssertionError("an API is both served and planned")


_check_table()
