"""The package's rooms and their order: each module imports only from its own room or a lower one."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "optimum_dpruner"

# lowest first; a room may import from the rooms before it (lazy imports inside functions count too)
ROOMS = [
    {"errors", "configuration", "tables"},
    {"models", "data"},
    {"runtime"},
    {"methods"},
    {"checkpoint"},
    {"stages"},
    {"evaluation"},
    {"estimation"},
    {"recovery"},
    {"result"},
    {"pruner"},
    {"cli"},
    {"__init__"},
]
RANK = {room: i for i, rooms in enumerate(ROOMS) for room in rooms}


def _module(path: Path) -> list[str]:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def _imports(path: Path):
    module = _module(path)
    package = module if path.name == "__init__.py" else module[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1]
            yield node.lineno, base + (node.module.split(".") if node.module else [])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("optimum_dpruner"):
            yield node.lineno, node.module.split(".")


def _room(module: list[str]) -> str:
    return module[1] if len(module) > 1 else "__init__"


def test_every_module_sits_in_a_known_room_and_imports_nothing_above_it():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        room = _room(_module(path))
        assert room in RANK, f"{path.relative_to(PACKAGE)} is in no room of ROOMS"
        for line, target in _imports(path):
            other = _room(target)
            if other != room and RANK[other] > RANK[room]:
                upward.append(f"{path.relative_to(PACKAGE)}:{line} ({room}) imports {'.'.join(target)} ({other})")
    assert upward == []


def test_the_package_top_holds_at_most_eight_modules():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 8, top
