"""Plain file I/O at the bottom of the package: atomic writes and JSON.

Nothing here knows about models, runs or plots, so every layer can use it
without importing more than the standard library and NumPy's scalar types.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import json
import math
import os
import shutil
import signal
import stat
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from numbers import Integral
from pathlib import Path
from typing import Any, BinaryIO

from .errors import shown_path, warn


def _umask() -> int:
    mask = os.umask(0o022)  # the only way to read it is to set it
    os.umask(mask)
    return mask


# What open() and mkdir() give new files and folders. tempfile makes them private (0600, 0700), and a rename
# keeps that: runs, reports and exports would be unreadable by anyone else (a web server, a colleague).
FILE_MODE, FOLDER_MODE = 0o666 & ~_umask(), 0o777 & ~_umask()


class FolderInTheWay(NotADirectoryError):
    """A file (or a link to nowhere) where a folder is to be made (``make_folder``): said by its ``strerror``,
    which names it; ``filename`` is the folder asked for, that file or one below it. OSError's own text added
    ``filename`` to it: "[Errno 20] x is a file, not a folder: 'x'" said the one path twice."""

    def __str__(self) -> str:
        return self.strerror


def make_folder(folder: Path) -> None:
    """``folder`` made, with the folders above it, where missing. Where a file stands in the way, the OSError
    names that file: mkdir's own "File exists" or "Not a directory", of the path asked for, did not say which
    (`mnistlab export --output notes.txt/model.onnx` said "cannot write notes.txt/model.onnx (File exists)")."""
    for attempt in range(3):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            return
        except FileNotFoundError:  # a folder above it that mkdir made was removed before ``folder`` was made in it:
            if attempt == 2:  # by another process removing it empty (<out>/checkpoints, store.remove_if_empty)
                raise
        except (FileExistsError, NotADirectoryError):
            # lexists: a link to nowhere is in the way too
            in_the_way = next((p for p in (folder, *folder.parents) if os.path.lexists(p) and not p.is_dir()), None)
            if in_the_way is None:
                raise
            what = "a link to nowhere" if not in_the_way.exists() else "a file"
            raise FolderInTheWay(errno.ENOTDIR, f"{in_the_way} is {what}, not a folder", str(folder)) from None


def check_writable(folder: Path) -> None:
    """An OSError now where no file can be created in ``folder``, or, where it does not exist yet, in the nearest
    folder above it that does (where it would be made): a staged file created, closed and removed."""
    folder = next((p for p in (folder, *folder.parents) if os.path.lexists(p)), folder)
    fd, probe = tempfile.mkstemp(dir=folder, prefix=staging_prefix("probe"), suffix=".tmp")
    os.close(fd)
    os.unlink(probe)


def atomic_write_bytes(path: Path, data: bytes, follow_links: bool = True) -> None:
    """Write ``data`` to ``path`` via a temporary file and a rename (through a symbolic link, to its target;
    with ``follow_links`` False the link itself is replaced: a run folder's own file, where a link planted
    must not lead the write elsewhere).

    Raises OSError for a ``path`` that exists but is no regular file: a rename would replace a device
    (``/dev/null``), a pipe or a folder rather than write to it.
    """
    atomic_write_all({path: data}, follow_links)


def atomic_write_all(files: dict[Path, bytes], follow_links: bool = True) -> None:
    """Write each ``path: data`` of ``files`` as ``atomic_write_bytes`` does, all or none: each is staged
    beside its path, and they replace theirs once every one is written (one by one, a full disk left the
    first of a pair written and the second not). Ctrl-C and SIGTERM wait for the renames (``signals_deferred``):
    one between two renames left save_model's new model.json beside the old model.npz."""
    path = None
    try:
        with contextlib.ExitStack() as staged:
            for target, data in files.items():
                path = _writable(Path(target), follow_links)
                staged_copy = staged.enter_context(staged_file(path))
                staged_copy.write(data)
                staged_copy.flush()  # a full disk is met here, naming its file, before any file is renamed
            with signals_deferred():  # every file's rename: each staged_file's end
                staged.close()
    except OSError as exc:
        if path is not None:
            _name(exc, path)
        raise


_swept: set[str] = set()  # the folders ``_writable`` has swept in this process


def _writable(path: Path, follow_links: bool) -> Path:
    """``path`` as the atomic writes write it, its folder made and swept of what writers killed outright left."""
    path = Path(os.path.realpath(path) if follow_links else os.path.abspath(path))
    if path.exists() and not path.is_file() and not path.is_symlink():
        raise OSError(errno.EEXIST, "it exists and is not a regular file", str(path))
    make_folder(path.parent)
    if str(path.parent) not in _swept:  # once a process, as a folder of many files written one by one
        _swept.add(str(path.parent))    # would be read through for each
        sweep_staging(path.parent)
    return path


def _name(exc: OSError, path: Path) -> None:
    """Have ``exc`` name ``path`` where it names no file: a full disk said no more than "No space left"."""
    if exc.filename is None and exc.errno:
        exc.filename = str(path)


@contextmanager
def staged_file(path: Path) -> Iterator[BinaryIO]:
    """A file to fill, staged beside ``path``; it replaces ``path`` when the block ends without an error.
    Any error (or Ctrl-C) removes it; one left by a process killed outright goes with ``sweep_staging``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=staging_prefix(path.name), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:  # held until renamed: ``sweep_staging`` leaves it alone
            _hold(fd)
            os.fchmod(fd, FILE_MODE)
            yield f
            f.flush()
            os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


STAGING_PREFIX = ".staging-"  # + "<pid>-": whose process is writing it, so leftovers can be swept


def staging_prefix(name: str) -> str:
    return f"{STAGING_PREFIX}{os.getpid()}-{name}-"


def unstaged(path: str | os.PathLike) -> str:
    """``path`` with this process's staging folders and files (``staging_prefix``) named as what they were to
    become: runs/big/report.html, not runs/.staging-18484-big-3pn4nopj/report.html (gone once it failed)."""
    prefix = f"{STAGING_PREFIX}{os.getpid()}-"
    parts = [part[len(prefix):].rsplit("-", 1)[0] if part.startswith(prefix) else part
             for part in Path(os.fsdecode(path)).parts]
    return os.path.join(*parts) if parts else os.fsdecode(path)  # "." has no parts


@contextmanager
def atomic_directory(final: Path, committed: Callable[[], None] | None = None) -> Iterator[Path]:
    """Fill a hidden staging folder beside ``final``; it replaces ``final`` only on success.

    On any error (or Ctrl-C) the staging folder is removed and ``final`` is untouched. An existing
    ``final`` is swapped with the staging folder in one step where the system can (Linux's
    ``renameat2``), so that a reader finds the old folder or the new one whole; elsewhere it is moved
    aside first (``ASIDE_PREFIX``), and put back if the second rename fails, or by ``sweep_staging`` if the
    process is killed between the two. Ctrl-C and SIGTERM wait for the swap, ``committed`` (what must follow
    a commit: removing what the new folder replaces) and the old folder's removal (``signals_deferred``), so
    that none is cut in two. A process killed outright leaves its staging folder behind; ``sweep_staging``
    removes it once the process is gone.
    """
    final = Path(final)
    make_folder(final.parent)
    staging = Path(tempfile.mkdtemp(dir=final.parent, prefix=staging_prefix(final.name)))
    held = os.open(staging, os.O_RDONLY | os.O_DIRECTORY)  # until renamed: ``sweep_staging`` leaves it alone
    try:
        try:
            _hold(held)
            staging.chmod(FOLDER_MODE)
            yield staging
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            _name(exc, final)
            raise
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        with signals_deferred(), contextlib.ExitStack() as aside:
            old = None
            try:
                if final.exists() and _exchange(staging, final):
                    old = staging  # it holds the old folder now
                else:
                    if final.exists():
                        old = aside.enter_context(_aside(final))
                    try:
                        os.replace(staging, final)
                    except BaseException:
                        if old is not None:
                            os.replace(old / final.name, final)
                        raise
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                if old is not None:
                    shutil.rmtree(old, ignore_errors=True)
                raise
            try:
                if committed is not None:
                    committed()
            finally:
                if old is not None:
                    _remove_or_warn(old, f"the old {final}, which the new one replaced")
    finally:
        os.close(held)


@contextmanager
def scratch_folder(parent: Path, name: str) -> Iterator[Path]:
    """A new folder in ``parent`` for this process's own files (``name`` says whose), removed when the block ends.
    Named and held as a staging folder is, so that one a process killed outright left is swept (``sweep_staging``,
    done here first, of what others left) and one in use never is."""
    for attempt in range(3):
        make_folder(parent)
        sweep_staging(parent)
        try:
            folder = Path(tempfile.mkdtemp(dir=parent, prefix=staging_prefix(name)))
            break
        except FileNotFoundError:  # another run that ended meanwhile removed ``parent``, empty (store.remove_if_empty)
            if attempt == 2:
                raise
    held = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        _hold(held)
        folder.chmod(FOLDER_MODE)
        yield folder
    finally:
        try:
            shutil.rmtree(folder, ignore_errors=True)
        finally:
            os.close(held)


def _remove_or_warn(folder: Path, what: str) -> None:
    """Remove ``folder``; where that fails (another user's files, a folder not writable), warn naming it and the
    first error, as ``what`` it is: hidden under its staging name, it was left for good in silence. One walk,
    which goes on past each error as ignore_errors does and keeps the first (a second walk had found it again)."""
    errors: list[OSError] = []

    def note(function, path, error) -> None:  # onexc's error, or onerror's (type, value, traceback) before 3.12
        error = error[1] if isinstance(error, tuple) else error
        if not isinstance(error, FileNotFoundError):  # gone already: nothing left to say
            errors.append(error)

    shutil.rmtree(folder, **({"onexc": note} if sys.version_info >= (3, 12) else {"onerror": note}))
    if errors:
        warn(f"could not remove {folder}, {what} ({errors[0].strerror or errors[0]}); remove it yourself")


ASIDE_PREFIX = ".aside-"  # + "<pid>-": a folder moved aside for its replacement, to be put back if that never came


@contextmanager
def _aside(final: Path) -> Iterator[Path]:
    """``final`` moved into a new folder beside it (``ASIDE_PREFIX``), held like a staging folder while the
    block runs: a process killed meanwhile lets go of it, and ``sweep_staging`` puts ``final`` back."""
    aside = Path(tempfile.mkdtemp(dir=final.parent, prefix=f"{ASIDE_PREFIX}{os.getpid()}-{final.name}-"))
    held = os.open(aside, os.O_RDONLY | os.O_DIRECTORY)
    try:
        _hold(held)
        os.replace(final, aside / final.name)
        yield aside
    finally:
        os.close(held)


AT_FDCWD, RENAME_EXCHANGE = -100, 2  # renameat2's arguments (fcntl.h, linux/fs.h)


def _exchange(a: Path, b: Path) -> bool:
    """Swap the entries ``a`` and ``b`` of one folder in one step; False, nothing changed, where the C
    library or the filesystem cannot (not Linux, glibc before 2.28, some network filesystems)."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError, TypeError):  # TypeError: Windows, where CDLL takes no None
        return False
    if renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(error, os.strerror(error), str(b))


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Ctrl-C and SIGTERM held back until the block ends, then delivered as they would have been.

    Their handlers are swapped for ones that only take note (Python runs a handler in the main thread,
    whichever thread the signal reached, so masking the signal there would not do), then restored and
    the signals raised again. Outside the main thread, where no handler can be set, nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {number: signal.signal(number, lambda number, frame: received.append(number))
                for number in (signal.SIGINT, signal.SIGTERM)
                if signal.getsignal(number) is not None}  # None: set outside Python, and could not be put back
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        for number in dict.fromkeys(received):
            signal.raise_signal(number)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP}  # a file system without them


def _hold(fd: int) -> None:
    """Lock the staging file or folder open at ``fd`` for as long as it is open: the mark of a writer at work
    that ``sweep_staging`` reads where the writer's process id says nothing (a writer in another container,
    on another machine sharing the folder). Shared, so that a folder opened read-only can take it on NFS too
    (an exclusive lock there needs a file open for writing); waited for, as ``_abandoned`` holds one for an
    instant. Where the file system has no locks, the id alone tells."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
    except OSError as exc:
        if exc.errno not in NO_LOCKS:
            raise


def _abandoned(path: Path) -> bool:
    """Whether no writer holds the staging file or folder ``path`` (``_hold``); where that cannot be told (an
    exclusive lock refused otherwise than for want of locks), it is taken as held: a leftover stays hidden,
    a run being written is never deleted."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | (os.O_DIRECTORY if path.is_dir() else 0))
    except OSError:
        return not path.exists()
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:  # BlockingIOError: held
        return exc.errno in NO_LOCKS
    finally:
        os.close(fd)
    return True


def sweep_staging(folder: Path) -> None:
    """Delete the staging files and folders in ``folder`` whose writing process is gone: not running here,
    and not holding them (``_hold``; a process id from another container's namespace is none of ours). A
    folder moved aside for a replacement that never came (the process killed between the two renames) is
    put back. Housekeeping only: what is not a plain file or folder of that name (a link, a pipe) is left
    alone, never opened or followed, and what cannot be removed (another user's) stays."""
    folder = Path(folder)
    for prefix in (STAGING_PREFIX, ASIDE_PREFIX):
        for path in folder.glob(prefix + "*"):
            pid = path.name[len(prefix):].split("-", 1)[0]
            try:
                kind = stat.S_IFMT(path.lstat().st_mode)
                if kind not in (stat.S_IFREG, stat.S_IFDIR) or not (
                        pid.isdigit() and not process_alive(int(pid)) and _abandoned(path)):
                    continue
                if kind == stat.S_IFDIR:
                    if prefix == ASIDE_PREFIX:
                        _put_back(path, folder)
                    shutil.rmtree(path)
                else:
                    path.unlink()
            except OSError:  # gone meanwhile (another sweep), or not ours to remove
                continue


def _put_back(aside: Path, folder: Path) -> None:
    """The folder moved aside into ``aside`` (``_aside``), renamed back into ``folder`` unless replaced there."""
    for moved in aside.iterdir():
        if moved.is_dir() and not moved.is_symlink() and not (folder / moved.name).exists():
            os.replace(moved, folder / moved.name)


def read_at_most(path: str | os.PathLike, max_bytes: int) -> bytes:
    """The first ``max_bytes + 1`` bytes of the file ``path`` (one more than the cap: a longer file shows
    itself), its whole content where shorter; a device or a pipe is never read further. Opened without
    blocking, as a named pipe would wait for a writer, for ever if none comes (one opened so reads as
    empty); then read blocking, as /dev/stdin with a file piped in must be."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    os.set_blocking(fd, True)
    with os.fdopen(fd, "rb") as f:
        return f.read(max_bytes + 1)


def read_regular_file(path: Path, max_bytes: int, error: type[Exception]) -> bytes:
    """The whole of ``path``, a regular file of at most ``max_bytes`` (a file of a run or a model); anything
    else raises ``error`` naming the file and why: missing, not a regular file (a pipe opened would wait
    for a writer, a device never end), larger, unreadable."""
    try:
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as f:
            status = os.fstat(f.fileno())
            if not stat.S_ISREG(status.st_mode):
                raise error(f"{shown_path(path)}: not a regular file")
            if status.st_size > max_bytes:
                raise error(f"{shown_path(path)}: larger than {max_bytes} bytes")
            data = f.read(status.st_size + 1)  # one more byte shows a file that grew (not max_bytes: allocated)
    except FileNotFoundError:
        raise error(f"{shown_path(path)}: missing") from None
    except OSError as exc:
        raise error(f"{shown_path(path)}: cannot read ({exc.strerror or exc})") from None
    if len(data) != status.st_size:
        raise error(f"{shown_path(path)}: changed while it was read")
    return data


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, obj: Any) -> None:
    """``obj`` as strict JSON (``json_text``), written atomically."""
    atomic_write_text(path, json_text(obj))


def json_text(obj: Any) -> str:
    """``obj`` as strict JSON (``finite_json``: an infinite or NaN float as a string), the text ``write_json``
    writes; a TypeError for a value JSON cannot hold (before anything is written, for a writer of several files)."""
    return json.dumps(finite_json(obj), indent=2, default=_json_default, allow_nan=False) + "\n"


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):  # NumPy scalars and arrays, without importing NumPy here
        return finite_json(obj.tolist())
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


MAX_JSON_DEPTH = 100  # lists and objects one within another: a run's files nest a few deep


def parse_json(text: str) -> Any:
    """The JSON document ``text``; a ValueError where it is none, or where it nests deeper than
    MAX_JSON_DEPTH (a file handed over may nest thousands deep: json.loads then raises RecursionError,
    or, a little shallower, what reads the value recursively does, as ``finite_json`` would)."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH}") from None
    containers = [(value, 1)] if isinstance(value, (list, dict)) else []
    while containers:
        container, depth = containers.pop()
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"nested deeper than {MAX_JSON_DEPTH}")
        items = container.values() if isinstance(container, dict) else container
        containers.extend((item, depth + 1) for item in items if isinstance(item, (list, dict)))
    return value


def utf8_text(text: str) -> str:
    """A name or path from the file system as text can carry it: a name need not be UTF-8, and its other bytes
    (surrogates, in Python's str) are no text to JSON (json.dumps writes a lone "\\udcff", which strict UTF-8 readers
    refuse; the page's list of runs failed with 500) or a terminal; they show as U+FFFD."""
    try:
        return os.fsencode(text).decode("utf-8", "replace")
    except UnicodeEncodeError:  # a lone surrogate that no file name gave ("\ud800"): no bytes to decode
        return text.encode("utf-8", "replace").decode("utf-8")


def finite_json(value):
    """``value`` with every infinite or NaN float as the string "inf", "-inf" or "nan".

    A run's files may hold them (C=inf is "no penalty"); strict JSON has no such numbers: Python writes
    Infinity and NaN, which strict parsers (jq, browsers) refuse, and a web encoder would answer null,
    which reads as "not set".
    """
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):  # a NumPy int key (class_weight={np.int64(0): 2.0}, which json refuses) as an int
        return {int(k) if isinstance(k, Integral) and not isinstance(k, int) else k: finite_json(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value
