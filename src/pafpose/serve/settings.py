"""The service's limits and batching knobs, in one frozen dataclass (``pafpose serve`` options)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from pafpose.checks import check_number
from pafpose.errors import PafposeError

# the names a server bound to a loopback address is reached by (any port); IPv6 without brackets
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def normalise_host(pattern: str) -> str:
    """A host pattern as compared: lower case, IPv6 without brackets (``[::1]`` -> ``::1``).

    Patterns are ``*`` (any host), an exact name or address, or ``*.example.com`` (its subdomains).
    """
    host = pattern.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    wildcard_ok = "*" not in host or host == "*" or (host.startswith("*.") and "*" not in host[1:])
    if not host or any(c in host for c in "/@ \t") or not wildcard_ok or (":" in host and not _is_ipv6(host)):
        raise PafposeError(f"allowed host {pattern!r}: give a name or address (no port), '*.example.com' "
                           "or '*' for any")
    return host


def _is_ipv6(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).version == 6
    except ValueError:
        return False


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
        allowed_hosts: the ``Host`` header values (no port) answered; others get 400, so a
            web page that re-points its own name at this machine (DNS rebinding) is refused.
            ``("*",)`` answers any. The default fits a server bound to loopback.
        header_timeout_s: a connection must send a complete request head (request line and
            headers) within this many seconds of connecting (or of its first byte after a
            keep-alive pause), else it is closed: slowly sent headers can't hold connections.
            Applied by :func:`pafpose.serve.server.make_config` (a uvicorn setting, not the app's).
        max_connections: open connections per server process; more are answered 503 and
            closed at once (also :func:`~pafpose.serve.server.make_config`).
    """

    max_upload_bytes: int = 20_000_000
    max_pixels: int = 100_000_000
    max_side: int = 2048
    max_batch: int | None = None
    batch_wait_ms: float = 5.0
    max_queue: int = 64
    timeout_s: float = 30.0
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS
    header_timeout_s: float = 10.0
    max_connections: int = 256

    def __post_init__(self) -> None:
        check_number("max_upload_bytes", self.max_upload_bytes, 1, integer=True)
        check_number("max_pixels", self.max_pixels, 1, integer=True)
        check_number("max_side", self.max_side, 64, integer=True)
        if self.max_batch is not None:
            check_number("max_batch", self.max_batch, 1, 1024, integer=True)
        check_number("batch_wait_ms", self.batch_wait_ms, 0, 60_000)
        check_number("max_queue", self.max_queue, 1, integer=True)
        check_number("timeout_s", self.timeout_s, 0, 86_400, lo_open=True)
        check_number("header_timeout_s", self.header_timeout_s, 0, 3600, lo_open=True)
        check_number("max_connections", self.max_connections, 1, 1_000_000, integer=True)
        if isinstance(self.allowed_hosts, str) or not self.allowed_hosts:
            raise PafposeError(f"allowed_hosts must be a non-empty list of host names, got {self.allowed_hosts!r}")
        object.__setattr__(self, "allowed_hosts", tuple(dict.fromkeys(normalise_host(h) for h in self.allowed_hosts)))

    def batch_limit(self, device_type: str) -> int:
        """``max_batch``, or when unset the default for a device of this type (``"cuda"``, ``"cpu"``...)."""
        if self.max_batch is not None:
            return self.max_batch
        return 8 if device_type == "cuda" else 1
