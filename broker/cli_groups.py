"""`trilog group list|describe|reset-offsets`: inspect consumer groups and move their offsets.

Each command asks the brokers named by --bootstrap (default $TRILOG_BOOTSTRAP,
else 127.0.0.1:9092), prints a table or --json, and reports a problem as one
`trilog: error:` line (exit 1; 2 for bad options). reset-offsets is a dry run
unless --execute is given, and refuses a group that has members, as Kafka's
kafka-consumer-groups does: their commits would overwrite the reset.
"""

from __future__ import annotations

import json
from typing import Any

import typer

from broker.cli_clients import BOOTSTRAP_HELP, _bootstrap, _run, fail
from consumer.admin import GroupAdmin, GroupDescription
from consumer.consumer import TopicPartition
from producer import KafkaClientError

JSON_HELP = "Print JSON instead of a table."


def register(app: typer.Typer) -> None:
    """Add the `group` command group to the trilog app."""
    group_app = typer.Typer(help="List, describe and reset consumer groups.", no_args_is_help=True)
    group_app.command("list")(group_list)
    group_app.command("describe")(group_describe)
    group_app.command("reset-offsets")(group_reset_offsets)
    app.add_typer(group_app, name="group")


def _table(headers: list[str], rows: list[list[Any]]) -> None:
    cells = [headers] + [["-" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for row in cells:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, sort_keys=True))


# -- list --------------------------------------------------------------------------


def group_list(
    bootstrap: str | None = typer.Option(None, "--bootstrap", "-b", help=BOOTSTRAP_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """List every consumer group the brokers know.

    Example: trilog group list --bootstrap 127.0.0.1:9092
    """
    groups = _run(_list, _bootstrap(bootstrap))
    if as_json:
        _json([{"group_id": g, "protocol_type": t} for g, t in groups])
        return
    _table(["GROUP", "PROTOCOL-TYPE"], [[g, t or None] for g, t in groups])


async def _list(bootstrap: str) -> list[tuple[str, str]]:
    async with GroupAdmin(bootstrap) as admin:
        return await admin.list_groups()


# -- describe ----------------------------------------------------------------------


def group_describe(
    group: str = typer.Argument(..., help="Group id."),
    bootstrap: str | None = typer.Option(None, "--bootstrap", "-b", help=BOOTSTRAP_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Show a group's members and, per partition, committed offset, log end and lag.

    Example: trilog group describe billing --bootstrap 127.0.0.1:9092
    """
    info: GroupDescription = _run(_describe, _bootstrap(bootstrap), group)
    if as_json:
        _json(info.as_dict())
        return
    typer.echo(
        f"group {info.group_id}: {info.state}, {len(info.members)} members, "
        f"protocol {info.protocol or '-'}, coordinator {info.coordinator[0]}:{info.coordinator[1]}"
    )
    if info.members:
        _table(
            ["MEMBER", "INSTANCE", "CLIENT", "HOST", "ASSIGNMENT"],
            [
                [m.member_id, m.group_instance_id, m.client_id, m.client_host, _parts(m.assignment)]
                for m in info.members
            ],
        )
    _table(
        ["TOPIC", "PARTITION", "COMMITTED", "LOG-END", "LAG", "MEMBER"],
        [
            [p.topic, p.partition, p.committed, p.log_end, p.lag, p.member_id]
            for p in info.partitions
        ],
    )


def _parts(assignment: dict[str, list[int]]) -> str:
    return " ".join(f"{t}:{','.join(map(str, ps))}" for t, ps in sorted(assignment.items())) or "-"


async def _describe(bootstrap: str, group: str) -> GroupDescription:
    async with GroupAdmin(bootstrap) as admin:
        return await admin.describe(group)


# -- reset-offsets -----------------------------------------------------------------


def group_reset_offsets(
    group: str = typer.Argument(..., help="Group id."),
    topic: str = typer.Option(..., "--topic", "-t", help="Reset every partition of this topic."),
    to_earliest: bool = typer.Option(False, help="To each partition's log start offset."),
    to_latest: bool = typer.Option(False, help="To each partition's log end offset."),
    to_offset: int | None = typer.Option(
        None, min=0, help="To this offset (clamped to the log, as Kafka does)."
    ),
    execute: bool = typer.Option(False, help="Commit the new offsets (default: only show them)."),
    bootstrap: str | None = typer.Option(None, "--bootstrap", "-b", help=BOOTSTRAP_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Move a group's committed offsets for a topic; a dry run unless --execute.

    The group must have no members (stop its consumers first).

    Example: trilog group reset-offsets billing --topic events --to-earliest --execute
    """
    chosen = [to_earliest, to_latest, to_offset is not None]
    if sum(chosen) != 1:
        fail("give exactly one of --to-earliest, --to-latest, --to-offset N")
    target = "earliest" if to_earliest else "latest" if to_latest else to_offset
    plan = _run(_reset, _bootstrap(bootstrap), group, topic, target, execute)
    rows = [[t, p, old, new] for (t, p), (old, new) in sorted(plan.items())]
    if as_json:
        _json(
            {
                "group_id": group,
                "executed": execute,
                "partitions": [
                    {"topic": t, "partition": p, "current_offset": old, "new_offset": new}
                    for t, p, old, new in rows
                ],
            }
        )
        return
    _table(["TOPIC", "PARTITION", "CURRENT", "NEW"], rows)
    if not execute:
        typer.echo("dry run: nothing changed (add --execute to commit these offsets)", err=True)


async def _reset(
    bootstrap: str, group: str, topic: str, target: str | int, execute: bool
) -> dict[TopicPartition, tuple[int | None, int]]:
    async with GroupAdmin(bootstrap) as admin:
        info = await admin.describe(group)
        if info.members:
            raise KafkaClientError(
                f"group {group} has {len(info.members)} active members ({info.state}); "
                "stop its consumers before resetting its offsets"
            )
        tps = await admin.partitions(topic)
        starts = await admin.beginning_offsets(tps)
        ends = await admin.end_offsets(tps)
        if target == "earliest":
            new = starts
        elif target == "latest":
            new = ends
        else:
            new = {tp: min(max(int(target), starts[tp]), ends[tp]) for tp in tps}
        current = {(p.topic, p.partition): p.committed for p in info.partitions}
        if execute:
            await admin.commit(group, new)
        return {tp: (current.get(tp), new[tp]) for tp in tps}
