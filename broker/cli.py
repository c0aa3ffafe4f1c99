"""The `trilog` command line (typer).

Every command answers bad input with one line on stderr and a non-zero exit
code (2 for usage and configuration errors), never a traceback.
"""

from __future__ import annotations

import logging
import sys
from importlib import metadata
from pathlib import Path

import trio
import typer

from broker.cli_clients import register as register_client_commands
from broker.cli_ops import register as register_ops_commands
from broker.config import ConfigError, config_docs, load_config

app = typer.Typer(
    name="trilog",
    help="trilog: a replicated log broker that speaks the Kafka protocol.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(
    help="Check and document broker configuration files.", no_args_is_help=True
)
app.add_typer(config_app, name="config")
broker_app = typer.Typer(help="Run a broker.", no_args_is_help=True)
app.add_typer(broker_app, name="broker")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format=LOG_FORMAT, stream=sys.stderr)


def fail(message: str, code: int = 2) -> None:
    """Print one error line and exit; the CLI's only way to report a problem."""
    typer.echo(f"trilog: error: {message}", err=True)
    raise typer.Exit(code)


@app.command()
def version() -> None:
    """Print trilog's version.

    Example: trilog version
    """
    typer.echo(f"trilog {metadata.version('trilog')}")


@config_app.command("check")
def config_check(file: Path = typer.Argument(..., help="TOML config file to validate.")) -> None:
    """Validate a broker config file: exit 0, or one error line and exit 2.

    Example: trilog config check config/broker.example.toml
    """
    try:
        config = load_config(file)
    except ConfigError as exc:
        fail(str(exc))
    listeners = ",".join(f"{lst.host}:{lst.port}" for lst in config.listeners)
    typer.echo(
        f"ok: {file}: node {config.broker.node_id}, listeners {listeners}, data {config.data_path}"
    )


@config_app.command("docs")
def config_docs_command() -> None:
    """Print the reference of every config key (Markdown), as in config/README.md.

    Example: trilog config docs > config/README.md
    """
    typer.echo(config_docs())


def _usage_errors() -> tuple[type[Exception], ...]:
    """typer's usage-error bases: its own, and click's where typer still uses click."""
    bases: list[type[Exception]] = [typer.exceptions.TyperException]
    try:
        import click
    except ImportError:
        return tuple(bases)
    return (*bases, click.ClickException)


@broker_app.command("start")
def broker_start(
    config: Path = typer.Option(..., "--config", "-c", help="Broker TOML config file."),
    log_level: str = typer.Option("INFO", help="DEBUG, INFO, WARNING or ERROR."),
) -> None:
    """Run one broker in the foreground until SIGTERM or Ctrl-C.

    Example: trilog broker start --config config/broker.example.toml
    """
    if log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        fail(f"--log-level must be DEBUG, INFO, WARNING or ERROR, not {log_level!r}")
    try:
        settings = load_config(config)
    except ConfigError as exc:
        fail(str(exc))
    setup_logging(log_level.upper())
    from broker.server.broker import DataDirError, run_broker

    try:
        trio.run(run_broker, settings)
    except DataDirError as exc:
        fail(str(exc), 1)
    except OSError as exc:
        fail(f"cannot start broker {settings.broker.node_id}: {exc}", 1)


@app.command()
def dev(
    brokers: int = typer.Option(
        3, min=1, max=9, help="Number of brokers; each is also a controller quorum voter."
    ),
    data_dir: Path = typer.Option(Path("data/dev"), help="Where the brokers keep their data."),
    base_port: int = typer.Option(
        9092,
        min=1,
        max=65000,
        help="Broker i serves clients on base-port + i - 1 and the quorum on base-port + 99 + i.",
    ),
) -> None:
    """Start a local cluster of broker processes; Ctrl-C stops it.

    Example: trilog dev --data-dir /tmp/trilog --base-port 19092
    """
    from broker.dev import run_dev

    setup_logging()
    code = trio.run(run_dev, brokers, data_dir, base_port, typer.echo)
    raise typer.Exit(code)


register_client_commands(app)
register_ops_commands(app)


def main() -> None:
    """Console-script entry point: usage errors become one line and exit code 2."""
    try:
        code = app(standalone_mode=False)
    except _usage_errors() as exc:
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
            typer.echo(ctx.get_help(), err=True)
            sys.exit(2)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        typer.echo(f"trilog: error: {exc.format_message()}{hint}", err=True)
        sys.exit(getattr(exc, "exit_code", 2) or 2)
    except (KeyboardInterrupt, typer.Abort):
        sys.exit(130)
    sys.exit(code or 0)


if __name__ == "__main__":
    main()
