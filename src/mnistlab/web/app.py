"""The web page and its JSON API (FastAPI): predict a photo or a drawing, browse and compare runs.

Every answer, errors included, is JSON with a clear ``detail``: an upload over
the size limit is 413, a file that is not an image 415, a photo with nothing
in it 422, an unknown run 404. Nothing a request sends can stop the server.
"""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from ..artifacts import ModelFileError
from ..compare import compare_runs
from ..photo import MAX_BYTES, PhotoError
from ..training import list_runs, read_config, runs_dir
from .workers import PhotoWorkers, WorkerStopped

STATIC = Path(__file__).parent / "static"
UPLOAD_LIMIT = MAX_BYTES


class TopClass(BaseModel):
    class_: str = Field(alias="class")
    label: int
    probability: float


class PredictAnswer(BaseModel):
    """What /api/predict answers."""

    run: str = Field(description="the run that predicted")
    class_: str = Field(alias="class", description="the predicted class's name")
    label: int = Field(description="the predicted class's index")
    probabilities: dict[str, float] = Field(description="class name → probability")
    top: list[TopClass] = Field(description="the three most probable classes, most probable first")
    image: list[list[int]] = Field(description="the 28×28 input the model saw, rows of 0–255 (object bright)")
    image_png: str = Field(description="the same input as a PNG data URI")
    explanation_png: str | None = Field(description="the predicted class's evidence map as a PNG data URI "
                                        "(blue: for, red: against), where the model can explain itself")


def find_run(name: str, out: Path) -> Path:
    """A run folder under ``<out>/runs`` by plain name (never a path a client chose)."""
    run_dir = runs_dir(out) / name
    if "/" in name or "\\" in name or name.startswith(".") or not (run_dir / "config.json").is_file():
        raise HTTPException(404, f"no run named {name!r}")
    return run_dir.resolve()


def create_app(out: Path, default_run: str | None = None, workers: int | None = None) -> FastAPI:
    """The application serving runs found under ``out``; ``workers`` processes predict
    (default: one per core)."""
    out = Path(out)
    photo_workers = PhotoWorkers(workers)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        photo_workers.start()
        yield
        photo_workers.close()

    app = FastAPI(title="mnistlab", summary="Predict photos and drawings; browse and compare training runs.",
                  version="1", lifespan=lifespan)

    def pick_run(run: str | None) -> str:
        if run:
            return run
        if default_run:
            return default_run
        runs = list_runs(out)
        if not runs:
            raise HTTPException(404, f"no trained runs in {out / 'runs'}: train one with `mnistlab train logreg`")
        return runs[0]["name"]

    @app.exception_handler(HTTPException)
    async def json_errors(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    @app.middleware("http")
    async def limit_upload_size(request: Request, call_next):
        # Refuse oversized uploads before reading them; the form parser reads
        # the body only after this check.
        length = request.headers.get("content-length")
        if request.method == "POST" and length and length.isdigit() and int(length) > UPLOAD_LIMIT + 64 * 1024:
            return JSONResponse({"detail": f"upload larger than {UPLOAD_LIMIT // (1024 * 1024)} MB"}, 413)
        return await call_next(request)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/api/runs", summary="All runs: dataset, model, accuracy, macro F1, training time, date")
    def runs() -> list[dict]:
        rows = [{k: v for k, v in r.items() if k != "path"} for r in list_runs(out)]
        if rows:
            default = default_run or rows[0]["name"]
            for r in rows:
                r["default"] = r["name"] == default
        return rows

    @app.get("/api/runs/{name}", summary="One run's configuration and metrics")
    def run(name: str) -> dict:
        run_dir = find_run(name, out)
        metrics = json.loads((run_dir / "metrics.json").read_text())
        return {"name": run_dir.name, "config": read_config(run_dir), "metrics": metrics,
                "report": f"/runs/{run_dir.name}/report.html"}

    @app.get("/runs/{name}/report.html", include_in_schema=False)
    def report(name: str) -> FileResponse:
        run_dir = find_run(name, out)
        return FileResponse(run_dir / "report.html", media_type="text/html")

    @app.post("/api/predict", summary="Predict the class of an uploaded photo or drawing",
              response_model=PredictAnswer)
    async def predict(file: UploadFile = File(..., description="The image (JPEG, PNG, …)"),
                      run: str | None = Form(None, description="Run name; default: the newest run")) -> JSONResponse:
        data = await file.read(UPLOAD_LIMIT + 1)
        if len(data) > UPLOAD_LIMIT:
            raise HTTPException(413, f"upload larger than {UPLOAD_LIMIT // (1024 * 1024)} MB")
        run_dir = find_run(pick_run(run), out)
        try:
            answer = await photo_workers.answer(run_dir, data)
        except PhotoError as exc:
            unreadable = "no object" not in str(exc)
            raise HTTPException(415 if unreadable else 422, str(exc)) from None
        except ModelFileError as exc:
            raise HTTPException(500, f"run {run_dir.name!r} has a bad model file: {exc}") from None
        except WorkerStopped as exc:
            raise HTTPException(500, str(exc)) from None
        # Plain JSON types already: FastAPI's generic (slow) encoder is skipped;
        # response_model only documents the answer.
        return JSONResponse(answer)

    @app.get("/api/compare", summary="Compare two runs (McNemar's test, plots); writes compare.html")
    def compare(a: str, b: str) -> dict:
        try:
            folder, result = compare_runs([str(find_run(a, out)), str(find_run(b, out))], out)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        return {**result, "report": f"/compare/{folder.name}/compare.html"}

    @app.get("/compare/{name}/compare.html", include_in_schema=False)
    def compare_page(name: str) -> FileResponse:
        path = (out / "compare" / name / "compare.html").resolve()
        if not path.is_file() or (out / "compare").resolve() not in path.parents:
            raise HTTPException(404, "no such comparison")
        return FileResponse(path, media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app

