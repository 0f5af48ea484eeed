"""The OCR web service: ``python infer.py --serve`` (or ``ocr --serve``).

    python infer.py --serve --host 127.0.0.1 --port 8000
    curl -F image=@photo.jpg http://127.0.0.1:8000/ocr

Endpoints (Starlette on uvicorn):

- ``POST /ocr``: one image, as the multipart field ``image`` or as the raw request body
  (``?name=`` names it) -> the command line's JSON record (``image``, ``width``, ``height``,
  ``lines``) plus ``timings`` (seconds). Query: ``min_text_score`` (a negative value keeps
  every line), ``mode`` (only the mode the detector was loaded with; another gives 400).
- ``POST /ocr/batch``: several images (repeated multipart field ``image``) -> a list of
  records in upload order; an image that fails gives ``{"image", "error"}`` in its place.
- ``GET /health``: 200 ``{"status": "ready"}`` once the models are loaded and compiled,
  else 503 (``loading`` or ``failed``).
- ``GET /``: the web page (``ocr_app/static/index.html``).

Batching across requests: one worker thread owns the ``OCR`` object. Requests decode their
images (``ocr_common.io.decode_image``) and put them into a bounded queue; the worker takes
the first, waits up to ``batch_wait_ms`` for more (at most ``max_batch`` images) and reads them
together through ``OCR.read_pages``, so the lines of concurrent requests share recognition
batches. Each result goes back to its request through an asyncio future.

Errors are JSON ``{"error": "..."}``: 400 for an empty, corrupt or non-image upload or a bad
parameter, 413 for an upload over ``max_upload_bytes`` or an image over ``max_pixels``, 503
(with ``Retry-After``) while loading or when the queue is full, 504 when a request waits
longer than ``timeout_s``. On SIGTERM uvicorn stops accepting, lets the requests in flight
finish, and the worker drains its queue before the process ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from importlib import resources
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from infer import DEFAULT_MIN_TEXT_SCORE, OCR, keeps_line
from ocr_common.io import ImageError, ImageTooLarge, decode_image

log = logging.getLogger(__name__)


@dataclasses.dataclass
class ServeConfig:
    """Settings of the service.

    Attributes:
      max_batch: most images read together by the worker.
      batch_wait_ms: how long the worker waits for more requests after the first.
      queue_size: most images waiting for the worker; more get 503.
      max_upload_bytes: largest request body (413 beyond).
      max_pixels: largest image, width x height (413 beyond): a guard against decompression
        bombs, checked on the header before decoding where Pillow reads the format.
      max_files: most images in one ``/ocr/batch`` request.
      timeout_s: longest a request waits for its result (504 beyond).
      min_text_score: the default line filter (``infer.keeps_line``; None keeps every line).
      mode: the detector's box mode ("H" or "O"), fixed when the models are loaded.
      warmup_sizes: ``(height, width)`` of the synthetic pages read at start-up, so that the
        common shapes are compiled before ``/health`` says ready.
    """

    max_batch: int = 8
    batch_wait_ms: float = 5.0
    queue_size: int = 64
    max_upload_bytes: int = 20 * 2**20
    max_pixels: int = 40_000_000
    max_files: int = 16
    timeout_s: float = 120.0
    min_text_score: float | None = DEFAULT_MIN_TEXT_SCORE
    mode: str = "H"
    warmup_sizes: Sequence[tuple[int, int]] = ((768, 1024), (1024, 768))


class ApiError(Exception):
    """An error answered as ``{"error": message}`` with this HTTP status."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


@dataclasses.dataclass
class Result:
    """What the worker gives back for one image (the image array itself stays behind)."""

    records: list[dict]
    width: int
    height: int
    error: str | None
    seconds: dict[str, float]


@dataclasses.dataclass(eq=False)
class _Job:
    image: np.ndarray
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    queued: float = dataclasses.field(default_factory=time.perf_counter)


_STOP = object()  # the worker's end-of-queue marker


def synthetic_page(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A white ``(height, width, 3)`` page with lines of printed Latin text of several
    lengths: the warm-up input that compiles the detector's and recogniser's usual shapes."""
    import cv2

    rng = np.random.default_rng(seed)
    img = np.full((height, width, 3), 255, np.uint8)
    y, k = 40, 0
    while y < height - 10:
        n = 4 + (k * 7) % 40  # line lengths from a word to a full line
        text = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz0123456789 "), n))
        cv2.putText(img, text, (20, y), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (20, 20, 20), 2)
        y, k = y + 48, k + 1
    return img


class BatchWorker:
    """The one thread that owns the ``OCR`` object and reads queued images in batches.

    ``state`` is "loading" until the models are loaded and the warm-up pages read, then
    "ready"; "failed" (with ``error``) if loading failed, "stopped" after ``stop``.
    """

    def __init__(
        self,
        load: Callable[[], OCR],
        config: ServeConfig,
        on_failure: Callable[[BaseException], None] | None = None,
    ):
        self.config = config
        self.state, self.error = "loading", None
        self._load, self._on_failure = load, on_failure
        self._queue: queue.Queue = queue.Queue(maxsize=config.queue_size)
        self._thread = threading.Thread(target=self._run, name="ocr-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Reads what is still queued, then ends the thread."""
        if self._thread.is_alive():
            self._queue.put(_STOP)  # after every queued job: they are read first
            self._thread.join(timeout)
        if self.state != "failed":
            self.state = "stopped"

    def submit(self, images: Sequence[np.ndarray]) -> list[asyncio.Future]:
        """Queues images; one future each, resolved with a ``Result``.

        Raises:
          ApiError: 503 when not ready or when the queue cannot take them all (then none is
            read).
        """
        if self.state != "ready":
            raise ApiError(
                503, f"the service is {self.state}, try again later", {"Retry-After": "5"}
            )
        loop = asyncio.get_running_loop()
        jobs = [_Job(img, loop, loop.create_future()) for img in images]
        for i, job in enumerate(jobs):
            try:
                self._queue.put_nowait(job)
            except queue.Full:
                for j in jobs[:i]:  # the worker skips cancelled jobs
                    j.future.cancel()
                raise ApiError(
                    503,
                    f"the service is busy ({self.config.queue_size} images queued), "
                    "try again later",
                    {"Retry-After": "1"},
                ) from None
        return [j.future for j in jobs]

    def _run(self) -> None:
        try:
            t0 = time.perf_counter()
            log.info("loading the models")
            ocr = self._load()
            ocr.min_text_score = None  # every line: each request filters with its own value
            self._ocr = ocr
            log.info("models loaded in %.1f s", time.perf_counter() - t0)
            t0 = time.perf_counter()
            sizes = list(self.config.warmup_sizes)
            log.info("compiling the common shapes: reading %d synthetic page(s)", len(sizes))
            pages = [synthetic_page(h, w, seed=i) for i, (h, w) in enumerate(sizes)]
            for page in ocr.read_pages(pages, images_per_batch=max(1, len(pages))):
                if page.error is not None:
                    raise page.error
            log.info("warm-up done in %.1f s: ready", time.perf_counter() - t0)
        except BaseException as e:
            log.exception("loading the models failed")
            self.state, self.error = "failed", f"{type(e).__name__}: {e}"
            if self._on_failure is not None:
                self._on_failure(e)
            return
        self.state = "ready"
        stopping = False
        while not stopping:
            jobs, stopping = self._collect()
            if jobs:
                self._read(jobs)

    def _collect(self) -> tuple[list[_Job], bool]:
        """The next batch: the first job, then whatever comes within ``batch_wait_ms``."""
        first = self._queue.get()
        if first is _STOP:
            return [], True
        jobs = [first]
        deadline = time.perf_counter() + self.config.batch_wait_ms / 1000
        while len(jobs) < self.config.max_batch:
            try:
                job = self._queue.get(timeout=max(0.0, deadline - time.perf_counter()))
            except queue.Empty:
                break
            if job is _STOP:
                return jobs, True
            jobs.append(job)
        return jobs, False

    def _read(self, jobs: list[_Job]) -> None:
        jobs = [j for j in jobs if not j.future.done()]  # timed out or abandoned
        if not jobs:
            return
        started = time.perf_counter()
        try:
            pages = self._ocr.read_pages([j.image for j in jobs], images_per_batch=len(jobs))
            for job, page in zip(jobs, pages, strict=True):
                error = None if page.error is None else _describe(page.error)
                seconds = {"queue": started - job.queued, **page.seconds}
                result = Result(page.records, page.width, page.height, error, seconds)
                job.loop.call_soon_threadsafe(_resolve, job.future, result)
        except Exception as e:  # never let one batch end the worker
            log.exception("reading a batch failed")
            for job in jobs:  # those already answered keep their result (_resolve)
                failed = Result([], 0, 0, _describe(e), {})
                job.loop.call_soon_threadsafe(_resolve, job.future, failed)


def _describe(error: BaseException) -> str:
    return str(error) if isinstance(error, ImageError) else f"{type(error).__name__}: {error}"


def _resolve(future: asyncio.Future, result: Result) -> None:
    if not future.done():  # it may have timed out meanwhile
        future.set_result(result)


# ----------------------------------------------------------------------------- requests


def _query_params(request: Request, config: ServeConfig) -> float | None:
    """The request's line filter; validates ``mode``."""
    q = request.query_params
    mode = q.get("mode")
    if mode is not None and mode.upper() != config.mode:
        raise ApiError(
            400,
            f"mode={mode!r}: this server reads mode {config.mode!r} only (the detector's mode is "
            f"fixed when it is loaded; start another server with --mode {mode.upper()})",
        )
    value = q.get("min_text_score")
    if value is None or value == "":
        return config.min_text_score
    try:
        score = float(value)
    except ValueError:
        raise ApiError(400, f"min_text_score={value!r} is not a number") from None
    return None if score < 0 else score


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it passes ``limit`` bytes."""
    too_large = ApiError(413, f"the upload is larger than the limit of {limit:,} bytes")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_large
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def _uploads(request: Request, config: ServeConfig) -> list[tuple[str, bytes]]:
    """``(name, bytes)`` of the uploaded images: the multipart fields ``image``, else the
    raw body (named by ``?name=``)."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/x-www-form-urlencoded"):
        raise ApiError(
            400,
            "a url-encoded form holds no file: send multipart/form-data with a file "
            "field 'image', or the image bytes as the body",
        )
    body = await _read_body(request, config.max_upload_bytes)
    if not content_type.startswith("multipart/form-data"):
        return [(request.query_params.get("name") or "upload", body)]

    async def replay() -> dict[str, Any]:  # the body again, for the form parser
        return {"type": "http.request", "body": body, "more_body": False}

    form = await Request(request.scope, replay).form(
        max_files=config.max_files, max_part_size=config.max_upload_bytes
    )
    try:
        files = []
        for i, item in enumerate(form.getlist("image")):
            if not isinstance(item, UploadFile):
                raise ApiError(400, f"form field 'image' #{i + 1} is text, not a file upload")
            files.append((item.filename or f"image-{i + 1}", await item.read()))
    finally:
        await form.close()
    if not files:
        raise ApiError(400, "no image: send a multipart form with a file field 'image'")
    return files


async def _decode(name: str, data: bytes, config: ServeConfig) -> np.ndarray:
    try:  # in a thread: decoding a large image must not hold up the event loop
        return await run_in_threadpool(decode_image, data, name, config.max_pixels)
    except ImageTooLarge as e:
        raise ApiError(413, str(e)) from None
    except ImageError as e:
        raise ApiError(400, str(e)) from None


def _document(
    name: str, result: Result, min_text_score: float | None, seconds: dict[str, float]
) -> dict:
    """The command line's JSON record of an image, plus ``timings``."""
    if result.error is not None:
        return {"image": name, "error": result.error}
    lines = [r for r in result.records if keeps_line(r["text"], r["text_score"], min_text_score)]
    timings = {**seconds, **result.seconds}
    return {
        "image": name,
        "width": result.width,
        "height": result.height,
        "lines": lines,
        "timings": {k: round(v, 4) for k, v in timings.items()},
    }


def create_app(
    load: Callable[[], OCR],
    config: ServeConfig | None = None,
    on_failure: Callable[[BaseException], None] | None = None,
) -> Starlette:
    """The ASGI app. ``load`` builds the ``OCR`` in the worker thread at start-up (the
    lifespan), so that ``/health`` answers 503 while the models load and compile.
    ``app.state.worker`` is the ``BatchWorker``."""
    config = config or ServeConfig()
    worker = BatchWorker(load, config, on_failure)
    page = resources.files("ocr_app").joinpath("static/index.html").read_text(encoding="utf-8")

    async def read_one(request: Request) -> Response:
        t0 = time.perf_counter()
        min_score = _query_params(request, config)
        files = await _uploads(request, config)
        if len(files) != 1:
            raise ApiError(400, f"/ocr reads one image, got {len(files)}: use /ocr/batch")
        name, data = files[0]
        image = await _decode(name, data, config)
        t1 = time.perf_counter()
        (future,) = worker.submit([image])
        del image
        try:
            result = await asyncio.wait_for(future, config.timeout_s)
        except TimeoutError:
            raise ApiError(504, f"{name}: no result within {config.timeout_s:g} s") from None
        doc = _document(
            name, result, min_score, {"decode": t1 - t0, "total": time.perf_counter() - t0}
        )
        if "error" in doc:
            return JSONResponse(doc, status_code=500)
        return JSONResponse(doc)

    async def read_batch(request: Request) -> Response:
        t0 = time.perf_counter()
        min_score = _query_params(request, config)
        files = await _uploads(request, config)
        if len(files) > config.max_files:
            raise ApiError(413, f"{len(files)} images: at most {config.max_files} a request")
        docs: list[dict | None] = [None] * len(files)
        images: dict[int, np.ndarray] = {}
        for i, (name, data) in enumerate(files):
            try:
                images[i] = await _decode(name, data, config)
            except ApiError as e:  # this image only
                docs[i] = {"image": name, "error": e.message}
        t1 = time.perf_counter()
        futures = dict(zip(images, worker.submit(list(images.values())), strict=True))
        images.clear()
        if futures:
            _, pending = await asyncio.wait(futures.values(), timeout=config.timeout_s)
            for f in pending:
                f.cancel()
        for i, f in futures.items():
            name = files[i][0]
            if f.cancelled():
                docs[i] = {"image": name, "error": f"no result within {config.timeout_s:g} s"}
            else:
                seconds = {"decode": (t1 - t0) / len(files), "total": time.perf_counter() - t0}
                docs[i] = _document(name, f.result(), min_score, seconds)
        return JSONResponse(docs)

    async def health(request: Request) -> Response:
        body = {"status": worker.state}
        if worker.error:
            body["error"] = worker.error
        return JSONResponse(body, status_code=200 if worker.state == "ready" else 503)

    async def index(request: Request) -> Response:
        return HTMLResponse(page)

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return JSONResponse({"error": exc.message}, exc.status, headers=exc.headers)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return JSONResponse({"error": exc.detail}, exc.status_code, headers=exc.headers)

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("request failed", exc_info=exc)
        return JSONResponse({"error": f"internal error: {type(exc).__name__}: {exc}"}, 500)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        worker.start()
        yield
        # uvicorn has let the requests in flight finish: the worker drains and ends
        await run_in_threadpool(worker.stop, 60.0)

    app = Starlette(
        routes=[
            Route("/", index, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
            Route("/ocr", read_one, methods=["POST"]),
            Route("/ocr/batch", read_batch, methods=["POST"]),
        ],
        exception_handlers={ApiError: api_error, HTTPException: http_error, 500: server_error},
        lifespan=lifespan,
    )
    app.state.worker = worker
    return app


def serve(
    load: Callable[[], OCR],
    host: str = "127.0.0.1",
    port: int = 8000,
    config: ServeConfig | None = None,
) -> int:
    """Runs the service until SIGINT/SIGTERM; returns the exit status (2: the models could
    not be loaded)."""
    import uvicorn

    if not log.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    server: uvicorn.Server | None = None

    def failed(e: BaseException) -> None:
        if server is not None:
            server.should_exit = True

    app = create_app(load, config, on_failure=failed)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="info"))
    server.run()
    return 2 if app.state.worker.state == "failed" else 0
