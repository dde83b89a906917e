"""Imports point downward only: shells → API → experiments and inference → models and data → plain I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "mnistlab"
# Each part of the package and its layer; a module may import only from its own layer or lower ones.
LAYERS = {
    "_io": 0, "_values": 0, "callbacks": 0, "errors": 0, "_npz": 0, "_system": 0, "_ipython": 0,
    "html": 1, "plots": 1, "data": 1,
    "models": 2,
    "experiments": 3, "inference": 3, "progress": 3,
    "api": 4, "__init__": 4, "__main__": 5,
    "cli": 5, "web": 5,
}


def part(module: str) -> str:
    return module.split(".")[1] if "." in module else "__init__"


def imports(path: Path) -> list[str]:
    """The mnistlab modules that ``path`` imports, absolute."""
    module = "mnistlab." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    package = package.removesuffix(".__init__")
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
            found += [target] if node.module else [f"{target}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mnistlab"):
            found.append(node.module)
    return found


SOURCES = sorted(p for p in PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_downward(path):
    own = part("mnistlab." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts))
    for target in imports(path):
        other = part(target)
        if other == own or target == "mnistlab":
            continue
        assert LAYERS[other] <= LAYERS[own], f"{path.relative_to(PACKAGE)} (layer {LAYERS[own]}) imports {target} " \
                                             f"(layer {LAYERS[other]})"
