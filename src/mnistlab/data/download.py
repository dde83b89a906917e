"""Fetching dataset files from their mirrors: retries, fallback, verification.

A file lands under its final name only after its SHA-256 matched, so an
interrupted or corrupted download never looks like a good file.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO

from .._io import check_writable, make_folder, staged_file, sweep_staging
from ..callbacks import SILENT, FitProgress, started
from ..errors import DatasetError, one_line

MAX_DOWNLOAD_BYTES = 200 * 1024 * 1024  # the largest official file is ~26 MB
CHUNK = 1 << 16
MAX_SECONDS = 900  # for one file, headers and body: ~30 kB/s for the largest; each read has its own timeout besides


class ChecksumMismatch(DatasetError):
    """A mirror served a file other than the one asked for: retrying it will not help."""


class TooSlow(DatasetError):
    """A mirror that did not serve the file within MAX_SECONDS: retrying it would take as long again."""


class TooLarge(DatasetError):
    """A mirror that sends (or announces) more than MAX_DOWNLOAD_BYTES: it would again."""


class CannotWrite(DatasetError):
    """The download cannot be written here (a full disk, a read-only folder): no mirror will help."""


class _Deadline:
    """Shuts the connections of one download when its time is up. Each read has its own timeout, but a
    mirror that sends a byte now and then, each within it, would hold a download for days: in a TLS
    handshake and the headers, which urllib reads, as in the body.

    It keeps a duplicate of each connection's descriptor: wrapping a socket in TLS detaches the socket
    object before the handshake, but a shutdown through any descriptor ends the connection itself."""

    def __init__(self, seconds: float):
        self.passed, self._descriptors, self._lock = False, [], threading.Lock()
        self._timer = threading.Timer(seconds, self._shut)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()
        with self._lock:  # not while the timer shuts them
            for descriptor in self._descriptors:
                os.close(descriptor)
            self._descriptors.clear()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._descriptors.append(os.dup(sock.fileno()))
        if self.passed:
            self._shut()

    def _shut(self) -> None:
        self.passed = True
        with self._lock:
            for descriptor in self._descriptors:
                connection = socket.socket(fileno=descriptor)
                try:
                    connection.shutdown(socket.SHUT_RDWR)  # a read blocked on the connection returns at once
                except OSError:
                    pass
                finally:
                    connection.detach()  # the descriptor is closed by __exit__

    def opener(self) -> urllib.request.OpenerDirector:
        """urllib's opener, whose every connection (a redirect's too) is watched from its TCP connect on."""
        deadline = self

        class Watched(http.client.HTTPConnection):
            def connect(self):
                super().connect()  # TCP only: for HTTPS, before the handshake (WatchedTLS's order of classes)
                deadline.watch(self.sock)

        class WatchedTLS(http.client.HTTPSConnection, Watched):
            pass

        class HTTP(urllib.request.HTTPHandler):
            def http_open(self, req):
                return self.do_open(Watched, req)

        class HTTPS(urllib.request.HTTPSHandler):
            def https_open(self, req):
                return self.do_open(WatchedTLS, req)  # the default context: certificates checked

        return urllib.request.build_opener(HTTP, HTTPS)


def _fetch_once(url: str, out: BinaryIO, timeout: float, progress: FitProgress, sha256: str) -> None:
    """Stream ``url`` to ``out``, reporting the bytes to ``progress``; ChecksumMismatch unless what was
    written has ``sha256``."""
    with _Deadline(MAX_SECONDS) as deadline:
        try:
            _stream(deadline.opener(), url, out, timeout, progress, sha256)
        except (OSError, http.client.HTTPException, DatasetError):
            if deadline.passed:  # whatever the shut connection looked like: no status line, a short read
                raise TooSlow(f"slower than {MAX_SECONDS} s for the file") from None
            raise


def _stream(opener: urllib.request.OpenerDirector, url: str, out: BinaryIO, timeout: float, progress: FitProgress,
            sha256: str) -> None:
    digest = hashlib.sha256()
    with opener.open(url, timeout=timeout) as response:
        total = response.headers.get("Content-Length")
        total = int(total) if total and total.isdigit() else None
        if total is not None and total > MAX_DOWNLOAD_BYTES:
            raise TooLarge(f"announced {total / 2**20:.1f} MB, more than the {MAX_DOWNLOAD_BYTES >> 20} MB limit")
        # the bar ends with the attempt: drawn as failed where an error is on its way out
        with started(progress, total, "byte"):
            received = 0
            # read1: what has arrived, up to CHUNK (read would wait for all of CHUNK)
            while chunk := response.read1(CHUNK):
                received += len(chunk)
                if received > MAX_DOWNLOAD_BYTES:
                    raise TooLarge(f"sent more than the {MAX_DOWNLOAD_BYTES >> 20} MB limit")
                digest.update(chunk)
                _write(out, chunk)
                progress.advance(received, Path(url).name)
            if total is not None and received != total:
                raise DatasetError(f"connection closed after {received} of {total} bytes")
            if (got := digest.hexdigest()) != sha256:
                # a text page (a captive portal's login, a host's error page) served as if it were the file
                kind = response.headers.get_content_type()  # text/plain where the mirror names none: not said then
                page = (f"; a {received}-byte {kind} page, not the file"
                        if "Content-Type" in response.headers and kind.startswith("text/") else "")
                raise ChecksumMismatch(f"checksum mismatch (got {got[:12]}…{page})")
            _write(out, b"")  # flushed: a full disk is met here, not taken for the mirror's failure when renamed


def _write(out: BinaryIO, data: bytes) -> None:
    """``data`` written to the staged download (and flushed, where there is none), a local failure as CannotWrite."""
    try:
        out.write(data) if data else out.flush()
    except OSError as exc:
        raise CannotWrite(exc.strerror or str(exc)) from None


def fetch_verified(
    filename: str,
    mirrors: list[str] | tuple[str, ...],
    dest_dir: Path,
    sha256: str,
    attempts: int = 2,
    timeout: float = 30.0,
    progress: FitProgress = SILENT,
) -> Path:
    """Download ``filename`` from the first mirror that serves it with the right checksum.

    Any HTTP or network error, a short read or a checksum mismatch moves on:
    first a retry of the same mirror (network errors only), then the next one.
    """
    if not mirrors:
        raise DatasetError(f"could not download {filename}: no mirror to download it from")
    created = not dest_dir.exists()
    try:
        make_folder(dest_dir)
    except OSError as exc:
        raise DatasetError(f"{dest_dir}: cannot hold the download ({exc.strerror or exc})") from None
    sweep_staging(dest_dir)  # what downloads killed outright left half-written
    final = dest_dir / filename
    try:
        _check_writable(final)
        return _from_mirrors(final, mirrors, attempts, timeout, progress, sha256)
    finally:
        if created and not any(dest_dir.iterdir()):  # an empty cache folder would only say "not found" later
            dest_dir.rmdir()


def _check_writable(final: Path) -> None:
    """A DatasetError, before any mirror is asked, where ``final`` cannot be written (a folder is there, or its
    folder takes no new file), as the download will write it: a staged file created, closed and removed."""
    try:
        if final.is_dir():
            raise IsADirectoryError(errno.EISDIR, "a folder is there")
        check_writable(final.parent)
    except OSError as exc:
        raise DatasetError(f"{final}: cannot hold the download ({exc.strerror or exc})") from None


def _from_mirrors(final: Path, mirrors, attempts: int, timeout: float, progress: FitProgress, sha256: str) -> Path:
    """``final`` downloaded from the first mirror that serves it with ``sha256`` (``fetch_verified``'s loop)."""
    filename = final.name
    failures = []
    for base in mirrors:
        url = base.rstrip("/") + "/" + filename
        for attempt in range(attempts):
            try:
                with staged_file(final) as out:  # renamed into place only once its checksum matched
                    _fetch_once(url, out, timeout, progress, sha256)
                return final
            except CannotWrite as exc:  # no mirror will help
                raise DatasetError(f"{final}: cannot write the download ({exc})") from None
            except (ChecksumMismatch, TooSlow, TooLarge) as exc:
                failures.append(f"{url}: {exc}")
                break  # the mirror serves a different file, as slowly or as much again: retrying won't help
            except urllib.error.HTTPError as exc:
                # a redirect's code alone says nothing of why it failed: a loop, or to a file:// URL
                why = f" ({one_line(exc.reason, 200)})" if 300 <= exc.code < 400 and exc.reason else ""
                failures.append(f"{url}: HTTP {exc.code}{why}")
                break
            # HTTPException: a malformed answer (a truncated chunk, a status line of no HTTP);
            # ValueError: a mirror that is no URL
            except (urllib.error.URLError, http.client.HTTPException, ValueError, OSError, DatasetError) as exc:
                reason = one_line(getattr(exc, "reason", exc))  # may quote what the server sent: cut short
                failures.append(f"{url}: {reason[:200]}")
                if attempt + 1 < attempts:
                    time.sleep(0.5 * (attempt + 1))
    # A retry that failed the same way is said once.
    raise DatasetError(f"could not download {filename}: " + "; ".join(dict.fromkeys(failures)))
