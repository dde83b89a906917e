"""One self-contained HTML report per run directory.

``write_report(run_dir)`` reads ``config.json``, ``metrics.json`` and
``plots/*.png`` and writes ``report.html``: inline CSS, images embedded as
base64 data URIs, no scripts and no external resources, so the file can be
mailed or opened offline. Every piece is optional; what is missing is left out.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from .._io import atomic_write_text
from .._values import is_number
from ..html import data_uri
from .figures import FIGURES
from ..run_config import CONFIG, read_json
from .store import METRICS, PLOTS, REPORT

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #222;
       max-width: 1100px; margin: 2em auto; padding: 0 1em; line-height: 1.45; }
h1 { margin-bottom: 0.2em; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.8em; }
.subtitle { color: #666; margin-top: 0; }
.note { color: #8a5a00; }
table { border-collapse: collapse; margin: 0.6em 0; display: block; max-width: 100%; overflow-x: auto; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.7em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.summary td { background: #fafafa; }
pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; white-space: pre-wrap; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #444; font-style: italic; margin-top: 0.3em; }
"""


def _read_json(path: Path) -> dict[str, Any]:
    """A run file if it is there (every part of the report is optional); a damaged one is an error."""
    return read_json(path) if path.is_file() else {}


def _text(value: Any) -> str:
    """A value as escaped display text."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return html.escape(f"{value:.6g}")
    if isinstance(value, (dict, list)):
        return html.escape(json.dumps(value, ensure_ascii=False))
    return html.escape(str(value))


def _key_value_table(rows: list[tuple[str, Any]]) -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{_text(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>\n" if rows else ""


def _formatted(value: Any, spec: str) -> str | None:
    return None if value is None else format(value, spec)


def _present(pairs: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    return [(k, v) for k, v in pairs if v is not None]


def _data_section(config: dict) -> str:
    dataset = config.get("dataset", {})
    classes = dataset.get("classes")
    rows = _present([
        ("Dataset", dataset.get("title") or dataset.get("name")),
        ("Source", dataset.get("source")),
        ("Checksums", dataset.get("checksum_summary")),
        ("Training images", _formatted(dataset.get("n_train"), ",")),
        ("Test images", _formatted(dataset.get("n_test"), ",")),
        ("Classes", ", ".join(f"{i}: {c}" for i, c in enumerate(classes)) if classes else None),
    ])
    return "<h2>Data</h2>\n" + _key_value_table(rows) if rows else ""


def _config_section(config: dict) -> str:
    parts = []
    if params := config.get("params"):
        parts.append("<h3>Hyperparameters</h3>\n" + _key_value_table(list(params.items())))
    run_rows = _present([("Model", config.get("model")), ("Seed", config.get("seed")),
                         ("Created", config.get("created"))])
    parts.append(_key_value_table(run_rows))
    if command := config.get("command"):
        parts.append(f"<h3>Command</h3>\n<pre><code>{html.escape(str(command))}</code></pre>\n")
    if versions := config.get("versions"):
        parts.append("<h3>Versions</h3>\n" + _key_value_table(list(versions.items())))
    body = "".join(parts)
    return "<h2>Configuration</h2>\n" + body if body else ""


def _results_section(metrics: dict) -> str:
    rows = _present([
        ("Test accuracy", _formatted(metrics.get("accuracy"), ".2%")),
        ("Macro F1", _formatted(metrics.get("macro_f1"), ".4f")),
        ("Weighted F1", _formatted(metrics.get("weighted_f1"), ".4f")),
        ("Log-loss", _formatted(metrics.get("log_loss"), ".4f")),
        ("Expected calibration error", _formatted(metrics.get("calibration", {}).get("ece"), ".4f")),
        ("ECE binning", metrics.get("calibration", {}).get("ece_binning")),
        ("Brier score", _formatted(metrics.get("calibration", {}).get("brier"), ".4f")),
        *_temperature_rows(metrics.get("temperature")),
        ("Test images", _formatted(metrics.get("n_test"), ",")),
        ("Fit time (s)", _formatted(metrics.get("fit_seconds"), ".2f")),
        ("Prediction time per 10,000 images (s)",
         _formatted(metrics.get("predict_seconds_per_10k"), ".3f")),
        ("Learned parameters", _formatted(metrics.get("n_parameters"), ",")),
        ("Iterations", metrics.get("n_iter")),
        ("Converged", metrics.get("converged")),
        ("Solver message", metrics.get("fit_message")),
    ])
    note = (f"<p class=\"note\">Probabilities: {html.escape(metrics['probabilities_note'])}.</p>\n"
            if metrics.get("probabilities_note") else "")
    return "<h2>Results</h2>\n" + _key_value_table(rows) + note if rows else ""


def _temperature_rows(temperature: dict | None) -> list[tuple[str, Any]]:
    if not temperature:
        return []
    if note := temperature.get("not_fitted"):
        return [("Temperature", f"{temperature['value']:.4f} ({note})")]
    return [(f"Temperature (fitted on {temperature['n_validation']:,} held-out training images)",
             f"{temperature['value']:.4f}"),
            ("ECE before → after temperature scaling",
             f"{temperature['ece_before']:.4f} → {temperature['ece_after']:.4f}"),
            ("Brier score before → after", f"{temperature['brier_before']:.4f} → {temperature['brier_after']:.4f}")]


def _analysis_section(metrics: dict) -> str:
    lines = metrics.get("analysis")
    if not lines:
        return ""
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    return f"<h2>Analysis</h2>\n<ul>{items}</ul>\n"


def _classification_report_section(metrics: dict) -> str:
    per_class = metrics.get("per_class")
    if not per_class:
        return ""

    def row(name, scores, support, css=""):
        cells = "".join(f'<td class="num">{scores.get(key, 0):.3f}</td>'
                        for key in ("precision", "recall", "f1"))
        return (f"<tr{css}><td>{html.escape(str(name))}</td>{cells}"
                f'<td class="num">{support}</td></tr>')

    n_test = metrics.get("n_test", sum(c["support"] for c in per_class))
    rows = [row(c["class"], c, c["support"]) for c in per_class]
    if "accuracy" in metrics:
        rows.append(f'<tr class="summary"><td>accuracy</td><td></td><td></td>'
                    f'<td class="num">{metrics["accuracy"]:.3f}</td><td class="num">{n_test}</td></tr>')
    for label, key in (("macro avg", "macro_avg"), ("weighted avg", "weighted_avg")):
        if key in metrics:
            rows.append(row(label, metrics[key], n_test, ' class="summary"'))
    header = ("<tr><th>class</th><th>precision</th><th>recall</th>"
              "<th>F1</th><th>support</th></tr>")
    return f"<h2>Classification report</h2>\n<table>{header}{''.join(rows)}</table>\n"


def _interpretation_sections(metrics: dict, classes: list[str]) -> str:
    """Where the model is wrong: its top losses, most confused pairs and accuracy under shifted images."""
    def name(label: int) -> str:
        return classes[label] if 0 <= label < len(classes) else str(label)

    parts = []
    if rows := metrics.get("top_losses"):
        parts.append("<h2>Top losses</h2>\n<p>The test images whose true class got the lowest probability.</p>\n"
                     + table(["test image", "true", "predicted", "probability of the true class", "loss"],
                             [[r["index"], name(r["true"]), name(r["predicted"]), f"{r['p_true']:.2%}",
                               round(r["loss"], 3)] for r in rows]))
    if rows := metrics.get("most_confused"):
        parts.append("<h2>Most confused pairs</h2>\n"
                     + table(["class A", "class B", "A predicted as B", "B predicted as A", "both ways"],
                             [[name(r["a"]), name(r["b"]), r["a_to_b"], r["b_to_a"], r["a_to_b"] + r["b_to_a"]]
                              for r in rows]))
    if robust := metrics.get("robustness"):
        rows = [["none", "", f"{robust['clean']:.2%}"]]
        rows += [[shift, f"{strength:g} {curve['unit']}", f"{accuracy:.2%}"]
                 for shift, curve in robust["shifts"].items()
                 for strength, accuracy in zip(curve["strengths"], curve["accuracy"])]
        parts.append(f"<h2>Robustness</h2>\n<p>Accuracy on {robust['n_images']:,} test images, shifted.</p>\n"
                     + table(["shift", "strength", "accuracy"], rows))
    return "".join(parts)


def _history_section(metrics: dict) -> str:
    history = metrics.get("history") or {}
    rows = [
        f'<tr><td>{html.escape(key)}</td><td class="num">{len(values)}</td>'
        f'<td class="num">{_text(values[0])}</td><td class="num">{_text(values[-1])}</td></tr>'
        for key, values in history.items() if isinstance(values, list) and values
    ]
    if not rows:
        return ""
    header = "<tr><th>series</th><th>points</th><th>first</th><th>last</th></tr>"
    return f"<h2>Training history</h2>\n<table>{header}{''.join(rows)}</table>\n"


def _ordered_plots(plots_dir: Path) -> list[tuple[Path, str]]:
    """The run's figures (``write_figures`` wrote those its model has) in reading order, with their captions."""
    return [(path, figure.caption) for name, figure in FIGURES.items()
            if (path := plots_dir / f"{name}.png").is_file()]


def figure(path: Path, caption: str) -> str:
    """A PNG embedded as a data URI, with its caption."""
    return (f'<figure><img src="{data_uri(Path(path).read_bytes())}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>\n")


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A plain HTML table; numbers are right-aligned."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f'<td class="num">{_text(c)}</td>' if is_number(c) else f"<td>{_text(c)}</td>"
                                    for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>\n"


def page(title: str, body: str) -> str:
    """A complete, self-contained HTML document."""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n"
        f"<body>\n{body}</body>\n</html>\n"
    )


def _figures_section(run_dir: Path) -> str:
    figures = [figure(path, caption) for path, caption in _ordered_plots(run_dir / PLOTS)]
    return "<h2>Figures</h2>\n" + "".join(figures) if figures else ""


def render_report(run_dir) -> str:
    """The report of ``run_dir`` as an HTML string."""
    run_dir = Path(run_dir)
    config = _read_json(run_dir / CONFIG)
    metrics = _read_json(run_dir / METRICS)
    dataset = config.get("dataset", {})
    dataset_title = dataset.get("title") or dataset.get("name") or "unknown dataset"
    title = f"{config.get('model', 'Model')} on {dataset_title}"
    subtitle = " · ".join(str(s) for s in (config.get("name") or run_dir.name, config.get("created"))
                          if s)
    body = "".join([
        f"<h1>{html.escape(title)}</h1>\n<p class=\"subtitle\">{html.escape(subtitle)}</p>\n",
        _data_section(config),
        _config_section(config),
        _results_section(metrics),
        _analysis_section(metrics),
        _classification_report_section(metrics),
        _interpretation_sections(metrics, dataset.get("classes") or []),
        _history_section(metrics),
        _figures_section(run_dir),
    ])
    return page(title, body)


def write_report(run_dir) -> Path:
    """Write ``run_dir/report.html`` (atomically) and return its path."""
    path = Path(run_dir) / REPORT
    atomic_write_text(path, render_report(run_dir))
    return path
