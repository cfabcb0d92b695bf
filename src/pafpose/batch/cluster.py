"""Where a batch run's Ray lives: a local instance this process starts and stops (no
dashboard, a bounded object store), or an existing cluster joined by address, checked
first so that a wrong address fails in seconds rather than hanging in Ray's retries."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pafpose.errors import PafposeError

#: The local instance's object store: the run's rows of paths and its per-input summaries are
#: all it holds (pixels and results never pass through it), so a small one is plenty.
LOCAL_OBJECT_STORE = 256 * 2**20
#: Seconds to wait for a cluster's address to answer.
CONNECT_TIMEOUT = 5.0
#: Environment variables a worker on another machine needs from the driver's.
FORWARDED_ENV = ("PAFPOSE_HOME", "PAFPOSE_WEIGHTS_PATH", "PAFPOSE_OFFLINE")


def ray_module() -> Any:
    """``ray`` (with Ray Data), or a one-line error saying how to install it."""
    try:
        import ray
        import ray.data
    except ImportError as err:
        raise PafposeError(f"pafpose batch needs Ray Data: pip install 'pafpose[ray]' ({err})") from None
    return ray


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT, source: str = "--address") -> None:
    """Raise a one-line :class:`PafposeError` unless a Ray cluster answers at ``address``
    (``HOST:PORT``, ``ray://HOST:PORT``; ``auto`` is left to Ray, which fails fast itself):
    something must accept a connection there and speak gRPC (HTTP/2), as Ray's GCS and client
    servers do. Ray itself would retry a port that answers in another protocol for minutes,
    silently. ``source`` names where the address came from in the message (``RAY_ADDRESS``)."""
    if address == "auto":
        return
    client = address.startswith("ray://")
    hostport = address.removeprefix("ray://").rstrip("/")
    m = re.fullmatch(r"\[?([^\]]+?)\]?(?::(\d+))?", hostport)
    where = f"{source} {address}" if source == "--address" else f"{source}={address}"
    if not m:
        raise PafposeError(f"{where}: expected HOST:PORT, ray://HOST:PORT or auto")
    host, port = m.group(1), int(m.group(2) or (10001 if client else 6379))
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as err:
        why = "no answer" if isinstance(err, TimeoutError) else (err.strerror or str(err))
        raise PafposeError(f"{where}: no Ray cluster answers there ({why}); start one (ray start --head, "
                           "ray up) or leave --address out to run on this machine") from None
    if not _speaks_grpc(host, port, timeout):
        raise PafposeError(f"{where}: something answers there, but not Ray (no gRPC reply in {timeout:g} s); "
                           "give the head node's GCS port (ray start --head prints it, 6379 by default) or "
                           "ray://HOST:10001")


def _speaks_grpc(host: str, port: int, timeout: float) -> bool:
    """Whether a gRPC (HTTP/2) server answers at ``host:port`` within ``timeout`` seconds
    (True when grpc, which Ray brings, is not there to ask)."""
    try:
        import grpc
    except ImportError:
        return True
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    channel = grpc.insecure_channel(target)
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
        return True
    except grpc.FutureTimeoutError:
        return False
    finally:
        channel.close()


_ANSWERED: set[str] = set()  # addresses :func:`check_address` found a Ray cluster at, in this process


def cluster_address(address: str | None) -> tuple[str | None, str]:
    """``(the cluster's address or None for a local run, where it came from)``: ``address``
    (``--address``), else ``$RAY_ADDRESS``; ``local`` is a local run."""
    source = "--address" if address else "RAY_ADDRESS"
    address = address or os.environ.get("RAY_ADDRESS") or None
    return (None if address == "local" else address), source


def check_address(address: str | None) -> None:
    """:func:`check_reachable` on the address a run will join (if any), before it writes
    anything: a wrong address fails in seconds, leaving no output folder behind."""
    address, source = cluster_address(address)
    if address:
        check_reachable(address, source=source)
        _ANSWERED.add(address)


@dataclass(frozen=True)
class Resources:
    """What the Ray cluster offers, as the run starts."""

    cpus: float  #: all nodes together
    gpus: float
    node_cpus: float  #: the largest node's
    node_gpus: float
    nodes: int
    local: bool  #: a local instance this run started (nothing will be added to it)
    cpu_nodes: int = 0  #: nodes with CPUs for work (a head started with ``CPU: 0`` has none)
    smallest_cpus: float = 0.0  #: the smallest of those nodes' CPUs


@contextlib.contextmanager
def _ray_chatter_muted() -> Iterator[None]:
    """Ray's C++ core writes notes to this process's stderr (file descriptor 2), and its
    error listener prints the raylet's to ``sys.stdout`` (e.g. that a task is retried after
    an actor was stopped), none of which is a user's concern: pafpose reports failures
    itself. While Ray runs, descriptor 2 goes to a temporary file, ``sys.stdout`` nowhere,
    and ``sys.stderr`` (warnings, the progress bar) to the terminal. ``--verbose`` leaves
    everything as it is."""
    import tempfile

    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(2)
    previous = sys.stdout, sys.stderr
    with tempfile.TemporaryFile() as sink, open(os.devnull, "w") as nowhere:
        os.dup2(sink.fileno(), 2)
        sys.stdout = nowhere
        sys.stderr = os.fdopen(os.dup(saved), "w", buffering=1, encoding=previous[1].encoding or "utf-8",
                               errors="backslashreplace")
        try:
            yield
        finally:
            sys.stderr.flush()
            sys.stderr.close()
            sys.stdout, sys.stderr = previous
            os.dup2(saved, 2)
            os.close(saved)


def _quiet(verbose: bool) -> None:
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = verbose  # pafpose's own bar counts images, frames and errors
    ctx.print_on_execution_start = verbose
    ctx.enable_auto_log_stats = False
    if not verbose:
        for name in ("ray", "ray.data", "ray.train", "ray.tune"):
            logging.getLogger(name).setLevel(logging.ERROR)


@contextlib.contextmanager
def ray_session(address: str | None = None, verbose: bool = False,
                object_store_memory: int = LOCAL_OBJECT_STORE) -> Iterator[Resources]:
    """Ray for one run: joins ``address`` (or ``$RAY_ADDRESS``), else starts a local instance
    on this machine's CPUs and GPUs, dashboard off; stops what it started on the way out.
    A Ray session the caller already opened is used as it is (and left open)."""
    ray: Any = ray_module()
    address, source = cluster_address(address)
    if address and address not in _ANSWERED:
        check_reachable(address, source=source)
    if ray.is_initialized():
        yield _resources(ray, local=False)
        return
    level = logging.INFO if verbose else logging.ERROR
    main = threading.current_thread() is threading.main_thread()
    sigterm = signal.getsignal(signal.SIGTERM) if main else None
    with contextlib.ExitStack() as stack:
        if not verbose:
            stack.enter_context(_ray_chatter_muted())
        if address:
            env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
            try:
                ray.init(address=address, logging_level=level, log_to_driver=verbose,
                         runtime_env={"env_vars": env} if env else None)
            except (ConnectionError, RuntimeError, ValueError) as err:
                where = f"--address {address}" if source == "--address" else f"RAY_ADDRESS={address}"
                raise PafposeError(f"{where}: can't join the Ray cluster "
                                   f"({str(err).strip().splitlines()[0]})") from None
        else:
            os.environ.pop("RAY_ADDRESS", None)  # "local" asked for: never join a cluster by accident
            ray.init(address="local", include_dashboard=False, object_store_memory=object_store_memory,
                     logging_level=level, log_to_driver=verbose)
        if not address:  # the agents die with this process (its watchdog let go after ray.shutdown)
            stack.enter_context(_agents_die_with_driver())
        stack.callback(ray.shutdown)
        if sigterm is not None:  # ray.init's own (sys.exit from inside Ray's calls) can abort the process
            signal.signal(signal.SIGTERM, sigterm)
        _quiet(verbose)
        yield _resources(ray, local=not address)


#: The processes of a local Ray that outlive a killed driver (the raylet and GCS die with it,
#: by Ray's own fate-sharing; these agents, the raylet's children, do not: ~200 MB left behind).
AGENTS = ("ray::DashboardAgent", "ray::RuntimeEnvAgent")

# The watchdog: waits for its stdin to close (the driver exited or was killed: the kernel closes
# the pipe either way), then kills the agents it was given, each only if it is still the same process.
_WATCHDOG = """
import os, signal, sys
sys.stdin.buffer.read()
for arg in sys.argv[1:]:
    pid, start = map(int, arg.split(":"))
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            if int(f.read().rsplit(b")", 1)[1].split()[19]) == start:
                os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError, IndexError):
        pass
"""


def _processes() -> dict[int, tuple[int, int, str]]:
    """``{pid: (parent pid, start time in clock ticks, command line)}`` of this machine's processes (Linux)."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            out[int(entry)] = (int(fields[1]), int(fields[19]), cmd)
        except (OSError, ValueError, IndexError):
            continue
    return out


@contextlib.contextmanager
def _agents_die_with_driver(wait: float = 5.0) -> Iterator[None]:
    """Kill the local Ray's agents (:data:`AGENTS`) when this process ends, however it ends
    (``kill -9`` included): a small watchdog process, in its own session so that Ctrl-C
    spares it, waits on a pipe only this process holds. Linux only (elsewhere, nothing)."""
    import subprocess
    import time

    if not sys.platform.startswith("linux"):
        yield
        return
    me = os.getpid()
    deadline = time.monotonic() + wait
    while True:  # the raylet starts its agents as Ray starts: wait for them a little
        procs = _processes()
        children = {pid for pid, (ppid, _, _) in procs.items() if ppid == me}
        agents = {pid: start for pid, (ppid, start, cmd) in procs.items()
                  if ppid in children and cmd.startswith(AGENTS)}
        if len(agents) >= len(AGENTS) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if not agents:
        yield
        return
    watchdog = subprocess.Popen([sys.executable, "-c", _WATCHDOG, *(f"{p}:{s}" for p, s in agents.items())],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
    try:
        yield
    finally:
        assert watchdog.stdin is not None
        watchdog.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            watchdog.wait(timeout=5)


def _resources(ray: Any, local: bool) -> Resources:
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    total = ray.cluster_resources()
    cpus = [float(n["Resources"].get("CPU", 0)) for n in nodes]
    working = [c for c in cpus if c > 0]
    return Resources(cpus=float(total.get("CPU", 0)), gpus=float(total.get("GPU", 0)), node_cpus=max(cpus, default=0.0),
                     node_gpus=max((float(n["Resources"].get("GPU", 0)) for n in nodes), default=0.0),
                     nodes=len(nodes), local=local, cpu_nodes=len(working), smallest_cpus=min(working, default=0.0))


def worker_error(err: BaseException) -> str:
    """The one line that says why a Ray worker failed: the UDF's own exception, not Ray
    Data's wrapper ("UDF failed to process a data block", which says nothing), without
    Ray's traceback and terminal colours. Across processes the cause survives only as text
    (the remote traceback in the outer error's message), so that is searched too."""
    chain = [err]
    while True:  # down Ray's wrappers (RayTaskError.cause, UserCodeException.__cause__)
        inner = getattr(chain[-1], "cause", None)
        if not isinstance(inner, BaseException):
            inner = chain[-1].__cause__
        if inner is None or any(inner is e for e in chain):
            break
        chain.append(inner)
    innermost = chain[-1]
    if isinstance(innermost, PafposeError):
        return (str(innermost).strip().splitlines() or [type(innermost).__name__])[0]
    if not type(innermost).__module__.startswith("ray"):  # the UDF's own exception: its name and message
        message = str(innermost).strip()
        return f"{type(innermost).__name__}: {message.splitlines()[0]}" if message else type(innermost).__name__
    for e in chain:
        cause = _last_cause(str(e))
        if cause is not None:
            return cause
    lines = [line.strip() for line in re.sub(r"\x1b\[[0-9;]*m", "", str(err)).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def _last_cause(text: str) -> str | None:
    """The last ``Name: message`` line of a traceback's text that is not one of Ray's own wrappers."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    for line in reversed([line.strip() for line in text.splitlines()]):
        m = re.match(r"^([\w.]+(?:Error|Exception))\b[^:]*: (.*)", line)
        if m and not m.group(1).startswith("ray.") and "UserCodeException" not in m.group(1):
            name, message = m.groups()
            return message if name.endswith(("PafposeError", "ImageError")) else f"{name}: {message}"
    return None
