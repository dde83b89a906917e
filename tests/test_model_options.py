"""`--option value` pairs become a family's hyperparameters, typed by its declared constraints."""

from __future__ import annotations

from numbers import Integral, Real

import pytest

from mnistlab.cli.model_options import convert, describe, parse
from mnistlab.errors import ParameterError
from mnistlab.models import family_names, get_family
from mnistlab.models.base import MnistlabModel
from mnistlab.models.params import SEED_OR_NONE, Interval, PositiveInts, StrOptions


class Toy(MnistlabModel):
    """A family for these tests.

    Parameters
    ----------
    C : float > 0, default=1.0
        Inverse regularisation strength. More words that are not the meaning.
    max_iter : int
        The most iterations.
    penalty : {"l1", "l2"}
        Which penalty, e.g. the sparse one.
    standardize : bool
        Scale the pixels first.
    hidden : sequence of int
        Layer sizes.
    size : int or None
        Defaults to None, but is an int when given.
    random_state : int or None
        The seed.
    """

    family = "toy"
    _parameter_constraints = {
        "C": [Interval(Real, 0, None, closed="right")],  # as logreg's (inf: no penalty)
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "penalty": [StrOptions({"l1", "l2"})],
        "standardize": ["boolean"],
        "hidden": [PositiveInts()],
        "size": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": SEED_OR_NONE,
    }

    def __init__(self, C=1.0, max_iter=100, penalty="l2", standardize=False, hidden=(8,), size=None,
                 random_state=None):
        self.C = C
        self.max_iter = max_iter
        self.penalty = penalty
        self.standardize = standardize
        self.hidden = hidden
        self.size = size
        self.random_state = random_state


def test_types_follow_constraints():
    params = parse(Toy, ["--C", "0.5", "--max-iter", "20", "--penalty", "l1", "--standardize",
                         "--hidden", "256,128", "--size", "3", "--random-state=7"])
    assert params == {"C": 0.5, "max_iter": 20, "penalty": "l1", "standardize": True,
                      "hidden": (256, 128), "size": 3, "random_state": 7}
    assert type(params["C"]) is float and type(params["size"]) is int
    assert parse(Toy, ["--C", "1"]) == {"C": 1.0} and parse(Toy, ["--size", "none"]) == {"size": None}


def test_flags_and_negation():
    assert parse(Toy, ["--no-standardize"]) == {"standardize": False}
    assert parse(Toy, ["--standardize", "false"]) == {"standardize": False}
    assert parse(Toy, ["--c", "2"]) == {"C": 2.0}  # case-insensitive


def test_parameters_defaulting_to_none_arrive_typed():
    cnn = get_family("cnn")
    assert parse(cnn, ["--widths", "8,16", "--epochs", "2", "--lr", "0.1", "--crop", "0"]) == {
        "widths": (8, 16), "epochs": 2, "learning_rate": 0.1, "crop": 0}
    assert parse(cnn, ["--batch-size", "none"]) == {"batch_size": None}
    assert parse(get_family("numpy-mlp"), ["--validation-fraction", "0.2"]) == {"validation_fraction": 0.2}
    assert parse(get_family("mlp"), ["--hidden", "64"]) == {"hidden_layer_sizes": (64,)}


def test_values_out_of_range_are_left_to_the_family():
    """Text that reads as the right type passes; the family's validate_params names the parameter."""
    params = parse(get_family("cnn"), ["--widths", "8,-1", "--epochs", "0"])
    assert params == {"widths": (8, -1), "epochs": 0}
    with pytest.raises(ParameterError) as error:
        get_family("cnn")(**params).validate_params()
    assert error.value.parameter in ("widths", "epochs")


def test_tutorial_aliases_resolve_to_the_familys_names():
    assert parse(get_family("numpy-softmax"), ["--lr", "0.008", "--epochs", "10"]) == {
        "learning_rate": 0.008, "max_epochs": 10}
    assert parse(get_family("mlp"), ["--lr", "0.01", "--epochs", "5"]) == {
        "learning_rate_init": 0.01, "max_iter": 5}
    with pytest.raises(ParameterError, match="has an option --lr"):
        parse(Toy, ["--lr", "1"])
    # the step size, not the schedule scikit-learn calls learning_rate in these two
    assert parse(get_family("sklearn:MLPClassifier"), ["--lr", "0.01"]) == {"learning_rate_init": 0.01}
    with pytest.raises(ParameterError, match="has an option --lr"):  # eta0 does nothing under its default schedule
        parse(get_family("sklearn:SGDClassifier"), ["--lr", "0.01"])


def test_scikit_learns_seeds_folds_and_lists_can_be_typed():
    """"expected an int … or None, got 'none'", and no way at all to give a number of folds or a list."""
    assert parse(get_family("sklearn:RandomForestClassifier"), ["--random-state", "none"]) == {"random_state": None}
    assert parse(get_family("sklearn:LogisticRegressionCV"), ["--cv", "3"]) == {"cv": 3}
    assert parse(get_family("sklearn:MLPClassifier"), ["--hidden-layer-sizes", "16,8"]) == {
        "hidden_layer_sizes": (16, 8)}
    # a sweep parts its values by commas: layer sizes joined by x, as every family's (it refused "8x4")
    assert parse(get_family("sklearn:MLPClassifier"), ["--hidden-layer-sizes", "8x4,8"], multi=True) == {
        "hidden_layer_sizes": [(8, 4), 8]}  # 8: one layer of 8, as scikit-learn reads an int
    assert parse(get_family("sklearn:GaussianNB"), ["--priors", "0.5,0.5"]) == {"priors": (0.5, 0.5)}
    mlp = get_family("sklearn:MLPClassifier")  # a verbosity is a level or a flag, as scikit-learn takes it
    assert parse(mlp, ["--verbose", "2"]) == {"verbose": 2} and parse(mlp, ["--verbose", "true"]) == {"verbose": True}


def test_multi_values_for_sweeps():
    assert parse(Toy, ["--C", "0.01,0.1,1", "--penalty", "l1,l2"], multi=True) == {
        "C": [0.01, 0.1, 1.0], "penalty": ["l1", "l2"]}
    assert parse(Toy, ["--C", "0.01, 1", "--penalty", "l1, l2", "--standardize", "true, false"], multi=True) == {
        "C": [0.01, 1.0], "penalty": ["l1", "l2"], "standardize": [True, False]}  # ' l2' was no penalty
    assert parse(Toy, ["--penalty", " l2", "--standardize", "true "]) == {"penalty": "l2", "standardize": True}
    for value in (",", "0.1,,1", "0.1,", "0.1, ,1"):  # an empty value is a typo, not one fewer
        with pytest.raises(ParameterError, match=f"--C: give one or more comma-separated values, got '{value}'"):
            parse(Toy, ["--C", value], multi=True)
    mlp = get_family("numpy-mlp")  # layer sizes joined by x: the commas part the networks swept
    assert parse(mlp, ["--hidden", "64x32,128"], multi=True) == {"hidden": [(64, 32), (128,)]}
    assert parse(mlp, ["--hidden", "64x32"]) == parse(mlp, ["--hidden", "64,32"]) == {"hidden": (64, 32)}


@pytest.mark.parametrize("args, message", [
    (["--nope", "1"], "has an option --nope"),
    (["--C"], "needs a value"),
    (["--C", "abc"], "--C: expected a number > 0, got 'abc'"),
    (["--max-iter", "2.5"], "--max-iter: expected an int ≥ 1"),
    (["--size", "x"], "--size: expected an int ≥ 1 or none"),
    (["--hidden", "8,a"], "--hidden"),
    (["stray"], "unexpected argument"),
    (["--standardize", "maybe", "--C", "1"], "true or false"),
])
def test_errors_are_parameter_errors_naming_the_flag(args, message):
    with pytest.raises(ParameterError, match=message):
        parse(Toy, args)


def test_convert():
    assert convert("none", [Interval(Integral, 1, None, closed="left"), None]) is None
    assert convert("3", [Interval(Integral, 1, None, closed="left"), None]) == 3
    assert convert("0.5", [Interval(Real, 0, 1, closed="both")]) == 0.5
    assert convert("x", [StrOptions({"x"})]) == "x"
    assert convert("16, 32", [PositiveInts()]) == (16, 32)
    assert convert("anything", []) == "anything"  # no declaration: the text itself
    with pytest.raises(ValueError, match="expected"):
        convert("x", [Interval(Real, 0, 1, closed="both")])


def test_describe_gives_flag_default_allowed_and_meaning():
    options = {o.parameter: o for o in describe(Toy)}
    assert list(options) == ["C", "max_iter", "penalty", "standardize", "hidden", "size", "random_state"]
    assert options["C"].flag == "--C" and options["max_iter"].flag == "--max-iter"
    assert options["C"].default == 1.0 and options["C"].allowed == "a number > 0"
    assert options["C"].meaning == "Inverse regularisation strength"
    assert options["penalty"].allowed == "one of 'l1', 'l2'"
    assert options["penalty"].meaning == "Which penalty, e.g. the sparse one"
    assert options["size"].allowed == "an int ≥ 1 or None"
    assert options["hidden"].allowed == "a sequence of ints from 1 to 1,048,576"
    lenet = {o.parameter: o for o in describe(get_family("lenet"))}
    assert lenet["learning_rate"].aliases == ("--lr",) and lenet["epochs"].aliases == ()
    assert "checkpoint_dir" not in lenet  # the run sets it (a train or a sweep refuses it): not offered
    with pytest.raises(ParameterError, match="has an option --nope") as error:
        parse(get_family("lenet"), ["--nope", "1"])
    assert "--threads" in str(error.value) and "--checkpoint-dir" not in str(error.value)
    from mnistlab.experiments.pipeline import build_model

    given = parse(get_family("lenet"), ["--checkpoint-dir", "x"])  # read, then refused by the run, saying why
    with pytest.raises(ParameterError, match="set by mnistlab, not given") as error:
        build_model("lenet", given, 0)
    assert error.value.parameter == "checkpoint_dir"


@pytest.mark.parametrize("family", family_names())
def test_every_option_of_every_family_is_described(family):
    for option in describe(get_family(family)):
        assert option.allowed, f"{family} {option.parameter}: no constraint"
        assert option.meaning and "\n" not in option.meaning, f"{family} {option.parameter}: no meaning"


def test_a_whole_number_is_read_as_a_count_where_one_is_allowed():
    forest = get_family("sklearn:RandomForestClassifier")  # max_samples: a float (share, may exceed 1) or a count
    assert parse(forest, ["--max-samples", "10"]) == {"max_samples": 10}
    assert parse(forest, ["--max-samples", "0.5"]) == {"max_samples": 0.5}


@pytest.mark.parametrize("args, message", [
    (["--no-standardize", "true"], "unexpected argument 'true'"),  # was standardize=True
    (["--no-standardize=true"], "--no-standardize takes no value"),
    (["--no-C", "5"], "has an option --no-C \\(see the command's --help\\); logreg's options: --penalty, --C, "),
])
def test_no_goes_only_before_a_flag_and_takes_no_value(args, message):
    with pytest.raises(ParameterError, match=message):
        parse(get_family("logreg"), args)
    assert parse(get_family("logreg"), ["--no-standardize"]) == {"standardize": False}


def test_unknown_options_list_every_option_as_spelt_and_lists_take_no_empty_entry():
    with pytest.raises(ParameterError, match="numpy-mlp's options: --hidden, --init, "):
        parse(get_family("numpy-mlp"), ["--foo", "1"])
    with pytest.raises(ParameterError, match="--hidden: expected .*got '8,,8'"):
        parse(get_family("numpy-mlp"), ["--hidden", "8,,8"])
    assert parse(get_family("numpy-mlp"), ["--hidden", ""]) == {"hidden": ()}


@pytest.mark.parametrize("args, message", [
    (["--C", "1", "--C", "2"], "--C: C is given twice"),  # was C=2, the first dropped silently
    (["--standardize", "--no-standardize"], "--no-standardize: standardize is given twice"),
])
def test_an_option_given_twice_is_refused(args, message):
    with pytest.raises(ParameterError, match=message):
        parse(get_family("logreg"), args)
    with pytest.raises(ParameterError, match="--learning-rate: learning_rate is given twice"):
        parse(get_family("numpy-softmax"), ["--lr", "0.1", "--learning-rate", "0.2"])  # an alias and its name
