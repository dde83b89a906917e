"""What the page shows of where a run's model is wrong: its top losses, each with its explanation, and
its reliability diagram. Computed once per run (and again only when its model file changes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..api import Run
from ..experiments.store import PLOTS, within
from ..html import data_uri, evidence_png, png_data_uri
from ..models.serialization import ARRAYS_FILE
from .workers import while_unchanged

_answers: dict[Path, tuple[float, dict]] = {}


def mistakes(run_dir: Path) -> dict:
    """The run's top losses (images, classes, probabilities, evidence maps) and calibration, as plain JSON."""
    return while_unchanged(_answers, run_dir, run_dir / ARRAYS_FILE, lambda: _compute(Run(run_dir)))


def _compute(run: Run) -> dict:
    interpretation = run.interpretation
    rows = run.metrics.get("top_losses") or interpretation.summary()["top_losses"]
    indices = np.array([row["index"] for row in rows], dtype=int)
    maps = interpretation.explanations(indices) if len(indices) else []
    images = interpretation.images
    calibration = interpretation.calibration()
    return {
        "run": run.name,
        "explanation_method": run.model.explanation_method,
        "top_losses": [{
            "index": row["index"], "true_class": run.classes[row["true"]],
            "predicted_class": run.classes[row["predicted"]], "p_true": row["p_true"], "loss": row["loss"],
            "image_png": png_data_uri(images[row["index"]]),
            "explanation_png": evidence_png(maps[i][row["predicted"]]),
        } for i, row in enumerate(rows)],
        "calibration": {k: calibration[k] for k in ("ece", "brier", "ece_binning")},
        "reliability_png": _figure_uri(run, "reliability"),
    }


def _figure_uri(run: Run, name: str) -> str:
    """The run's saved figure ``name`` as a PNG data URI (drawn now for a run from before it existed,
    and for one whose file is a link out of the run's folder, which is not read)."""
    path = run.path / PLOTS / f"{name}.png"
    if within(path, run.path):
        return data_uri(path.read_bytes())
    from ..plots import png_bytes

    return data_uri(png_bytes(run.figure(name)))
