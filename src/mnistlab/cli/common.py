"""What every command shares: the app, the consoles, option types, JSON output.

Rich rendering lives here in the shell: the library below never prints.
"""

from __future__ import annotations

import os
import shlex
import sys
import warnings
from collections import Counter
from pathlib import Path
from typing import Annotated, Optional, get_args, get_type_hints

import typer
from rich.console import Console
from typer.core import TyperCommand

from .._io import json_text, utf8_text
from ..errors import MnistlabError, ParameterError, shown_path
from ..data.registry import DATASETS
from ..experiments.store import DEFAULT_OUT

class StrictCommand(TyperCommand):
    """A command that refuses an option given twice, as the model options do: click would keep the
    last value without a word (`--train-size 300 … --train-size 400`), and one of the two is a mistake.
    It refuses an empty path too: `--out ""` would be read as the current folder."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        values, _, order = self.make_parser(ctx).parse_args(args=list(args))  # raw values; options in order
        # --help (eager) twice asks for the same help
        given = Counter(p for p in order
                        if p.param_type_name == "option" and not (p.multiple or p.count or p.is_eager))
        for option, times in given.items():
            if times > 1:
                raise ParameterError(None, f"{option.opts[0]} is given twice")
        paths = _path_parameters(self.callback)
        for param in self.params:
            value = values.get(param.name)
            if param.name in paths and (value == "" or (isinstance(value, (list, tuple)) and "" in value)):
                if param.param_type_name == "option":  # in the words of what it takes (its metavar): --output
                    # FILE had been told "give a file or folder (. for this one)", and then '.' was no file name
                    what = {"FILE": "a file", "FOLDER": "a folder (. for this one)"}.get(param.metavar,
                                                                                        "a file or folder")
                    raise ParameterError(param.name, f"an empty path; give {what}")
                raise ParameterError(None, f"an empty path among the {param.name}; give a file or folder")
        return super().parse_args(ctx, args)


def _path_parameters(command) -> list[str]:
    """The parameters of a command's function that take a path, or several."""
    hints = get_type_hints(command) if command else {}
    return [name for name, hint in hints.items() if _takes_path(hint)]


def _takes_path(hint) -> bool:
    """Path, Optional[Path], list[Path] and the like."""
    return hint is Path or any(_takes_path(argument) for argument in get_args(hint))


class Commands(typer.Typer):
    """typer.Typer whose commands refuse an option given twice and an empty path (``StrictCommand``)."""

    def command(self, *args, cls: type[TyperCommand] = StrictCommand, **kwargs):
        return super().command(*args, cls=cls, **kwargs)


app = Commands(
    help="Train, understand, compare and use image classifiers on MNIST-family data.",
    no_args_is_help=True, add_completion=False, rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
)

# What the commands print quotes paths, file names and the contents of files: never read as Rich markup
# (a name holding "[/x]" would break the line, "[bold]x" would lose its brackets); styles come as ``Text``.
# Nor broken by a newline at the terminal's width: a path copied from the output must be whole (the
# terminal wraps long lines itself).
console = Console(markup=False, soft_wrap=True)
err_console = Console(stderr=True, markup=False, soft_wrap=True)

DatasetOpt = Annotated[str, typer.Option("--dataset", "-d", help=f"One of: {', '.join(DATASETS)}.")]
DataDirOpt = Annotated[Optional[Path], typer.Option(
    "--data-dir", metavar="FOLDER", help="Folder with the four IDX files (.gz or raw); env MNISTLAB_DATA_DIR.")]
OutOpt = Annotated[Path, typer.Option(
    "--out", metavar="FOLDER", envvar="MNISTLAB_OUT",
    help="Folder of the runs (OUT/runs) and of what this command writes.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of tables.")]
RunArg = Annotated[str, typer.Argument(help="Run name (under OUT/runs) or path to a run folder.")]
ModelArg = Annotated[str, typer.Argument(help="Model family, e.g. logreg (see `mnistlab models`).")]
SeedOpt = Annotated[int, typer.Option(min=0, max=2**32 - 1, help="Seed for subsets, splits and the model.")]
ClassesOpt = Annotated[Optional[str], typer.Option(
    help="Keep only these class labels, e.g. 0,1 (T-shirt/top vs Trouser); relabelled in order.")]
TrainSizeOpt = Annotated[Optional[int], typer.Option(help="Stratified training subset of this size.")]
TestSizeOpt = Annotated[Optional[int], typer.Option(help="Stratified test subset of this size.")]
IndexOpt = Annotated[int, typer.Option("--index", "-i", help="Image index in the split.")]
# an index into the run's own images, as the report's and the top losses' are: a subset where it took one
RUN_INDEX_HELP = "Image index in the run's images of the split (its subset, where it was trained on one)."
RunIndexOpt = Annotated[int, typer.Option("--index", "-i", help=RUN_INDEX_HELP)]
SplitOpt = Annotated[str, typer.Option(help="train or test.")]
TopOpt = Annotated[int, typer.Option(min=1, help="How many classes to list.")]
OUT = Path(DEFAULT_OUT)
# `train` and `sweep` take the model's hyperparameters as further `--option value` pairs
MODEL_OPTIONS = {"allow_extra_args": True, "ignore_unknown_options": True}


def command_line() -> str:
    """This command as typed, for config.json."""
    return " ".join(shlex.quote(a) for a in ["mnistlab", *sys.argv[1:]])


_json_stdout = None  # where emit_json writes, once keep_stdout_for_json has set stdout apart


def keep_stdout_for_json() -> None:
    """Under --json stdout holds the JSON document alone: from here on, whatever else is written to it goes
    to stderr (scikit-learn's verbose fits print to stdout, from Python and from C, so the file descriptor
    itself is redirected), and ``emit_json`` writes to the stdout set apart."""
    global _json_stdout
    if sys.stdout is None:  # closed by the caller (>&-): nowhere to write the JSON
        raise MnistlabError("stdout is closed: there is nowhere to write the JSON")
    sys.stdout.flush()
    _json_stdout = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)


def emit_json(obj) -> None:
    """``obj`` as the one JSON document --json prints: as the files hold it (``json_text``), NumPy's numbers and
    arrays as JSON's, not as the strings "3" and "[0 1 2]"."""
    stdout = _json_stdout or sys.stdout
    stdout.write(json_text(_utf8(obj)))
    stdout.flush()


def _utf8(value):
    """``value`` with its texts as ``utf8_text`` gives them: a path under a folder whose name is not UTF-8 (runs list
    --out $'o\\xfe') holds surrogates, which json.dumps wrote as lone "\\udcfe" escapes that strict UTF-8 readers
    (jq) refuse; U+FFFD instead, as the table shows them."""
    if isinstance(value, (str, os.PathLike)):  # a Path's str() held the surrogates too
        return utf8_text(os.fspath(value))
    if isinstance(value, dict):
        return {_utf8(k): _utf8(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_utf8(v) for v in value]
    return value


def warn_if_no_out(out: Path) -> None:
    """A warning where the output folder ``out`` does not exist: a mistyped --out, whose empty table of runs (or
    page) alone said no runs were trained there. Not an error: nothing trained yet is where every user starts."""
    if not out.exists():
        warnings.warn(f"no runs in {shown_path(out)}: the folder does not exist", stacklevel=1)


def exit_if_some_failed(failures: list[tuple[str, str]], total: int, what: str) -> None:
    """One line on stderr and exit code 2 where some of ``total`` items (``what``: "points", "configurations")
    failed by their own settings: how many, and the first's (name, error). Each is in its row too, and the
    others' results are written."""
    if failures:
        name, error = failures[0]
        err_console.print(f"{len(failures)} of {total} {what} failed; the first, {name}: {error}",
                          highlight=False, soft_wrap=True)
        raise typer.Exit(2)


def stored_image(dataset, index: int, split: str):
    """Image ``index`` (``--index``) of the dataset's ``split`` and its label."""
    x, y = dataset.split(split)
    if not 0 <= index < len(x):
        raise ParameterError("index", f"must be in 0..{len(x) - 1}")
    return x[index], int(y[index])


def parse_classes(classes: str | None) -> tuple[int, ...] | None:
    """"0,1" → (0, 1): the --classes option (not given: None, every class; given empty: a mistake)."""
    if classes is None:
        return None
    try:
        return tuple(int(c) for c in classes.split(","))
    except ValueError:
        raise ParameterError("classes", f"takes comma-separated class labels, e.g. 0,1; got {classes!r}") from None


def print_top(rows: list[dict]) -> None:
    for row in rows:
        console.print(f"  {row['class']:<14} {row['probability']:7.2%}", highlight=False)
