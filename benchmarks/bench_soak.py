"""Soak: 8 clients mix good and bad uploads against `mnistlab serve` for a few minutes.

Each client sends, one after another on its own keep-alive connection, a
request drawn from a fixed mix: user-style photos of test images (200), and
inputs a careless user or an attacker sends — random bytes, a truncated JPEG, a
30:1 banner, a float TIFF holding NaN, a blank page, a 49-megapixel PNG that
inflates from a few kilobytes, an unknown run (4xx each). Targets: zero 5xx,
every answer the status its kind expects, the p99 of each kind recorded, and
the server's memory (its process and its workers') flat from start to end.
"""

from __future__ import annotations

import http.client
import io
import random
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import psutil
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the photo fixtures
import common  # noqa: E402
from bench_web import BOUNDARY, form_upload, serve  # noqa: E402

from fixtures.photos import FORMATS, make_photo  # noqa: E402
from mnistlab import load_dataset  # noqa: E402
from mnistlab.experiments.pipeline import DataChoice, train  # noqa: E402

MB = 2**20


def encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def request_mix(x_test: np.ndarray, rng: np.random.Generator) -> list[tuple[str, str, str, bytes | None, int]]:
    """(kind, method, path, body, expected status) for each request of the mix; good photos are half of it."""
    photos = [make_photo(x_test[i], rng, FORMATS[i % len(FORMATS)]) for i in range(48)]
    nan = np.full((60, 60), 0.8, np.float32)
    nan[30, 30] = np.nan
    banner = np.full((100, 3000), 220, np.uint8)
    banner[30:70, 1000:1100] = 30
    bad = [
        ("random bytes", rng.bytes(5000), 415),
        ("truncated JPEG", photos[0][:len(photos[0]) // 2], 415),
        ("30:1 banner", encoded(Image.fromarray(banner), "PNG"), 415),
        ("NaN TIFF", encoded(Image.fromarray(nan), "TIFF"), 415),
        ("blank page", encoded(Image.fromarray(np.full((400, 300), 230, np.uint8)), "PNG"), 422),
        ("49 MP PNG bomb", encoded(Image.new("RGB", (7000, 7000)), "PNG"), 415),
    ]
    mix = [("good photo", "POST", "/api/predict", form_upload(p), 200) for p in photos]
    mix += [(kind, "POST", "/api/predict", form_upload(data), status) for kind, data, status in bad for _ in range(6)]
    mix += [("unknown run", "GET", "/api/runs/no-such-run", None, 404)] * 12
    return mix


def _file_of(form: bytes) -> bytes:
    """The photo inside a form body built by ``form_upload``."""
    return form.split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n--", 1)[0]


def server_rss(pid: int) -> float:
    """Resident memory of the server process and its worker processes, in MB."""
    parent = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [parent, *parent.children(recursive=True)]) / MB


def soak(url: str, mix: list, clients: int, seconds: float, seed: int) -> dict[str, list[tuple[int, float]]]:
    """kind → [(status, seconds)] of every request the clients sent within ``seconds``."""
    host, port = url.removeprefix("http://").split(":")
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    answers = defaultdict(list)
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client(k: int) -> None:
        order = random.Random(seed + k)
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        try:
            while time.perf_counter() < deadline:
                kind, method, path, body, _ = order.choice(mix)
                start = time.perf_counter()
                connection.request(method, path, body, headers if body else {})
                response = connection.getresponse()
                response.read()
                with lock:
                    answers[kind].append((response.status, time.perf_counter() - start))
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def main() -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=180)
    args = parser.parse_args()

    ds = load_dataset("fashion-mnist")
    mix = request_mix(ds.x_test, np.random.default_rng(0))
    expected = {kind: status for kind, _, _, _, status in mix}
    with tempfile.TemporaryDirectory() as tmp:
        train("logreg", {"C": 0.1}, DataChoice(), Path(tmp), name="logreg")
        good = next(body for kind, _, _, body, _ in mix if kind == "good photo")
        process, url, _ = serve(Path(tmp), "logreg", "native", _file_of(good))
        try:
            soak(url, mix, 2, 10, seed=1000)  # warm-up: every worker has loaded the model
            rss_start = server_rss(process.pid)
            start = time.perf_counter()
            answers = soak(url, mix, args.clients, args.seconds, seed=0)
            wall = time.perf_counter() - start
            rss_end = server_rss(process.pid)
        finally:
            process.terminate()
            process.wait(timeout=10)

    rows, total, server_errors, unexpected = [], 0, 0, 0
    for kind in expected:
        statuses = [s for s, _ in answers[kind]]
        ms = np.array([t for _, t in answers[kind]]) * 1000
        total += len(statuses)
        server_errors += sum(s >= 500 for s in statuses)
        unexpected += sum(s != expected[kind] for s in statuses)
        rows.append([kind, expected[kind], len(statuses), sum(s != expected[kind] for s in statuses),
                     sum(s >= 500 for s in statuses), f"{np.percentile(ms, 50):.1f}", f"{np.percentile(ms, 99):.1f}"])
    met = server_errors == 0 and unexpected == 0 and rss_end <= rss_start * 1.1
    body = (f"`mnistlab serve` (logistic regression, full training set, its default worker processes) on "
            f"127.0.0.1; {args.clients} clients on the same cores, each sending requests drawn at random from "
            f"the mix one after another for {args.seconds:.0f} s: {total} requests in {wall:.0f} s. "
            f"Server memory (its process and the workers): {rss_start:.0f} MB at the start, {rss_end:.0f} MB "
            f"at the end. 5xx answers: {server_errors}; answers with another status than expected: {unexpected}. "
            f"Targets (zero 5xx, every status as expected, memory within 10 % of the start): "
            f"{'met' if met else 'NOT met'}.\n\n"
            + common.markdown_table(["request", "expected status", "sent", "other status", "5xx", "p50 ms",
                                     "p99 ms"], rows))
    common.write_section("bench_soak", "Soak: good and bad uploads under load", body)
    print(body)


if __name__ == "__main__":
    main()
