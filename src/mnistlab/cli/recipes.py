"""`mnistlab recipes …`: the classic tutorial experiments, reproduced."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from .common import OUT, DataDirOpt, JsonOpt, OutOpt, app, console, emit_json

recipes_app = typer.Typer(help="The classic tutorial experiments, reproduced on current libraries.",
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
    from ..experiments.recipes import RECIPES

    if as_json:
        emit_json({name: {"title": r.title, "model": r.family, "params": r.params,
                          "dataset": r.data.dataset, "published": r.published,
                          "published_note": r.published_note, "notes": r.notes}
                   for name, r in RECIPES.items()})
        return
    table = Table(title="Recipes (`mnistlab recipes run NAME`)")
    for col in ("name", "experiment", "model", "published"):
        table.add_column(col, justify="right" if col == "published" else "left")
    for name, r in RECIPES.items():
        table.add_row(name, r.title, r.family, f"{r.published:.4g}")
    console.print(table)


@recipes_app.command("run")
def recipes_run(name: Annotated[str, typer.Argument(help="Recipe name (see `mnistlab recipes list`).")],
                data_dir: DataDirOpt = None, out: OutOpt = OUT, as_json: JsonOpt = False) -> None:
    """Run one tutorial experiment and print our result next to the published one.

    Examples:

    ```
    mnistlab recipes run fashion-logreg-saga
    mnistlab recipes run mnist-l1-5000 --data-dir ~/data/mnist
    ```
    """
    from .. import api
    from ..experiments.recipes import get_recipe

    recipe = get_recipe(name)
    if recipe.notes and not as_json:
        console.print(recipe.notes, highlight=False, soft_wrap=True)
    run = api.recipes.run(name, data_dir=data_dir, out=out, progress=not as_json)
    ours = run.metrics["accuracy"]
    answer = {"recipe": name, "ours": ours, "published": recipe.published,
              "published_note": recipe.published_note, "difference": ours - recipe.published,
              "fit_seconds": run.metrics["fit_seconds"], "run_dir": str(run.path), "report": str(run.report_path)}
    if as_json:
        emit_json(answer)
        return
    console.print(f"[bold]{recipe.title}[/bold]")
    console.print(f"ours: test accuracy {ours:.4f} in {run.metrics['fit_seconds']:.1f} s "
                  f"| published: {recipe.published_note} | difference {ours - recipe.published:+.4f}",
                  highlight=False, soft_wrap=True)
    console.print(f"report: {run.report_path}")
