"""trilog's consumer as a group member, against one in-process broker: sharing
partitions, rebalancing on join and leave, commits surviving a restart, pause."""

from __future__ import annotations

import trio

from consumer import CommitFailedError, Consumer
from tests.clients_groups.conftest import (
    DEADLINE_S,
    FAST_GROUP,
    group_broker,
    produce_values,
    wait_until,
)

PARTITIONS = 6
COUNT = 120


def values(tag: str, count: int = COUNT) -> list[bytes]:
    return [f"{tag}-{i}".encode() for i in range(count)]


def member(bootstrap: str, group: str = "g", **overrides) -> Consumer:
    options = {"auto_offset_reset": "earliest", **FAST_GROUP, **overrides}
    return Consumer(bootstrap, group_id=group, topics=["t"], **options)


async def drain(consumer: Consumer, got: list, stop: trio.Event) -> None:
    """Collect (partition, offset, value) until stop is set."""
    with trio.CancelScope() as scope:

        async def watch() -> None:
            await stop.wait()
            scope.cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch)
            async for record in consumer:
                got.append((record.partition, record.offset, record.value))


def partitions_of(consumer: Consumer) -> set[int]:
    return {p for _, p in consumer.assignment()}


async def test_two_members_split_six_partitions_and_read_everything(tmp_path):
    async with group_broker(tmp_path, {"t": PARTITIONS}) as bootstrap:
        sent = values("a")
        await produce_values(bootstrap, "t", sent, PARTITIONS)
        got_a: list = []
        got_b: list = []
        stop = trio.Event()
        async with member(bootstrap) as a, member(bootstrap) as b, trio.open_nursery() as n:
            n.start_soon(drain, a, got_a, stop)
            n.start_soon(drain, b, got_b, stop)
            await wait_until(lambda: len(got_a) + len(got_b) >= COUNT, "all records")
            await wait_until(
                lambda: len(partitions_of(a)) == 3 and len(partitions_of(b)) == 3, "3 + 3"
            )
            assert partitions_of(a) | partitions_of(b) == set(range(PARTITIONS))
            stop.set()
        assert sorted(v for *_, v in got_a + got_b) == sorted(sent)
        parts_a = {p for p, *_ in got_a}
        assert not parts_a & {p for p, *_ in got_b}, "a partition was read by both members"


async def test_rebalance_on_join_and_leave(tmp_path):
    async with group_broker(tmp_path, {"t": PARTITIONS}) as bootstrap:
        await produce_values(bootstrap, "t", values("a"), PARTITIONS)
        got_a: list = []
        stop_a = trio.Event()
        async with member(bootstrap) as a, trio.open_nursery() as n:
            n.start_soon(drain, a, got_a, stop_a)
            await wait_until(lambda: len(got_a) == COUNT, "a reads all")
            assert partitions_of(a) == set(range(PARTITIONS))
            got_b: list = []
            stop_b = trio.Event()
            async with member(bootstrap) as b:
                n.start_soon(drain, b, got_b, stop_b)
                await wait_until(lambda: len(partitions_of(b)) == 3, "b joins")
                await wait_until(lambda: len(partitions_of(a)) == 3, "a gives up 3")
                await produce_values(bootstrap, "t", values("b"), PARTITIONS)
                await wait_until(lambda: len(got_a) + len(got_b) >= 2 * COUNT, "b's share")
                assert {p for p, *_ in got_b} == partitions_of(b)
                stop_b.set()
            # b left on close: a takes everything back without waiting for b's session
            with trio.fail_after(3):
                await wait_until(lambda: len(partitions_of(a)) == PARTITIONS, "a gets all")
            stop_a.set()
        everything = sorted(v for *_, v in got_a + got_b)
        assert set(everything) == set(values("a") + values("b"))


async def test_commit_then_restart_resumes_from_committed_offsets(tmp_path):
    async with group_broker(tmp_path, {"t": PARTITIONS}) as bootstrap:
        sent = values("a")
        await produce_values(bootstrap, "t", sent, PARTITIONS)
        first = []
        async with member(bootstrap, enable_auto_commit=False) as c:
            with trio.fail_after(DEADLINE_S):
                while len(first) < COUNT // 2:
                    first.append((await c.getone()).value)
            await c.commit()
            committed = await c.committed([("t", p) for p in range(PARTITIONS)])
            assert sum(o or 0 for o in committed.values()) == COUNT // 2
        rest = []
        async with member(bootstrap, enable_auto_commit=False) as c:
            with trio.fail_after(DEADLINE_S):
                while len(rest) < COUNT - len(first):
                    rest.append((await c.getone()).value)
            with trio.move_on_after(0.5):
                rest.append((await c.getone()).value)  # nothing more: no redelivery
        assert sorted(first + rest) == sorted(sent)


async def test_auto_commit_on_close(tmp_path):
    async with group_broker(tmp_path, {"t": PARTITIONS}) as bootstrap:
        await produce_values(bootstrap, "t", values("a"), PARTITIONS)
        async with member(bootstrap) as c:
            with trio.fail_after(DEADLINE_S):
                for _ in range(10):
                    await c.getone()
        async with member(bootstrap, enable_auto_commit=False) as c:
            committed = await c.committed([("t", p) for p in range(PARTITIONS)])
        assert sum(o or 0 for o in committed.values()) == 10


async def test_pause_and_resume(tmp_path):
    async with group_broker(tmp_path, {"t": PARTITIONS}) as bootstrap:
        await produce_values(bootstrap, "t", values("a"), PARTITIONS)
        async with member(bootstrap) as c:
            first = await c.getone()
            paused = [("t", p) for p in range(PARTITIONS) if p != first.partition]
            c.pause(paused)
            assert c.paused() == set(paused)
            with trio.fail_after(DEADLINE_S):
                for _ in range(COUNT // PARTITIONS - 1):
                    assert (await c.getone()).partition == first.partition
            with trio.move_on_after(0.5):
                await c.getone()
                raise AssertionError("a paused partition was read")
            c.resume(paused)
            with trio.fail_after(DEADLINE_S):
                rest = [await c.getone() for _ in range(COUNT - COUNT // PARTITIONS)]
            assert {r.partition for r in rest} == {p for _, p in paused}


async def test_commit_refused_after_the_group_moved_on(tmp_path):
    async with group_broker(tmp_path, {"t": PARTITIONS}) as bootstrap:
        await produce_values(bootstrap, "t", values("a"), PARTITIONS)
        async with member(bootstrap, enable_auto_commit=False) as c:
            await c.getone()
            c._group.generation = type(c._group.generation)(
                c._group.generation.generation_id + 5, c._group.member_id, "range", "", {}
            )
            try:
                await c.commit()
            except CommitFailedError:
                pass
            else:
                raise AssertionError("a commit in a wrong generation was accepted")
            await c.getone()  # rejoins and carries on
