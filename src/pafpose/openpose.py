"""OpenPose's output conventions, so that scripts and tools written for CMU OpenPose read
pafpose's files unchanged.

Each function does what one of OpenPose's options does, with its meaning (OpenPose's
``include/openpose/flags.hpp`` and ``doc/`` are the reference):

- :class:`KeypointScale`: ``--keypoint_scale 0..4``, the coordinates written to JSON.
- :func:`top_people`: ``--number_people_max``, the N people OpenPose would keep.
- :func:`part_candidates`, :func:`candidates_block`: ``--part_candidates``, every keypoint
  candidate before people are assembled, as OpenPose's JSON ``part_candidates`` block.
- :func:`heatmap_channels`, :func:`heatmap_maps`, :func:`write_heatmaps`: ``--write_heatmaps``
  with ``--heatmaps_add_parts/bkg/PAFs`` and ``--heatmaps_scale``: one PNG (or OpenPose's
  ``float`` file) with the channels side by side; :func:`read_float_array` reads the latter.
- :func:`parse_net_resolution`, :func:`net_resolution_options`: ``--net_resolution WxH`` as
  the Estimator's input height and width limit.

Coordinates follow :mod:`pafpose.coords` (pixel centres at whole numbers, as OpenPose's).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pafpose.checks import MAX_HEIGHT, MAX_SIDE, check_number
from pafpose.coords import Geometry
from pafpose.errors import PafposeError
from pafpose.fields import Fields, FieldSpec
from pafpose.pose import Pose, Poses, as_poses, map_poses
from pafpose.skeleton import Skeleton, get_skeleton

#: ``--keypoint_scale``: what each value writes (OpenPose's ScaleMode).
KEYPOINT_SCALES = {
    0: "source image pixels",
    1: "network input pixels (OpenPose's net output resolution, i.e. --net_resolution)",
    2: "output pixels: those of the drawn images and video",
    3: "[0, 1]: (0, 0) the top-left pixel's centre, (1, 1) the bottom-right one's",
    4: "[-1, 1]: (-1, -1) the top-left pixel's centre, (1, 1) the bottom-right one's",
}


@dataclass(frozen=True)
class KeypointScale:
    """OpenPose's ``--keypoint_scale`` for one image: where its keypoints are written.

    Attributes:
        mode: 0..4 (:data:`KEYPOINT_SCALES`).
        size: ``(width, height)`` of the source image (modes 3 and 4).
        geometry: the image on the network input (mode 1; :meth:`pafpose.Estimator.geometry`).
        output: output pixels per source pixel (mode 2): a drawn JPEG that was decoded reduced.

    OpenPose scales every entry, found or not, so a missing keypoint, ``0, 0, 0``, is
    written as ``-1, -1, 0`` in mode 4 (:attr:`missing`); its score 0 marks it either way.
    """

    mode: int = 0
    size: tuple[int, int] = (1, 1)
    geometry: Geometry | None = None
    output: tuple[float, float] = (1.0, 1.0)

    def __post_init__(self) -> None:
        if self.mode not in KEYPOINT_SCALES or isinstance(self.mode, bool):
            raise PafposeError(f"keypoint scale must be 0, 1, 2, 3 or 4, got {self.mode!r}")
        for v in self.size:
            check_number("image size", v, 1, None, integer=True)
        if self.mode == 1 and self.geometry is None:
            raise PafposeError("keypoint scale 1 (network input pixels) needs the image's geometry")

    def points(self, xy: np.ndarray) -> np.ndarray:
        """``(..., 2+)`` source-pixel points in this scale: x and y mapped, other columns copied."""
        out = np.array(xy, dtype=np.float64, copy=True)
        w, h = self.size
        if self.mode == 1:
            assert self.geometry is not None
            out = self.geometry.image_to_input(out)
        elif self.mode == 2 and self.output != (1.0, 1.0):
            out = Geometry(*self.output).image_to_input(out)
        elif self.mode in (3, 4):
            f = 2.0 if self.mode == 4 else 1.0
            out[..., 0] *= f / max(w - 1, 1)
            out[..., 1] *= f / max(h - 1, 1)
            if self.mode == 4:
                out[..., :2] -= 1.0
        return out

    def poses(self, poses: Sequence[Pose]) -> Poses:
        """The people with their keypoints in this scale (missing ones stay missing)."""
        return map_poses(poses, self.points)

    @property
    def missing(self) -> tuple[float, float]:
        """``(x, y)`` OpenPose writes for a keypoint it did not find, in this scale."""
        return (-1.0, -1.0) if self.mode == 4 else (0.0, 0.0)

    @property
    def decimals(self) -> int:
        """Decimals worth writing: pixels to 1/1000, the unit ranges to a millionth."""
        return 6 if self.mode in (3, 4) else 3


def top_people(poses: Sequence[Pose], n: int | None) -> Poses:
    """The ``n`` people OpenPose's ``--number_people_max n`` keeps, in their order (:meth:`Poses.top`)."""
    return as_poses(poses).top(n)


# ----------------------------------------------------------------------------- part candidates

def part_candidates(fields: Fields, spec: FieldSpec, config: Any = None) -> list[np.ndarray]:
    """Every keypoint candidate of one image, before people are assembled: per keypoint type
    of ``spec``'s skeleton, a ``(n, 3)`` array of ``x, y, score`` in the pixels of the image
    ``fields.geometry`` places (the peaks the decoder with ``config``, a
    :class:`~pafpose.decoder.DecoderConfig`, starts from; found keypoints are among them)."""
    from pafpose.decoder import find_peaks

    k = spec.num_keypoints
    peaks = find_peaks(np.asarray(fields.heatmaps[:k], dtype=np.float32), config)
    xy = fields.geometry.cell_to_image(peaks.xy) if len(peaks.part) else np.zeros((0, 2))
    found = np.column_stack([xy, peaks.score]) if len(peaks.part) else np.zeros((0, 3))
    return [found[peaks.part == i] for i in range(k)]


def convert_candidates(candidates: Sequence[np.ndarray], src: Skeleton | str,
                       dst: Skeleton | str) -> list[np.ndarray]:
    """Candidates per keypoint type of ``src`` -> of ``dst``, by name; a type ``src`` lacks
    (BODY-25's mid-hip and feet) has none (a derived point has no candidates of its own)."""
    src, dst = get_skeleton(src), get_skeleton(dst)
    pos = {name: i for i, name in enumerate(src.keypoints)}
    return [candidates[pos[name]] if name in pos else np.zeros((0, 3)) for name in dst.keypoints]


def candidates_block(candidates: Sequence[np.ndarray], scale: KeypointScale | None = None,
                     decimals: int = 3) -> list[dict[str, list[float]]]:
    """OpenPose's JSON ``part_candidates``: a list holding one object whose keys ``"0"``,
    ``"1"``... (one per keypoint type) hold flat ``x, y, score`` lists, in ``scale``
    (OpenPose scales candidates as it scales keypoints)."""
    block: dict[str, list[float]] = {}
    for i, c in enumerate(candidates):
        c = np.asarray(c, dtype=np.float64).reshape(-1, 3)
        if scale is not None:
            c = scale.points(c)
        block[str(i)] = [round(float(v), decimals) for v in c.ravel()]
    return [block]


# ----------------------------------------------------------------------------- heatmaps

#: ``--heatmaps_scale``: how each value writes the maps.
HEATMAP_SCALES = {0: "[-1, 1]", 1: "[0, 1]", 2: "whole numbers in [0, 255] (the PNG's)", 3: "as the network gives them"}


def heatmap_channels(spec: FieldSpec, parts: bool = True, background: bool = True, pafs: bool = True) -> list[str]:
    """The name of each channel of a heatmap file, in OpenPose's order: the keypoints, the
    background, then the PAFs in the network's own channel order (``"neck-right_hip x"``:
    limb ``neck`` -> ``right_hip``, its x component), as OpenPose lays them out."""
    if not (parts or background or pafs):
        raise PafposeError("heatmaps: choose at least one of the parts, the background and the PAFs")
    names: list[str] = list(spec.skeleton.keypoints) if parts else []
    if background:
        if not spec.background:
            raise PafposeError("this model has no background heatmap; leave the background out")
        names.append("background")
    if pafs:
        by_channel = {}
        for (a, b), (cx, cy) in zip(spec.limbs, spec.paf_channels, strict=True):
            by_channel[cx], by_channel[cy] = f"{a}-{b} x", f"{a}-{b} y"
        names += [by_channel[c] for c in range(spec.num_pafs)]
    return names


def _scale_maps(v: np.ndarray, mode: int, paf: bool) -> np.ndarray:
    """OpenPose's ``--heatmaps_scale`` on one map (``PoseExtractorNet::getHeatMapsCopy``)."""
    if mode == 3:
        return v
    if paf:  # PAFs are in [-1, 1]
        v = np.clip(v, -1.0, 1.0)
        return v if mode == 0 else v * 0.5 + 0.5 if mode == 1 else np.floor(v * 128.5 + 128.5 + 0.5)
    v = np.clip(v, 0.0, 1.0)
    return v * 2.0 - 1.0 if mode == 0 else v if mode == 1 else np.floor(v * 255.0 + 0.5)


def heatmap_maps(fields: Fields, spec: FieldSpec, parts: bool = True, background: bool = True,
                 pafs: bool = True, scale: int = 2) -> Iterator[np.ndarray]:
    """The channels of :func:`heatmap_channels`, one ``(H, W)`` float32 map at a time, at the
    network input's resolution (OpenPose's heatmaps are the size of ``--net_resolution``: the
    fields resized bicubically by the stride, the padding right and bottom included) and
    scaled as ``--heatmaps_scale`` says (:data:`HEATMAP_SCALES`). One map at a time, so that
    memory stays that of the output, however many channels there are."""
    import cv2

    if scale not in HEATMAP_SCALES or isinstance(scale, bool):
        raise PafposeError(f"heatmaps scale must be 0, 1, 2 or 3, got {scale!r}")
    heatmap_channels(spec, parts, background, pafs)  # checks the choice
    k, s = spec.num_keypoints, spec.stride
    chosen: list[tuple[np.ndarray, bool]] = []
    if parts:
        chosen += [(fields.heatmaps[i], False) for i in range(k)]
    if background:
        chosen.append((fields.heatmaps[k], False))
    if pafs:
        chosen += [(fields.pafs[c], True) for c in range(spec.num_pafs)]
    for field, paf in chosen:
        h, w = field.shape
        up = cv2.resize(np.asarray(field, dtype=np.float32), (w * s, h * s), interpolation=cv2.INTER_CUBIC)
        yield _scale_maps(up, scale, paf).astype(np.float32, copy=False)


def heatmap_file_name(name: str, fmt: str = "png") -> str:
    """OpenPose's name for an image's (or frame's) heatmap file: ``NAME_pose_heatmaps.png``."""
    return f"{name}_pose_heatmaps.{fmt}"


def write_heatmaps(path: str | Path, maps: Iterator[np.ndarray], channels: int, fmt: str = "png") -> Path:
    """Write ``channels`` maps (:func:`heatmap_maps`) as OpenPose does, atomically.

    ``png``: one 8-bit grey image, the maps concatenated by columns (map ``i`` in columns
    ``i * W .. (i + 1) * W - 1``), each value rounded and clipped to 0..255 (meant for
    ``--heatmaps_scale 2``). ``float``: OpenPose's raw format, float32 numbers: the number of
    dimensions (3), the dimensions (channels, H, W), then the values (channel, row, column
    order); :func:`read_float_array` reads it.
    """
    import cv2

    from pafpose.io import atomic_output, write_bytes_atomic

    if fmt not in ("png", "float"):
        raise PafposeError(f"heatmaps format must be png or float, got {fmt!r}")
    if fmt == "float":
        def write(tmp: str) -> None:
            with open(tmp, "wb") as out:
                first = True
                for m in maps:
                    if first:
                        np.array([3, channels, *m.shape], dtype=np.float32).tofile(out)
                        first = False
                    np.ascontiguousarray(m, dtype=np.float32).tofile(out)

        return atomic_output(path, write)
    image: np.ndarray | None = None
    for i, m in enumerate(maps):
        h, w = m.shape
        if image is None:
            image = np.empty((h, channels * w), np.uint8)
        image[:, i * w : (i + 1) * w] = np.clip(np.floor(m + 0.5), 0, 255)
    if image is None:
        raise PafposeError("no heatmap to write")
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise PafposeError(f"{path}: OpenCV could not encode the heatmaps")
    return write_bytes_atomic(buf.tobytes(), path)


def read_float_array(path: str | Path) -> np.ndarray:
    """An array written in OpenPose's ``float`` format (``--write_heatmaps_format float``)."""
    data = np.fromfile(path, dtype=np.float32)
    if len(data) < 1 or not data[0].is_integer() or not 1 <= data[0] <= 8 or len(data) < 1 + int(data[0]):
        raise PafposeError(f"{path}: not an OpenPose float array")
    n = int(data[0])
    shape = tuple(int(v) for v in data[1 : 1 + n])
    body = data[1 + n :]
    if math.prod(shape) != len(body):
        raise PafposeError(f"{path}: the header says {shape} but {len(body)} values follow")
    return body.reshape(shape)


# ----------------------------------------------------------------------------- net resolution

def parse_net_resolution(text: str) -> tuple[int | None, int | None]:
    """``"656x368"`` -> ``(656, 368)``; ``-1`` for the side that follows the image's aspect
    ratio (``"-1x368"``, OpenPose's default) -> None."""
    m = re.fullmatch(r"\s*(-1|\d+)\s*[xX]\s*(-1|\d+)\s*", str(text))
    if not m:
        raise PafposeError(f"net resolution must be WIDTHxHEIGHT, e.g. 656x368 or -1x368, got {text!r}")
    w, h = (None if v == "-1" else int(v) for v in m.groups())
    if w is None and h is None:
        raise PafposeError("net resolution: only one side can be -1")
    if w is not None:
        check_number("net resolution width", w, 16, MAX_SIDE, integer=True)
    if h is not None:
        check_number("net resolution height", h, 16, MAX_HEIGHT, integer=True)
    return w, h


def net_resolution_options(width: int | None, height: int | None) -> dict[str, int]:
    """The :class:`~pafpose.estimator_config.EstimatorConfig` fields that give OpenPose's
    ``--net_resolution WIDTHxHEIGHT`` (None for OpenPose's -1).

    OpenPose resizes each image, keeping its aspect ratio, to fit in ``WIDTH x HEIGHT``, and
    pads it right and bottom to exactly that size; a -1 side follows the image's aspect ratio
    (rounded to 16). The Estimator does the fitting with ``height`` (input height) and
    ``max_side`` (input width limit), and pads only to the network's stride: the image lands
    on the same pixels, the padding is smaller. A free height is bounded by the Estimator's
    largest input height (2048).
    """
    if width is None and height is None:
        raise PafposeError("net resolution: only one side can be -1")
    if width is None:
        return {"height": int(check_number("net resolution height", height, 16, MAX_HEIGHT, integer=True))}
    width = int(check_number("net resolution width", width, 16, MAX_SIDE, integer=True))
    if height is None:
        return {"height": MAX_HEIGHT, "max_side": width}
    return {"height": int(check_number("net resolution height", height, 16, MAX_HEIGHT, integer=True)),
            "max_side": width}
