"""The web API over the run store: name-or-path default runs, damaged runs, error classes → status codes."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conftest import run_cli
from fixtures.server import free_port
from mnistlab.errors import ParameterError, RunDamagedError, RunNotFoundError
from mnistlab.experiments.pipeline import DataChoice, train
from mnistlab.web import app as web_app
from mnistlab.web.app import SameSite, allowed_host, create_app


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    out = tmp_path_factory.mktemp("web-runs")
    data = DataChoice(train_size=600, test_size=200)
    # older than the rest: not the default
    train("sklearn:LogisticRegression", {"C": float("inf"), "max_iter": 5}, data, out, name="unpenalised")
    train("logreg", {}, data, out, name="good")
    train("logreg", {}, data, out, name="broken")
    (out / "runs" / "broken" / "metrics.json").unlink()
    elsewhere = out.parent / f"{out.name}-elsewhere"
    train("logreg", {}, data, elsewhere, name="outside")
    return out


def client(out, **kwargs) -> TestClient:
    return TestClient(create_app(out, workers=1, **kwargs), raise_server_exceptions=False)


def test_unknown_default_run_fails_before_serving(out):
    with pytest.raises(RunNotFoundError, match="nope"):
        create_app(out, default_run="nope")
    with pytest.raises(RunDamagedError, match="broken/metrics.json"):  # it served, answering every photo 500
        create_app(out, default_run="broken")
    shutil.copytree(out / "runs" / "good", out / "runs" / "nomodel")
    (out / "runs" / "nomodel" / "model.npz").unlink()
    try:
        with pytest.raises(RunDamagedError, match="nomodel/model.npz: missing"):  # a listing calls it damaged
            create_app(out, default_run="nomodel")
    finally:
        shutil.rmtree(out / "runs" / "nomodel")


def test_cli_serve_with_unknown_run_is_one_line(out):
    result = run_cli("serve", "--run", "NONEXISTENT", "--out", str(out), timeout=60)
    assert result.returncode == 2 and "no run 'NONEXISTENT'" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    empty = run_cli("serve", "--run", "", "--out", str(out), timeout=60)  # served the newest run
    assert empty.returncode == 2 and "an empty run name" in empty.stderr


def test_cli_serve_on_a_port_in_use_or_out_of_range_is_one_line(out):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = run_cli("serve", "--port", str(port), "--out", str(out), timeout=60)
    assert result.returncode == 2
    assert result.stderr == f"error: cannot listen on 127.0.0.1:{port} (Address already in use)\n"
    result = run_cli("serve", "--port", "99999", "--out", str(out), timeout=60)  # uvicorn alone hung on it
    assert result.returncode == 2 and "Traceback" not in result.stderr
    result = run_cli("serve", "--host", "", "--out", str(out), timeout=60)  # was every address of the machine
    assert result.returncode == 2 and result.stderr.startswith("error: --host is empty")
    result = run_cli("serve", "--workers", "1000000", "--out", str(out), timeout=60)  # started them, and hung
    assert result.returncode == 2 and result.stderr.startswith("error: --workers: must be 1")
    result = run_cli("serve", "--allow-host", "mnist.example.com:8443", "--out", str(out), timeout=60)  # matched none
    assert result.returncode == 2
    assert result.stderr.startswith("error: --allow-host: give a host name or an address alone")


def test_serve_help_says_the_workers_upper_limit_that_it_enforces(out):
    from mnistlab._system import one_per_core, usable_cores

    help_text = run_cli("serve", "--help", env={"COLUMNS": "400"}).stdout  # was "[x>=1]" alone
    assert f"Processes that compute predictions: {one_per_core()} this server may use" in help_text
    result = run_cli("serve", "--workers", str(usable_cores() + 1), "--out", str(out), timeout=60)
    assert result.returncode == 2 and result.stderr.startswith(f"error: --workers: must be {one_per_core()} this")
    # on one core (a machine, a cgroup's or taskset's affinity) both had read "1 to 1"
    code = ("import os, sys; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); from mnistlab.cli import main; "
            "sys.argv = ['mnistlab', *sys.argv[1:]]; main()")
    for args, said in [(["--help"], "stdout"), (["--workers", "2", "--out", str(out)], "stderr")]:
        result = subprocess.run([sys.executable, "-c", code, "serve", *args], capture_output=True, text=True,
                                timeout=60, env={**os.environ, "COLUMNS": "400"})
        text = " ".join(getattr(result, said).split())
        assert "1, the one CPU core this server may use" in text and "1 to 1" not in text, text


def test_default_run_by_path_is_listed_and_predicts(out, fashion):
    outside = out.parent / f"{out.name}-elsewhere" / "runs" / "outside"
    with client(out, default_run=str(outside)) as http:
        runs = http.get("/api/runs").json()
        assert [r["name"] for r in runs if r["default"]] == ["outside"]
        assert http.get("/api/runs/outside").json()["config"]["name"] == "outside"
        png = _png(fashion.x_test[0])
        answer = http.post("/api/predict", files={"file": ("x.png", png)}).json()
        assert answer["run"] == "outside"


def test_a_default_run_deleted_while_served_is_no_run(out, fashion):
    shutil.copytree(out / "runs" / "good", out / "runs" / "pin")
    try:
        with client(out, default_run="pin") as http:
            shutil.rmtree(out / "runs" / "pin")
            assert "pin" not in [r["name"] for r in http.get("/api/runs").json()]  # listed as damaged: config missing
            for response in (http.get("/api/runs/pin"),  # "pin/config.json: missing"
                             http.post("/api/predict", files={"file": ("x.png", _png(fashion.x_test[0]))})):
                assert response.status_code == 404 and response.json()["detail"] == "no run named 'pin'"
    finally:
        shutil.rmtree(out / "runs" / "pin", ignore_errors=True)


def test_damaged_run_is_listed_and_the_others_stay_servable(out, fashion):
    with client(out) as http:
        runs = {r["name"]: r for r in http.get("/api/runs").json()}
        assert "metrics.json: missing" in runs["broken"]["damaged"] and runs["good"]["damaged"] is None
        assert runs["good"]["default"] and not runs["broken"]["default"]
        response = http.get("/api/runs/broken")
        assert response.status_code == 500 and "metrics.json" in response.json()["detail"]
        response = http.post("/api/predict", files={"file": ("x.png", _png(fashion.x_test[0]))},
                             data={"run": "good"})
        assert response.status_code == 200, response.text
        response = http.post("/api/predict", files={"file": ("x.png", _png(fashion.x_test[0]))})
        assert response.json()["run"] == "good"  # the newest healthy run is the default


def test_the_servers_folders_are_cut_from_paths_where_they_start_only(out, tmp_path, monkeypatch):
    shutil.copytree(out / "runs" / "broken", tmp_path / "o" / "runs" / "demo")
    monkeypatch.chdir(tmp_path)
    with client(Path("o")) as http:  # serve --out o: its "o/" is also inside "demo/"
        assert http.get("/api/runs").json()[0]["damaged"].startswith("runs/demo/metrics.json: missing")


def test_a_run_folder_whose_name_is_not_utf8_is_listed_as_damaged_in_text_json_can_carry(out):
    bad = out / "runs" / os.fsdecode(b"bad\xff")  # its name came as a lone surrogate: the page's list failed, 500
    shutil.copytree(out / "runs" / "good", bad)
    try:
        with client(out) as http:
            response = http.get("/api/runs")
            assert response.status_code == 200, response.text
            runs = {r["name"]: r for r in response.json()}
        assert runs["bad\ufffd"]["damaged"] == ("runs/bad\ufffd: its name is not UTF-8: rename it to 'bad' (in its "
                                                 """folder: mv "$(printf 'bad\\377')" bad)""")
        assert runs["good"]["damaged"] is None and runs["good"]["default"]
        result = run_cli("runs", "list", "--out", str(out), "--json")
        assert result.returncode == 0, result.stderr
        listed = {r["name"]: r for r in json.loads(result.stdout)}  # "bad\udcff" before: no JSON text a parser takes
        assert listed["bad\ufffd"]["path"] == f"{out}/runs/bad\ufffd" and listed["good"]["damaged"] is None
    finally:
        shutil.rmtree(bad)


def test_errors_are_json_with_status_by_class(out, tmp_path, monkeypatch):
    local = tmp_path / "o"
    shutil.copytree(out, local)
    (local / "runs" / "good" / "report.html").unlink()
    with client(local) as http:
        for path in ("/api/runs/" + "a" * 300, "/api/runs/..", "/api/runs/.lock-good", "/runs/nope/report.html"):
            response = http.get(path)
            assert response.status_code == 404 and response.json()["detail"], path
        response = http.get("/runs/good/report.html")
        assert response.status_code == 500 and "report.html: missing" in response.json()["detail"]
        os.mkfifo(local / "runs" / "good" / "report.html")  # a pipe read would hold the request for ever
        response = http.get("/runs/good/report.html")
        assert response.status_code == 500 and "report.html: not a regular file" in response.json()["detail"]
        response = http.post("/api/compare", data={"a": "good", "b": "nope"})
        assert response.status_code == 404 and "nope" in response.json()["detail"]
    # an injected bug is a JSON 500 that says so, not "bad input"
    monkeypatch.setattr(web_app, "read_config_and_metrics", lambda run_dir: 1 / 0)
    with client(local) as http:
        response = http.get("/api/runs/good")
        assert response.status_code == 500 and "internal error (ZeroDivisionError)" in response.json()["detail"]


def _png(image) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(255 - image).save(buffer, format="PNG")  # dark object on white, like a drawing
    return buffer.getvalue()


def test_infinite_parameter_reads_as_inf_not_null(out):
    with client(out) as http:
        response = http.get("/api/runs/unpenalised")
    assert response.status_code == 200 and response.json()["config"]["params"]["C"] == "inf"


def test_what_a_damaged_or_linked_run_holds_is_refused_not_served(out, tmp_path):
    import json

    local = tmp_path / "o"
    shutil.copytree(out, local, symlinks=True)
    metrics = json.loads((local / "runs" / "good" / "metrics.json").read_text())
    shutil.copytree(local / "runs" / "good", local / "runs" / "nan")
    (local / "runs" / "nan" / "metrics.json").write_text(json.dumps({**metrics, "accuracy": float("nan")}))
    shutil.copytree(local / "runs" / "good", local / "runs" / "linked")
    secret = tmp_path / "secret.html"
    secret.write_text("not the server's to give")
    (local / "runs" / "linked" / "report.html").unlink()
    (local / "runs" / "linked" / "report.html").symlink_to(secret)
    shutil.copytree(local / "runs" / "good", local / "runs" / "badrow")
    rows = [{"index": 0, "true": 99, "predicted": 0, "p_true": 0.1, "loss": 2.3}]
    (local / "runs" / "badrow" / "metrics.json").write_text(json.dumps({**metrics, "top_losses": rows}))
    with client(local) as http:
        runs = {r["name"]: r for r in http.get("/api/runs").json()}  # NaN made the page's table fail
        assert "'accuracy' must be a fraction from 0 to 1, got nan" in runs["nan"]["damaged"]
        response = http.get("/runs/linked/report.html")
        assert response.status_code == 500 and "not the server's" not in response.text
        assert response.json()["detail"] == "runs/linked/report.html: a link out of its folder, not served"
        response = http.get("/api/runs/badrow/mistakes")  # was an IndexError: "a bug in mnistlab"
        assert response.status_code == 500 and "top_losses entry 0 is not a test image's index" in response.text
        assert str(local) not in response.text  # the server's folders are not told
        assert http.get("/compare/" + "a" * 300 + "/compare.html").status_code == 404  # was a 500


def test_a_default_run_of_another_store_may_not_share_a_name_with_one_of_this_store(out, tmp_path):
    namesake = tmp_path / "runs" / "good"
    shutil.copytree(out / "runs" / "good", namesake)  # the page would list one and answer with the other
    with pytest.raises(ParameterError, match="has the name of the run 'good'"):
        create_app(out, default_run=str(namesake))
    create_app(out, default_run=str(out / "runs" / "good"))  # itself, given by its path


def test_other_web_sites_are_not_answered(out):
    with client(out) as http:
        response = http.post("/api/compare", data={"a": "good", "b": "unpenalised"},
                             headers={"Origin": "http://attacker.example"})
        assert response.status_code == 403 and not (out / "compare" / "good-vs-unpenalised").exists()
        assert http.get("/api/runs", headers={"Host": "attacker.example"}).status_code == 200  # not bound locally
    with client(out, loopback=True) as http:  # as `serve` on 127.0.0.1: a rebound name is refused too
        assert http.get("/api/runs", headers={"Host": "attacker.example:8000"}).status_code == 403
        for host in ("127.0.0.1:8000", "localhost", "[::1]:8000"):
            assert http.get("/api/runs", headers={"Host": host}).status_code == 200, host
        page = http.post("/api/compare", data={"a": "good", "b": "unpenalised"},  # the page's own request
                         headers={"Host": "127.0.0.1:8000", "Origin": "http://127.0.0.1:8000"})
        assert page.status_code == 200, page.text
        assert str(out) not in page.text  # the server's folders are not said (compare.json records the runs')
        assert http.get("/api/runs", headers={"Host": "localhost.:8000"}).status_code == 200
        assert http.get("/api/runs", headers={"Host": "mnist.example.com"}).status_code == 403
    with client(out, loopback=True, hosts=frozenset({"mnist.example.com"})) as http:  # behind a reverse proxy
        assert http.get("/api/runs", headers={"Host": "mnist.example.com"}).status_code == 200
        proxied = http.post("/api/compare", data={"a": "good", "b": "unpenalised"},  # nginx's Host $proxy_host
                            headers={"Host": "127.0.0.1:8000", "Origin": "https://mnist.example.com"})
        assert proxied.status_code == 200, proxied.text
    with client(out, loopback=True, hosts=frozenset({"[2001:db8::1]"})) as http:  # an address, as given to --allow-host
        assert http.get("/api/runs", headers={"Host": "[2001:db8::1]:8000"}).status_code == 200  # was 403
    with client(out, loopback=True, hosts=frozenset({"2001:0db8:0:0::1"})) as http:  # as typed; as a browser sends it
        assert http.get("/api/runs", headers={"Host": "[2001:db8::1]:8000"}).status_code == 200
    with client(out, loopback=True) as http:
        for headers in ({"Host": "["}, {"Host": "127.0.0.1", "Origin": "http://[x"}):  # were 500s: "a bug"
            assert http.post("/api/compare", data={"a": "good", "b": "unpenalised"}, headers=headers).status_code == 403


def test_a_name_to_allow_is_a_host_name_or_an_address_alone():
    for given, compared in [("Mnist.Example.com.", "mnist.example.com"), ("[2001:0db8::0:1]", "2001:db8::1"),
                            ("10.0.0.5", "10.0.0.5"), ("my_box", "my_box")]:
        assert allowed_host(given) == compared
    for given in [".", "[2001:db8::1", "mnist.example.com:8443", "https://mnist.example.com", "", "a..b", "-x.com"]:
        with pytest.raises(ParameterError, match="give a host name or an address alone"):  # "." and "[…" matched
            allowed_host(given)  # no request, so every one would have been refused


def test_a_request_without_a_host_is_answered_on_this_machine():
    """HTTP/1.0 health checks send none; no browser's request lacks one, so there is nothing to rebind."""
    answered = []

    async def app(scope, receive, send):
        answered.append(scope["path"])

    scope = {"type": "http", "method": "HEAD", "path": "/", "headers": [], "client": ("127.0.0.1", 1)}
    asyncio.run(SameSite(app, loopback=True)(scope, None, None))
    assert answered == ["/"]


def test_pages_are_whole_files_and_answer_head_and_damage_without_folders(out, tmp_path):
    local = tmp_path / "o"
    shutil.copytree(out, local)
    with client(local) as http:
        get = http.get("/runs/good/report.html")
        assert get.status_code == 200 and get.content == (local / "runs" / "good" / "report.html").read_bytes()
        assert http.head("/runs/good/report.html").status_code == 200
        broken = next(r for r in http.get("/api/runs").json() if r["name"] == "broken")
        assert broken["damaged"] == "runs/broken/metrics.json: missing"  # not the server's folders


def test_predictions_past_the_waiting_limit_are_told_to_come_back(out, fashion, monkeypatch):
    monkeypatch.setattr(web_app, "IN_FLIGHT_PER_WORKER", 0)  # as if every place were taken by uploads waiting
    with client(out) as http:
        response = http.post("/api/predict", files={"file": ("x.png", _png(fashion.x_test[0]))})
        assert response.status_code == 503 and response.headers["Retry-After"] == "1"
        assert "waiting already" in response.json()["detail"]


def test_a_page_of_a_run_that_is_gone_is_a_page_for_a_browser(out):
    """A report's link to a run deleted meanwhile opened raw JSON: {"detail":"no run named 'lr'"}."""
    with client(out) as http:
        opened = http.get("/runs/gone/report.html", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
        assert opened.status_code == 404 and opened.headers["content-type"].startswith("text/html")
        assert "no run named &#x27;gone&#x27;" in opened.text and "href='/'" in opened.text
        assert http.get("/runs/gone/report.html").json() == {"detail": "no run named 'gone'"}  # a client's: JSON
        opened = http.get("/compare/gone/compare.html", headers={"Accept": "text/html"})
        assert opened.status_code == 404 and "no such comparison" in opened.text


def test_serve_warns_of_an_out_folder_that_does_not_exist(out, tmp_path):
    """`runs list` warned of it; `serve` started silently, its page listing no runs. Not where --run is a run's
    folder elsewhere, which the page lists (the default --out, absent, had been warned of)."""
    said = []
    for run in ([], ["--run", str(out / "runs" / "good")]):
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "mnistlab", "serve", "--out", str(tmp_path / "nope"), *run,
                                   "--port", str(port), "--workers", "1"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        try:
            assert server.stdout.readline().startswith("mnistlab web page on")  # serving, after the warning
            _answering(port)  # a Ctrl-C before uvicorn has its handlers in place can be lost (30 s in a busy suite)
        finally:
            server.send_signal(signal.SIGINT)
            said.append(server.communicate(timeout=30)[1])
    assert said[0].startswith(f"warning: no runs in {tmp_path / 'nope'}: the folder does not exist\n"), said[0]
    assert "warning" not in said[1], said[1]


def _answering(port: int, seconds: float = 60) -> None:
    """Wait until a server on ``port`` answers HTTP."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/runs", timeout=5).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"nothing answers on port {port}"
            time.sleep(0.1)
