"""The `trilog` command line (typer).

Every command answers bad input with one line on stderr and a non-zero exit
code (2 for usage and configuration errors), never a traceback.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

import typer

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
