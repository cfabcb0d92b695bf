"""``pafpose serve`` as a child process for the serving benchmarks: a free loopback port, its
output in a file, optionally under an address-space limit; its memory and open sockets."""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path


class Server:
    """``pafpose serve`` on a free loopback port under an address-space limit, output to a file."""

    def __init__(self, args: list[str], env: dict[str, str], memory_limit: int | None = None) -> None:
        exe = shutil.which("pafpose") or str(Path(sys.executable).with_name("pafpose"))
        self.log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)  # closed in stop()

        def limit() -> None:
            if memory_limit is not None:
                resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))

        self.proc = subprocess.Popen([exe, "serve", "--host", "127.0.0.1", "--port", "0", "--log-level", "warning",
                                      *args], stdout=self.log, stderr=subprocess.STDOUT, env=env, preexec_fn=limit)
        deadline = time.monotonic() + 300
        while not (m := re.search(r"pafpose serve: (http://127\.0\.0\.1:(\d+))/", Path(self.log.name).read_text())):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"pafpose serve did not start:\n{Path(self.log.name).read_text()[-3000:]}")
            time.sleep(0.1)
        self.url, self.port = m.group(1), int(m.group(2))

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def sockets(self) -> int:
        """Open sockets of the server process: its listening socket and its connections."""
        n = 0
        for fd in Path(f"/proc/{self.proc.pid}/fd").iterdir():
            try:
                n += os.readlink(fd).startswith("socket:")
            except OSError:  # closed meanwhile
                pass
        return n

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()
        text = Path(self.log.name).read_text()
        Path(self.log.name).unlink(missing_ok=True)
        return text


def shared_inputs(shared: Path) -> tuple[Path, dict[str, str]] | None:
    """``(images folder, environment for the server)`` from ../shared, or None (with a line
    saying so) when it has no images: the weights come from its mirror when present."""
    images_dir = shared / "images"
    if not images_dir.is_dir():
        print(f"no images under {images_dir}: nothing to measure")
        return None
    env = dict(os.environ)
    if (shared / "weights").is_dir():
        env.setdefault("PAFPOSE_WEIGHTS_PATH", str(shared / "weights"))
    return images_dir, env
