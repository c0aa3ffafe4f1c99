"""A broker's life as the controller sees it (Kafka's BrokerLifecycleManager).

Register (a fresh incarnation id per process start), then heartbeat every
broker_heartbeat_interval_ms with how far we have applied the metadata log.
The controller unfences us once we are caught up; it fences us if the
heartbeats stop. A stale broker epoch (the controller forgot us) means
registering again. On shutdown we ask for a controlled shutdown and wait,
bounded, until the controller has moved our leaderships away.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

import trio

from broker.controller.records import Endpoint
from broker.server.controller_service import (
    BrokerHeartbeat,
    ControllerClient,
    RegisterBroker,
)
from protocol.errors import ErrorCode

log = logging.getLogger(__name__)


class BrokerLifecycle:
    def __init__(
        self,
        node_id: int,
        listeners: Callable[[], tuple[Endpoint, ...]],
        rack: str | None,
        client: ControllerClient,
        applied_index: Callable[[], int],
        heartbeat_interval_ms: int,
    ) -> None:
        self.node_id = node_id
        self.listeners = listeners
        self.rack = rack
        self.client = client
        self.applied_index = applied_index
        self.interval_s = heartbeat_interval_ms / 1000
        self.incarnation_id = uuid.uuid4().hex
        self.broker_epoch = -1
        self.fenced = True
        self.unfenced = trio.Event()
        self.shutting_down = False
        self.shutdown_done = trio.Event()
        self._wake = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await self._register()
            await self._heartbeat_until_stale()

    async def _register(self) -> None:
        while True:
            request = RegisterBroker(self.node_id, self.incarnation_id, self.listeners(), self.rack)
            reply = await self.client.request(request)
            response = reply.response
            if response.error == ErrorCode.NONE:
                self.broker_epoch = response.broker_epoch
                log.info("broker %d registered with epoch %d", self.node_id, self.broker_epoch)
                return
            log.warning(
                "broker %d registration refused: %s %s",
                self.node_id,
                ErrorCode(response.error).name,
                response.message,
            )
            await trio.sleep(self.interval_s)

    async def _heartbeat_until_stale(self) -> None:
        while True:
            request = BrokerHeartbeat(
                self.node_id,
                self.broker_epoch,
                self.applied_index(),
                want_shutdown=self.shutting_down,
            )
            # a heartbeat stuck on a stopped controller must not outlast our session
            reply = await self.client.request(request, attempt_timeout_s=2 * self.interval_s)
            response = reply.response
            if response.error == ErrorCode.STALE_BROKER_EPOCH:
                log.warning(
                    "broker %d: epoch %d is stale; registering again",
                    self.node_id,
                    self.broker_epoch,
                )
                self.fenced = True
                return
            if response.error == ErrorCode.NONE:
                self._note(response)
            self._wake = trio.Event()
            with trio.move_on_after(self.interval_s):
                await self._wake.wait()

    def _note(self, response) -> None:
        if self.fenced != response.is_fenced:
            self.fenced = response.is_fenced
            state = "fenced" if self.fenced else "unfenced"
            log.info("broker %d is %s (epoch %d)", self.node_id, state, self.broker_epoch)
        if not self.fenced:
            self.unfenced.set()
        if response.should_shut_down:
            self.shutdown_done.set()

    async def controlled_shutdown(self, timeout_s: float) -> bool:
        """Ask the controller to move our leaderships away; True if it confirmed."""
        self.shutting_down = True
        self._wake.set()
        with trio.move_on_after(timeout_s):
            await self.shutdown_done.wait()
        if self.shutdown_done.is_set():
            log.info("broker %d: controlled shutdown complete", self.node_id)
        else:
            log.warning(
                "broker %d: controlled shutdown not confirmed in %.1fs; stopping anyway",
                self.node_id,
                timeout_s,
            )
        return self.shutdown_done.is_set()
