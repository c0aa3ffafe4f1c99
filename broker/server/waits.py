"""Requests parked until a core says they are done (acks=all produces)."""

from __future__ import annotations

import trio

from protocol.errors import ErrorCode


class AcksWait:
    """One partition's acks=all append waiting for the high watermark."""

    __slots__ = ("request_id", "done", "error")

    def __init__(self, request_id: int) -> None:
        self.request_id = request_id
        self.done = trio.Event()
        self.error = ErrorCode.NONE

    def finish(self, error: ErrorCode) -> None:
        self.error = error
        self.done.set()
