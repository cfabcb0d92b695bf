"""The FastAPI application of ``pafpose serve``: routes, upload limits, error bodies, the page.

Every error is JSON ``{"detail": "one sentence"}`` with a status that says whose fault it
is: 400 bad request (query values, empty body, a form without a file, a ``Host`` the server
does not answer to), 403 a cross-origin post (:mod:`pafpose.serve.guard`), 413 too large
(bytes or pixels), 415 not an image, 422 an image that can't be decoded, 503 busy, 504 too slow.
Bodies are read by the route itself (not by FastAPI's form parsing) so that the size limit
holds while reading and a broken body never becomes a 500.
"""

import asyncio
import base64
import dataclasses
import hashlib
import json
import os
import re
import time
from contextlib import asynccontextmanager
from functools import partial
from importlib import resources
from typing import Annotated, Any, Literal

import anyio
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect

from pafpose import __version__, controlnet
from pafpose.errors import PafposeError
from pafpose.predict import Estimator
from pafpose.serve.batching import BusyError
from pafpose.serve.guard import RequestGuard
from pafpose.serve.images import Upload, UploadError, decode_upload
from pafpose.serve.results import poses_document
from pafpose.serve.schemas import (
    CocoResultBody,
    ControlNetBody,
    ErrorBody,
    HealthBody,
    ModelsBody,
    OpenPoseBody,
    PosesBody,
)
from pafpose.serve.service import MAX_SCALES, SCALE_RANGE, PoseService, warm_up
from pafpose.serve.sessions import Sessions
from pafpose.serve.settings import ServeSettings

CONFIG_ENV = "PAFPOSE_SERVE_CONFIG"  # how `pafpose serve --workers N` hands its options to each worker process

ScalesQuery = Annotated[
    list[Annotated[float, Field(ge=SCALE_RANGE[0], le=SCALE_RANGE[1])]] | None,
    Query(max_length=MAX_SCALES, description="test-time scales of the network height, repeated "
                                             "(`scales=1&scales=0.5`); default: the server's")]
FlipQuery = Annotated[bool | None, Query(description="also run the mirrored image and average; default: the server's")]
FormatQuery = Annotated[Literal["pafpose", "openpose", "coco", "controlnet"], Query(
    alias="format", description="pafpose (this API's JSON), openpose (OpenPose 1.3 JSON), coco (results list) or "
                                "controlnet (sd-webui-controlnet's pose JSON, people found at detect_resolution)")]
ImageIdQuery = Annotated[int, Query(ge=0, le=2**53, description="image_id of format=coco results")]
SessionQuery = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_-]{1,64}$", description=(
    "a client's own name for a sequence of frames (e.g. a webcam): people keep a track_id across the "
    "requests that carry it (sessions are bounded in number and forgotten after a minute unused)"))]
ImageFormatQuery = Annotated[Literal["png", "jpeg"] | None, Query(
    description="encoding of the drawn image; default: JPEG for a JPEG upload, else PNG")]
JsonThreshold = Annotated[float | None, Query(ge=0.0, le=1.0, description=(
    "keypoints scoring below it are reported missing (null); default 0: all (format=controlnet: 0.1, as the "
    "ControlNet image draws them)"))]
DrawThreshold = Annotated[float, Query(ge=0.0, le=1.0, description="keypoints scoring below it are not drawn")]
StyleQuery = Annotated[Literal["pafpose", "controlnet"], Query(description=(
    "pafpose: the skeletons over the image; controlnet: ControlNet's OpenPose pose image (black canvas, its "
    "colours and sizes; people found at detect_resolution; PNG unless image_format says otherwise)"))]
# ControlNet's resolutions (short side, rounded to a multiple of 64), bounded below the library's 4096:
# a request's canvases are held in memory while it is drawn
_CN_MAX = 2048
ModeQuery = Annotated[Literal[tuple(controlnet.MODES)], Query(description=(  # type: ignore[valid-type]
    "format=controlnet and style=controlnet: ControlNet's preprocessor (openpose: the body; openpose_hand, "
    "openpose_face, openpose_faceonly, openpose_full add the hands and face of a server started with --parts)"))]
DetectResolution = Annotated[int, Query(ge=controlnet.RESOLUTION_RANGE[0], le=_CN_MAX, description=(
    "format=controlnet and style=controlnet: the short side at which people are found and drawn, as ControlNet's "
    "detect_resolution"))]
ImageResolution = Annotated[int, Query(ge=controlnet.RESOLUTION_RANGE[0], le=_CN_MAX, description=(
    "style=controlnet: the pose image's short side, as ControlNet's image_resolution"))]

_BINARY = {"schema": {"type": "string", "format": "binary"}}
_IMAGE_BODY = {"requestBody": {"required": True, "description": "the image: a multipart form with a file field "
                               "`image`, or the raw file with an image/* content type", "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["image"],
                                       "properties": {"image": {"type": "string", "format": "binary"}}}},
    **{f"image/{t}": _BINARY for t in ("jpeg", "png", "webp", "bmp", "tiff", "gif")},
    "application/octet-stream": _BINARY}}}
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text} for status, text in (
        (400, "bad query value, empty body, a form without a file, or a Host header the server does not answer to"),
        (403, "a cross-origin request (its Origin or Sec-Fetch-Site shows a page on another site)"),
        (413, "upload above the byte limit, or an image above the pixel limit"),
        (415, "not an image, or a format the service does not read"),
        (422, "an image that can't be decoded (corrupt or truncated)"),
        (503, "too many requests waiting; retry later"),
        (504, "no result within the server's timeout"))}


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it exceeds ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"upload too large: {int(declared)} bytes; the limit is {limit} bytes "
                                 "(pafpose serve --max-upload-mb)")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise HTTPException(413, f"upload too large: more than {limit} bytes (pafpose serve --max-upload-mb)")
    except ClientDisconnect as err:  # nobody will read the answer, but it is no server error either
        raise HTTPException(400, "the client went away before the upload was complete") from err
    return bytes(body)


async def read_image_bytes(request: Request, limit: int) -> bytes:
    """The uploaded file: a multipart form's file field (``image``, or its only file) or the raw body."""
    mime = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if mime != "multipart/form-data" and not mime.startswith("image/") and mime != "application/octet-stream":
        raise HTTPException(415, f"send the image as multipart/form-data (a file field 'image') or as the raw body "
                                 f"with an image/* content type, not {mime or 'no content type'}")
    body = await read_body(request, limit)
    if mime != "multipart/form-data":
        return body

    async def replay() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    form = await Request(request.scope, replay).form(max_files=1, max_fields=16, max_part_size=limit)
    try:
        field = form.get("image")
        files = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
        upload = field if isinstance(field, UploadFile) else files[0] if len(files) == 1 else None
        if upload is None:
            raise HTTPException(400, "the form has no file: send the image in a file field named 'image'")
        return await upload.read()
    finally:
        await form.close()


def _page() -> tuple[str, str]:
    """The browser page and its Content-Security-Policy (inline code allowed by hash, nothing else)."""
    html = (resources.files("pafpose.serve") / "static" / "index.html").read_text(encoding="utf-8")

    def hashes(tag: str) -> str:
        return " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(code.encode()).digest()).decode()}'"
                        for code in re.findall(rf"<{tag}>(.*?)</{tag}>", html, flags=re.S))

    csp = (f"default-src 'none'; script-src {hashes('script')}; style-src {hashes('style')}; "
           "img-src 'self' blob: data:; media-src 'self' blob: mediastream:; connect-src 'self'; "
           "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    return html, csp


def _server_timing(timing: dict[str, float]) -> str:
    return ", ".join(f"{k};dur={v:.1f}" for k, v in timing.items())


def create_app(estimator: Estimator, settings: ServeSettings | None = None, model_name: str | None = None) -> FastAPI:
    """The web service around a loaded model: the JSON API, the browser page and the docs.

    Args:
        estimator: the model, loaded once; its scales and flip are each request's defaults.
        settings: limits and batching (:class:`ServeSettings`).
        model_name: the name ``/v1/models`` reports (e.g. the zoo name).

    Example:
        >>> app = create_app(Estimator(), ServeSettings(max_batch=4))
        >>> # uvicorn.run(app, host="127.0.0.1", port=8000)
    """
    settings = settings or ServeSettings()
    service = PoseService(estimator, settings, model_name)
    page, page_csp = _page()
    # image decoding and encoding run in threads, at most this many at once: each may hold a
    # --max-pixels image, so this bounds their memory
    pixels = anyio.CapacityLimiter(max(2, os.cpu_count() or 1))

    async def in_thread(func: Any, *args: Any) -> Any:
        return await anyio.to_thread.run_sync(partial(func, *args), limiter=pixels)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        yield
        await run_in_threadpool(service.close)

    app = FastAPI(title="pafpose", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Multi-person 2D pose estimation with Part Affinity Fields. POST an image to "
                              "`/v1/poses` for the people as JSON, or to `/v1/poses/render` for the drawn image.")
    app.state.service = service
    sessions = Sessions()
    app.state.sessions = sessions
    app.add_middleware(RequestGuard, allowed_hosts=settings.allowed_hosts)
    _add_error_handlers(app)
    _add_docs(app)

    async def run(request: Request, scales: list[float] | None, flip: bool | None,
                  prepare: Any = None) -> tuple[Upload, Any, dict]:
        """Read, decode and estimate one upload, within the timeout. ``prepare`` (image -> image, e.g.
        ControlNet's resize) makes what the network is given: the people are in its pixels, and
        ``upload.image`` is replaced by it."""
        start = time.perf_counter()
        options = service.options(scales, flip)

        async def work() -> tuple[Upload, Any, dict]:
            data = await read_image_bytes(request, settings.max_upload_bytes)
            read = time.perf_counter()
            upload = await in_thread(decode_upload, data, settings.max_pixels, settings.max_side)
            if prepare is not None:
                upload = dataclasses.replace(upload, image=await in_thread(prepare, upload.image))
            decoded = time.perf_counter()
            # the decoded file: the Estimator gives people in its own pixels (also when decoded reduced);
            # a prepared image: in the prepared image's
            outcome = await service.predict(upload.image if prepare is not None else upload, *options)
            timing = {"read": read - start, "decode": decoded - read, "queue": outcome.queued_s,
                      "inference": outcome.run_s}
            return upload, outcome, timing

        try:
            upload, outcome, timing = await asyncio.wait_for(work(), settings.timeout_s)
        except asyncio.TimeoutError as err:
            raise HTTPException(504, f"no result within {settings.timeout_s:g} s (the server is overloaded or "
                                     "the image is too slow to process; pafpose serve --timeout)") from err
        timing["total"] = time.perf_counter() - start
        return upload, outcome, {k: round(v * 1e3, 2) for k, v in timing.items()}

    found = set(getattr(getattr(estimator, "config", None), "parts", ()) or ())

    def _check_mode(mode: str) -> None:
        """A ControlNet mode that draws hands or a face needs a server that finds them."""
        needed = controlnet.parts_needed(mode)
        missing = [p for p, names in (("hands", {"hand_left", "hand_right"}), ("face", {"face"}))
                   if needed & names and p not in found]
        if missing:
            raise HTTPException(400, f"mode {mode} draws {' and '.join(missing)}, which this server does not find: "
                                     f"start it with --parts {' '.join(missing)}")

    @app.post("/v1/poses", summary="People in an image, as JSON", openapi_extra=_IMAGE_BODY, response_model=None,
              responses={200: {"model": PosesBody | OpenPoseBody | list[CocoResultBody] | ControlNetBody,
                               "description": "the people; the body's shape follows `format`"}, **_ERRORS})
    async def poses(request: Request, scales: ScalesQuery = None, flip: FlipQuery = None,
                    threshold: JsonThreshold = None, fmt: FormatQuery = "pafpose",
                    image_id: ImageIdQuery = 0, session: SessionQuery = None,
                    detect_resolution: DetectResolution = controlnet.DEFAULT_RESOLUTION,
                    mode: ModeQuery = controlnet.DEFAULT_MODE) -> JSONResponse:
        if fmt == "controlnet":
            if session is not None:
                raise HTTPException(400, "session: ControlNet's pose JSON has no person ids; use another format")
            _check_mode(mode)
            upload, outcome, timing = await run(request, scales, flip, _controlnet_input(detect_resolution))
            size = _controlnet_sizes(upload.image, detect_resolution)
            people = controlnet.persons(outcome.value, *size.detect, 0.1 if threshold is None else threshold, mode)
            return JSONResponse(controlnet.pose_json(people, size), headers={"Server-Timing": _server_timing(timing)})
        upload, outcome, timing = await run(request, scales, flip)
        people = outcome.value.thresholded(threshold) if threshold else outcome.value
        if session is not None:
            people = sessions.update(session, people, image=upload.image)  # its pixels: scaled by image_size
        body = poses_document(people, fmt, upload.width, upload.height, estimator.skeleton, image_id,
                              {"model": service.model_name, "batch_size": outcome.batch_size, "timing_ms": timing})
        return JSONResponse(body, headers={"Server-Timing": _server_timing(timing)})

    @app.post("/v1/poses/render", summary="The image with the skeletons drawn", openapi_extra=_IMAGE_BODY,
              response_class=Response, responses={200: {"content": {"image/png": _BINARY, "image/jpeg": _BINARY},
                                                         "description": "the drawn image"}, **_ERRORS})
    async def render(request: Request, scales: ScalesQuery = None, flip: FlipQuery = None,
                     threshold: DrawThreshold = 0.1, image_format: ImageFormatQuery = None,
                     style: StyleQuery = "pafpose",
                     detect_resolution: DetectResolution = controlnet.DEFAULT_RESOLUTION,
                     image_resolution: ImageResolution = controlnet.DEFAULT_RESOLUTION,
                     mode: ModeQuery = controlnet.DEFAULT_MODE) -> Response:
        if style == "controlnet":  # a pose map: PNG unless asked (JPEG's artefacts change the colours ControlNet reads)
            _check_mode(mode)
            prepare = _controlnet_input(detect_resolution, image_resolution)
            upload, outcome, timing = await run(request, scales, flip, prepare)
            kind = image_format or "png"
            data = await in_thread(_draw_controlnet, upload.image, outcome.value, threshold, kind,
                                   detect_resolution, image_resolution, mode)
        else:
            upload, outcome, timing = await run(request, scales, flip)
            kind = image_format or ("jpeg" if upload.format == "JPEG" else "png")
            data = await in_thread(_draw, upload, outcome.value, threshold, kind)
        headers = {"Server-Timing": _server_timing(timing), "X-People": str(len(outcome.value)),
                   "X-Content-Type-Options": "nosniff"}
        return Response(data, media_type=f"image/{kind}", headers=headers)

    @app.get("/v1/models", summary="The model this server runs", response_model=ModelsBody)
    async def models() -> dict[str, Any]:
        return {"models": [service.info()]}

    @app.get("/healthz", summary="Liveness and load", response_model=HealthBody)
    async def healthz() -> dict[str, Any]:
        b = service.batcher
        return {"status": "ok", "model": service.model_name, "queued": b.queued, "batches": b.batches,
                "requests": b.items}

    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page, headers={"Content-Security-Policy": page_csp, "X-Content-Type-Options": "nosniff",
                                           "Cache-Control": "no-cache"})

    return app


def _controlnet_input(detect_resolution: int, image_resolution: int = controlnet.DEFAULT_RESOLUTION) -> Any:
    """The image resized as ControlNet's preprocessor resizes it; its sizes checked first (400 if too large)."""

    def prepare(image: Any) -> Any:
        _controlnet_sizes(image, detect_resolution, image_resolution)
        return controlnet.detect_input(image, detect_resolution)

    return prepare


def _controlnet_sizes(image: Any, detect_resolution: int,
                      image_resolution: int = controlnet.DEFAULT_RESOLUTION) -> controlnet.Sizes:
    return controlnet.sizes(image.shape[1], image.shape[0], detect_resolution, image_resolution)


def _draw_controlnet(image: Any, people: Any, threshold: float, kind: str, detect_resolution: int,
                     image_resolution: int, mode: str = controlnet.DEFAULT_MODE) -> bytes:
    """ControlNet's pose image of the people found in ``image`` (already at the detection size)."""
    size = controlnet.Sizes(image.shape[1::-1], controlnet.sizes(*image.shape[1::-1], image_resolution).detect)
    return _encode(controlnet.pose_image(controlnet.persons(people, *size.detect, threshold, mode), size, mode), kind)


def _draw(upload: Upload, people: Any, threshold: float, kind: str) -> bytes:
    from pafpose.draw import poses as draw_poses

    return _encode(draw_poses(upload.image, people.on(upload.image), threshold=threshold), kind)


def _encode(drawn: Any, kind: str) -> bytes:
    import cv2

    params = [cv2.IMWRITE_JPEG_QUALITY, 90] if kind == "jpeg" else []
    ok, buf = cv2.imencode(".jpg" if kind == "jpeg" else ".png", drawn, params)
    if not ok:
        raise RuntimeError(f"OpenCV could not encode the drawn image as {kind}")
    return buf.tobytes()


def _add_error_handlers(app: FastAPI) -> None:
    """Every refusal as ``{"detail": "..."}`` with its status; bad query values are 400, not 422."""

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, err: RequestValidationError) -> JSONResponse:
        parts = []
        for e in err.errors():
            loc = [str(x) for x in e.get("loc", ())]
            where = f"{loc[0]} parameter '{loc[1]}'" if len(loc) >= 2 else ".".join(loc) or "request"
            parts.append(f"{where}: {e.get('msg', 'invalid')}")
        return JSONResponse({"detail": "; ".join(parts)}, status_code=400)

    @app.exception_handler(UploadError)
    async def bad_upload(request: Request, err: UploadError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=err.status)

    @app.exception_handler(BusyError)
    async def busy(request: Request, err: BusyError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=503, headers={"Retry-After": "1"})

    @app.exception_handler(PafposeError)
    async def user_error(request: Request, err: PafposeError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=400)

    @app.exception_handler(Exception)
    async def internal(request: Request, err: Exception) -> JSONResponse:  # a bug: logged by the server
        return JSONResponse({"detail": f"internal error ({type(err).__name__}); the server log has the details"},
                            status_code=500)


def _add_docs(app: FastAPI) -> None:
    """Swagger UI at /docs, from the swagger-ui-bundle package when installed (no CDN), else from a CDN."""
    from fastapi.staticfiles import StaticFiles

    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        swagger_ui_path = None
    urls = {}
    if swagger_ui_path is not None:
        app.mount("/docs/assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")
        urls = {"swagger_js_url": "/docs/assets/swagger-ui-bundle.js", "swagger_css_url": "/docs/assets/swagger-ui.css",
                "swagger_favicon_url": "/docs/assets/favicon-32x32.png"}

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title="pafpose API", **urls)


def app_from_env() -> FastAPI:
    """The app for one worker process of ``pafpose serve --workers N`` (options in ``$PAFPOSE_SERVE_CONFIG``)."""
    from pafpose.estimator_config import EstimatorConfig
    from pafpose.predict import Estimator

    config = json.loads(os.environ[CONFIG_ENV])
    estimator = Estimator(EstimatorConfig.from_dict(config["estimator"]))
    warm_up(estimator)
    return create_app(estimator, ServeSettings(**config["settings"]), model_name=config["name"])
