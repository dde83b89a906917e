"""Finding, verifying, caching and loading MNIST-family datasets.

Where a dataset is looked for, in order:

1. an explicit directory (``data_dir`` / ``--data-dir``), else ``MNISTLAB_DATA_DIR`` unless it holds
   another dataset's official files (``data_dir_from_env``);
2. the user cache, ``~/.cache/mnistlab/<name>`` (root set by ``MNISTLAB_CACHE``);
3. system directories (Debian's ``dataset-fashion-mnist`` package);
4. the official mirrors, downloaded into the user cache.

Decoded arrays are cached as ``.npy`` files and memory-mapped on the next
load, so a warm load costs a few ``stat`` calls and reads of sampled blocks
(each file's size and sampled digest must be those written, else it is rebuilt).
"""

from __future__ import annotations

import hashlib
import json
import math
import mmap
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .._io import atomic_directory, sweep_staging
from .._values import path_text
from ..callbacks import SILENT, FitProgress
from ..errors import DatasetError, ParameterError, shown_path, warn
from . import preprocess
from .download import fetch_verified
from .idx import check_pair, read_idx
from .registry import DATASETS, DEFAULT_DATASET, IMAGE_SIDE, PARTS, DatasetSpec

CACHE_FORMAT = 1  # bump when the decoded-cache layout changes
DATA_DIR_ENV = "MNISTLAB_DATA_DIR"  # a folder of the four IDX files, where none is given
SAMPLE_BYTES = 64 * 1024  # the cache key hashes this much of each file's start and end…
SAMPLE_BLOCKS, BLOCK_BYTES = 16, 4096  # …and this many blocks of this size spread between them

SPLITS = ("train", "test")


class NotFound(DatasetError):
    """The dataset is in none of the places searched: installing or downloading it may help, where it would not
    mend any other DatasetError (a data folder named that does not exist, a damaged file)."""


def get_spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except (KeyError, TypeError):  # TypeError: a list, say, which no dict key is
        raise DatasetError(
            f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}"
        ) from None


def _expanded(path: str) -> Path:
    """``path``, its "~" expanded, made absolute (a relative path, or a "~" the shell left unexpanded, would move with
    the working folder); a DatasetError where the "~" names no home folder here."""
    try:
        return Path(path).expanduser().absolute()
    except RuntimeError:  # from Path.home: a user with no $HOME and no passwd entry (a container's arbitrary uid)
        user = path[1:].partition("/")[0]
        why = f"no user {user}" if user else f"no $HOME, and no passwd entry for user {os.getuid()}"
        raise DatasetError(f"{path}: no home folder for its ~ ({why})") from None


def cache_root() -> Path:
    """The cache's folder; a DatasetError where it would be in a home folder there is none of."""
    try:
        return _expanded(os.environ.get("MNISTLAB_CACHE") or "~/.cache/mnistlab")
    except DatasetError as exc:
        raise DatasetError(f"{exc}; set MNISTLAB_CACHE to a full path for the cache") from None


def _mirrors(spec: DatasetSpec) -> list[str]:
    # MNISTLAB_MIRRORS (comma-separated base URLs) replaces the registry's list;
    # tests point it at a server on 127.0.0.1.
    override = os.environ.get("MNISTLAB_MIRRORS")
    return [m.strip() for m in override.split(",") if m.strip()] if override else list(spec.mirrors)


def find_files(spec: DatasetSpec, directory: Path) -> dict[str, Path] | None:
    """The four IDX files in ``directory`` (each plain or ``.gz``), or None if any is missing."""
    found = {}
    for part in PARTS:
        name = spec.files[part].name
        try:
            present = [p for p in (directory / f"{name}.gz", directory / name) if p.is_file()]
        except OSError as exc:  # a folder's name too long, say
            raise DatasetError(f"{shown_path(directory)}: cannot look in it ({exc.strerror or exc})") from None
        if not present:
            return None
        if len(present) == 2:  # after `gunzip -k`: the .gz was read, and an edit to the other went unseen
            raise _two_copies(directory, name)
        found[part] = present[0]
    return found


def _two_copies(directory: Path, name: str) -> DatasetError:
    return DatasetError(f"{shown_path(directory)}: both {name} and {name}.gz are here; keep one of them (which one is "
                        "meant would be a guess)")


def data_dir_from_env(name: str) -> str | None:
    """``MNISTLAB_DATA_DIR``, for dataset ``name``: None where it is unset or holds another dataset's official
    files (its test labels tell), as a variable set once for MNIST's folder would send every Fashion-MNIST run
    and recipe there, to be refused. Its files' other faults are the load's to report."""
    folder = os.environ.get(DATA_DIR_ENV)
    return folder if folder and not other_dataset_in(name, folder) else None


def other_dataset_in(name: str, folder: str | Path) -> str | None:
    """The other dataset than ``name`` whose official files ``folder`` holds (its test labels tell), if any; None
    where it holds none, or its files cannot be read (the load reports why)."""
    spec = get_spec(name)
    try:
        files = find_files(spec, _expanded(folder))
        if files is not None:
            return _official_elsewhere(spec, "test_labels", read_idx(files["test_labels"], ndim=1)[1])
    except (DatasetError, OSError, ValueError):  # as the load will find it
        pass
    return None


def _official_elsewhere(spec: DatasetSpec, part: str, payload_sha: str) -> str | None:
    """The other dataset whose official ``part`` these are (by their payload's SHA-256), if any."""
    return next((o.name for o in DATASETS.values() if o is not spec and o.files[part].sha256 == payload_sha), None)


def _archive_sha256(path: Path) -> str:
    with path.open("rb") as f:  # a chunk at a time: the file may be of any size
        return hashlib.file_digest(f, "sha256").hexdigest()


def _checksum_status(spec: DatasetSpec, part: str, path: Path, payload_sha: str) -> str:
    """'match', 'differs' or 'unknown' against the official files."""
    ref = spec.files[part]
    if ref.sha256 is not None:
        return "match" if payload_sha == ref.sha256 else "differs"
    # No trusted payload checksum: the mirrors' archive checksum may still identify it.
    if path.suffix == ".gz" and _archive_sha256(path) == ref.archive_sha256:
        return "match"
    return "unknown"


@dataclass(frozen=True)
class Dataset:
    """One MNIST-family dataset in memory: uint8 images N×28×28 and uint8 labels."""

    name: str
    classes: tuple[str, ...]
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    checksums: dict[str, str]  # part -> 'match' | 'differs' | 'unknown'

    @property
    def title(self) -> str:
        """The dataset's full name and who made it, as its registry entry gives them."""
        return get_spec(self.name).title

    @property
    def official(self) -> bool:
        return all(status == "match" for status in self.checksums.values())

    @property
    def checksum_summary(self) -> str:
        statuses = set(self.checksums.values())
        if statuses == {"match"}:
            return "official files (checksums match)"
        if "differs" in statuses:
            differing = [p for p, s in self.checksums.items() if s == "differs"]
            return f"custom or reduced set: {', '.join(differing)} differ from the official files"
        return "no reference checksum for some files: " + ", ".join(
            f"{p}={s}" for p, s in self.checksums.items()
        )

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, train={self.x_train.shape}, test={self.x_test.shape}, "
                f"classes={list(self.classes)}, source={self.source!r})")

    def _repr_html_(self) -> str:
        """A card: the sizes, where the files came from, and the first training image of each class."""
        from .. import html

        counts = [np.bincount(y, minlength=len(self.classes)) for y in (self.y_train, self.y_test)]
        rows = [[f"{k} {name}", int(counts[0][k]), int(counts[1][k])] for k, name in enumerate(self.classes)]
        firsts = [np.flatnonzero(self.y_train == k)[:1] for k in range(len(self.classes))]
        blank = np.zeros((IMAGE_SIDE, IMAGE_SIDE), np.uint8)
        strip = np.hstack([self.x_train[i[0]] if len(i) else blank for i in firsts])
        image = (f'<img src="{html.png_data_uri(255 - strip)}" height="56" style="image-rendering:pixelated" '
                 f'title="the first training image of each class">')
        return html.card(f"{self.name}: {len(self.y_train):,} training and {len(self.y_test):,} test images, "
                         f"28×28", image, html.table(["class", "train", "test"], rows),
                         f"{html.escape(self.source)}<br>{html.escape(self.checksum_summary)}")

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """The images and labels of split ``name``, "train" or "test"."""
        if name not in SPLITS:
            raise ParameterError("split", f"must be one of {', '.join(SPLITS)}, got {name!r}")
        return (self.x_train, self.y_train) if name == "train" else (self.x_test, self.y_test)

    def subset(self, n: int | None = None, per_class: int | None = None,
               seed: int = 0, split: str = "train", parameter: str = "n") -> Dataset:
        """A reproducible, stratified subset of one split (the other is kept); a size that cannot be drawn
        is a ``ParameterError`` of ``parameter``, the caller's name for ``n``."""
        x, y = self.split(split)
        idx = preprocess.subset_indices(y, n=n, per_class=per_class, seed=seed, parameter=parameter,
                                        names=self.classes)
        if split == "train":
            return replace(self, x_train=x[idx], y_train=y[idx])
        return replace(self, x_test=x[idx], y_test=y[idx])

    def resplit(self, test_fraction: float, seed: int = 0) -> Dataset:
        """Train and test pooled, then split again (stratified), as tutorials with one pool do."""
        x = np.concatenate([self.x_train, self.x_test])
        y = np.concatenate([self.y_train, self.y_test])
        x_train, x_test, y_train, y_test = preprocess.held_out(x, y, test_fraction, seed, "test_fraction",
                                                               self.classes)
        return replace(self, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)

    def filter_classes(self, keep: list[int] | tuple[int, ...]) -> Dataset:
        """Only the classes ``keep``, relabelled 0..k-1 in the given order."""
        keep = preprocess.check_classes(keep, len(self.classes))
        x_train, y_train = preprocess.filter_classes(self.x_train, self.y_train, keep)
        x_test, y_test = preprocess.filter_classes(self.x_test, self.y_test, keep)
        kept = replace(self, classes=tuple(self.classes[k] for k in keep),
                       x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
        if missing := kept.untaught_classes():
            raise ParameterError("classes", f"no training images of class {keep[missing[0]]} "
                                            f"({kept.classes[missing[0]]}) in {self.source}")
        if len(y_test) == 0:
            raise ParameterError("classes", f"no test images of classes {list(keep)} in {self.source}")
        return kept

    def untaught_classes(self) -> list[int]:
        """The classes without a training image: a model cannot learn a class it never sees."""
        return np.flatnonzero(np.bincount(self.y_train, minlength=len(self.classes)) == 0).tolist()


def _sampled_sha256(path: Path) -> str:
    """SHA-256 of the file's first and last SAMPLE_BYTES and SAMPLE_BLOCKS blocks spread between them.

    A gzip file's last bytes hold the CRC-32 and length of all it decompresses to, so no change to
    what it decodes to goes unseen; a plain file is sampled. Hashing all of the four Fashion-MNIST
    .gz files (30 MB) costs 20 ms with SHA instructions, several times that without; this, under 1 ms.
    """
    with path.open("rb") as f:
        return _sampled_record(f.fileno())["sha256"]


def _sampled_record(fd: int) -> dict[str, int | str]:
    """The size of the open file ``fd`` and its sampled SHA-256 (``_sampled_sha256``'s): a file up to
    2 × SAMPLE_BYTES (a label file of 10,128 or 60,128 bytes) is hashed whole."""
    digest = hashlib.sha256()
    size = os.fstat(fd).st_size
    if size <= 2 * SAMPLE_BYTES:
        spans = [(0, size)]
    else:
        step = (size - 2 * SAMPLE_BYTES) // (SAMPLE_BLOCKS + 1)
        spans = [(0, SAMPLE_BYTES), (size - SAMPLE_BYTES, SAMPLE_BYTES)]
        spans += [(SAMPLE_BYTES + i * step, BLOCK_BYTES) for i in range(1, SAMPLE_BLOCKS + 1)]
    for offset, length in spans:
        digest.update(os.pread(fd, length, offset))
    return {"size": size, "sha256": digest.hexdigest()}


def _cache_key(spec: DatasetSpec, files: dict[str, Path]) -> str:
    """Keyed on the files' content (sampled) as well as their size, mtime and ctime: a file rewritten
    with size and mtime kept, as ``cp -p`` or an unpacked archive may leave it, is decoded again; and on
    the official checksums the cached status was judged against (a release may add or correct one)."""
    h = hashlib.sha256(str(CACHE_FORMAT).encode())
    h.update(json.dumps([spec.files[part].sha256 for part in PARTS]).encode())
    for part in PARTS:
        path = files[part]
        try:
            st = path.stat()
            content = _sampled_sha256(path)
        except OSError as exc:
            raise DatasetError(f"{shown_path(path)}: cannot read ({exc.strerror or exc})") from None
        # ctime: a write changes it, whatever mtime is set back to (no sample needs to catch the change)
        # os.fsencode: a folder's name need not be UTF-8 (its bytes come back as surrogates)
        h.update(os.fsencode(path.resolve()) + f"|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}|{content}\n".encode())
    return h.hexdigest()[:20]


def _decode(spec: DatasetSpec, files: dict[str, Path]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    def decode_part(part: str) -> tuple[np.ndarray, str]:
        array, payload_sha = read_idx(files[part], ndim=3 if part.endswith("images") else 1)
        if other := _official_elsewhere(spec, part, payload_sha):  # its labels would name the wrong classes
            raise DatasetError(f"{files[part]}: this is {other}'s official {part.replace('_', ' ')}, not "
                               f"{spec.name}'s (data_dir (--data-dir) or {DATA_DIR_ENV} meant for {other}?)")
        return array, _checksum_status(spec, part, files[part], payload_sha)

    # zlib and hashlib release the GIL: the four files decode in parallel.
    with ThreadPoolExecutor(max_workers=len(PARTS)) as pool:
        decoded = dict(zip(PARTS, pool.map(decode_part, PARTS)))
    arrays = {part: array for part, (array, _) in decoded.items()}
    status = {part: state for part, (_, state) in decoded.items()}
    _check_splits(spec, files, arrays)
    return arrays, status


def _copy_on_write(path: Path, record: dict | None) -> np.ndarray:
    """The array of the .npy file ``path``, mapped copy-on-write: writable, as keras.datasets' arrays (y[y == 9] = 0
    and torch.from_numpy had met "read-only"), a page copied only when written, the file never changed. A plain
    ndarray, not np.load's memmap (mmap_mode "c"): joblib hands a memmap to its workers by its file's name, and
    they read the file, not the edits (scikit-learn with n_jobs=2 scored the unedited images in silence).
    A ValueError where the file is not the one written (``record``: its size and sampled SHA-256, as
    ``_sampled_record`` gave them then; None, unchecked): read from the file mapped, not from its name, which a
    rebuild may swap."""
    with path.open("rb") as f:
        if record is not None and _sampled_record(f.fileno()) != record:
            raise ValueError(f"{path}: not the file cached")  # damaged or edited: rebuilt
        version = np.lib.format.read_magic(f)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in read_header:
            raise ValueError(f"{path}: .npy version {version}")  # not what np.save writes here: rebuilt
        shape, fortran_order, dtype = read_header[version](f)
        if dtype.hasobject:
            raise ValueError(f"{path}: objects")
        pages = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
        count = math.prod(shape)
        return np.frombuffer(pages, dtype=dtype, count=count, offset=f.tell()).reshape(
            shape, order="F" if fortran_order else "C")


def _check_splits(spec: DatasetSpec, files: dict[str, Path], arrays: dict[str, np.ndarray]) -> None:
    """Each split: uint8 images of 28×28 and as many labels, in range, not empty."""
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        where = f"{files[f'{split}_images'].parent} ({split})"
        if images.ndim != 3 or labels.ndim != 1:
            raise DatasetError(f"{where}: images must be N×28×28 and labels N, got {images.shape} and {labels.shape}")
        check_pair(images, labels, len(spec.classes), where)
        if len(images) == 0:
            raise DatasetError(f"{files[f'{split}_images']}: holds no images (an empty {split} split)")
        if images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
            raise DatasetError(f"{files[f'{split}_images']}: images are {images.shape[1:]}, "
                               f"expected {IMAGE_SIDE}×{IMAGE_SIDE}")


def _load_decoded(spec: DatasetSpec, files: dict[str, Path]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Arrays from the decoded cache, or decoded now and cached for next time."""
    try:
        decoded = cache_root() / "decoded"
    except DatasetError:  # no folder for it: decoded each time, as caching is an optimisation
        return _decode(spec, files)
    folder = decoded / f"{spec.name}-{_cache_key(spec, files)}"
    meta_path = folder / "meta.json"
    try:  # an unreadable cache (is_file raises on EACCES) is decoded again, like a damaged one
        if meta_path.is_file():
            meta = json.loads(meta_path.read_text())
            status = meta["checksums"]
            # each file as written, else rebuilt: the checks below pass a test_labels.npy edited or damaged in
            # place, and its labels were used while the checksums said "match". A sampled digest (every byte of
            # the label files, 192 KB of each image file's 7.8 or 47 MB, and the size): 0.3 ms of a warm
            # Fashion-MNIST load's 1 ms, where hashing all 55 MB took 100 ms; an image edited in place between the
            # samples goes unseen. A cache written before had no record ("files"): used as it was, as rebuilding
            # one that cannot be written (another user's, a read-only one) decoded it again at every load (0.4 s)
            records = meta.get("files")
            arrays = {p: _copy_on_write(folder / f"{p}.npy", None if records is None else records[p]) for p in PARTS}
            if isinstance(status, dict) and set(status) == set(PARTS) and all(isinstance(v, str)
                                                                                for v in status.values()):
                _check_splits(spec, files, arrays)  # what decoding checked, the cache must still hold
                return arrays, status
    except (OSError, ValueError, KeyError, TypeError, EOFError, DatasetError):  # EOFError: an emptied .npy
        pass  # a damaged cache is rebuilt below
    arrays, status = _decode(spec, files)
    source = {p: str(f.resolve()) for p, f in files.items()}  # one folder's files, however it was named
    try:
        sweep_staging(decoded)  # what a process killed while writing the cache left
        with atomic_directory(folder) as staging:
            records = {}
            for part in PARTS:
                np.save(staging / f"{part}.npy", arrays[part])
                with (staging / f"{part}.npy").open("rb") as f:
                    records[part] = _sampled_record(f.fileno())
            (staging / "meta.json").write_text(json.dumps({"checksums": status, "source": source, "files": records}))
        _remove_superseded(decoded, spec, folder, source)
    except OSError:
        pass  # caching is an optimisation, not a requirement
    return arrays, status


def _why_not_a_folder(path: Path) -> str:
    try:
        path.stat()
    except FileNotFoundError:
        return "no such folder"
    except OSError as exc:  # a loop of symbolic links, say: no "such folder" to speak of
        return exc.strerror or str(exc)
    return "not a folder"


def _gone(path: str) -> bool:
    """Whether nothing is at ``path``; an OSError where that cannot be told (a folder on the way that cannot be
    looked in), which Path.exists in newer Pythons (3.14) takes for "gone"."""
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return True
    return False


def _remove_superseded(decoded: Path, spec: DatasetSpec, folder: Path, source: dict[str, str]) -> None:
    """Remove the cached copies of the same files that ``folder`` replaces (written before the files were
    touched, copied over, or by an older cache format), and those of files that are gone (a folder loaded
    once, then deleted): each is a whole decoded dataset, which no load would use again."""
    for other in decoded.glob(f"{spec.name}-*"):
        try:
            cached = json.loads((other / "meta.json").read_text())["source"]
            superseded = other != folder and (cached == source or any(map(_gone, cached.values())))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):  # AttributeError: a source of no dict
            continue  # another process's, half-read, or not ours: left alone
        if superseded:
            shutil.rmtree(other, ignore_errors=True)  # a reader that mapped its arrays keeps them until it is done


def locate(name: str = DEFAULT_DATASET, data_dir: str | Path | None = None,
           download: bool = True, progress: FitProgress = SILENT) -> dict[str, Path]:
    """Paths of the four IDX files, searched in the documented order (a download reports to ``progress``)."""
    spec = get_spec(name)
    explicit = data_dir_from_env(name) if data_dir is None else path_text("data_dir", data_dir)
    if explicit:
        directory = _expanded(explicit)  # said and recorded (a run's source) as a full path
        files = find_files(spec, directory)
        if files is None:
            if not directory.is_dir():
                raise DatasetError(f"{shown_path(directory)}: {_why_not_a_folder(directory)}")
            missing = [f.name + "[.gz]" for f in spec.files.values()
                       if not any((directory / name).is_file() for name in (f.name, f.name + ".gz"))]
            raise DatasetError(f"{shown_path(directory)}: does not hold {spec.name}'s four IDX files; missing (as "
                               f"files): {', '.join(missing)}")
        return files
    looked, passed = [*map(Path, spec.system_dirs)], []  # passed: a place searched by default that cannot be used…
    try:
        looked.insert(0, cache_root() / spec.name)
    except DatasetError as exc:  # no home folder: the system folders may hold the files still
        passed.append(str(exc))
    for directory in looked:
        try:
            files = find_files(spec, directory)
        except DatasetError as exc:  # …(a file both packed and unpacked there) is said, and does not stop the
            # search: a later place may hold the files intact
            passed.append(str(exc))
            continue
        if files is not None:
            for problem in passed:
                warn(f"{problem}; loading {shown_path(directory)} instead")
            return files
    reason = "".join(f"; {problem}" for problem in passed)
    if download:
        try:
            return download_dataset(name, progress)
        except DatasetError as exc:
            reason += "; download failed" + ("" if str(exc) in passed else f": {exc}")  # the cache's fault: said
    hint = f"`apt-get install {spec.apt_package}` (Debian/Ubuntu), or " if spec.apt_package else ""
    if data_dir is None and os.environ.get(DATA_DIR_ENV):  # set, and passed over: said, or it seems unread
        reason += f"; {DATA_DIR_ENV} ({os.environ[DATA_DIR_ENV]}) holds another dataset's files"
    raise NotFound(
        f"{name} not found (looked in {', '.join(map(str, looked)) or 'no folder'}{reason}). "
        f"Get it with {hint}`mnistlab data download --dataset {name}` on a machine with internet, "
        "or point data_dir (`--data-dir` on the command line) or MNISTLAB_DATA_DIR at a folder holding the "
        "four IDX files."
    )


def download_dataset(name: str, progress: FitProgress = SILENT) -> dict[str, Path]:
    """Fetch the official files into the user cache (files already there are kept), reporting to ``progress``."""
    spec = get_spec(name)
    target = cache_root() / spec.name
    # all checked before any is fetched: a refusal after a 26 MB download would waste it
    files = {part: _unpacked_copy(spec, part, target) for part in PARTS if (target / spec.files[part].name).is_file()}
    for part in (p for p in PARTS if p not in files):
        ref = spec.files[part]
        existing = target / f"{ref.name}.gz"
        if existing.is_file() and _archive_sha256(existing) == ref.archive_sha256:
            files[part] = existing
        else:
            files[part] = fetch_verified(f"{ref.name}.gz", _mirrors(spec), target,
                                         ref.archive_sha256, progress=progress)
    return files


def _unpacked_copy(spec: DatasetSpec, part: str, target: Path) -> Path:
    """``part`` unpacked in the download's folder (a ``gunzip`` there), kept where it is the official file. A .gz
    fetched beside it would leave two copies, which no load takes (``find_files``): refused before, not after."""
    name = spec.files[part].name
    if (target / f"{name}.gz").is_file():
        raise _two_copies(target, name)
    plain, official = target / name, spec.files[part].sha256
    if official is None:  # only the .gz's checksum is known: the unpacked bytes cannot be checked
        why = "no official checksum of the unpacked file to check it by"
    elif read_idx(plain, ndim=3 if part.endswith("images") else 1)[1] != official:
        why = "not the official file (its checksum differs)"
    else:
        return plain
    raise DatasetError(f"{plain}: unpacked, and {why}; a download would put {name}.gz beside it: remove it, then "
                       "download again")


def content_key(name: str = DEFAULT_DATASET, data_dir: str | Path | None = None) -> str:
    """What tells the data ``load_dataset(name, data_dir)`` loads now from other data: its files' content
    (sampled), sizes and times, as its decoded cache is keyed (a few milliseconds; downloads where it must)."""
    return _cache_key(get_spec(name), locate(name, data_dir))


def load_dataset(name: str = DEFAULT_DATASET, data_dir: str | Path | None = None,
                 download: bool = True, progress: FitProgress = SILENT) -> Dataset:
    """Load a dataset like ``keras.datasets``: ``x_train`` (uint8 N×28×28), ``y_train``, …

    The arrays are writable, as keras's are, and each load's are its own: from the decoded cache, they are
    copy-on-write maps of its files (``_copy_on_write``: plain arrays, not np.memmap), which an edit never
    reaches (only the pages written take memory).

    >>> ds = load_dataset("fashion-mnist")
    >>> ds.x_train.shape, ds.classes[0]
    ((60000, 28, 28), 'T-shirt/top')
    """
    spec = get_spec(name)
    files = locate(name, data_dir, download, progress)
    arrays, status = _load_decoded(spec, files)
    return Dataset(
        name=spec.name, classes=spec.classes,
        x_train=arrays["train_images"], y_train=arrays["train_labels"],
        x_test=arrays["test_images"], y_test=arrays["test_labels"],
        source=str(files["train_images"].parent), checksums=status,
    )
