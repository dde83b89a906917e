"""What kind of number a value is, where Python's types blur it.

A bool is an int to ``isinstance`` (``True + True == 2``), and NumPy's scalars
are not Python's ints and floats; every check of a user's or a file's number
asks these two instead.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np


def is_number(value) -> bool:
    """A real number, Python's or NumPy's, and not a bool."""
    return isinstance(value, Real) and not isinstance(value, (bool, np.bool_))


def is_whole_number(value) -> bool:
    """An integer, Python's or NumPy's, and not a bool."""
    return isinstance(value, Integral) and not isinstance(value, (bool, np.bool_))
