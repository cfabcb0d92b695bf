"""Step 3: people grown from limb connections in limb order, merging partial people that
share no keypoint type; redundant limbs (those closing a cycle, such as COCO-18's
shoulder-ear) only confirm or extend people, never start one."""

from __future__ import annotations

import functools

import numpy as np

from pafpose.decoder.config import DecoderConfig
from pafpose.decoder.limbs import Connections
from pafpose.decoder.peaks import Peaks
from pafpose.fields import FieldSpec


@functools.lru_cache(maxsize=16)
def _redundant_limbs(spec: FieldSpec) -> tuple[bool, ...]:
    """Limbs whose ends are already joined by earlier limbs (union-find in limb order)."""
    parent = list(range(spec.num_keypoints))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    out = []
    for ka, kb in spec.limb_index.tolist():
        ra, rb = root(ka), root(kb)
        out.append(ra == rb)
        parent[ra] = rb
    return tuple(out)


def assemble(
    peaks: Peaks, conns: Connections, spec: FieldSpec, config: DecoderConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Group connections into people.

    Returns:
        ``members`` ``(M, K)`` peak index per keypoint (-1 where missing) and ``score``
        ``(M,)``, the mean of the person's keypoint and limb scores; filtered by
        ``min_keypoints`` and ``min_score``.
    """
    cfg = config or DecoderConfig()
    k = spec.num_keypoints
    people, limb_sum, limb_n = _group(peaks, conns, spec)
    if not people:
        return np.zeros((0, k), dtype=np.int64), np.zeros(0)
    members = np.array(people, dtype=np.int64)
    has = members >= 0
    n_kp = has.sum(axis=1)
    kp_sum = np.where(has, peaks.score[np.maximum(members, 0)], 0.0).sum(axis=1)
    score = (kp_sum + np.array(limb_sum)) / np.maximum(n_kp + np.array(limb_n), 1)
    keep = (n_kp >= max(cfg.min_keypoints, 1)) & (score >= cfg.min_score)
    return members[keep], score[keep]


def _group(peaks: Peaks, conns: Connections, spec: FieldSpec) -> tuple[list[list[int]], list[float], list[int]]:
    """People grown from the connections in limb order.

    Returns:
        per person: the peak of each keypoint (-1 where missing; merged-away people are all
        -1), and the sum and number of its limb scores.
    """
    k = spec.num_keypoints
    redundant = _redundant_limbs(spec)
    limb_parts = spec.limb_index.tolist()
    part = peaks.part.tolist()
    owner = [-1] * len(part)
    people: list[list[int]] = []
    limb_sum: list[float] = []
    limb_n: list[int] = []
    order = np.argsort(conns.limb, kind="stable")
    for li, a, b, s in zip(conns.limb[order].tolist(), conns.a[order].tolist(),
                           conns.b[order].tolist(), conns.score[order].tolist(), strict=False):
        ka, kb = limb_parts[li]
        pa, pb = owner[a], owner[b]
        if pa < 0 and pb < 0:
            if redundant[li]:
                continue
            person = [-1] * k
            person[ka], person[kb] = a, b
            owner[a] = owner[b] = len(people)
            people.append(person)
            limb_sum.append(s)
            limb_n.append(1)
            continue
        if pa >= 0 and pb >= 0:
            if pa != pb:
                pp, pq = people[pa], people[pb]
                if any(x >= 0 and y >= 0 for x, y in zip(pp, pq, strict=False)):
                    continue  # both hold some keypoint type: they are different people
                for j, y in enumerate(pq):
                    if y >= 0:
                        pp[j] = y
                        owner[y] = pa
                people[pb] = [-1] * k
                limb_sum[pa] += limb_sum[pb]
                limb_n[pa] += limb_n[pb]
                limb_sum[pb], limb_n[pb] = 0.0, 0
            limb_sum[pa] += s
            limb_n[pa] += 1
            continue
        host, new, knew = (pa, b, kb) if pa >= 0 else (pb, a, ka)
        if people[host][knew] >= 0:
            continue  # slot taken by another candidate: leave this one free
        people[host][knew] = new
        owner[new] = host
        limb_sum[host] += s
        limb_n[host] += 1
    return people, limb_sum, limb_n
