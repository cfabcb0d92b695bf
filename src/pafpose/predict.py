"""The Estimator: images in, people out (preprocess -> network -> fields -> decoder).

Preprocessing follows the weights' :class:`~pafpose.models.InputConfig`: resize to the
input height keeping the aspect ratio (bicubic, as the reference recipes, also when
shrinking: it scored higher than area averaging, see BENCHMARKS.md), pad right and bottom
to the stride with the model's padding value, normalise. Test-time augmentation averages the fields at
*feature* resolution on the cell grid of the largest scale: each other scale's fields are
resampled onto it (through image coordinates, so the grids line up exactly), and the
flipped input's fields are mirrored back with the skeleton's left/right permutations (PAF x
components negated). Chosen by measurement (BENCHMARKS.md, ``benchmarks/tta.py``): more
accurate than averaging maps upsampled to input resolution, at a fraction of the cost; the
decoder refines peaks on the field itself.
"""

from __future__ import annotations

import collections
import copy
import itertools
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from pafpose.checks import MAX_HEIGHT, MAX_SIDE, check_number
from pafpose.coords import Geometry
from pafpose.decoder import Decoder, DecoderConfig
from pafpose.device import cpu_has_bfloat16, resolve_device
from pafpose.errors import PafposeError
from pafpose.estimator_config import EstimatorConfig
from pafpose.fields import Fields
from pafpose.images import Decoded, as_bgr, open_image
from pafpose.models._base import PafModel
from pafpose.pose import Poses, map_poses
from pafpose.skeleton import Skeleton

if TYPE_CHECKING:
    from pafpose.tracking import TrackerConfig
    from pafpose.video import FrameRange


def to_image(poses: Poses, geometry: Geometry | float) -> Poses:
    """People in network-input pixels -> the same people in image pixels (``geometry``: as
    :meth:`Estimator.fields` returns it; a bare factor, input pixels per image pixel, is
    still taken)."""
    if not isinstance(geometry, Geometry):
        geometry = Geometry.uniform(geometry)
    return map_poses(poses, geometry.input_to_image)


def _host(x: torch.Tensor) -> np.ndarray:
    """A float32 copy on the host (a field crop may be a view into its whole batch)."""
    return np.array(x.detach().float().cpu().numpy(), dtype=np.float32, copy=True)


#: A preprocessing hook (:meth:`Estimator.with_options`): a BGR image -> the image the
#: network is run on (e.g. resized as ControlNet's preprocessor resizes it). People are still
#: reported in the given image's pixels. A hook that also has ``output_shape(shape)`` (the
#: shape it makes of an image of ``shape``) lets :meth:`Estimator.geometry` and
#: :meth:`Estimator.input_sizes` answer for it.
Prepare = Callable[[np.ndarray], np.ndarray]


class _Shot(NamedTuple):
    """One image on its way to the network: ``image`` as given (BGR; a file as decoded),
    ``pixels`` what the network gets, ``size`` the original ``(width, height)``, ``steps`` the
    resizes from the original to ``pixels``, in order (each a :class:`Geometry`: later pixels
    per earlier pixel), undone in reverse on the people."""

    image: np.ndarray
    pixels: np.ndarray
    size: tuple[int, int]
    source: str | None
    steps: tuple[Geometry, ...]


class Estimator:
    """Multi-person pose estimation with a PAF network.

    ``Estimator(config)`` with an :class:`EstimatorConfig`, or ``Estimator(**options)`` with
    its fields as keyword arguments (one code path: the keywords build the config), or
    ``Estimator(network, **options)`` to run a network object as it is (e.g. one being
    trained; it is not modified). The options:

    - ``model``: zoo name (``pafpose models``) or architecture name (default:
      ``DEFAULT_MODEL``, or with ``weights`` the architecture the file names).
    - ``weights``: a weights file to use instead of the zoo's (for ``model``'s architecture;
      a ``pafpose train`` checkpoint says its own).
    - ``device``: ``"auto"``, ``"cpu"``, ``"cuda"``...
    - ``height``: network input height (default: the model's, e.g. 368).
    - ``scales``: input scales relative to ``height`` whose fields are averaged (e.g. 0.5 1 1.5 2).
    - ``flip``: also run the mirrored image and average.
    - ``decoder``: decoder thresholds (:class:`DecoderConfig`).
    - ``max_side``: longest network input side at scale 1 (very wide images are shrunk to fit).
    - ``backend``: where the network runs: ``"auto"`` (default: on a GPU torch; on a CPU the
      fastest backend whose COCO AP matches torch float32's, see
      :func:`~pafpose.backends.choose_backend`; a network object given as ``model``: torch),
      ``"torch"``, or on the CPU ``"openvino"`` or ``"onnxruntime"`` (an optional extra).
    - ``precision``: ``"auto"`` (default: what ``backend="auto"`` picks; float32 for torch and
      onnxruntime; for openvino the network's own IR at its precision, INT8 for
      human-pose-estimation-0001), ``"float32"``, on a GPU ``"float16"`` / ``"bfloat16"``
      (autocast; the fields are averaged and decoded in float32 either way), ``"bfloat16"`` on
      CPUs with bfloat16 instructions (:func:`cpu_has_bfloat16`; torch or openvino), ``"int8"``
      (openvino: the Open Model Zoo IR's 8-bit activations, faster, COCO AP 0.011 lower).
    - ``threads``: CPU threads for the network (default: the runtime's choice).
    - ``parts``: whole body (:mod:`pafpose.wholebody`): any of ``"hands"``, ``"face"``, ``"feet"``
      (``"wholebody"``: all three), found on crops the body gives; each person's
      :attr:`Pose.parts` holds them. ``face_detector="detector"`` also finds faces in the
      whole image (close-ups where the body is barely visible), ``hand_detector="detector"``
      hands (close-ups, signing with the elbows out of view).

    ``config`` is what runs, with ``"auto"`` resolved (``config.backend``, ``config.precision``).
    :meth:`with_options` gives the same loaded network and backend with other per-call
    options (scales, flip, decoder thresholds), at no cost.

    Example:
        >>> est = Estimator()
        >>> poses = est.predict("people.jpg")  # BGR arrays, RGB arrays (color="RGB"), PIL images too
    """

    def __init__(self, model: str | PafModel | EstimatorConfig | None = None, **options: Any) -> None:
        from pafpose.backends import choose_backend, make_backend
        from pafpose.weights import resolve

        network = model if isinstance(model, torch.nn.Module) else None
        if isinstance(model, EstimatorConfig):
            config = model.replace(**options) if options else model
        else:
            config = EstimatorConfig(model=None if network is not None else model, **options)
        self.device = resolve_device(config.device)
        # a caller's network (one being trained, say) runs as it is, in PyTorch: exporting it would copy a
        # snapshot of weights that may still change, and a CPU runtime would take PyTorch's threads
        requested = "torch" if network is not None and config.backend == "auto" else config.backend
        backend, precision = choose_backend(requested, config.precision, self.device)
        if precision in ("float16", "bfloat16") and self.device.type != "cuda":
            if precision == "float16":
                raise PafposeError("precision float16 needs a CUDA device (on the CPU: bfloat16, on CPUs with "
                                   "bfloat16 instructions)")
            if backend == "onnxruntime":
                raise PafposeError("precision bfloat16 on the CPU: only with --backend torch or openvino")
            if not cpu_has_bfloat16():
                raise PafposeError("precision bfloat16 on the CPU needs bfloat16 instructions (AVX512-BF16 or "
                                   "AMX), which this CPU lacks; use float32")
        if precision == "int8" and backend != "openvino":
            raise PafposeError("precision int8 is OpenVINO's (the Open Model Zoo IR's 8-bit activations): "
                               "--backend openvino")
        own_ir = backend == "openvino" and precision in ("auto", "int8")
        ir = None  # the network's own OpenVINO IR, which the openvino backend runs as published
        if network is not None:
            self.net = network  # e.g. a network being trained: used as it is, put in eval mode
        else:
            self.net, _, ir = resolve(config.model, config.weights, ir=own_ir)
        if own_ir:
            from pafpose.weights.openvino_ir import quantized_activations

            int8 = ir is not None and quantized_activations(ir)
            if precision == "int8" and not int8:
                raise PafposeError(f"precision int8: {config.weights or config.model or 'this network'} has no INT8 "
                                   "OpenVINO IR (human-pose-estimation-0001 has); use float32")
            precision = "int8" if int8 else "float32"
        # what runs, "auto" resolved: Estimator(self.config) runs the same again, without choosing
        asked = config.precision  # the part networks follow an explicit float32 or bfloat16
        self.config = config = config.replace(backend=backend, precision=precision)
        self.precision = precision
        own = network is None  # a caller's network is not modified (fused, relaid)
        self.net = self.net.to(self.device).eval()
        self.spec = self.net.spec
        self.input_config = self.net.input_config
        self.height = int(check_number("height", self.input_config.height if config.height is None else config.height,
                                       self.spec.stride, MAX_HEIGHT, integer=True))
        self.scales = config.scales
        self.flip = config.flip
        self.max_side = int(check_number("max_side", config.max_side, self.spec.stride, MAX_SIDE, integer=True))
        self.decoder = Decoder(self.spec, config.decoder)
        self._flip_tables()
        # seconds spent per stage since the last reset (``pafpose bench`` reads and clears them)
        self.timings: dict[str, float] = {"preprocess": 0.0, "network": 0.0, "decode": 0.0}
        self.wholebody = None  # hands, face, feet on crops the body gives (pafpose.wholebody)
        if config.parts:
            from pafpose.wholebody import WholeBody

            self.wholebody = WholeBody(config.parts, config.face_detector, config.threads,
                                       asked if asked in ("float32", "bfloat16") else "auto", config.hand_detector)
            self.timings["parts"] = 0.0
        self.prepare: Prepare | None = None  # a preprocessing hook (with_options)
        try:
            self.backend = make_backend(backend, self.net, self.device, precision, config.threads,
                                        name=type(self.net).__name__, ir=ir, optimize=own)
        except (PafposeError, RuntimeError, OSError) as err:
            if requested != "auto" or backend == "torch":
                raise
            from pafpose.backends import torch_instead  # auto promised a network that runs: torch's

            self.precision = torch_instead(backend, precision, err)
            self.config = config = config.replace(backend="torch", precision=self.precision)
            self.backend = make_backend("torch", self.net, self.device, self.precision, config.threads,
                                        name=type(self.net).__name__, optimize=own)

    def with_options(self, scales: Sequence[float] | None = None, flip: bool | None = None,
                     decoder: DecoderConfig | None = None, prepare: Prepare | bool | None = False) -> Estimator:
        """This estimator with other per-call options, sharing its loaded network and backend.

        Nothing is loaded or compiled, and no runtime setting (such as PyTorch's thread
        count) is touched: a server runs each request's options this way. ``prepare``: a
        preprocessing hook (:data:`Prepare`) every image goes through before the network,
        people still reported in the image's own pixels (None: none; left out: unchanged).
        """
        config = self.config.replace(**{k: v for k, v in (("scales", scales), ("flip", flip), ("decoder", decoder))
                                        if v is not None})
        other = copy.copy(self)
        other.config = config
        other.scales, other.flip = config.scales, config.flip
        if config.decoder != self.config.decoder:
            other.decoder = Decoder(self.spec, config.decoder)
        if prepare is not False:
            if prepare is not None and not callable(prepare):
                raise PafposeError(f"prepare must be a function of an image, got {type(prepare).__name__}")
            other.prepare = prepare  # type: ignore[assignment]
        other.timings = dict.fromkeys(self.timings, 0.0)
        return other

    @property
    def skeleton(self) -> Skeleton:
        return self.spec.skeleton

    def _flip_tables(self) -> None:
        """The spec's flip tables (:attr:`FieldSpec.flip_tables`) as tensors on the device."""
        tables = self.spec.flip_tables
        self._hm_src = torch.tensor(tables.heatmaps, device=self.device)
        self._paf_src = torch.tensor(tables.pafs, device=self.device)
        self._paf_sign = torch.tensor(tables.paf_sign, device=self.device).view(1, -1, 1, 1)

    # ------------------------------------------------------------------ preprocessing
    def _factor(self, shape: tuple[int, ...], scale: float) -> float:
        h, w = shape[:2]
        return min(self.height * scale / h, self.max_side * scale / w)

    def _geometry(self, shape: tuple[int, ...], scale: float) -> Geometry:
        """Where an image of ``shape`` lies in the network input and fields at ``scale``."""
        return self.spec.geometry(self._factor(shape, scale))

    def geometry(self, shape: tuple[int, ...]) -> Geometry:
        """Where an image of ``shape`` (``(H, W, ...)``) lies on the network input and on the
        fields :meth:`fields` returns (those of the largest scale, where the scales are
        averaged): OpenPose's "net resolution" coordinates of that image (through the
        preprocessing hook's resize, when it says the size it makes)."""
        prepared = self._prepared_shape(shape)
        g = self._geometry(prepared, max(self.scales))
        if prepared[:2] == tuple(shape[:2]):
            return g
        return g.through(Geometry(prepared[1] / shape[1], prepared[0] / shape[0]))

    def _prepared_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape the network gets for an image of ``shape``: the preprocessing hook's (its
        ``output_shape(shape)``), else ``shape``."""
        if self.prepare is None:
            return tuple(shape)
        sized = getattr(self.prepare, "output_shape", None)
        if sized is None:
            raise PafposeError("this Estimator's prepare hook does not say the size it makes (give it an "
                               "output_shape(shape) method)")
        return tuple(sized(tuple(shape)))

    def input_sizes(self, shape: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
        """The padded network input ``(h, w)`` at each scale for an image of ``shape`` (``(H, W, ...)``).

        Images with equal input sizes get exactly the padding in one :meth:`predict_batch` call
        that they get alone, so their results do not depend on the company: a server batches
        by this key. With a preprocessing hook: those of the image it makes (see :meth:`geometry`).
        """
        shape = self._prepared_shape(shape)
        return tuple(self._geometry(shape, scale).padded_size(shape) for scale in self.scales)

    def _prepare(self, image: np.ndarray, geometry: Geometry) -> np.ndarray:
        """Resized (bicubic) HxWx3 uint8 BGR; the backend normalises (in its graph, not here)."""
        import cv2

        h, w = geometry.input_size(image.shape)
        return cv2.resize(image, (w, h), interpolation=cv2.INTER_CUBIC)

    def _batch(self, arrays: list[np.ndarray]) -> torch.Tensor:
        """N x H x W x 3 BGR pixels, padded to a common size (a multiple of the stride) with the
        model's padding value: the layout images already have, so one copy makes it, and none
        when a single image needs no padding. uint8 where the padding value is a whole number,
        as it is for every model pafpose ships: a quarter of float32's bytes to copy (the
        backends convert in their graphs, or on the GPU after the smaller transfer)."""
        s = self.spec.stride
        hp = max(math.ceil(a.shape[0] / s) * s for a in arrays)
        wp = max(math.ceil(a.shape[1] / s) * s for a in arrays)
        pad = self.input_config.pad_value
        dtype = np.uint8 if float(pad).is_integer() and 0 <= pad <= 255 else np.float32
        if len(arrays) == 1 and arrays[0].shape[:2] == (hp, wp) and dtype == np.uint8:
            return torch.from_numpy(arrays[0][None])
        out = np.empty((len(arrays), hp, wp, 3), dtype)
        for i, a in enumerate(arrays):
            h, w = a.shape[:2]
            out[i, :h, :w] = a
            out[i, h:] = self.input_config.pad_value
            out[i, :h, w:] = self.input_config.pad_value
        return torch.from_numpy(out)

    # ------------------------------------------------------------------ network
    def _net(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.backend(x)

    @torch.inference_mode()
    def _run(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hm, paf = self._net(x)
        if self.flip:
            fh, fp = self._net(torch.flip(x, dims=[2]))  # NHWC: mirror the width
            hm = (hm + torch.flip(fh, dims=[3])[:, self._hm_src]) / 2
            paf = (paf + torch.flip(fp, dims=[3])[:, self._paf_src] * self._paf_sign) / 2
        return hm, paf

    def _inputs(self, images: Sequence[np.ndarray]) -> list[tuple[float, list[np.ndarray], list[Geometry],
                                                                  torch.Tensor]]:
        """Per scale: ``(scale, resized images, their geometries, padded batch)``."""
        t0 = time.perf_counter()
        out = []
        for scale in self.scales:
            geometries = [self._geometry(im.shape, scale) for im in images]
            arrays = [self._prepare(im, g) for im, g in zip(images, geometries, strict=True)]
            out.append((scale, arrays, geometries, self._batch(arrays)))
        self.timings["preprocess"] += time.perf_counter() - t0
        return out

    @torch.inference_mode()
    def _outputs(self, inputs: Sequence[tuple[Any, Any, Any, torch.Tensor]]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The network's fields for each scale's batch."""
        t0 = time.perf_counter()
        out = []
        for *_, x in inputs:
            hm, paf = self._run(x)
            if hm.device.type == "cuda":
                torch.cuda.synchronize(hm.device)
            out.append((hm, paf))
        self.timings["network"] += time.perf_counter() - t0
        return out

    @torch.inference_mode()
    def _merge(self, images: Sequence[np.ndarray], inputs: Sequence[tuple[float, Any, list[Geometry], Any]],
               outputs: Sequence[tuple[torch.Tensor, torch.Tensor]],
               ) -> list[tuple[torch.Tensor, torch.Tensor, Geometry]]:
        """Crop each image's fields out of its batch and average the scales on the largest one's grid."""
        t0 = time.perf_counter()
        top = max(self.scales)
        base = [self._geometry(im.shape, top) for im in images]
        nh = self.spec.num_heatmaps
        out = []
        for i in range(len(images)):
            parts = []
            for (scale, _, geometries, _), (hm, paf) in zip(inputs, outputs, strict=True):
                gh, gw = geometries[i].field_size(images[i].shape)
                if len(self.scales) == 1:  # nothing to average: views, no copies
                    parts.append((hm[i, :, :gh, :gw], paf[i, :, :gh, :gw]))
                    continue
                field = torch.cat([hm[i : i + 1, :, :gh, :gw], paf[i : i + 1, :, :gh, :gw]], dim=1)
                if scale != top:
                    field = self._resample(field, base[i], geometries[i], base[i].field_size(images[i].shape))
                parts.append(field)
            if len(self.scales) == 1:
                out.append((*parts[0], base[i]))
            else:
                mean = torch.stack(parts).mean(dim=0)[0]
                out.append((mean[:nh], mean[nh:], base[i]))
        self.timings["network"] += time.perf_counter() - t0  # part of getting the fields
        return out

    def fields(self, images: Sequence[np.ndarray]) -> list[tuple[torch.Tensor, torch.Tensor, Geometry]]:
        """(heatmaps, PAFs, geometry) per BGR image: TTA-averaged fields on the largest scale's grid.

        ``geometry`` (:class:`~pafpose.coords.Geometry`) places the image on that scale's
        network input and fields: ``geometry.cell_to_image`` takes field cells to image
        pixels, ``geometry.input_to_image`` (or :func:`to_image`) decoded people.
        """
        inputs = self._inputs(images)
        return self._merge(images, inputs, self._outputs(inputs))

    def _resample(self, field: torch.Tensor, base: Geometry, geometry: Geometry, grid: tuple[int, int]) -> torch.Tensor:
        """Bilinear resampling of one scale's field (``geometry``) onto the base scale's cell
        centres (``base``), through image pixels."""
        gh, gw = grid
        _, _, h, w = field.shape

        def coords(n: int, size: int, axis: int) -> torch.Tensor:
            img = base.cell_to_image(torch.arange(n, device=field.device, dtype=torch.float32), axis)
            cell = geometry.image_to_cell(img, axis)
            return cell / max(size - 1, 1) * 2 - 1

        gy, gx = torch.meshgrid(coords(gh, h, 1), coords(gw, w, 0), indexing="ij")
        grid_xy = torch.stack([gx, gy], dim=-1)[None]
        return F.grid_sample(field, grid_xy, mode="bilinear", padding_mode="border", align_corners=True)

    # ------------------------------------------------------------------ API
    def _load(self, image: Any, color: str = "BGR") -> _Shot:
        """A path, a decoded file, an array or a PIL image -> what the network gets, and the way back."""
        steps: tuple[Geometry, ...] = ()
        source = None
        if isinstance(image, (str, os.PathLike)):  # a huge JPEG is read reduced: one more resize to undo
            image = open_image(image)
        if isinstance(image, Decoded):
            bgr, size, source = image.image, (image.width, image.height), image.source
            if image.scale != (1.0, 1.0):
                steps = (Geometry(*image.scale),)
        else:
            bgr = as_bgr(image, color)
            size = (bgr.shape[1], bgr.shape[0])
        pixels = bgr
        if self.prepare is not None:
            pixels = as_bgr(self.prepare(bgr))
            (h, w), (ph, pw) = bgr.shape[:2], pixels.shape[:2]
            if (ph, pw) != (h, w):
                steps = (*steps, Geometry(pw / w, ph / h))
        return _Shot(bgr, pixels, size, source, steps)

    def _decode(self, fields: Sequence[tuple[torch.Tensor, torch.Tensor, Geometry]], shots: Sequence[_Shot],
                keep_fields: bool) -> list[Poses]:
        """Each image's people in its original pixels: the one place where people found on the
        network input go back to the image as given, through every resize on the way (a
        reduced decode, a preprocessing hook). Each result says its image's size, source and
        geometry; with ``keep_fields`` its fields come along (:attr:`Poses.fields`, float32
        copies on the host)."""
        t0 = time.perf_counter()
        parts = self.timings.get("parts", 0.0)
        out = []
        for (hm, paf, g), shot in zip(fields, shots, strict=True):
            people = to_image(self.decoder.decode(hm, paf), g)
            for step in reversed(shot.steps):
                people = people.moved(step.input_to_image)
                g = g.through(step)
            people.geometry = g
            people.image_size, people.source, people.skeleton = shot.size, shot.source, self.spec.skeleton
            if self.wholebody is not None:
                people = self._parts(people, shot)
            if keep_fields:
                people.fields = Fields(_host(hm), _host(paf), people.geometry)
            out.append(people)
        self.timings["decode"] += time.perf_counter() - t0 - (self.timings.get("parts", 0.0) - parts)  # parts apart
        return out

    def _parts(self, people: Poses, shot: _Shot) -> Poses:
        """The people's hands, face and feet, found in the image as given (a reduced decode's
        pixels, mapped back to the file's)."""
        assert self.wholebody is not None
        t0 = time.perf_counter()
        local = people.on(shot.image)
        out = self.wholebody(shot.image, local)
        if local is not people:
            out = out.scaled(shot.size[0] / shot.image.shape[1], shot.size[1] / shot.image.shape[0], shot.size)
        self.timings["parts"] += time.perf_counter() - t0
        return out

    def _predict(self, shots: Sequence[_Shot], keep_fields: bool) -> list[Poses]:
        if not shots:
            return []
        return self._decode(self.fields([s.pixels for s in shots]), shots, keep_fields)

    def predict_batch(self, images: Sequence[Any], color: str = "BGR", keep_fields: bool = False) -> list[Poses]:
        """People in each image; keypoints in that image's pixels (see :meth:`predict`).

        ``images`` is a list (or an N x H x W x C array) of images: a single path, PIL image
        or H x W x C array is refused rather than taken apart (use :meth:`predict`).
        ``keep_fields``: each result also holds the heatmaps and PAFs it was decoded from
        (:attr:`Poses.fields`).
        """
        if (isinstance(images, (str, bytes, os.PathLike, Decoded)) or type(images).__module__.startswith("PIL.")
                or (isinstance(images, np.ndarray) and images.ndim < 4)):
            raise PafposeError(f"predict_batch takes a list of images, got one {type(images).__name__}; "
                               "use predict() for a single image")
        t0 = time.perf_counter()
        shots = [self._load(im, color) for im in images]
        self.timings["preprocess"] += time.perf_counter() - t0
        return self._predict(shots, keep_fields)

    def predict(self, image: Any, color: str = "BGR") -> Poses:
        """People in one image.

        Args:
            image: a path, an HxWx3 uint8 array (``color`` says BGR, as OpenCV reads, or RGB),
                a grayscale / RGBA / 16-bit array, a PIL image, or a decoded file
                (:func:`pafpose.images.open_image`).

        Returns:
            :class:`Poses`, best first; keypoints in the image's own pixels (a file's, also
            when it was decoded reduced).
        """
        return self.predict_batch([image], color)[0]

    def pipeline(self, frames: Iterable[np.ndarray], batch_size: int = 1, overlap: bool | None = None,
                 track: bool | TrackerConfig = True, offline: bool = False,
                 keep_fields: bool = False) -> Iterator[tuple[np.ndarray, Poses]]:
        """``(frame, poses)`` for a sequence of BGR frames, in order, ``batch_size`` at a time.

        ``track``: the frames are one video's, so every person gets a ``track_id`` that
        follows them and their keypoints are smoothed (:class:`pafpose.tracking.Tracker`; a
        :class:`~pafpose.tracking.TrackerConfig` sets it up); False for frames that are no
        sequence (each frame's people as :meth:`predict` finds them). ``offline``: the frames
        are a recording, not live: each is given out ``window`` frames later, smoothed
        without lag from the frames on both sides (:class:`pafpose.tracking.OfflineTracker`).

        ``overlap``: the network works on the next batch while this one is decoded (a thread:
        the runtimes and OpenCV release the GIL), so that a video's throughput approaches the
        network's own. That pays where the network leaves the host's CPUs time to spare: on
        a GPU, or with a runtime using fewer threads than there are CPUs. Where it keeps
        every CPU busy, the decoding thread only takes turns with it (measured on 2 cores:
        OpenVINO no faster, PyTorch's OpenMP threads 105 -> 130 ms per frame), so the default
        overlaps exactly when the backend uses fewer threads than the process has CPUs.

        ``keep_fields``: each frame's people also hold the fields they were decoded from
        (:attr:`Poses.fields`).
        """
        if batch_size < 1:
            raise PafposeError(f"batch_size must be at least 1, got {batch_size}")
        if not track:
            yield from self._pipeline(frames, batch_size, overlap, keep_fields)
            return
        from pafpose.tracking import TrackerConfig, track_frames

        config = track if isinstance(track, TrackerConfig) else None
        found = self._pipeline(frames, batch_size, overlap, keep_fields)
        yield from track_frames(((image, poses, None, image) for image, poses in found), config, offline)

    def _pipeline(self, frames: Iterable[np.ndarray], batch_size: int,
                  overlap: bool | None, keep_fields: bool = False) -> Iterator[tuple[np.ndarray, Poses]]:
        from concurrent.futures import ThreadPoolExecutor

        if overlap is None:
            cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
            overlap = self.backend.threads < cpus
        it = iter(frames)

        def batches() -> Iterator[list[_Shot]]:
            while batch := [self._load(f) for f in itertools.islice(it, batch_size)]:
                yield batch

        if not overlap:
            for shots in batches():
                yield from zip([s.image for s in shots], self._predict(shots, keep_fields), strict=True)
            return

        def decoded(shots: list[_Shot], inputs: Any, outputs: Any) -> Iterator[tuple[np.ndarray, Poses]]:
            pixels = [s.pixels for s in shots]
            people = self._decode(self._merge(pixels, inputs, outputs.result()), shots, keep_fields)
            yield from zip([s.image for s in shots], people, strict=True)

        # this thread: read, preprocess batch k+1, then decode batch k; the worker: the network
        with ThreadPoolExecutor(1, thread_name_prefix="pafpose-network") as pool:
            pending = None
            batch_iter = batches()
            while True:
                shots = next(batch_iter, None)
                ahead = None
                if shots:
                    inputs = self._inputs([s.pixels for s in shots])
                    ahead = (shots, inputs, pool.submit(self._outputs, inputs))
                if pending is not None:
                    yield from decoded(*pending)
                if ahead is None:
                    break
                pending = ahead

    def stream(self, source: int | str | Any, batch_size: int = 1, timeout: float = 10.0,
               track: bool | TrackerConfig = True, offline: bool | None = None, frames: FrameRange | None = None,
               keep_fields: bool = False) -> Iterator[tuple[int, np.ndarray, Poses]]:
        """``(frame_index, frame, poses)`` for each frame of a video file, camera index or URL.

        ``source`` may also be an opened ``cv2.VideoCapture`` (left open). Frames are BGR as
        OpenCV decodes them; ``batch_size`` frames go through the network together, as
        :meth:`pipeline` runs them (the network on the next batch while this one is decoded,
        where that pays). ``timeout`` bounds the wait for a stream URL and each of its frames.
        ``track``: every person gets a ``track_id`` that follows them through the video and
        their keypoints are smoothed (:class:`pafpose.tracking.Tracker`; a
        :class:`~pafpose.tracking.TrackerConfig` sets it up, the video's frame rate filled in);
        False gives each frame's people as :meth:`predict` finds them. ``offline``: smooth
        each frame from the frames on both sides too, giving it out ``window`` frames later
        (see :meth:`pipeline`); by default on for a video file, off for a camera, a URL or an
        opened capture.

        ``frames`` (:class:`~pafpose.video.FrameRange`) picks the frames to run on, as
        OpenPose's ``--frame_first``, ``--frame_step`` and ``--frame_last`` do; the others are
        skipped without being converted, and ``frame_index`` stays the frame's position in the
        video. The tracker's time step is then ``step`` frames. ``keep_fields``: each frame's
        people also hold the fields they were decoded from (:attr:`Poses.fields`).
        """
        if batch_size < 1:
            raise PafposeError(f"batch_size must be at least 1, got {batch_size}")
        return stream_frames(lambda images: self._pipeline(images, batch_size, None, keep_fields), source, timeout,
                             track, offline, frames)


def stream_frames(detect: Callable[[Iterator[np.ndarray]], Iterable[tuple[np.ndarray, Poses]]],
                  source: int | str | Any, timeout: float = 10.0, track: bool | TrackerConfig = True,
                  offline: bool | None = None, frames: FrameRange | None = None
                  ) -> Iterator[tuple[int, np.ndarray, Poses]]:
    """:meth:`Estimator.stream` for any ``detect`` (frames in, ``(frame, people)`` out, in
    order): the source opened, the frames ``frames`` selects read with their times, and the
    people tracked online or offline."""
    from pafpose.tracking import TrackerConfig, is_recording, track_frames
    from pafpose.video import FrameRange, capture_info, open_capture, read_frames

    selected = FrameRange() if frames is None else frames
    if not isinstance(selected, FrameRange):
        raise PafposeError(f"frames must be a FrameRange, got {type(selected).__name__}")
    owned = isinstance(source, (int, str, os.PathLike))
    if offline is None:  # a video file is a recording: its later frames are known
        offline = is_recording(source)
    cap = open_capture(source if isinstance(source, int) else str(source), timeout) if owned else source
    try:
        if track is True:  # the video's own frame rate, over the frames run on, sets the filter's time step
            track = TrackerConfig(fps=capture_info(cap)[0] / selected.step)
        held: collections.deque[tuple[int, float | None]] = collections.deque()  # frames in flight: index, time

        def read() -> Iterator[np.ndarray]:
            for index, frame, t in read_frames(cap, selected):
                held.append((index, t))
                yield frame

        def found() -> Iterator[tuple[tuple[int, np.ndarray], Poses, float | None, np.ndarray]]:
            for frame, poses in detect(read()):
                index, t = held.popleft()
                yield (index, frame), poses, t, frame

        # the frames' own times (a dropped frame is a longer step for the tracker) and the frames (what people wear)
        if track:
            tracked = track_frames(found(), track if isinstance(track, TrackerConfig) else None, offline)
        else:
            tracked = ((payload, poses) for payload, poses, *_ in found())
        for (index, frame), poses in tracked:
            yield index, frame, poses
    finally:
        if owned:
            cap.release()
