"""What a run's figures, report and interpretation cost `train logreg` on 2 cores.

Targets: all figures and the report, the map's t-SNE included, in at most 1.5 s (issue 14); the
interpretation (calibration, robustness, the top-loss and confusion tables, their figures and the t-SNE
map, on by default) adds at most 1 s to `train` (issue 16).

Logistic regression is trained once with its defaults on all of Fashion-MNIST through the ordinary
pipeline (the anchor: what `mnistlab train logreg` costs as a whole). On that run's model and test set,
each figure is drawn and written alone, then the figures and the report together as `train` writes
them, in one process and in two (`write_figures(processes=2)`, what `train` uses), each the median of
3 runs, from fresh test results so that nothing drawn before is reused. Wall and CPU seconds (this
process and its children): the CPU seconds say what the work costs where other processes share the cores.
``--quick`` trains on 5,000 images, times everything once and prints, without writing BENCHMARKS.md.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from mnistlab import plots  # noqa: E402
from mnistlab.api import Run  # noqa: E402
from mnistlab.experiments import report  # noqa: E402
from mnistlab.experiments.figures import FIGURES, write_figures  # noqa: E402
from mnistlab.experiments.interpret import EMBEDDING_IMAGES, Interpretation, embed  # noqa: E402
from mnistlab.metrics import calibration  # noqa: E402
from mnistlab.experiments.pipeline import DataChoice, train  # noqa: E402
from mnistlab.experiments.robustness import robustness  # noqa: E402

FIGURES_TARGET, ADDED_TARGET = 1.5, 1.0
ADDED_FIGURES = ("confusion_matrix_percent", "top_losses", "most_confused", "reliability", "robustness", "embedding")
REPEATS = 3


def cpu_seconds() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def timed(fn, repeats: int) -> tuple[float, float, list[float]]:
    """Median wall seconds, median CPU seconds and every wall time of ``fn()``."""
    walls, cpus = [], []
    for _ in range(repeats):
        cpu, start = cpu_seconds(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - start)
        cpus.append(cpu_seconds() - cpu)
    return statistics.median(walls), statistics.median(cpus), walls


def main() -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="5,000 training images, everything once; print, do not write")
    args = parser.parse_args()
    repeats, data = (1, DataChoice(train_size=5000)) if args.quick else (REPEATS, DataChoice())
    out = Path(tempfile.mkdtemp(prefix="bench-interpret-"))
    load_before = os.getloadavg()
    try:
        total, _, path = common.timed(lambda: train("logreg", {}, data, out, name="logreg", overwrite=True),
                                      repeats=1)
        run = Run(path)
        model, ds, proba = run.model, run.dataset, run.predictions.proba
        mapped = None

        def results(with_map: bool = True) -> Interpretation:
            """The run's test results as `train` has them; ``with_map``: its t-SNE map already computed."""
            return Interpretation(model, run.classes, ds.y_test, proba, run.metrics, lambda: ds.x_test,
                                  (lambda: mapped) if with_map else (lambda: None))

        mapped = results(with_map=False).embedding()
        rows = []
        for name, figure in FIGURES.items():
            if figure.draw(results()) is None:
                continue
            wall, cpu, walls = timed(lambda f=figure: plots.save_png(f.draw(results()), out / f"{f.name}.png"), repeats)
            rows.append([name, "interpretation" if name in ADDED_FIGURES else "", f"{wall:.3f}", f"{cpu:.3f}",
                         ", ".join(f"{t:.3f}" for t in walls)])
            print(f"{name}: {wall:.3f} s")
        figures_table = common.markdown_table(["figure", "added by", "median s", "CPU s", "all runs s"], rows)

        def phase(processes: int, skip=(), with_map=True):
            """The figures (but ``skip``) and the report, as `train` writes them."""
            def run_once():
                folder = Path(tempfile.mkdtemp(dir=out))
                for name in ("config.json", "metrics.json"):
                    shutil.copy(path / name, folder / name)
                write_figures(results(with_map), folder / "plots", skip=skip, processes=processes)
                report.write_report(folder)
            return timed(run_once, repeats)

        phases = {}
        settings = [("all figures and the report (map computed before)", {"with_map": True}),
                    ("the same with the map's t-SNE (`train`)", {"with_map": False}),
                    ("without the map (`--no-embedding`)", {"skip": ("embedding",)}),
                    ("without the interpretation's figures", {"skip": ADDED_FIGURES})]
        phase_rows = []
        for label, kwargs in settings:
            for processes in (1, 2):
                wall, cpu, walls = phases[label, processes] = phase(processes, **kwargs)
                phase_rows.append([label, processes, f"{wall:.3f}", f"{cpu:.3f}", ", ".join(f"{t:.3f}" for t in walls)])
                print(f"{label}, {processes} process(es): {wall:.3f} s")
        phase_table = common.markdown_table(["figures and report", "processes", "median s", "CPU s", "all runs s"],
                                            phase_rows)

        parts = [("calibration (ECE, Brier, bins)", lambda: calibration(ds.y_test, proba)),
                 ("robustness (15 shifted copies of 1,000 images)",
                  lambda: robustness(model.predict_proba, ds.x_test, ds.y_test)),
                 ("top losses and most confused tables", lambda: results().summary()),
                 (f"t-SNE map of {EMBEDDING_IMAGES:,} test images (alone)", lambda: embed(model, results().x, proba))]
        part_rows, computed = [], 0.0
        for label, fn in parts:
            wall, cpu, walls = timed(fn, repeats)
            if not label.startswith("t-SNE"):  # the map's cost is inside the figures' phase
                computed += wall
            part_rows.append([label, f"{wall:.3f}", f"{cpu:.3f}", ", ".join(f"{t:.3f}" for t in walls)])
        parts_table = common.markdown_table(["part", "median s", "CPU s", "all runs s"], part_rows)
    finally:
        shutil.rmtree(out, ignore_errors=True)

    def added(label: str, processes: int) -> float:
        base = phases["without the interpretation's figures", processes][0]
        return computed + phases[label, processes][0] - base

    # as `train` writes them: the map's t-SNE is computed to draw it (bench_logreg counts it too)
    figures_wall = phases["the same with the map's t-SNE (`train`)", 2][0]
    figures_wall_map_before = phases["all figures and the report (map computed before)", 2][0]
    figures_cpu = phases["all figures and the report (map computed before)", 1][1]
    with_map = added("the same with the map's t-SNE (`train`)", 2)
    without_map = added("without the map (`--no-embedding`)", 2)
    serial = (added("the same with the map's t-SNE (`train`)", 1), added("without the map (`--no-embedding`)", 1))

    def verdict(value: float, target: float) -> str:
        return "met" if value <= target else "NOT met"

    load = ", ".join(f"{x:.1f}" for x in load_before) + " → " + ", ".join(f"{x:.1f}" for x in os.getloadavg())
    body = (f"Load average (1, 5, 15 min) at the start → the end: {load} on {os.cpu_count()} cores "
            "(other processes slow every wall time here down; CPU seconds less so).\n\n"
            f"Anchor: `train logreg` (defaults, {len(ds.y_train):,} / {len(ds.y_test):,} images) took "
            f"{total:.1f} s in all.\n\n"
            "Each figure drawn and written alone, in seconds:\n\n" + figures_table
            + "\n\nThe figures and the report together, as `train` writes them:\n\n" + phase_table
            + "\n\nWhat the interpretation computes besides its figures:\n\n" + parts_table
            + f"\n\nAll figures and the report, as `train` writes them (the map's t-SNE included): "
              f"{figures_wall:.2f} s in two processes (target ≤ {FIGURES_TARGET:g} s: "
              f"{verdict(figures_wall, FIGURES_TARGET)}); {figures_wall_map_before:.2f} s with the map "
              "computed before. "
              f"Added to `train` by the interpretation (what it computes, plus its figures and map over the "
              f"figures without them): {with_map:.2f} s with the map (target ≤ {ADDED_TARGET:g} s: "
              f"{verdict(with_map, ADDED_TARGET)}), {without_map:.2f} s with `--no-embedding`; "
              f"drawn in one process: {serial[0]:.2f} s and {serial[1]:.2f} s. In CPU seconds, what they cost "
              f"where nothing else runs: {figures_cpu:.2f} s for all figures and the report in one process, "
              "the map computed before.")
    if why := common.partial_run(parser, args):
        print(body, why, sep="\n\n")
        return
    common.write_section("bench_interpret", "What figures, report and interpretation cost a run", body)


if __name__ == "__main__":
    main()
