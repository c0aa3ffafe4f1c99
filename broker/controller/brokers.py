"""Broker liveness: registration states, heartbeats, sessions (BrokerHeartbeatManager).

A broker's registration (fenced, in controlled shutdown) lives in the metadata
image; its heartbeat times live here, as soft state of the active controller
only. They are not replicated: after a failover the new controller gives every
broker a whole session timeout of grace before it may fence one.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from broker.controller.image import BrokerRegistration, MetadataImage

log = logging.getLogger(__name__)


class BrokerState(enum.Enum):
    FENCED = "fenced"
    UNFENCED = "unfenced"
    CONTROLLED_SHUTDOWN = "controlled shutdown"
    SHUTDOWN_NOW = "shutdown now"


def current_state(registration: BrokerRegistration) -> BrokerState:
    if registration.fenced:
        return BrokerState.FENCED
    if registration.in_controlled_shutdown:
        return BrokerState.CONTROLLED_SHUTDOWN
    return BrokerState.UNFENCED


@dataclass(frozen=True, slots=True)
class HeartbeatFacts:
    want_fence: bool
    want_shutdown: bool
    caught_up: bool
    """The broker has replayed metadata past its own registration."""
    leads: bool
    """The broker still leads some partition."""
    others_caught_up: bool
    """Every active broker has replayed past this broker's controlled-shutdown changes."""


def next_state(state: BrokerState, hb: HeartbeatFacts) -> BrokerState:
    """Where a heartbeat takes a broker: the legal transitions, as one table."""
    match state, hb.want_fence, hb.want_shutdown:
        case BrokerState.FENCED, _, True:
            return BrokerState.SHUTDOWN_NOW
        case BrokerState.FENCED, True, False:
            return BrokerState.FENCED
        case BrokerState.FENCED, False, False:
            return BrokerState.UNFENCED if hb.caught_up else BrokerState.FENCED
        case BrokerState.UNFENCED, True, True:
            return BrokerState.SHUTDOWN_NOW
        case BrokerState.UNFENCED, True, False:
            return BrokerState.FENCED
        case BrokerState.UNFENCED, False, True:
            return BrokerState.CONTROLLED_SHUTDOWN if hb.leads else BrokerState.SHUTDOWN_NOW
        case BrokerState.UNFENCED, False, False:
            return BrokerState.UNFENCED
        case BrokerState.CONTROLLED_SHUTDOWN, _, _:
            done = not hb.leads and hb.others_caught_up
            return BrokerState.SHUTDOWN_NOW if done else BrokerState.CONTROLLED_SHUTDOWN
    raise AssertionError(f"no transition from {state} for {hb}")


@dataclass(slots=True)
class Session:
    last_contact_ms: int
    metadata_offset: int = -1
    controlled_shutdown_offset: int | None = None
    """Metadata offset of the changes that moved leadership off a shutting-down broker."""


class Sessions:
    """Heartbeat soft state per broker id; the active controller's alone."""

    def __init__(self, session_timeout_ms: int) -> None:
        assert session_timeout_ms > 0
        self.session_timeout_ms = session_timeout_ms
        self._by_id: dict[int, Session] = {}

    def get(self, broker_id: int) -> Session | None:
        return self._by_id.get(broker_id)

    def touch(self, broker_id: int, now_ms: int, metadata_offset: int) -> Session:
        session = self._by_id.setdefault(broker_id, Session(now_ms))
        session.last_contact_ms = max(session.last_contact_ms, now_ms)
        session.metadata_offset = max(session.metadata_offset, metadata_offset)
        return session

    def grant_grace(self, image: MetadataImage, now_ms: int, grace_ms: int | None = None) -> None:
        """A new active controller: every registered broker must be heard from within
        grace_ms (default: a full session) or it is fenced."""
        grace = self.session_timeout_ms if grace_ms is None else grace_ms
        assert 0 < grace <= self.session_timeout_ms
        start = now_ms - (self.session_timeout_ms - grace)
        self._by_id = {broker_id: Session(start) for broker_id in image.brokers}
        log.info("controller activated: %d brokers get %d ms of grace", len(self._by_id), grace)

    def forget(self, broker_id: int) -> None:
        self._by_id.pop(broker_id, None)

    def expired(self, image: MetadataImage, now_ms: int) -> list[int]:
        """Unfenced brokers whose last heartbeat is older than the session timeout."""
        stale = []
        for broker_id in sorted(image.brokers):
            if image.brokers[broker_id].fenced:
                continue
            session = self._by_id.setdefault(broker_id, Session(now_ms))
            if now_ms - session.last_contact_ms > self.session_timeout_ms:
                stale.append(broker_id)
        return stale

    def lowest_active_offset(self, image: MetadataImage) -> int | None:
        """The lowest metadata offset any usable broker reported; None when there is none."""
        offsets = [
            self._by_id[b].metadata_offset for b in image.usable_brokers() if b in self._by_id
        ]
        return min(offsets) if offsets else None
