"""`mnistlab recipes …`: the classic tutorial experiments, reproduced."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table
from rich.text import Text

from ..errors import shown_path
from .common import OUT, Commands, JsonOpt, OutOpt, app, command_line, console, emit_json

recipes_app = Commands(help="The classic tutorial experiments, reproduced on current libraries.",
                          no_args_is_help=True)
app.add_typer(recipes_app, name="recipes")


@recipes_app.command("list")
def recipes_list(as_json: JsonOpt = False) -> None:
    """The recipes and the published results they reproduce.

    Examples:

    ```
    mnistlab recipes list
    mnistlab recipes list --json
    ```
    """
    from ..experiments.recipes import RECIPES, ROLES

    if as_json:
        emit_json({name: {"title": r.title, "published": r.published, "published_note": r.published_note,
                          "notes": " ".join(filter(None, [r.notes, r.data_note])),
                          **{role: {"model": c.family, "params": c.params, "dataset": c.data.dataset,
                                    "data": dataclasses.asdict(c.data)}
                             for role in ROLES for c in [getattr(r, role)]}}
                   for name, r in RECIPES.items()})
        return
    table = Table(title="Recipes (`mnistlab recipes run NAME`)")
    table.add_column("name", no_wrap=True, min_width=max(map(len, RECIPES)))  # whole: `recipes run` takes it
    table.add_column("experiment")
    for col in ("reproduction", "ours"):
        table.add_column(col, overflow="fold")
    table.add_column("published", justify="right")
    for name, r in RECIPES.items():
        table.add_row(name, r.title, r.reproduction.family, r.ours.family, f"{r.published:.4g}")
    console.print(table)


@recipes_app.command("run")
def recipes_run(name: Annotated[Optional[str], typer.Argument(
                    help="Recipe name (see `mnistlab recipes list`).")] = None,
                run_all: Annotated[bool, typer.Option("--all", help="Run every recipe.")] = False,
                cluster: Annotated[Optional[str], typer.Option(  # the variable read by the API, as sweep's
                    help="Each run a task on a Dask cluster (a scheduler's address or 'local'). Default: "
                         "$MNISTLAB_CLUSTER.")] = None,
                data_dir: Annotated[Optional[Path], typer.Option(
                    "--data-dir", metavar="FOLDER",
                    help="Folder of the four IDX files of the recipe's dataset (with --all, of the recipes on the "
                         "dataset it holds: the others find their data as usual).")] = None,
                out: OutOpt = OUT, as_json: JsonOpt = False) -> None:
    """Run a tutorial experiment as the tutorial ran it, and mnistlab's configuration beside it.

    Prints the published result, the reproduction's and ours, with each fit's time. The two
    runs are `recipe-NAME-reproduction` and `recipe-NAME-ours` (replaced if they exist).

    Examples:

    ```
    mnistlab recipes run fashion-logreg-saga
    mnistlab recipes run mnist-l1-5000 --data-dir ~/data/mnist
    mnistlab recipes run mnist-logreg-nopenalty --json
    mnistlab recipes run --all --data-dir ~/data/mnist --cluster local
    ```
    """
    from .. import api
    from ..errors import MnistlabError, ParameterError, one_line
    from ..experiments.recipes import get_recipe

    if (name is None) == (not run_all):
        raise ParameterError(None, "give one recipe's name or --all")
    if name is not None:
        recipe = get_recipe(name)
        notes = [recipe.notes, recipe.data_note if data_dir is None else ""]  # said where no data_dir was given
        if any(notes) and not as_json:
            console.print(" ".join(filter(None, notes)), highlight=False, soft_wrap=True)
        results = {name: api.recipes.run(name, data_dir=data_dir, out=out, progress=not as_json, cluster=cluster,
                                         command=command_line())}
    else:
        results = api.recipes.run_all(data_dir=data_dir, out=out, cluster=cluster, progress=not as_json,
                                      command=command_line())
    answers = {n: {"error": one_line(r)} if isinstance(r, Exception) else _answer(r) for n, r in results.items()}
    if as_json:
        emit_json(answers[name] if name is not None else answers)
    else:
        for n, result in results.items():
            if isinstance(result, Exception):
                console.print(Text.assemble((f"{n} failed:", "red"), f" {one_line(result)}"), highlight=False,
                              soft_wrap=True)
            else:
                _print(result)
    failed = [n for n, r in results.items() if isinstance(r, Exception)]
    if failed:
        raise MnistlabError(f"{len(failed)} of {len(results)} recipes failed: {', '.join(failed)}")


def _answer(result) -> dict:
    recipe = result.recipe
    return {"recipe": result.name, "title": recipe.title, "published": recipe.published,
            "published_note": recipe.published_note, "notes": recipe.notes, "results": result.rows(),
            "reports": {"reproduction": str(result.reproduced.report_path), "ours": str(result.ours.report_path)}}


def _print(result) -> None:
    recipe = result.recipe
    table = Table(title=recipe.title, caption=recipe.published_note)
    table.add_column("result", no_wrap=True, min_width=len("reproduced"))  # which number is which: never cut
    table.add_column("model", overflow="fold", min_width=len("model"))
    for col in ("accuracy", "vs published", "zero weights", "fit s", "train / test"):
        table.add_column(col, justify="right", no_wrap=True, min_width=len(col))
    for r in result.rows():
        table.add_row(r["result"], r["model"], f"{r['accuracy']:.4f}",
                      "" if r["run"] is None else f"{r['accuracy'] - recipe.published:+.4f}",
                      "" if r["zero_weights"] is None else f"{r['zero_weights']:.1%}",
                      "" if r["fit_seconds"] is None else f"{r['fit_seconds']:.1f}", r["images"])
    console.print(table)
    console.print(f"reports: {shown_path(result.reproduced.report_path)}\n"
                  f"         {shown_path(result.ours.report_path)}", highlight=False)
