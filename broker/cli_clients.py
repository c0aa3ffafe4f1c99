"""`trilog produce` and `trilog consume`: pipe lines into a topic and back out.

Both run on trilog's own producer and consumer libraries. `consume --group`
reads as a member of a consumer group and commits what it has printed
(at least once: a record may be printed again after a crash, never skipped).
`register` also adds the `trilog group` commands (broker/cli_groups.py). Errors (an
unreachable broker, an unknown topic or partition, a failed delivery) are one
`trilog: error:` line on stderr and exit code 1; malformed options exit 2.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import trio
import typer

from consumer import Consumer, ConsumerRecord
from producer import DeliveryHandle, KafkaClientError, Producer, parse_bootstrap
from producer.client import single_exception
from producer.producer import ACKS, CODECS

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
LINE_BYTES_MAX = 1024 * 1024
STDIN_CHUNK_BYTES = 64 * 1024
PENDING_RECORDS_MAX = 10000
CLI_MAX_BLOCK_MS = 10000
BOOTSTRAP_HELP = f"HOST:PORT,... (default $TRILOG_BOOTSTRAP or {DEFAULT_BOOTSTRAP})."


def fail(message: str, code: int = 2) -> None:
    """broker.cli.fail, imported late: broker.cli imports this module to register it."""
    from broker.cli import fail as cli_fail

    cli_fail(message, code)


def _bootstrap(value: str | None) -> str:
    """--bootstrap, else $TRILOG_BOOTSTRAP, else the local default; checked for shape."""
    chosen = value or os.environ.get("TRILOG_BOOTSTRAP") or DEFAULT_BOOTSTRAP
    try:
        parse_bootstrap(chosen)
    except ValueError as exc:
        fail(f"--bootstrap: {exc}")
    return chosen


def _run(main: Callable[..., Any], *args: Any) -> Any:
    """trio.run(main), with client failures turned into one error line and exit 1."""
    try:
        return trio.run(main, *args)
    except (KafkaClientError, OSError, BaseExceptionGroup) as exc:
        inner = single_exception(exc)
        if isinstance(inner, KeyboardInterrupt):
            raise inner from None
        if not isinstance(inner, KafkaClientError | OSError):
            raise
        fail(str(inner), 1)


async def _stdin_lines(separator: bytes = b"\n") -> AsyncIterator[bytes]:
    """Lines of stdin without their newline, read in a worker thread so trio stays live."""
    stdin = sys.stdin.buffer
    pending = b""
    while True:
        chunk = await trio.to_thread.run_sync(
            stdin.read1, STDIN_CHUNK_BYTES, abandon_on_cancel=True
        )
        if not chunk:
            break
        *lines, pending = (pending + chunk).split(separator)
        if len(pending) > LINE_BYTES_MAX:
            raise KafkaClientError(f"a line is longer than {LINE_BYTES_MAX} bytes")
        for line in lines:
            yield line
    if pending:
        yield pending


def register(app: typer.Typer) -> None:
    """Add the produce, consume and group commands to the trilog app."""
    from broker.cli_groups import register as register_groups

    app.command("produce")(produce)
    app.command("consume")(consume)
    register_groups(app)


def produce(
    topic: str = typer.Argument(..., help="Topic to write to."),
    bootstrap: str | None = typer.Option(
        None,
        "--bootstrap",
        "-b",
        help=f"HOST:PORT,... (default $TRILOG_BOOTSTRAP or {DEFAULT_BOOTSTRAP}).",
    ),
    key_separator: str | None = typer.Option(
        None, help="Split each line at the first SEP: key before it, value after."
    ),
    partition: int | None = typer.Option(None, min=0, help="Write every record to this partition."),
    acks: str = typer.Option("all", help="all, 1 or 0."),
    compression: str = typer.Option("none", help="none, gzip, snappy, lz4 or zstd."),
) -> None:
    """Send each line of stdin as one record; print a summary at the end.

    Example: printf 'k1:hello\\nk2:world\\n' | trilog produce events --key-separator :
    """
    if acks not in ACKS:
        fail(f"--acks must be all, 1 or 0, not {acks!r}")
    if compression not in CODECS:
        fail(f"--compression must be one of {', '.join(CODECS)}, not {compression!r}")
    if key_separator == "":
        fail("--key-separator must not be empty")
    options = {
        "bootstrap": _bootstrap(bootstrap),
        "acks": ACKS[acks],
        "compression": compression,
        "separator": key_separator.encode() if key_separator else None,
        "partition": partition,
    }
    count, partitions, failure = _run(_produce, topic, options)
    if failure is not None:
        fail(f"{failure} ({count} of the records were delivered)", 1)
    where = ",".join(str(p) for p in sorted(partitions)) or "-"
    typer.echo(f"produced {count} records to {topic} (partitions {where})")


async def _produce(topic: str, options: dict[str, Any]) -> tuple[int, set[int], str | None]:
    """Produce stdin's lines; (delivered count, partitions used, first failure or None)."""
    outcome: dict[str, Any] = {"count": 0, "partitions": set(), "failure": None}
    send, receive = trio.open_memory_channel[DeliveryHandle](PENDING_RECORDS_MAX)
    async with (
        Producer(
            options["bootstrap"],
            acks=options["acks"],
            compression=options["compression"],
            max_block_ms=CLI_MAX_BLOCK_MS,
        ) as producer,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(_tally, receive, outcome)
        async with send:
            async for line in _stdin_lines():
                key, value = _split(line, options["separator"])
                handle = await producer.enqueue(
                    topic, value, key=key, partition=options["partition"]
                )
                await send.send(handle)
            await producer.flush()
    return outcome["count"], outcome["partitions"], outcome["failure"]


def _split(line: bytes, separator: bytes | None) -> tuple[bytes | None, bytes]:
    if separator is None or separator not in line:
        return None, line
    key, _, value = line.partition(separator)
    return key, value


async def _tally(receive: trio.MemoryReceiveChannel[DeliveryHandle], outcome: dict) -> None:
    """Wait for each delivery in order; count successes and keep the first failure."""
    async with receive:
        async for handle in receive:
            try:
                meta = await handle.result()
            except KafkaClientError as exc:
                outcome["failure"] = outcome["failure"] or str(exc)
                continue
            outcome["count"] += 1
            outcome["partitions"].add(meta.partition)


def consume(
    topic: str = typer.Argument(..., help="Topic to read."),
    bootstrap: str | None = typer.Option(
        None,
        "--bootstrap",
        "-b",
        help=f"HOST:PORT,... (default $TRILOG_BOOTSTRAP or {DEFAULT_BOOTSTRAP}).",
    ),
    from_beginning: bool = typer.Option(False, help="Start at the oldest record, not the end."),
    partition: int | None = typer.Option(None, min=0, help="Read only this partition."),
    offset: int | None = typer.Option(
        None, min=0, help="Start at this offset (needs --partition)."
    ),
    max_messages: int | None = typer.Option(None, min=1, help="Stop after this many records."),
    timeout_ms: int | None = typer.Option(
        None, min=0, help="Stop after this long without records."
    ),
    print_key: bool = typer.Option(False, help="Print KEY<TAB>VALUE."),
    print_offset: bool = typer.Option(False, help="Print PARTITION:OFFSET<TAB> first."),
    group: str | None = typer.Option(
        None, "--group", "-g", help="Read as a member of this consumer group, committing."
    ),
    session_timeout_ms: int = typer.Option(
        45000, min=1, help="With --group: how long the group waits for a silent member."
    ),
) -> None:
    """Print the topic's record values, one per line; Ctrl-C stops.

    With --group, the group's committed offsets say where to start (else the end,
    or the start with --from-beginning), and printed records are committed.

    Example: trilog consume events --from-beginning --max-messages 10 --print-key
    Example: trilog consume events --group billing --from-beginning
    """
    if group is not None and (partition is not None or offset is not None):
        fail("--group excludes --partition and --offset (the group assigns partitions)")
    if offset is not None and partition is None:
        fail("--offset needs --partition")
    if offset is not None and from_beginning:
        fail("--offset and --from-beginning exclude each other")
    options = {
        "bootstrap": _bootstrap(bootstrap),
        "from_beginning": from_beginning,
        "partition": partition,
        "offset": offset,
        "max_messages": max_messages or math.inf,
        "timeout_s": math.inf if timeout_ms is None else timeout_ms / 1000,
        "print_key": print_key,
        "print_offset": print_offset,
        "group": group,
        "session_timeout_ms": session_timeout_ms,
    }
    progress = {"count": 0}
    with contextlib.suppress(KeyboardInterrupt):
        _run(_consume_group if group else _consume, topic, options, progress)
    typer.echo(f"consumed {progress['count']} records", err=True)


async def _consume(topic: str, options: dict[str, Any], progress: dict[str, int]) -> None:
    async with Consumer(options["bootstrap"], auto_offset_reset="earliest") as consumer:
        count = await consumer.partitions_for(topic)
        partition = options["partition"]
        if partition is not None and partition >= count:
            raise KafkaClientError(f"topic {topic} has no partition {partition} (it has {count})")
        chosen = range(count) if partition is None else [partition]
        consumer.assign([(topic, p) for p in chosen])
        if options["offset"] is not None:
            consumer.seek((topic, partition), options["offset"])
        elif options["from_beginning"]:
            await consumer.seek_to_beginning()
        else:
            await consumer.seek_to_end()
        while progress["count"] < options["max_messages"]:
            record = None
            with trio.move_on_after(options["timeout_s"]):
                record = await consumer.getone()
            if record is None:
                return
            _emit(_format(record, options["print_key"], options["print_offset"]), progress)


async def _consume_group(topic: str, options: dict[str, Any], progress: dict[str, int]) -> None:
    """Consume as a group member; commit whenever everything fetched has been printed."""
    consumer = Consumer(
        options["bootstrap"],
        group_id=options["group"],
        topics=[topic],
        auto_offset_reset="earliest" if options["from_beginning"] else "latest",
        session_timeout_ms=options["session_timeout_ms"],
        heartbeat_interval_ms=min(3000, options["session_timeout_ms"] // 3),
    )
    async with consumer:
        while progress["count"] < options["max_messages"]:
            record = None
            with trio.move_on_after(options["timeout_s"]):
                record = await consumer.getone()
            if record is None:
                return
            _emit(_format(record, options["print_key"], options["print_offset"]), progress)
            if not consumer.has_buffered():
                await consumer.commit()


@trio.lowlevel.enable_ki_protection
def _emit(line: bytes, progress: dict[str, int]) -> None:
    """Print a record and count it as one step: Ctrl-C waits for the next checkpoint, so
    the final count is what was printed."""
    typer.echo(line)
    progress["count"] += 1


def _format(record: ConsumerRecord, print_key: bool, print_offset: bool) -> bytes:
    line = b"null" if record.value is None else record.value
    if print_key:
        line = (b"null" if record.key is None else record.key) + b"\t" + line
    if print_offset:
        line = f"{record.partition}:{record.offset}\t".encode() + line
    return line
