"""`--option value` pairs become a family's hyperparameters, typed by its defaults."""

from __future__ import annotations

import pytest

from mnistlab.cli.model_options import convert, parse
from mnistlab.models import MnistlabModel


class Toy(MnistlabModel):
    family = "toy"

    def __init__(self, C=1.0, max_iter=100, penalty="l2", standardize=False, hidden=(8,),
                 random_state=None):
        self.C = C
        self.max_iter = max_iter
        self.penalty = penalty
        self.standardize = standardize
        self.hidden = hidden
        self.random_state = random_state


def test_types_follow_defaults():
    params = parse(Toy, ["--C", "0.5", "--max-iter", "20", "--penalty", "l1", "--standardize",
                         "--hidden", "256,128", "--random-state=7"])
    assert params == {"C": 0.5, "max_iter": 20, "penalty": "l1", "standardize": True,
                      "hidden": (256, 128), "random_state": 7}


def test_flags_and_negation():
    assert parse(Toy, ["--no-standardize"]) == {"standardize": False}
    assert parse(Toy, ["--standardize", "false"]) == {"standardize": False}
    assert parse(Toy, ["--c", "2"]) == {"C": 2.0}  # case-insensitive


def test_tutorial_aliases_resolve_to_the_familys_names():
    class Net(MnistlabModel):
        family = "net"

        def __init__(self, learning_rate=0.001, max_epochs=20):
            self.learning_rate = learning_rate
            self.max_epochs = max_epochs

    assert parse(Net, ["--lr", "0.008", "--epochs", "10"]) == {"learning_rate": 0.008, "max_epochs": 10}
    with pytest.raises(ValueError, match="no option --lr"):
        parse(Toy, ["--lr", "1"])


def test_multi_values_for_sweeps():
    assert parse(Toy, ["--C", "0.01,0.1,1", "--penalty", "l1,l2"], multi=True) == {
        "C": [0.01, 0.1, 1.0], "penalty": ["l1", "l2"]}


@pytest.mark.parametrize("args, message", [
    (["--nope", "1"], "no option --nope"),
    (["--C"], "needs a value"),
    (["--C", "abc"], "--C"),
    (["stray"], "unexpected argument"),
    (["--standardize", "maybe", "--C", "1"], "true or false"),
])
def test_errors_are_value_errors(args, message):
    with pytest.raises(ValueError, match=message):
        parse(Toy, args)


def test_convert_none_default():
    assert convert("none", None) is None
    assert convert("3", None) == 3 and convert("0.5", None) == 0.5 and convert("x", None) == "x"
