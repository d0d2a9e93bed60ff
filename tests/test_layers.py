"""Dependencies point inward (market, storage, handlers, bot); the core has no clock or I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gpudesk"
LAYERS = ["market", "storage", "handlers", "bot"]  # inside out
IO_MODULES = {"sqlite3", "sqlite_utils", "socket", "httpx", "telegram", "wechaty", "asyncio"}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def modules(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", LAYERS)
def test_a_layer_imports_only_itself_and_inner_layers(layer: str) -> None:
    outer = set(LAYERS[LAYERS.index(layer) + 1 :])
    for path in modules(layer):
        for name in imports(path):
            parts = name.split(".")
            if parts[0] == "gpudesk" and len(parts) > 1:
                assert parts[1] not in outer, f"{path.name} imports outward: {name}"


def test_the_core_does_no_io_and_reads_no_clock() -> None:
    for path in modules("market"):
        assert not imports(path) & IO_MODULES, f"{path.name} does I/O"
        source = path.read_text(encoding="utf-8")
        for call in ("datetime.now(", "time.time(", "date.today(", "open("):
            assert call not in source, f"{path.name} calls {call}"
