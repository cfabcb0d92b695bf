"""Figures of what the network sees: heatmaps, PAFs and the decoded skeletons (matplotlib)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pafpose.coords import Geometry
from pafpose.draw import poses as draw_poses
from pafpose.fields import FieldSpec
from pafpose.io import atomic_output
from pafpose.pose import Pose, scale_poses


def explain_figure(
    image_bgr: np.ndarray,
    heatmaps: np.ndarray,
    pafs: np.ndarray,
    spec: FieldSpec,
    people: Sequence[Pose],
    geometry: Geometry,
    limbs: Sequence[int] | None = None,
    keypoints: Sequence[int] | None = None,
    display_side: int = 1024,
) -> object:
    """A matplotlib Figure: input, max heatmap, chosen heatmaps, PAF magnitude and vectors, skeletons.

    Args:
        heatmaps: ``(K [+1], h, w)`` fields of the image (network-input grid).
        pafs: ``(2L, h, w)``.
        geometry: where the image lies on the fields (``Estimator.fields`` returns it).
        limbs: limb indices (spec order) whose PAF vectors to draw; default: the arms and legs.
        keypoints: keypoint indices whose heatmaps to show; default: nose, neck, wrists.
        display_side: the image is drawn shrunk to this longest side (memory stays bounded
            whatever the photo's size; coordinates stay the original's).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sk = spec.skeleton
    k = spec.num_keypoints
    if keypoints is None:
        keypoints = [sk.keypoints.index(n) for n in ("nose", "neck", "right_wrist", "left_wrist")
                     if n in sk.keypoints]
    if limbs is None:
        wanted = {("right_shoulder", "right_elbow"), ("left_shoulder", "left_elbow"),
                  ("right_hip", "right_knee"), ("left_hip", "left_knee"), ("right_elbow", "right_wrist"),
                  ("left_elbow", "left_wrist"), ("right_knee", "right_ankle"), ("left_knee", "left_ankle")}
        limbs = [i for i, limb in enumerate(spec.limbs) if limb in wanted] or list(range(len(spec.limbs)))
    h_img, w_img = image_bgr.shape[:2]
    gh, gw = heatmaps.shape[1:]
    s = geometry.stride
    # the field's outer edges (cell edges at -0.5 and g - 0.5) in image pixels
    left, right = geometry.cell_to_image(np.array([-0.5, gw - 0.5]), axis=0).tolist()
    bottom, top = geometry.cell_to_image(np.array([gh - 0.5, -0.5]), axis=1).tolist()
    extent = (left, right, bottom, top)
    # Drawn at display size: a panel is a few hundred pixels wide, and matplotlib keeps ~60
    # bytes per source pixel while it renders (1.35 GB for a 12 Mpixel photo at full size).
    shown, people = _display_size(image_bgr, people, max_side=display_side)
    rgb = shown[:, :, ::-1]
    full = (-0.5, w_img - 0.5, h_img - 0.5, -0.5)  # the shown image spans the original's pixel coordinates
    n_hm = len(keypoints)
    cols = max(3, n_hm)
    fig, axes = plt.subplots(3, cols, figsize=(4 * cols, 9), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")

    def overlay(ax: object, field: np.ndarray, title: str, cmap: str = "jet", vmax: float | None = None) -> None:
        ax.imshow(rgb, extent=full)
        ax.imshow(field, extent=extent, alpha=0.55, cmap=cmap, vmin=0, vmax=vmax)
        ax.set_xlim(-0.5, w_img - 0.5)
        ax.set_ylim(h_img - 0.5, -0.5)
        ax.set_title(title)

    axes[0, 0].imshow(rgb, extent=full)
    axes[0, 0].set_title("input")
    overlay(axes[0, 1], heatmaps[:k].max(axis=0), "heatmaps: max over keypoints", vmax=1.0)
    axes[0, 2].imshow(draw_poses(shown, people)[:, :, ::-1], extent=full)
    axes[0, 2].set_title(f"decoded: {len(people)} people")
    for j, kp in enumerate(keypoints[:cols]):
        overlay(axes[1, j], heatmaps[kp], f"heatmap: {sk.keypoints[kp]}", vmax=1.0)
    pidx = spec.paf_index
    mag = np.zeros((gh, gw))
    for li in limbs:
        mag = np.maximum(mag, np.hypot(pafs[pidx[li, 0]], pafs[pidx[li, 1]]))
    overlay(axes[2, 0], mag, "PAF magnitude (chosen limbs)", cmap="magma", vmax=1.0)
    ax = axes[2, 1]
    ax.imshow(rgb, extent=full)
    gy, gx = np.mgrid[0:gh, 0:gw]
    px, py = geometry.cell_to_image(gx, axis=0), geometry.cell_to_image(gy, axis=1)
    colours = [np.array(sk.limb_colors[sk.limbs.index(spec.limbs[li])]) / 255.0 if spec.limbs[li] in sk.limbs
               else np.array([1.0, 1.0, 1.0]) for li in limbs]
    for li, colour in zip(limbs, colours, strict=True):
        vx, vy = pafs[pidx[li, 0]], pafs[pidx[li, 1]]
        m = np.hypot(vx, vy) > 0.2
        ax.quiver(px[m], py[m], vx[m], vy[m], color=colour, angles="xy", scale_units="xy",
                  scale=1.0 / (s / geometry.fx), width=0.003)  # a unit vector spans one cell
    ax.set_xlim(-0.5, w_img - 0.5)
    ax.set_ylim(h_img - 0.5, -0.5)
    ax.set_title("PAF vectors (chosen limbs)")
    if spec.background and heatmaps.shape[0] > k:
        overlay(axes[2, 2], heatmaps[k], "background heatmap", cmap="gray", vmax=1.0)
    fig.tight_layout()
    return fig


def _display_size(image: np.ndarray, people: Sequence[Pose], max_side: int) -> tuple[np.ndarray, list[Pose]]:
    """``image`` shrunk to ``max_side`` (area averaging) and ``people`` moved onto it."""
    import cv2

    h, w = image.shape[:2]
    f = max_side / max(h, w)
    if f >= 1:
        return image, list(people)
    small = cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    return small, scale_poses(people, small.shape[1] / w, small.shape[0] / h)


def save_figure(fig: object, path: str | Path, dpi: int = 100) -> Path:
    """Save atomically (temp file + rename), format from the suffix; closes the figure."""
    import matplotlib.pyplot as plt

    from pafpose.checks import check_number
    from pafpose.errors import PafposeError

    check_number("dpi", dpi, 10, 600, integer=True)  # 600 dpi is already a 40 Mpixel figure
    fmt = Path(path).suffix[1:].lower()
    supported = fig.canvas.get_supported_filetypes()
    if fmt not in supported:
        plt.close(fig)
        raise PafposeError(f"{path}: figure type {fmt or '(none)'!r} unknown; use {', '.join(sorted(supported))}")
    try:
        return atomic_output(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format=fmt))
    finally:
        plt.close(fig)


def fields_panel(
    image_bgr: np.ndarray,
    target: tuple[np.ndarray, np.ndarray],
    prediction: tuple[np.ndarray, np.ndarray],
    spec: FieldSpec,
) -> np.ndarray:
    """RGB uint8 grid for training logs: target (top row) against prediction (bottom row),
    each as the crop, the strongest keypoint heatmap and the PAF magnitude overlaid on it.

    OpenCV rather than matplotlib: it runs inside the training loop, every few hundred steps.
    """
    import cv2

    h, w = image_bgr.shape[:2]
    k = spec.num_keypoints

    def overlay(field: np.ndarray) -> np.ndarray:
        up = cv2.resize(np.clip(field, 0.0, 1.0).astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
        colour = cv2.applyColorMap((up * 255).astype(np.uint8), cv2.COLORMAP_JET)
        return cv2.addWeighted(image_bgr, 0.5, colour, 0.5, 0.0)

    def label(tile: np.ndarray, text: str) -> np.ndarray:
        tile = tile.copy()
        cv2.putText(tile, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
        return tile

    rows = []
    for name, (hm, paf) in (("target", target), ("prediction", prediction)):
        magnitude = np.hypot(paf[0::2], paf[1::2]).max(axis=0)
        rows.append(np.hstack([label(image_bgr, name), label(overlay(hm[:k].max(axis=0)), "heatmaps"),
                               label(overlay(magnitude), "PAF |v|")]))
    return np.ascontiguousarray(np.vstack(rows)[:, :, ::-1])
