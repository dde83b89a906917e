import base64
import io
import json
import re

import numpy as np
import pytest
from PIL import Image

from mnistlab.metrics import analysis, evaluate
from mnistlab.experiments.report import write_report

NAMES = ["T-shirt/top", "Trouser", "Bag <&>"]


def tiny_png(color):
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), color).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def run_dir(tmp_path):
    run = tmp_path / "runs" / "demo"
    (run / "plots").mkdir(parents=True)
    config = {
        "name": "demo", "model": "logreg",
        "params": {"C": 0.1, "penalty": "l1", "note": "<script>alert(1)</script>", "tol": None},
        "dataset": {"name": "fashion-mnist", "title": "Fashion-MNIST (Zalando Research)",
                    "source": "/usr/share/datasets/fashion-mnist", "checksums": {},
                    "checksum_summary": "official files (checksums match)",
                    "classes": NAMES, "n_train": 60000, "n_test": 6},
        "seed": 0, "versions": {"python": "3.11", "scikit-learn": "1.9"},
        "created": "2025-01-01T12:00:00", "command": "mnistlab train --model logreg --C 0.1",
    }
    y_true = [0, 0, 1, 1, 2, 2]
    proba = np.eye(3)[[0, 2, 1, 1, 2, 0]] * 0.7 + 0.1
    metrics = evaluate(y_true, proba, NAMES)
    metrics.update(fit_seconds=1.5, n_iter=12, converged=True, fit_message="converged",
                   history={"objective": [2.3, 1.1, 0.9]}, analysis=analysis(metrics))
    (run / "config.json").write_text(json.dumps(config))
    (run / "metrics.json").write_text(json.dumps(metrics))
    for name, color in (("wrong.png", "red"), ("confusion_matrix.png", "blue"),
                        ("extra_plot.png", "green")):
        (run / "plots" / name).write_bytes(tiny_png(color))
    return run


def test_report_is_self_contained_and_complete(run_dir):
    path = write_report(run_dir)
    assert path == run_dir / "report.html"
    text = path.read_text(encoding="utf-8")

    assert text.count('src="data:image/png;base64,') == 2  # extra_plot.png is no figure of a run's: not shown
    assert not re.search(r"https?://", text)
    assert "<script" not in text and "&lt;script&gt;" in text
    assert "T-shirt/top" in text and "Bag &lt;&amp;&gt;" in text and "Bag <&>" not in text
    assert "66.67%" in text  # accuracy
    assert "logreg on Fashion-MNIST (Zalando Research)" in text
    assert "official files (checksums match)" in text and "60,000" in text
    assert "mnistlab train --model logreg --C 0.1" in text
    assert "↔" in text  # the analysis lines
    assert "macro avg" in text and "weighted avg" in text
    # the figures in reading order
    order = [text.index(caption) for caption in ("Confusion matrix of the test set", "first ten misclassified")]
    assert order == sorted(order) and "Extra plot" not in text
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "config.json", "metrics.json", "plots", "report.html"]


def test_report_embeds_the_png_bytes(run_dir):
    text = write_report(run_dir).read_text(encoding="utf-8")
    encoded = base64.b64encode((run_dir / "plots" / "wrong.png").read_bytes()).decode()
    assert f"data:image/png;base64,{encoded}" in text


def test_report_without_optional_pieces(run_dir):
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("history", "analysis", "fit_seconds", "n_iter", "converged", "fit_message"):
        del metrics[key]
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    for png in (run_dir / "plots").iterdir():
        png.unlink()
    text = write_report(run_dir).read_text(encoding="utf-8")
    assert "data:image" not in text
    assert "Training history" not in text and "Fit time" not in text
    assert "<h2>Analysis</h2>" not in text


def test_report_of_empty_directory(tmp_path):
    text = write_report(tmp_path).read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "</html>" in text
