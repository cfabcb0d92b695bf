"""The service's limits and batching knobs, in one frozen dataclass (``pafpose serve`` options)."""

from __future__ import annotations

from dataclasses import dataclass

from pafpose.errors import PafposeError


@dataclass(frozen=True)
class ServeSettings:
    """How the web service batches and what it refuses.

    Attributes:
        max_upload_bytes: largest request body; a larger one is refused with 413 before it is read.
        max_pixels: largest image (width x height, read from the file's header before
            decoding): a larger one is refused with 413, so decompression bombs never decode.
        max_side: images whose longer side exceeds this are shrunk when decoded (results
            stay in the original pixels). The network sees the model's input height (368 rows
            by default, twice that at the largest request scale), so this bounds the memory a
            waiting request holds, not what is found.
        max_batch: most requests run through the network in one call; 1 turns batching off.
            None (the default): 8 on a GPU, 1 on the CPU, where batching measured slower
            (BENCHMARKS.md, "Serving").
        batch_wait_ms: how long the oldest waiting request may wait for company (ms).
        max_queue: requests waiting for the network at once; more are refused with 503.
        timeout_s: longest wait for a result; past it the request ends with 504.
    """

    max_upload_bytes: int = 20_000_000
    max_pixels: int = 100_000_000
    max_side: int = 2048
    max_batch: int | None = None
    batch_wait_ms: float = 5.0
    max_queue: int = 64
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        for name in ("max_upload_bytes", "max_pixels", "max_side", "max_batch", "max_queue"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise PafposeError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_side < 64:
            raise PafposeError(f"max_side must be at least 64 pixels, got {self.max_side}")
        if not self.batch_wait_ms >= 0:
            raise PafposeError(f"batch_wait_ms must be 0 or more, got {self.batch_wait_ms}")
        if not self.timeout_s > 0:
            raise PafposeError(f"timeout_s must be positive, got {self.timeout_s}")

    def batch_limit(self, device_type: str) -> int:
        """``max_batch``, or when unset the default for a device of this type (``"cuda"``, ``"cpu"``...)."""
        if self.max_batch is not None:
            return self.max_batch
        return 8 if device_type == "cuda" else 1
