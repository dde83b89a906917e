"""Downloads against a small HTTP server on 127.0.0.1: good, corrupt, truncated, 404."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import re
import struct
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from mnistlab import DatasetError, load_dataset
from mnistlab.data.datasets import download_dataset
from mnistlab.data.download import fetch_verified
from mnistlab.data.registry import DATASETS, PARTS, IdxFile

from conftest import RecordingProgress, run_cli


def idx_gz(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(header + array.tobytes(), mtime=0)


rng = np.random.default_rng(0)
FILES = {
    "train-images-idx3-ubyte.gz": idx_gz(rng.integers(0, 256, (20, 28, 28), dtype=np.uint8)),
    "train-labels-idx1-ubyte.gz": idx_gz(np.arange(20, dtype=np.uint8) % 10),
    "t10k-images-idx3-ubyte.gz": idx_gz(rng.integers(0, 256, (10, 28, 28), dtype=np.uint8)),
    "t10k-labels-idx1-ubyte.gz": idx_gz(np.arange(10, dtype=np.uint8)),
}


class Handler(BaseHTTPRequestHandler):
    """/good/F serves F; /corrupt/F flips bytes; /truncated/F closes early; /chunked/F breaks off inside a
    chunk; /garbage/F answers with no HTTP status line; /trickle/F sends a byte every 0.1 s, /slow-headers/F a
    byte of its headers every 0.1 s; /loop/F redirects to itself, /to-file/F to a file:// URL; /portal/F is a
    captive portal's HTML page; /endless/F sends 4 MB of no stated length, /huge/F announces 3 MB; anything else
    404."""

    hits: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.hits.append(self.path)
        kind, _, name = self.path.strip("/").partition("/")
        if kind in ("loop", "to-file"):
            self.send_response(302)
            self.send_header("Location", self.path if kind == "loop" else "file:///etc/passwd")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if kind in ("portal", "endless", "huge"):
            page = b"<html><body>Log in to use the Wi-Fi</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html" if kind == "portal" else "application/gzip")
            if kind != "endless":
                self.send_header("Content-Length", str(len(page) if kind == "portal" else 3 << 20))
            self.end_headers()
            for chunk in [page] if kind == "portal" else [bytes(1 << 16)] * (64 if kind == "endless" else 0):
                try:
                    self.wfile.write(chunk)
                except OSError:  # the client gave up
                    return
            return
        body = FILES.get(name)
        kinds = ("good", "corrupt", "truncated", "chunked", "garbage", "trickle", "slow-headers")
        if body is None or kind not in kinds:
            self.send_error(404)
            return
        if kind == "garbage":
            self.wfile.write(b"\x1f\x8bNOT HTTP\r\n\r\n" + body[:100])
            return
        if kind == "chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"%x\r\n" % len(body) + body[:10])
            return
        if kind == "slow-headers":
            for byte in b"HTTP/1.1 200 OK\r\nX-Padding: " + b"x" * 100:  # 10 s at most
                time.sleep(0.1)
                try:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                except OSError:
                    return
            return
        if kind == "trickle":
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for byte in body[:100]:  # 10 s at most
                time.sleep(0.1)
                try:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                except OSError:  # the client gave up
                    return
            return
        if kind == "corrupt":
            body = body[:-8] + bytes(8)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if kind == "truncated" else body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def tiny_dataset(monkeypatch, tmp_path):
    """A registry entry whose checksums are those of FILES, and an empty cache."""
    base = DATASETS["mnist"]
    files = {part: IdxFile(base.files[part].name, None,
                           hashlib.sha256(FILES[base.files[part].name + ".gz"]).hexdigest())
             for part in PARTS}
    monkeypatch.setitem(DATASETS, "tiny", dataclasses.replace(base, name="tiny", files=files))
    monkeypatch.setenv("MNISTLAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "tiny"


def sha(name: str) -> str:
    return hashlib.sha256(FILES[name]).hexdigest()


def test_good_mirror(server, tmp_path):
    name = "t10k-labels-idx1-ubyte.gz"
    progress = RecordingProgress()
    path = fetch_verified(name, [f"{server}/good/"], tmp_path, sha(name), progress=progress)
    assert path.read_bytes() == FILES[name]
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind
    # the bytes, reported to whoever draws them (a Rich bar on the command line, a notebook bar in Jupyter)
    assert progress.starts == [(len(FILES[name]), "byte")] and progress.done[-1] == len(FILES[name])
    assert set(progress.descriptions) == {name} and progress.ends == 1


@pytest.mark.parametrize("bad", ["corrupt", "truncated", "missing", "chunked", "garbage"])
def test_falls_back_to_next_mirror(server, tmp_path, bad):
    name = "t10k-images-idx3-ubyte.gz"
    progress = RecordingProgress()
    path = fetch_verified(name, [f"{server}/{bad}/", f"{server}/good/"], tmp_path, sha(name), progress=progress)
    assert path.read_bytes() == FILES[name]
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
    # each attempt's bar ends with it, the failed one's as failed (a corrupt file's was a bar of 100 % success)
    assert progress.ended_by_error[-1] is False and progress.ends == len(progress.starts)
    assert all(progress.ended_by_error[:-1])


def test_every_mirror_failing_leaves_nothing(server, tmp_path):
    name = "t10k-images-idx3-ubyte.gz"
    mirrors = [f"{server}/corrupt/", f"{server}/truncated/", f"{server}/missing/"]
    with pytest.raises(DatasetError) as info:
        fetch_verified(name, mirrors, tmp_path, sha(name))
    message = str(info.value)
    assert "checksum mismatch" in message and "HTTP 404" in message
    assert "0 of" in message or "after" in message  # the short read is named
    assert message.count(f"{server}/truncated/") == 1  # each mirror's URL said once
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DatasetError):
        fetch_verified(name, mirrors, tmp_path / "cache" / "new", sha(name))
    assert not (tmp_path / "cache" / "new").exists()  # a folder it made for nothing is gone too


def test_unreachable_host_is_retried_then_reported(tmp_path):
    with pytest.raises(DatasetError, match="could not download"):
        fetch_verified("x.gz", ["http://127.0.0.1:9/"], tmp_path, "0" * 64,
                       attempts=2, timeout=2)


def test_download_dataset_then_load(server, tiny_dataset, monkeypatch):
    monkeypatch.setenv("MNISTLAB_MIRRORS", f"{server}/missing/,{server}/good/")
    files = download_dataset("tiny")
    assert all(p.parent == tiny_dataset for p in files.values())
    ds = load_dataset("tiny")  # found in the cache now, no network needed
    assert ds.x_train.shape == (20, 28, 28) and ds.official
    Handler.hits.clear()
    download_dataset("tiny")  # verified files are kept, not re-fetched
    assert Handler.hits == []


def test_load_downloads_when_missing(server, tiny_dataset, monkeypatch):
    monkeypatch.setenv("MNISTLAB_MIRRORS", f"{server}/good/")
    ds = load_dataset("tiny")
    assert ds.y_test.tolist() == list(range(10))


def test_no_mirror_and_a_cache_that_is_no_folder_are_said(tmp_path, monkeypatch):
    with pytest.raises(DatasetError, match="no mirror to download it from"):
        fetch_verified("x.gz", [], tmp_path, "0" * 64)
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    with pytest.raises(DatasetError, match="cannot hold the download"):
        fetch_verified("x.gz", ["http://127.0.0.1:9/"], not_a_folder / "kmnist", "0" * 64)


def test_a_mirror_that_trickles_is_left_at_the_deadline_for_the_next(server, tmp_path, monkeypatch):
    """read() waited for a whole chunk, each byte within the socket's timeout: the deadline was never
    checked (days at a byte every 10 s), and the next mirror never tried."""
    from mnistlab.data import download

    monkeypatch.setattr(download, "MAX_SECONDS", 1)
    name = "t10k-images-idx3-ubyte.gz"
    started = time.monotonic()
    # at the default attempts: a mirror past the deadline was asked again (at 900 s, a quarter of an hour more)
    path = fetch_verified(name, [f"{server}/trickle/", f"{server}/good/"], tmp_path, sha(name))
    assert path.read_bytes() == FILES[name] and time.monotonic() - started < 2.5


def test_a_download_that_cannot_be_written_here_is_one_line_and_asks_no_mirror_again(server, tmp_path, monkeypatch):
    from mnistlab.data import download

    name = "t10k-images-idx3-ubyte.gz"
    (tmp_path / "folder" / name).mkdir(parents=True)  # where the file should be: "Is a directory", four times
    with pytest.raises(DatasetError, match=f"^{tmp_path}/folder/{name}: cannot hold the download"):
        fetch_verified(name, [f"{server}/good/"], tmp_path / "folder", sha(name))

    def full_disk(out, data):
        raise download.CannotWrite("No space left on device")

    asked, fetch_once = [], download._fetch_once

    def counted(url, *args):
        asked.append(url)
        return fetch_once(url, *args)

    monkeypatch.setattr(download, "_write", full_disk)
    monkeypatch.setattr(download, "_fetch_once", counted)
    with pytest.raises(DatasetError, match=f"^{tmp_path}/full/{name}: cannot write the download \\(No space left"):
        fetch_verified(name, [f"{server}/good/", f"{server}/good/"], tmp_path / "full", sha(name))
    assert len(asked) == 1 and not (tmp_path / "full").exists()  # each mirror, twice: 26 MB each time


def test_a_mirror_that_trickles_its_headers_is_left_at_the_deadline_too(server, tmp_path, monkeypatch):
    """urllib reads the headers itself, each byte within the socket's timeout: the deadline was not
    looked at until the body, and a mirror could hold the download for days before it."""
    from mnistlab.data import download

    monkeypatch.setattr(download, "MAX_SECONDS", 1)
    name = "t10k-images-idx3-ubyte.gz"
    started = time.monotonic()
    path = fetch_verified(name, [f"{server}/slow-headers/", f"{server}/good/"], tmp_path, sha(name), attempts=1)
    assert path.read_bytes() == FILES[name] and time.monotonic() - started < 5
    with pytest.raises(DatasetError, match="slow-headers/t10k-images-idx3-ubyte.gz: slower than 1 s for the file"):
        fetch_verified(name, [f"{server}/slow-headers/"], tmp_path / "alone", sha(name), attempts=1)


def test_a_mirror_that_trickles_its_tls_handshake_is_left_at_the_deadline_too(tmp_path, monkeypatch):
    """The connection was watched only once connected, after the TLS handshake: a server that sent its
    handshake a byte at a time held the download past the deadline (27 s for a deadline of 1 s)."""
    import socket

    from mnistlab.data import download

    monkeypatch.setattr(download, "MAX_SECONDS", 1)
    listener = socket.create_server(("127.0.0.1", 0))

    def trickle():
        connection, _ = listener.accept()
        with connection:
            connection.recv(4096)  # the ClientHello
            for byte in b"\x16\x03\x03\x3f\xff" + bytes(100):  # a handshake record of 16 kB, begun: 10 s at most
                time.sleep(0.1)
                try:
                    connection.sendall(bytes([byte]))
                except OSError:  # the client gave up
                    return

    threading.Thread(target=trickle, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(DatasetError, match="slower than 1 s for the file"):
        fetch_verified("x.gz", [f"https://127.0.0.1:{listener.getsockname()[1]}/"], tmp_path, "0" * 64, attempts=1)
    assert time.monotonic() - started < 5
    listener.close()


def test_a_failed_download_is_one_line_on_a_pipe(server, tmp_path):
    """Each attempt's bar, taken away on a file or pipe, left an empty line before the error."""
    result = run_cli("data", "download", "--dataset", "mnist",
                     env={"MNISTLAB_CACHE": str(tmp_path),
                          "MNISTLAB_MIRRORS": f"{server}/truncated/,{server}/nothing/"})
    assert result.returncode == 2 and result.stderr.startswith("error: could not download")
    assert result.stderr.count("\n") == 1, repr(result.stderr)


def test_a_download_killed_outright_leaves_nothing_the_next_one_keeps(server, tmp_path):
    """A SIGKILL (out of memory, a lost node) mid-transfer left a hidden .part file in the cache for good."""
    name = "t10k-images-idx3-ubyte.gz"
    code = (f"from pathlib import Path; from mnistlab.data.download import fetch_verified; "
            f"fetch_verified({name!r}, [{server + '/trickle/'!r}], Path({str(tmp_path)!r}), {sha(name)!r})")
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 30
        while not any(tmp_path.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)  # until the download has begun: its file is made before the first byte comes
    finally:
        child.kill()
        child.wait()
    assert [p.name for p in tmp_path.iterdir()] != []  # half-written, where a killed process leaves it
    path = fetch_verified(name, [f"{server}/good/"], tmp_path, sha(name))
    assert list(tmp_path.iterdir()) == [path] and path.read_bytes() == FILES[name]


def test_a_download_beside_an_unpacked_file_leaves_the_folder_loadable(server, tiny_dataset, monkeypatch):
    """After a `gunzip` in the cache, `data download` fetched the .gz beside the unpacked file and said "verified";
    from then on every load was refused (both … are here; keep one)."""
    from mnistlab.data.idx import read_idx

    monkeypatch.setenv("MNISTLAB_MIRRORS", f"{server}/good/")
    download_dataset("tiny")
    packed = tiny_dataset / "t10k-labels-idx1-ubyte.gz"
    labels = tiny_dataset / packed.stem
    labels.write_bytes(gzip.decompress(packed.read_bytes()))
    packed.unlink()
    Handler.hits.clear()
    with pytest.raises(DatasetError, match=f"^{labels}: unpacked, and no official checksum of the unpacked file"):
        download_dataset("tiny")  # none to check it by: refused, before anything is fetched
    assert Handler.hits == [] and not packed.exists()
    # where the registry knows the unpacked file's checksum, a copy that has it is kept and loads
    tiny = DATASETS["tiny"]
    official = dataclasses.replace(tiny.files["test_labels"], sha256=read_idx(labels)[1])
    monkeypatch.setitem(DATASETS, "tiny", dataclasses.replace(tiny, files={**tiny.files, "test_labels": official}))
    assert download_dataset("tiny")["test_labels"] == labels and not packed.exists()
    assert load_dataset("tiny").y_test.tolist() == list(range(10))
    labels.write_bytes(labels.read_bytes()[:-1] + b"\x00")  # one label changed
    with pytest.raises(DatasetError, match=f"^{labels}: unpacked, and not the official file"):
        download_dataset("tiny")
    packed.write_bytes(FILES[packed.name])
    with pytest.raises(DatasetError, match=f"^{tiny_dataset}: both {labels.name} and {packed.name} are here"):
        download_dataset("tiny")


def test_ensure_data_stops_at_data_it_cannot_use_and_fetches_what_is_missing(server, tmp_path):
    """scripts/ensure-data.sh (make data) took any error of the search for "not present", hid it, ran apt-get
    install and a download, and exited 0 with MNISTLAB_DATA_DIR naming no folder: make demo failed after it."""
    from conftest import REPO

    (tmp_path / "bin").mkdir()
    apt_get = tmp_path / "bin" / "apt-get"  # asked only where we are root: it records that it was
    apt_get.write_text(f"#!/bin/sh\necho \"$*\" >> {tmp_path}/apt.log\nexit 1\n")
    apt_get.chmod(0o755)
    # Fashion-MNIST nowhere but on the server: the registry's entry, with this file's checksums and no system folder
    archives = {part: sha(f"{DATASETS['fashion-mnist'].files[part].name}.gz") for part in PARTS}
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(
        "import dataclasses\nfrom mnistlab.data.registry import DATASETS\nspec = DATASETS['fashion-mnist']\n"
        f"archives = {archives!r}\nDATASETS['fashion-mnist'] = dataclasses.replace(spec, system_dirs=(), files={{"
        "p: dataclasses.replace(f, sha256=None, archive_sha256=archives[p]) for p, f in spec.files.items()})\n")
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
           "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), *sys.path]),
           "MNISTLAB_CACHE": str(tmp_path / "cache"), "MNISTLAB_MIRRORS": f"{server}/good/"}
    script = ["sh", str(REPO / "scripts" / "ensure-data.sh"), sys.executable]
    result = subprocess.run(script, env={**env, "MNISTLAB_DATA_DIR": str(tmp_path / "nonexistent")},
                            capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"error: {tmp_path / 'nonexistent'}: no such folder\n"
    assert not (tmp_path / "apt.log").exists() and not (tmp_path / "cache").exists()
    result = subprocess.run(script, env=env, capture_output=True, text=True, timeout=120)  # not found: fetched
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "cache" / "fashion-mnist").iterdir()) == sorted(FILES)


def test_a_failed_download_says_what_the_mirror_did_and_one_past_the_limit_is_asked_once(server, tmp_path,
                                                                                        monkeypatch):
    """A redirect loop, or one to a file:// URL, was said as "HTTP 302" alone; a captive portal's page as "checksum
    mismatch" alone; a mirror that sent or announced more than the limit was asked twice, the limit said in bytes."""
    from mnistlab.data import download

    monkeypatch.setattr(download, "MAX_DOWNLOAD_BYTES", 1 << 20)
    name = "t10k-labels-idx1-ubyte.gz"
    kinds = ("loop", "to-file", "portal", "endless", "huge", "corrupt")
    Handler.hits.clear()
    with pytest.raises(DatasetError) as info:
        fetch_verified(name, [f"{server}/{kind}/" for kind in kinds], tmp_path, sha(name))
    message = str(info.value)
    assert f"/loop/{name}: HTTP 302 (The HTTP server returned a redirect error that would lead to an inf" in message
    assert f"/to-file/{name}: HTTP 302 (Found - Redirection to url 'file:///etc/passwd' is not allowed)" in message
    assert re.search(f"/portal/{name}: checksum mismatch \\(got [0-9a-f]{{12}}…; a 49-byte text/html page, not the "
                     "file\\)", message)
    assert f"/endless/{name}: sent more than the 1 MB limit;" in message
    assert f"/huge/{name}: announced 3.0 MB, more than the 1 MB limit" in message
    # a damaged file from a mirror that names no content type is no page (Python's default type is text/plain)
    assert re.search(f"/corrupt/{name}: checksum mismatch \\(got [0-9a-f]{{12}}…\\)", message), message
    assert [hit for hit in Handler.hits if not hit.startswith(("/loop/", "/corrupt/"))] == [
        f"/{kind}/{name}" for kind in kinds[1:-1]]
    assert list(tmp_path.iterdir()) == []
