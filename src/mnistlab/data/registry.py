"""The MNIST-family datasets, described as data.

Like torchvision's MNIST/FashionMNIST/KMNIST, the datasets differ only in
file checksums, mirrors and class names; one reader (``idx.py``) serves all.

Two kinds of checksum are kept per file:

* ``sha256``: of the *decompressed* IDX payload. It identifies the data
  whatever gzip produced the archive (Debian's archives differ byte-wise from
  the mirrors' but hold the same payload). ``None`` where no trusted value is
  known to us.
* ``archive_sha256``: of the ``.gz`` file as the mirrors serve it (the values
  torchvision and TensorFlow Datasets publish). Downloads are checked with it.
"""

from __future__ import annotations

from dataclasses import dataclass

PARTS = ("train_images", "train_labels", "test_images", "test_labels")
IMAGE_SIDE = 28  # every MNIST-family image is 28×28 pixels, one byte each


@dataclass(frozen=True)
class IdxFile:
    name: str
    sha256: str | None
    archive_sha256: str


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    title: str
    classes: tuple[str, ...]
    files: dict[str, IdxFile]  # keyed by PARTS
    mirrors: tuple[str, ...]  # base URLs, tried in order
    system_dirs: tuple[str, ...] = ()
    apt_package: str | None = None
    # whether an image mirrored left to right shows the same class: a garment's does, a digit's or a character's
    # does not (a family may train on mirror images, as cnn's flips, only where it does)
    mirror_keeps_class: bool = False


def _idx_files(checksums: dict[str, tuple[str | None, str]]) -> dict[str, IdxFile]:
    names = {
        "train_images": "train-images-idx3-ubyte",
        "train_labels": "train-labels-idx1-ubyte",
        "test_images": "t10k-images-idx3-ubyte",
        "test_labels": "t10k-labels-idx1-ubyte",
    }
    return {part: IdxFile(names[part], *checksums[part]) for part in PARTS}


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            name="fashion-mnist",
            title="Fashion-MNIST (Zalando Research)",
            classes=(
                "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
            ),
            files=_idx_files({
                "train_images": ("c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                                 "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
                "train_labels": ("bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                                 "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
                "test_images": ("5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                                "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
                "test_labels": ("0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
                                "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
            }),
            mirrors=(
                "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
            ),
            system_dirs=("/usr/share/datasets/fashion-mnist",),
            apt_package="dataset-fashion-mnist",
            mirror_keeps_class=True,
        ),
        DatasetSpec(
            name="mnist",
            title="MNIST handwritten digits (LeCun, Cortes, Burges)",
            classes=tuple(str(d) for d in range(10)),
            files=_idx_files({
                "train_images": (None, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
                "train_labels": (None, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
                "test_images": ("0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
                "test_labels": ("ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
                                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
            }),
            # The original host answers 403 to most clients: it is the last resort.
            mirrors=(
                "https://ossci-datasets.s3.amazonaws.com/mnist/",
                "https://storage.googleapis.com/cvdf-datasets/mnist/",
                "http://yann.lecun.com/exdb/mnist/",
            ),
        ),
        DatasetSpec(
            name="kmnist",
            title="Kuzushiji-MNIST (ROIS-DS CODH)",
            classes=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
            files=_idx_files({
                "train_images": (None, "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4"),
                "train_labels": (None, "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17"),
                "test_images": (None, "edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5"),
                "test_labels": (None, "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c"),
            }),
            mirrors=(
                "https://codh.rois.ac.jp/kmnist/dataset/kmnist/",
                "http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
            ),
        ),
    )
}

DEFAULT_DATASET = "fashion-mnist"
