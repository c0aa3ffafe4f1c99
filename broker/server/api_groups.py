"""The trio shell of the group coordinator: FindCoordinator and the nine group APIs.

``GroupService`` owns one sans-IO ``GroupCoordinator`` per ``__consumer_offsets``
partition this broker leads (broker/coordinator/). Each request gets a fresh
request id and goes to the coordinator of its group; the service executes the
effects that come back, in order:

* ``Persist(AppendRecords)``: one record batch appended to the partition through
  ``Partition.append_as_leader`` with acks=all, then ``on_persisted`` (whose
  effects run next) once the high watermark has passed it, or with the error
  (REQUEST_TIMED_OUT after offsets.commit.timeout.ms);
* ``Reply``: completes the request waiting under that id (now, or later for a
  JoinGroup or SyncGroup parked in the coordinator);
* ``SetTimer``: the coordinator's next deadline, kept by one timer task for all
  coordinators (``run``), which calls ``tick`` when it is due.

``__consumer_offsets`` is created on the first FindCoordinator, with
offsets.topic.num.partitions partitions and replication factor
min(offsets.topic.replication.factor, live brokers). Kafka compacts it; our log
has no cleaner yet, so it uses cleanup.policy=delete with retention.ms=-1 (keep
everything): nothing a coordinator needs is ever deleted, at the price of the
log growing with every commit until compaction exists.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import trio

from broker.controller.image import TopicImage
from broker.controller.topics import NewTopic
from broker.coordinator import (
    OFFSETS_TOPIC,
    AppendRecords,
    GroupConfig,
    GroupCoordinator,
    GroupRequest,
    error_response,
)
from broker.effects import Effect, Persist, Reply, SetTimer
from broker.server.clock import now_ms
from broker.server.controller_service import CreateTopics
from broker.server.waits import AcksWait
from protocol.api import ApiKey
from protocol.errors import ErrorCode
from protocol.headers import RequestHeader
from protocol.records import build_batch, decode_batch
from protocol.schema import Data

if TYPE_CHECKING:
    from broker.server.broker import Broker

log = logging.getLogger(__name__)

Body = Mapping[str, Any]
Result = Body | Callable[[], Awaitable[Body]]

CREATE_TOPIC_TIMEOUT_S = 10.0
"""How long FindCoordinator waits for the controller to create __consumer_offsets."""
KEY_TYPE_GROUP = 0
KEY_TYPE_TRANSACTION = 1
_SINGLE_GROUP_APIS = (
    ApiKey.JOIN_GROUP,
    ApiKey.SYNC_GROUP,
    ApiKey.HEARTBEAT,
    ApiKey.LEAVE_GROUP,
    ApiKey.OFFSET_COMMIT,
    ApiKey.OFFSET_FETCH,
)


def java_string_hashcode(text: str) -> int:
    """Java's String.hashCode: s[0]*31^(n-1) + ... over UTF-16 code units, as a signed int32."""
    h = 0
    data = text.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + (data[i] << 8 | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def partition_for(group_id: str, num_partitions: int) -> int:
    """Kafka's Utils.abs(groupId.hashCode()) % partitions (abs(MIN_VALUE) is 0 there)."""
    h = java_string_hashcode(group_id)
    return (0 if h == -(1 << 31) else abs(h)) % num_partitions


class _Waiter:
    __slots__ = ("event", "reply")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.reply: Body | None = None


class GroupService:
    """Group coordination for one broker: request handlers, effect driver, timers, loading."""

    def __init__(
        self,
        broker: Broker,
        config: GroupConfig | None = None,
        *,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.broker = broker
        self.config = config or GroupConfig()
        self.clock = clock
        self.coordinators: dict[int, GroupCoordinator] = {}
        self._due_ms: dict[int, int] = {}
        self._to_load: deque[int] = deque()
        self._wakeup = trio.Event()
        self._waiting: dict[int, _Waiter] = {}
        self._next_request_id = 0
        self._nursery: trio.Nursery
        self._creating: trio.Event | None = None

    def handlers(self) -> dict[int, Callable[[RequestHeader, Data], Result]]:
        """API key -> handler(header, body), for the broker's dispatcher."""
        table: dict[int, Callable[[RequestHeader, Data], Result]] = {
            ApiKey.FIND_COORDINATOR: self.find_coordinator,
            ApiKey.LIST_GROUPS: self.list_groups,
            ApiKey.DESCRIBE_GROUPS: lambda h, b: self._per_group(
                ApiKey.DESCRIBE_GROUPS, h, b, "groups", "groups"
            ),
            ApiKey.DELETE_GROUPS: lambda h, b: self._per_group(
                ApiKey.DELETE_GROUPS, h, b, "groups_names", "results"
            ),
        }
        for api in _SINGLE_GROUP_APIS:
            table[api] = lambda h, b, api=api: self._one_group(api, h, b)
        return table

    # -- FindCoordinator ----------------------------------------------------------------

    def find_coordinator(self, header: RequestHeader, body: Data) -> Result:
        key_type = body.get("key_type", KEY_TYPE_GROUP)
        if key_type == KEY_TYPE_TRANSACTION:
            return _coordinator_error(ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
        if key_type != KEY_TYPE_GROUP:
            return _coordinator_error(ErrorCode.INVALID_REQUEST)
        if self._offsets_topic() is not None:
            return self._coordinator_answer(body.key)

        if self._creating is None:
            # In the service's nursery, not the request's: a client that hangs up
            # must not cancel a controller command halfway.
            self._creating = trio.Event()
            self._nursery.start_soon(self._create_offsets_topic, self._creating)
        creating = self._creating

        async def after_creating() -> Body:
            with trio.move_on_after(CREATE_TOPIC_TIMEOUT_S):
                await creating.wait()
            return self._coordinator_answer(body.key)

        return after_creating

    def _coordinator_answer(self, group_id: str) -> Body:
        """The leader of the group's __consumer_offsets partition, with its endpoint."""
        topic = self._offsets_topic()
        if topic is None:
            return _coordinator_error(ErrorCode.COORDINATOR_NOT_AVAILABLE)
        state = topic.partitions[partition_for(group_id, len(topic.partitions))]
        address = self.broker.address_of(state.leader) if state.leader >= 0 else None
        if address is None:
            return _coordinator_error(ErrorCode.COORDINATOR_NOT_AVAILABLE)
        host, port = address
        return {
            "error_code": ErrorCode.NONE,
            "error_message": None,
            "node_id": state.leader,
            "host": host,
            "port": port,
        }

    def _offsets_topic(self) -> TopicImage | None:
        return self.broker.metadata.image.topic(OFFSETS_TOPIC)

    async def _create_offsets_topic(self, done: trio.Event) -> None:
        """Create __consumer_offsets through the controller (first FindCoordinator)."""
        try:
            await self._request_offsets_topic()
        finally:
            self._creating = None
            done.set()

    async def _request_offsets_topic(self) -> None:
        live = self.broker.live_brokers
        factor = max(1, min(self.config.offsets_topic_replication_factor, len(live)))
        configs: dict[str, str | None] = {
            "cleanup.policy": "delete",
            "retention.ms": "-1",
            "segment.bytes": str(self.config.offsets_topic_segment_bytes),
        }
        new = NewTopic(OFFSETS_TOPIC, self.config.offsets_topic_num_partitions, factor, {}, configs)
        reply = None
        with trio.move_on_after(CREATE_TOPIC_TIMEOUT_S):
            reply = await self.broker.controller_request(CreateTopics((new,)))
        if reply is None:  # no controller answered: the client retries FindCoordinator
            return
        [result] = reply.response
        if result.error == ErrorCode.NONE:
            log.info(
                "created %s: %d partitions, replication factor %d",
                OFFSETS_TOPIC,
                result.num_partitions,
                result.replication_factor,
            )
        elif result.error != ErrorCode.TOPIC_ALREADY_EXISTS:
            log.warning(
                "cannot create %s: %s %s",
                OFFSETS_TOPIC,
                ErrorCode(result.error).name,
                result.message,
            )
        self.sync_leadership()

    # -- routing ------------------------------------------------------------------------

    def _coordinator_for(self, group_id: str) -> GroupCoordinator | None:
        topic = self._offsets_topic()
        if topic is None:
            return None
        return self.coordinators.get(partition_for(group_id, len(topic.partitions)))

    def _one_group(self, api: int, header: RequestHeader, body: Data) -> Result:
        request = GroupRequest(header.api_version, body, header.client_id or "")
        coordinator = self._coordinator_for(body.group_id)
        if coordinator is None:
            return error_response(api, request, ErrorCode.NOT_COORDINATOR)
        return self._submit(coordinator, api, request)

    def _per_group(
        self, api: int, header: RequestHeader, body: Data, field: str, out_field: str
    ) -> Result:
        """DescribeGroups/DeleteGroups: split the group ids by coordinator, merge the answers."""
        version, client_id = header.api_version, header.client_id or ""
        routed: dict[int, list[str]] = {}
        entries: dict[str, Body] = {}
        for group_id in body[field]:
            coordinator = self._coordinator_for(group_id)
            if coordinator is None:
                alone = GroupRequest(version, {field: [group_id]}, client_id)
                entries[group_id] = error_response(api, alone, ErrorCode.NOT_COORDINATOR)[
                    out_field
                ][0]
            else:
                routed.setdefault(coordinator.partition, []).append(group_id)
        parts = [
            self._submit(
                self.coordinators[p], api, GroupRequest(version, {**body, field: ids}, client_id)
            )
            for p, ids in routed.items()
        ]

        def merge(replies: list[Body]) -> Body:
            for reply in replies:
                entries.update((e["group_id"], e) for e in reply[out_field])
            return {out_field: [entries[g] for g in body[field]]}

        return _gather(parts, merge)

    def list_groups(self, header: RequestHeader, body: Data) -> Result:
        request = GroupRequest(header.api_version, body, header.client_id or "")
        parts = [self._submit(c, ApiKey.LIST_GROUPS, request) for c in self.coordinators.values()]

        def merge(replies: list[Body]) -> Body:
            errors = [r["error_code"] for r in replies if r["error_code"]]
            groups = [g for r in replies for g in r["groups"]]
            return {"error_code": errors[0] if errors else ErrorCode.NONE, "groups": groups}

        return _gather(parts, merge)

    def _submit(self, coordinator: GroupCoordinator, api: int, request: GroupRequest) -> Result:
        """Hand one request to a coordinator; its reply now, or a continuation awaiting it."""
        request_id = self._next_request_id
        self._next_request_id += 1
        waiter = self._waiting[request_id] = _Waiter()
        self._execute(coordinator, coordinator.handle(request_id, api, request, self.clock()))
        if waiter.reply is not None:
            del self._waiting[request_id]
            return waiter.reply

        async def wait_for_reply() -> Body:
            try:
                await waiter.event.wait()
                assert waiter.reply is not None
                return waiter.reply
            finally:
                self._waiting.pop(request_id, None)

        return wait_for_reply

    # -- the effect driver --------------------------------------------------------------

    def _execute(self, coordinator: GroupCoordinator, effects: list[Effect]) -> None:
        queue = deque(effects)
        while queue:
            effect = queue.popleft()
            if isinstance(effect, Reply):
                waiter = self._waiting.get(effect.request_id)
                if waiter is not None:  # else its connection is gone
                    waiter.reply = effect.response
                    waiter.event.set()
            elif isinstance(effect, Persist):
                operation = effect.operation
                outcome = self._append(operation)
                if isinstance(outcome, AcksWait):
                    self._nursery.start_soon(
                        self._persisted_later, coordinator, operation.token, outcome
                    )
                else:
                    queue.extend(coordinator.on_persisted(operation.token, outcome, self.clock()))
            elif isinstance(effect, SetTimer):
                self._set_timer(coordinator, effect.at_ms)
            else:
                raise AssertionError(f"unexpected effect {effect!r}")

    def _append(self, operation: AppendRecords) -> ErrorCode | AcksWait:
        """Append with acks=all: the error now, or a wait for the high watermark."""
        partition = self.broker.replicas.get(OFFSETS_TOPIC, operation.partition)
        if partition is None:
            return ErrorCode.NOT_LEADER_OR_FOLLOWER
        batch = build_batch([(k, v, (), operation.timestamp_ms) for k, v in operation.records])
        now = self.clock()
        result = partition.append_as_leader(batch, now, acks=-1)
        if result.error:
            log.warning(
                "append to %s failed: %s %s", partition.name, result.error.name, result.message
            )
            return result.error
        self.broker.notify_append((OFFSETS_TOPIC, operation.partition))
        if partition.high_watermark > result.last_offset or partition.leader is None:
            return ErrorCode.NONE
        wait = self.broker.new_acks_wait()
        deadline_ms = now + self.config.offsets_commit_timeout_ms
        partition.leader.add_waiter(wait.request_id, result.last_offset, deadline_ms)
        return wait

    async def _persisted_later(
        self, coordinator: GroupCoordinator, token: int, wait: AcksWait
    ) -> None:
        await wait.done.wait()
        if self.coordinators.get(coordinator.partition) is coordinator:
            self._execute(coordinator, coordinator.on_persisted(token, wait.error, self.clock()))

    def _set_timer(self, coordinator: GroupCoordinator, at_ms: int) -> None:
        if self.coordinators.get(coordinator.partition) is not coordinator:
            return
        previous = self._due_ms.get(coordinator.partition)
        self._due_ms[coordinator.partition] = at_ms
        if previous is None or at_ms < previous:
            self._wakeup.set()

    # -- leadership and loading ---------------------------------------------------------

    def on_partition_leadership(self, topic: str, partition: int, is_leader: bool) -> None:
        """This broker became (or stopped being) leader of a partition: load or unload."""
        if topic != OFFSETS_TOPIC:
            return
        current = self.coordinators.get(partition)
        if is_leader and current is None:
            self.coordinators[partition] = GroupCoordinator(partition, self.config, self.broker.rng)
            self._to_load.append(partition)
            self._wakeup.set()
        elif not is_leader and current is not None:
            del self.coordinators[partition]
            self._due_ms.pop(partition, None)
            self._execute(current, current.unload(self.clock()))

    def sync_leadership(self) -> None:
        """A coordinator for each offsets partition whose replica here is the leader."""
        topic = self._offsets_topic()
        led = set()
        if topic is not None:
            led = {p for p in topic.partitions if self._leads(p)}
        for partition in sorted(led | self.coordinators.keys()):
            self.on_partition_leadership(OFFSETS_TOPIC, partition, partition in led)

    def _leads(self, index: int) -> bool:
        """Whether this broker's replica of the partition is leader: the image may name us
        before the replica has taken the role (or opened its log)."""
        partition = self.broker.replicas.get(OFFSETS_TOPIC, index)
        return partition is not None and partition.is_leader

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Load coordinators as they are assigned and tick them when their timers are due.

        Leadership arrives through sync_leadership(), which the broker calls each time
        its partitions have followed the metadata image (never before: a partition's
        log may still be truncated when this broker rejoins)."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery  # acks=all appends wait for replication in here
            task_status.started()
            while True:
                while self._to_load:
                    await self._load(self._to_load.popleft())
                self._tick_due()
                await self._sleep_until_due()

    async def _sleep_until_due(self) -> None:
        self._wakeup = trio.Event()
        if self._to_load:
            return
        due_ms = min(self._due_ms.values(), default=None)
        if due_ms is None:
            await self._wakeup.wait()
            return
        with trio.move_on_after(max(due_ms - self.clock(), 0) / 1000):
            await self._wakeup.wait()

    def _tick_due(self) -> None:
        now = self.clock()
        for partition, at_ms in list(self._due_ms.items()):
            coordinator = self.coordinators.get(partition)
            if at_ms <= now and coordinator is not None:
                del self._due_ms[partition]
                self._execute(coordinator, coordinator.tick(now))

    async def _load(self, index: int) -> None:
        """Replay the partition a chunk at a time; requests meanwhile get LOAD_IN_PROGRESS."""
        coordinator = self.coordinators.get(index)
        partition = self.broker.replicas.get(OFFSETS_TOPIC, index)
        if coordinator is None or not coordinator.loading or partition is None:
            return
        log_ = partition.log
        offset, end = log_.log_start_offset, log_.log_end_offset
        while offset < end:
            data = log_.read(offset, self.config.load_chunk_bytes).data
            pos = 0
            while pos < len(data):
                header, records = decode_batch(data, pos)
                if not header.is_control:
                    coordinator.load((r.key, r.value) for r in records)
                pos += header.size
                offset = header.last_offset + 1
            await trio.sleep(0)
            if self.coordinators.get(index) is not coordinator:
                return  # unloaded while we were reading
        self._execute(coordinator, coordinator.finish_load(self.clock()))


def _coordinator_error(error: ErrorCode) -> Body:
    return {"error_code": error, "error_message": None, "node_id": -1, "host": "", "port": -1}


def _gather(parts: list[Result], merge: Callable[[list[Body]], Body]) -> Result:
    """Merge replies that may still be coming into one response."""
    if all(isinstance(part, Mapping) for part in parts):
        return merge(list(parts))  # type: ignore[arg-type]

    async def wait_all() -> Body:
        replies = [part if isinstance(part, Mapping) else await part() for part in parts]
        return merge(replies)

    return wait_all
