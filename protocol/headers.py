"""Request and response headers, and whole request/response payloads.

A request frame is a header then a body. The header's own version depends
on the request: v2 (flexible, with TAGGED_FIELDS) when the request version is
flexible for its API, else v1; v0 is only for ControlledShutdown v0, which
trilog does not declare. In every version the ClientId stays a classic
NULLABLE_STRING, so any broker can read the header of any ApiVersions request.

A response header is v1 (with TAGGED_FIELDS) when the response version is
flexible, else v0 — except ApiVersions, whose response header is always v0
(KIP-511): a client that sent a version the broker does not know must still
be able to read the answer.

Payloads here carry no size prefix; see protocol/framing.py.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from protocol.api import MESSAGES, ApiKey
from protocol.errors import (
    MalformedMessageError,
    MalformedRequestError,
    UnknownApiError,
    UnsupportedVersionError,
)
from protocol.schema import Data, Field, Message, read_uvarint

RequestHeaderSchema = Message(
    api_key=None,
    name="RequestHeader",
    valid_versions="0-2",
    flexible_versions="2+",
    fields=[
        Field("RequestApiKey", "int16"),
        Field("RequestApiVersion", "int16"),
        Field("CorrelationId", "int32"),
        Field(
            "ClientId",
            "string",
            "1+",
            nullable_versions="1+",
            ignorable=True,
            flexible_versions="none",
        ),
    ],
)
"""Kafka's RequestHeader.json: encodes our requests; parse_request_header reads
the same layout by hand on the hot path (tests check they agree)."""

ResponseHeaderSchema = Message(
    api_key=None,
    name="ResponseHeader",
    valid_versions="0-1",
    flexible_versions="1+",
    fields=[Field("CorrelationId", "int32")],
)
"""Kafka's ResponseHeader.json."""

_KEY_VERSION_CORRELATION = struct.Struct(">hhi")
_CORRELATION = struct.Struct(">i")
_INT16 = struct.Struct(">h")


@dataclass(frozen=True, slots=True)
class RequestHeader:
    """The fields of a request header that the broker acts on."""

    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    header_version: int


def request_header_version(api_key: int, api_version: int) -> int:
    """2 if ``api_version`` of the request is flexible, else 1."""
    return 2 if MESSAGES[api_key][0].is_flexible(api_version) else 1


def response_header_version(api_key: int, api_version: int) -> int:
    """1 if the response is flexible, else 0; always 0 for ApiVersions (KIP-511)."""
    if api_key == ApiKey.API_VERSIONS:
        return 0
    return 1 if MESSAGES[api_key][1].is_flexible(api_version) else 0


def peek_request_ids(frame: bytes) -> tuple[int, int, int]:
    """(api_key, api_version, correlation_id): the first 8 bytes of any request."""
    if len(frame) < _KEY_VERSION_CORRELATION.size:
        raise MalformedRequestError(f"request of {len(frame)} bytes has no header")
    return _KEY_VERSION_CORRELATION.unpack_from(frame)


def parse_request_header(frame: bytes) -> tuple[RequestHeader, int]:
    """The header of a request frame and the offset where its body starts.

    Raises UnknownApiError for an API key we have no schema for,
    UnsupportedVersionError for a version outside the schema's valid range
    (both carry the correlation id, so the broker can answer), and
    MalformedRequestError when the header bytes are broken.
    """
    api_key, api_version, correlation_id = peek_request_ids(frame)
    if api_key not in MESSAGES:
        raise UnknownApiError(api_key, api_version, correlation_id)
    if api_version not in MESSAGES[api_key][0].valid_versions:
        raise UnsupportedVersionError(api_key, api_version, correlation_id)
    header_version = request_header_version(api_key, api_version)
    try:
        client_id, offset = _read_client_id(frame)
        if header_version == 2:
            offset = _skip_tagged_fields(frame, offset)
    except (struct.error, IndexError, UnicodeDecodeError, MalformedMessageError) as exc:
        raise MalformedRequestError(f"request header: {exc}") from exc
    header = RequestHeader(api_key, api_version, correlation_id, client_id, header_version)
    return header, offset


def _read_client_id(frame: bytes) -> tuple[str | None, int]:
    """ClientId: a classic NULLABLE_STRING right after the first 8 bytes."""
    (length,) = _INT16.unpack_from(frame, 8)
    if length == -1:
        return None, 10
    end = 10 + length
    if length < 0 or end > len(frame):
        raise MalformedRequestError(f"client id length {length} is invalid")
    return str(frame[10:end], "utf-8"), end


def _skip_tagged_fields(frame: bytes, offset: int) -> int:
    """Step over the header's TAGGED_FIELDS: no header tag is defined yet."""
    count, offset = read_uvarint(frame, offset)
    for _ in range(count):
        _, offset = read_uvarint(frame, offset)
        size, offset = read_uvarint(frame, offset)
        offset += size
    if offset > len(frame):
        raise MalformedRequestError("header tagged fields run past the end")
    return offset


def decode_request(frame: bytes) -> tuple[RequestHeader, Data]:
    """Header and body of a request frame (see parse_request_header for errors)."""
    header, offset = parse_request_header(frame)
    schema = MESSAGES[header.api_key][0]
    try:
        body, _ = schema.decode(frame, header.api_version, offset)
    except MalformedMessageError as exc:
        raise MalformedRequestError(str(exc)) from exc
    return header, body


def encode_request(
    api_key: int,
    api_version: int,
    correlation_id: int,
    client_id: str | None,
    body: Mapping[str, Any],
) -> bytes:
    """A request payload (header + body, no size prefix), for our clients and tests."""
    out = bytearray()
    header = {
        "request_api_key": api_key,
        "request_api_version": api_version,
        "correlation_id": correlation_id,
        "client_id": client_id,
    }
    RequestHeaderSchema.encode_into(out, header, request_header_version(api_key, api_version))
    MESSAGES[api_key][0].encode_into(out, body, api_version)
    return bytes(out)


def encode_response(
    api_key: int, api_version: int, correlation_id: int, body: Mapping[str, Any]
) -> bytes:
    """A response payload (header + body, no size prefix)."""
    out = bytearray(_CORRELATION.pack(correlation_id))
    if response_header_version(api_key, api_version) == 1:
        out.append(0)  # the header's empty TAGGED_FIELDS
    MESSAGES[api_key][1].encode_into(out, body, api_version)
    return bytes(out)


def decode_response(api_key: int, api_version: int, frame: bytes) -> tuple[int, Data]:
    """(correlation_id, body) of a response payload; MalformedMessageError if broken."""
    header, offset = ResponseHeaderSchema.decode(
        frame, response_header_version(api_key, api_version)
    )
    body, _ = MESSAGES[api_key][1].decode(frame, api_version, offset)
    return header.correlation_id, body
