"""Synthetic people and scenes, for round-trip tests and decoder benchmarks.

Poses are articulated from an upright template along the COCO-18 limb tree with random
joint angles, rotation, scale and mirroring, so limbs cross inside a person as they do in
real images. Scenes place people either *separated* (grid cells with a margin, so no two
people's fields interact) or freely, overlapping. Keypoints outside the image are marked
invisible (``v = 0``), as COCO annotators do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from pafpose.errors import PafposeError
from pafpose.pose import Pose
from pafpose.skeleton import COCO18, Skeleton

# Upright, facing the camera; person height 1, origin at the neck, y down.
_TEMPLATE = {
    "nose": (0.0, -0.10), "neck": (0.0, 0.0), "right_shoulder": (-0.11, 0.0),
    "right_elbow": (-0.14, 0.17), "right_wrist": (-0.16, 0.32), "left_shoulder": (0.11, 0.0),
    "left_elbow": (0.14, 0.17), "left_wrist": (0.16, 0.32), "right_hip": (-0.07, 0.32),
    "right_knee": (-0.08, 0.55), "right_ankle": (-0.08, 0.78), "left_hip": (0.07, 0.32),
    "left_knee": (0.08, 0.55), "left_ankle": (0.08, 0.78), "right_eye": (-0.025, -0.125),
    "left_eye": (0.025, -0.125), "right_ear": (-0.05, -0.11), "left_ear": (0.05, -0.11),
}
# Joint angle noise (degrees, uniform +-) for the limb ending at each keypoint.
_BEND = {"right_elbow": 70, "right_wrist": 100, "left_elbow": 70, "left_wrist": 100,
         "right_knee": 35, "right_ankle": 45, "left_knee": 35, "left_ankle": 45, "nose": 20}


def _tree(skeleton: Skeleton) -> list[tuple[int, int]]:
    """Limbs that form a spanning tree, parent first, in an order where parents come first."""
    seen = {skeleton.index("neck")}
    out: list[tuple[int, int]] = []
    pending = [tuple(map(int, lb)) for lb in skeleton.limb_indices()]
    while pending:
        rest = []
        for a, b in pending:
            if a in seen and b not in seen:
                out.append((a, b))
                seen.add(b)
            elif not (a in seen and b in seen):
                rest.append((a, b))
        if len(rest) == len(pending):
            break
        pending = rest
    return out


def random_pose(rng: np.random.Generator, height: float, center: tuple[float, float]) -> np.ndarray:
    """One random COCO-18 person, ``(18, 3)`` with ``v = 2``; ``height`` in pixels."""
    sk = COCO18
    tmpl = np.array([_TEMPLATE[n] for n in sk.keypoints])
    pts = np.zeros_like(tmpl)
    angle = np.zeros(sk.num_keypoints)
    for a, b in _tree(sk):
        vec = tmpl[b] - tmpl[a]
        bend = np.deg2rad(rng.uniform(-1, 1) * _BEND.get(sk.keypoints[b], 10))
        angle[b] = angle[a] + bend if sk.keypoints[b] in _BEND else angle[a]
        c, s = np.cos(angle[b]), np.sin(angle[b])
        vec = np.array([c * vec[0] - s * vec[1], s * vec[0] + c * vec[1]]) * rng.uniform(0.85, 1.15)
        pts[b] = pts[a] + vec
    if rng.random() < 0.3:  # seen from the back: left and right swap sides
        pts[:, 0] = -pts[:, 0]
    rot = np.deg2rad(rng.normal(0, 20) if rng.random() < 0.9 else rng.uniform(-180, 180))
    c, s = np.cos(rot), np.sin(rot)
    pts = pts @ np.array([[c, s], [-s, c]])
    pts = pts - (pts.min(axis=0) + pts.max(axis=0)) / 2.0
    out = np.ones((sk.num_keypoints, 3)) * 2.0
    out[:, :2] = pts * height + np.asarray(center)
    return out


def drop_leaves(rng: np.random.Generator, person: np.ndarray, n: int) -> np.ndarray:
    """Mark up to ``n`` keypoints unlabelled, removing leaves so the rest stays connected."""
    person = person.copy()
    tree = _tree(COCO18)
    for _ in range(n):
        vis = person[:, 2] > 0
        parents = {a for a, b in tree if vis[a] and vis[b]}
        leaves = [b for a, b in tree if vis[b] and b not in parents]
        if len(leaves) <= 1:
            break
        person[rng.choice(leaves), 2] = 0
    return person


def grid_for(n_people: int, size: tuple[int, int]) -> tuple[int, int]:
    """(rows, cols) of the grid that gives ``n_people`` upright people the most room."""
    h, w = size
    rows = max(range(1, n_people + 1), key=lambda r: min(h / r, (w / -(-n_people // r)) / 0.6))
    return rows, -(-n_people // rows)


def fits(n_people: int, size: tuple[int, int], margin: float = 28.0, min_height: float = 48.0) -> bool:
    """Whether :func:`random_scene` can place ``n_people`` separated people in ``size``."""
    rows, cols = grid_for(n_people, size)
    return min(size[0] / rows, size[1] / cols / 0.6) - 2 * margin >= min_height


@dataclass
class Scene:
    """People ``(N, 18, 3)`` in an image of ``size = (height, width)``; ``heights`` per person."""

    people: np.ndarray
    heights: np.ndarray
    size: tuple[int, int]


def _clip_to_image(people: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    x, y = people[..., 0], people[..., 1]
    inside = (x >= -0.5) & (x < w - 0.5) & (y >= -0.5) & (y < h - 0.5)
    people = people.copy()
    people[..., 2] = np.where(inside, people[..., 2], 0)
    return people


def random_scene(
    rng: np.random.Generator,
    n_people: int,
    size: tuple[int, int] = (368, 656),
    separated: bool = True,
    margin: float = 28.0,
    missing: float = 0.3,
    border: float = 0.3,
    min_height: float = 48.0,
) -> Scene:
    """A scene of ``n_people`` random people.

    Args:
        separated: place each person in its own grid cell with ``margin`` pixels around its
            keypoints, so no two people's heatmaps or PAF bands interact; otherwise uniformly
            at random, overlapping.
        missing: probability that a person has 1 to 4 leaf keypoints unlabelled.
        border: probability that a person in an outer cell is pushed across the image border.
        min_height: smallest person height (pixels) in separated scenes; a scene that can't
            hold ``n_people`` of that size raises :class:`PafposeError`.
    """
    h, w = size
    people, heights = [], []
    if separated:
        rows, cols = grid_for(n_people, size)
        ch, cw = h / rows, w / cols
        top = min(ch, cw / 0.6) - 2 * margin
        if top < min_height:
            raise PafposeError(
                f"{n_people} separated people of at least {min_height:g} px do not fit in {h}x{w}"
            )
        cells = rng.permutation(rows * cols)[:n_people]
        for cell in cells:
            r, c = divmod(int(cell), cols)
            height = rng.uniform(min_height, max(top, min_height))
            p = random_pose(rng, height, (0.0, 0.0))
            lo, hi = p[:, :2].min(0), p[:, :2].max(0)
            room = np.array([cw, ch]) - (hi - lo) - 2 * margin
            if (room < 0).any():  # a sprawling pose: shrink it into the cell
                f = max(min_height / height, ((np.array([cw, ch]) - 2 * margin) / (hi - lo)).min())
                p[:, :2] *= f
                height *= f
                lo, hi = lo * f, hi * f
                room = np.maximum(np.array([cw, ch]) - (hi - lo) - 2 * margin, 0)
            origin = np.array([c * cw, r * ch]) + margin - lo + rng.uniform(0, 1, 2) * room
            edge = (r in (0, rows - 1)) or (c in (0, cols - 1))
            if edge and rng.random() < border:
                # Push out through one of the cell's outer sides.
                sides = [s for s, cond in (((-1, 0), c == 0), ((1, 0), c == cols - 1),
                                           ((0, -1), r == 0), ((0, 1), r == rows - 1)) if cond]
                dx, dy = sides[rng.integers(len(sides))]
                shift = rng.uniform(0.2, 0.6) * (hi - lo) + margin
                origin = origin + np.array([dx, dy]) * shift
            p[:, :2] += origin
            people.append(p)
            heights.append(height)
    else:
        for _ in range(n_people):
            height = rng.uniform(0.25, 0.9) * h
            center = (rng.uniform(0, w), rng.uniform(0.2 * h, 0.8 * h))
            people.append(random_pose(rng, height, center))
            heights.append(height)
    people_arr = np.array(people).reshape(-1, COCO18.num_keypoints, 3)
    for i in range(len(people_arr)):
        if rng.random() < missing:
            people_arr[i] = drop_leaves(rng, people_arr[i], int(rng.integers(1, 5)))
    return Scene(_clip_to_image(people_arr, size), np.array(heights), size)


def components(person: np.ndarray, skeleton: Skeleton = COCO18) -> list[np.ndarray]:
    """Keypoint index sets of the connected parts of one person (visible keypoints, all limbs)."""
    vis = person[:, 2] > 0
    parent = list(range(len(vis)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for a, b in skeleton.limb_indices().tolist():
        if vis[a] and vis[b]:
            parent[root(a)] = root(b)
    groups: dict[int, list[int]] = {}
    for i in np.flatnonzero(vis).tolist():
        groups.setdefault(root(i), []).append(i)
    return [np.array(g) for g in groups.values()]


def oks(pred: np.ndarray, gt: np.ndarray, area: float, sigmas: np.ndarray) -> float:
    """COCO object keypoint similarity of ``pred`` (K, >=2; NaN = missing) to ``gt`` (K, 3)."""
    vis = gt[:, 2] > 0
    if not vis.any():
        return 0.0
    d2 = ((pred[:, :2] - gt[:, :2]) ** 2).sum(axis=1)
    e = d2 / (2.0 * area * (2.0 * sigmas) ** 2 + np.finfo(float).eps)
    sim = np.where(np.isfinite(e), np.exp(-e), 0.0)
    return float(sim[vis].mean())


# ----------------------------------------------------------------------------- scoring

def pose_array(poses: Sequence[Pose]) -> np.ndarray:
    """``(P, K, 2)`` keypoint coordinates of decoded poses (NaN where missing)."""
    if not poses:
        return np.zeros((0, 0, 2))
    return np.stack([p.keypoints[:, :2] for p in poses])


def keypoint_distances(gt_person: np.ndarray, poses: Sequence[Pose]) -> np.ndarray:
    """``(P, K)`` pixel distance from each GT keypoint to the same keypoint of each pose (NaN if either lacks it)."""
    if not poses:
        return np.zeros((0, len(gt_person)))
    d = np.hypot(*(pose_array(poses) - gt_person[None, :, :2]).transpose(2, 0, 1))
    d[:, ~(gt_person[:, 2] > 0)] = np.nan
    return d


def match_by_oks(
    people: np.ndarray, heights: np.ndarray, poses: Sequence[Pose], threshold: float = 0.5
) -> list[tuple[int, int, float]]:
    """Greedy one-to-one matching of GT people to poses, highest OKS first.

    OKS uses the area ``height ** 2 * 0.5`` and COCO sigmas. Returns ``(gt, pose, oks)``
    triples with ``oks >= threshold``.
    """
    if len(people) == 0 or not poses:
        return []
    sim = np.array([[oks(p.keypoints, gt, area=h**2 * 0.5, sigmas=COCO18.sigmas) for p in poses]
                    for gt, h in zip(people, heights, strict=True)])
    order = np.argsort(-sim, axis=None, kind="stable")
    used_gt: set[int] = set()
    used_pose: set[int] = set()
    out = []
    for flat in order.tolist():
        g, p = divmod(flat, len(poses))
        if sim[g, p] < threshold:
            break
        if g in used_gt or p in used_pose:
            continue
        used_gt.add(g)
        used_pose.add(p)
        out.append((g, p, float(sim[g, p])))
    return out


@dataclass
class Recovery:
    """Person and keypoint recovery accumulated over images (see :meth:`add`)."""

    gt_people: int = 0
    matched_people: int = 0
    poses: int = 0
    matched_poses: int = 0
    gt_keypoints: int = 0
    found_keypoints: int = 0
    oks_sum: float = 0.0

    def add(self, scene: Scene, poses: Sequence[Pose], radius: float = 4.0, min_keypoints: int = 4) -> None:
        """Count one image.

        ``radius``: keypoint recall distance in pixels (default: half of stride 8). GT people
        with fewer than ``min_keypoints`` visible keypoints take part in the
        matching but are ignored: they are not counted as misses, and a pose matched to one
        is counted neither as a hit nor as a false positive (COCO's "ignore" rule).
        """
        n_vis = (scene.people[:, :, 2] > 0).sum(axis=1)
        eligible = n_vis >= min_keypoints
        matches = match_by_oks(scene.people, scene.heights, poses)
        ignored_poses = sum(1 for g, _, _ in matches if not eligible[g])
        self.gt_people += int(eligible.sum())
        self.poses += len(poses) - ignored_poses
        for g, p, sim in matches:
            if not eligible[g]:
                continue
            self.matched_people += 1
            self.matched_poses += 1
            self.oks_sum += sim
            d = keypoint_distances(scene.people[g], [poses[p]])[0]
            self.gt_keypoints += int(n_vis[g])
            self.found_keypoints += int((d <= radius).sum())

    @property
    def person_recall(self) -> float:
        return self.matched_people / max(self.gt_people, 1)

    @property
    def precision(self) -> float:
        return self.matched_poses / max(self.poses, 1)

    @property
    def keypoint_recall(self) -> float:
        return self.found_keypoints / max(self.gt_keypoints, 1)

    @property
    def mean_oks(self) -> float:
        return self.oks_sum / max(self.matched_people, 1)

    def summary(self) -> dict[str, float]:
        return {**asdict(self), "person_recall": self.person_recall, "precision": self.precision,
                "keypoint_recall": self.keypoint_recall, "mean_oks": self.mean_oks}
