"""Imports point downward only: shells → API → experiments | inference → models and data → plain I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "mnistlab"
# Each part of the package and its layer; a module may import only from its own layer or lower ones.
LAYERS = {
    "_io": 0, "_values": 0, "callbacks": 0, "errors": 0, "_npz": 0, "_system": 0, "_ipython": 0, "_version": 0,
    "html": 1, "plots": 1, "data": 1, "metrics": 1,
    "models": 2, "run_config": 2.5,  # a run's config.json, read by runs and inference alike
    "experiments": 3, "inference": 3, "progress": 3.5,  # what draws progress (Rich, tqdm) is for the API and shells
    "api": 4, "__init__": 4, "__main__": 5,
    "cli": 5, "web": 5,
}
# Parts of one layer that are side by side: neither imports the other (runs and inference each read a run folder,
# through what is below them both)
APART = [{"experiments", "inference"}]


def part(module: str) -> str:
    return module.split(".")[1] if "." in module else "__init__"


def imports(path: Path) -> list[str]:
    """The mnistlab modules that ``path`` imports, absolute."""
    module = "mnistlab." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    package = package.removesuffix(".__init__")
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):  # import mnistlab, import mnistlab.cli
            found += [alias.name for alias in node.names if alias.name.split(".")[0] == "mnistlab"]
        elif isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").split(".")[0] == "mnistlab"):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            # from .x import y, from mnistlab.x import y: the module x; from .. import x, from mnistlab import x: x
            found += [target] if target != "mnistlab" and node.module else [f"{target}.{a.name}" for a in node.names]
    return found


def third_party_imports(path: Path) -> set[str]:
    """The top-level names of the packages outside mnistlab that ``path`` imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level:
            found.add(node.module.split(".")[0])
    return found - {"mnistlab"}


SOURCES = sorted(p for p in PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_downward(path):
    own = part("mnistlab." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts))
    for target in imports(path):
        other = part(target)
        if other == own:
            continue
        assert LAYERS[other] <= LAYERS[own], f"{path.relative_to(PACKAGE)} (layer {LAYERS[own]}) imports {target} " \
                                             f"(layer {LAYERS[other]})"
        assert {own, other} not in APART, f"{path.relative_to(PACKAGE)} imports {target}, which is beside it"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_the_api_and_shells_draw(path):
    """Below ``progress``, nothing imports what draws or parses a command line: estimators and runs never print."""
    own = part("mnistlab." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts))
    if LAYERS[own] < LAYERS["progress"]:
        assert not third_party_imports(path) & {"rich", "tqdm", "argparse", "click", "typer"}, path


def _private_model_methods() -> set[str]:
    """The names of the private methods (``_name``, not ``__name__``) of the classes in ``models``."""
    return {node.name for path in (PACKAGE / "models").rglob("*.py") for cls in ast.walk(ast.parse(path.read_text()))
            if isinstance(cls, ast.ClassDef) for node in cls.body
            if isinstance(node, ast.FunctionDef) and node.name.startswith("_") and not node.name.startswith("__")}


@pytest.mark.parametrize("path", [p for p in SOURCES if part("mnistlab." + ".".join(
    p.relative_to(PACKAGE).with_suffix("").parts)) != "models"], ids=lambda p: str(p.relative_to(PACKAGE)))
def test_above_the_models_a_model_is_read_through_its_public_contract(path):
    """No layer above ``models`` calls a family's private method: the sweep read cnn's ``_settings()`` and the
    command line every family's ``_get_param_names()``, which a family could rename or drop unseen
    (``resolved_params`` and ``parameter_names`` are the base class's public ones)."""
    private = _private_model_methods()
    reached = sorted({f"{node.attr} (line {node.lineno})" for node in ast.walk(ast.parse(path.read_text()))
                      if isinstance(node, ast.Attribute) and node.attr in private})
    assert not reached, f"{path.relative_to(PACKAGE)} calls private model methods: {', '.join(reached)}"
