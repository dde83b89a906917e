"""The web page and its API, on a real server on 127.0.0.1, driven by Debian's Chromium."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import psutil
import pytest
from PIL import Image

from fixtures.photos import make_photo
from fixtures.server import live_server
from mnistlab.experiments.pipeline import DataChoice, train
from mnistlab.web import app as web_app
from mnistlab.web.app import create_app
from mnistlab.web.workers import PhotoWorkers, WorkerStopped

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("MNISTLAB_TEST_ARTIFACTS", Path(__file__).parent.parent / "test-artifacts"))
TROUSER = 1


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    out = tmp_path_factory.mktemp("web-out")
    data = DataChoice(train_size=3000, test_size=500)
    train("logreg", {"C": 0.1}, data, out, name="logreg-small")
    train("logreg", {"C": 0.001}, data, out, name="logreg-strong")
    return out


@pytest.fixture(scope="module")
def server(out):
    with live_server(create_app(out, default_run="logreg-small")) as url:
        yield url


@pytest.fixture(scope="module")
def trouser_photo(fashion, tmp_path_factory) -> Path:
    """A user-style photo (JPEG, dark garment on a light uneven background) of a test Trouser."""
    index = int(np.flatnonzero(fashion.y_test == TROUSER)[0])
    path = tmp_path_factory.mktemp("photos") / "trouser.jpg"
    path.write_bytes(make_photo(fashion.x_test[index], np.random.default_rng(1), "jpeg"))
    return path


def test_api_predict(server, trouser_photo):
    response = httpx.post(f"{server}/api/predict", files={"file": ("t.jpg", trouser_photo.read_bytes())})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["class"] == "Trouser" and answer["label"] == TROUSER
    assert set(answer["probabilities"]) >= {"Trouser", "Bag"}
    assert abs(sum(answer["probabilities"].values()) - 1) < 1e-4
    assert np.array(answer["image"]).shape == (28, 28)
    assert [step["title"].split(" (")[0] for step in answer["steps"]] == ["your photo", "object found",
                                                                            "what the model saw"]
    assert [step["image"].split(";")[0] for step in answer["steps"]] == ["data:image/jpeg", "data:image/jpeg",
                                                                         "data:image/png"]
    assert answer["notes"] == []  # a clean photo: nothing dropped, nothing turned


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def test_api_errors_and_server_survives(server, trouser_photo):
    floats = np.full((60, 60), 0.8, np.float32)
    floats[30, 30] = np.nan
    buffer = io.BytesIO()
    Image.fromarray(floats).save(buffer, "TIFF")
    tiff_with_nan = buffer.getvalue()
    cases = [
        ({"file": ("x.txt", b"not an image")}, {}, 415),
        ({"file": ("x.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 40)}, {}, 415),
        ({"file": ("big.png", b"0" * (21 * 1024 * 1024))}, {}, 413),
        ({"file": ("banner.png", png(np.full((100, 3000), 220, np.uint8)))}, {}, 415),  # 30:1
        ({"file": ("nan.tiff", tiff_with_nan)}, {}, 415),
        ({"file": ("blank.png", png(np.full((300, 300), 220, np.uint8)))}, {}, 422),
        ({"file": ("t.jpg", trouser_photo.read_bytes())}, {"run": "no-such-run"}, 404),
        ({"file": ("t.jpg", trouser_photo.read_bytes())}, {"run": "../../etc"}, 404),
    ]
    for files, data, status in cases:
        response = httpx.post(f"{server}/api/predict", files=files, data=data, timeout=30)
        assert response.status_code == status, (files["file"][0], response.text)
        assert response.json()["detail"]
    assert httpx.post(f"{server}/api/predict", data={"run": "x"}).status_code == 422  # no file field
    response = httpx.post(f"{server}/api/predict", files={"file": ("t.jpg", b"x"), "run": ("r.bin", b"y")})
    assert response.status_code == 422 and "_file" not in response.text  # said without the upload's internals
    response = httpx.get(f"{server}/api/runs/nope")
    assert response.status_code == 404 and response.json() == {"detail": "no run named 'nope'"}  # no folders
    assert httpx.get(f"{server}/compare/a%00/compare.html").status_code == 404
    assert httpx.get(f"{server}/api/runs").status_code == 200  # still serving


def test_a_chunked_upload_is_refused_once_it_passes_the_limit(out):
    """A body sent in chunks says no length: it is counted as it comes, and nothing past the limit is
    read (the form parser would have spooled all of it to disk first)."""
    import asyncio

    from mnistlab.web.app import UPLOAD_LIMIT

    chunk, pulled, answer = 1 << 20, 0, []

    async def receive():  # 1 GB, if it were all read
        nonlocal pulled
        pulled += 1
        head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n\r\n' if pulled == 1 else b""
        return {"type": "http.request", "body": head + b"0" * chunk, "more_body": pulled < 1000}

    async def send(message):
        answer.append(message)

    scope = {"type": "http", "method": "POST", "path": "/api/predict", "raw_path": b"/api/predict",
             "query_string": b"", "headers": [(b"content-type", b"multipart/form-data; boundary=b")],
             "http_version": "1.1", "scheme": "http", "root_path": "", "server": ("127.0.0.1", 80),
             "client": ("127.0.0.1", 1)}
    asyncio.run(create_app(out)(scope, receive, send))
    assert answer[0]["status"] == 413 and b"upload larger than" in answer[1]["body"]
    assert pulled * chunk <= UPLOAD_LIMIT + 2 * chunk


def test_api_runs_and_openapi(server):
    runs = httpx.get(f"{server}/api/runs").json()
    assert {r["name"] for r in runs} == {"logreg-small", "logreg-strong"}
    assert {"dataset", "model", "accuracy", "macro_f1", "fit_seconds", "created"} <= set(runs[0])
    assert [r["name"] for r in runs if r["default"]] == ["logreg-small"]
    detail = httpx.get(f"{server}/api/runs/logreg-small").json()
    assert detail["config"]["model"] == "logreg" and "accuracy" in detail["metrics"]
    assert httpx.head(f"{server}/").status_code == 200  # what health checks send
    paths = httpx.get(f"{server}/openapi.json").json()["paths"]
    assert {"/api/predict", "/api/runs", "/api/runs/{name}"} <= set(paths)


def minor_page_faults(pid: int) -> int:
    """Pages a process has touched for the first time (Linux: the 10th field of /proc/PID/stat)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[7])


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")
def test_a_worker_reuses_its_memory_from_one_request_to_the_next(out, trouser_photo):
    # By default glibc gives a photo's working memory back after each request and the next one
    # faults it in afresh (~2,000 pages for this photo); the workers keep it.
    workers = PhotoWorkers(1)
    try:
        workers.start()
        run_dir, photo = out / "runs" / "logreg-small", trouser_photo.read_bytes()
        for _ in range(2):
            asyncio.run(workers.answer(run_dir, photo))
        [pid] = workers._pool._processes
        before = minor_page_faults(pid)
        for _ in range(3):
            asyncio.run(workers.answer(run_dir, photo))
        assert (minor_page_faults(pid) - before) / 3 < 100
    finally:
        workers.close()


def test_a_dying_worker_fails_only_its_request(out, trouser_photo):
    workers = PhotoWorkers(1)
    try:
        workers.start()
        run_dir, photo = out / "runs" / "logreg-small", trouser_photo.read_bytes()
        for pid in list(workers._pool._processes):
            os.kill(pid, signal.SIGKILL)
        with pytest.raises(WorkerStopped):
            asyncio.run(workers.answer(run_dir, photo))
        assert asyncio.run(workers.answer(run_dir, photo))["class"] == "Trouser"  # a new pool
    finally:
        workers.close()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} missing: `apt-get install chromium` (make test does it as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"])
        yield instance
        instance.close()


@pytest.fixture
def page(browser):
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    yield context.new_page()
    context.close()


def test_upload_shows_prediction(page, server, trouser_photo):
    page.goto(server)
    page.wait_for_selector("#run-select option", state="attached")
    assert page.locator("#run-select").input_value() == "logreg-small"  # the server's --run
    assert page.get_by_role("combobox", name="Model").count() == 1  # its visible label ("Trained run" hid it)
    page.set_input_files("#file-input", str(trouser_photo))
    page.wait_for_selector("#answer:not([hidden]) #predicted-class:has-text('Trouser')", timeout=20000)
    # said to screen readers in one line (only the comparison and the mistakes' status were)
    assert page.get_by_role("status").filter(has_text="Prediction: Trouser (").filter(
        has_text="%) by logreg-small").count() == 1
    assert page.locator("#top-classes li").count() == 3
    # listed without rank numbers: an MNIST answer read "1. 7 92.8%"
    assert page.locator("#top-classes").evaluate("list => getComputedStyle(list).listStyleType") == "none"
    # the steps: the photo, the object found, the 28×28 input
    steps = page.locator("#steps figure")
    assert steps.count() == 3
    assert steps.nth(1).locator("figcaption").inner_text().startswith("object found")
    # the browser decoded each picture (JPEG for the photo-sized ones, PNG for the 28×28 input)
    assert all(steps.nth(i).locator("img").evaluate("img => img.decode().then(() => img.naturalWidth)") > 0
               for i in range(3))
    page.screenshot(path=ARTIFACTS / "web-upload.png", full_page=True)


def draw_u(page) -> None:
    """A U drawn with the mouse."""
    box = page.locator("#canvas").bounding_box()
    page.mouse.move(box["x"] + 0.35 * box["width"], box["y"] + 0.15 * box["height"])
    page.mouse.down()
    for fx, fy in [(0.35, 0.85), (0.65, 0.85), (0.65, 0.15)]:
        page.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"], steps=12)
    page.mouse.up()


def test_drawing_gets_a_prediction(page, server):
    page.goto(server)
    page.wait_for_selector("#run-select option", state="attached")
    draw_u(page)
    page.click("#predict-drawing")
    page.wait_for_selector("#answer:not([hidden])", timeout=20000)
    predicted = page.locator("#predicted-class").inner_text()
    assert predicted in {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot"}
    page.screenshot(path=ARTIFACTS / "web-drawing.png", full_page=True)


def test_only_the_latest_answer_is_shown_and_a_run_change_clears_it(page, server, tmp_path):
    """A slow upload's answer, arriving after a drawing's, replaced it; the model select left the other run's
    answer, and a run whose mistakes failed to load kept the last run's top losses under its name."""
    page.goto(server)
    page.wait_for_selector("#top-losses button")  # the default run's
    page.evaluate("""() => {
        const realFetch = window.fetch;
        let first = true;
        window.fetch = async (url, options) => {
            const response = await realFetch(url, options);
            if (url === "/api/predict" && first) {
                first = false;
                await new Promise((done) => setTimeout(done, 2000));  // a slow upload's answer
            }
            if (String(url).includes("/mistakes") && !String(url).includes("logreg-small")) {
                return new Response(JSON.stringify({detail: "its test data are gone"}), {status: 400});
            }
            return response;
        };
    }""")
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("not an image")
    page.set_input_files("#file-input", str(not_an_image))  # its error answer comes late
    assert page.locator("#pending").inner_text().startswith("Predicting notes.png with logreg-small")
    draw_u(page)
    page.click("#predict-drawing")  # answered at once
    page.wait_for_selector("#answer:not([hidden])")
    page.wait_for_timeout(3000)
    assert page.locator("#answer").is_visible() and page.locator("#error").is_hidden()  # not "notes.png: …"
    values = page.locator("#run-select option").evaluate_all("options => options.map((o) => o.value)")
    other = next(value for value in values if value != "logreg-small")  # the server's --run: the one shown
    page.select_option("#run-select", other)
    assert page.locator("#result").is_hidden()  # the other run's answer: gone
    page.wait_for_selector(f"#mistakes-status:has-text('{other}: its test data are gone')")
    assert page.locator("#top-losses button").count() == 0 and page.locator("#calibration-text").inner_text() == ""
    # a photo chosen by the keyboard: the label was not focusable (focused and pressed in one step: apart, on a
    # busy machine, the chooser was once not seen within 30 s)
    with page.expect_file_chooser(timeout=60_000) as chooser:
        page.locator("#choose-file").press("Enter")
    assert chooser.value is not None


def test_runs_table_report_and_compare(page, server):
    page.goto(server)
    page.wait_for_selector("#runs-table tbody tr")
    assert page.locator("#runs-table tbody tr").count() == 2
    page.click("#compare-button")
    page.wait_for_selector("#compare-result a")
    assert "McNemar" in page.locator("#compare-result").inner_text()
    message = page.evaluate("getJSON('/api/compare', {method: 'POST', body: new FormData()}).catch((e) => e.message)")
    assert message == "a: Field required; b: Field required"  # a 422's list of problems: "[object Object],…"
    page.get_by_role("link", name="report of logreg-small").click()  # each of the links read "report" alone
    page.wait_for_selector("h1")
    page.wait_for_load_state()  # the figures are inline: under load, the h1 is parsed long before the last one
    assert "logreg" in page.locator("h1").inner_text()
    assert page.locator("img[src^='data:image/png']").count() >= 5
    page.screenshot(path=ARTIFACTS / "web-report.png")


def test_the_onnx_engine_s_answer_shows_no_empty_explanation(page, out, tmp_path, trouser_photo):
    """The ONNX engine draws no explanation map: its picture was hidden, its caption ("Why: …") left alone."""
    import shutil

    import mnistlab as ml

    shutil.copytree(out / "runs" / "logreg-small", tmp_path / "runs" / "exported")
    ml.load_run(tmp_path / "runs" / "exported").export()
    with live_server(create_app(tmp_path, workers=1, engine="onnx")) as url:
        page.goto(url)
        page.wait_for_selector("#run-select option", state="attached")
        page.set_input_files("#file-input", str(trouser_photo))
        page.wait_for_selector("#answer:not([hidden]) #predicted-class:has-text('Trouser')", timeout=20000)
        assert page.locator("#explanation-image").is_hidden() and page.get_by_text("Why: blue pixels").is_hidden()


def test_compare_without_two_runs_says_so(page, tmp_path):
    """With no run to choose, the page showed the server's form check: "a: Field required; b: Field required";
    it said nothing of having no runs until Predict was pressed, and sent an empty drawing to be predicted."""
    with live_server(create_app(tmp_path)) as url:
        page.goto(url)
        page.wait_for_selector("#no-runs:has-text('No runs yet: train one with mnistlab train logreg --out DIR')")
        requests = []
        page.on("request", lambda request: requests.append(request.url))
        page.click("#predict-drawing")
        assert page.get_by_role("alert").filter(has_text="Draw something first").is_visible() and requests == []
        page.click("#compare-button")
        assert page.get_by_role("alert").filter(has_text="No runs to compare yet: train two").is_visible()


def test_a_failed_comparison_is_an_alert_and_leaves_no_earlier_answer(page, server):
    """A comparison's failure was plain text in place of the answer: screen readers were not told."""
    page.goto(server)
    page.wait_for_selector("#runs-table tbody tr")
    page.click("#compare-button")
    page.wait_for_selector("#compare-result a")
    page.evaluate("""() => { window.fetch = async () =>
        new Response(JSON.stringify({detail: "run 'b' has no test predictions"}), {status: 400}); }""")
    page.click("#compare-button")
    page.get_by_role("alert").filter(has_text="run 'b' has no test predictions").wait_for()
    assert page.locator("#compare-result").is_hidden()


def _drop(page, selector, files):
    """Drops files (name, content) on an element, as a file manager would; returns whether the page took it."""
    return page.evaluate("""([selector, files]) => {
        const data = new DataTransfer();
        for (const [name, content] of files) data.items.add(new File([content], name, {type: "image/png"}));
        const event = new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true});
        document.querySelector(selector).dispatchEvent(event);
        return event.defaultPrevented;
    }""", [selector, files])


def test_what_is_dropped_is_predicted_or_refused_aloud(page, server, trouser_photo):
    """Two files dropped predicted the first one, silently; a link dropped on the box did nothing; a photo dropped
    beside the box was opened by the browser in the page's place."""
    page.goto(server)
    page.wait_for_selector("#run-select option", state="attached")
    assert _drop(page, "#drop-zone", [["a.png", "x"], ["b.png", "y"]])
    assert page.locator("#error").inner_text() == "Drop one image at a time: 2 files were dropped."
    assert _drop(page, "#drop-zone p", [])  # a link: no file
    assert page.locator("#error").inner_text().startswith("What was dropped is not a file")
    photo = list(trouser_photo.read_bytes())
    page.set_viewport_size({"width": 1100, "height": 500})
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")  # far from the box (review: answered unseen)
    assert page.evaluate("""([photo]) => {
        const data = new DataTransfer();
        data.items.add(new File([new Uint8Array(photo)], "trouser.jpg", {type: "image/jpeg"}));
        const event = new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true});
        document.querySelector("#mistakes-title").dispatchEvent(event);
        return event.defaultPrevented;
    }""", [photo])
    page.wait_for_selector("#answer:not([hidden]) #predicted-class:has-text('Trouser')", timeout=20000)
    assert 0 <= page.evaluate("document.getElementById('try').getBoundingClientRect().top") < 100
    assert not _drop(page, "#runs-title", [])  # text dragged within the page, dropped beside the box: left alone


def test_a_script_planted_in_a_run_s_report_does_not_run(page, out, tmp_path):
    """A run folder handed over with a script in its report.html: served as the page's own, the script read
    every run and posted comparisons (the same-site check saw this server's own Origin)."""
    import shutil

    planted = tmp_path / "runs" / "planted"
    shutil.copytree(out / "runs" / "logreg-small", planted)
    report = planted / "report.html"
    report.write_text(report.read_text().replace("</body>", "<script>document.title = 'ran';</script></body>"))
    with live_server(create_app(tmp_path)) as url:
        page.goto(f"{url}/runs/planted/report.html")
        page.wait_for_load_state()
        assert page.title() != "ran" and "logreg" in page.locator("h1").inner_text()
        assert page.locator("img[src^='data:image/png']").count() >= 5  # the figures still show


def test_api_reference_needs_nothing_but_the_server(page, server):
    elsewhere = []  # FastAPI's own /docs fetches Swagger UI from a CDN: blank on a machine without internet
    page.context.route(lambda url: not url.startswith(server),
                       lambda route: (elsewhere.append(route.request.url), route.abort()))
    page.goto(f"{server}/docs")
    page.wait_for_selector("#endpoints section")
    titles = page.locator("#endpoints h2").all_inner_texts()
    assert {"POST /api/predict", "GET /api/runs", "POST /api/compare"} <= set(titles)
    predict = page.locator("#endpoints section", has_text="POST /api/predict")
    assert "file" in predict.locator("tbody").inner_text() and "PredictAnswer" in predict.inner_text()
    assert elsewhere == [] and page.locator("#error").is_hidden()
    assert "`" not in page.locator("body").inner_text() and page.locator("code", has_text="detail").count()  # Markdown


def test_phone_sized_screen(browser, server, fashion, tmp_path):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(server)
    page.wait_for_selector("#runs-table tbody tr")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    assert page.locator("#canvas").bounding_box()["width"] <= 390
    # a wide photo's steps keep its shape in the phone's square boxes (they were stretched to 128×128)
    wide = tmp_path / "wide.jpg"
    photo = Image.new("L", (600, 200), 215)
    photo.paste(Image.fromarray(255 - fashion.x_test[1]).resize((170, 170)), (215, 15))
    photo.save(wide)
    page.set_input_files("#file-input", str(wide))
    page.wait_for_selector("#answer:not([hidden]) #steps img", timeout=20000)
    shown = page.locator("#steps img").evaluate_all(
        "imgs => Promise.all(imgs.map(img => img.decode().then(() => [img.naturalWidth / img.naturalHeight, "
        "img.clientWidth / img.clientHeight, getComputedStyle(img).objectFit])))")
    assert shown[0][0] > 1.5 and all(fit == "contain" or abs(box - ratio) < 0.05 for ratio, box, fit in shown)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "web-phone.png", full_page=True)
    page.goto(f"{server}/runs/logreg-small/report.html")  # its tables scroll within themselves
    page.wait_for_load_state()  # (a page wider than the screen widens a phone's window: measured against 390)
    assert page.evaluate("document.documentElement.scrollWidth") <= 391
    context.close()


def test_a_worker_killed_mid_request_is_one_retryable_error(out, fashion):
    """SIGKILL the only worker while it decodes a large photo: that request gets a JSON 503 with
    Retry-After, and the same request sent again is answered by the replacement pool."""
    big = np.full((7000, 7000), 200, np.uint8)  # about 0.3 s of decoding in the worker
    big[2000:4996, 2000:4996] = 255 - fashion.x_test[0].repeat(107, 0).repeat(107, 1)  # dark garment
    files = {"file": ("big.png", png(big))}
    before = {c.pid for c in psutil.Process().children(recursive=True)}
    with live_server(create_app(out, default_run="logreg-small", workers=1)) as url:
        (worker,) = [c for c in psutil.Process().children(recursive=True)
                     # the pool's worker, not multiprocessing's resource tracker (which starts with
                     # the first test in this process that needs it)
                     if c.pid not in before and "spawn_main" in " ".join(c.cmdline())]
        answers = []
        request = threading.Thread(target=lambda: answers.append(httpx.post(f"{url}/api/predict", files=files,
                                                                            timeout=60)))
        idle = sum(worker.cpu_times()[:2])
        request.start()
        while sum(worker.cpu_times()[:2]) < idle + 0.05:  # the worker is busy with this photo
            time.sleep(0.005)
        worker.kill()
        request.join(timeout=60)
        (killed,) = answers
        assert killed.status_code == 503 and killed.headers["retry-after"] == "1"
        assert "can be retried" in killed.json()["detail"]
        again = httpx.post(f"{url}/api/predict", files=files, timeout=60)
        assert again.status_code == 200, again.text


def test_a_prediction_that_does_not_end_is_stopped_with_its_worker(out, fashion, monkeypatch):
    """A worker stuck in one answer (a model file whose graph loops) held every later request, and the
    server could not be stopped: it waited for the worker."""
    from mnistlab.web import workers

    big = np.full((7000, 7000), 200, np.uint8)  # about 0.3 s of decoding in the worker: past the deadline below
    big[2000:4996, 2000:4996] = 255 - fashion.x_test[0].repeat(107, 0).repeat(107, 1)
    files = {"file": ("big.png", png(big))}
    before = {c.pid for c in psutil.Process().children(recursive=True)}
    monkeypatch.setattr(web_app, "IN_FLIGHT_PER_WORKER", 24)  # room for the 20 below to wait
    with live_server(create_app(out, default_run="logreg-small", workers=1)) as url:
        (worker,) = [c for c in psutil.Process().children(recursive=True)
                     if c.pid not in before and "spawn_main" in " ".join(c.cmdline())]

        def at_once(n: int) -> list[httpx.Response]:
            answers = []
            senders = [threading.Thread(target=lambda: answers.append(httpx.post(f"{url}/api/predict", files=files,
                                                                                 timeout=60))) for _ in range(n)]
            for sender in senders:
                sender.start()
            for sender in senders:
                sender.join(60)
            return answers

        monkeypatch.setattr(workers, "ANSWER_SECONDS", 0.1)  # each of these takes longer
        answers = at_once(4)
        # stopped, they would take as long again: said without Retry-After; one computed by another worker
        # of the pool stopped with it can be sent again (those waiting behind a stopped one were 500s, not JSON)
        stopped = [a for a in answers if "retry-after" not in a.headers]
        assert len(answers) == 4 and stopped and all(a.status_code == 503 for a in answers)
        assert all(a.json()["detail"] == "the prediction took longer than 0.1 s and was stopped" for a in stopped)
        assert all(a.headers["retry-after"] == "1" and "can be retried" in a.json()["detail"]
                   for a in answers if a not in stopped)
        assert worker.wait(10) is not None or not worker.is_running()  # killed, not left computing
        monkeypatch.setattr(workers, "ANSWER_SECONDS", 60)
        assert httpx.post(f"{url}/api/predict", files=files, timeout=60).status_code == 200  # a new worker, warm
        # ~6 times what one takes (the next in line may wait for one: 2 under a load of 3); the last waits 19
        monkeypatch.setattr(workers, "ANSWER_SECONDS", 1.8)
        assert [a.status_code for a in at_once(20)] == [200] * 20  # the time waiting is not counted


def test_a_run_trained_over_or_deleted_while_the_page_is_open_is_read_again(page, out, tmp_path, trouser_photo):
    """Trained over with --overwrite, a run's select entry, table row and mistakes stayed the old model's while
    predictions came from the new one; a deleted run stayed listed."""
    import json
    import shutil

    for name in ("logreg-small", "logreg-strong"):
        shutil.copytree(out / "runs" / name, tmp_path / "runs" / name)
    with live_server(create_app(tmp_path, workers=1)) as url:
        page.goto(url)
        page.wait_for_selector("#run-select option", state="attached")
        page.select_option("#run-select", "logreg-small")
        page.wait_for_selector("#top-losses button")
        calibration = page.locator("#calibration-text").inner_text()
        # logreg-small trained over by another model, as `train … --name logreg-small --overwrite` does
        staged = tmp_path / "staged"
        shutil.copytree(out / "runs" / "logreg-strong", staged)
        config = json.loads((staged / "config.json").read_text())
        (staged / "config.json").write_text(json.dumps({**config, "created": "2030-01-02T03:04:05+00:00"}))
        (staged / "model.npz").touch()  # a model file written now
        shutil.rmtree(tmp_path / "runs" / "logreg-small")
        staged.rename(tmp_path / "runs" / "logreg-small")
        page.set_input_files("#file-input", str(trouser_photo))
        page.wait_for_selector("#runs-table tbody tr:has-text('2030-01-02 03:04')")  # the new run's row
        assert page.locator("#run-select").input_value() == "logreg-small"  # still the run chosen
        page.wait_for_function(f"document.getElementById('calibration-text').textContent !== {calibration!r} "
                               "&& document.getElementById('calibration-text').textContent !== ''")
        # deleted: gone from the page when its tab is shown again
        shutil.rmtree(tmp_path / "runs" / "logreg-strong")
        page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
        page.wait_for_function("document.querySelectorAll('#runs-table tbody tr').length === 1")
        assert page.locator("#compare-a option").count() == 1


INK = """() => { const data = document.getElementById('canvas').getContext('2d').getImageData(0, 0, 280, 280).data;
    let dark = 0; for (let i = 0; i < data.length; i += 4) dark += data[i] < 128; return dark; }"""


def test_only_the_finger_or_button_that_began_a_stroke_draws(browser, server):
    """A second finger drew its own lines into the stroke (7,901 dark pixels where the one finger's 40-px stroke
    is ~1,000), a hover after a cancelled touch drew, the right button drew, and a tap drew nothing."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(server)
    page.locator("#canvas").scroll_into_view_if_needed()
    box = page.locator("#canvas").bounding_box()
    x, y = box["x"], box["y"]  # the canvas is 280 px wide on this screen: one CSS pixel per canvas pixel
    cdp = context.new_cdp_session(page)

    def touch(kind, *points):
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [
            {"x": x + px, "y": y + py, "id": i} for i, px, py in points]})

    touch("touchStart", (1, 60, 60))
    touch("touchStart", (1, 60, 60), (2, 220, 230))  # a thumb rests near the corner
    for i in range(1, 6):
        touch("touchMove", (1, 60, 60 + 8 * i), (2, 220, 230 + 2 * i))
    touch("touchEnd")
    one_finger = page.evaluate(INK)
    assert 500 < one_finger < 1300, one_finger  # an 18-px line 40 px long, round ends
    page.click("#clear-drawing")
    touch("touchStart", (3, 100, 100))
    touch("touchMove", (3, 100, 140))
    touch("touchCancel")
    cancelled = page.evaluate(INK)
    page.mouse.move(x + 20, y + 250)
    page.mouse.move(x + 250, y + 250, steps=10)  # no button pressed
    page.mouse.down(button="right")
    page.mouse.move(x + 250, y + 20, steps=10)
    page.mouse.up(button="right")
    assert page.evaluate(INK) == cancelled
    page.click("#clear-drawing")
    touch("touchStart", (4, 140, 140))
    touch("touchEnd")
    assert 150 < page.evaluate(INK) < 400  # a tap: a dot 18 px across
    context.close()


def test_an_answer_that_is_no_json_or_no_answer_is_said_plainly(page, server, trouser_photo):
    """A reverse proxy's HTML 413 showed "Unexpected token '<', "<html><h"... is not valid JSON"; a stopped
    server showed "Failed to fetch"."""
    page.goto(server)
    page.wait_for_selector("#run-select option", state="attached")
    page.route("**/api/predict", lambda route: route.fulfill(
        status=413, content_type="text/html", body="<html><head><title>413 Request Entity Too Large</title></head>"))
    page.set_input_files("#file-input", str(trouser_photo))
    page.wait_for_selector("#error:not([hidden])")
    shown = page.locator("#error").inner_text()  # the reason is the answer's own: Playwright's says "Payload"
    assert shown.startswith("the server answered 413 ") and shown.endswith(" Too Large"), shown
    page.unroute("**/api/predict")
    page.route("**/api/predict", lambda route: route.abort())
    page.set_input_files("#file-input", str(trouser_photo))
    page.wait_for_selector("#error:has-text('cannot reach')")
    assert page.locator("#error").inner_text() == ("cannot reach the mnistlab server (is `mnistlab serve` still "
                                                   "running?)")
    page.route("**/openapi.json", lambda route: route.fulfill(status=502, content_type="text/html", body="<html>"))
    page.goto(f"{server}/docs")
    page.wait_for_selector("#error:not([hidden])")
    assert page.locator("#error").inner_text() == "/openapi.json: the server answered 502 Bad Gateway"
