"""`mnistlab predict RUN photos…`: a folder of the user's photos, labels, bad files, --explain."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import heavy_libraries_imported, run_cli
from fixtures.photos import make_photo
from mnistlab.experiments.pipeline import DataChoice, train


@pytest.fixture(scope="module")
def run_and_photos(fashion, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    train("logreg", {"C": 0.1}, DataChoice(train_size=3000, test_size=300), out, name="photos")
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    rows = ["file,label"]
    for i, fmt in enumerate(["jpeg", "png", "rgba", "exif"] * 3):
        name = f"photo{i}.{'jpg' if fmt in ('jpeg', 'exif') else 'png'}"
        (folder / name).write_bytes(make_photo(fashion.x_test[i], rng, fmt))
        label = int(fashion.y_test[i])
        rows.append(f"{name},{label if i % 2 else fashion.classes[label]}")  # index or class name
    (folder / "notes.txt").write_text("not an image")
    (folder / "empty.png").write_bytes(b"")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    return out, folder


def test_folder_with_labels_json(run_and_photos):
    out, folder = run_and_photos
    result = run_cli("predict", "photos", str(folder), "--labels", str(folder / "labels.csv"),
                     "--out", str(out), "--json")
    assert result.returncode == 2  # two files failed (bad input), the others were predicted
    answer = json.loads(result.stdout)
    errors = {r["file"].rsplit("/", 1)[-1]: r["error"] for r in answer["results"] if "error" in r}
    assert set(errors) == {"notes.txt", "empty.png"} and answer["n_failed"] == 2
    assert all("\n" not in e for e in errors.values())
    assert sorted(result.stderr.splitlines()) == sorted(errors.values())  # said on stderr, as every command's
    predicted = [r for r in answer["results"] if "error" not in r]
    assert len(predicted) == 12 and answer["n_labelled"] == 12
    correct = sum(r["class"] == r["true_class"] for r in predicted)
    assert answer["accuracy"] == pytest.approx(correct / 12)
    assert answer["accuracy"] >= 0.5
    assert np.array(answer["confusion_matrix"]).sum() == 12
    assert len(predicted[0]["top"]) == 3


def test_single_photo_table_and_explain(run_and_photos):
    out, folder = run_and_photos
    result = run_cli("predict", "photos", str(folder / "photo0.jpg"), "--explain", "--top", "2", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "photo0.jpg" in result.stdout and "explanation:" in result.stdout
    png = out / "predict" / "photos" / "photo0.png"
    with Image.open(png) as image:
        assert image.format == "PNG" and image.width > 800


def test_an_explanation_that_cannot_be_written_leaves_the_predictions_printed(run_and_photos, tmp_path):
    """A full disk (here: a file where the explanations' folder goes) ended the command in one error line,
    and none of the predictions, all computed, was printed."""
    out, folder = run_and_photos
    (tmp_path / "predict").write_text("not a folder")
    photos = [str(folder / "photo0.jpg"), str(folder / "photo1.png")]
    result = run_cli("predict", str(out / "runs" / "photos"), *photos, "--explain", "--out", str(tmp_path))
    assert result.returncode == 2 and result.stdout.count("explanation:") == 0
    assert "photo0.jpg: " in result.stdout and "photo1.png: " in result.stdout
    assert result.stderr.count("its explanation could not be written") == 2 and "Traceback" not in result.stderr


def test_predicting_without_explain_loads_no_matplotlib(run_and_photos):
    """Nothing is drawn without --explain, so matplotlib (~0.25 s to import) stays out of the command."""
    out, folder = run_and_photos
    result, heavy = heavy_libraries_imported("predict", "photos", str(folder / "photo0.jpg"), "--out", str(out))
    assert "photo0.jpg" in result.stdout and "matplotlib" not in heavy, result.stderr


def test_bad_labels_file_is_one_line(run_and_photos, tmp_path):
    out, folder = run_and_photos
    labels = tmp_path / "labels.csv"
    labels.write_text("file,label\nphoto0.jpg,Spaceship\n")
    result = run_cli("predict", "photos", str(folder / "photo0.jpg"), "--labels", str(labels), "--out", str(out))
    assert result.returncode == 2 and "Spaceship" in result.stderr and "Traceback" not in result.stderr
    for text, problem in [("file,label\nphoto0.jpg,²\n", "label '²' is neither"),  # isdigit, yet int() refuses it
                          ("label,file\n3\n", "labels.csv:2: no file name")]:  # a short row: Path(None)
        labels.write_text(text)
        result = run_cli("predict", "photos", str(folder / "photo0.jpg"), "--labels", str(labels), "--out", str(out))
        assert result.returncode == 2 and problem in result.stderr and "internal error" not in result.stderr


def test_explanations_of_photos_with_one_stem_or_a_long_name_are_each_kept(run_and_photos, tmp_path):
    from mnistlab.inference.batch import predict_files

    out, folder = run_and_photos
    for name in ("a/photo.jpg", "b/photo.jpg", "a/photo.png", "a/" + "x" * 255, "b/bad\udcffname.png", "b/PHOTO.JPG"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes((folder / ("photo1.png" if name.endswith("png") else "photo0.jpg")).read_bytes())
    answer = predict_files(out / "runs" / "photos", [tmp_path / "a", tmp_path / "b"], explain_dir=tmp_path / "why")
    pictures = [Path(r["explanation"]) for r in answer["results"]]
    assert answer["n_failed"] == 0 and len(set(pictures)) == 6 and all(p.is_file() for p in pictures)
    # a name that is no UTF-8 (the byte FF) stopped the batch; PHOTO.JPG is photo.jpg where case is ignored
    assert [p.name for p in pictures] == ["photo.png", "photo-2.png", "x" * 200 + ".png", "PHOTO-3.png",
                                          "bad\ufffdname.png", "photo-4.png"]


def test_one_bad_photo_of_any_kind_does_not_stop_the_batch(run_and_photos, tmp_path, monkeypatch):
    from mnistlab.errors import ParameterError
    from mnistlab.inference import predictor
    from mnistlab.inference.batch import predict_files

    out, folder = run_and_photos
    banner = np.full((100, 3000), 220, np.uint8)  # 30:1
    banner[30:70, 1000:1100] = 30
    Image.fromarray(banner).save(tmp_path / "banner.png")
    values = np.random.default_rng(0).random((200, 200)).astype(np.float32)
    values[50, 50] = np.nan
    Image.fromarray(values).save(tmp_path / "nan.tiff")
    (tmp_path / "odd.png").write_bytes((folder / "photo1.png").read_bytes())
    real = predictor.prepare_photo

    def prepare_photo(source, *args, **kwargs):  # a mnistlab error other than a PhotoError, from one photo
        if str(source).endswith("odd.png"):
            raise ParameterError("style", "not for this one")
        return real(source, *args, **kwargs)

    monkeypatch.setattr(predictor, "prepare_photo", prepare_photo)
    files = [folder / "photo0.jpg", tmp_path / "banner.png", tmp_path / "nan.tiff", tmp_path / "odd.png",
             folder / "photo1.png"]
    answer = predict_files(out / "runs" / "photos", files)
    errors = {Path(r["file"]).name: r["error"] for r in answer["results"] if "error" in r}
    assert set(errors) == {"banner.png", "nan.tiff", "odd.png"}
    assert "more elongated than 10:1" in errors["banner.png"] and "not finite" in errors["nan.tiff"]
    assert [Path(r["file"]).name for r in answer["results"] if "error" not in r] == ["photo0.jpg", "photo1.png"]


def test_folders_without_photos_are_reported(run_and_photos, tmp_path):
    out, folder = run_and_photos
    (tmp_path / "emptydir").mkdir()
    (tmp_path / "emptydir.jpg").mkdir()
    album = tmp_path / "album"
    (album / "inner.jpg").mkdir(parents=True)
    (album / "shirt.jpg").write_bytes((folder / "photo0.jpg").read_bytes())
    result = run_cli("predict", "photos", str(tmp_path / "emptydir"), str(tmp_path / "emptydir.jpg"), str(album),
                     "--out", str(out))
    assert result.returncode == 2
    assert "emptydir: no photos in this folder" in result.stderr
    assert "emptydir.jpg: no photos in this folder" in result.stderr
    assert "inner.jpg: a folder, not a photo" in result.stderr
    assert "shirt.jpg:" in result.stdout


def test_what_the_conversion_dropped_is_printed_and_drawn(run_and_photos, fashion, tmp_path):
    from PIL import ImageDraw

    out, _ = run_and_photos
    image = Image.open(io.BytesIO(make_photo(fashion.x_test[0], np.random.default_rng(5), "png"))).convert("RGB")
    ImageDraw.Draw(image).line([(0.1 * image.width, 0.96 * image.height), (0.5 * image.width, 0.95 * image.height)],
                               fill=(30, 30, 50), width=3)  # a stray pen stroke along the bottom
    photo = tmp_path / "marked.png"
    image.save(photo)
    result = run_cli("predict", "photos", str(photo), "--explain", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "  dropped a line near the border (bottom" in result.stdout
    with Image.open(out / "predict" / "photos" / "marked.png") as figure:
        assert figure.width > 800
    answer = json.loads(run_cli("predict", "photos", str(photo), "--json", "--out", str(out)).stdout)
    assert answer["results"][0]["notes"][0].startswith("dropped a line near the border")


def test_labels_name_files_by_their_path_and_digits_by_their_class_names(run_and_photos, tmp_path):
    import os

    from mnistlab.errors import ParameterError
    from mnistlab.inference.batch import predict_files, read_labels

    out, folder = run_and_photos
    for sub in ("a", "b"):  # one name in two folders: each its own label
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "x.png").write_bytes((folder / "photo1.png").read_bytes())
    (tmp_path / "labels.csv").write_text("file,label\na/x.png,Trouser\nb/x.png,Bag\nnot-here.png,Bag\n")
    answer = predict_files(out / "runs" / "photos", [tmp_path / "a", tmp_path / "b", tmp_path / "a" / "x.png"],
                           labels=tmp_path / "labels.csv")
    truth = {Path(r["file"]).parent.name: r["true_class"] for r in answer["results"]}
    assert truth == {"a": "Trouser", "b": "Bag"} and answer["n_labelled"] == 2  # a/x.png given twice: once
    assert answer["n_labels_unmatched"] == 1 and answer["n_labelled_failed"] == 0
    # a row with a folder labels that file alone; one without labels a photo of its name elsewhere, but never two
    (tmp_path / "labels.csv").write_text("file,label\na/x.png,Trouser\nb/y.png,Bag\ny.png,Bag\nz.png,Bag\n")
    for sub in ("c", "d"):
        (tmp_path / sub).mkdir()
        for name in ("x.png", "z.png"):
            (tmp_path / sub / name).write_bytes((folder / "photo1.png").read_bytes())
    answer = predict_files(out / "runs" / "photos", [tmp_path / "c", tmp_path / "d", tmp_path / "b" / "x.png"],
                           labels=tmp_path / "labels.csv")
    assert [r.get("true_class") for r in answer["results"]] == [None] * 5  # was: c/x.png and d/x.png Trouser
    assert answer["n_labelled"] == 0 and answer["n_labels_unmatched"] == 4
    answer = predict_files(out / "runs" / "photos", [tmp_path / "c"], labels=tmp_path / "labels.csv")
    assert [r.get("true_class") for r in answer["results"]] == [None, "Bag"]  # c/z.png: z.png's, named alone

    labels = tmp_path / "digits.csv"
    for rows, classes, expected in [("x.png,1\ny.png,2\n", ["1", "2"], [0, 1]),  # every label a name: names
                                    ("x.png,0\ny.png,1\n", ["1", "2"], [0, 1]),  # every one an index: indices
                                    ("x.png,0\ny.png,3\n", ["1", "2", "3"], [0, 2]),  # each has one reading
                                    ("x.png,0\ny.png,One\n", ["One", "Two"], [0, 0])]:
        labels.write_text("file,label\n" + rows)
        assert list(read_labels(labels, classes).values()) == expected, rows
    for rows, classes, message in [("x.png,0\ny.png,1\nz.png,3\n", ["1", "2", "3"],
                                    "label '1' names the class '1' but is the index of '2'"),
                                   ("x.png,0\nx.png,1\n", ["One", "Two"], "x.png is labelled 'One' in an earlier row")]:
        labels.write_text("file,label\n" + rows)
        with pytest.raises(ParameterError, match=message):
            read_labels(labels, classes)
    with pytest.raises(ParameterError, match="larger than"):
        read_labels(Path("/dev/zero"), ["1", "2"])  # read up to the cap, not for ever
    os.mkfifo(tmp_path / "pipe.csv")
    with pytest.raises(ParameterError, match="needs a header"):
        read_labels(tmp_path / "pipe.csv", ["1", "2"])  # no writer: read as empty, not waited for


def test_a_photo_whose_exif_cannot_be_read_is_predicted_as_stored(run_and_photos, tmp_path):
    import mnistlab as ml

    out, folder = run_and_photos
    with Image.open(folder / "photo1.png") as image:
        image.save(tmp_path / "badexif.png", exif=b"Exif\x00\x00garbage!")
    result = run_cli("predict", "photos", str(tmp_path / "badexif.png"), "--out", str(out))
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "badexif.png") as image:
        assert ml.load_run("photos", out=out).predict(image).class_name in result.stdout


def test_index_with_photos_or_labels_is_a_usage_error(run_and_photos):
    out, folder = run_and_photos
    result = run_cli("predict", "photos", str(folder / "photo0.jpg"), "--index", "0", "--out", str(out))
    assert result.returncode == 2 and result.stderr.startswith("error: --index: predicts a stored image")
    beyond = run_cli("predict", "photos", "--index", "100000", "--out", str(out))  # "error: Invalid value: --index"
    # the run's 300 test images
    assert beyond.returncode == 2 and beyond.stderr == "error: --index: must be in 0..299\n"
