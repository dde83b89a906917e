"""The figures of a run, each written as one PNG.

Every function draws and returns its own ``matplotlib.figure.Figure`` (rendered
by the Agg canvas, never through pyplot), so plotting needs no display, keeps
no global state and leaves the backend of a caller's notebook alone; a notebook
shows a returned Figure as it is. ``save_png`` writes one atomically.
"""

from __future__ import annotations

import io
import math
import textwrap
from pathlib import Path

import numpy as np

from ._io import atomic_write_bytes, signals_deferred
from ._values import is_number
from .data.registry import IMAGE_SIDE

# The one module that imports matplotlib (figures, compare and sweep take its Figure from here), on a run's first
# figure, mid-way through a train(): a Ctrl-C there, or Jupyter's interrupt, left matplotlib half-imported, and
# every later call in that kernel failed ("module 'matplotlib' has no attribute 'get_data_path'"). The interrupt
# waits for the import to end. The Agg canvas, which savefig loads on first use, is imported with it: interrupted
# there, the Ctrl-C came out of savefig as "ImportError: initialization failed".
with signals_deferred():
    import matplotlib.backends.backend_agg  # noqa: F401
    from matplotlib import colormaps, rc_context
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath
    from matplotlib.ticker import LogFormatter, MaxNLocator, PercentFormatter

DPI = 110
REPORT_WIDTH_PX = 1060  # report.html shows a figure at most this wide (its column): more pixels would be scaled away
IMAGE_CMAP = "binary"
DIVERGING_CMAP = "RdBu"
HIGHLIGHT, MUTED, WRONG = "tab:orange", "tab:blue", "tab:red"
_TEXT = TextToPath()


class _PlainLogFormatter(LogFormatter):
    """Log-axis tick labels as plain numbers (0.3, 2, 100) rather than 3e-01."""

    def __call__(self, x, pos=None):
        return f"{x:g}" if super().__call__(x, pos) else ""


def png_dpi(fig: Figure) -> float:
    """The resolution ``save_png`` writes ``fig`` at: ``DPI``, less for a figure wider than the report shows."""
    return min(DPI, REPORT_WIDTH_PX / fig.get_figwidth())


def png_bytes(fig: Figure, dpi: float | None = None) -> bytes:
    """``fig`` rendered as a PNG file's bytes, at ``dpi`` (default: ``png_dpi``)."""
    buffer = io.BytesIO()
    # unhinted glyphs look the same at these sizes and render a sixth faster; compression level 1 is 1.5×
    # as fast as the default 6, for files 11 % larger
    with rc_context({"text.hinting": "none"}):
        fig.savefig(buffer, format="png", dpi=dpi or png_dpi(fig), pil_kwargs={"compress_level": 1})
    return buffer.getvalue()


def save_png(fig: Figure, path, dpi: float | None = None) -> Path:
    """Render ``fig`` as a PNG at ``path`` (atomically), at ``dpi`` (default: ``png_dpi``); return the path."""
    path = Path(path)
    atomic_write_bytes(path, png_bytes(fig, dpi))
    return path


def literal(text: str) -> str:
    """``text`` drawn as it is: a name a user chose (a run's, a photo's, a setting's value) with two $ in it was
    mathtext, 'x$y$_z' drawn with an italic y, and 'a$\\foo$' a ValueError where the figure was rendered."""
    return text.replace("$", r"\$")  # matplotlib draws \$ as $, and takes no other backslash for an escape


def _as_images(images) -> np.ndarray:
    """N×28×28 from N×28×28 or N×784 (any dtype)."""
    return np.asarray(images).reshape(-1, IMAGE_SIDE, IMAGE_SIDE)


def _bare(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def _note(ax, text: str) -> None:
    """An empty panel that says ``text``."""
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=12, transform=ax.transAxes)


def _symmetric_limit(values) -> float:
    vmax = float(np.max(np.abs(values))) if np.size(values) else 0.0
    return vmax if vmax > 0 else 1.0


# Fixed layouts. The figures of a run place their Axes in inches from the figure's edges, margins sized
# from the text they hold: constrained layout would measure every artist in an extra draw, which cost
# about as much as drawing the figure itself.

def _text_inches(texts, size: float) -> float:
    """The width, in inches, of the widest line of ``texts`` at font ``size`` (points)."""
    prop = FontProperties(size=size)
    widths = [_TEXT.get_text_width_height_descent(line, prop, ismath=False)[0]
              for text in texts for line in str(text).split("\n")]
    return max(widths, default=0.0) / 72


def _lines_inches(size: float, lines: int = 1) -> float:
    """The height, in inches, of ``lines`` lines of text at font ``size`` (matplotlib's line spacing is 1.2)."""
    return lines * size * 1.2 / 72


def _axes_at(fig: Figure, left: float, bottom: float, width: float, height: float, **kwargs):
    """An Axes at a rectangle given in inches from the figure's lower left corner."""
    fw, fh = fig.get_size_inches()
    return fig.add_axes((left / fw, bottom / fh, width / fw, height / fh), **kwargs)


def _grid(fig: Figure, nrows: int, ncols: int, left: float, right: float, top: float, bottom: float,
          wgap: float = 0.0, hgap: float = 0.0, **kwargs) -> np.ndarray:
    """``nrows``×``ncols`` subplots within margins and with gaps between them, all in inches."""
    fw, fh = fig.get_size_inches()
    width = (fw - left - right - (ncols - 1) * wgap) / ncols
    height = (fh - top - bottom - (nrows - 1) * hgap) / nrows  # the mean, with ``height_ratios``
    spec = {"left": left / fw, "right": 1 - right / fw, "top": 1 - top / fh, "bottom": bottom / fh,
            "wspace": wgap / width, "hspace": hgap / height}
    return fig.subplots(nrows, ncols, squeeze=False, gridspec_kw=spec, **kwargs)


def _colorbar(fig: Figure, cmap: str, vmin: float, vmax: float, rect, **kwargs):
    """A colorbar of ``cmap`` over [vmin, vmax] in ``rect`` (left, bottom, width, height in inches)."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    mappable = ScalarMappable(Normalize(vmin, vmax), cmap)
    return fig.colorbar(mappable, cax=_axes_at(fig, *rect), **kwargs)


def _rgb(values, cmap: str, vmin: float, vmax: float) -> np.ndarray:
    """``values`` coloured by ``cmap`` over [vmin, vmax] as an RGB array: what imshow would show."""
    scaled = (np.asarray(values, dtype=float) - vmin) / ((vmax - vmin) or 1.0)
    return colormaps[cmap](np.clip(scaled, 0.0, 1.0))[..., :3]


def _gray(image) -> np.ndarray:
    """An image as RGB in the image colour map, scaled to its own maximum (as imshow scales it)."""
    return _rgb(image, IMAGE_CMAP, 0.0, float(np.max(image)) or 1.0)


def _over(top: np.ndarray, bottom: np.ndarray, gap: int = 3) -> np.ndarray:
    """Two RGB tiles of one width, one over the other with a white gap between them."""
    return np.vstack([top, np.ones((gap, top.shape[1], 3)), bottom])


def _tiles(tiles, titles, suptitle: str, ncols: int, tile: float = 1.5, title_size: float = 8.5,
           colours=None, weights=None, colorbar: dict | None = None) -> Figure:
    """RGB ``tiles`` (all of one shape) in rows of ``ncols``, each under its title, with an optional colorbar
    (``colorbar``: ``cmap``, ``vmin``, ``vmax`` and ``label``); ``tile`` is a tile's width in inches.

    The tiles are pasted into one image drawn on one Axes, with one text per title: an Axes per tile
    cost ten times as much to create and draw."""
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Rectangle

    n = len(tiles)
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    height, width = tiles[0].shape[:2]
    per_pixel = tile / width  # inches
    lines = max(str(t).count("\n") + 1 for t in titles)
    pitch = max(tile + 0.2, _text_inches(titles, title_size) + 0.15)  # a column's width: tile and title fit
    gap = round((pitch - tile) / per_pixel)  # half of it on either side of a column: its title fits there too
    band = math.ceil((_lines_inches(title_size, lines) + 0.1) / per_pixel)  # a title's rows above its tile
    canvas = np.ones((nrows * (band + height), ncols * (width + gap), 3))
    corners = [(gap // 2 + (i % ncols) * (width + gap), (i // ncols) * (band + height) + band) for i in range(n)]
    for (x, y), picture in zip(corners, tiles):
        canvas[y:y + height, x:x + width] = picture
    margin, bar = 0.1, (1.3 if colorbar else 0.0)
    top = _lines_inches(12, suptitle.count("\n") + 1) + 0.15
    shown_w, shown_h = canvas.shape[1] * per_pixel, canvas.shape[0] * per_pixel
    width_in = max(shown_w + 2 * margin + bar, _text_inches([suptitle], 12) + 2 * margin)  # the title fits too
    fig = Figure(figsize=(width_in, shown_h + top + margin))
    left = (width_in - bar - shown_w) / 2  # the tiles centred under a title wider than they are
    ax = _axes_at(fig, left, margin, shown_w, shown_h)
    ax.imshow(canvas, interpolation="nearest", aspect="auto")
    ax.set_axis_off()
    ax.add_collection(PatchCollection([Rectangle((x - 0.5, y - 0.5), width, height) for x, y in corners],
                                      facecolor="none", edgecolor="black", linewidth=0.8, clip_on=False))
    colours, weights = colours or ["black"] * n, weights or ["normal"] * n
    for (x, y), title, colour, weight in zip(corners, titles, colours, weights):
        ax.text(x + (width - 1) / 2, y - 1.5, title, ha="center", va="bottom", fontsize=title_size, color=colour,
                fontweight=weight)
    if colorbar:
        _colorbar(fig, colorbar["cmap"], colorbar["vmin"], colorbar["vmax"],
                  (left + shown_w + 0.25, margin + 0.1 * shown_h, 0.2, 0.8 * shown_h), label=colorbar["label"])
    fig.suptitle(suptitle, y=1 - 0.05 / fig.get_figheight(), va="top")
    return fig


def _weight_rows(coef, class_names) -> tuple[np.ndarray, list[str]]:
    """Rows of ``coef`` as 28×28 images and their titles (a binary model has one row)."""
    coef = np.atleast_2d(np.asarray(coef, dtype=float))
    if len(coef) == 1 and len(class_names) == 2:
        titles = [f"{class_names[1]} vs {class_names[0]}"]
    else:
        titles = [str(name) for name in class_names]
    if len(coef) != len(titles):  # rows of something else (pairs of classes …) must not pass for the classes'
        raise ValueError(f"{len(coef)} rows of weights for {len(class_names)} classes")
    return coef.reshape(-1, IMAGE_SIDE, IMAGE_SIDE), titles


def _matrix_axes(k: int, class_names, title: str, cell: float = 0.62, bar_label: bool = True):
    """A figure for a k×k matrix of classes: square cells of ``cell`` inches, class names on both axes,
    room for the title above and a labelled colorbar on the right; returns (figure, matrix Axes, colorbar rect)."""
    side = max(3.0, cell * k)
    names = _text_inches(class_names, 10)
    left = names + 0.2 + _lines_inches(10) + 0.15  # tick labels, then the axis label
    bottom = 0.71 * names + 0.2 + _lines_inches(10) + 0.15  # tick labels at 45°, then the axis label
    top = _lines_inches(12, title.count("\n") + 1) + 0.25
    right = 0.3 + 0.2 + 0.55 + (_lines_inches(10) + 0.1 if bar_label else 0.0) + 0.1  # gap, bar, ticks, label
    fig = Figure(figsize=(left + side + right, bottom + side + top))
    ax = _axes_at(fig, left, bottom, side, side)
    ax.set_xticks(range(k), class_names, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(k), class_names)
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("True class")
    ax.set_title(title)
    return fig, ax, (left + side + 0.3, bottom + 0.1 * side, 0.2, 0.8 * side)


def confusion_matrix_plot(cm, class_names, normalized: bool = False,
                          difference: bool = False, title: str | None = None) -> Figure:
    """Heatmap of a confusion matrix (rows: true class) with the value in each cell.

    ``difference`` draws a signed matrix (run B − run A) on a symmetric diverging
    scale, coloured by what the change means: blue where B does better (more on
    the diagonal, fewer mistakes off it), red where it does worse.
    """
    cm = np.asarray(cm, dtype=float)
    k = len(class_names)
    title = title or ("Confusion matrix, normalised by true class (rows sum to 1)" if normalized
                      else "Confusion matrix (test images)")
    fig, ax, bar = _matrix_axes(k, class_names, title, bar_label=difference)
    if difference:
        vmax = _symmetric_limit(cm)
        better = np.where(np.eye(k, dtype=bool), cm, -cm)
        cmap, vmin, shown, threshold = DIVERGING_CMAP, -vmax, better, vmax * 0.6
    else:
        vmax = 1 if normalized else max(cm.max(), 1)
        cmap, vmin, shown, threshold = "Blues", 0, cm, vmax / 2
    ax.imshow(shown, cmap=cmap, vmin=vmin, vmax=vmax)
    colorbar = _colorbar(fig, cmap, vmin, vmax, bar)
    if difference:
        colorbar.set_label("blue: B better, red: B worse")
    for (i, j), value in np.ndenumerate(cm):
        text = f"{value:.2f}" if normalized else f"{int(value):+d}" if difference and value else f"{int(value)}"
        ax.text(j, i, text, ha="center", va="center", fontsize=8,
                color="white" if abs(value) > threshold else "black")
    return fig


def prediction_grid(images, true, pred, class_names, title: str) -> Figure:
    """Up to 10 images titled "predicted / true"; misclassified titles in red."""
    images = _as_images(images)[:10]
    true, pred = np.asarray(true)[:10], np.asarray(pred)[:10]
    if len(images) == 0:
        fig = Figure(figsize=(6, 2), layout="constrained")
        _note(fig.subplots(), "None")
        fig.suptitle(title)
        return fig
    return _tiles([_gray(image) for image in images],
                  [f"{class_names[p]} / {class_names[t]}" for t, p in zip(true, pred)],
                  f"{title}\n(titles: predicted / true)", ncols=5, tile=1.6,
                  colours=["black" if p == t else WRONG for t, p in zip(true, pred)])


def coefficient_images(coef, class_names, title: str = "Weights per class") -> Figure:
    """One 28×28 weight image per class on a shared symmetric RdBu scale."""
    weights, titles = _weight_rows(coef, class_names)
    vmax = _symmetric_limit(weights)
    return _tiles([_rgb(w, DIVERGING_CMAP, -vmax, vmax) for w in weights], titles, title, ncols=5, title_size=10,
                  colorbar={"cmap": DIVERGING_CMAP, "vmin": -vmax, "vmax": vmax, "label": "weight (blue +, red −)"})


def sparsity_mask(coef, class_names) -> Figure:
    """Where each class's weights are exactly zero (black), with sparsity in the titles."""
    weights, titles = _weight_rows(coef, class_names)
    zero = weights == 0
    return _tiles([_rgb(mask, "gray_r", 0, 1) for mask in zero],
                  [f"{name}: {mask.mean():.0%} zero" for mask, name in zip(zero, titles)],
                  f"Zero weights (black): {zero.mean():.1%} of all weights", ncols=5, title_size=10)


def _curve_groups(history) -> list[tuple[str, dict[str, list[float]]]]:
    """Series of ``history`` split into a loss panel, an accuracy panel and the rest."""
    groups = {"loss": {}, "accuracy": {}, "value": {}}
    for key, values in history.items():
        if not isinstance(values, (list, tuple, np.ndarray)) or len(values) == 0:
            continue
        lowered = key.lower()
        if "loss" in lowered or "objective" in lowered:
            group = "loss"
        elif "acc" in lowered:
            group = "accuracy"
        else:
            group = "value"
        groups[group][key] = np.asarray(values, dtype=float)
    return [(name, series) for name, series in groups.items() if series]


def curves(history: dict[str, list[float]], title: str, xlabel: str) -> Figure:
    """Convergence or learning curves: losses on one panel, accuracies on another.

    A loss panel whose values are all positive and span a factor ≥ 3 gets a log y axis.
    The shortest series sets the x axis (e.g. epochs); longer ones are spread evenly
    over it, so per-step losses appear as a thin line under the per-epoch ones.
    """
    groups = _curve_groups(history or {})
    if not groups:
        fig = Figure(figsize=(6, 2.5), layout="constrained")
        _note(fig.subplots(), "No history recorded")
        fig.suptitle(title)
        return fig
    fig = Figure(figsize=(5 * len(groups) + 1, 4))
    axes = _grid(fig, 1, len(groups), left=0.85, right=0.2, top=0.5, bottom=0.55, wgap=0.95).ravel()
    n_steps = min(len(values) for _, series in groups for values in series.values())
    for ax, (group, series) in zip(axes, groups):
        for key, values in series.items():
            x = np.arange(1, len(values) + 1) * n_steps / len(values)
            dense = len(values) > n_steps
            ax.plot(x, values, label=key, marker=None if dense or len(values) > 30 else "o", ms=3,
                    lw=0.8 if dense else 1.5, alpha=0.5 if dense else 1.0, zorder=1 if dense else 2)
        finite = np.concatenate([v[np.isfinite(v)] for v in series.values()])
        if group == "loss" and finite.size and finite.min() > 0 and finite.max() >= 3 * finite.min():
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(_PlainLogFormatter())
            ax.yaxis.set_minor_formatter(_PlainLogFormatter(minor_thresholds=(2, 0.4)))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(next(iter(series)) if len(series) == 1 else group)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    return fig


def probability_bars(proba, class_names, title: str) -> Figure:
    """Horizontal bars of one sample's class probabilities, the top class highlighted."""
    proba = np.asarray(proba, dtype=float).ravel()
    top = int(proba.argmax())
    k = len(class_names)
    fig = Figure(figsize=(6.5, 0.35 * k + 1.2))
    ax = _grid(fig, 1, 1, left=_text_inches(class_names, 10) + 0.2, right=0.3, top=0.4, bottom=0.6)[0, 0]
    colors = [HIGHLIGHT if i == top else MUTED for i in range(k)]
    ax.barh(range(k), proba, color=colors)
    for i, p in enumerate(proba):
        ax.text(min(p, 0.85) + 0.01, i, f"{p:.1%}", va="center", fontsize=9)
    ax.set_yticks(range(k), class_names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(PercentFormatter(xmax=1))
    ax.set_xlabel("predicted probability")
    ax.set_title(title)
    return fig


def contribution_maps(contributions, image, class_names, proba=None, method: str = "gradient × input") -> Figure:
    """The input image and, per class, its pixel contributions (``method``: gradient × input, which for a
    linear model is weight × pixel, or occlusion sensitivity) on a shared symmetric scale."""
    maps = np.asarray(contributions, dtype=float).reshape(len(class_names), IMAGE_SIDE, IMAGE_SIDE)
    vmax = _symmetric_limit(maps)
    top = int(np.argmax(proba)) if proba is not None else int(maps.sum(axis=(1, 2)).argmax())
    labels = [str(name) if proba is None else f"{name}\n{proba[k]:.1%}" for k, name in enumerate(class_names)]
    return _tiles([_gray(_as_images(image)[0]), *(_rgb(m, DIVERGING_CMAP, -vmax, vmax) for m in maps)],
                  ["input", *labels], f"Pixel contributions to each class score ({method}; blue for, red against)",
                  ncols=6, title_size=10,
                  weights=["normal", *("bold" if k == top else "normal" for k in range(len(maps)))],
                  colorbar={"cmap": DIVERGING_CMAP, "vmin": -vmax, "vmax": vmax, "label": "contribution"})


def class_saliency(images, maps, true, pred, class_names, method: str = "gradient × input") -> Figure:
    """One test image per class over its ``method`` map for its true class; each map on its own
    symmetric scale, since their magnitudes differ."""
    images, maps = _as_images(images), _as_images(np.asarray(maps, dtype=float))
    tiles = [_over(_gray(image), _rgb(saliency, DIVERGING_CMAP, -_symmetric_limit(saliency),
                                      _symmetric_limit(saliency)))
             for image, saliency in zip(images, maps)]
    return _tiles(tiles, [f"{class_names[t]}\npredicted: {class_names[p]}" for t, p in zip(true, pred)],
                  f"Saliency per class: {method} of the true class's score\n(under each image; blue for, red against)",
                  ncols=5, tile=1.4, colours=["black" if p == t else WRONG for t, p in zip(true, pred)])


def photo_explanation(photo, pixels, proba, class_names, title: str, contributions=None, found=None,
                      notes=()) -> Figure:
    """One photo's story: the original (None for an image given as the 28×28 input), the object found in it
    (``found``: RGB, with what was dropped, and ``notes`` saying what), the 28×28 input, the probabilities and,
    when the model can explain itself, each class's per-pixel contribution map."""
    proba = np.asarray(proba, dtype=float).ravel()
    k = len(class_names)
    top_class = int(proba.argmax())
    ncols = max(k, 6 if found is None else 8) // 2 * 2
    map_rows = 0 if contributions is None else -(-k // ncols)  # as many as the class maps fill
    fig = Figure(figsize=(13, 4 + 2.4 * map_rows), layout="constrained")
    # the maps in a figure of their own below: in one grid, the bars' labels widened the column under them
    top, bottom = fig.subfigures(2, 1, height_ratios=[4, 2.4 * map_rows]) if map_rows else (fig, None)
    grid = top.add_gridspec(1, ncols)
    # The steps, two columns each, then the probabilities.
    steps = 1 + (photo is not None) + (found is not None)
    half = grid.ncols // 2 if found is None else 2 * steps
    axes = [top.add_subplot(grid[0, half // steps * i: half // steps * (i + 1)]) for i in range(steps)]
    ax_bars = top.add_subplot(grid[0, half:])
    if photo is not None:  # an image given as the input was shown twice, the first titled "your photo"
        axes[0].imshow(np.asarray(photo), cmap="gray", vmin=0, vmax=1)
        axes[0].set_title("your photo (grayscale)", fontsize=10)
    if found is not None:
        axes[1].imshow(np.asarray(found))
        axes[1].set_title("object found" + (" (red: dropped)" if notes else ""), fontsize=10)
    axes[-1].imshow(np.asarray(pixels).reshape(IMAGE_SIDE, IMAGE_SIDE), cmap="gray", vmin=0, vmax=255)
    axes[-1].set_title("what the model sees (28×28)", fontsize=10)
    for ax in axes:
        _bare(ax)
    ax_bars.barh(range(k), proba, color=[HIGHLIGHT if i == top_class else MUTED for i in range(k)])
    ax_bars.set_yticks(range(k), class_names)
    ax_bars.invert_yaxis()
    ax_bars.set_xlim(0, 1)
    ax_bars.xaxis.set_major_formatter(PercentFormatter(xmax=1))
    if contributions is not None:
        maps = np.asarray(contributions, dtype=float).reshape(k, IMAGE_SIDE, IMAGE_SIDE)
        vmax = _symmetric_limit(maps)
        map_axes = bottom.subplots(map_rows, ncols, squeeze=False).ravel()
        for i, ax in enumerate(map_axes):
            _bare(ax)
            if i >= k:
                ax.set_visible(False)
                continue
            shown = ax.imshow(maps[i], cmap=DIVERGING_CMAP, vmin=-vmax, vmax=vmax)
            ax.set_title(f"{class_names[i]}\n{proba[i]:.1%}", fontsize=9,
                         fontweight="bold" if i == top_class else "normal")
        bottom.colorbar(shown, ax=list(map_axes), shrink=0.8, label="blue for, red against")
    fig.suptitle("\n".join([title, *notes]))
    return fig


def sample_grid(images, labels, class_names, per_class: int = 10) -> Figure:
    """The first ``per_class`` images of each class, one labelled row per class: one picture of them all
    (an axes per image took seconds, and a gigabyte, for a few hundred)."""
    images, labels = _as_images(images), np.asarray(labels)
    k, step = len(class_names), IMAGE_SIDE + 2  # a 2-pixel gap between images
    canvas = np.full((k * step - 2, per_class * step - 2), np.nan)  # NaN: not drawn, the page shows through
    for c in range(k):
        for j, index in enumerate(np.flatnonzero(labels == c)[:per_class]):
            canvas[c * step:c * step + IMAGE_SIDE, j * step:j * step + IMAGE_SIDE] = images[index]
    fig = Figure(figsize=(0.75 * per_class + 1.4, 0.75 * k + 0.6), layout="constrained")
    ax = fig.subplots()
    ax.imshow(canvas, cmap=IMAGE_CMAP, vmin=0, vmax=255, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([c * step + 14 for c in range(k)], [str(name) for name in class_names], fontsize=10)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    fig.suptitle(f"{per_class} training images of each class")
    return fig


def class_distribution(y_train, y_test, class_names) -> Figure:
    """Grouped bars: images per class in the training and the test set."""
    k = len(class_names)
    x = np.arange(k)
    fig = Figure(figsize=(max(6, 0.8 * k + 2), 4.2), layout="constrained")
    ax = fig.subplots()
    for offset, (label, y) in zip((-0.2, 0.2), (("train", y_train), ("test", y_test))):
        counts = np.bincount(np.asarray(y, dtype=int), minlength=k)[:k]
        bars = ax.bar(x + offset, counts, width=0.4, label=f"{label} ({counts.sum():,})")
        ax.bar_label(bars, fontsize=7)
    ax.set_xticks(x, class_names, rotation=45, ha="right")
    ax.set_ylabel("images")
    ax.set_title("Images per class")
    ax.legend()
    return fig


def metric_bars(names, values, title: str, ylabel: str, intervals=None) -> Figure:
    """A plain bar chart, one labelled bar per name; ``intervals`` ((low, high) per bar) draws error bars."""
    fig = Figure(figsize=(max(5, 0.7 * len(names) + 2), 4), layout="constrained")
    ax = fig.subplots()
    errors = None
    if intervals is not None:  # distances below and above each value, as matplotlib takes them
        low, high = np.asarray(intervals, dtype=float).T
        errors = np.vstack([np.asarray(values) - low, high - np.asarray(values)])
    bars = ax.bar(range(len(names)), values, color=MUTED, yerr=errors, capsize=3 if errors is not None else 0)
    ax.bar_label(bars, fmt="%.4g", fontsize=8)
    ax.set_xticks(range(len(names)), names, rotation=30 if len(names) > 4 else 0,
                  ha="right" if len(names) > 4 else "center")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return fig


def sweep_plot(x_values, series: dict[str, tuple[list[float], list[float] | None]], x_label: str,
               fixed: str = "") -> Figure:
    """Validation accuracy (and, for models with per-pixel weights, sparsity; both fractions
    0–1) against the swept hyperparameter, on a log x axis where its values are positive.

    ``series`` maps a label (e.g. the penalty) to ``(accuracies, sparsities or None)``, one value per x;
    ``fixed`` says the settings every point shares (max_iter=50), above the plots.
    """
    with_sparsity = any(sparsity is not None for _, sparsity in series.values())
    fig = Figure(figsize=(11 if with_sparsity else 6, 4.2), layout="constrained")
    axes = fig.subplots(1, 2 if with_sparsity else 1, squeeze=False).ravel()
    ax_acc = axes[0]
    for label, (accuracy, sparsity) in series.items():
        ax_acc.plot(x_values, accuracy, marker="o", label=label)
        if with_sparsity:
            axes[1].plot(x_values, sparsity or [math.nan] * len(x_values), marker="o", label=label)  # none measured
    for ax, ylabel in zip(axes, ("validation accuracy", "zero weights")):
        if all(is_number(x) and x > 0 for x in x_values):  # a log axis needs positive numbers
            ax.set_xscale("log")
        ax.set_xlabel(x_label)
        ax.set_ylabel(ylabel)
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1))
        ax.grid(alpha=0.3, which="both")
        ax.legend()
    ax_acc.set_title(f"Validation accuracy against {x_label}")
    if with_sparsity:
        axes[1].set_title(f"Sparsity against {x_label}")
    if fixed:  # once, wrapped to the figure's width: in each title, several settings ran into the other title
        fig.suptitle(textwrap.fill(f"fixed: {fixed}", width=110 if with_sparsity else 60), fontsize="medium")
    return fig


def confusion_counts_percent(cm, class_names, title: str = "Confusion matrix: counts and % of each true class"
                             ) -> Figure:
    """One confusion matrix with each cell's count and its share of the row (the true class), coloured by
    that share, so that classes with fewer images are read as fairly as the large ones."""
    cm = np.asarray(cm, dtype=float)
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    fig, ax, bar = _matrix_axes(len(class_names), class_names, title, cell=0.7)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    _colorbar(fig, "Blues", 0, 1, bar, format=PercentFormatter(xmax=1), label="share of the true class")
    for (i, j), count in np.ndenumerate(cm):  # an empty cell says 0, a share that rounds to 0 % says <1 %
        percent = "" if not count else "\n<1%" if share[i, j] < 0.005 else f"\n{share[i, j]:.0%}"
        ax.text(j, i, f"{int(count)}{percent}", ha="center", va="center", fontsize=7,
                color="white" if share[i, j] > 0.5 else "black")
    return fig


def top_losses(images, true, pred, p_true, losses, class_names, maps=None, method: str = "") -> Figure:
    """The most confident mistakes: each image titled predicted / true, its loss and the probability of the
    true class; under it (``maps``, one 784-pixel map each) the evidence for the predicted class."""
    images = _as_images(images)
    n = len(images)
    if n == 0:
        fig = Figure(figsize=(6, 2), layout="constrained")
        _note(fig.subplots(), "No test images")
        return fig
    tiles = [_gray(image) for image in images]
    if maps is not None:
        evidence = np.asarray(maps, dtype=float).reshape(n, IMAGE_SIDE, IMAGE_SIDE)
        tiles = [_over(t, _rgb(e, DIVERGING_CMAP, -_symmetric_limit(e), _symmetric_limit(e)))
                 for t, e in zip(tiles, evidence)]
    explained = ("" if maps is None
                 else f"\n(under each: evidence for the predicted class, {method}; blue for, red against)")
    # not "the mistakes, then the right answers": with three classes or more, a right answer at p(true) 0.34
    # has a higher loss than a mistake at 0.45
    wrong = int(sum(p != t for t, p in zip(true, pred)))
    shown = ("all mistakes" if wrong == n else "no mistakes, the least confident right answers" if not wrong
             else f"{wrong} mistake{'s' if wrong > 1 else ''} among them (titles in red)")
    return _tiles(tiles, [f"{class_names[p]} / {class_names[t]}\nloss {loss:.2f}, p(true) {q:.2g}"
                          for t, p, q, loss in zip(true, pred, p_true, losses)],
                  f"Top {n} losses: {shown} (titles: predicted / true){explained}",
                  ncols=5, tile=1.6, title_size=8, colours=["black" if p == t else WRONG for t, p in zip(true, pred)])


def confused_pairs(images, rows: list[tuple[str, list[int]]], title: str = "Most confused pairs") -> Figure:
    """One strip of thumbnails per confusion direction: ``rows`` is (label, indices into ``images``).

    All the strips are one image on one Axes, each labelled on its left."""
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Rectangle

    images = _as_images(images)
    if not rows:
        fig = Figure(figsize=(6, 2), layout="constrained")
        _note(fig.subplots(), "No test image was misclassified")
        fig.suptitle(title)
        return fig
    width = max(max(len(idx) for _, idx in rows), 1)
    thumb, gap, row_gap = 0.9, 3, 6  # a thumbnail's width in inches; gaps in pixels
    per_pixel = thumb / IMAGE_SIDE
    canvas = np.zeros((len(rows) * (IMAGE_SIDE + row_gap) - row_gap, width * (IMAGE_SIDE + gap) - gap))  # 0: white
    frames = []
    for r, (_, idx) in enumerate(rows):
        for slot, i in enumerate(idx):
            x, y = slot * (IMAGE_SIDE + gap), r * (IMAGE_SIDE + row_gap)
            canvas[y:y + IMAGE_SIDE, x:x + IMAGE_SIDE] = images[i]
            frames.append(Rectangle((x - 0.5, y - 0.5), IMAGE_SIDE, IMAGE_SIDE))
    labels = [label for label, _ in rows]
    left, top = _text_inches(labels, 9) + 0.25, _lines_inches(12, title.count("\n") + 1) + 0.25
    shown_w, shown_h = canvas.shape[1] * per_pixel, canvas.shape[0] * per_pixel
    fig = Figure(figsize=(left + shown_w + 0.15, top + shown_h + 0.15))
    ax = _axes_at(fig, left, 0.15, shown_w, shown_h)
    ax.imshow(canvas, cmap=IMAGE_CMAP, vmin=0, interpolation="nearest", aspect="auto")
    ax.set_axis_off()
    ax.add_collection(PatchCollection(frames, facecolor="none", edgecolor="0.75", linewidth=0.6, clip_on=False))
    for r, label in enumerate(labels):
        ax.text(-4, r * (IMAGE_SIDE + row_gap) + (IMAGE_SIDE - 1) / 2, label, ha="right", va="center", fontsize=9)
    fig.suptitle(title, y=1 - 0.08 / fig.get_figheight(), va="top")
    return fig


def reliability_diagram(bins: dict, ece: float, brier: float, binning: str) -> Figure:
    """Accuracy of the top class against its probability, per bin (a calibrated model lies on the diagonal),
    over the number of test images in each bin."""
    edges = np.asarray(bins["edges"], dtype=float)
    count = np.asarray(bins["count"], dtype=float)
    accuracy = np.array([np.nan if a is None else a for a in bins["accuracy"]], dtype=float)
    confidence = np.array([np.nan if c is None else c for c in bins["confidence"]], dtype=float)
    centres, width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    fig = Figure(figsize=(6, 6.4))
    top, bottom = _grid(fig, 2, 1, left=0.85, right=0.25, top=0.6, bottom=0.6, hgap=0.2, sharex=True,
                        height_ratios=(3, 1)).ravel()
    filled = count > 0
    top.bar(centres[filled], accuracy[filled], width=width[filled], color=MUTED, edgecolor="white", label="accuracy")
    top.bar(centres[filled], (confidence - accuracy)[filled], bottom=accuracy[filled], width=width[filled],
            fill=False, edgecolor=WRONG, hatch="//", lw=0.8, label="gap to the bin's mean confidence")
    top.plot([0, 1], [0, 1], color="black", lw=1, ls="--", label="perfect calibration")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy of the predicted class")
    top.legend(loc="upper left", fontsize=8)
    top.set_title(f"Reliability diagram: ECE {ece:.3f}, Brier {brier:.3f}\n({binning})", fontsize=10)
    bottom.bar(centres, count, width=width, color=MUTED, edgecolor="white")
    bottom.set_ylabel("images")
    bottom.set_xlabel("probability of the predicted class (confidence)")
    for axis in (top.xaxis, top.yaxis, bottom.xaxis):
        axis.set_major_formatter(PercentFormatter(xmax=1))
    return fig


def robustness_curves(results: dict[str, dict], title: str = "Accuracy under shifted test images") -> Figure:
    """One panel per shift (translation, rotation, noise, contrast): accuracy against the shift's strength,
    strength 0 being the unshifted images; one line per entry of ``results`` (a run's ``robustness``)."""
    first = next(iter(results.values()))
    shifts = list(first["shifts"])
    fig = Figure(figsize=(2.5 * len(shifts) + 1.1, 3.6))
    axes = _grid(fig, 1, len(shifts), left=0.8, right=0.15, top=0.75, bottom=0.55, wgap=0.2, sharey=True).ravel()
    for ax, shift in zip(axes, shifts):
        for label, result in results.items():
            curve = result["shifts"][shift]
            ax.plot([curve["unshifted"], *curve["strengths"]], [result["clean"], *curve["accuracy"]], marker="o",
                    ms=4, label=label)
        strengths = first["shifts"][shift]["strengths"]
        if strengths and strengths[-1] < first["shifts"][shift]["unshifted"]:  # e.g. contrast kept: read leftwards
            ax.invert_xaxis()
        ax.set_title(shift)
        ax.set_xlabel(first["shifts"][shift]["unit"])
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy")
    axes[0].set_ylim(0, 1.02)
    axes[-1].legend(fontsize=8)
    fig.suptitle(f"{title} ({first['n_images']:,} images)")
    return fig


def embedding_map(xy, labels, class_names, images, of: str, thumbnails: int = 40) -> Figure:
    """A 2-D map of test images, one colour per class, with a sample of the images drawn at their place."""
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    xy, labels, images = np.asarray(xy, dtype=float), np.asarray(labels), _as_images(images)
    fig = Figure(figsize=(8.5, 7))
    ax = _grid(fig, 1, 1, left=0.15, right=_text_inches(class_names, 8) + 0.75, top=0.45, bottom=0.15)[0, 0]
    colours = [f"C{k % 10}" for k in labels]
    ax.scatter(xy[:, 0], xy[:, 1], c=colours, s=6, alpha=0.7, linewidths=0)
    chosen = np.random.default_rng(0).permutation(len(xy))[:thumbnails]
    for i in chosen:  # the images themselves, framed in their class's colour
        box = OffsetImage(images[i], cmap=IMAGE_CMAP, zoom=0.7)
        ax.add_artist(AnnotationBbox(box, xy[i], frameon=True, pad=0.1,
                                     bboxprops={"edgecolor": colours[i], "linewidth": 1.2}))
    for k, name in enumerate(class_names):
        ax.scatter([], [], color=f"C{k % 10}", label=str(name))
    ax.legend(loc="center left", bbox_to_anchor=(1, 0.5), fontsize=8, markerscale=2)
    _bare(ax)
    ax.set_title(f"Map of {len(xy):,} test images (t-SNE of the model's {of})")
    return fig


