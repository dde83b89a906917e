"""Where a model is wrong: calibration, top losses, confusions, robustness, occlusion maps, the new figures."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnistlab import plots
from mnistlab.experiments.figures import FIGURES, write_figures
from mnistlab.experiments.interpret import Interpretation, embed
from mnistlab.metrics import calibration, evaluate
from mnistlab.experiments.robustness import SHIFTS, robustness
from mnistlab.models.base import MnistlabModel
from mnistlab.models.occlusion import occlusion_sensitivity

NEW_FIGURES = ("confusion_matrix_percent", "top_losses", "most_confused", "reliability", "robustness", "embedding")


def rows_with_confidence(confidence: float, k: int, true: int, right: bool) -> tuple[np.ndarray, int]:
    """One probability row whose top class (0) has ``confidence``; its true class is 0 if ``right``."""
    row = np.full(k, (1 - confidence) / (k - 1))
    row[0] = confidence
    return row, 0 if right else true


def hand_built(groups: list[tuple[float, int, int]], k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Predictions from (confidence, images, how many right) groups; the wrong ones are truly class 1."""
    proba, y = [], []
    for confidence, n, n_right in groups:
        for i in range(n):
            row, label = rows_with_confidence(confidence, k, 1, i < n_right)
            proba.append(row)
            y.append(label)
    return np.array(proba), np.array(y)


def test_a_perfectly_calibrated_predictor_has_zero_ece():
    # 40% right where it says 40%, 70% where it says 70%, all where it is sure
    proba, y = hand_built([(0.4, 50, 20), (0.7, 100, 70), (1.0, 30, 30)])
    c = calibration(y, proba)
    assert c["ece"] == pytest.approx(0.0, abs=1e-12)
    assert "15 equal-width bins" in c["ece_binning"]
    assert sum(c["bins"]["count"]) == 180
    assert c["bins"]["count"][5] == 50 and c["bins"]["count"][10] == 100 and c["bins"]["count"][14] == 30
    assert c["bins"]["accuracy"][10] == pytest.approx(0.7) and c["bins"]["confidence"][10] == pytest.approx(0.7)
    assert c["bins"]["accuracy"][0] is None  # an empty bin has no accuracy


def test_an_over_confident_predictor_has_the_ece_of_its_gap():
    proba, y = hand_built([(0.99, 100, 60)])  # says 99%, right 60% of the time
    c = calibration(y, proba)
    assert c["ece"] == pytest.approx(0.39)
    # Brier by hand: right rows (0.01)² + 3·(0.01/3)²; wrong rows 0.99² + (1 − 0.01/3)² + 2·(0.01/3)²
    small = 0.01 / 3
    right, wrong = 0.01 ** 2 + 3 * small ** 2, 0.99 ** 2 + (1 - small) ** 2 + 2 * small ** 2
    assert c["brier"] == pytest.approx(0.6 * right + 0.4 * wrong)
    # and it is worse than the calibrated one
    calibrated = calibration(*reversed(hand_built([(0.6, 100, 60)])))
    assert calibrated["ece"] < 1e-12 < c["ece"]


def test_brier_score_bounds():
    certain = np.eye(3)[[0, 1, 2]]
    assert calibration([0, 1, 2], certain)["brier"] == 0
    assert calibration([1, 2, 0], certain)["brier"] == 2


class Fixed(MnistlabModel):
    """A model that gives every image the same probabilities: it has only ``predict_proba``."""

    family = "fixed"

    def __init__(self, proba=None):
        self.proba = proba
        self.classes_ = np.arange(len(proba))

    def predict_proba(self, X):
        return np.tile(np.asarray(self.proba, dtype=float), (len(X), 1))


def interpretation(proba, y, images=None, model=None) -> Interpretation:
    proba, y = np.asarray(proba, dtype=float), np.asarray(y)
    images = np.zeros((len(y), 28, 28), np.uint8) if images is None else images
    metrics = evaluate(y, proba, [f"c{k}" for k in range(proba.shape[1])])
    return Interpretation(lambda: model or Fixed(proba[0]), [f"c{k}" for k in range(proba.shape[1])], y, proba,
                          metrics, lambda: images)


def test_top_losses_are_in_the_order_of_a_hand_computation():
    proba = np.array([[0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8], [0.5, 0.3, 0.2], [0.3, 0.3, 0.4]])
    y = np.array([0, 0, 1, 1, 2])
    hand = [-math.log(p[t]) for p, t in zip(proba, y)]  # 0.105, 1.609, 2.303, 1.204, 0.916
    expected = sorted(range(5), key=lambda i: -hand[i])
    r = interpretation(proba, y)
    assert list(r.top_losses(5)) == expected == [2, 1, 3, 4, 0]
    assert r.losses == pytest.approx(hand)
    rows = r.summary(k=3)["top_losses"]
    assert [(row["index"], row["true"], row["predicted"]) for row in rows] == [(2, 1, 2), (1, 0, 1), (3, 1, 0)]
    assert rows[0]["p_true"] == pytest.approx(0.1) and rows[0]["loss"] == pytest.approx(math.log(10))


def test_certain_mistakes_clipped_alike_rank_by_their_own_probability():
    """Below float32's epsilon every loss is the same clipped one: the surer mistake still comes first."""
    proba = np.array([[1e-8, 1 - 1e-8], [1e-9, 1 - 1e-9], [0.5, 0.5], [0.0, 1.0]], np.float32)  # as runs keep them
    y = np.zeros(4, int)
    r = Interpretation(lambda: Fixed(proba[0]), ["a", "b"], y, proba, evaluate(y, proba, ["a", "b"]),
                       lambda: np.zeros((4, 28, 28), np.uint8))
    assert r.losses[0] == r.losses[1] == r.losses[3]
    assert list(r.top_losses(4)) == [3, 1, 0, 2] and list(r.confused_examples(0, 1)) == [3, 1, 0]


def test_most_confused_counts_both_ways_and_examples_are_the_most_confident():
    # class 0 is taken for 1 three times (with falling confidence), 1 for 0 once, 2 for 1 once
    proba = np.array([[0.4, 0.6, 0], [0.1, 0.9, 0], [0.3, 0.7, 0], [0.8, 0.2, 0], [0, 0.6, 0.4],
                      [1.0, 0, 0], [0, 1.0, 0]])
    y = np.array([0, 0, 0, 1, 2, 0, 1])
    r = interpretation(proba, y)
    assert r.summary()["most_confused"][0] == {"a": 0, "b": 1, "a_to_b": 3, "b_to_a": 1}
    assert list(r.confused_examples(0, 1)) == [1, 2, 0]  # p(true) 0.1, 0.3, 0.4


def bars(vertical: bool, column: int = 13, n: int = 1) -> np.ndarray:
    """``n`` images of one 3-pixel-wide bar, vertical or horizontal, through the middle."""
    image = np.zeros((28, 28), np.uint8)
    if vertical:
        image[6:22, column:column + 3] = 255
    else:
        image[column:column + 3, 6:22] = 255
    return np.repeat(image[None], n, axis=0)


class ProfileModel(MnistlabModel):
    """Vertical vs horizontal bar, from how spread out the ink is along each axis: shift-invariant."""

    family = "profile"

    def predict_proba(self, X):
        images = np.asarray(X).reshape(-1, 28, 28)
        rows, columns = images.sum(axis=2), images.sum(axis=1)
        spread = (rows > 0).sum(axis=1) - (columns > 0).sum(axis=1)  # tall minus wide
        vertical = 1 / (1 + np.exp(-spread))
        return np.stack([1 - vertical, vertical], axis=1)


class TemplateModel(MnistlabModel):
    """The same question answered by overlap with each class's centred template: a pixel model."""

    family = "template"

    def predict_proba(self, X):
        templates = np.stack([bars(False)[0], bars(True)[0]]).reshape(2, -1) / 255.0
        scores = np.asarray(X).reshape(len(X), -1) @ templates.T
        e = np.exp(scores - scores.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


def test_a_shift_invariant_model_keeps_its_accuracy_under_translation_a_pixel_model_loses_it():
    images = np.concatenate([bars(False, n=20), bars(True, n=20)])
    y = np.repeat([0, 1], 20)
    invariant = robustness(ProfileModel().predict_proba, images, y)
    pixel = robustness(TemplateModel().predict_proba, images, y)
    assert invariant["clean"] == pixel["clean"] == 1.0
    assert invariant["shifts"]["translation"]["accuracy"] == [1.0, 1.0, 1.0, 1.0]
    translated = pixel["shifts"]["translation"]["accuracy"]
    # moved 3 px or more across its bar, an image no longer overlaps its template (along it, it still does)
    assert translated[0] == 1.0 and translated[2] < 0.7 and translated[3] < 0.7
    assert invariant["shifts"]["translation"]["strengths"] == [1, 2, 3, 4]
    assert set(invariant["shifts"]) == set(SHIFTS) and invariant["n_images"] == 40


def test_shifts_do_what_they_say():
    image = bars(True, n=1).astype(np.float32) / 255
    rng = lambda: np.random.default_rng(0)  # noqa: E731
    moved = SHIFTS["translation"].apply(image, 2, rng())[0]
    assert moved.sum() == image.sum() and not np.array_equal(moved, image[0])  # the bar moved, whole
    assert np.array_equal(SHIFTS["contrast"].apply(image, 1, rng()), image)
    assert SHIFTS["contrast"].apply(image, 0, rng()).std() == pytest.approx(0, abs=1e-6)
    noisy = SHIFTS["noise"].apply(np.full((1, 28, 28), 0.5, np.float32), 0.1, rng())
    assert noisy.std() == pytest.approx(0.1, rel=0.1) and noisy.min() >= 0 and noisy.max() <= 1
    turned = SHIFTS["rotation"].apply(image, 20, rng())[0]
    assert not np.allclose(turned, image[0]) and turned.min() >= 0 and turned.max() <= 1


class CornerModel(MnistlabModel):
    """Says class 1 the more ink there is in the top-left 6×6 corner; nothing else matters to it."""

    family = "corner"
    classes_ = np.array([0, 1])

    def predict_proba(self, X):
        ink = np.asarray(X).reshape(-1, 28, 28)[:, :6, :6].mean(axis=(1, 2))
        return np.stack([1 - ink, ink], axis=1)


def test_occlusion_finds_the_pixels_a_model_without_gradients_uses():
    x = np.ones((2, 784), np.float32) * 0.5
    maps = occlusion_sensitivity(CornerModel().predict_proba, x)
    assert maps.shape == (2, 2, 784)
    corner = np.zeros((28, 28), bool)
    corner[:6, :6] = True
    for_one = maps[0, 1].reshape(28, 28)
    assert (for_one[corner] > 0).all()  # hiding the corner lowers class 1's probability
    assert np.allclose(for_one[8:, 8:], 0)  # far from it, hiding changes nothing
    assert np.allclose(maps[0, 0], -maps[0, 1])  # what speaks for 1 speaks against 0
    model = CornerModel()
    assert not model.can_explain and model.explanation_method == "occlusion sensitivity"
    assert np.allclose(model.explain(x), maps)  # the contract's default explanation
    assert np.allclose(model.explain(x, classes=[1]), maps[:, [1]])


def png_size(path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


def test_every_figure_is_drawn_for_a_family_with_only_predict_proba(fashion, tmp_path):
    rng = np.random.default_rng(0)
    n = 300
    images, y = fashion.x_test[:n], fashion.y_test[:n]
    proba = rng.dirichlet(np.ones(10) * 0.3, size=n)
    proba[np.arange(n) % 2 == 0] = np.eye(10)[y[np.arange(n) % 2 == 0]] * 0.9 + 0.01  # half of them right
    r = Interpretation(lambda: Fixed(proba[0]), list(fashion.classes), y, proba,
                       evaluate(y, proba, fashion.classes), lambda: images)
    mapped = embed(r.model, r.x, proba)
    r.load_embedding = lambda: mapped  # as a run caches it: drawn twice below, computed once
    written = {p.stem: p for p in write_figures(r, tmp_path)}
    assert set(NEW_FIGURES) <= set(written)
    assert {"sample_contributions", "class_saliency"} <= set(written)  # occlusion stands in for gradients
    assert not {"coefficients", "sparsity", "learning_curves"} & set(written)
    for name in NEW_FIGURES:  # each as big as the figure it was drawn from, never wider than the report's column
        fig = FIGURES[name].draw(r)
        width, height = fig.get_size_inches() * plots.png_dpi(fig)
        assert np.allclose(png_size(written[name]), (width, height), atol=1), name
        assert png_size(written[name])[0] <= plots.REPORT_WIDTH_PX
    # ten top losses, each image over its map (28 + 3 + 28 rows of pixels) in one framed tile, two rows of five
    losses = FIGURES["top_losses"].draw(r)
    frames = [path.get_extents() for path in losses.axes[0].collections[0].get_paths()]
    assert [(f.width, f.height) for f in frames] == [(28, 59)] * 10
    assert len({f.x0 for f in frames}) == 5 and len({f.y0 for f in frames}) == 2
    titles = [t.get_text() for t in losses.axes[0].texts]
    assert len(titles) == 10 and all("p(true)" in t and " / " in t for t in titles)
    # five confused pairs, each both ways: ten labelled strips of thumbnails
    confused = FIGURES["most_confused"].draw(r)
    labels = [t.get_text() for t in confused.axes[0].texts]
    assert len(labels) == 10 and all(" → " in label and "images)" in label for label in labels)
    # counts and row percentages in every cell of the matrix
    cells = [t.get_text() for t in FIGURES["confusion_matrix_percent"].draw(r).axes[0].texts]
    assert len(cells) == 100 and any("%" in c for c in cells) and all(c.split("\n")[0].isdigit() for c in cells)


def test_a_run_carries_its_interpretation_everywhere(tmp_path):
    import mnistlab as ml

    a = ml.train("logreg", train_size=500, test_size=200, name="a", out=tmp_path, progress=False)
    b = ml.train("logreg", C=0.01, train_size=500, test_size=200, name="b", out=tmp_path, progress=False,
                 embedding=False)
    m = a.metrics
    assert 0 <= m["calibration"]["ece"] <= 1 and 0 <= m["calibration"]["brier"] <= 2
    assert sum(m["calibration"]["bins"]["count"]) == 200
    assert m["robustness"]["n_images"] == 200 and set(m["robustness"]["shifts"]) == set(SHIFTS)
    losses = [row["loss"] for row in m["top_losses"]]
    assert len(losses) == 10 and losses == sorted(losses, reverse=True)
    assert list(a.interpretation.top_losses()) == [row["index"] for row in m["top_losses"]]
    assert m["most_confused"][0]["a_to_b"] >= m["most_confused"][0]["b_to_a"] > 0
    assert (a.path / "embedding.npz").is_file() and not (b.path / "embedding.npz").exists()
    assert set(NEW_FIGURES) <= set(a.figure_names())
    assert not (b.path / "plots" / "embedding.png").exists()  # its map is not drawn by training, but on demand:
    assert set(NEW_FIGURES) <= set(b.figure_names()) and b.figure("embedding")  # listed as figure() draws it
    cached = a.interpretation.embedding()
    assert cached["xy"].shape == (200, 2) and cached["of"] == "log-probabilities"
    assert a.figure("reliability").get_size_inches().tolist() == [6, 6.4]
    assert "ECE" in a._repr_html_()
    report = a.report_path.read_text()
    for heading in ("Top losses", "Most confused pairs", "Robustness", "Expected calibration error"):
        assert heading in report
    comparison = ml.compare(a, b, out=tmp_path)
    deltas = comparison.pairs[0]["class_accuracy_delta"]
    assert len(deltas) == 10 and all(d["low"] <= d["delta"] <= d["high"] for d in deltas.values())
    assert (comparison.path / "robustness.png").is_file() and (comparison.path / "class_accuracy_delta_1.png").is_file()
    assert "Per-class accuracy differences" in comparison.report_path.read_text()


def test_a_temperature_is_recovered_and_undoes_over_confidence():
    from mnistlab.models.temperature import fit_temperature, scale

    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (5000, 5))
    truth = scale(np.exp(logits), 1.0)  # the probabilities labels are drawn from: calibrated by construction
    y = np.array([rng.choice(5, p=p) for p in truth])
    over_confident = scale(truth, 1 / 3)  # logits three times too large
    t, unfitted = fit_temperature(over_confident, y)
    assert t == pytest.approx(3.0, rel=0.1) and unfitted is None
    before, after = calibration(y, over_confident)["ece"], calibration(y, scale(over_confident, t))["ece"]
    assert after < 0.03 < 0.1 < before
    assert np.array_equal(scale(over_confident, t).argmax(1), over_confident.argmax(1))  # same predictions


def test_no_temperature_is_fitted_where_the_held_out_images_cannot_set_one(tmp_path):
    """A model right on every held-out image was given the bound, 0.05: its binary test mistakes made certain
    (T-shirt/top vs Trouser, 2,000 images: test log-loss 0.047 → 0.194). A bound reached with mistakes is kept."""
    from mnistlab.models.temperature import BOUNDS, fit_temperature

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    proba = np.where(np.eye(2, dtype=bool)[y], rng.uniform(0.6, 0.99, (200, 1)), 0)
    proba = proba + (1 - proba.sum(1, keepdims=True)) * (proba == 0)  # each right, at 0.6 to 0.99
    assert fit_temperature(proba, y) == (1.0, "not fitted: the model is right on all 200 held-out images, which "
                                              "set no temperature")
    y[:20] = 1 - y[:20]  # 20 mistakes: a temperature fits again
    t, unfitted = fit_temperature(proba, y)
    assert BOUNDS[0] < t < BOUNDS[1] and t != 1.0 and unfitted is None
    # sure of class 0 where the labels are a coin's toss: the softest temperature allowed is the best
    coin = rng.integers(0, 2, 200)
    assert fit_temperature(np.tile([0.99, 0.01], (200, 1)), coin) == (pytest.approx(BOUNDS[1], rel=1e-3), None)
    # a run: its metrics and report say so
    import mnistlab as ml

    run = ml.train("logreg", classes=[0, 1], calibrate=True, train_size=600, test_size=200, embedding=False,
                   progress=False, out=tmp_path)
    assert run.metrics["temperature"]["value"] == 1.0
    assert run.metrics["temperature"]["not_fitted"].startswith("not fitted: the model is right on all 60 held-out")
    assert "not fitted" not in run.metrics["fit_message"]  # the temperature's row says it, not a "solver message"
    assert "not fitted: the model is right on all 60" in (run.path / "report.html").read_text()


def test_the_model_file_records_the_temperature_and_predictions_use_it(tmp_path):
    import json

    from mnistlab.errors import ModelFileError
    from mnistlab.models import get_family
    from mnistlab.models.serialization import load_model, save_model
    from mnistlab.models.temperature import TemperatureScaled, scale

    rng = np.random.default_rng(0)
    X, y = rng.random((60, 784), dtype=np.float32), np.arange(60) % 3
    inner = get_family("logreg")(max_iter=5).fit(X, y)
    save_model(TemperatureScaled(inner, 2.5), tmp_path)
    assert json.loads((tmp_path / "model.json").read_text())["temperature"] == 2.5
    loaded = load_model(tmp_path, n_classes=3)
    assert loaded.temperature == 2.5 and loaded.coef_.shape == (3, 784)  # the family's own attributes
    assert np.allclose(loaded.predict_proba(X), scale(inner.predict_proba(X), 2.5))
    meta = json.loads((tmp_path / "model.json").read_text())
    for bad in (-1, 0, "hot", float("nan")):
        (tmp_path / "model.json").write_text(json.dumps({**meta, "temperature": bad}))
        with pytest.raises(ModelFileError, match="temperature"):
            load_model(tmp_path)


def test_a_calibrated_model_is_cloned_as_scikit_learn_clones_a_wrapper_and_refuses_a_fit(tmp_path):
    from sklearn.base import clone

    from mnistlab.errors import MnistlabError, ParameterError
    from mnistlab.models import get_family
    from mnistlab.models.serialization import load_model, save_model
    from mnistlab.models.temperature import TemperatureScaled

    rng = np.random.default_rng(0)
    X, y = rng.random((60, 784), dtype=np.float32), np.arange(60) % 3
    scaled = TemperatureScaled(get_family("logreg")(C=0.5, max_iter=5).fit(X, y), 2.5)
    copy = clone(scaled)  # was a TypeError: the model's own parameters were passed to the wrapper
    assert isinstance(copy, TemperatureScaled) and copy.temperature == 2.5 and copy.model is not scaled.model
    assert copy.get_params()["model__C"] == 0.5 and not hasattr(copy.model, "coef_")
    assert copy.set_params(model__C=2.0, temperature=1.5).model.C == 2.0 and copy.temperature == 1.5
    for bad in ({"temperature": -1.0}, {"temperature": 0}, {"temperature": "2"}, {"temperature": 3.0, "C": 2.0}):
        with pytest.raises(ParameterError):  # were set: inverted or NaN probabilities, a file load refused
            copy.set_params(**bad)
        assert copy.temperature == 1.5 and copy.model.C == 2.0  # nothing changed
    with pytest.raises(ParameterError, match="temperature"):
        TemperatureScaled(scaled.model, float("nan"))
    with pytest.raises(MnistlabError, match="calibrate=True"):  # refitted alone, the old temperature stayed
        scaled.fit(X, y)
    save_model(scaled, tmp_path)  # the family's parameters, not the wrapper's
    assert load_model(tmp_path).model.get_params() == scaled.model.get_params()


def test_a_calibrated_model_is_fitted_to_scikit_learn_as_its_model_is():
    """check_is_fitted found no attribute ending in "_" on the wrapper: a calibrated run's model counted as
    unfitted, and FrozenEstimator (CalibratedClassifierCV, VotingClassifier of fitted models) refused it."""
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError
    from sklearn.frozen import FrozenEstimator
    from sklearn.utils.validation import check_is_fitted

    from mnistlab.models import get_family
    from mnistlab.models.temperature import TemperatureScaled

    rng = np.random.default_rng(0)
    X, y = rng.random((60, 784), dtype=np.float32), np.arange(60) % 3
    scaled = TemperatureScaled(get_family("logreg")(max_iter=5).fit(X, y), 2.5)
    check_is_fitted(scaled)
    np.testing.assert_array_equal(FrozenEstimator(scaled).predict_proba(X), scaled.predict_proba(X))
    with pytest.raises(NotFittedError):
        check_is_fitted(clone(scaled))  # its model unfitted


def test_a_calibrated_models_occlusion_maps_are_of_the_probabilities_it_gives():
    from mnistlab.models import get_family
    from mnistlab.models.occlusion import occlusion_sensitivity
    from mnistlab.models.temperature import TemperatureScaled

    rng = np.random.default_rng(0)
    X, y = rng.random((60, 784), dtype=np.float32), np.arange(60) % 3
    scaled = TemperatureScaled(get_family("sklearn:GaussianNB")().fit(X, y), 5.0)
    # were the unscaled probabilities' (the model's own explain, reached through the wrapper)
    np.testing.assert_allclose(scaled.explain(X[:2]), occlusion_sensitivity(scaled.predict_proba, X[:2]))
    logreg = TemperatureScaled(get_family("logreg")(max_iter=5).fit(X, y), 5.0)
    np.testing.assert_array_equal(logreg.explain(X[:2], classes=[1]), logreg.model.explain(X[:2], classes=[1]))


def test_train_with_calibrate_fits_a_temperature_on_held_out_images(tmp_path):
    import mnistlab as ml
    from mnistlab.models.temperature import scale

    run = ml.train("logreg", train_size=600, test_size=200, name="t", out=tmp_path, progress=False,
                   calibrate=True, embedding=False)
    t = run.metrics["temperature"]
    assert t["n_validation"] == 60 and run.config["dataset"]["n_train"] == 540 and t["value"] > 0
    assert t["ece_after"] == run.metrics["calibration"]["ece"]
    assert run.model.temperature == t["value"]
    x = run.dataset.x_test[:3]
    raw = run.model.model.predict_proba(x.reshape(3, -1) / 255.0)
    assert np.allclose([p.probabilities for p in run.predict(x)], scale(raw, t["value"]), atol=1e-6)
    assert "ECE before → after temperature scaling" in run.report_path.read_text()


def test_calibrate_on_too_few_images_is_refused_before_the_fit_and_leaves_no_run(tmp_path):
    import mnistlab as ml

    with pytest.raises(ml.ParameterError, match="0.1 of 20 examples cannot be held out stratified") as error:
        ml.train("logreg", train_size=20, test_size=10, name="t", out=tmp_path, progress=False, calibrate=True)
    assert error.value.parameter == "calibrate" and not any((tmp_path / "runs").iterdir())


def _small_interpretation(fashion, n: int = 200) -> Interpretation:
    images, y = fashion.x_test[:n], fashion.y_test[:n]
    proba = np.random.default_rng(1).dirichlet(np.ones(10) * 0.3, size=n)
    return Interpretation(lambda: Fixed(proba[0]), list(fashion.classes), y, proba,
                          evaluate(y, proba, fashion.classes), lambda: images)


class Weighted(Fixed):
    """A fixed model with weight images, half of them zero (a sparse one), and a recorded history."""

    def weight_images(self):
        return np.repeat([[0.0, 1.0]], 392, axis=0).reshape(1, 784).repeat(len(self.proba), axis=0)


@pytest.mark.parametrize("case", ["plain", "weighted", "tiny and all right"])
def test_the_figures_a_run_lists_are_those_it_draws(case):
    """A run's list of figures asked each figure's own test, beside its drawing's (the coefficients' and the learning
    curves' asked the model, as the drawing did): now both ask what the figure needs, so they cannot differ."""
    from mnistlab.experiments.figures import draw, drawable

    rng = np.random.default_rng(0)
    n = 4 if case == "tiny and all right" else 40
    y = np.arange(n) % 3
    proba = np.eye(3)[y] * 0.9 + 0.1 / 3 if case == "tiny and all right" else rng.dirichlet(np.ones(3), size=n)
    r = interpretation(proba, y, images=rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
                       model=Weighted(proba[0]) if case == "weighted" else None)
    if case == "weighted":
        r.metrics.update(history={"loss": [1.0, 0.5]}, zero_weight_fraction=0.5)
    drawn = [name for name in FIGURES if draw(name, r) is not None]
    assert drawable(r) == drawn
    expected = {"plain": {"coefficients", "sparsity", "learning_curves"},
                "weighted": set(), "tiny and all right": {"coefficients", "sparsity", "learning_curves", "wrong",
                                                          "embedding"}}[case]
    assert set(FIGURES) - set(drawn) == expected


def test_figures_drawn_in_two_processes_are_the_very_same_files(fashion, tmp_path, monkeypatch):
    import os

    from mnistlab.experiments import figures

    if not figures._can_fork():
        pytest.skip("drawing in two processes needs Linux and two cores")
    save, drawn_by = plots.save_png, tmp_path / "pids"
    drawn_by.mkdir()

    def save_and_sign(fig, path):
        (drawn_by / f"{os.getpid()}-{Path(path).stem}").touch()
        return save(fig, path)

    def predict_and_sign(self, x):  # what occlusion explains with
        (drawn_by / f"{os.getpid()}-model").touch()
        return np.tile(np.asarray(self.proba, dtype=float), (len(x), 1))

    alone = {p.name: p.read_bytes() for p in write_figures(_small_interpretation(fashion), tmp_path / "one",
                                                            skip=("embedding",))}
    monkeypatch.setattr(plots, "save_png", save_and_sign)
    monkeypatch.setattr(Fixed, "predict_proba", predict_and_sign)
    shared = {p.name: p.read_bytes() for p in write_figures(_small_interpretation(fashion), tmp_path / "two",
                                                             skip=("embedding",), processes=2)}
    assert len(alone) >= 10 and shared == alone
    by_child = {p.name.split("-", 1)[1] for p in drawn_by.iterdir() if not p.name.startswith(f"{os.getpid()}-")}
    assert by_child and "model" not in by_child  # the child drew, and never ran the model
    assert (drawn_by / f"{os.getpid()}-model").is_file()  # the explanations were computed here


def test_what_a_failing_child_did_not_draw_is_drawn_here(fashion, tmp_path, monkeypatch):
    import os

    from mnistlab.experiments import figures

    if not figures._can_fork():
        pytest.skip("drawing in two processes needs Linux and two cores")
    parent, save = os.getpid(), plots.save_png

    def save_here_only(fig, path):
        if os.getpid() != parent:
            raise RuntimeError("the child breaks")
        return save(fig, path)

    r = _small_interpretation(fashion)
    alone = {p.name: p.read_bytes() for p in write_figures(r, tmp_path / "one", skip=("embedding",))}
    monkeypatch.setattr(plots, "save_png", save_here_only)
    shared = {p.name: p.read_bytes() for p in write_figures(r, tmp_path / "two", skip=("embedding",), processes=2)}
    assert shared == alone


def _figures_in_a_pool_worker(folder: str) -> list[str]:
    import mnistlab as ml

    run = ml.train("logreg", train_size=300, test_size=100, name="p", out=folder, progress=False, embedding=False)
    return sorted(p.name for p in (run.path / "plots").iterdir())


def test_a_run_trains_in_a_daemonic_pool_worker(tmp_path):
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(1) as pool:  # its workers may have no children of their own
        names = pool.apply(_figures_in_a_pool_worker, (str(tmp_path),))
    assert {"top_losses.png", "confusion_matrix_percent.png", "reliability.png"} <= set(names)


def test_beside_another_thread_the_figures_are_drawn_here_alone(fashion, tmp_path, monkeypatch):
    import os
    import threading

    save, drawn_by = plots.save_png, tmp_path / "pids"
    drawn_by.mkdir()

    def save_and_note(fig, path):
        (drawn_by / f"{os.getpid()}-{Path(path).stem}").touch()  # a file: a forked child's would be seen too
        return save(fig, path)

    monkeypatch.setattr(plots, "save_png", save_and_note)
    other = threading.Event()  # as a notebook's kernel or a server has threads of its own
    waiting = threading.Thread(target=other.wait)
    waiting.start()
    try:
        written = write_figures(_small_interpretation(fashion), tmp_path, skip=("embedding",), processes=2)
    finally:
        other.set()
        waiting.join()
    assert {p.name.split("-")[0] for p in drawn_by.iterdir()} == {str(os.getpid())} and len(written) >= 10
