"""The IDX reader rejects every malformed file with one DatasetError naming it."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from mnistlab.errors import DatasetError

from mnistlab.data.idx import check_pair, read_idx


def idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


IMAGES = np.arange(3 * 28 * 28, dtype=np.uint64).astype(np.uint8).reshape(3, 28, 28)
LABELS = np.array([0, 9, 4], dtype=np.uint8)


@pytest.mark.parametrize("compress", [False, True])
def test_reads_plain_and_gzip(tmp_path, compress):
    data = idx_bytes(IMAGES)
    path = tmp_path / ("x.gz" if compress else "x")
    path.write_bytes(gzip.compress(data) if compress else data)
    array, sha = read_idx(path, ndim=3)
    assert np.array_equal(array, IMAGES)
    assert len(sha) == 64


def test_reads_big_endian_int32(tmp_path):
    values = np.array([1, -2, 70000], dtype=">i4")
    (tmp_path / "v").write_bytes(idx_bytes(values, code=0x0C))
    array, _ = read_idx(tmp_path / "v", ndim=1)
    assert array.tolist() == [1, -2, 70000]


MALFORMED = {  # case: (file content, expected rank, message fragment)
    "empty file": (b"", 1, "empty file"),
    "wrong magic": (b"\x12\x34" + idx_bytes(LABELS)[2:], 1, "bad magic"),
    "unknown dtype": (bytes([0, 0, 0x07, 1]) + struct.pack(">I", 3) + bytes(3), 1, "dtype code"),
    "truncated payload": (idx_bytes(IMAGES)[:-10], 3, "truncated"),
    "truncated header": (bytes([0, 0, 8, 3, 0, 0]), 3, "truncated header"),
    "trailing bytes": (idx_bytes(LABELS) + b"xx", 1, "trailing bytes"),
    "wrong rank": (idx_bytes(LABELS.reshape(3, 1)), 1, "dimension"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_files_raise_dataset_error(tmp_path, case):
    data, ndim, expected = MALFORMED[case]
    path = tmp_path / "bad-file"
    path.write_bytes(data)
    with pytest.raises(DatasetError, match=expected) as info:
        read_idx(path, ndim=ndim)
    assert str(path) in str(info.value)


def test_corrupt_gzip(tmp_path):
    good = gzip.compress(idx_bytes(IMAGES))
    path = tmp_path / "x.gz"
    path.write_bytes(good[:20] + bytes(len(good) - 20))  # keeps the gzip magic, kills the stream
    with pytest.raises(DatasetError, match="corrupt gzip"):
        read_idx(path)
    path.write_bytes(good[: len(good) // 2])  # truncated gzip
    with pytest.raises(DatasetError, match="corrupt gzip"):
        read_idx(path)


def test_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="cannot read"):
        read_idx(tmp_path / "nope")


def test_pair_checks():
    check_pair(IMAGES, LABELS, 10, "ok")
    with pytest.raises(DatasetError, match="3 images but 2 labels"):
        check_pair(IMAGES, LABELS[:2], 10, "split")
    with pytest.raises(DatasetError, match="label 9 out of range for 5 classes"):
        check_pair(IMAGES, LABELS, 5, "split")
