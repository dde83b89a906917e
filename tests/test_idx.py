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
    array[0] = 0  # writable, as the dataset it becomes (a first load, or one without a cache, had been read-only)


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


def header(code: int, *dims: int) -> bytes:
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def peak_python_bytes(fn) -> int:
    """The most memory Python allocated while ``fn`` ran (bytearrays and NumPy buffers count)."""
    import tracemalloc

    tracemalloc.start()
    try:
        try:
            fn()
        except DatasetError:
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("compress", [False, True])
def test_dims_whose_product_overflows_64_bits_name_the_file(tmp_path, compress):
    data = header(0x08, 4194304, 2097152, 2097152)  # 2**64 bytes: wraps an int64 product to 0
    path = tmp_path / "overflow"
    path.write_bytes(gzip.compress(data) if compress else data)
    with pytest.raises(DatasetError, match="more than the limit") as info:
        read_idx(path, ndim=3)
    assert str(path) in str(info.value)


def test_an_empty_array_of_impossible_size_is_refused(tmp_path):
    path = tmp_path / "empty"
    path.write_bytes(header(0x08, 0, 2**32 - 1, 2**32 - 1))  # no payload, but NumPy cannot shape one
    with pytest.raises(DatasetError, match="were it not empty, more than the limit"):
        read_idx(path, ndim=3)


def test_a_gzip_bomb_is_refused_from_its_header_before_inflating(tmp_path):
    # 2,000,000 images claimed: 1.5 GB; the file is the header and 64 MB of zeros (64 KB compressed).
    path = tmp_path / "bomb.gz"
    path.write_bytes(gzip.compress(header(0x08, 2_000_000, 28, 28) + bytes(64 * 2**20), compresslevel=1))
    assert path.stat().st_size < 2**20
    with pytest.raises(DatasetError, match="more than the limit"):
        read_idx(path, ndim=3)
    assert peak_python_bytes(lambda: read_idx(path, ndim=3)) < 2**20


def test_a_gzip_holding_more_than_its_header_claims_is_inflated_only_past_the_claim(tmp_path):
    path = tmp_path / "more.gz"
    path.write_bytes(gzip.compress(idx_bytes(IMAGES) + bytes(64 * 2**20), compresslevel=1))
    with pytest.raises(DatasetError, match="trailing bytes"):
        read_idx(path, ndim=3)
    assert peak_python_bytes(lambda: read_idx(path, ndim=3)) < 4 * 2**20


def test_a_plain_file_shorter_than_its_claim_is_refused_before_reading(tmp_path):
    path = tmp_path / "short"
    path.write_bytes(header(0x08, 100_000, 28, 28) + bytes(16 * 2**20))
    with pytest.raises(DatasetError, match="truncated: header .* needs 78400000 payload bytes, file has 16777216"):
        read_idx(path, ndim=3)
    assert peak_python_bytes(lambda: read_idx(path, ndim=3)) < 2**20


def test_too_many_dimensions(tmp_path):
    path = tmp_path / "dims"
    path.write_bytes(header(0x08, *[1] * 70) + b"\x00")
    with pytest.raises(DatasetError, match="70 dimensions"):
        read_idx(path)


def test_gzip_layers_and_members(tmp_path):
    path = tmp_path / "twice.gz"
    path.write_bytes(gzip.compress(gzip.compress(idx_bytes(LABELS))))  # gzip inside gzip is not IDX
    with pytest.raises(DatasetError, match="not an IDX file"):
        read_idx(path)
    data = idx_bytes(LABELS)
    path.write_bytes(gzip.compress(data[:5]) + gzip.compress(data[5:]))  # concatenated members, as gzip allows
    assert read_idx(path, ndim=1)[0].tolist() == LABELS.tolist()
