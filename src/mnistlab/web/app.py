"""The web page and its JSON API (FastAPI): predict a photo or a drawing, browse and compare runs.

Every answer, errors included, is JSON with a clear ``detail``: an upload over
the size limit is 413, a file that is not an image 415, a photo with nothing
in it 422, an unknown run 404. Nothing a request sends can stop the server.
"""

from __future__ import annotations

import base64
import io
import json
import threading
from pathlib import Path

import numpy as np
from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse
from fastapi.concurrency import run_in_threadpool
from fastapi.staticfiles import StaticFiles
from PIL import Image

from ..artifacts import ModelFileError
from ..compare import compare_runs
from ..inference import Predictor
from ..photo import MAX_BYTES, PhotoError
from ..training import list_runs, read_config, runs_dir

STATIC = Path(__file__).parent / "static"
UPLOAD_LIMIT = MAX_BYTES


def _png_data_uri(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _explanation_image(contributions: np.ndarray, label: int) -> str:
    """The predicted class's contribution map as a red/blue PNG (blue: for, red: against)."""
    values = contributions[label].reshape(28, 28)
    scale = float(np.abs(values).max()) or 1.0
    t = np.clip(values / scale, -1, 1)[..., None]
    white = np.ones(3)
    blue, red = np.array([0.13, 0.40, 0.67]), np.array([0.70, 0.09, 0.17])
    rgb = np.where(t >= 0, white + t * (blue - white), white - t * (red - white))
    return _png_data_uri((rgb * 255).round().astype(np.uint8))


def find_run(name: str, out: Path) -> Path:
    """A run folder under ``<out>/runs`` by plain name (never a path a client chose)."""
    run_dir = runs_dir(out) / name
    if "/" in name or "\\" in name or name.startswith(".") or not (run_dir / "config.json").is_file():
        raise HTTPException(404, f"no run named {name!r}")
    return run_dir.resolve()


class Models:
    """Loaded runs, reloaded when a run folder changes; safe to share between threads."""

    def __init__(self, out: Path):
        self.out = out
        self._cache: dict[Path, tuple[float, Predictor]] = {}
        self._lock = threading.Lock()

    def get(self, run: str) -> Predictor:
        run_dir = find_run(run, self.out)
        stamp = (run_dir / "model.npz").stat().st_mtime
        with self._lock:
            cached = self._cache.get(run_dir)
            if cached is None or cached[0] != stamp:
                try:
                    cached = (stamp, Predictor(run_dir))
                except ModelFileError as exc:
                    raise HTTPException(500, f"run {run!r} has a bad model file: {exc}") from None
                self._cache[run_dir] = cached
            return cached[1]


def create_app(out: Path, default_run: str | None = None) -> FastAPI:
    """The application serving runs found under ``out``."""
    out = Path(out)
    models = Models(out)
    app = FastAPI(title="mnistlab", summary="Predict photos and drawings; browse and compare training runs.",
                  version="1")

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

    @app.post("/api/predict", summary="Predict the class of an uploaded photo or drawing")
    async def predict(file: UploadFile = File(..., description="The image (JPEG, PNG, …)"),
                      run: str | None = Form(None, description="Run name; default: the newest run")) -> dict:
        data = await file.read(UPLOAD_LIMIT + 1)
        if len(data) > UPLOAD_LIMIT:
            raise HTTPException(413, f"upload larger than {UPLOAD_LIMIT // (1024 * 1024)} MB")
        predictor = await run_in_threadpool(models.get, pick_run(run))
        try:  # CPU work off the event loop, so one slow photo doesn't stall other requests
            _, prediction = await run_in_threadpool(predictor.predict_photo, data, explain=True)
        except PhotoError as exc:
            unreadable = "no object" not in str(exc)
            raise HTTPException(415 if unreadable else 422, str(exc)) from None
        return {
            "run": predictor.name, "class": prediction.class_name, "label": prediction.label,
            "probabilities": {c: float(p) for c, p in zip(predictor.classes, prediction.probabilities)},
            "top": prediction.top(3, predictor.classes),
            "image": prediction.pixels.tolist(),
            "image_png": _png_data_uri(prediction.pixels),
            "explanation_png": None if prediction.contributions is None
            else _explanation_image(prediction.contributions, prediction.label),
        }

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
