"""Reading IDX files (the MNIST format), plain or gzip-compressed.

Layout: two zero bytes, a dtype code, the number of dimensions, then one
big-endian uint32 per dimension, then the row-major payload. Every check
failure raises ``DatasetError`` naming the file and what is wrong.

Memory is bounded by the header, not by the file: the payload size the
header claims is checked against ``MAX_PAYLOAD_BYTES`` (and, for a plain
file, against the file's size) before anything is allocated, and a gzip
file is inflated a chunk at a time, never past the claim and one byte.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import struct
import zlib
from pathlib import Path
from typing import NoReturn

import numpy as np

from ..errors import DatasetError, one_line, shown_path

# IDX dtype codes; multi-byte types are big-endian on disk.
_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"
# Four times the largest official file (60000 images of 28×28: 45 MiB); room for
# EMNIST-sized custom sets, and a bound on what a lying header can make us hold.
MAX_PAYLOAD_BYTES = 192 * 2**20
MAX_DIMS = 16  # IDX files have 1 to 3; NumPy allows no more than 64
CHUNK = 1 << 20


def _read_up_to(stream, n: int) -> bytearray:
    """At most ``n`` bytes of ``stream``, fewer at its end; grown a chunk at a time, so a
    claim the data does not back is never allocated."""
    data = bytearray()
    while len(data) < n:
        chunk = stream.read(min(CHUNK, n - len(data)))
        if not chunk:
            break
        data += chunk
    return data


def _read_header(stream, path: Path, ndim: int | None) -> tuple[bytes, np.dtype, tuple[int, ...]]:
    """The header's bytes, dtype and shape, checked."""
    magic = bytes(_read_up_to(stream, 4))
    if not magic:
        raise DatasetError(f"{shown_path(path)}: empty file")
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0:
        raise DatasetError(f"{shown_path(path)}: not an IDX file (bad magic number {magic.hex()})")
    code, dims_count = magic[2], magic[3]
    if code not in _DTYPES:
        raise DatasetError(f"{shown_path(path)}: unknown IDX dtype code 0x{code:02x}")
    if ndim is not None and dims_count != ndim:
        raise DatasetError(f"{shown_path(path)}: expected {ndim} dimension(s), header says {dims_count}")
    if dims_count > MAX_DIMS:
        raise DatasetError(f"{shown_path(path)}: header says {dims_count} dimensions, more than the {MAX_DIMS} allowed")
    dims = bytes(_read_up_to(stream, 4 * dims_count))
    if len(dims) < 4 * dims_count:
        raise DatasetError(f"{shown_path(path)}: truncated header")
    return magic + dims, _DTYPES[code], struct.unpack(f">{dims_count}I", dims)


def read_idx(path: Path, ndim: int | None = None) -> tuple[np.ndarray, str]:
    """Array (writable: its own buffer, as a dataset's arrays are) and SHA-256 of the decompressed content of one
    IDX file.

    Gzip is recognised by its magic bytes, not the name; ``ndim`` (3 images,
    1 labels) is checked when given.
    """
    try:
        with open(path, "rb") as raw:
            compressed = raw.read(2) == GZIP_MAGIC
            raw.seek(0)
            stream = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
            header, dtype, shape = _read_header(stream, path, ndim)
            # Python ints: a product of uint32 dimensions can overflow any fixed-width type. NumPy
            # refuses a shape whose nonzero dimensions overflow even when another is 0: so do we.
            expected = math.prod(shape) * dtype.itemsize
            nominal = math.prod(d for d in shape if d) * dtype.itemsize
            if nominal > MAX_PAYLOAD_BYTES:
                raise DatasetError(f"{shown_path(path)}: header claims {shape}, {nominal} bytes"
                                   f"{' were it not empty' if not expected else ''}, more than the limit of "
                                   f"{MAX_PAYLOAD_BYTES}")
            if not compressed:  # the file's size tells before reading whether the claim holds
                actual = os.fstat(raw.fileno()).st_size - len(header)
                if actual != expected:
                    _size_mismatch(path, shape, expected, actual)
            payload = _read_up_to(stream, expected + 1)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DatasetError(f"{shown_path(path)}: corrupt gzip data ({one_line(exc)})") from None
    except OSError as exc:
        raise DatasetError(f"{shown_path(path)}: cannot read ({exc.strerror or exc})") from None
    if len(payload) != expected:  # for gzip, found while inflating: one byte past the claim is enough to tell
        _size_mismatch(path, shape, expected, len(payload), exact=not compressed)
    array = np.frombuffer(payload, dtype).reshape(shape)  # of the bytearray read: writable, and no copy
    digest = hashlib.sha256(header)
    digest.update(payload)
    return array, digest.hexdigest()


def _size_mismatch(path: Path, shape: tuple[int, ...], expected: int, actual: int, exact: bool = True) -> NoReturn:
    if actual < expected:
        raise DatasetError(f"{shown_path(path)}: truncated: header {shape} needs {expected} payload bytes, file has "
                           f"{actual}")
    raise DatasetError(f"{shown_path(path)}: trailing bytes after payload: header {shape} needs {expected} payload "
                       f"bytes, file has {actual if exact else 'more'}")


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
