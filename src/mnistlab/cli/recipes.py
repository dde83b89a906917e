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
    from ..experiments.recipes import RECIPES, ROLES

    if as_json:
        emit_json({name: {"title": r.title, "published": r.published, "published_note": r.published_note,
                          "notes": r.notes,
                          **{role: {"model": c.family, "params": c.params, "dataset": c.data.dataset}
                             for role in ROLES for c in [getattr(r, role)]}}
                   for name, r in RECIPES.items()})
        return
    table = Table(title="Recipes (`mnistlab recipes run NAME`)")
    for col in ("name", "experiment", "reproduction", "ours", "published"):
        table.add_column(col, justify="right" if col == "published" else "left")
    for name, r in RECIPES.items():
        table.add_row(name, r.title, r.reproduction.family, r.ours.family, f"{r.published:.4g}")
    console.print(table)


@recipes_app.command("run")
def recipes_run(name: Annotated[str, typer.Argument(help="Recipe name (see `mnistlab recipes list`).")],
                data_dir: DataDirOpt = None, out: OutOpt = OUT, as_json: JsonOpt = False) -> None:
    """Run a tutorial experiment as the tutorial ran it, and mnistlab's configuration beside it.

    Prints the published result, the reproduction's and ours, with each fit's time. The two
    runs are `recipe-NAME-reproduction` and `recipe-NAME-ours` (replaced if they exist).

    Examples:

    ```
    mnistlab recipes run fashion-logreg-saga
    mnistlab recipes run mnist-l1-5000 --data-dir ~/data/mnist
    mnistlab recipes run mnist-logreg-nopenalty --json
    ```
    """
    from .. import api
    from ..experiments.recipes import get_recipe

    recipe = get_recipe(name)
    if recipe.notes and not as_json:
        console.print(recipe.notes, highlight=False, soft_wrap=True)
    result = api.recipes.run(name, data_dir=data_dir, out=out, progress=not as_json)
    rows = result.rows()
    if as_json:
        emit_json({"recipe": name, "title": recipe.title, "published": recipe.published,
                   "published_note": recipe.published_note, "results": rows,
                   "reports": {"reproduction": str(result.reproduced.report_path),
                               "ours": str(result.ours.report_path)}})
        return
    table = Table(title=recipe.title, caption=recipe.published_note)
    table.add_column("result")
    table.add_column("model", no_wrap=True)
    for col in ("accuracy", "vs published", "zero weights", "fit s", "train / test"):
        table.add_column(col, justify="right", no_wrap=True)
    for r in rows:
        table.add_row(r["result"], r["model"], f"{r['accuracy']:.4f}",
                      "" if r["run"] is None else f"{r['accuracy'] - recipe.published:+.4f}",
                      "" if r["zero_weights"] is None else f"{r['zero_weights']:.1%}",
                      "" if r["fit_seconds"] is None else f"{r['fit_seconds']:.1f}", r["images"])
    console.print(table)
    console.print(f"reports: {result.reproduced.report_path}\n         {result.ours.report_path}", highlight=False)
