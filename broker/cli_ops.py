"""Operator commands: `trilog cluster|topic|leader|partition ...`.

Each speaks the Kafka admin APIs to the brokers named by --bootstrap (default
$TRILOG_BOOTSTRAP, else 127.0.0.1:9092), prints a table (or --json), and
reports a problem as one `trilog: error:` line: exit 2 for bad options, 1 for
an unreachable cluster or a refusal by the brokers, 130 after Ctrl-C.
Moving leadership to a named broker uses trilog's ElectLeaders extension
(election type 2, see broker/server/api_ops.py).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

import trio
import typer

from broker.server.api_ops import ELECTION_TYPE_TO_BROKER, METADATA_TOPIC, target_broker_tag
from producer import KafkaClientError, parse_bootstrap
from producer.client import BrokerConnection, connect, single_exception
from protocol.api import ApiKey
from protocol.errors import ErrorCode

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
CONNECT_TIMEOUT_S = 5.0
REQUEST_TIMEOUT_S = 30.0
REQUEST_TIMEOUT_MS = 25_000
WAIT_POLL_S = 0.5
LATEST_TIMESTAMP = -1
DEBUG_REPLICA_ID = -2  # Kafka's id for tools reading any replica's offsets
PREFERRED, UNCLEAN = 0, 1

BOOTSTRAP_HELP = f"HOST:PORT,... (default $TRILOG_BOOTSTRAP or {DEFAULT_BOOTSTRAP})."
JSON_HELP = "Print JSON instead of a table."


class OpsError(Exception):
    """A problem to report as one error line (exit 1)."""


def fail(message: str, code: int = 2) -> None:
    """broker.cli.fail, imported late: broker.cli imports this module to register it."""
    from broker.cli import fail as cli_fail

    cli_fail(message, code)


def _addresses(value: str | None) -> list[tuple[str, int]]:
    chosen = value or os.environ.get("TRILOG_BOOTSTRAP") or DEFAULT_BOOTSTRAP
    try:
        return parse_bootstrap(chosen)
    except ValueError as exc:
        fail(f"--bootstrap: {exc}")
    raise AssertionError("unreachable")


def _run(main: Callable[..., Any], *args: Any) -> Any:
    """trio.run(main); a broker problem becomes one error line and exit 1."""
    try:
        return trio.run(main, *args)
    except (OpsError, KafkaClientError, OSError, BaseExceptionGroup) as exc:
        inner = single_exception(exc)
        if isinstance(inner, KeyboardInterrupt):
            raise inner from None
        if not isinstance(inner, OpsError | KafkaClientError | OSError):
            raise
        fail(str(inner), 1)


async def _open(stack: AsyncExitStack, addresses: list[tuple[str, int]]) -> BrokerConnection:
    """A connection to the first address that answers."""
    problems = []
    for host, port in addresses:
        try:
            return await stack.enter_async_context(connect(host, port, timeout_s=CONNECT_TIMEOUT_S))
        except (KafkaClientError, OSError, trio.TooSlowError) as exc:
            problems.append(str(exc) or f"{host}:{port}: no answer in {CONNECT_TIMEOUT_S:g}s")
    raise OpsError("no broker reachable: " + "; ".join(problems))


async def _request(
    conn: BrokerConnection, api_key: int, body: dict[str, Any], version: int | None = None
) -> Any:
    if api_key not in conn.versions:
        raise OpsError(f"{conn.address} does not serve {ApiKey(api_key).name}")
    with trio.move_on_after(REQUEST_TIMEOUT_S):
        return await conn.request(api_key, body, version)
    raise OpsError(f"{conn.address}: no answer to {ApiKey(api_key).name} in {REQUEST_TIMEOUT_S:g}s")


def _error_name(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return f"error {code}"


def _problem(code: int, message: str | None) -> str:
    return _error_name(code) + (f": {message}" if message else "")


# -- output -------------------------------------------------------------------------


def _table(headers: list[str], rows: list[list[Any]]) -> None:
    cells = [headers] + [["-" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for row in cells:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, sort_keys=True))


def _ids(values: list[int]) -> str:
    return ",".join(str(v) for v in values) or "-"


# -- cluster describe ---------------------------------------------------------------


async def _describe_cluster(addresses: list[tuple[str, int]]) -> dict[str, Any]:
    async with AsyncExitStack() as stack:
        conn = await _open(stack, addresses)
        cluster = await _request(conn, ApiKey.DESCRIBE_CLUSTER, {"include_fenced_brokers": True})
        if cluster.error_code:
            raise OpsError(_problem(cluster.error_code, cluster.error_message))
        brokers = [
            {
                "id": b.broker_id,
                "host": b.host,
                "port": b.port,
                "rack": b.rack,
                "fenced": bool(b.get("is_fenced", False)),
            }
            for b in cluster.brokers
        ]
        where = {b["id"]: (b["host"], b["port"]) for b in brokers}
        quorum = await _describe_quorum(stack, conn, where, cluster.controller_id)
    return {
        "cluster_id": cluster.cluster_id,
        "controller_id": cluster.controller_id,
        "brokers": brokers,
        "quorum": quorum,
    }


async def _describe_quorum(
    stack: AsyncExitStack, conn: BrokerConnection, where: dict, leader: int
) -> dict[str, Any] | None:
    """DescribeQuorum from the quorum leader (only it knows the voters' progress)."""
    body = {"topics": [{"topic_name": METADATA_TOPIC, "partitions": [{"partition_index": 0}]}]}
    for _ in range(2):
        if leader in where and "{}:{}".format(*where[leader]) != conn.address:
            conn = await _open(stack, [where[leader]])
        part = (await _request(conn, ApiKey.DESCRIBE_QUORUM, body)).topics[0].partitions[0]
        if part.error_code == ErrorCode.NONE:
            voters = [
                {"id": v.replica_id, "log_end_offset": v.log_end_offset}
                for v in part.current_voters
            ]
            top = max(v["log_end_offset"] for v in voters)
            for voter in voters:
                end = voter["log_end_offset"]
                voter["lag"] = top - end if end >= 0 else None
            return {
                "leader_id": part.leader_id,
                "epoch": part.leader_epoch,
                "high_watermark": part.high_watermark,
                "voters": voters,
            }
        if part.error_code != ErrorCode.NOT_LEADER_OR_FOLLOWER or part.leader_id < 0:
            raise OpsError(f"DescribeQuorum: {_problem(part.error_code, None)}")
        leader = part.leader_id
    return None


def cluster_describe(
    bootstrap: str | None = typer.Option(None, "--bootstrap", "-b", help=BOOTSTRAP_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Show the brokers, the active controller and the controller quorum's progress.

    Example: trilog cluster describe --bootstrap 127.0.0.1:9092
    """
    info = _run(_describe_cluster, _addresses(bootstrap))
    if as_json:
        _json(info)
        return
    typer.echo(f"cluster {info['cluster_id']}, active controller {info['controller_id']}")
    _table(
        ["BROKER", "ADDRESS", "RACK", "STATUS"],
        [
            [b["id"], f"{b['host']}:{b['port']}", b["rack"], "fenced" if b["fenced"] else "alive"]
            for b in info["brokers"]
        ],
    )
    quorum = info["quorum"]
    if quorum is None:
        typer.echo("quorum: no leader answered")
        return
    typer.echo(
        f"quorum: leader {quorum['leader_id']}, epoch {quorum['epoch']}, "
        f"commit index {quorum['high_watermark']}"
    )
    _table(
        ["VOTER", "LOG END", "LAG"],
        [[v["id"], v["log_end_offset"], v["lag"]] for v in quorum["voters"]],
    )


# -- topics -------------------------------------------------------------------------


async def _topics(addresses: list[tuple[str, int]], names: list[str] | None) -> list[dict]:
    async with AsyncExitStack() as stack:
        conn = await _open(stack, addresses)
        topics = None if names is None else [{"name": n} for n in names]
        body = {"topics": topics, "allow_auto_topic_creation": False}
        return _topics_info(await _request(conn, ApiKey.METADATA, body))


def _partition_rows(topic: Any) -> list[dict[str, Any]]:
    rows = []
    for p in sorted(topic.partitions, key=lambda p: p.partition_index):
        rows.append(
            {
                "partition": p.partition_index,
                "leader": p.leader_id,
                "leader_epoch": p.get("leader_epoch", -1),
                "replicas": list(p.replica_nodes),
                "isr": list(p.isr_nodes),
                "offline_replicas": list(p.get("offline_replicas", [])),
                "offline": p.leader_id < 0,
                "under_replicated": len(p.isr_nodes) < len(p.replica_nodes),
            }
        )
    return rows


def _topics_info(response: Any) -> list[dict[str, Any]]:
    out = []
    for topic in sorted(response.topics, key=lambda t: t.name or ""):
        if topic.error_code:
            raise OpsError(f"topic {topic.name}: {_problem(topic.error_code, None)}")
        out.append({"name": topic.name, "partitions": _partition_rows(topic)})
    return out


async def _create_topic(addresses, name: str, partitions: int, factor: int, configs) -> None:
    async with AsyncExitStack() as stack:
        conn = await _open(stack, addresses)
        body = {
            "topics": [
                {
                    "name": name,
                    "num_partitions": partitions,
                    "replication_factor": factor,
                    "configs": [{"name": k, "value": v} for k, v in configs.items()],
                }
            ],
            "timeout_ms": REQUEST_TIMEOUT_MS,
        }
        result = (await _request(conn, ApiKey.CREATE_TOPICS, body)).topics[0]
        if result.error_code:
            raise OpsError(f"topic {name}: {_problem(result.error_code, result.error_message)}")


def topic_create(
    name: str = typer.Argument(..., help="Topic name."),
    partitions: int = typer.Option(..., "--partitions", min=1, help="Number of partitions."),
    replication_factor: int = typer.Option(
        ..., "--replication-factor", min=1, help="Replicas per partition."
    ),
    config: list[str] = typer.Option([], "--config", help="Topic config KEY=VALUE (repeatable)."),
    bootstrap: str | None = typer.Option(None, "--bootstrap", "-b", help=BOOTSTRAP_HELP),
) -> None:
    """Create a topic.

    Example: trilog topic create logs --partitions 3 --replication-factor 3 --config retention.ms=1
    """
    configs = {}
    for item in config:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"--config: '{item}' is not KEY=VALUE")
        configs[key] = value
    _run(_create_topic, _addresses(bootstrap), name, partitions, replication_factor, configs)
    typer.echo(
        f"created topic {name}: {partitions} partitions, replication factor {replication_factor}"
    )


def topic_list(
    bootstrap: str | None = typer.Option(None, "--bootstrap", "-b", help=BOOTSTRAP_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """List topics with their partition counts and replication factors.

    Example: trilog topic list --json
    """
    topics = _run(_topics, _addresses(bootstrap), None)
    rows = [
        {
            "name": t["name"],
            "partitions": len(t["partitions"]),
            "replication_factor": max((len(p["replicas"]) for p in t["partitions"]), default=0),
            "offline": sum(p["offline"] for p in t["partitions"]),
            "under_replicated": sum(p["under_replicated"] for p in t["partitions"]),
        }
        for t in topics
    ]
    if as_json:
        _json(rows)
        return
    _table(
        ["TOPIC", "PARTITIONS", "RF", "OFFLINE", "UNDER-REPLICATED"],
        [list(r.values()) for r in rows],
    )


def topic_describe(
    name: str | None = typer.Argument(None, help="Topic name (default: every topic)."),
    bootstrap: str | None = typer.Option(None, "--bootstrap", "-b", help=BOOTSTRAP_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Show each partition's leader, replicas and ISR; mark offline and under-replicated ones.

    Example: trilog topic describe orders
    """
    topics = _run(_topics, _addresses(bootstrap), None if name is None else [name])
    if as_json:
        _json(topics)
        return
    rows = []
    for t in topics:
        for p in t["partitions"]:
            marks = [m for m in ("offline", "under_replicated") if p[m]]
            rows.append(
                [
                    t["name"],
                    p["partition"],
                    p["leader"] if p["leader"] >= 0 else "none",
                    _ids(p["replicas"]),
                    _ids(p["isr"]),
                    " ".join(m.upper().replace("_", "-") for m in marks) or None,
                ]
            )
    _table(["TOPIC", "PARTITION", "LEADER", "REPLICAS", "ISR", "STATUS"], rows)


async def _delete_topic(addresses, name: str) -> None:
    async with AsyncExitStack() as stack:
        conn = await _open(stack, addresses)
        body = {"topic_names": [name], "timeout_ms": REQUEST_TIMEOUT_MS}
        result = (await _request(conn, ApiKey.DELETE_TOPICS, body)).responses[0]
        if result.error_code:
            raise OpsError(f"topic {name}: {_problem(result.error_code, result.error_message)}")


def topic_delete(
    name: str = typer.Argument(..., help="Topic name."),
    bootstrap: str | None = typer.Option(None, "--bootstrap", "-b", help=BOOTSTRAP_HELP),
) -> None:
    """Delete a topic and all its data.

    Example: trilog topic delete orders
    """
    _run(_delete_topic, _addresses(bootstrap), name)
    typer.echo(f"deleted topic {name}")


# -- leader elect -------------------------------------------------------------------


async def _brokers(conn: BrokerConnection) -> dict[int, dict[str, Any]]:
    cluster = await _request(conn, ApiKey.DESCRIBE_CLUSTER, {"include_fenced_brokers": True})
    return {
        b.broker_id: {"address": (b.host, b.port), "fenced": bool(b.get("is_fenced", False))}
        for b in cluster.brokers
    }


class _Offsets:
    """Log end offsets as each replica reports them (ListOffsets latest, as a tool)."""

    def __init__(self, stack: AsyncExitStack, brokers: dict[int, dict[str, Any]]) -> None:
        self.stack = stack
        self.brokers = brokers
        self.conns: dict[int, BrokerConnection] = {}

    async def end(self, broker_id: int, topic: str, partition: int) -> int | None:
        """The offset broker_id reports, or None if it cannot say."""
        try:
            conn = self.conns.get(broker_id)
            if conn is None:
                conn = await _open(self.stack, [self.brokers[broker_id]["address"]])
                self.conns[broker_id] = conn
            body = {
                "replica_id": DEBUG_REPLICA_ID,
                "topics": [
                    {
                        "name": topic,
                        "partitions": [{"partition_index": partition, "timestamp": -1}],
                    }
                ],
            }
            answer = await _request(conn, ApiKey.LIST_OFFSETS, body)
        except (OpsError, KeyError):
            return None
        row = answer.topics[0].partitions[0]
        return row.offset if row.error_code == ErrorCode.NONE and row.offset >= 0 else None


async def _elect(
    addresses, election_type: int, targets: dict[str, list[int]] | None, target: int | None
) -> list[dict[str, Any]]:
    async with AsyncExitStack() as stack:
        conn = await _open(stack, addresses)
        body: dict[str, Any] = {
            "election_type": election_type,
            "timeout_ms": REQUEST_TIMEOUT_MS,
            "topic_partitions": None
            if targets is None
            else [{"topic": t, "partitions": ps} for t, ps in targets.items()],
        }
        version = None
        if target is not None:
            if conn.versions.get(ApiKey.ELECT_LEADERS, (0, 0))[1] < 2:
                raise OpsError(f"{conn.address} cannot elect a named broker (not trilog?)")
            body["_unknown_tagged_fields"] = target_broker_tag(target)
            version = 2
        response = await _request(conn, ApiKey.ELECT_LEADERS, body, version)
        rows = [
            {
                "topic": t.topic,
                "partition": r.partition_id,
                "error_code": r.error_code,
                "result": "elected" if r.error_code == 0 else _error_name(r.error_code),
                "message": r.error_message,
            }
            for t in response.replica_election_results
            for r in t.partition_result
        ]
        if response.get("error_code") and not rows:
            raise OpsError(_problem(response.error_code, None))
        names = sorted({r["topic"] for r in rows})
        leaders = {}
        if names:
            meta = await _request(
                conn,
                ApiKey.METADATA,
                {"topics": [{"name": n} for n in names], "allow_auto_topic_creation": False},
            )
            leaders = {
                (t.name, p.partition_index): p.leader_id for t in meta.topics for p in t.partitions
            }
        for row in rows:
            row["leader"] = leaders.get((row["topic"], row["partition"]))
        return rows


async def _unclean_facts(addresses, topic: str, partition: int) -> dict[str, Any]:
    """What the cluster knows about an offline partition's surviving replicas."""
    async with AsyncExitStack() as stack:
        conn = await _open(stack, addresses)
        brokers = await _brokers(conn)
        meta = await _request(
            conn,
            ApiKey.METADATA,
            {"topics": [{"name": topic}], "allow_auto_topic_creation": False},
        )
        rows = {r["partition"]: r for t in _topics_info(meta) for r in t["partitions"]}
        if partition not in rows:
            raise OpsError(f"topic {topic} has no partition {partition}")
        row = rows[partition]
        offsets = _Offsets(stack, brokers)
        live = [b for b in row["replicas"] if b in brokers and not brokers[b]["fenced"]]
        ends = {b: await offsets.end(b, topic, partition) for b in live}
    known = [e for e in ends.values() if e is not None]
    chosen = live[0] if live else None
    chosen_end = ends.get(chosen) if chosen is not None else None
    lost = max(known) - chosen_end if known and chosen_end is not None else None
    return {
        **row,
        "live_replicas": ends,
        "chosen": chosen,
        "offsets_may_be_lost": lost,
        "last_known_end": max(known) if known else None,
    }


def _confirm_unclean(facts: dict[str, Any], topic: str, partition: int, yes: bool) -> None:
    if facts["leader"] >= 0:
        return  # the controller will answer ELECTION_NOT_NEEDED: nothing can be lost
    typer.echo(
        f"{topic}-{partition} is OFFLINE: replicas {_ids(facts['replicas'])}, "
        f"last ISR {_ids(facts['isr'])}"
    )
    _table(
        ["LIVE REPLICA", "END OFFSET"],
        [[b, "unknown" if e is None else e] for b, e in facts["live_replicas"].items()],
    )
    if facts["chosen"] is None:
        fail(f"{topic}-{partition}: no replica is alive; nothing to elect", 1)
    lost = facts["offsets_may_be_lost"]
    typer.echo(
        f"highest end offset seen: {facts['last_known_end']}; broker {facts['chosen']} "
        f"would lead; offsets that may be lost: "
        + ("unknown" if lost is None else f"at least {lost} (the last leader's end is unknown)")
    )
    if yes:
        return
    if not sys.stdin.isatty():
        fail("an unclean election needs confirmation: run it interactively or pass --yes")
    if not typer.confirm("Elect an out-of-sync leader and accept the loss?", default=False):
        fail("aborted; nothing changed", 1)


def _election_choice(preferred: bool, to: int | None, unclean: bool, all_preferred: bool) -> str:
    chosen = [
        n
        for n, on in (
            ("preferred", preferred),
            ("to", to is not None),
            ("unclean", unclean),
            ("all-preferred", all_preferred),
        )
        if on
    ]
    if len(chosen) != 1:
        fail("choose exactly one of --preferred, --to BROKER, --unclean, --all-preferred")
    return chosen[0]


def leader_elect(
    topic: str | None = typer.Option(None, "--topic", "-t", help="Topic."),
    partition: int | None = typer.Option(None, "--partition", "-p", min=0, help="Partition."),
    preferred: bool = typer.Option(False, "--preferred", help="Back to the first replica."),
    to: int | None = typer.Option(None, "--to", min=0, help="To this in-sync broker."),
    unclean: bool = typer.Option(
        False, "--unclean", help="OFFLINE partition: elect an out-of-sync replica (may lose data)."
    ),
    all_preferred: bool = typer.Option(
        False, "--all-preferred", help="Preferred election for every partition."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before an unclean election."),
    bootstrap: str | None = typer.Option(None, "--bootstrap", "-b", help=BOOTSTRAP_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Move a partition's leadership: to its preferred replica, to a named broker, or
    (unclean, after confirmation) to an out-of-sync survivor of an offline partition.

    Example: trilog leader elect --topic orders --partition 0 --to 2
    """
    kind = _election_choice(preferred, to, unclean, all_preferred)
    if kind == "all-preferred":
        if topic is not None or partition is not None:
            fail("--all-preferred takes no --topic or --partition")
    elif topic is None or partition is None:
        fail(f"--{kind} needs --topic and --partition")
    addresses = _addresses(bootstrap)
    targets = None if topic is None else {topic: [partition]}
    if kind == "unclean":
        _confirm_unclean(_run(_unclean_facts, addresses, topic, partition), topic, partition, yes)
    election = {"preferred": PREFERRED, "all-preferred": PREFERRED, "unclean": UNCLEAN}.get(
        kind, ELECTION_TYPE_TO_BROKER
    )
    rows = _run(_elect, addresses, election, targets, to)
    if as_json:
        _json(rows)
    elif not rows:
        typer.echo("no election needed: every preferred replica already leads")
    else:
        _table(
            ["TOPIC", "PARTITION", "RESULT", "LEADER", "MESSAGE"],
            [[r["topic"], r["partition"], r["result"], r["leader"], r["message"]] for r in rows],
        )
    ok = (ErrorCode.NONE, ErrorCode.ELECTION_NOT_NEEDED)
    failed = [r for r in rows if r["error_code"] not in ok]
    if failed:
        first = failed[0]
        fail(
            f"{len(failed)} election(s) failed; {first['topic']}-{first['partition']}: "
            f"{_problem(first['error_code'], first['message'])}",
            1,
        )


# -- partition reassign, reassignments ----------------------------------------------


def _parse_replicas(value: str) -> list[int]:
    try:
        replicas = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        fail(f"--replicas: '{value}' is not a comma-separated list of broker ids")
    if not replicas or min(replicas) < 0 or len(set(replicas)) != len(replicas):
        fail(f"--replicas: '{value}' must name distinct broker ids")
    return replicas


async def _alter(addresses, topic: str, partition: int, replicas: list[int] | None) -> None:
    async with AsyncExitStack() as stack:
        conn = await _open(stack, addresses)
        body = {
            "timeout_ms": REQUEST_TIMEOUT_MS,
            "topics": [
                {
                    "name": topic,
                    "partitions": [{"partition_index": partition, "replicas": replicas}],
                }
            ],
        }
        response = await _request(conn, ApiKey.ALTER_PARTITION_REASSIGNMENTS, body)
        if response.error_code:
            raise OpsError(_problem(response.error_code, response.error_message))
        row = response.responses[0].partitions[0]
        if row.error_code:
            raise OpsError(f"{topic}-{partition}: {_problem(row.error_code, row.error_message)}")


async def _list(conn: BrokerConnection, wanted: dict[str, list[int]] | None) -> list[dict]:
    body = {
        "timeout_ms": REQUEST_TIMEOUT_MS,
        "topics": None
        if wanted is None
        else [{"name": t, "partition_indexes": ps} for t, ps in wanted.items()],
    }
    response = await _request(conn, ApiKey.LIST_PARTITION_REASSIGNMENTS, body)
    if response.error_code:
        raise OpsError(_problem(response.error_code, response.error_message))
    return [
        {
            "topic": t.name,
            "partition": p.partition_index,
            "replicas": list(p.replicas),
            "adding": list(p.adding_replicas),
            "removing": list(p.removing_replicas),
        }
        for t in response.topics
        for p in t.partitions
    ]


async def _list_reassignments(addresses) -> list[dict]:
    async with AsyncExitStack() as stack:
        return await _list(await _open(stack, addresses), None)


async def _wait_reassigned(addresses, topic: str, partition: int, show) -> list[int]:
    """Poll until the reassignment is gone, showing how far each adding replica lags."""
    async with AsyncExitStack() as stack:
        conn = await _open(stack, addresses)
        offsets = _Offsets(stack, await _brokers(conn))
        while True:
            ongoing = await _list(conn, {topic: [partition]})
            meta = await _request(
                conn,
                ApiKey.METADATA,
                {"topics": [{"name": topic}], "allow_auto_topic_creation": False},
            )
            row = {r["partition"]: r for t in _topics_info(meta) for r in t["partitions"]}
            if not ongoing:
                return row[partition]["replicas"]
            leader_end = await offsets.end(row[partition]["leader"], topic, partition)
            behind = {}
            for replica in ongoing[0]["adding"]:
                end = await offsets.end(replica, topic, partition)
                behind[replica] = None if end is None or leader_end is None else leader_end - end
            show(ongoing[0], behind)
            await trio.sleep(WAIT_POLL_S)


def _progress_printer() -> Callable[[dict, dict], None]:
    """A one-line updater on a terminal, one line per change otherwise."""
    last = {"line": ""}
    tty = sys.stderr.isatty()

    def show(ongoing: dict, behind: dict[int, int | None]) -> None:
        parts = [
            f"broker {b} " + ("catching up" if n is None else f"{n} offsets behind")
            for b, n in behind.items()
        ]
        line = (
            f"{ongoing['topic']}-{ongoing['partition']}: adding {_ids(ongoing['adding'])}, "
            f"removing {_ids(ongoing['removing'])}; " + ", ".join(parts)
        )
        if line != last["line"]:
            typer.echo(("\r\x1b[2K" + line) if tty else line, err=True, nl=not tty)
            last["line"] = line

    return show


def partition_reassign(
    topic: str = typer.Option(..., "--topic", "-t", help="Topic."),
    partition: int = typer.Option(..., "--partition", "-p", min=0, help="Partition."),
    replicas: str | None = typer.Option(None, "--replicas", help="Target brokers, e.g. 2,3,4."),
    cancel: bool = typer.Option(False, "--cancel", help="Cancel the reassignment in progress."),
    wait: bool = typer.Option(False, "--wait", help="Show progress until it completes."),
    bootstrap: str | None = typer.Option(None, "--bootstrap", "-b", help=BOOTSTRAP_HELP),
) -> None:
    """Move a partition to new replicas (they catch up before the old ones leave), or
    cancel a move. With --wait, Ctrl-C stops watching; the move goes on.

    Example: trilog partition reassign --topic orders --partition 0 --replicas 2,3,4 --wait
    """
    if cancel == (replicas is not None):
        fail("give either --replicas or --cancel")
    if cancel and wait:
        fail("--wait applies to --replicas, not --cancel")
    target = None if cancel else _parse_replicas(replicas or "")
    addresses = _addresses(bootstrap)
    _run(_alter, addresses, topic, partition, target)
    if cancel:
        typer.echo(f"cancelled the reassignment of {topic}-{partition}")
        return
    typer.echo(f"reassigning {topic}-{partition} to {_ids(target)}")
    if not wait:
        return
    try:
        final = _run(_wait_reassigned, addresses, topic, partition, _progress_printer())
    except KeyboardInterrupt:
        typer.echo("", err=True)
        typer.echo(
            "stopped watching; the reassignment goes on ('trilog partition reassignments')",
            err=True,
        )
        raise typer.Exit(130) from None
    if sys.stderr.isatty():
        typer.echo("", err=True)
    typer.echo(f"reassignment of {topic}-{partition} complete: replicas {_ids(final)}")


def partition_reassignments(
    bootstrap: str | None = typer.Option(None, "--bootstrap", "-b", help=BOOTSTRAP_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """List reassignments in progress, with the replicas being added and removed.

    Example: trilog partition reassignments --json
    """
    rows = _run(_list_reassignments, _addresses(bootstrap))
    if as_json:
        _json(rows)
        return
    if not rows:
        typer.echo("no reassignments in progress")
        return
    _table(
        ["TOPIC", "PARTITION", "REPLICAS", "ADDING", "REMOVING"],
        [
            [
                r["topic"],
                r["partition"],
                _ids(r["replicas"]),
                _ids(r["adding"]),
                _ids(r["removing"]),
            ]
            for r in rows
        ],
    )


def register(app: typer.Typer) -> None:
    """Add the cluster, topic, leader and partition command groups to the trilog app."""
    groups = {
        "cluster": (
            "Inspect the cluster and its controller quorum.",
            {"describe": cluster_describe},
        ),
        "topic": (
            "Create, list, describe and delete topics.",
            {
                "create": topic_create,
                "list": topic_list,
                "describe": topic_describe,
                "delete": topic_delete,
            },
        ),
        "leader": ("Move partition leadership.", {"elect": leader_elect}),
        "partition": (
            "Reassign partition replicas.",
            {"reassign": partition_reassign, "reassignments": partition_reassignments},
        ),
    }
    for name, (help_text, commands) in groups.items():
        group = typer.Typer(help=help_text, no_args_is_help=True)
        for command, function in commands.items():
            group.command(command)(function)
        app.add_typer(group, name=name)
