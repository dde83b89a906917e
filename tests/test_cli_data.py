"""The data commands, run as a user runs them."""

from __future__ import annotations

import json

from PIL import Image

from conftest import run_cli


def test_info_json(mnist_dir):
    result = run_cli("data", "info", "--dataset", "mnist", "--data-dir", str(mnist_dir), "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["x_train"] == {"shape": [5000, 28, 28], "dtype": "uint8"}
    assert info["counts"]["train"] == [500] * 10
    assert info["checksums"]["test_images"] == "match" and info["official"] is False


def test_info_table_default_dataset():
    result = run_cli("data", "info")
    assert result.returncode == 0, result.stderr
    assert "T-shirt/top" in result.stdout and "Ankle boot" in result.stdout
    assert "official files" in result.stdout and "(60000, 28, 28)" in result.stdout


def test_show_writes_pngs(tmp_path, mnist_dir):
    result = run_cli("data", "show", "--dataset", "mnist", "--data-dir", str(mnist_dir),
                     "--per-class", "4", "--out", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    files = json.loads(result.stdout)["files"]
    assert len(files) == 2
    for f in files:
        with Image.open(f) as image:
            image.verify()
        with Image.open(f) as image:
            assert image.format == "PNG" and image.width > 300 and image.height > 200
    assert all(f.startswith(str(tmp_path)) for f in files)
    result = run_cli("data", "show", "--dataset", "mnist", "--data-dir", str(mnist_dir), "--per-class", "50",
                     "--out", str(tmp_path), "--json")
    with Image.open(json.loads(result.stdout)["files"][0]) as image:
        assert image.width > 50 * 28 * 1.5  # each image over its 28 pixels: 20 each, narrowed to a report's column
    result = run_cli("data", "show", "--dataset", "mnist", "--data-dir", str(mnist_dir), "--per-class", "51",
                     "--out", str(tmp_path))  # a figure of 510 images drew for minutes, past a gigabyte at 300
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1


def test_show_draws_a_small_dataset_of_ones_own_without_being_told_how_many(tmp_path, mnist_dir):
    """Its default of 10 a class refused a set with 3 of each: "--per-class: class 0 has 3 examples, fewer than 10"."""
    import gzip
    import shutil

    import numpy as np

    data = tmp_path / "data"
    shutil.copytree(mnist_dir, data)
    images = gzip.open(data / "train-images-idx3-ubyte.gz").read()
    labels = np.frombuffer(gzip.open(data / "train-labels-idx1-ubyte.gz").read()[8:], np.uint8)

    def keep(classes):
        kept = np.concatenate([np.flatnonzero(labels == k)[:3] for k in classes])
        pixels = np.frombuffer(images[16:], np.uint8).reshape(-1, 784)[kept]
        (data / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(
            images[:4] + len(kept).to_bytes(4, "big") + images[8:16] + pixels.tobytes()))
        (data / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(
            bytes([0, 0, 8, 1]) + len(kept).to_bytes(4, "big") + labels[kept].tobytes()))
        return run_cli("data", "show", "--dataset", "mnist", "--data-dir", str(data), "--out", str(tmp_path))

    result = keep(range(10))
    assert result.returncode == 0, result.stderr
    result = keep(range(9))  # no 9 at all: drawn with an empty row under "3 training images of each class"
    assert result.returncode == 2 and result.stderr.startswith("error: ") and "no training image of class 9 (9)" \
        in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr


def test_pixels_prints_aligned_matrix():
    result = run_cli("data", "pixels", "--index", "0")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "Ankle boot" in lines[0]
    rows = lines[1:]
    assert len(rows) == 28 and {len(r) for r in rows} == {28 * 4 - 1}


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    for args in (["data", "info", "--dataset", "nope"],
                 ["data", "info", "--data-dir", str(tmp_path)],
                 ["data", "pixels", "--index", "70000"]):
        result = run_cli(*args)
        assert result.returncode == 2, args
        assert "Traceback" not in result.stderr


def test_offline_download_failure_is_clear(tmp_path):
    result = run_cli("data", "info", "--dataset", "kmnist",
                     env={"MNISTLAB_CACHE": str(tmp_path), "MNISTLAB_MIRRORS": "http://127.0.0.1:9/"})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "kmnist not found" in result.stderr and "download failed" in result.stderr


def test_help_has_examples():
    for command in (["data", "info"], ["data", "show"], ["data", "pixels"], ["data", "download"]):
        result = run_cli(*command, "--help")
        assert result.returncode == 0 and "mnistlab data" in result.stdout
