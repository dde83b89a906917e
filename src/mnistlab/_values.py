"""What kind of number a value is, where Python's types blur it.

A bool is an int to ``isinstance`` (``True + True == 2``), and NumPy's scalars
are not Python's ints and floats; every check of a user's or a file's number
asks these two instead. (NumPy's bool is registered as neither a Real nor an
Integral, so it needs no check of its own, and this module no NumPy: the
command line starts without it.)
"""

from __future__ import annotations

import os
from numbers import Integral, Real

from .errors import ParameterError


def is_number(value) -> bool:
    """A real number, Python's or NumPy's, and not a bool."""
    return isinstance(value, Real) and not isinstance(value, bool)


def is_whole_number(value) -> bool:
    """An integer, Python's or NumPy's, and not a bool."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def path_text(parameter: str, value) -> str:
    """``value``, a path (a str or an os.PathLike), as text; a ParameterError naming ``parameter`` for anything
    else, and for "" (it would be the current folder, or read as none given): 5 would be the folder "5"; and for
    text holding a null byte, which no path can."""
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        raise ParameterError(parameter, f"must be a path (a str or a pathlib.Path), got {value!r}")
    if "\0" in str(value):  # no system call takes it: os.stat's bare ValueError ("embedded null byte") otherwise
        raise ParameterError(parameter, f"a path cannot hold a null byte, got {str(value)!r}")
    return str(value)


def setting_text(value) -> str:
    """A hyperparameter's value as the command line takes it: layer sizes (a tuple) as 64x32, the rest as str."""
    return "x".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)


def settings_text(settings: dict) -> str:
    """``name=value, …``, each value as ``setting_text`` writes it."""
    return ", ".join(f"{name}={setting_text(value)}" for name, value in settings.items())
