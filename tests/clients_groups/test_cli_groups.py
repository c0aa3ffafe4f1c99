"""`trilog consume --group` and `trilog group list|describe|reset-offsets` as processes,
against an in-process broker."""

from __future__ import annotations

import json
import subprocess
import sys

import trio

from consumer import Consumer
from tests.clients_groups.conftest import FAST_GROUP, group_broker, produce_values

CLI = [sys.executable, "-m", "broker.cli"]
COMMAND_TIMEOUT_S = 60


async def trilog(*args: str) -> subprocess.CompletedProcess:
    def run() -> subprocess.CompletedProcess:
        return subprocess.run([*CLI, *args], capture_output=True, timeout=COMMAND_TIMEOUT_S)

    return await trio.to_thread.run_sync(run)


async def describe(bootstrap: str) -> dict:
    done = await trilog("group", "describe", "g", "-b", bootstrap, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def consume_group(bootstrap: str, count: int) -> tuple[str, ...]:
    return (
        "consume", "t", "--group", "g", "--from-beginning", "-b", bootstrap,
        "--max-messages", str(count), "--session-timeout-ms", "6000", "--timeout-ms", "20000",
    )  # fmt: skip


async def test_consume_as_group_then_describe_lag_and_reset(tmp_path):
    async with group_broker(tmp_path, {"t": 3}) as bootstrap:
        first = [b"v%d" % i for i in range(60)]
        await produce_values(bootstrap, "t", first, 3)
        done = await trilog(*consume_group(bootstrap, 60))
        assert done.returncode == 0, done.stderr
        assert sorted(done.stdout.split()) == sorted(first)

        listed = await trilog("group", "list", "-b", bootstrap, "--json")
        assert {"group_id": "g", "protocol_type": "consumer"} in json.loads(listed.stdout)
        info = await describe(bootstrap)
        assert info["state"] == "Empty" and info["members"] == []
        assert [(p["committed_offset"], p["lag"]) for p in info["partitions"]] == [(20, 0)] * 3

        await produce_values(bootstrap, "t", [b"w%d" % i for i in range(30)], 3)
        info = await describe(bootstrap)
        assert [p["lag"] for p in info["partitions"]] == [10, 10, 10]
        table = await trilog("group", "describe", "g", "-b", bootstrap)
        assert b"LAG" in table.stdout and b"Empty" in table.stdout

        dry = await trilog(
            "group", "reset-offsets", "g", "--topic", "t", "--to-earliest", "-b", bootstrap
        )
        assert dry.returncode == 0 and b"dry run" in dry.stderr, dry.stderr
        assert [p["committed_offset"] for p in (await describe(bootstrap))["partitions"]] == [
            20
        ] * 3
        moved = await trilog(
            "group", "reset-offsets", "g", "--topic", "t", "--to-offset", "25", "--execute",
            "-b", bootstrap, "--json",
        )  # fmt: skip
        assert moved.returncode == 0, moved.stderr
        assert [p["new_offset"] for p in json.loads(moved.stdout)["partitions"]] == [25, 25, 25]
        again = await trilog(*consume_group(bootstrap, 15))
        assert sorted(again.stdout.split()) == sorted(b"w%d" % i for i in range(15, 30))


async def test_reset_refused_while_the_group_has_members(tmp_path):
    async with group_broker(tmp_path, {"t": 3}) as bootstrap:
        await produce_values(bootstrap, "t", [b"x"] * 3, 3)
        consumer = Consumer(
            bootstrap, group_id="g", topics=["t"], auto_offset_reset="earliest", **FAST_GROUP
        )
        async with consumer:
            await consumer.getone()
            done = await trilog(
                "group", "reset-offsets", "g", "--topic", "t", "--to-latest", "--execute",
                "-b", bootstrap,
            )  # fmt: skip
            assert done.returncode == 1
            assert done.stderr.startswith(b"trilog: error: group g has 1 active members")
            assert len(done.stderr.splitlines()) == 1
        missing = await trilog("group", "reset-offsets", "g", "--topic", "t", "-b", bootstrap)
        assert missing.returncode == 2 and b"exactly one of" in missing.stderr
