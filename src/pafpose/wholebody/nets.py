"""The part networks (MediaPipe's landmark networks) compiled by OpenVINO on the CPU.

The files come from the zoo (:data:`pafpose.weights.PART_NETS`: cached and checked by sha256,
found in ``PAFPOSE_WEIGHTS_PATH`` folders, downloaded otherwise); OpenVINO reads the TFLite
files as published, so no conversion is cached. A network is compiled once per process and
shared: crops of several people go through it in one call. Like the body network's
``--precision auto``, they run in bfloat16 where the CPU computes it natively (1.4-1.7x faster
here; hand PCK and face NME on the development sets unchanged to three decimals, points within
a pixel or two of float32's: BENCHMARKS.md), else in float32. The whole-image detectors (faces,
palms) share MediaPipe's SSD decoding here (:func:`detect`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from pafpose.errors import PafposeError
from pafpose.weights import PART_NETS, resolve_file
from pafpose.wholebody.crops import MIN_SIDE, Crop

#: How many of a network's first outputs are read (landmarks, presence, then the hand's handedness).
_USED = {"mediapipe-hand": 3, "mediapipe-pose": 2}
_COMPILED: dict[tuple[str, int | None, str], LandmarkNet] = {}
_LOCK = threading.Lock()


class LandmarkNet:
    """One compiled part network: ``net(crops)`` -> its outputs, each ``(N, ...)``.

    ``crops`` are ``N x n x n x 3`` BGR uint8 pixels as cut (:func:`to_input`): the compiled
    graph turns them into the RGB floats in the range the network takes
    (:attr:`~pafpose.weights.PartNetCfg.input_range`), fused with its first layer, where numpy
    would spend 0.2 ms a crop.
    """

    def __init__(self, name: str, threads: int | None = None, precision: str = "auto") -> None:
        import openvino as ov

        try:
            cfg = PART_NETS[name]
        except KeyError:
            raise PafposeError(f"unknown part network {name!r}; known: {', '.join(PART_NETS)}") from None
        self.name, self.side = name, cfg.input_side
        path = resolve_file(cfg, cfg.files[0])
        core = ov.Core()
        model = core.read_model(str(path))
        # only the outputs pafpose reads: BlazePose's segmentation and heatmap heads cost half its time
        model = ov.Model(list(model.outputs[:_USED.get(name, len(model.outputs))]), model.get_parameters(), name)
        # any number of crops in one call (the iris network's outputs come as one row per call: crop after crop)
        model.reshape({model.inputs[0].get_any_name(): ov.PartialShape([-1, self.side, self.side, 3])})
        model = _from_bgr_pixels(model, cfg.input_range)
        if precision == "auto":  # bfloat16 where the CPU computes it natively, as the body network's auto
            precision = "bfloat16" if "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES") else "float32"
        if precision not in ("float32", "bfloat16"):
            raise PafposeError(f"part networks run in float32 or bfloat16, not {precision}")
        self.precision = precision
        config = {"INFERENCE_PRECISION_HINT": "bf16" if precision == "bfloat16" else "f32",
                  "PERFORMANCE_HINT": "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = str(threads)
        try:
            self._compiled = core.compile_model(model, "CPU", config)
        except RuntimeError as err:
            raise PafposeError(f"{name}: OpenVINO could not compile {path.name} ({str(err).splitlines()[0]})") from err
        self._lock = threading.Lock()  # one inference request: callers from several threads take turns

    def __call__(self, crops: np.ndarray) -> list[np.ndarray]:
        crops = np.ascontiguousarray(crops, dtype=np.uint8)
        if len(crops) == 0:
            return []
        with self._lock:
            result = self._compiled(crops)
        return [np.asarray(v).reshape(len(crops), -1) for v in result.values()]


def landmark_net(name: str, threads: int | None = None, precision: str = "auto") -> LandmarkNet:
    """The compiled network ``name`` of :data:`~pafpose.weights.PART_NETS` (compiled on first use)."""
    with _LOCK:
        key = (name, threads, precision)
        if key not in _COMPILED:
            _COMPILED[key] = LandmarkNet(name, threads, precision)
        return _COMPILED[key]


def to_input(bgr_crops: list[np.ndarray]) -> np.ndarray:
    """BGR uint8 crops -> a :class:`LandmarkNet`'s input, ``N x n x n x 3`` (the colour order and
    the scaling are the compiled graph's)."""
    return np.stack(bgr_crops)


def _from_bgr_pixels(model: Any, input_range: tuple[float, float]) -> Any:
    """``model`` (RGB floats in ``input_range``) taking BGR uint8 pixels: x -> lo + x (hi - lo) / 255."""
    import openvino as ov
    from openvino.preprocess import ColorFormat, PrePostProcessor

    lo, hi = input_range
    ppp = PrePostProcessor(model)
    ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")).set_color_format(
        ColorFormat.BGR)
    ppp.input().model().set_layout(ov.Layout("NHWC"))
    ppp.input().preprocess().convert_color(ColorFormat.RGB).convert_element_type(ov.Type.f32).mean(
        -lo * 255.0 / (hi - lo)).scale(255.0 / (hi - lo))
    return ppp.build()


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function; MediaPipe clips detector logits at +-100 first, which gives the
    same scores as clipping at +-60 here (both ends are already 0 or 1 in float64)."""
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


# ---------------------------------------------------------------------- whole-image detectors (SSD)
class Detection(NamedTuple):
    """One find of a detector: ``box`` (centre x, y, width, height), ``keypoints`` ``(K, 2)`` and score."""

    box: np.ndarray
    keypoints: np.ndarray
    score: float


def ssd_anchors(layers: Sequence[tuple[int, int]]) -> np.ndarray:
    """The anchor centres (0..1) of MediaPipe's SSD detectors (``SsdAnchorsCalculator`` with a
    fixed anchor size and offsets 0.5): for each ``(cells, per_cell)`` a ``cells x cells`` grid,
    row by row, each cell's centre repeated ``per_cell`` times (layers of one stride merged)."""
    rows = []
    for cells, per in layers:
        c = (np.arange(cells) + 0.5) / cells
        y, x = np.meshgrid(c, c, indexing="ij")
        rows.append(np.repeat(np.stack([x.ravel(), y.ravel()], axis=1), per, axis=0))
    return np.concatenate(rows)


def decode_ssd(raw: np.ndarray, logits: np.ndarray, anchors: np.ndarray, n: int, min_score: float,
               overlap: float) -> list[Detection]:
    """MediaPipe's decoding of an ``n``-pixel detector's outputs (``TensorsToDetectionsCalculator``:
    box centre and keypoints are offsets from the anchor, everything scaled by ``n``): the
    detections scoring ``min_score`` or more, best first, without those overlapping a better one
    by IoU ``overlap`` or more; in the input's pixels (left edge 0)."""
    raw = np.asarray(raw, dtype=np.float64).reshape(len(anchors), -1)
    scores = sigmoid(np.asarray(logits, dtype=np.float64).reshape(-1))
    keep = np.flatnonzero(scores >= min_score)
    keep = keep[np.argsort(-scores[keep], kind="stable")]
    boxes = raw[keep, :4].copy()
    boxes[:, :2] += anchors[keep] * n
    points = raw[keep, 4:].reshape(len(keep), (raw.shape[1] - 4) // 2, 2) + anchors[keep, None] * n  # none: (0, k, 2)
    chosen: list[int] = []
    for k in range(len(keep)):  # non-maximum suppression
        if all(_iou(boxes[k], boxes[j]) < overlap for j in chosen):
            chosen.append(k)
    return [Detection(boxes[k], points[k], float(scores[keep[k]])) for k in chosen]


def recropped(net: LandmarkNet, image: np.ndarray, crops: Sequence[Crop | None], passes: int,
              recrop: Callable[[Crop, list[np.ndarray]], Crop | None]) -> list[tuple[Crop, list[np.ndarray]] | None]:
    """Each crop through ``net`` ``passes`` times, cut again each time where ``recrop(crop, its
    answers)`` says (MediaPipe's re-crop from the network's own landmarks; None, or a crop too
    small: no more): per crop, the last crop and the network's answers there (None: no crop).
    Every pass runs the crops still going in one call."""
    n = net.side
    out: list[tuple[Crop, list[np.ndarray]] | None] = [None] * len(crops)
    todo = [(i, c) for i, c in enumerate(crops) if c is not None]
    for step in range(passes):
        if not todo:
            break
        answers = net(to_input([c.cut(image, n) for _, c in todo]))
        nxt = []
        for k, (i, crop) in enumerate(todo):
            rows = [a[k] for a in answers]
            if step == passes - 1:
                out[i] = (crop, rows)
                continue
            again = recrop(crop, rows)
            if again is not None and again.side >= MIN_SIDE:
                nxt.append((i, again))
        todo = nxt
    return out


class SsdDetector:
    """A MediaPipe whole-image detector (faces, palms): its network (:data:`NET`), its anchor
    grid (:data:`LAYERS`, see :func:`ssd_anchors`) and MediaPipe's thresholds."""

    NET: str = ""
    LAYERS: tuple[tuple[int, int], ...] = ()

    def __init__(self, threads: int | None = None, precision: str = "auto", min_score: float = 0.5,
                 overlap: float = 0.3) -> None:
        self.net = landmark_net(self.NET, threads, precision)
        self.anchors = ssd_anchors(self.LAYERS)
        self.min_score, self.overlap = min_score, overlap

    def detections(self, image: np.ndarray) -> list[Detection]:
        """What it finds in ``image``, best first, in image pixels (:func:`detect`)."""
        return detect(self.net, self.anchors, image, self.min_score, self.overlap)


def detect(net: LandmarkNet, anchors: np.ndarray, image: np.ndarray, min_score: float,
           overlap: float) -> list[Detection]:
    """A detector on the whole image, letterboxed into its square input as MediaPipe pads it
    (black): :func:`decode_ssd`'s detections in image pixels."""
    h, w = image.shape[:2]
    n = net.side
    frame = Crop((w - 1) / 2, (h - 1) / 2, float(max(w, h)))
    raw, logits = net(to_input([frame.cut(image, n)]))[:2]
    k = frame.side / n
    return [Detection(np.concatenate([frame.to_image(d.box[None, :2], n)[0], d.box[2:] * k]),
                      frame.to_image(d.keypoints, n), d.score)
            for d in decode_ssd(raw, logits, anchors, n, min_score, overlap)]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ax0, ay0, ax1, ay1 = a[0] - a[2] / 2, a[1] - a[3] / 2, a[0] + a[2] / 2, a[1] + a[3] / 2
    bx0, by0, bx1, by1 = b[0] - b[2] / 2, b[1] - b[3] / 2, b[0] + b[2] / 2, b[1] + b[3] / 2
    iw, ih = max(0.0, min(ax1, bx1) - max(ax0, bx0)), max(0.0, min(ay1, by1) - max(ay0, by0))
    inter = iw * ih
    return float(inter / (a[2] * a[3] + b[2] * b[3] - inter + 1e-12))
