"""The sans-IO layers never import trio, socket, time or random (ARCHITECTURE.md).

Time comes in as ``now_ms`` and randomness as a seeded ``random.Random``
passed by the trio shell, which is what lets tests/sim replay a seed exactly.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SANS_IO_DIRS = [
    "protocol",
    "broker/log",
    "broker/replication",
    "broker/controller",
    "broker/raft",
    "broker/coordinator",
]
FORBIDDEN = {"trio", "socket", "time", "random"}


def imported_modules(tree: ast.AST) -> set[str]:
    """Top-level names of every module a file imports (absolute imports only)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def sans_io_files() -> list[Path]:
    return sorted(p for d in SANS_IO_DIRS if (ROOT / d).is_dir() for p in (ROOT / d).rglob("*.py"))


@pytest.mark.parametrize("path", sans_io_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_io_imports(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    assert not imported_modules(tree) & FORBIDDEN


def test_detector_sees_forbidden_imports() -> None:
    tree = ast.parse(
        "import time\nfrom trio import sleep\nimport socket as s\nfrom random import x"
    )
    assert imported_modules(tree) & FORBIDDEN == FORBIDDEN
