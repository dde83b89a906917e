"""Command-line options → a model family's hyperparameters, read from its signature.

``mnistlab train logreg --C 0.1 --penalty l1`` needs no per-family CLI code:
each ``--name value`` is matched (case-insensitively, dashes as underscores)
to a parameter of the family's ``__init__`` and converted to the type of its
default. Booleans are flags (``--standardize`` / ``--no-standardize``).
"""

from __future__ import annotations

import inspect
from typing import Any

from ..errors import ParameterError
from ..models import MnistlabModel

# Short names the tutorials use, each resolved to the first of its targets
# that a family has: `--lr 0.008 --epochs 10` works for every gradient-trained model.
ALIASES = {
    "lr": ("learning_rate", "learning_rate_init"),
    "epochs": ("epochs", "max_epochs", "max_iter"),
    "hidden": ("hidden", "hidden_layer_sizes"),
}


def parameters(cls: type[MnistlabModel]) -> dict[str, Any]:
    """Hyperparameter name → default, in signature order."""
    signature = inspect.signature(cls.__init__)
    return {name: p.default for name, p in signature.parameters.items() if name != "self"}


def convert(text: str, default: Any) -> Any:
    """``text`` as the type of ``default`` (lists: comma-separated)."""
    if isinstance(default, bool):
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ParameterError(None, f"expected true or false, got {text!r}")
    if isinstance(default, int):
        return int(text)
    if isinstance(default, float):
        return float(text)
    if isinstance(default, (tuple, list)):
        return tuple(_guess(item) for item in text.split(",") if item)
    if default is None:
        return None if text.lower() == "none" else _guess(text)
    return text


def _guess(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse(cls: type[MnistlabModel], args: list[str], multi: bool = False) -> dict[str, Any]:
    """``['--C', '0.1', '--standardize']`` → ``{'C': 0.1, 'standardize': True}``.

    With ``multi``, every value is a comma-separated list of candidates
    (for sweeps): ``['--C', '0.1,1']`` → ``{'C': [0.1, 1.0]}``.
    """
    defaults = parameters(cls)
    by_key = {name.lower().replace("_", "-"): name for name in defaults}
    for alias, targets in ALIASES.items():
        target = next((t for t in targets if t in defaults), None)
        if target is not None:
            by_key.setdefault(alias, target)
    params: dict[str, Any] = {}
    i = 0
    while i < len(args):
        token = args[i]
        if not token.startswith("--"):
            raise ParameterError(None, f"unexpected argument {token!r} (model options look like --name value)")
        key, _, inline = token[2:].partition("=")
        negated = key.lower().startswith("no-") and key.lower()[3:] in by_key
        name = by_key.get(key.lower()[3:] if negated else key.lower())
        if name is None:
            raise ParameterError(None, f"{cls.family} has no option --{key}; "
                             f"its options: {', '.join('--' + k for k in by_key if k not in ALIASES)}")
        default = defaults[name]
        if isinstance(default, bool) and not inline and (i + 1 == len(args) or args[i + 1].startswith("--")):
            params[name] = not negated
            i += 1
            continue
        if inline:
            value, i = inline, i + 1
        elif i + 1 < len(args):
            value, i = args[i + 1], i + 2
        else:
            raise ParameterError(None, f"option --{key} needs a value")
        try:
            if multi:
                params[name] = [convert(v, default) for v in value.split(",") if v]
            else:
                params[name] = convert(value, default)
        except ValueError as exc:
            raise ParameterError(None, f"--{key}: {exc}") from None
    return params
