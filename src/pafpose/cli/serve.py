"""pafpose serve: pose estimation over HTTP, a JSON API and a page to try it in a browser.

The model is loaded once at start-up; requests that arrive together go through the network
in one call (--max-batch 1 turns batching off). Endpoints: GET / (the page: upload an image
or use the webcam), POST /v1/poses (people as JSON; multipart upload or raw image body),
POST /v1/poses/render (the drawn image), GET /v1/models, GET /healthz, GET /docs (OpenAPI).

It listens on 127.0.0.1 unless --host says otherwise: the service has no authentication,
so put it behind something that has before exposing it. Requests naming another host
(DNS rebinding) get 400 and posts from pages on other sites 403 (--allowed-hosts); request
heads must arrive within --header-timeout. --port 0 picks a free port; the
address is printed once the model is loaded. Ctrl-C (or SIGTERM) stops it after the
requests in progress.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from pafpose.checks import check_number
from pafpose.errors import PafposeError


def add_parser(sub: argparse._SubParsersAction) -> None:
    from pafpose.checks import number
    from pafpose.cli.options import add_model_arguments
    from pafpose.serve.settings import ServeSettings

    d = ServeSettings()
    p = sub.add_parser("serve", help="web service (JSON API) and browser page for pose estimation",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s, this machine only)")
    p.add_argument("--port", type=number(0, 65535, integer=True), default=8000,
                   help="TCP port; 0 picks a free one (default: %(default)s)")
    p.add_argument("--workers", type=number(1, 64, integer=True), default=1,
                   help="server processes, each with its own model and batching; they share the CPU cores")
    p.add_argument("--log-level", choices=("critical", "error", "warning", "info", "debug"), default="info")
    g = p.add_argument_group("batching and limits")
    g.add_argument("--max-batch", type=number(1, 256, integer=True), default=d.max_batch,
                   help="most requests per network call; 1 turns batching off (default: 8 on a GPU, 1 on the CPU, "
                        "where batching measured slower: BENCHMARKS.md)")
    g.add_argument("--batch-wait-ms", type=number(0, 1000), default=d.batch_wait_ms,
                   help="how long a request may wait for others to share its call (default: %(default)s)")
    g.add_argument("--max-queue", type=number(1, 10_000, integer=True), default=d.max_queue,
                   help="requests waiting for the network at once; more get 503 (default: %(default)s)")
    g.add_argument("--max-upload-mb", type=number(0.001, 1000), default=d.max_upload_bytes / 1e6,
                   help="largest upload in MB; larger ones get 413 (default: %(default)g)")
    g.add_argument("--max-pixels", type=number(0.001, 1000), default=d.max_pixels / 1e6, metavar="MPIXEL",
                   help="largest image in megapixels, read from its header before decoding (default: %(default)g)")
    g.add_argument("--max-side", type=number(64, 16384, integer=True), default=d.max_side,
                   help="images with a longer side are shrunk when decoded (default: %(default)s)")
    g.add_argument("--timeout", type=number(0, 3600, lo_open=True), default=d.timeout_s,
                   help="seconds a request may take; then 504 (default: %(default)s)")
    c = p.add_argument_group("connections and browsers")
    c.add_argument("--header-timeout", type=number(0, 600, lo_open=True), default=d.header_timeout_s,
                   metavar="SECONDS", help="a connection that has not sent a complete request head (request line and "
                                           "headers) this long after it opened is closed (default: %(default)g)")
    c.add_argument("--max-connections", type=number(1, 100_000, integer=True), default=d.max_connections,
                   help="open connections per worker process; more are refused with 503 (default: %(default)s)")
    c.add_argument("--allowed-hosts", nargs="+", metavar="HOST",
                   help="Host header names answered besides the default (127.0.0.1, localhost and [::1] when "
                        "listening on loopback, else the --host address and this machine's names); others get "
                        "400 against DNS rebinding. '*' answers any; '*.example.com' its subdomains")
    add_model_arguments(p)
    p.set_defaults(func=run)  # a bad option is one line: pafpose.cli's parser class says so for every command


def allowed_hosts(args: argparse.Namespace, sock: socket.socket | None = None) -> tuple[str, ...]:
    """The Host names answered: those the listening address is reached by, and --allowed-hosts.

    Loopback: 127.0.0.1, localhost, [::1]. A wildcard address (0.0.0.0, ::): those and this
    machine's names and addresses. Another address: it and the --host text.
    """
    from pafpose.serve.settings import LOOPBACK_HOSTS

    names = [args.host]
    if sock is not None:
        address = ipaddress.ip_address(sock.getsockname()[0].split("%")[0])
        if address.is_loopback:
            names = list(LOOPBACK_HOSTS) + names
        elif address.is_unspecified:
            names = [*LOOPBACK_HOSTS, *_machine_names()]
        else:
            names.append(str(address))
    return (*names, *(args.allowed_hosts or ()))


def _machine_names() -> list[str]:
    """This machine's host name, its fully qualified name and the addresses they resolve to."""
    names = [socket.gethostname(), socket.getfqdn()]
    for name in list(names):
        try:
            names += [info[4][0].split("%")[0] for info in socket.getaddrinfo(name, None)]
        except OSError:
            pass
    return [n for n in names if n]


def settings_from(args: argparse.Namespace, sock: socket.socket | None = None) -> Any:
    """The :class:`~pafpose.serve.ServeSettings` the options say (checked there)."""
    from pafpose.serve.settings import ServeSettings

    return ServeSettings(max_upload_bytes=round(args.max_upload_mb * 1e6), max_pixels=round(args.max_pixels * 1e6),
                         max_side=args.max_side, max_batch=args.max_batch, batch_wait_ms=args.batch_wait_ms,
                         max_queue=args.max_queue, timeout_s=args.timeout, allowed_hosts=allowed_hosts(args, sock),
                         header_timeout_s=args.header_timeout, max_connections=args.max_connections)


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free one); a clear error when it is taken."""
    check_number("--port", port, 0, 65535, integer=True)
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as err:
        raise PafposeError(f"--host {host}: not an address of this machine ({err.strerror})") from err
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)  # connections made while the model loads wait instead of being refused
    except OSError as err:
        sock.close()
        hint = "; choose another --port (0 picks a free one)" if err.errno == 98 else ""
        raise PafposeError(f"can't listen on {host}:{port}: {err.strerror}{hint}") from err
    return sock


def url_of(sock: socket.socket) -> str:
    """``http://host:port`` of a listening socket (the port the system chose for --port 0)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _is_loopback(sock: socket.socket) -> bool:
    return ipaddress.ip_address(sock.getsockname()[0].split("%")[0]).is_loopback


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from pafpose.serve import create_app
        from pafpose.serve.app import CONFIG_ENV
        from pafpose.serve.server import make_config
    except ImportError as err:
        raise PafposeError(f"pafpose serve needs the serve extra: pip install 'pafpose[serve]' ({err})") from err
    from pafpose.cli.options import make_estimator, warn
    from pafpose.estimator_config import DEFAULT_MODEL
    from pafpose.serve.service import warm_up

    settings_from(args)  # option errors before the port is taken
    sock = listen(args.host, args.port)
    try:
        settings = settings_from(args, sock)
        start = time.perf_counter()
        est = make_estimator(args)  # also in the --workers parent: option errors and downloads happen once, here
        url = url_of(sock)
        if not _is_loopback(sock):
            warn(f"listening on {url}, reachable from other machines: this service has no authentication; "
                 f"it answers to the host names {', '.join(settings.allowed_hosts)} (--allowed-hosts)")
        name = args.model or (args.weights.name if args.weights is not None else DEFAULT_MODEL)
        max_batch = settings.batch_limit(est.device.type)
        batching = f"batches of up to {max_batch}" if max_batch > 1 else "no batching"
        if args.workers == 1:
            warm_up(est)
            state = f"ready after {time.perf_counter() - start:.1f} s"
        else:  # connections made meanwhile wait in the socket's queue
            state = f"{args.workers} worker processes loading the model"
        print(f"pafpose serve: {url}/ ({name} on {est.device}, {est.config.backend} {est.config.precision}, "
              f"{batching}; {state}; Ctrl-C stops)", flush=True)
        host, port = sock.getsockname()[:2]
        if args.workers == 1:
            app = create_app(est, settings, model_name=name)
            config = make_config(app, settings, host=host, port=port, log_level=args.log_level)
            _until_stopped(lambda: uvicorn.Server(config).run(sockets=[sock]))
        else:
            from uvicorn.supervisors import Multiprocess

            # what the parent resolved (--backend auto): every worker runs the same, without choosing again;
            # the cores are shared among the workers unless --threads says
            options = est.config.replace(threads=args.threads or max(1, (os.cpu_count() or 1) // args.workers))
            del est
            os.environ[CONFIG_ENV] = json.dumps({"estimator": options.to_dict(), "settings": settings.__dict__,
                                                 "name": name})
            config = make_config("pafpose.serve.app:app_from_env", settings, factory=True, host=host, port=port,
                                 workers=args.workers, log_level=args.log_level)
            Multiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()
    return 0


def _until_stopped(serve: Callable[[], None]) -> None:
    """Run ``serve``; Ctrl-C and SIGTERM, after uvicorn's graceful shutdown, end it normally (exit 0).

    uvicorn raises the signal again once it has finished the requests in progress; here
    both signals become a KeyboardInterrupt that means "done", not "interrupted".
    """

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop) if threading.current_thread() is threading.main_thread() else None
    try:
        serve()
    except KeyboardInterrupt:
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)

