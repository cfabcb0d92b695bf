"""How uvicorn runs the app: connection limits it has no setting for.

uvicorn's keep-alive timeout starts only once a response is complete, so a connection that
sends its request head slowly (a byte every few seconds, never finishing: "slowloris")
or sends nothing at all is kept open for ever, and every such connection holds a socket
and a file descriptor. :class:`GuardedH11Protocol` (uvicorn's h11 protocol) closes a
connection whose request head is not complete ``header_timeout_s`` after it opened (or
after the first byte of a request that follows a keep-alive pause), answering 408 when part
of a request came, and refuses connections beyond ``max_connections`` with 503 at once.
A request's body is bounded by the app's own timeout (``--timeout``) while a route reads
it; once the answer is out (a 404, a refusal, a 504) the rest of the body gets
``header_timeout_s`` too, since uvicorn would otherwise discard a body sent a byte at a
time for ever. Idle keep-alive connections are closed by uvicorn (``timeout_keep_alive``).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from pafpose.serve.settings import ServeSettings

KEEP_ALIVE_S = 5  # uvicorn's default: an idle connection between requests is closed after it


def _raw_response(status: str, detail: str) -> bytes:
    body = json.dumps({"detail": detail}).encode()
    return (f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            "connection: close\r\n\r\n").encode() + body


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for the request head and a cap on connections.

    The limits come from the :class:`ServeConfig` it runs under.
    """

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.header_timeout_s: float = getattr(config, "header_timeout_s", ServeSettings.header_timeout_s)
        self.max_connections: int = getattr(config, "max_connections", ServeSettings.max_connections)
        self._head_timer: asyncio.TimerHandle | None = None
        self._waiting_for: str | None = None  # what the timer waits for: "head", or "body" (after the answer)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            self.logger.warning("refused a connection: %d are open (--max-connections)", len(self.connections) - 1)
            transport.write(_raw_response("503 Service Unavailable", f"too many open connections (the limit is "
                                          f"{self.max_connections}; pafpose serve --max-connections); retry later"))
            transport.close()
            return
        self._arm("head")

    def data_received(self, data: bytes) -> None:
        if self._head_timer is None and self.conn.their_state is h11.IDLE:
            self._arm("head")  # the first byte of a request after a keep-alive pause: its head has a deadline too
        super().data_received(data)
        state = self.conn.their_state
        if (self._waiting_for == "head" and state is not h11.IDLE) or (
                self._waiting_for == "body" and state is not h11.SEND_BODY):
            self._disarm()  # what it waited for came (or the connection failed)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.SEND_BODY:
            self._arm("body")  # answered before its body was read: the rest has as long as a head

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self, waiting_for: str) -> None:
        self._disarm()
        self._waiting_for = waiting_for
        self._head_timer = self.loop.call_later(self.header_timeout_s, self._timeout)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        self._waiting_for = None

    def _timeout(self) -> None:
        waiting_for, self._head_timer, self._waiting_for = self._waiting_for, None, None
        if self.transport.is_closing():
            return
        if waiting_for == "head" and self.conn.their_state is h11.IDLE:
            if self.conn.trailing_data[0]:  # part of a request came: say why it ends
                self.transport.write(_raw_response("408 Request Timeout", f"the request head (request line and "
                                                   f"headers) did not arrive within {self.header_timeout_s:g} s"))
            self.transport.close()
        elif waiting_for == "body" and self.conn.their_state is h11.SEND_BODY:
            self.transport.close()


class ServeConfig(uvicorn.Config):
    """``uvicorn.Config`` running :class:`GuardedH11Protocol` with these limits (picklable, so
    ``--workers`` processes get them too)."""

    def __init__(self, app: Any, *, header_timeout_s: float = ServeSettings.header_timeout_s,
                 max_connections: int = ServeSettings.max_connections, **kwargs: Any) -> None:
        kwargs.setdefault("timeout_keep_alive", KEEP_ALIVE_S)
        super().__init__(app, http=GuardedH11Protocol, **kwargs)
        self.header_timeout_s = header_timeout_s
        self.max_connections = max_connections


def make_config(app: Any, settings: ServeSettings, **kwargs: Any) -> ServeConfig:
    """The uvicorn configuration for ``app`` under ``settings``' connection limits.

    Example:
        >>> config = make_config(create_app(Estimator()), ServeSettings(header_timeout_s=5))
        >>> # uvicorn.Server(config).run()
    """
    return ServeConfig(app, header_timeout_s=settings.header_timeout_s, max_connections=settings.max_connections,
                       **kwargs)
