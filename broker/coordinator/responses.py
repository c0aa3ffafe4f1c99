"""Requests as the coordinator receives them, and the error answers every group API shares.

Bodies are the decoded request structs (snake_case keys, as protocol/schema.py
yields them) or plain dicts in tests; responses are plain dicts the encoder
completes with defaults, so fields a version lacks are simply dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from protocol.api import ApiKey
from protocol.errors import ErrorCode

GROUP_APIS = frozenset(
    {
        ApiKey.JOIN_GROUP,
        ApiKey.SYNC_GROUP,
        ApiKey.HEARTBEAT,
        ApiKey.LEAVE_GROUP,
        ApiKey.OFFSET_COMMIT,
        ApiKey.OFFSET_FETCH,
        ApiKey.LIST_GROUPS,
        ApiKey.DESCRIBE_GROUPS,
        ApiKey.DELETE_GROUPS,
    }
)
"""The APIs a GroupCoordinator answers (FindCoordinator is the shell's)."""

AUTHORIZED_OPERATIONS_OMITTED = -(2**31)


@dataclass(frozen=True, slots=True)
class GroupRequest:
    """One group API request: its version, decoded body and who sent it."""

    version: int
    body: Mapping[str, Any]
    client_id: str = ""
    client_host: str = ""


def join_error(member_id: str, error: ErrorCode) -> dict[str, Any]:
    return {
        "error_code": error,
        "generation_id": -1,
        "protocol_name": "",
        "leader": "",
        "member_id": member_id,
        "members": [],
    }


def sync_result(
    error: ErrorCode,
    assignment: bytes = b"",
    protocol_type: str | None = None,
    protocol_name: str | None = None,
) -> dict[str, Any]:
    return {
        "error_code": error,
        "protocol_type": protocol_type,
        "protocol_name": protocol_name,
        "assignment": assignment,
    }


def commit_result(body: Mapping[str, Any], errors: Mapping[tuple[str, int], ErrorCode]) -> dict:
    """An OffsetCommit response in the request's order, one error per partition."""
    return {
        "topics": [
            {
                "name": topic["name"],
                "partitions": [
                    {
                        "partition_index": p["partition_index"],
                        "error_code": errors[topic["name"], p["partition_index"]],
                    }
                    for p in topic["partitions"]
                ],
            }
            for topic in body["topics"]
        ]
    }


def error_response(api: int, request: GroupRequest, error: ErrorCode) -> dict[str, Any]:
    """The answer to ``request`` failing as a whole with ``error``."""
    body = request.body
    if api == ApiKey.JOIN_GROUP:
        return join_error(body.get("member_id", ""), error)
    if api == ApiKey.SYNC_GROUP:
        return sync_result(error)
    if api in (ApiKey.HEARTBEAT, ApiKey.LEAVE_GROUP, ApiKey.LIST_GROUPS):
        return {"error_code": error, "members": [], "groups": []}
    if api == ApiKey.OFFSET_COMMIT:
        every = {
            (t["name"], p["partition_index"]): error
            for t in body["topics"]
            for p in t["partitions"]
        }
        return commit_result(body, every)
    if api == ApiKey.OFFSET_FETCH:
        return _offset_fetch_error(request, error)
    if api == ApiKey.DESCRIBE_GROUPS:
        return {"groups": [describe_error(group_id, error) for group_id in body["groups"]]}
    if api == ApiKey.DELETE_GROUPS:
        return {"results": [{"group_id": g, "error_code": error} for g in body["groups_names"]]}
    raise AssertionError(f"not a group API: {api}")


def describe_error(group_id: str, error: ErrorCode) -> dict[str, Any]:
    return {
        "error_code": error,
        "group_id": group_id,
        "group_state": "",
        "protocol_type": "",
        "protocol_data": "",
        "members": [],
        "authorized_operations": AUTHORIZED_OPERATIONS_OMITTED,
    }


def _offset_fetch_error(request: GroupRequest, error: ErrorCode) -> dict[str, Any]:
    """v2+ carry a top-level error; v0-1 only per-partition errors."""
    if request.version >= 2:
        return {"error_code": error, "topics": []}
    topics = [
        {
            "name": t["name"],
            "partitions": [
                {
                    "partition_index": index,
                    "committed_offset": -1,
                    "metadata": "",
                    "error_code": error,
                }
                for index in t["partition_indexes"]
            ],
        }
        for t in request.body.get("topics") or []
    ]
    return {"topics": topics}
