"""The HTTP app: one model, `/predict` in the JSON `stellartune predict` writes, and the endpoints an
operator needs (`/health`, `/ready`, `/metrics`, `/docs`).

The request and response schemas are built from the model's task (its input names and prediction
fields), so `/docs` and `/openapi.json` describe exactly what this model takes and returns. The model
loads in a background thread: `/health` answers at once, `/ready` once the weights are in.
"""
# No `from __future__ import annotations`: FastAPI reads the endpoint's annotations (a schema built at
# run time) when the endpoint is defined.

import contextlib
import json
import logging
import os
import re
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, create_model
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..data.examples import Columns
from ..errors import StellarError
from ..inference.predictor import FineTunedModel, read_saved
from ..models.loading import check_weights
from ..tasks import task_from_dict
from .batcher import MicroBatcher
from .limits import BodyLimit, LimitExceeded, check_inputs, check_windows, most_windows
from .metrics import ServerMetrics
from .settings import ServeSettings

logger = logging.getLogger("stellartune.serve")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")  # a caller's own X-Request-ID is kept when it looks like one
# A gathered batch runs as length-sorted forward passes of up to 16 texts: one pass over 32 texts of
# mixed lengths pads them all to the longest (30 SST-2 sentences: 100 ms in passes of 16, 132 ms in one)
FORWARD_BATCH = 16
ENVIRONMENT = "STELLARTUNE_SERVE"  # model and settings for each worker process (--workers > 1)


class ServedModel:
    """The model once loaded (None before), or why it could not be."""

    def __init__(self, model: FineTunedModel | None = None):
        self.model, self.error = model, None

    def load_in_background(self, path: str, exit_on_failure: bool) -> None:
        def load():
            try:
                self.model = FineTunedModel.load(path)
                logger.info(f"model loaded from {path}; ready")
            except Exception as e:  # reported by /ready (without server paths) and the log
                reason = str(e).splitlines()[0] if str(e) else type(e).__name__
                if exit_on_failure:  # `stellartune serve`: a server that can never answer stops, saying why
                    print(f"error: {reason}", file=sys.stderr, flush=True)
                    os._exit(2)
                logger.error(f"cannot load the model from {path}: {reason}")
                self.error = reason.replace(str(Path(path).resolve()), "<model>").replace(path, "<model>")

        threading.Thread(target=load, name="stellartune-load", daemon=True).start()


def create_app(model: FineTunedModel | str | Path, settings: ServeSettings | None = None,
               exit_on_load_failure: bool = False, **options) -> FastAPI:
    """An ASGI app serving `model` (a loaded model, a run folder or its model/ folder). A model that cannot be
    loaded is reported by /ready, or with `exit_on_load_failure` (`stellartune serve`) ends the process."""
    settings = settings or ServeSettings(**options)
    if isinstance(model, FineTunedModel):
        task, columns, served, folder = model.task, model.columns, ServedModel(model), None
    else:
        folder, meta = read_saved(model)  # the task and columns now; the weights in the background
        task, columns, served = task_from_dict(meta["task"]), Columns(**meta["columns"]), ServedModel()
    texts_name, pairs_name = task.input_names
    needs_pairs = task.needs_pairs or columns.pair is not None
    request_schema, response_schema = schemas(task, texts_name, pairs_name, needs_pairs)
    metrics = ServerMetrics()
    forward_batch = min(settings.max_batch_size, FORWARD_BATCH)
    batcher = MicroBatcher(lambda texts, pairs: served.model.predict(texts, pairs, forward_batch),
                           settings.max_batch_size, settings.max_wait_ms / 1000, metrics.observe_batch)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        if folder is not None:
            served.load_in_background(str(folder), exit_on_load_failure)
        batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="stellartune", summary=f"{task.name} model: {describe(task)}", lifespan=lifespan,
                  docs_url=None, redoc_url=None)  # /docs from the package's files below: no CDN, works offline
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    add_offline_docs(app)

    @app.middleware("http")
    async def request_id_and_log(request: Request, call_next):
        given = request.headers.get("x-request-id", "")
        request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex[:16]
        request.state.request_id = request_id
        started = time.perf_counter()
        try:
            response = await call_next(request)
        except Exception:  # a bug: logged with its traceback, answered as JSON, and the server keeps serving
            logger.exception(f"{request_id} {request.method} {request.url.path} failed")
            response = error_response(500, "internal error (see the server log)", request_id)
        response.headers["X-Request-ID"] = request_id
        seconds = time.perf_counter() - started
        metrics.observe_request(route_of(request, app), response.status_code, seconds)
        logger.info(f"{request_id} {request.method} {request.url.path} {response.status_code} {seconds * 1000:.1f} ms")
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError):
        return error_response(422, validation_message(error), request.state.request_id)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):
        if error.status_code == 400:  # the body could not be parsed at all (not UTF-8, not JSON)
            return error_response(422, "the body is not valid JSON (not UTF-8 text, or not JSON)", request.state.request_id)
        return error_response(error.status_code, str(error.detail), request.state.request_id)

    @app.exception_handler(LimitExceeded)
    async def over_a_limit(request: Request, error: LimitExceeded):
        return error_response(413, str(error), request.state.request_id)

    @app.exception_handler(StellarError)
    async def refused_input(request: Request, error: StellarError):
        return error_response(422, str(error), request.state.request_id)

    @app.post("/predict", response_model=response_schema, summary="Predict, as `stellartune predict` does",
              responses=ERRORS)
    async def predict(body: request_schema, request: Request):  # type: ignore[valid-type]
        if served.model is None:
            return error_response(503, "the model is still loading; see /ready", request.state.request_id)
        texts, pairs = getattr(body, texts_name), getattr(body, pairs_name, None) if needs_pairs else None
        check_inputs(texts, pairs, texts_name, pairs_name, settings)
        # counted only when the request may be over, in the model's thread (its tokenizer's: not thread-safe);
        # an input the model refuses skips the count and fails in its pass, alone, with the reason
        if most_windows(texts, pairs) > settings.max_windows:
            with contextlib.suppress(StellarError):
                windows = await batcher.in_model_thread(served.model.windows, texts, pairs)
                check_windows(windows, texts_name, served.model.max_length, settings)
        predictions = await batcher.submit(texts, pairs)
        # built by the task to the declared schema: returned as is, not validated again per request
        return JSONResponse({"predictions": [{"text": text, **({"text_pair": pairs[i]} if pairs else {}), **prediction}
                                             for i, (text, prediction) in enumerate(zip(texts, predictions))]})

    @app.get("/health", summary="Liveness: the process answers")
    async def health():
        return {"status": "ok"}

    @app.get("/ready", summary="Readiness: the model is loaded", responses={503: ERRORS[503]})
    async def ready(request: Request):
        if served.model is None:
            message = f"the model could not be loaded: {served.error}" if served.error else "the model is loading"
            return error_response(503, message, request.state.request_id)
        return {"ready": True, "task": task.name, "labels": task.labels}

    @app.get("/metrics", summary="Prometheus metrics: requests, errors, batch sizes, latency",
             response_class=PlainTextResponse)
    async def prometheus():
        return PlainTextResponse(metrics.text(), media_type=metrics.content_type)

    return app


def schemas(task, texts_name: str, pairs_name: str, needs_pairs: bool) -> tuple[type[BaseModel], type[BaseModel]]:
    """The request (the task's input names) and response (`predict`'s JSON lines) of this model."""
    strict = ConfigDict(extra="forbid", strict=True)  # a number where a text belongs is an error, not "3"
    text = Annotated[str, Field(min_length=1)]  # not blank, within --max-chars: checked in `check_inputs`
    texts = (list[text], Field(min_length=1, description="The texts to predict, one prediction each (not blank)."))
    inputs = {texts_name: texts}
    if needs_pairs:
        inputs[pairs_name] = (list[text], Field(min_length=1, description=f"One second text per item of "
                                                                          f"{texts_name}."))
    request = create_model("PredictRequest", __config__=strict, **inputs)
    fields = {"text": (str, ...), **({"text_pair": (str, ...)} if needs_pairs else {}),
              **{name: (kind, ...) for name, kind in task.prediction_fields.items()}}
    prediction = create_model("Prediction", **fields)
    return request, create_model("PredictResponse", predictions=(list[prediction], ...))


class ErrorAnswer(BaseModel):
    """Every refusal and failure: one line naming the field or limit, and the request's id."""

    error: str
    request_id: str | None


ERRORS = {status: {"model": ErrorAnswer, "description": meaning} for status, meaning in (
    (413, "Over a limit: --max-texts, --max-chars, --max-windows or --max-body-bytes (named in `error`)"),
    (422, "Input refused: not JSON, a field missing or of the wrong type, an empty text, invalid Unicode"),
    (500, "A fault of the server (its log has the traceback); other requests are not affected"),
    (503, "The model is still loading, or could not be loaded (see /ready)"))}


def add_offline_docs(app: FastAPI) -> None:
    """/docs: Swagger UI from the files of the swagger-ui-bundle package, so it works without internet."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs-assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title}: API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon-32x32.png")


def describe(task) -> str:
    return f"{len(task.labels)} outputs ({', '.join(task.labels[:8])}{', ...' if len(task.labels) > 8 else ''})"


def route_of(request: Request, app: FastAPI) -> str:
    """The request's path if the app has it (a bounded set of metric labels, known even for a request
    refused before routing), else "other"."""
    return request.url.path if any(getattr(r, "path", None) == request.url.path for r in app.routes) else "other"


def error_response(status: int, message: str, request_id: str | None) -> JSONResponse:
    return JSONResponse({"error": message, "request_id": request_id}, status_code=status)


def validation_message(error: RequestValidationError) -> str:
    """pydantic's first complaint in one line, naming the field: `texts[2]: Input should be a valid string`."""
    first = error.errors()[0]
    location = [part for part in first["loc"] if part != "body"]
    field = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in location).lstrip(".")
    if first["type"] == "json_invalid":
        return f"the body is not valid JSON ({first.get('ctx', {}).get('error', first['msg'])})"
    if first["type"] == "missing":
        return f"{field}: missing (a JSON object with {field!r} is expected)"
    return f"{field or 'body'}: {first['msg']}" + (f" (got {summary(first.get('input'))})" if field else "")


def summary(value) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def app_from_environment() -> FastAPI:
    """The app of one worker process (`--workers` > 1): model and settings from the environment. A worker is a
    fresh process: its log lines (model loaded, one per request) go to stderr as the parent's do."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    spec = json.loads(os.environ[ENVIRONMENT])
    return create_app(spec["model"], ServeSettings(**spec["settings"]), exit_on_load_failure=True)


def serve(model: FineTunedModel | str | Path, settings: ServeSettings | None = None, **options) -> None:
    """Serve `model` over HTTP until stopped (SIGTERM or Ctrl-C finish the requests in flight first)."""
    import dataclasses

    import uvicorn

    settings = settings or ServeSettings(**options)
    if not isinstance(model, FineTunedModel):  # damaged weights stop here, with one line, before serving
        check_weights(read_saved(model)[0])
    run = dict(host=settings.host, port=settings.port, access_log=False, log_config=None)  # our log lines carry request ids
    if settings.workers == 1:
        uvicorn.run(create_app(model, settings, exit_on_load_failure=True), **run)
        return
    if isinstance(model, FineTunedModel):
        raise StellarError("--workers > 1 loads the model in each process: give a run folder, not a loaded model")
    os.environ[ENVIRONMENT] = json.dumps({"model": str(model), "settings": dataclasses.asdict(settings)})
    uvicorn.run("stellartune.serving.app:app_from_environment", factory=True, workers=settings.workers, **run)
