"""The model behind the web service: one Estimator, its test-time variants and the batcher.

HTTP knows nothing of this module's insides and this module knows nothing of HTTP: routes
hand it decoded images and get people back. The network runs on the batcher's thread only.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from pafpose.checks import MAX_SCALES, SCALE_RANGE  # a request's scales: as the CLI's and the Estimator's
from pafpose.errors import PafposeError
from pafpose.images import Decoded
from pafpose.pose import Poses
from pafpose.predict import Estimator
from pafpose.serve.batching import Batcher, Outcome
from pafpose.serve.memory import Releaser
from pafpose.serve.settings import ServeSettings

_VARIANTS = 16  # test-time variants kept built (they share the network; building one is cheap)


def warm_up(estimator: Estimator) -> None:
    """One run on a blank VGA frame, so that the first request does not pay the network's set-up."""
    estimator.predict(np.zeros((480, 640, 3), np.uint8))


class PoseService:
    """Pose estimation for concurrent requests, batched.

    After network calls (at most once a second) the memory malloc keeps from freed
    activations goes back to the system (:mod:`pafpose.serve.memory`): without it, images of ever other sizes grow a
    server's memory by more than a gigabyte.

    Args:
        estimator: the loaded model; its scales and flip are the defaults of every request.
        settings: batching and limits.
        model_name: the name the API reports (default: the network's class name).
    """

    def __init__(self, estimator: Estimator, settings: ServeSettings | None = None,
                 model_name: str | None = None) -> None:
        self.estimator = estimator
        self.settings = settings or ServeSettings()
        self.model_name = model_name or type(estimator.net).__name__
        self.max_batch = self.settings.batch_limit(estimator.device.type)
        self._variants: dict[tuple[tuple[float, ...], bool], Estimator] = {
            (estimator.scales, estimator.flip): estimator}
        self._lock = threading.Lock()
        self.batcher: Batcher[np.ndarray, Poses] = Batcher(
            self._run, max_batch=self.max_batch, wait=self.settings.batch_wait_ms / 1e3,
            max_queue=self.settings.max_queue, after=Releaser())

    def options(self, scales: Sequence[float] | None, flip: bool | None) -> tuple[tuple[float, ...], bool]:
        """A request's test-time options, the server's defaults filled in and checked."""
        chosen = self.estimator.scales if not scales else tuple(float(s) for s in scales)
        lo, hi = SCALE_RANGE
        if len(chosen) > MAX_SCALES or not all(lo <= s <= hi for s in chosen):
            raise PafposeError(f"scales must be 1 to {MAX_SCALES} values in {lo}..{hi}, got {list(chosen)}")
        return chosen, self.estimator.flip if flip is None else bool(flip)

    def variant(self, scales: tuple[float, ...], flip: bool) -> Estimator:
        """The estimator for these options, sharing the loaded network and its backend."""
        with self._lock:
            est = self._variants.get((scales, flip))
            if est is None:
                base = self.estimator
                est = base.with_options(scales=scales, flip=flip)  # the same network and backend, nothing reloaded
                if len(self._variants) >= _VARIANTS:  # forget the oldest variant other than the default
                    del self._variants[next(k for k in self._variants if self._variants[k] is not base)]
                self._variants[(scales, flip)] = est
            return est

    def key(self, image: np.ndarray | Decoded, scales: tuple[float, ...], flip: bool) -> Hashable:
        """What requests must share to run in one call: the options and the network input sizes."""
        pixels = image.image if isinstance(image, Decoded) else image
        return scales, flip, self.variant(scales, flip).input_sizes(pixels.shape)

    def _run(self, key: Hashable, images: list[np.ndarray | Decoded]) -> list[Poses]:
        scales, flip, _ = key  # type: ignore[misc]
        return self.variant(scales, flip).predict_batch(images)

    async def predict(self, image: np.ndarray | Decoded, scales: tuple[float, ...], flip: bool) -> Outcome[Poses]:
        """People in one BGR image or decoded file, in its pixels (a file's own, also when it was
        decoded reduced); waits with the event loop free.

        Raises :class:`~pafpose.serve.batching.BusyError` when the queue is full. Cancelling the
        caller (a timeout) takes the request out of the queue if it has not started.
        """
        future = self.batcher.submit(self.key(image, scales, flip), image)
        return await asyncio.wrap_future(future)

    def info(self) -> dict[str, Any]:
        """What ``GET /v1/models`` says about the loaded model."""
        from pafpose.weights import get_pretrained_cfg

        est = self.estimator
        try:
            license_ = get_pretrained_cfg(self.model_name).license
        except PafposeError:  # a network or weights file from outside the zoo
            license_ = None
        return {
            "name": self.model_name,
            "skeleton": est.skeleton.name,
            "num_keypoints": est.skeleton.num_keypoints,
            "input_height": est.height,
            "stride": est.spec.stride,
            "device": str(est.device),
            "backend": est.config.backend,
            "precision": est.precision,
            "scales": list(est.scales),
            "flip": est.flip,
            "max_batch": self.max_batch,
            "parameters": sum(p.numel() for p in est.net.parameters()),
            "license": license_,
        }

    def close(self) -> None:
        """Answer what is queued, then stop the network thread."""
        self.batcher.close()
