"""Load on the web API: N concurrent clients POST photos to /api/predict on 127.0.0.1.

The server runs as its own process (`mnistlab serve`), the clients as threads
here; the run is bounded in requests and seconds. Target: with a
logistic-regression run, 8 concurrent clients, p99 under 100 ms, no errors.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from mnistlab import load_dataset  # noqa: E402
from mnistlab.photo_fixtures import make_photo  # noqa: E402
from mnistlab.training import DataChoice, train  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_test(url: str, photos: list[bytes], clients: int, requests_per_client: int,
              time_limit: float) -> dict:
    latencies, errors = [], []
    lock = threading.Lock()
    deadline = time.perf_counter() + time_limit

    def client(k: int) -> None:
        with httpx.Client(timeout=30) as session:
            for i in range(requests_per_client):
                if time.perf_counter() > deadline:
                    return
                photo = photos[(k * requests_per_client + i) % len(photos)]
                start = time.perf_counter()
                response = session.post(url, files={"file": ("photo.png", photo, "image/png")})
                elapsed = time.perf_counter() - start
                with lock:
                    (latencies if response.status_code == 200 else errors).append(
                        elapsed if response.status_code == 200 else response.status_code)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    ms = np.array(latencies) * 1000
    return {"requests": len(latencies) + len(errors), "errors": len(errors),
            "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "throughput": len(latencies) / wall}


def serve(out: Path, run: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "mnistlab", "serve", "--run", run, "--port", str(port),
                                "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(f"{url}/api/runs", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("server did not start: " + process.stderr.read().decode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=50, help="per client")
    parser.add_argument("--seconds", type=float, default=60, help="time limit per load test")
    parser.add_argument("--models", default="logreg,cnn", help="comma-separated families to serve")
    args = parser.parse_args()

    ds = load_dataset("fashion-mnist")
    rng = np.random.default_rng(0)
    photos = [make_photo(ds.x_test[i], rng, "png") for i in range(64)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for family in args.models.split(","):
            params = {"C": 0.1} if family == "logreg" else {}
            train(family, params, DataChoice(), Path(tmp), name=family)
            process, url = serve(Path(tmp), family)
            try:
                load_test(f"{url}/api/predict", photos, 2, 5, 30)  # warm-up
                result = load_test(f"{url}/api/predict", photos, args.clients, args.requests, args.seconds)
            finally:
                process.terminate()
                process.wait(timeout=10)
            rows.append([family, args.clients, result["requests"], result["errors"],
                         f"{result['p50_ms']:.1f}", f"{result['p99_ms']:.1f}", f"{result['throughput']:.1f}"])
            print(family, result)
    body = ("`POST /api/predict` with 256×256-ish PNG photos built from test images (each request: decode, "
            "photo conversion, prediction, explanation map), server `mnistlab serve` in its own process, "
            "clients as threads in the benchmark process, all on 127.0.0.1. Target: logreg, 8 clients, "
            "p99 < 100 ms, no errors.\n\n"
            + common.markdown_table(["run", "clients", "requests", "errors", "p50 ms", "p99 ms", "requests/s"], rows))
    common.write_section("bench_web", "Web API under load", body)
    print(body)


if __name__ == "__main__":
    main()
