"""The CLI as a user runs it: a subprocess, exit codes, one-line errors, no tracebacks."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def trilog(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from broker.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_version():
    result = trilog("version")
    assert result.returncode == 0
    assert result.stdout.startswith("trilog ")


def test_help_lists_commands():
    result = trilog("--help")
    assert result.returncode == 0
    assert "config" in result.stdout and "version" in result.stdout


def test_config_check_ok():
    result = trilog("config", "check", "config/broker.example.toml")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok: ")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("config", "check"), "Missing argument"),
        (("config", "check", "/nonexistent/x.toml"), "no such file"),
        (("config", "check", "--bogus"), "No such option"),
        (("bogus",), "No such command"),
    ],
)
def test_bad_arguments_one_line_exit_2(args, needle):
    result = trilog(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("trilog: error: ") and needle in lines[0]


def test_bad_config_value(tmp_path):
    path = tmp_path / "b.toml"
    path.write_text("[network]\nrequest_bytes_max = -5\n")
    result = trilog("config", "check", str(path))
    assert result.returncode == 2
    assert "network.request_bytes_max" in result.stderr
    assert "Traceback" not in result.stderr
