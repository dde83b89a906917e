"""Reading IDX files (the MNIST format), plain or gzip-compressed.

Layout: two zero bytes, a dtype code, the number of dimensions, then one
big-endian uint32 per dimension, then the row-major payload. Every check
failure raises ``DatasetError`` naming the file and what is wrong.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from pathlib import Path

import numpy as np

from ..errors import DatasetError

# IDX dtype codes; multi-byte types are big-endian on disk.
_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_bytes(path: Path) -> bytes:
    """The file's content, decompressed when it is gzip (by magic, not name)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"{path}: corrupt gzip data ({exc})") from None


def parse_idx(data: bytes, path: Path | str, ndim: int | None = None) -> np.ndarray:
    """Decode one IDX payload; ``ndim`` (3 images, 1 labels) is checked when given."""
    if len(data) == 0:
        raise DatasetError(f"{path}: empty file")
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DatasetError(f"{path}: not an IDX file (bad magic number {data[:4].hex()})")
    code, dims_count = data[2], data[3]
    if code not in _DTYPES:
        raise DatasetError(f"{path}: unknown IDX dtype code 0x{code:02x}")
    if ndim is not None and dims_count != ndim:
        raise DatasetError(f"{path}: expected {ndim} dimension(s), header says {dims_count}")
    header_len = 4 + 4 * dims_count
    if len(data) < header_len:
        raise DatasetError(f"{path}: truncated header")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", dims_count, offset=4))
    dtype = _DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header_len
    if actual != expected:
        what = "truncated" if actual < expected else "trailing bytes after payload"
        raise DatasetError(
            f"{path}: {what}: header {shape} needs {expected} payload bytes, file has {actual}"
        )
    return np.frombuffer(data, dtype, offset=header_len).reshape(shape)


def read_idx(path: Path, ndim: int | None = None) -> tuple[np.ndarray, str]:
    """Array and SHA-256 of the decompressed payload of one IDX file."""
    data = read_bytes(path)
    return parse_idx(data, path, ndim), hashlib.sha256(data).hexdigest()


def check_pair(images: np.ndarray, labels: np.ndarray, n_classes: int, where: str) -> None:
    """Images and labels of one split must agree with each other and the class list."""
    if images.dtype != np.uint8 or labels.dtype != np.uint8:
        raise DatasetError(f"{where}: expected uint8 images and labels, got {images.dtype}/{labels.dtype}")
    if len(images) != len(labels):
        raise DatasetError(f"{where}: {len(images)} images but {len(labels)} labels")
    if len(labels) and int(labels.max()) >= n_classes:
        raise DatasetError(
            f"{where}: label {int(labels.max())} out of range for {n_classes} classes"
        )
