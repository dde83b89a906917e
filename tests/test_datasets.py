"""Real-data loads, search order, checksum status, caching, subsets and filters."""

from __future__ import annotations

import dataclasses
import gzip
import json
import mmap
import shutil
from pathlib import Path

import numpy as np
import pytest

from mnistlab import DatasetError, ParameterError, load_dataset
from mnistlab.data.datasets import locate
from mnistlab.data.registry import DATASETS

from conftest import run_cli


def plain_decode(path):
    """The reference decoding: np.frombuffer on the decompressed bytes, header skipped."""
    data = gzip.open(path).read()
    offset = 16 if data[3] == 3 else 8
    array = np.frombuffer(data, np.uint8, offset=offset)
    return array.reshape(-1, 28, 28) if offset == 16 else array


def assert_matches_files(ds, directory):
    for attr, name in (("x_train", "train-images-idx3-ubyte"), ("y_train", "train-labels-idx1-ubyte"),
                       ("x_test", "t10k-images-idx3-ubyte"), ("y_test", "t10k-labels-idx1-ubyte")):
        expected = plain_decode(directory / f"{name}.gz")
        got = getattr(ds, attr)
        assert got.dtype == np.uint8
        assert got.shape == expected.shape
        assert np.asarray(got).tobytes() == expected.tobytes(), attr


def test_fashion_mnist_equals_plain_decoding(fashion):
    from pathlib import Path

    assert fashion.x_train.shape == (60000, 28, 28) and fashion.x_test.shape == (10000, 28, 28)
    assert fashion.classes[0] == "T-shirt/top" and fashion.classes[9] == "Ankle boot"
    assert fashion.official, fashion.checksums
    assert_matches_files(fashion, Path(fashion.source))


def test_shared_mnist_is_a_reduced_set(mnist, mnist_dir):
    assert_matches_files(mnist, mnist_dir)
    assert mnist.x_train.shape == (5000, 28, 28)
    # The official test files match; the training subset is not the official file.
    assert mnist.checksums["test_images"] == "match" and mnist.checksums["test_labels"] == "match"
    assert mnist.checksums["train_images"] != "match"
    assert not mnist.official
    assert mnist.classes == tuple("0123456789")


def test_warm_load_comes_from_the_decoded_cache(mnist_dir):
    first = load_dataset("mnist", data_dir=mnist_dir)
    second = load_dataset("mnist", data_dir=mnist_dir)
    base = second.x_train
    while isinstance(base, np.ndarray):
        base = base.base
    assert isinstance(base.obj, mmap.mmap)  # a view of the cache file's mapping, not decoded again
    assert np.array_equal(first.x_test, second.x_test)
    # writable, as keras.datasets' arrays ("assignment destination is read-only"), each load's its own: an edit
    # never reaches the cache's files
    second.y_train[second.y_train == 9] = 0
    x = second.x_test
    x -= x  # in place, as a notebook would
    third = load_dataset("mnist", data_dir=mnist_dir)
    assert (third.y_train == 9).any() and np.array_equal(first.x_test, third.x_test) and not second.x_test.any()
    # a worker process gets the edited images: an np.memmap went to joblib's workers by its file's name, and
    # they read the cache's file (cross_val_score with n_jobs=2 scored the unedited images)
    from joblib import Parallel, delayed

    second.x_train[:] = 0
    assert Parallel(n_jobs=2)(delayed(np.sum)(second.x_train) for _ in range(2)) == [0, 0]


def test_explicit_dir_wins_and_must_hold_files(tmp_path, mnist_dir, monkeypatch):
    with pytest.raises(DatasetError, match="does not hold mnist's four IDX files; missing .*: train-images-idx3"):
        locate("mnist", data_dir=tmp_path)
    with pytest.raises(DatasetError, match="no such folder"):
        locate("mnist", data_dir=tmp_path / "nope")
    with pytest.raises(DatasetError, match="cannot look in it"):
        locate("mnist", data_dir=tmp_path / ("x" * 300))
    monkeypatch.setenv("MNISTLAB_DATA_DIR", str(mnist_dir))
    assert locate("mnist")["test_images"].parent == mnist_dir


def test_the_variable_set_for_one_dataset_sends_no_other_there(mnist_dir, monkeypatch, tmp_path):
    """MNISTLAB_DATA_DIR set to MNIST's folder sent every Fashion-MNIST run there, each refused ("this is mnist's
    official test images, not fashion-mnist's"): recipes, and a later evaluate or export of an earlier run."""
    from mnistlab.experiments.pipeline import DataChoice

    elsewhere = locate("fashion-mnist")
    monkeypatch.setenv("MNISTLAB_DATA_DIR", str(mnist_dir))
    assert locate("fashion-mnist") == elsewhere and locate("mnist")["test_images"].parent == mnist_dir
    assert DataChoice(dataset="fashion-mnist").data_dir is None and DataChoice().data_dir is None
    assert DataChoice(dataset="mnist").data_dir == str(mnist_dir)
    recipes = json.loads(run_cli("recipes", "list", "--json", env={"MNISTLAB_DATA_DIR": str(mnist_dir)}).stdout)
    assert recipes["numpy-binary"]["reproduction"]["data"]["data_dir"] is None
    assert recipes["mnist-l1-5000"]["reproduction"]["data"]["data_dir"] == str(mnist_dir)
    # given for the dataset, its folder is still checked
    with pytest.raises(DatasetError, match="this is mnist's official test images, not fashion-mnist's"):
        load_dataset("fashion-mnist", data_dir=mnist_dir)
    # a dataset found nowhere else: the variable, set, is said to be passed over (it seemed unread)
    monkeypatch.setenv("MNISTLAB_CACHE", str(tmp_path))
    with pytest.raises(DatasetError, match=rf"; MNISTLAB_DATA_DIR \({mnist_dir}\) holds another dataset's files\)"):
        locate("kmnist", download=False)


def test_user_cache_is_searched_before_system_dirs(tmp_path, monkeypatch, fashion):
    from pathlib import Path

    cache = tmp_path / "cache"
    target = cache / "fashion-mnist"
    target.mkdir(parents=True)
    for f in Path(fashion.source).glob("*.gz"):
        shutil.copy(f, target / f.name)
    monkeypatch.setenv("MNISTLAB_CACHE", str(cache))
    assert locate("fashion-mnist")["train_images"].parent == target


def test_nothing_found_offline_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("MNISTLAB_CACHE", str(tmp_path))
    with pytest.raises(DatasetError) as info:
        locate("kmnist", download=False)
    message = str(info.value)
    assert "kmnist not found" in message and str(tmp_path / "kmnist") in message
    assert "--data-dir" in message


def test_debian_package_named_in_hint(tmp_path, monkeypatch):
    monkeypatch.setenv("MNISTLAB_CACHE", str(tmp_path))
    without_system_dir = dataclasses.replace(DATASETS["fashion-mnist"], system_dirs=())
    monkeypatch.setitem(DATASETS, "fashion-mnist", without_system_dir)
    with pytest.raises(DatasetError, match="apt-get install dataset-fashion-mnist"):
        locate("fashion-mnist", download=False)


def test_labels_out_of_range_are_rejected(tmp_path, mnist_dir):
    for f in mnist_dir.glob("*.gz"):
        shutil.copy(f, tmp_path / f.name)
    labels = bytearray(gzip.open(tmp_path / "t10k-labels-idx1-ubyte.gz").read())
    labels[8] = 10
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(labels)))
    with pytest.raises(DatasetError, match="label 10 out of range"):
        load_dataset("mnist", data_dir=tmp_path)


def test_count_mismatch_is_rejected(tmp_path, mnist_dir):
    for f in mnist_dir.glob("*.gz"):
        shutil.copy(f, tmp_path / f.name)
    labels = gzip.open(tmp_path / "t10k-labels-idx1-ubyte.gz").read()
    short = labels[:4] + (9999).to_bytes(4, "big") + labels[8:-1]
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(short)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetError, match="10000 images but 9999 labels"):
        load_dataset("mnist", data_dir=tmp_path)


def test_subset_is_stratified_and_reproducible(fashion):
    a = fashion.subset(n=1000, seed=3)
    b = fashion.subset(n=1000, seed=3)
    c = fashion.subset(n=1000, seed=4)
    assert len(a.x_train) == 1000 and np.array_equal(a.y_train, b.y_train)
    assert not np.array_equal(a.x_train, c.x_train)
    assert np.bincount(a.y_train).tolist() == [100] * 10
    per = fashion.subset(per_class=7, seed=0)
    assert np.bincount(per.y_train).tolist() == [7] * 10
    assert len(per.x_test) == 10000  # the other split is kept
    for count in (0, -1):
        with pytest.raises(ParameterError, match="per_class: must be a whole number of images ≥ 1"):
            fashion.subset(per_class=count)


def test_filter_classes_relabels(fashion):
    binary = fashion.filter_classes([0, 1])
    assert binary.classes == ("T-shirt/top", "Trouser")
    assert set(np.unique(binary.y_train)) == {0, 1}
    assert len(binary.x_train) == 12000 and len(binary.x_test) == 2000
    swapped = fashion.filter_classes([9, 0])
    assert swapped.classes == ("Ankle boot", "T-shirt/top")
    assert np.array_equal(swapped.y_test == 0, fashion.y_test[np.isin(fashion.y_test, [9, 0])] == 9)


def test_preprocess_helpers(fashion):
    from sklearn.preprocessing import StandardScaler

    from mnistlab.data.preprocess import flatten_scale, standardize, validation_split

    x = flatten_scale(fashion.x_train[:600])
    assert x.shape == (600, 784) and x.dtype == np.float32
    assert x.min() >= 0 and x.max() <= 1
    xs_train, xs_test = standardize(x[:500], x[500:])
    assert abs(float(xs_train.mean())) < 1e-3
    scaler = StandardScaler().fit(x[:500])  # the same numbers, constant (border) pixels included
    assert (x[:500].std(axis=0) == 0).any() and xs_train.dtype == xs_test.dtype == np.float32
    np.testing.assert_allclose(xs_train, scaler.transform(x[:500]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(xs_test, scaler.transform(x[500:]), rtol=1e-5, atol=1e-5)
    x_fit, x_val, y_fit, y_val = validation_split(x, fashion.y_train[:600], fraction=0.2, seed=0)
    assert len(x_val) == 120 and np.bincount(y_val, minlength=10).min() >= 10


@pytest.mark.parametrize("seed", [0, 1, 7, 2**32 - 1])
def test_stratified_splits_are_scikit_learns_own(fashion, seed):
    """The same subsets and validation sets as scikit-learn's train_test_split drew, so runs made before
    this module replaced it keep their images: uneven classes, ties among remainders, odd sizes."""
    from sklearn.model_selection import train_test_split

    from mnistlab.data.preprocess import stratified_split, subset_indices, validation_split

    rng = np.random.default_rng(seed)
    labels = [fashion.y_train, fashion.y_train[:997], rng.integers(0, 3, 50), np.repeat([0, 1, 2, 3], [2, 5, 9, 40]),
              np.array(["coat", "bag"] * 6 + ["coat"])]
    for y in labels:
        rows = np.arange(len(y))
        k = len(set(y.tolist()))
        for n_test in sorted({k, k + 3, len(y) // 3, len(y) - k} & set(range(k, len(y) - k + 1))):
            ours = stratified_split(y, n_test, seed)
            theirs = train_test_split(rows, test_size=n_test, stratify=y, random_state=seed)
            assert all(np.array_equal(a, b) for a, b in zip(ours, theirs))
        for fraction in (0.1, 0.25):
            ours = validation_split(rows, y, fraction, seed)
            theirs = train_test_split(rows, y, test_size=fraction, stratify=y, random_state=seed)
            assert all(np.array_equal(a, b) for a, b in zip(ours, theirs))
    _, expected = train_test_split(np.arange(60000), test_size=5000, stratify=fashion.y_train, random_state=seed)
    assert np.array_equal(subset_indices(fashion.y_train, n=5000, seed=seed), np.sort(expected))


@pytest.mark.parametrize("seed", [0, 3, 2**32 - 1])
def test_stratified_folds_are_scikit_learns_own(fashion, seed):
    """The folds of a sweep's cross-validation, as StratifiedKFold drew them before this replaced it."""
    from sklearn.model_selection import StratifiedKFold

    from mnistlab.data.preprocess import stratified_folds

    rng = np.random.default_rng(seed)
    labels = [fashion.y_train[:3001], rng.integers(0, 3, 50), np.repeat([3, 0, 2, 1], [5, 9, 40, 7]),
              np.array(["coat", "bag"] * 6 + ["coat"])]
    for y in labels:
        for n_folds in (2, 3, 5):
            theirs = StratifiedKFold(n_folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)
            ours = stratified_folds(y, n_folds, seed)
            assert all(np.array_equal(a, b) for pair, other in zip(ours, theirs) for a, b in zip(pair, other))


def test_a_split_that_cannot_keep_every_class_is_refused():
    from mnistlab.data.preprocess import stratified_split

    with pytest.raises(ValueError, match="single member"):
        stratified_split(np.array([0, 0, 1]), 1, 0)
    with pytest.raises(ValueError, match="cannot each hold all 3 classes"):
        stratified_split(np.repeat([0, 1, 2], 4), 2, 0)


def gzip_of_size(data: bytes, size: int) -> bytes:
    """A gzip file of exactly ``size`` bytes holding ``data``: the header's optional extra field pads it."""
    import struct
    import zlib

    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = compressor.compress(data) + compressor.flush()
    pad = size - (10 + 2 + len(body) + 8)
    assert 0 <= pad < 65536
    head = b"\x1f\x8b\x08\x04" + bytes(6) + struct.pack("<H", pad) + bytes(pad)
    return head + body + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)


def rewrite_keeping_size_and_mtime(path, content: bytes):
    import os

    st = path.stat()
    assert len(content) == st.st_size
    path.write_bytes(content)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.mark.parametrize("kind", ["plain labels", "gzip images"])
def test_a_file_rewritten_with_its_size_and_mtime_kept_is_decoded_again(tmp_path, mnist_dir, kind):
    for f in mnist_dir.glob("*.gz"):
        shutil.copy(f, tmp_path / f.name)
    labels = tmp_path / "t10k-labels-idx1-ubyte"
    labels.write_bytes(gzip.open(mnist_dir / "t10k-labels-idx1-ubyte.gz").read())
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    images = tmp_path / "t10k-images-idx3-ubyte.gz"
    raw_images = gzip.open(images).read()
    size = len(gzip.compress(raw_images)) + 64
    images.write_bytes(gzip_of_size(raw_images, size))
    first = load_dataset("mnist", data_dir=tmp_path)
    if kind == "plain labels":  # small: hashed whole
        content = bytearray(labels.read_bytes())
        content[8], content[9] = content[9], content[8]
        assert content != labels.read_bytes()
        rewrite_keeping_size_and_mtime(labels, bytes(content))
    else:  # large: an image in the middle changes; the gzip trailer's CRC-32 is what tells
        content = bytearray(raw_images)
        middle = 16 + 5000 * 784
        content[middle:middle + 784] = bytes(255 - b for b in content[middle:middle + 784])
        rewrite_keeping_size_and_mtime(images, gzip_of_size(bytes(content), size))
    second = load_dataset("mnist", data_dir=tmp_path)
    if kind == "plain labels":
        assert second.y_test[:2].tolist() == first.y_test[:2].tolist()[::-1]
    else:
        assert np.array_equal(second.x_test[5000], 255 - first.x_test[5000])
        assert np.array_equal(second.x_test[:5000], first.x_test[:5000])


def test_an_empty_split_is_refused_naming_the_file(tmp_path, mnist_dir):
    import struct

    for f in mnist_dir.glob("*.gz"):
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(bytes([0, 0, 8, 3]) + struct.pack(">3I", 0, 28, 28)))
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes([0, 0, 8, 1]) + struct.pack(">I", 0)))
    with pytest.raises(DatasetError, match=r"t10k-images-idx3-ubyte.gz: holds no images \(an empty test split\)"):
        load_dataset("mnist", data_dir=tmp_path)


@pytest.mark.parametrize("keep, message", [
    ([0, 10], "10 is out of range for the dataset's 10 classes"),
    ([99999999999, 1], "99999999999 is out of range"),
    ([0, 1, 1], "1 listed more than once"),
    ([-1, 1], "0 or more"),
    ([3], "at least two classes"),
    ([None, []], "class labels are whole numbers, got None"),  # NumPy's "inhomogeneous shape" (a fuzzed config)
])
def test_filter_classes_refuses_bad_class_lists_by_name(fashion, keep, message):
    with pytest.raises(ParameterError, match=message) as info:
        fashion.filter_classes(keep)
    assert info.value.parameter == "classes"


def test_filter_classes_refuses_a_class_without_training_images(fashion):
    from mnistlab.errors import ParameterError

    no_sneakers = dataclasses.replace(fashion, x_train=fashion.x_train[fashion.y_train != 7],
                                      y_train=fashion.y_train[fashion.y_train != 7])
    with pytest.raises(ParameterError, match=r"no training images of class 7 \(Sneaker\)"):
        no_sneakers.filter_classes([7, 9])


def test_a_subset_smaller_than_the_number_of_classes_says_so(fashion):
    from mnistlab.errors import ParameterError

    with pytest.raises(ParameterError, match="at least one image of each of the 10 classes, got a size of 5"):
        fashion.subset(n=5)


def test_subset_arguments_are_checked_and_a_subset_of_nearly_all_is_drawn(fashion):
    from mnistlab.errors import ParameterError

    for arguments, parameter in [(dict(n=99.9), "n"), (dict(n="100"), "n"), (dict(per_class=0), "per_class"),
                                 (dict(n=100, seed=-1), "seed"), (dict(n=100, seed=1.5), "seed"),
                                 (dict(n=100, per_class=3), None)]:  # were 99 images, numpy's messages, 30 images
        with pytest.raises(ParameterError) as info:
            fashion.subset(**arguments)
        assert info.value.parameter == parameter
    n = len(fashion.y_train)
    nearly_all = fashion.subset(n=n - 5, seed=1)  # was refused: the 5 left out cannot hold all 10 classes
    assert len(nearly_all.y_train) == n - 5
    assert np.array_equal(fashion.subset(n=n - 5, seed=1).x_train, nearly_all.x_train)
    assert np.bincount(nearly_all.y_train).min() >= np.bincount(fashion.y_train).min() - 5
    from mnistlab.data.preprocess import subset_indices

    rare = np.repeat([0, 1, 2], [30, 1, 30])  # all but one image: the one of class 1 must stay
    assert all(1 in rare[subset_indices(rare, n=60, seed=seed)] for seed in range(200))
    with pytest.raises(ParameterError, match="class 2 has 0 examples"):  # was left out of "2 of each class"
        subset_indices(np.repeat([0, 1], 5), per_class=2, names=["a", "b", "c"])


def test_the_content_key_reads_little_of_a_large_file(tmp_path, monkeypatch):
    import os

    from mnistlab.data import datasets

    big = tmp_path / "big"
    big.write_bytes(bytes(50 * 2**20))
    read, pread = [], os.pread
    monkeypatch.setattr(datasets.os, "pread", lambda fd, n, offset: read.append(n) or pread(fd, n, offset))
    datasets._sampled_sha256(big)
    assert sum(read) < 256 * 1024


@pytest.mark.parametrize("damage", ["meta is a list", "checksums are lists", "labels of another shape", "emptied",
                                    "labels edited", "an image edited"])
def test_a_damaged_decoded_cache_is_rebuilt(tmp_path, mnist_dir, monkeypatch, damage):
    import json

    monkeypatch.setenv("MNISTLAB_CACHE", str(tmp_path / "cache"))
    expected = load_dataset("mnist", data_dir=mnist_dir)
    [folder] = (tmp_path / "cache" / "decoded").iterdir()
    if damage == "meta is a list":
        (folder / "meta.json").write_text("[]")
    elif damage == "checksums are lists":
        (folder / "meta.json").write_text(json.dumps({"checksums": {p: [] for p in expected.checksums}}))
    elif damage == "emptied":  # np.load raises EOFError: it was "internal error: Abort" for every command
        (folder / "test_labels.npy").write_bytes(b"")
    elif damage == "labels edited":  # of the same shape and type: used in silence, the checksums still "match"
        np.save(folder / "test_labels.npy", (expected.y_test + 1) % 10)
    elif damage == "an image edited":  # one byte, in place
        with (folder / "test_images.npy").open("r+b") as f:
            f.seek(200)
            f.write(b"\xff")
    else:
        np.save(folder / "test_labels.npy", np.zeros((5, 5), np.uint8))
    again = load_dataset("mnist", data_dir=mnist_dir)
    assert again.checksums == expected.checksums and np.array_equal(again.y_test, expected.y_test)
    assert np.array_equal(again.x_test, expected.x_test)
    assert "files" in json.loads((folder / "meta.json").read_text())
    base = load_dataset("mnist", data_dir=mnist_dir).x_test  # and the rebuilt cache is used as it is
    while isinstance(base, np.ndarray):
        base = base.base
    assert isinstance(base.obj, mmap.mmap)


def test_a_folder_of_another_dataset_is_refused(mnist_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MNISTLAB_CACHE", str(tmp_path))
    # said to a Python caller too, who gave data_dir (--data-dir on the command line)
    with pytest.raises(DatasetError, match=r"this is mnist's official test images, not fashion-mnist's \(data_dir "
                                           r"\(--data-dir\) or MNISTLAB_DATA_DIR meant for mnist\?\)"):
        load_dataset("fashion-mnist", data_dir=mnist_dir)  # digits would be read as clothes


def test_a_plain_file_rewritten_with_its_size_and_mtime_kept_is_decoded_again(mnist_dir, tmp_path, monkeypatch):
    import gzip
    import os

    monkeypatch.setenv("MNISTLAB_CACHE", str(tmp_path / "cache"))
    for path in mnist_dir.glob("*.gz"):  # plain files: only sampled for the cache's key
        (tmp_path / path.stem).write_bytes(gzip.decompress(path.read_bytes()))
    images = tmp_path / "t10k-images-idx3-ubyte"
    before = load_dataset("mnist", data_dir=tmp_path).x_test[2988].copy()
    stat = images.stat()
    with images.open("r+b") as f:  # as `cp -p` of an edited copy leaves it: same size, same mtime
        f.seek(16 + 2988 * 784)
        f.write(bytes([255]) * 784)
    os.utime(images, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    after = load_dataset("mnist", data_dir=tmp_path).x_test[2988]
    assert (after == 255).all() and not (before == 255).all()


def test_a_folder_whose_name_is_not_utf8_loads(mnist_dir, tmp_path, monkeypatch):
    """Its name went into the cache's key as UTF-8: an internal error (UnicodeEncodeError) before."""
    import os

    monkeypatch.setenv("MNISTLAB_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / os.fsdecode(b"bad\xffname")
    shutil.copytree(mnist_dir, folder)
    assert np.array_equal(load_dataset("mnist", data_dir=folder).y_test,
                          load_dataset("mnist", data_dir=mnist_dir).y_test)


def test_a_decoded_cache_written_before_its_files_were_recorded_is_used_as_it_was(tmp_path, mnist_dir, monkeypatch):
    """Rebuilt where it was found, such a cache that could not be written (another user's, a read-only one) was
    decoded again at every load (0.4 s each, where a warm load takes 1 ms)."""
    import json

    from mnistlab.data import datasets

    monkeypatch.setenv("MNISTLAB_CACHE", str(tmp_path / "cache"))
    expected = load_dataset("mnist", data_dir=mnist_dir)
    [folder] = (tmp_path / "cache" / "decoded").iterdir()
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "files"}))
    monkeypatch.setattr(datasets, "_decode", lambda *args: pytest.fail("decoded again"))
    again = load_dataset("mnist", data_dir=mnist_dir)
    assert np.array_equal(again.x_test, expected.x_test) and again.checksums == expected.checksums
    assert "files" not in json.loads((folder / "meta.json").read_text())


def test_the_decoded_cache_keeps_one_copy_of_a_folder_and_sweeps_what_killed_writers_left(mnist_dir, tmp_path,
                                                                                          monkeypatch):
    """Each touch of the files (a new ctime) left another whole copy, and a killed writer's staging stayed."""
    import os
    import shutil
    import subprocess
    import sys

    monkeypatch.setenv("MNISTLAB_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "data"
    shutil.copytree(mnist_dir, data)
    load_dataset("mnist", data_dir=mnist_dir)  # another folder's copy: kept
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    left = tmp_path / "cache" / "decoded" / f".staging-{int(gone.stdout)}-mnist-killed"
    left.mkdir()
    for _ in range(3):
        for path in data.iterdir():
            os.utime(path)  # a new ctime: decoded again
        load_dataset("mnist", data_dir=data)
    assert len(list((tmp_path / "cache" / "decoded").iterdir())) == 2 and not left.exists()


def test_a_cached_checksum_status_follows_the_official_checksums(mnist_dir, tmp_path, monkeypatch):
    """A release that adds or corrects an official checksum judges cached files again."""
    monkeypatch.setenv("MNISTLAB_CACHE", str(tmp_path / "cache"))
    official = DATASETS["mnist"]
    unknown = dataclasses.replace(official.files["test_images"], sha256=None)
    with monkeypatch.context() as patch:
        patch.setitem(DATASETS, "mnist",
                      dataclasses.replace(official, files={**official.files, "test_images": unknown}))
        assert load_dataset("mnist", data_dir=mnist_dir).checksums["test_images"] == "unknown"
    assert load_dataset("mnist", data_dir=mnist_dir).checksums["test_images"] == "match"


def test_an_unreadable_decoded_cache_is_decoded_again(mnist_dir, tmp_path, monkeypatch):
    """Path.is_file raises on EACCES (a cache folder of mode 000): a PermissionError before."""
    from pathlib import Path

    monkeypatch.setenv("MNISTLAB_CACHE", str(tmp_path / "cache"))
    expected = load_dataset("mnist", data_dir=mnist_dir)
    is_file = Path.is_file

    def unreadable(path):
        if path.name == "meta.json":
            raise PermissionError(13, "Permission denied", str(path))
        return is_file(path)

    monkeypatch.setattr(Path, "is_file", unreadable)
    assert np.array_equal(load_dataset("mnist", data_dir=mnist_dir).x_test, expected.x_test)


def test_a_path_quoted_in_an_error_cannot_break_the_line_or_reach_the_terminal(tmp_path):
    result = run_cli("data", "info", "--data-dir", str(tmp_path / "x\nerror: fake\x1b[31m"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "\x1b" not in result.stderr
    assert "x\\nerror: fake\\x1b[31m: no such folder" in result.stderr


def test_a_data_folder_of_a_link_loop_or_a_bad_type_says_so(tmp_path):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(DatasetError, match="loop: Too many levels of symbolic links"):
        load_dataset("mnist", data_dir=loop)
    for mistake in (123, ""):  # "" searched the default places, where train and a run's data choice refused it
        with pytest.raises(ParameterError, match=f"data_dir: must be a path .*, got {mistake!r}"):
            load_dataset("mnist", data_dir=mistake)
    with pytest.raises(ParameterError, match=r"^data_dir: a path cannot hold a null byte, got 'a\\x00b'$"):
        load_dataset("mnist", data_dir="a\0b")  # was os.stat's bare ValueError, "embedded null byte"
    with pytest.raises(DatasetError, match=r"unknown dataset \['mnist'\]"):
        load_dataset(["mnist"])


def test_a_subset_larger_than_the_set_is_refused_not_taken_as_all(mnist_dir):
    """config.json recorded train_size 60000 beside the 5000 images it was trained on."""
    from mnistlab.experiments.pipeline import DataChoice

    with pytest.raises(ParameterError, match="6000 is more than the 5000 training images in") as info:
        DataChoice(dataset="mnist", data_dir=str(mnist_dir), train_size=6000).load()
    assert info.value.parameter == "train_size"
    with pytest.raises(ParameterError, match="3000 is more than the 2115 test images of these classes"):
        DataChoice(dataset="mnist", data_dir=str(mnist_dir), classes=(0, 1), test_size=3000).load()
    assert len(DataChoice(dataset="mnist", data_dir=str(mnist_dir), train_size=5000).load().y_train) == 5000


def test_a_folder_reached_by_two_names_keeps_one_cached_copy(mnist_dir, tmp_path, monkeypatch):
    import os
    import shutil

    monkeypatch.setenv("MNISTLAB_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "data"
    shutil.copytree(mnist_dir, data)
    (tmp_path / "link").symlink_to(data)
    for folder in (data, tmp_path / "link", data, tmp_path / "link"):
        for path in data.iterdir():
            os.utime(path)  # a new ctime: decoded again, the copy before it superseded
        load_dataset("mnist", data_dir=folder)
    assert len(list((tmp_path / "cache" / "decoded").iterdir())) == 1


def test_a_folder_whose_training_split_lacks_a_class_is_one_data_error(tmp_path, mnist_dir):
    """Trained on nine classes and scored on ten: an internal error (predict_proba's shape) after the fit."""
    from mnistlab.experiments.pipeline import DataChoice

    for f in mnist_dir.glob("*.gz"):
        shutil.copy(f, tmp_path / f.name)
    images = gzip.open(tmp_path / "train-images-idx3-ubyte.gz").read()
    labels = np.frombuffer(gzip.open(tmp_path / "train-labels-idx1-ubyte.gz").read()[8:], np.uint8)
    kept = np.flatnonzero(labels != 9)
    pixels = np.frombuffer(images[16:], np.uint8).reshape(-1, 784)[kept]
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(
        images[:4] + len(kept).to_bytes(4, "big") + images[8:16] + pixels.tobytes()))
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(
        bytes([0, 0, 8, 1]) + len(kept).to_bytes(4, "big") + labels[kept].tobytes()))
    with pytest.raises(DatasetError, match=r"no training images of class 9 \(9\), and a model cannot learn"):
        DataChoice(dataset="mnist", data_dir=str(tmp_path)).load()
    assert len(DataChoice(dataset="mnist", data_dir=str(tmp_path), classes=(3, 8)).load().classes) == 2
    result = run_cli("train", "logreg", "--dataset", "mnist", "--data-dir", str(tmp_path), "--out", str(tmp_path))
    assert result.returncode == 2 and result.stderr.startswith("error: ") and "class 9" in result.stderr


def test_a_subset_that_cannot_be_drawn_names_the_size_given_and_the_class(fashion):
    """It said "--n: … classes with a single member cannot be split: [1]": no such flag, and a class's code."""
    one_bag = np.concatenate([np.flatnonzero(fashion.y_train != 8), np.flatnonzero(fashion.y_train == 8)[:1]])
    lonely = dataclasses.replace(fashion, x_train=fashion.x_train[one_bag], y_train=fashion.y_train[one_bag])
    with pytest.raises(ParameterError, match=r"single member cannot be split: \['Bag'\]") as info:
        lonely.filter_classes([0, 8]).subset(n=50, parameter="train_size")
    assert info.value.parameter == "train_size"


def test_a_relative_cache_folder_is_taken_from_where_it_was_given(tmp_path, monkeypatch):
    from mnistlab.data.datasets import cache_root

    monkeypatch.setenv("MNISTLAB_CACHE", "~/cache")
    assert cache_root() == Path.home() / "cache"  # not a folder named "~" in the working folder
    monkeypatch.setenv("MNISTLAB_CACHE", "cache")
    monkeypatch.chdir(tmp_path)
    assert cache_root() == tmp_path / "cache" and cache_root().is_absolute()


def test_a_datasets_methods_refuse_what_they_cannot_use_as_subset_does(mnist):
    # a raw TypeError, an error naming test_fraction for the seed, an unseeded split, the whole split for 10**9
    for call, parameter in [(lambda: mnist.resplit(0.2, seed=-1), "seed"),
                            (lambda: mnist.resplit(0.2, seed=1.5), "seed"),
                            (lambda: mnist.resplit(0.2, seed=None), "seed"),
                            (lambda: mnist.resplit("0.2"), "test_fraction"),
                            (lambda: mnist.filter_classes(np.array(3)), "classes"),
                            (lambda: mnist.subset(n=10**9), "n")]:
        with pytest.raises(ParameterError) as error:
            call()
        assert error.value.parameter == parameter
    assert len(mnist.subset(n=len(mnist.y_train)).y_train) == len(mnist.y_train)


def test_a_folder_with_a_file_both_packed_and_unpacked_is_refused(mnist_dir, tmp_path):
    for path in mnist_dir.glob("*.gz"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    labels = tmp_path / "t10k-labels-idx1-ubyte"  # `gunzip -k`, then the unpacked copy edited
    labels.write_bytes(gzip.decompress((tmp_path / "t10k-labels-idx1-ubyte.gz").read_bytes())[:8] + bytes(10_000))
    with pytest.raises(DatasetError, match=r"both t10k-labels-idx1-ubyte and t10k-labels-idx1-ubyte.gz are here"):
        load_dataset("mnist", data_dir=tmp_path)  # read the .gz and called it the official files


def test_a_cache_folder_that_cannot_be_used_does_not_stop_the_search(mnist_dir, tmp_path, monkeypatch):
    """A file both packed and unpacked in the cache folder ended the search there: every load refused, though the
    system folder after it held the files intact."""
    monkeypatch.setenv("MNISTLAB_CACHE", str(tmp_path))
    cache = tmp_path / "mnist"
    shutil.copytree(mnist_dir, cache)
    (cache / "t10k-labels-idx1-ubyte").write_bytes(gzip.open(cache / "t10k-labels-idx1-ubyte.gz").read())
    intact = dataclasses.replace(DATASETS["mnist"], system_dirs=(str(mnist_dir),))
    monkeypatch.setitem(DATASETS, "mnist", intact)
    with pytest.warns(UserWarning, match=f"^{cache}: both t10k-labels-idx1-ubyte and .*; loading {mnist_dir} inst"):
        assert locate("mnist", download=False)["test_labels"].parent == mnist_dir
    monkeypatch.setitem(DATASETS, "mnist", dataclasses.replace(intact, system_dirs=()))
    with pytest.raises(DatasetError, match=f"mnist not found \\(looked in {cache}; {cache}: both t10k-labels"):
        locate("mnist", download=False)  # nowhere else: the reason is part of the "not found"
    monkeypatch.setenv("MNISTLAB_MIRRORS", "http://127.0.0.1:9/")
    with pytest.raises(DatasetError, match=r"keep one of them \(which one is meant would be a guess\); download "
                                           r"failed\)"):
        locate("mnist")  # the download into that folder refused for it: said once


def test_without_a_home_folder_data_loads_and_the_cache_is_named(mnist_dir, monkeypatch):
    """A user with no $HOME and no passwd entry (a container's uid): "internal error: RuntimeError: Could not
    determine home directory", even with a data folder given."""
    import pwd

    from mnistlab.data.datasets import download_dataset

    def no_entry(uid):
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.delenv("HOME", raising=False)
    monkeypatch.delenv("MNISTLAB_CACHE")
    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    assert load_dataset("mnist", data_dir=mnist_dir).x_train.shape == (5000, 28, 28)  # decoded, not cached
    no_cache = r"^~/.cache/mnistlab: no home folder for its ~ \(no \$HOME, and no passwd entry for user \d+\); set M"
    with pytest.raises(DatasetError, match=no_cache):
        download_dataset("kmnist")
    monkeypatch.setitem(DATASETS, "mnist", dataclasses.replace(DATASETS["mnist"], system_dirs=(str(mnist_dir),)))
    with pytest.warns(UserWarning, match=no_cache[1:] + f".*; loading {mnist_dir} instead"):
        assert locate("mnist", download=False)["test_labels"].parent == mnist_dir  # a system folder still searched
    with pytest.raises(DatasetError, match=r"^~/data: no home folder for its ~"):
        locate("mnist", data_dir="~/data")


def test_the_decoded_copy_of_a_folder_that_is_gone_is_removed(mnist_dir, tmp_path, monkeypatch):
    """Each data folder loaded left its whole decoded copy (12 MB for this MNIST, 53 MB for Fashion-MNIST) for good,
    after the folder was deleted too: three temporary folders, three copies."""
    monkeypatch.setenv("MNISTLAB_CACHE", str(tmp_path / "cache"))
    load_dataset("mnist", data_dir=mnist_dir)  # a folder still there: its copy is kept
    for name in ("one", "two", "three"):
        shutil.copytree(mnist_dir, tmp_path / name)
        load_dataset("mnist", data_dir=tmp_path / name)
        shutil.rmtree(tmp_path / name)
    sources = [json.loads((entry / "meta.json").read_text())["source"]["test_labels"]
               for entry in (tmp_path / "cache" / "decoded").iterdir()]
    assert sorted(sources) == sorted([str(tmp_path.resolve() / "three" / "t10k-labels-idx1-ubyte.gz"),
                                      str((mnist_dir / "t10k-labels-idx1-ubyte.gz").resolve())])
