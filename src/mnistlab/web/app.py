"""The web page and its JSON API (FastAPI): predict a photo or a drawing, browse and compare runs.

Every answer, errors included, is JSON with a clear ``detail`` (a page's error is a small page where a browser
opened it); ``ANSWERS`` lists the statuses (the reference page at /docs shows it). The status comes from the
error's class (``STATUS``), never from its message. Nothing a request sends can
stop the server.
"""

from __future__ import annotations

import html
import ipaddress
import os
import re
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from .._io import finite_json, read_regular_file
from ..errors import (
    BlankPhotoError,
    MnistlabError,
    ModelFileError,
    ParameterError,
    PhotoError,
    RunDamagedError,
    RunExistsError,
    RunNotFoundError,
)
from ..experiments.store import (
    COMPARE_HTML,
    COMPARISONS,
    REPORT,
    RunStore,
    read_config_and_metrics,
    read_whole,
    summarize,
    validate_name,
    within,
)
from ..inference.photo import MAX_BYTES
from .workers import AnswerTimedOut, PhotoWorkers, WorkerStopped

STATIC = Path(__file__).parent / "static"
UPLOAD_LIMIT = MAX_BYTES
ANSWERS = ("Every answer, errors included, is JSON; an error's `detail` says what was wrong: 413 for an "
           f"upload over {UPLOAD_LIMIT // (1024 * 1024)} MB, 415 for a file that is not an image, 422 for a photo "
           "with nothing in it or a field missing or wrong, 400 for other bad input, 404 for an unknown run, 409 "
           "for a name another request is writing, 500 for a run whose files are damaged, 403 for a request from "
           "another web site, and 503 (with Retry-After) when too many predictions wait or a worker died: send "
           "it again; 503 without it for a prediction stopped after a minute of computing.")
# A run's report and a comparison's page are files anyone can hand over with a run folder: served as
# documents that run no script and load nothing (their figures are data: URIs, their style inline). A
# script planted in one would otherwise run as this page's own, read every answer and post forms here.
FILE_PAGE_HEADERS = {"Content-Security-Policy": "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox",
                     "X-Content-Type-Options": "nosniff"}
MAX_PAGE_BYTES = 64 * 1024 * 1024  # a report's figures are inline: a few MB
IN_FLIGHT_PER_WORKER = 8  # uploads held while a worker is busy: 8 clients on 2 workers wait ~4 each


class TopClass(BaseModel):
    class_: str = Field(alias="class")
    label: int
    probability: float


class Step(BaseModel):
    title: str
    image: str = Field(description="the picture as a data URI: JPEG for the photo-sized ones, PNG for the "
                       "28×28 input")


class PredictAnswer(BaseModel):
    """What /api/predict answers."""

    run: str = Field(description="the run that predicted")
    created: str = Field(description="when that run was trained, as /api/runs lists it: a run trained over it "
                         "(--overwrite) is another, and a page showing the old one reads the runs again")
    class_: str = Field(alias="class", description="the predicted class's name")
    label: int = Field(description="the predicted class's index")
    probabilities: dict[str, float] = Field(description="class name → probability")
    top: list[TopClass] = Field(description="the three most probable classes, most probable first")
    image: list[list[int]] = Field(description="the 28×28 input the model saw, rows of 0–255 (object bright)")
    image_png: str = Field(description="the same input as a PNG data URI")
    steps: list[Step] = Field(description="how the photo became the input: the photo in grayscale, the object "
                              "found in it (green) and what was dropped (red), the 28×28 input")
    notes: list[str] = Field(description="what the conversion dropped (stray lines, marks far from the object) "
                             "or undid (a tilt), one line each")
    explanation_png: str | None = Field(description="the predicted class's evidence map as a PNG data URI "
                                        "(blue: for, red: against); null under the ONNX engine, whose graph gives "
                                        "probabilities only")


# Most specific first: the first class an error is an instance of sets its status.
STATUS: list[tuple[type[MnistlabError], int]] = [
    (BlankPhotoError, 422), (PhotoError, 415), (RunNotFoundError, 404), (ParameterError, 422),
    (RunDamagedError, 500), (ModelFileError, 500), (RunExistsError, 409), (MnistlabError, 400),
]


def status_of(exc: MnistlabError) -> int:
    return next(code for cls, code in STATUS if isinstance(exc, cls))


def error_answer(request: Request, detail, status: int, headers: dict | None = None) -> Response:
    """``{"detail": detail}``; for a page (a report, a comparison) that a browser opens, a small page saying it:
    a report's link to a run deleted meanwhile opened raw JSON, ``{"detail":"no run named 'lr'"}``."""
    if request.url.path.endswith(".html") and "text/html" in request.headers.get("accept", ""):
        return Response(f"<!DOCTYPE html><meta charset='utf-8'><title>mnistlab: {status}</title>"
                        f"<p>{html.escape(str(detail))}</p><p><a href='/'>Back to the runs</a></p>",
                        status, headers={**FILE_PAGE_HEADERS, **(headers or {})}, media_type="text/html")
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


class UploadLimit:
    """ASGI middleware: a POST whose body is over ``limit`` bytes is answered 413, at once where its
    Content-Length says so, else as soon as that much has come (a chunked upload says no length) —
    nothing beyond the limit is read, or spooled to disk by the form parser."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        too_large = HTTPException(413, f"upload larger than {UPLOAD_LIMIT // (1024 * 1024)} MB")
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            return await JSONResponse({"detail": too_large.detail}, 413)(scope, receive, send)
        received = 0

        async def counted_receive():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise too_large  # out of the form's parsing, which passes it on, to the handler that answers
            return message

        await self.app(scope, counted_receive, send)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address, IPv6 in brackets or not) names this machine only."""
    host = host.strip("[]").lower().removesuffix(".")  # "localhost." is localhost too
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _netloc(url: str) -> str | None:
    try:
        return urlsplit(url).netloc.lower()
    except ValueError:  # a malformed Origin: no site's
        return None


def host_of(value: str) -> str | None:
    """The host a Host header (``name:port``), an Origin (``scheme://name:port``) or an address alone names, as
    compared: lower case, without brackets or a final dot, an address in its one canonical spelling
    (``[2001:0db8::0:1]`` is ``2001:db8::1``, as a browser sends it); None where it names none (``[``)."""
    if (address := canonical_address(value.strip("[]"))) is not None:
        return address
    try:
        host = urlsplit(value if "//" in value else f"//{value}").hostname
    except ValueError:
        return None
    return (canonical_address(host) or host.removesuffix(".")) if host else None


# a DNS name: dot-separated labels of letters, digits, - (not at either end) and _ (as container names have)
HOST_NAME = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)(\.(?!-)[a-z0-9_-]{1,63}(?<!-))*\.?", re.IGNORECASE)


def allowed_host(text: str) -> str:
    """A name the server is also reached by (``serve --allow-host``) as the Host checks compare it; a
    ParameterError where ``text`` is not a host name or an address alone: with a port, a scheme, a path or
    nothing of a name in it (``.``), it would match no request, and every one would be refused."""
    inner = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    if (address := canonical_address(inner)) is not None:
        return address
    if HOST_NAME.fullmatch(text):
        return text.lower().removesuffix(".")
    raise ParameterError("allow_host", f"give a host name or an address alone (mnist.example.com, 10.0.0.5, "
                                       f"2001:db8::1), got {text!r}")


def canonical_address(text: str) -> str | None:
    """The IP address ``text`` (IPv6 without brackets) in its one canonical spelling; None if it is none."""
    try:
        return ipaddress.ip_address(text).compressed
    except ValueError:
        return None


class SameSite:
    """ASGI middleware against other web sites: a POST whose Origin is another site's is answered 403 (a page
    anywhere can make the browser send a form here, to write comparisons); with ``loopback`` (a server bound to
    this machine only), so is any request whose Host is not this machine's, as a site's own name made to
    resolve to 127.0.0.1 sends (DNS rebinding, which would let it read the answers). ``hosts``: the names it is
    also reached by (a reverse proxy's), in the Host or the Origin."""

    def __init__(self, app, loopback: bool, hosts: frozenset[str] = frozenset()):
        self.app, self.loopback, self.hosts = app, loopback, {allowed_host(h) for h in hosts}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            host, origin = headers.get("host"), headers.get("origin")
            # no Host at all (HTTP/1.0, a health check): no browser's request, so no rebinding
            if self.loopback and host is not None and not (is_loopback(name := host_of(host) or "")
                                                           or name in self.hosts):
                return await JSONResponse({"detail": "this server answers requests to this machine's own address "
                                                     "only (serve --allow-host NAME for a name it is reached by)"},
                                          status_code=403)(scope, receive, send)
            if scope["method"] == "POST" and origin is not None and not (
                    _netloc(origin) == (host or "").lower() or host_of(origin) in self.hosts):
                return await JSONResponse({"detail": "a request from another web site; not answered (serve "
                                                     "--allow-host NAME for a name the page is reached by)"},
                                          status_code=403)(scope, receive, send)
        await self.app(scope, receive, send)


def create_app(out: Path, default_run: str | Path | None = None, workers: int | None = None,
               engine: str = "native", loopback: bool = False, hosts: frozenset[str] = frozenset()) -> FastAPI:
    """The application serving runs found under ``out``; ``workers`` processes predict
    (default: one per core) with ``engine`` ("native" or "onnx", see ``workers``). ``default_run``
    (a name or a run folder's path) predicts when a request names none; it must be a run, or
    this raises RunNotFoundError before anything starts (with the onnx engine, it is exported
    now if it has not been, and a run that cannot be raises ExportError). ``loopback``: the server listens
    on this machine's own address only, and answers requests made to it only (``SameSite``), or to ``hosts``
    (other names it is reached by: a reverse proxy's)."""
    store = RunStore(out)
    store.check_out()  # an out that is a run's folder, or holds runs itself: said before serving, not on the page
    default_dir = store.resolve(default_run) if default_run is not None else None  # "" is refused, as elsewhere
    if default_dir is not None and (damage := summarize(default_dir).damaged) is not None:
        raise RunDamagedError(damage)  # now, as a listing says it and every command refuses it; not at each request
    in_flight = 0  # predictions read or waiting: past max_in_flight, memory would grow with every upload
    if default_dir is not None and (namesake := store.root / default_dir.name).exists() \
            and namesake.resolve() != default_dir.resolve():  # one name for two runs: the page would mix them
        raise ParameterError("run", f"{default_dir} has the name of the run {default_dir.name!r} of {store.root}; "
                                    "serve it with its own --out, or rename one of them")
    photo_workers = PhotoWorkers(workers, engine)
    max_in_flight = IN_FLIGHT_PER_WORKER * photo_workers.processes
    if default_dir is not None:
        photo_workers.export_missing(default_dir)

    def without_folders(text: str) -> str:
        """``text`` with the server's folders cut from the paths it names (runs/NAME/metrics.json)."""
        # the longest first: "mnistlab-out/" cut from inside "/srv/x/mnistlab-out/" left the server's "/srv/x/"
        # (a set's order, which the hash seed picks)
        folders = {str(out), str(out.resolve()), *([str(default_dir.parent)] if default_dir is not None else [])}
        for folder in sorted(folders, key=len, reverse=True):  # where a path starts: serve --out o had cut the
            # "o/" of run demo's "runs/demo/metrics.json" too ("runs/demmetrics.json")
            text = re.sub(rf"(?<![^\s'\"(\[=]){re.escape(folder + os.sep)}", "", text)
        return text

    def page(path: Path, folder: Path) -> Response:
        """The HTML file ``path``, unless it leads out of ``folder`` (a symbolic link) or is no regular file of
        at most MAX_PAGE_BYTES (a named pipe would hold the request for ever). Read at once: a run replaced
        meanwhile (``--overwrite``) gives the old file or the new one, not one's length and the other's bytes."""
        if path.resolve().is_file() and not within(path, folder):  # a link, of the file or of a folder above it
            raise RunDamagedError(f"{path}: a link out of its folder, not served")
        return Response(read_regular_file(path, MAX_PAGE_BYTES, RunDamagedError), media_type="text/html",
                        headers=FILE_PAGE_HEADERS)

    def default_run_dir() -> Path:
        """The default run's folder; one deleted (or moved) since the server started is no run, as a run named
        that is not there: its listing said it was damaged ("config.json: missing"), a prediction the same."""
        if not default_dir.exists():
            raise RunNotFoundError(f"no run named {default_dir.name[:100]!r}")
        return default_dir.resolve()

    def find_run(name: str) -> Path:
        """A run under ``<out>/runs`` by plain name (never a path a client chose), or the default run."""
        if default_dir is not None and name == default_dir.name:
            return default_run_dir()
        try:
            return store.resolve(store.path(name)).resolve()
        except (ParameterError, RunNotFoundError):  # said without the server's folders
            raise RunNotFoundError(f"no run named {name[:100]!r}") from None

    def pick_run(run: str | None) -> Path:
        if run:
            return find_run(run)
        if default_dir is not None:
            return default_run_dir()
        healthy = [r for r in store.list() if r.damaged is None]
        if not healthy:
            raise RunNotFoundError("no trained runs: train one with `mnistlab train logreg`")
        return Path(healthy[0].path).resolve()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        photo_workers.start()
        yield
        photo_workers.close()

    app = FastAPI(title="mnistlab", summary="Predict photos and drawings; browse and compare training runs.",
                  description=ANSWERS,
                  version="1", lifespan=lifespan, docs_url=None, redoc_url=None)

    @app.exception_handler(HTTPException)
    async def json_errors(request: Request, exc: HTTPException) -> Response:
        return error_answer(request, exc.detail, exc.status_code, exc.headers)

    @app.exception_handler(MnistlabError)
    async def mnistlab_errors(request: Request, exc: MnistlabError) -> Response:
        return error_answer(request, without_folders(str(exc)), status_of(exc))

    @app.exception_handler(Exception)
    async def internal_errors(request: Request, exc: Exception) -> JSONResponse:
        # A bug, not bad input; the server logs the traceback and goes on serving.
        return JSONResponse({"detail": f"internal error ({type(exc).__name__}); this is a bug in mnistlab"},
                            status_code=500)

    @app.exception_handler(RequestValidationError)
    async def request_errors(request: Request, exc: RequestValidationError) -> JSONResponse:
        # what was wrong where, without the input itself (an uploaded file's object, its internals)
        return JSONResponse({"detail": [{key: e[key] for key in ("type", "loc", "msg") if key in e}
                                        for e in exc.errors()]}, status_code=422)

    app.add_middleware(UploadLimit, limit=UPLOAD_LIMIT + 64 * 1024)  # the form's own bytes besides the file
    app.add_middleware(SameSite, loopback=loopback, hosts=hosts)  # added last: the first to see a request

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)  # HEAD: what health checks send
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.api_route("/docs", methods=["GET", "HEAD"], include_in_schema=False)
    def api_reference() -> FileResponse:
        """The API's reference, drawn from /openapi.json by a page of our own: FastAPI's loads from a CDN."""
        return FileResponse(STATIC / "api.html")

    @app.get("/api/runs", summary="All runs: dataset, model, accuracy, macro F1, training time, date")
    def runs() -> list[dict]:
        """Damaged runs are listed too, with ``damaged`` saying why."""
        rows = [{k: v for k, v in r.as_dict().items() if k != "path"} for r in store.list()]
        if default_dir is not None and default_dir.exists() and not any(r["name"] == default_dir.name for r in rows):
            rows.insert(0, {k: v for k, v in summarize(default_dir).as_dict().items() if k != "path"})
        for r in rows:
            if r["damaged"] is not None:  # as every error answer, without the server's folders
                r["damaged"] = without_folders(r["damaged"])
        healthy = [r["name"] for r in rows if r["damaged"] is None]
        default = default_dir.name if default_dir is not None else healthy[0] if healthy else None
        for r in rows:
            r["default"] = r["name"] == default
        return finite_json(rows)

    @app.get("/api/runs/{name}", summary="One run's configuration and metrics")
    def run(name: str) -> dict:
        run_dir = find_run(name)
        (config, metrics), _ = read_whole(run_dir, read_config_and_metrics)  # of one run, if trained over meanwhile
        return {"name": run_dir.name, "config": finite_json(config), "metrics": finite_json(metrics),
                "report": f"/runs/{run_dir.name}/report.html"}

    @app.get("/api/runs/{name}/mistakes", summary="Where a run's model is wrong: top losses and calibration")
    def run_mistakes(name: str) -> dict:
        """The test images with the highest loss (each with its image, its evidence map for the predicted
        class, and the probability of its true class) and the reliability diagram, ECE and Brier score."""
        from .mistakes import mistakes  # loads the model and the test images: only when asked

        return finite_json(mistakes(find_run(name)))

    @app.api_route("/runs/{name}/report.html", methods=["GET", "HEAD"], include_in_schema=False)
    def report(name: str) -> Response:
        run_dir = find_run(name)
        return page(run_dir / REPORT, run_dir)

    @app.post("/api/predict", summary="Predict the class of an uploaded photo or drawing",
              response_model=PredictAnswer)
    async def predict(file: UploadFile = File(..., description="The image (JPEG, PNG, …)"),
                      run: str | None = Form(None, description="Run name; default: the newest run")) -> JSONResponse:
        nonlocal in_flight
        if in_flight >= max_in_flight:  # each holds its upload in memory while it waits for a worker
            raise HTTPException(503, f"{in_flight} predictions are waiting already; send it again shortly",
                                headers={"Retry-After": "1"})
        in_flight += 1  # one thread (the event loop) counts: no lock
        try:
            data = await file.read(UPLOAD_LIMIT + 1)
            if len(data) > UPLOAD_LIMIT:
                raise HTTPException(413, f"upload larger than {UPLOAD_LIMIT // (1024 * 1024)} MB")
            run_dir = pick_run(run)
            answer = await photo_workers.answer(run_dir, data)
        except AnswerTimedOut as exc:  # the same request would take as long again
            raise HTTPException(503, str(exc)) from None
        except WorkerStopped as exc:
            # The pool is already replaced: the same request, sent again, is answered.
            raise HTTPException(503, str(exc), headers={"Retry-After": "1"}) from None
        finally:
            in_flight -= 1
        # Plain JSON types already: FastAPI's generic (slow) encoder is skipped;
        # response_model only documents the answer.
        return JSONResponse(answer)

    @app.post("/api/compare", summary="Compare two runs (McNemar's test, plots); writes compare.html")
    def compare(a: str = Form(..., description="Baseline run"), b: str = Form(..., description="Other run")) -> dict:
        # matplotlib and the report are loaded only when a comparison is asked for
        from ..experiments.compare import compare_runs

        folder, result = compare_runs([find_run(a), find_run(b)], out)
        runs = [{k: v for k, v in r.items() if k != "run_dir"} for r in result["runs"]]  # as /api/runs: no folders
        return finite_json({**result, "runs": runs, "report": f"/compare/{folder.name}/{COMPARE_HTML}"})

    @app.api_route(f"/compare/{{name}}/{COMPARE_HTML}", methods=["GET", "HEAD"], include_in_schema=False)
    def compare_page(name: str) -> Response:
        try:
            return page(out / COMPARISONS / validate_name(name, "comparison") / COMPARE_HTML, out / COMPARISONS)
        except (ParameterError, RunDamagedError):  # a name no comparison can have (a NUL, 300 characters)
            raise HTTPException(404, "no such comparison") from None

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app

