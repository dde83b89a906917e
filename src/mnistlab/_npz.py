"""Reading ``.npz`` archives with memory bounded by design, and never a pickle.

``np.load`` trusts the archive: a member's header may declare 10^13 elements
(allocated before a byte is read) and a 1 MB deflated member may inflate to
gigabytes. Here every member's header is read and checked first — against what
the caller expects, against the size the zip directory records, and against a
total cap — so nothing is allocated that the checks have not bounded.
"""

from __future__ import annotations

import math
import struct
import tokenize
import zipfile
import zlib
from pathlib import Path
from typing import NoReturn

import numpy as np

from .errors import one_line, shown_path

# What np.savez writes: stored members (np.savez) or deflated ones (np.savez_compressed).
_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
_MAX_HEADER = 10_000  # NumPy's own default limit on an .npy header
_KINDS = "biufcU"  # numbers, booleans and fixed-width text: nothing that can hold an object
# zipfile builds an object per entry of the central directory, however many it lists:
# its size is checked first. A model's few dozen arrays take a few kilobytes.
MAX_DIRECTORY_BYTES = 1 << 20
_END = struct.Struct("<4s4H2LH")  # end of central directory: signature, 4 counts, size, offset, comment length


def plain_dtype(dtype: np.dtype) -> bool:
    """Whether ``read_npz`` reads arrays of ``dtype``: no Python objects (a pickle), no records."""
    return not dtype.hasobject and dtype.fields is None and dtype.kind in _KINDS


def _directory_size(f) -> int:
    """The size of the zip's central directory as its end record says; zip64 archives (which
    NumPy writes only past 4 GB or 65535 arrays) are refused, as their record can say more."""
    size = f.seek(0, 2)
    start = max(0, size - _END.size - 65535)  # the record ends the file, followed by a comment of ≤ 64 KB
    f.seek(start)
    tail = f.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < _END.size:
        raise zipfile.BadZipFile("no end of central directory record")
    if tail[max(0, at - 20):at].startswith(b"PK\x06\x07"):
        raise zipfile.BadZipFile("a zip64 archive")
    return _END.unpack_from(tail, at)[5]


def npy_header(fp) -> tuple[int, tuple[int, ...], np.dtype]:
    """The length, shape and dtype that an .npy member's header declares (fp at its start); any dtype
    NumPy can describe, records too (as scikit-learn's trees are saved)."""
    version = np.lib.format.read_magic(fp)
    if version not in ((1, 0), (2, 0)):
        raise ValueError(f"unsupported .npy version {version[0]}.{version[1]}")
    # The header's length is checked before NumPy reads that many bytes.
    length_format = "<H" if version == (1, 0) else "<I"
    raw = fp.read(struct.calcsize(length_format))
    if len(raw) < struct.calcsize(length_format):
        raise ValueError("truncated header")
    if struct.unpack(length_format, raw)[0] > _MAX_HEADER:
        raise ValueError(f"header longer than {_MAX_HEADER} bytes")
    fp.seek(0)
    np.lib.format.read_magic(fp)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = read(fp)
    if any(d < 0 for d in shape):
        raise ValueError(f"negative dimension in shape {shape}")
    return fp.tell(), shape, dtype


def read_npz(path: Path, expected: dict[str, tuple[str, list[int]] | None], max_bytes: int,
             error: type[Exception], max_inflation: float | None = None) -> dict[str, np.ndarray]:
    """The arrays of the archive at ``path``: exactly those named in ``expected``.

    ``expected`` maps each name to (dtype string, shape) when those are known, else None.
    The arrays may take ``max_bytes`` in all, and, given ``max_inflation``, no more than that
    many times the archive's size. Every problem raises ``error`` naming the file.
    """
    def fail(problem: str) -> NoReturn:
        raise error(f"{shown_path(path)}: {problem}")

    if Path(path).exists() and not Path(path).is_file():  # a pipe would block the reading, a device never end
        fail("not a regular file")
    try:
        with open(path, "rb") as f:
            directory = _directory_size(f)
            limit = f"the limit of {max_bytes} bytes"
            if max_inflation is not None and max_inflation * f.seek(0, 2) < max_bytes:
                max_bytes = int(max_inflation * f.seek(0, 2))
                limit = f"{max_inflation:g} times the file's size, the most its arrays may take"
        if directory > MAX_DIRECTORY_BYTES:
            fail(f"its zip directory is larger than {MAX_DIRECTORY_BYTES} bytes")
        archive = zipfile.ZipFile(path)
    except error:
        raise
    except FileNotFoundError:
        fail("missing")
    except (OSError, zipfile.BadZipFile, ValueError) as exc:
        fail(f"unreadable, not an .npz archive ({one_line(exc)})")
    with archive:
        members = archive.infolist()
        names = [m.filename.removesuffix(".npy") for m in members]
        if len(set(names)) != len(names) or any(not m.filename.endswith(".npy") for m in members):
            fail("not an .npz archive of arrays (duplicate or foreign members)")
        if set(names) != set(expected):
            fail(f"holds arrays {sorted(names)}, expected {sorted(expected)}")
        arrays, total = {}, 0
        for name, member in zip(names, members):
            if member.flag_bits & 0x1 or member.compress_type not in _METHODS:
                fail(f"array {name!r} is encrypted or compressed in a way NumPy never writes")
            try:
                with archive.open(member) as fp:
                    offset, shape, dtype = npy_header(fp)
                    if not plain_dtype(dtype):
                        raise ValueError(f"dtype {dtype} is not a plain numeric type")
                    nbytes = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
                    if expected[name] is not None and [str(dtype), list(shape)] != list(expected[name]):
                        fail(f"array {name!r} is {dtype} {list(shape)}, expected {expected[name][0]!r} "
                             f"{list(expected[name][1])}")
                    total += nbytes
                    if total > max_bytes:
                        fail(f"arrays take more than {limit}")
                    if member.file_size != offset + nbytes:
                        fail(f"array {name!r}: the archive says {member.file_size} bytes, its header "
                             f"{offset + nbytes}")
                    fp.seek(0)
                    arrays[name] = np.lib.format.read_array(fp, allow_pickle=False)
                    fp.read(1)  # to the member's end, where its CRC is checked
            except error:
                raise
            except (OSError, EOFError, ValueError, SyntaxError, zipfile.BadZipFile, zlib.error,
                    tokenize.TokenError) as exc:
                # NumPy lets two errors of a header through: TokenError from tokenizing an unbalanced one,
                # SyntaxError from parsing a dtype string such as '(,)f8'.
                fail(f"array {name!r} unreadable ({one_line(exc)})")
        return arrays
