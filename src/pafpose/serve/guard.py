"""Which requests a browser could be tricked into sending: refused before any route runs.

The service has no authentication, so a web page open in the user's browser is the
threat, in two ways. DNS rebinding: the page's own name is re-pointed at 127.0.0.1, and its
script then talks to this server as if same-origin; its requests carry the attacker's name
in ``Host``, so only the names the server is meant to be reached by are answered (400
otherwise). Cross-site form posts: a plain ``<form method=post enctype=multipart/form-data>``
is a "simple request" that browsers send without a CORS preflight; the response is unreadable
to the page, but the server would still do the work. Browsers mark such requests with
``Origin`` (and ``Sec-Fetch-Site``), so a state-changing method whose ``Origin`` is not this
server (scheme-default port filled in, compared with ``Host``) is refused with 403. Clients
that are no browser (curl, scripts) send neither header and are unaffected; the page at
``GET /`` is same-origin.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})  # no work a page could abuse: not origin-checked
_DEFAULT_PORTS = {"http": 80, "https": 443}


def parse_host(value: str | None) -> tuple[str, int | None] | None:
    """``Host`` header -> (lower-case name or address without brackets, port or None); None when malformed."""
    if not value:
        return None
    value = value.strip().lower()
    if value.startswith("["):  # [IPv6]:port
        end = value.find("]")
        if end < 0:
            return None
        host, rest = value[1:end], value[end + 1:]
        if rest and not rest.startswith(":"):
            return None
        port_text = rest[1:] if rest else None
    else:
        host, colon, port_text = value.partition(":")
        port_text = port_text if colon else None
    if port_text is not None and not (port_text.isdigit() and int(port_text) <= 65535):
        return None
    if not host or any(c in host for c in "/@ \t\\"):
        return None
    return host, int(port_text) if port_text is not None else None


def host_allowed(host: str, allowed: Sequence[str]) -> bool:
    """Whether ``host`` matches a pattern: ``*``, an exact name, or ``*.example.com`` (subdomains)."""
    return any(p == "*" or host == p or (p.startswith("*.") and host.endswith(p[1:])) for p in allowed)


def same_origin(origin: str, host: tuple[str, int | None]) -> bool:
    """Whether a browser's ``Origin`` names the server the request was sent to (its ``Host``)."""
    try:
        parts = urlsplit(origin.strip().lower())
        port = parts.port
    except ValueError:
        return False
    default = _DEFAULT_PORTS.get(parts.scheme)
    if default is None or not parts.hostname:
        return False  # "null" (sandboxed frames, file: pages) and other schemes are never this server
    return parts.hostname == host[0] and (port or default) == (host[1] or default)


class RequestGuard:
    """ASGI middleware: 400 for a ``Host`` not in ``allowed_hosts``, 403 for a cross-origin
    state-changing request; both as ``{"detail": ...}`` before the app sees the request."""

    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str]) -> None:
        self.app = app
        self.allowed_hosts = tuple(allowed_hosts)
        self.any_host = "*" in self.allowed_hosts

    def refusal(self, method: str, headers: Headers) -> tuple[int, str] | None:
        """(status, detail) when the request must be refused, else None."""
        raw = headers.get("host")
        host = parse_host(raw)
        if not self.any_host and (host is None or not host_allowed(host[0], self.allowed_hosts)):
            shown = ", ".join(f"[{h}]" if ":" in h else h for h in self.allowed_hosts)
            return 400, (f"Host header {raw!r} is not a name this server answers to (it answers to {shown}; "
                         "pafpose serve --allowed-hosts)")
        if method in SAFE_METHODS:
            return None
        origin = headers.get("origin")
        if origin is not None and (host is None or not same_origin(origin, host)):
            return 403, (f"cross-origin request refused: Origin {origin!r} is not this server ({raw!r}); "
                         "post from the server's own page, or from a client that is no browser")
        site = headers.get("sec-fetch-site", "").strip().lower()
        if site in ("cross-site", "same-site"):
            return 403, (f"cross-origin request refused (Sec-Fetch-Site: {site}); post from the server's own "
                         "page, or from a client that is no browser")
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refused = self.refusal(scope["method"], Headers(scope=scope))
            if refused is not None:
                status, detail = refused
                await JSONResponse({"detail": detail}, status_code=status)(scope, receive, send)
                return
        await self.app(scope, receive, send)
