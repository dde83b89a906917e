"""What a run's interpretation adds to `train logreg` (target: at most 1 s more on 2 cores).

Logistic regression is trained once with its defaults on all of Fashion-MNIST
through the ordinary pipeline (the anchor: what `mnistlab train logreg` costs
as a whole, interpretation included). Then each part the interpretation added
to a run is timed on that run's model and test set (median of 3): calibration
metrics, robustness under shifts, the top-loss and confusion tables, drawing
and writing the new figures, and the t-SNE map (`--no-embedding` skips it).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from mnistlab import plots  # noqa: E402
from mnistlab.api import Run  # noqa: E402
from mnistlab.experiments.figures import FIGURES  # noqa: E402
from mnistlab.experiments.interpret import Interpretation, embed  # noqa: E402
from mnistlab.experiments.metrics import calibration  # noqa: E402
from mnistlab.experiments.pipeline import DataChoice, train  # noqa: E402
from mnistlab.experiments.robustness import robustness  # noqa: E402

TARGET = 1.0
NEW_FIGURES = ("confusion_matrix_percent", "top_losses", "most_confused", "reliability", "robustness")


def main() -> None:
    out = Path(tempfile.mkdtemp(prefix="bench-interpret-"))
    try:
        total, _, path = common.timed(lambda: train("logreg", {}, DataChoice(), out, name="logreg", overwrite=True),
                                      repeats=1)
        run = Run(path)
        model, ds = run.model, run.dataset
        proba = run.predictions.proba
        r = Interpretation(model, run.classes, ds.y_test, proba, run.metrics, lambda: ds.x_test)
        mapped = embed(model, r.x, proba)
        r.load_embedding = lambda: mapped

        def figures(names):
            return lambda: [plots.save_png(FIGURES[n].draw(r), out / f"{n}.png") for n in names]

        parts = [("calibration (ECE, Brier, bins)", lambda: calibration(ds.y_test, proba)),
                 ("robustness (15 shifted copies of 1,000 images)",
                  lambda: robustness(model.predict_proba, ds.x_test, ds.y_test)),
                 ("top losses and most confused tables", lambda: r.summary()),
                 (f"the {len(NEW_FIGURES)} new figures, drawn and written", figures(NEW_FIGURES))]
        embedding_parts = [("t-SNE map of 1,000 test images", lambda: embed(model, r.x, proba)),
                           ("its figure, drawn and written", figures(["embedding"]))]
        rows, sums = [], {}
        for group, entries in (("always", parts), ("embedding", embedding_parts)):
            sums[group] = 0.0
            for label, fn in entries:
                median, times, _ = common.timed(fn)
                sums[group] += median
                rows.append([label, group, f"{median:.3f}", ", ".join(f"{t:.3f}" for t in times)])
                print(f"{label}: {median:.3f} s")
    finally:
        shutil.rmtree(out, ignore_errors=True)
    without, with_map = sums["always"], sums["always"] + sums["embedding"]
    verdict = "met" if without <= TARGET else "NOT met"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())  # other processes slow every number here down
    body = (f"Load average when it ended (1, 5, 15 min): {load} on {os.cpu_count()} cores.\n\n"
            f"Anchor: `train logreg` (defaults, all 60,000 / 10,000 images) took {total:.1f} s in all, "
            "interpretation included. The parts the interpretation adds, each the median of 3 runs, in seconds:\n\n"
            + common.markdown_table(["part", "when", "median s", "all runs s"], rows)
            + f"\n\nAdded to `train`: {without:.2f} s with `--no-embedding` (target ≤ {TARGET:g} s: {verdict}), "
              f"{with_map:.2f} s with the map.")
    common.write_section("bench_interpret", "What interpretation adds to a run", body)


if __name__ == "__main__":
    main()
