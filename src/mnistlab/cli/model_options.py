"""Command-line options → a model family's hyperparameters, typed by its declared constraints.

``mnistlab train logreg --C 0.1 --penalty l1`` needs no per-family CLI code:
each ``--name value`` is matched (case-insensitively, dashes as underscores)
to a parameter of the family's ``__init__`` and read as a type that the
family's ``_parameter_constraints`` allow, so parameters that default to None
arrive typed too: an int or a number for an interval, ``none`` for None, a
comma list (``16,32,64``) for a sequence of ints, the text for string options.
Booleans are flags (``--standardize`` / ``--no-standardize``, or
``--standardize false``).

Text that no allowed type can read is a ``ParameterError`` here, naming the
flag; a value that reads but is out of range is left to the family's
``validate_params``, which names the parameter (the CLI shows it as its flag).

``describe`` lists a family's options for ``mnistlab models MODEL``: the flag,
the default, the allowed values and a one-line meaning from the family's
docstring.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from numbers import Integral, Real
from typing import Any

from ..errors import ParameterError
from ..models.base import RUN_SET_PARAMETERS, MnistlabModel
from ..models.params import (
    PositiveInts,
    allows,
    constraint_text,
    either,
    is_interval,
    is_string_options,
    satisfies,
)
from ..models.params import describe as describe_parameters

# Short names the tutorials use, each resolved to the first of its targets that a family has and
# that takes a value such as the one beside it: `--lr 0.008 --epochs 10` works for every
# gradient-trained model (scikit-learn's MLPClassifier names its schedule learning_rate and its step
# learning_rate_init; SGDClassifier's eta0 is ignored under its default schedule, so it has no --lr).
ALIASES = {
    "lr": (("learning_rate", "learning_rate_init"), 0.01),
    "epochs": (("epochs", "max_epochs", "max_iter"), 10),
    "hidden": (("hidden", "hidden_layer_sizes"), (8,)),
}
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def flag(name: str) -> str:
    """The option of parameter ``name``, as the README spells it: ``--max-iter``, ``--C``."""
    return "--" + name.replace("_", "-")


def _boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    raise ValueError(text)


def _none(text: str) -> None:
    if text.lower() != "none":
        raise ValueError(text)
    return None


def _parts(text: str) -> list[str]:
    """A list's items, parted by commas or x: "8,8" or "8x8". (In a sweep, where commas part the values,
    "64x32,128" is two lists: 64 and 32, and 128 alone.)"""
    return text.replace("x", ",").split(",")


def _ints(text: str) -> tuple[int, ...]:
    """"8,8" or "8x8" → (8, 8); "" → () (no layers); "8,,8" is a typo, not (8, 8)."""
    return tuple(int(part) for part in _parts(text)) if text.strip() else ()


def _numbers(text: str) -> tuple[int | float, ...]:
    """"16,8" or "16x8" → (16, 8); "0.2,0.8" → (0.2, 0.8): a list, as scikit-learn's layer sizes or class priors."""
    return tuple(int(part) if part.strip().lstrip("+-").isdigit() else float(part) for part in _parts(text))


def _seed(text: str) -> int | None:
    """A seed, or none (a fresh one each time)."""
    return None if text.lower() == "none" else int(text)


def _verbosity(text: str) -> int | bool:
    """scikit-learn's verbosity: a level, or true or false."""
    try:
        return int(text)
    except ValueError:
        return _boolean(text)


def _reader(constraint) -> Callable[[str], Any] | None:
    """How to read text as a value of ``constraint``'s type; None: text cannot give one."""
    if constraint is None:
        return _none
    if constraint == "boolean" or constraint is bool:
        return _boolean
    # scikit-learn's names for a seed, a verbosity level, a number of folds, a list
    if constraint == "random_state":
        return _seed
    if constraint == "verbose":
        return _verbosity
    if constraint == "cv_object":
        return int
    if constraint == "array-like":
        return _numbers
    if is_interval(constraint):
        return int if constraint.type is Integral else float
    if isinstance(constraint, PositiveInts):
        return _ints
    if is_string_options(constraint) or constraint is str:
        return str
    if isinstance(constraint, type) and issubclass(constraint, Integral):
        return int
    if isinstance(constraint, type) and issubclass(constraint, Real):
        return float
    return None


def _expected(constraints) -> str:
    """The allowed values as typed on the command line (``none``, ``true or false``)."""
    return either(["true or false" if c == "boolean" else "none" if c is None else constraint_text(c)
                   for c in constraints])


def is_flag(constraints) -> bool:
    """Whether the option is a boolean flag (it may stand without a value)."""
    return constraints != "no_validation" and any(c == "boolean" or c is bool for c in constraints)


def convert(text: str, constraints) -> Any:
    """``text`` read as the first allowed type whose value satisfies its constraint; failing that,
    the first reading at all (so ``validate_params`` reports what is out of range). A ValueError
    when no allowed type can read it. Without constraints, the text itself."""
    if not constraints or constraints == "no_validation":
        return text
    if text.strip().lstrip("+-").isdigit():  # "10" is ten samples where a count is allowed, not 10.0 × n
        constraints = sorted(constraints, key=lambda c: _reader(c) is not int)
    readings = []
    for constraint in constraints:
        reader = _reader(constraint)
        if reader is None:
            continue
        try:
            value = reader(text)
        except ValueError:
            continue
        if satisfies(value, constraint):
            return value
        readings.append(value)
    if readings:
        return readings[0]
    raise ValueError(f"expected {_expected(constraints)}, got {text!r}")


def _settable(cls: type[MnistlabModel]) -> list[str]:
    """The parameters a command line may set: all but those a run sets itself."""
    return [name for name in cls.parameter_names() if name not in RUN_SET_PARAMETERS]


def _keys(cls: type[MnistlabModel]) -> dict[str, str]:
    """Lower-cased option key (``max-iter``, ``lr``) → parameter name (one a run sets itself too: the run
    refuses it, and says why)."""
    names = cls.parameter_names()
    by_key = {name.lower().replace("_", "-"): name for name in names}
    constraints = getattr(cls, "_parameter_constraints", {})
    for alias, (targets, example) in ALIASES.items():
        target = next((t for t in targets if t in names and allows(constraints.get(t, "no_validation"), example)), None)
        if target is not None:
            by_key.setdefault(alias, target)
    return by_key


def parse(cls: type[MnistlabModel], args: list[str], multi: bool = False) -> dict[str, Any]:
    """``['--C', '0.1', '--standardize']`` → ``{'C': 0.1, 'standardize': True}``.

    With ``multi``, every value is a comma-separated list of candidates
    (for sweeps): ``['--C', '0.1,1']`` → ``{'C': [0.1, 1.0]}``.
    """
    constraints = getattr(cls, "_parameter_constraints", {})
    by_key = _keys(cls)
    params: dict[str, Any] = {}
    i = 0
    while i < len(args):
        token = args[i]
        if not token.startswith("--"):
            raise ParameterError(None, f"unexpected argument {token!r} (model options look like --name value)")
        key, _, inline = token[2:].partition("=")
        negated = (key.lower().startswith("no-") and key.lower()[3:] in by_key
                   and is_flag(constraints.get(by_key[key.lower()[3:]], [])))  # --no-standardize, not --no-C
        name = by_key.get(key.lower()[3:] if negated else key.lower())
        if name is None:
            options = ", ".join(map(flag, _settable(cls)))
            # nor has the command: `sweep --test-size` (a sweep scores on a validation split) came here
            raise ParameterError(None, f"neither the command nor {cls.family} has an option --{key} (see the "
                                       f"command's --help); {cls.family}'s options: {options}")
        if name in params:  # argparse would keep the last silently; one of the two is a mistake
            raise ParameterError(None, f"--{key}: {name} is given twice")
        allowed = constraints.get(name, [])
        if negated and inline:
            raise ParameterError(None, f"--{key} takes no value (it sets {name} to false)")
        if negated or (is_flag(allowed) and not inline and (i + 1 == len(args) or args[i + 1].startswith("--"))):
            # (a value after --no-FLAG is then an unexpected argument, not its value); in a sweep, the one value
            params[name] = [not negated] if multi else not negated
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
                # "l1, l2" as "l1,l2": a space after a comma is how lists are written (it made ' l2' no penalty)
                values = [v.strip() for v in value.split(",")]
                if "" in values:  # "0.1,,1" is a typo as much as "," (and "0.1, ,1")
                    raise ValueError(f"give one or more comma-separated values, got {value!r}")
                params[name] = [convert(v, allowed) for v in values]
            else:  # as one of a list's: train --penalty " l2" had been no penalty where sweep took it
                params[name] = convert(value.strip(), allowed)
        except ValueError as exc:
            raise ParameterError(None, f"--{key}: {exc}") from None
    return params


@dataclass(frozen=True)
class Option:
    """One option of a family, as ``mnistlab models`` shows it."""

    flag: str
    parameter: str
    default: Any
    allowed: str
    meaning: str
    aliases: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def describe(cls: type[MnistlabModel]) -> list[Option]:
    """The options of ``cls`` in signature order: flag (and tutorial aliases), default,
    allowed values (from its constraints) and meaning (from its numpydoc Parameters)."""
    aliases: dict[str, list[str]] = {}
    for key, name in _keys(cls).items():
        if key in ALIASES and key != name.lower().replace("_", "-"):
            aliases.setdefault(name, []).append("--" + key)
    return [Option(flag(p.name), p.name, p.default, p.allowed, p.meaning, tuple(aliases.get(p.name, ())))
            for p in describe_parameters(cls) if p.name not in RUN_SET_PARAMETERS]
