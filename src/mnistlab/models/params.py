"""Hyperparameters declared once: the allowed values, how they are checked, how they are described.

A family declares ``_parameter_constraints`` as scikit-learn's estimators do
(``sklearn.utils._param_validation``): parameter name → a list of constraints,
any one of which a value must satisfy. The constraints our families use are
written here, with scikit-learn's names and meaning — ``Interval(Integral |
Real, left, right, closed=...)``, ``StrOptions({...})``, ``"boolean"``,
``None``, a type such as ``str`` — plus ``PositiveInts`` for layer sizes and
channel widths, which scikit-learn can only call "array-like". They are not
imported from scikit-learn because importing any part of it costs over a
second, most of ``mnistlab train logreg``'s start-up. The ``sklearn:NAME``
families declare scikit-learn's own constraint objects, which are read here
by the same attributes (and any other kind through scikit-learn's
``make_constraint``, imported only then).

``check`` tests one parameter and raises ``ParameterError`` naming it. We do not
use ``BaseEstimator._validate_params``: it checks all parameters in one call and
words its message for the estimator class ("The 'C' parameter of X must be …"),
prints string options in a set's arbitrary order, and does not know
``PositiveInts``.

The same declarations describe a family's parameters (``describe``): the
allowed values in words and a one-line meaning read from the family's numpydoc
``Parameters`` section. The command line reads them to type ``--option value``
and to list a family's options; a notebook can print them.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np

from .._values import is_whole_number
from ..errors import ParameterError

__all__ = ["Interval", "StrOptions", "PositiveInts", "SEED_OR_NONE", "check", "allowed", "describe", "is_interval",
           "is_string_options", "parameter_docs", "ParameterInfo", "unused"]


class Interval:
    """Numbers of ``type`` (``Integral`` or ``Real``) between ``left`` and ``right`` (None: unbounded),
    ``closed`` on the "left", "right", "both" or "neither" side; NaN is in none. As in scikit-learn, an
    unbounded side is ±infinity, in the interval only where that side is closed (C=inf, no penalty: closed
    on the right); an epsilon of inf had been taken, and the fit learnt nothing (accuracy 0.1)."""

    def __init__(self, type, left, right, *, closed):
        if type not in (Integral, Real) or closed not in ("left", "right", "both", "neither"):
            raise ValueError(f"Interval({type!r}, closed={closed!r}): type must be Integral or Real, closed "
                             "one of 'left', 'right', 'both', 'neither'")
        self.type, self.left, self.right, self.closed = type, left, right, closed

    def is_satisfied_by(self, value) -> bool:
        if not isinstance(value, self.type) or (not isinstance(value, Integral) and math.isnan(value)):
            return False
        if not isinstance(value, Integral) and math.isinf(value):
            return value > 0 and self.right is None and self.closed in ("right", "both") or \
                value < 0 and self.left is None and self.closed in ("left", "both")
        above = self.left is None or (value >= self.left if self.closed in ("left", "both") else value > self.left)
        below = self.right is None or (value <= self.right if self.closed in ("right", "both")
                                       else value < self.right)
        return above and below


class StrOptions:
    """One of the strings ``options``."""

    def __init__(self, options):
        self.options = frozenset(options)

    def is_satisfied_by(self, value) -> bool:
        return isinstance(value, str) and value in self.options


class PositiveInts:
    """A tuple or list of ints from 1 to ``MAX_SIZE``, of ``min_length`` to ``max_length`` entries: layer
    sizes, widths."""

    MAX_SIZE = 2**20  # units or channels of a layer: beyond it, sizes overflow the libraries' own counts

    def __init__(self, min_length: int = 0, max_length: int | None = None):
        self.min_length, self.max_length = min_length, max_length

    def is_satisfied_by(self, value) -> bool:
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            return False
        if len(value) < self.min_length or (self.max_length is not None and len(value) > self.max_length):
            return False
        return all(is_whole_number(v) and 1 <= v <= self.MAX_SIZE for v in value)

    def __str__(self) -> str:
        low, high = self.min_length, self.max_length
        if high is None:
            count = {0: "", 1: "one or more "}.get(low, f"{low} or more ")
        else:
            count = f"{low} " if low == high else f"{low} to {high} "
        return f"a sequence of {count}ints from 1 to {self.MAX_SIZE:,}"


SEED_OR_NONE = [Interval(Integral, 0, 2**32 - 1, closed="both"), None]
"""``random_state``: a seed scikit-learn, NumPy and PyTorch all take (or None: fresh entropy)."""

MAX_THREADS = 1024
"""The most threads a fit may ask for: more than any CPU has (OpenMP crashed the process at a million
threads, and a pool of 100,000 failed to start inside scikit-learn's fit)."""


def _number(value) -> str:
    return str(value) if isinstance(value, Integral) else f"{value:g}"


def is_interval(c) -> bool:
    """An ``Interval``, ours or scikit-learn's (whose ``type`` may also be its ``RealNotInt``, "a float")."""
    return all(hasattr(c, name) for name in ("type", "left", "right", "closed"))


def is_string_options(c) -> bool:
    """A ``StrOptions``, ours or scikit-learn's."""
    options = getattr(c, "options", None)
    return isinstance(options, (set, frozenset)) and all(isinstance(o, str) for o in options)


def _interval_text(c) -> str:
    kind = {"Integral": "an int", "RealNotInt": "a float"}.get(c.type.__name__, "a number")
    closed_left, closed_right = c.closed in ("left", "both"), c.closed in ("right", "both")
    if c.type is not Integral and (c.right is None and not closed_right or c.left is None and not closed_left):
        kind = f"a finite {kind[2:]}"  # an unbounded side open: infinity is not in it
    if c.left is None and c.right is None:
        return kind
    if c.right is None:
        return f"{kind} {'≥' if closed_left else '>'} {_number(c.left)}"
    if c.left is None:
        return f"{kind} {'≤' if closed_right else '<'} {_number(c.right)}"
    return (f"{kind} in {'[' if closed_left else '('}{_number(c.left)}, "
            f"{_number(c.right)}{']' if closed_right else ')'}")


def constraint_text(constraint) -> str:
    """One constraint in words: "a number > 0", "one of 'l1', 'l2'", "None" …"""
    if constraint is None:
        return "None"
    if constraint == "boolean":
        return "True or False"
    if is_interval(constraint):
        return _interval_text(constraint)
    if is_string_options(constraint):
        return "one of " + ", ".join(repr(o) for o in sorted(constraint.options))
    if isinstance(constraint, PositiveInts):
        return str(constraint)
    if isinstance(constraint, type):
        return {str: "a string"}.get(constraint, f"a {constraint.__name__}")
    from sklearn.utils._param_validation import make_constraint  # only the sklearn:NAME families get here

    return str(make_constraint(constraint))


def allowed(constraints) -> str:
    """A parameter's constraints in words: "a number > 0 or None"."""
    if constraints == "no_validation":
        return "anything"
    return either([constraint_text(c) for c in constraints])


def either(texts: list[str]) -> str:
    """["a", "b", "c"] → "a, b or c"."""
    return texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + " or " + texts[-1]


def satisfies(value, constraint) -> bool:
    """Whether ``value`` meets one constraint (booleans are not numbers here, unlike in scikit-learn)."""
    if constraint is None:
        return value is None
    if constraint == "boolean":
        return isinstance(value, (bool, np.bool_))
    if is_interval(constraint) or isinstance(constraint, PositiveInts):
        return not isinstance(value, (bool, np.bool_)) and constraint.is_satisfied_by(value)
    if isinstance(constraint, type):
        return isinstance(value, constraint)
    if hasattr(constraint, "is_satisfied_by"):
        return constraint.is_satisfied_by(value)
    from sklearn.utils._param_validation import make_constraint  # scikit-learn's named constraints ("array-like" …)

    return make_constraint(constraint).is_satisfied_by(value)


def allows(constraints, value) -> bool:
    """Whether ``value`` satisfies one of ``constraints`` (``"no_validation"`` allows anything)."""
    return constraints == "no_validation" or any(satisfies(value, c) for c in constraints)


def unused(settings: dict, used_only_when: dict[str, dict[str, frozenset]]) -> dict[str, str]:
    """The parameters that ``settings`` switch off, each with why ("used only when penalty is
    'elasticnet'"). ``used_only_when``: parameter → {another parameter: the values with which the first
    is used}; where it names several, the first is used only with all of them."""
    why = {}
    for name, conditions in used_only_when.items():
        for other, values in conditions.items():
            if settings[other] not in values:
                options = either([repr(v) for v in sorted(values, key=str)])
                why[name] = f"used only when {other} is {options}"
                break
    return why


def check(name: str, value, constraints) -> None:
    """Raise ``ParameterError(name, …)`` unless ``value`` satisfies one of ``constraints``."""
    if not allows(constraints, value):
        raise ParameterError(name, f"must be {allowed(constraints)}; got {value!r}")


# -- descriptions -----------------------------------------------------------------------------

_ENTRY = re.compile(r"^(\w+(?:\s*,\s*\w+)*)\s*(?::.*)?$")  # "name : type" or "a, b : type"
_SENTENCE = re.compile(r"^(.+?[.!?])(?=\s+[A-Z0-9(\"'`]|\s*$)")


def _numpydoc_parameters(doc: str) -> dict[str, str]:
    """The entries of a numpydoc "Parameters" section: name → description (joined lines)."""
    lines = inspect.cleandoc(doc).splitlines()
    try:
        start = next(i for i, line in enumerate(lines[:-1])
                     if line.strip() == "Parameters" and set(lines[i + 1].strip()) == {"-"}) + 2
    except StopIteration:
        return {}
    entries: dict[str, str] = {}
    names: list[str] = []
    for i in range(start, len(lines)):
        line = lines[i]
        if i + 1 < len(lines) and line.strip() and set(lines[i + 1].strip()) == {"-"}:
            break  # the next section's title
        if line[:1].isspace():
            for name in names:
                entries[name] = (entries[name] + " " + line.strip()).strip()
        elif line.strip():
            match = _ENTRY.match(line.strip())
            names = [n.strip() for n in match[1].split(",")] if match else []
            for name in names:
                entries.setdefault(name, "")
    return entries


def parameter_docs(cls: type) -> dict[str, str]:
    """Each parameter's description from the numpydoc "Parameters" sections of ``cls`` and its
    bases (a subclass's own entry first), so shared parameters are documented once."""
    docs: dict[str, str] = {}
    for klass in cls.__mro__:
        for name, text in _numpydoc_parameters(klass.__dict__.get("__doc__") or "").items():
            docs.setdefault(name, text)
    return docs


def first_sentence(text: str) -> str:
    """The first sentence of ``text``, as plain text (no ``literal`` marks) without its full stop."""
    text = " ".join(text.replace("``", "").split())
    match = _SENTENCE.match(text)
    sentence = match[1] if match else text
    return sentence[:-1] if sentence.endswith(".") else sentence


@dataclass(frozen=True)
class ParameterInfo:
    """One hyperparameter of a family, described: its default, what it may be and what it means."""

    name: str
    default: Any
    allowed: str
    meaning: str


def describe(cls: type) -> list[ParameterInfo]:
    """The parameters of ``cls.__init__`` in signature order, described from its declarations."""
    constraints = getattr(cls, "_parameter_constraints", {})
    docs = parameter_docs(cls)
    signature = inspect.signature(cls.__init__)
    return [ParameterInfo(name, p.default,
                          allowed(constraints[name]) if name in constraints else "",
                          first_sentence(docs.get(name, "")))
            for name, p in signature.parameters.items() if name != "self"]
