"""TCP listeners: accept connections within the configured limits."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

import trio

from broker.server.connection import Connection, ConnectionLimits, Dispatcher

log = logging.getLogger(__name__)


class ConnectionTracker:
    """Counts open connections, in total and per peer IP, against their limits."""

    def __init__(self, total_max: int, per_ip_max: int) -> None:
        self.total_max = total_max
        self.per_ip_max = per_ip_max
        self.by_ip: Counter[str] = Counter()
        self.total = 0
        self.idle = trio.Event()
        self.idle.set()
        self.connections: set[Connection] = set()

    def stop_reading_all(self) -> None:
        for connection in self.connections:
            connection.stop_reading()

    def try_open(self, ip: str) -> str | None:
        """Register a connection; the reason it is refused, or None."""
        if self.total >= self.total_max:
            return f"max.connections ({self.total_max}) reached"
        if self.by_ip[ip] >= self.per_ip_max:
            return f"max.connections.per.ip ({self.per_ip_max}) reached for {ip}"
        self.total += 1
        self.by_ip[ip] += 1
        self.idle = trio.Event() if self.total == 1 else self.idle
        return None

    def close(self, ip: str) -> None:
        assert self.total > 0 and self.by_ip[ip] > 0
        self.total -= 1
        self.by_ip[ip] -= 1
        if not self.by_ip[ip]:
            del self.by_ip[ip]
        if self.total == 0:
            self.idle.set()


def _peer(stream: trio.SocketStream) -> tuple[str, str]:
    try:
        host, port = stream.socket.getpeername()[:2]
    except OSError:
        return "?", "?"
    return host, f"{host}:{port}"


async def serve_listener(
    listeners: list[trio.SocketListener],
    make_dispatcher: Callable[[], Dispatcher],
    limits: ConnectionLimits,
    tracker: ConnectionTracker,
    connection_nursery: trio.Nursery,
    *,
    task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED,
) -> None:
    """Accept on already-bound listeners until cancelled; connections live in
    connection_nursery, so cancelling this stops accepting without cutting them."""
    task_status.started()
    async with trio.open_nursery() as accept_nursery:
        for listener in listeners:
            accept_nursery.start_soon(
                _accept_loop, listener, make_dispatcher, limits, tracker, connection_nursery
            )


async def _accept_loop(
    listener: trio.SocketListener,
    make_dispatcher: Callable[[], Dispatcher],
    limits: ConnectionLimits,
    tracker: ConnectionTracker,
    connection_nursery: trio.Nursery,
) -> None:
    async with listener:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:  # EMFILE and friends: back off, keep serving others
                log.warning("accept failed on %s: %s", listener.socket.getsockname(), exc)
                await trio.sleep(0.1)
                continue
            ip, peer = _peer(stream)
            refused = tracker.try_open(ip)
            if refused:
                log.warning("refusing connection from %s: %s", peer, refused)
                await stream.aclose()
                continue
            connection = Connection(stream, make_dispatcher(), limits, peer)
            tracker.connections.add(connection)
            connection_nursery.start_soon(_run_connection, connection, tracker, ip)


async def _run_connection(connection: Connection, tracker: ConnectionTracker, ip: str) -> None:
    try:
        await connection.serve()
    except* AssertionError:
        raise  # a broken invariant stops the broker loudly
    except* Exception:  # a bug in a request handler: drop this client, keep the broker
        log.exception("closing connection %s after an internal error", connection.peer)
    finally:
        tracker.connections.discard(connection)
        tracker.close(ip)
