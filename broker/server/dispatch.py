"""Request dispatch: one frame in, one response (now or later) out.

Versions are checked against protocol/api_versions.py, the single table of
what is served. Kafka's answers to bad requests are kept: an ApiVersions
request at an unserved version gets UNSUPPORTED_VERSION and our table (so the
client retries lower, KIP-511); any other unknown API key, unserved version
or undecodable body closes the connection, with one log line.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from broker.server.connection import CloseConnection, Reply
from protocol.api import ApiKey
from protocol.api_versions import is_served, unsupported_api_versions_response
from protocol.errors import MalformedRequestError, ProtocolError
from protocol.headers import RequestHeader, decode_request, encode_response, peek_request_ids
from protocol.schema import Data

log = logging.getLogger(__name__)

Body = Mapping[str, Any]
HandlerResult = Body | None | Callable[[], Awaitable[Body | None]]
Handler = Callable[[RequestHeader, Data], HandlerResult]


class RequestDispatcher:
    """Decodes a frame, calls the handler for its API, encodes what it returns."""

    def __init__(self, handlers: dict[int, Handler]) -> None:
        self.handlers = handlers

    def __call__(self, frame: bytes) -> Reply:
        try:
            api_key, api_version, correlation_id = peek_request_ids(frame)
        except MalformedRequestError as exc:
            raise CloseConnection(str(exc)) from None
        if not is_served(api_key, api_version) or api_key not in self.handlers:
            if api_key == ApiKey.API_VERSIONS:
                return unsupported_api_versions_response(correlation_id)
            raise CloseConnection(
                f"unsupported request: api key {api_key} version {api_version} "
                f"(correlation id {correlation_id})"
            )
        try:
            header, body = decode_request(frame)
        except ProtocolError as exc:
            raise CloseConnection(
                f"malformed request api key {api_key} v{api_version}: {exc}"
            ) from None
        result = self.handlers[api_key](header, body)
        if result is None:
            return None
        if isinstance(result, Mapping):
            return encode_response(api_key, api_version, correlation_id, result)
        return _encode_later(result, header)


def _encode_later(make_body: Callable[[], Awaitable[Body | None]], header: RequestHeader):
    async def run() -> bytes | None:
        body = await make_body()
        if body is None:
            return None
        return encode_response(header.api_key, header.api_version, header.correlation_id, body)

    return run
