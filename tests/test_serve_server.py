"""`pafpose serve` as a user runs it: a real server on a free loopback port, hit by concurrent
clients, fuzzed from its OpenAPI spec, and its page driven in headless Chromium."""

import random
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import REPO

httpx = pytest.importorskip("httpx", reason="httpx is not installed (pip install -e '.[test]')")
pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install 'pafpose[serve]')")
try:
    import schemathesis
except ImportError:  # the fuzz test says so
    schemathesis = None

HEADER_TIMEOUT = 2  # seconds; short, so that the slowloris test is
MAX_CONNECTIONS = 48
EXE = shutil.which("pafpose") or str(Path(sys.executable).with_name("pafpose"))


class Server:
    """A `pafpose serve` process; its output goes to files (a full pipe would stall it)."""

    def __init__(self, env, folder, *args):
        self.out, self.err = folder / "stdout.txt", folder / "stderr.txt"
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.proc = subprocess.Popen([EXE, "serve", "--port", "0", *args], stdout=out, stderr=err, env=env)
        deadline = time.monotonic() + 180
        while not (found := re.search(r"pafpose serve: (http://[\d.]+:\d+)/", self.out.read_text())):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"pafpose serve did not start: {self.err.read_text()[-2000:]}")
            time.sleep(0.1)
        self.url = found.group(1)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def server(env, tmp_path_factory):
    s = Server(env, tmp_path_factory.mktemp("server"), "--max-batch", "8", "--batch-wait-ms", "10",
               "--header-timeout", str(HEADER_TIMEOUT), "--max-connections", str(MAX_CONNECTIONS))
    yield s
    s.stop()


def kind(name):
    return "image/png" if name.endswith(".png") else "image/jpeg"


def as_array(people):
    return np.array([[k if k is not None else (np.nan, np.nan, 0.0) for k in p["keypoints"]] for p in people])


def test_the_server_reports_its_model(server):
    r = httpx.get(f"{server.url}/v1/models", timeout=30)
    assert r.status_code == 200 and r.json()["models"][0]["name"] == "human-pose-estimation-0001"
    assert server.url.startswith("http://127.0.0.1:")  # loopback by default
    page = httpx.get(f"{server.url}/", timeout=30)
    assert page.status_code == 200 and "<canvas" in page.text


def test_concurrent_requests_get_what_sequential_requests_get(server, images):
    dance = cv2.imread(str(images / "p3_dance.png"))
    payloads = {name: (images / name).read_bytes() for name in ("p3_dance.png", "ski.jpg", "apink1.jpg", "cat.jpg")}
    for name, img in (("mirrored.png", dance[:, ::-1]), ("dimmed.png", cv2.convertScaleAbs(dance, alpha=0.7))):
        payloads[name] = cv2.imencode(".png", img)[1].tobytes()  # the dancers' size: these batch together
    with httpx.Client(base_url=server.url, timeout=120) as client:
        sequential = {name: client.post("/v1/poses", content=data, headers={"content-type": kind(name)}).json()
                      for name, data in payloads.items()}
    assert len(sequential["p3_dance.png"]["people"]) == 3 and sequential["cat.jpg"]["people"] == []
    jobs = [name for _ in range(3) for name in payloads]
    random.Random(0).shuffle(jobs)

    def call(name):
        with httpx.Client(base_url=server.url, timeout=120) as client:
            r = client.post("/v1/poses", content=payloads[name], headers={"content-type": kind(name)})
            return name, r.status_code, r.json()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(call, jobs))
    assert [status for _, status, _ in results] == [200] * len(jobs)
    for name, _, body in results:
        ref = sequential[name]
        assert (body["width"], body["height"]) == (ref["width"], ref["height"])
        assert len(body["people"]) == len(ref["people"]), name
        assert np.allclose(as_array(body["people"]), as_array(ref["people"]), atol=0.011, equal_nan=True), name
    assert max(body["batch_size"] for _, _, body in results) > 1  # and some of them did share a network call


def test_fuzzing_the_openapi_spec_finds_no_server_error(server):
    """Schemathesis' cases from the live spec, valid and invalid: no 5xx, and every answer as documented."""
    if schemathesis is None:
        pytest.skip("schemathesis is not installed (pip install -e '.[test]')")
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    # schemathesis' pytest plug-in (from_fixture) fails on pytest 9, so the cases are drawn here
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    seen = set()
    for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):

        @settings(max_examples=60, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=schema.as_strategy(generation_mode=mode))
        def fuzz(case):
            seen.add((case.method.upper(), case.path))
            case.call_and_validate(checks=checks, timeout=60)

        fuzz()
    operations = {("POST", "/v1/poses"), ("POST", "/v1/poses/render"), ("GET", "/v1/models"), ("GET", "/healthz")}
    assert seen == operations


def test_the_page_in_headless_chromium(server, images, tmp_path):
    from helpers_browser import chromium_page

    artifacts = REPO / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    problems = []
    with chromium_page(tmp_path / "profile", problems) as (sync_api, page):
        page.goto(f"{server.url}/")
        status = page.locator("#status")
        (tmp_path / "notes.txt").write_text("not a picture")
        page.set_input_files("#file", str(tmp_path / "notes.txt"))  # the API's refusal, shown as it says
        sync_api.expect(status).to_have_class("error", timeout=60_000)
        assert "Error: not an image" in status.inner_text()
        assert [p for p in problems if "status of 415" not in p] == []  # Chromium logs the refused upload
        problems.clear()
        page.set_input_files("#file", str(images / "p3_dance.png"))
        # the page's CSP forbids eval, so waits go through attributes, not JavaScript predicates
        sync_api.expect(status).to_have_attribute("data-people", re.compile(".+"), timeout=90_000)
        assert status.get_attribute("data-people") == "3", status.inner_text()
        assert int(status.get_attribute("data-limbs")) >= 3 * 12  # the skeletons were drawn
        assert re.search(r"3 people · \d+ ms round trip", status.inner_text())
        canvas = page.locator("#canvas")
        assert (canvas.get_attribute("width"), canvas.get_attribute("height")) == ("1280", "720")
        assert canvas.is_visible()
        for path in (tmp_path / "serve-page.png", artifacts / "serve-page.png"):
            page.screenshot(path=str(path), full_page=True)
        # the webcam, Chromium's fake camera: frames go to the API one after another
        page.click("#webcam")
        sync_api.expect(status).to_have_attribute("data-frames", re.compile(r"^([3-9]|\d\d+)$"), timeout=90_000)
        assert "frames/s" in status.inner_text()
        for path in (tmp_path / "serve-webcam.png", artifacts / "serve-webcam.png"):
            page.screenshot(path=str(path), full_page=True)
        page.click("#webcam")
    assert not problems, problems
    shot = cv2.imread(str(artifacts / "serve-page.png"))
    assert shot is not None and shot.shape[1] >= 1000


def test_worker_processes_each_load_the_model(env, images, tmp_path):
    s = Server(env, tmp_path, "--workers", "2", "--log-level", "warning")
    try:
        dance = (images / "p3_dance.png").read_bytes()
        with httpx.Client(base_url=s.url, timeout=120) as client:  # connections wait while the workers load
            bodies = [client.post("/v1/poses", content=dance, headers={"content-type": "image/png"}).json()
                      for _ in range(3)]
            assert client.get("/v1/models").json()["models"][0]["name"] == "human-pose-estimation-0001"
        assert all(len(b["people"]) == 3 for b in bodies)
        assert all(np.allclose(as_array(b["people"]), as_array(bodies[0]["people"]), equal_nan=True) for b in bodies)
    finally:
        s.proc.send_signal(signal.SIGINT)
        assert s.proc.wait(60) == 0
    assert "Traceback" not in s.err.read_text()


def test_a_taken_port_and_bad_limits_are_one_line_errors(server, capsys):
    from pafpose.cli import main

    port = server.url.rsplit(":", 1)[1]
    for argv, words in ((["--port", port], "already in use; choose another --port"),
                        (["--port", "0", "--allowed-hosts", "example.com:80"], "allowed host 'example.com:80'"),
                        (["--host", "192.0.2.1", "--port", "0"], "can't listen on 192.0.2.1:0")):  # not this machine's
        assert main(["serve", *argv]) == 2  # before any model is loaded
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and words in err, err


@pytest.mark.parametrize(("option", "value", "words"), [
    ("--max-upload-mb", "nan", "must be a finite number, got nan"),
    ("--max-upload-mb", "0", "must be in [0.001, 1000], got 0"),
    ("--port", "70000", "must be in [0, 65535], got 70000"),
    ("--max-batch", "0", "must be in [1, 256], got 0"),
    ("--batch-wait-ms", "inf", "must be a finite number"),
    ("--max-queue", "-3", "must be in [1, 10000]"),
    ("--timeout", "0", "must be in (0, 3600]"),
    ("--max-pixels", "1e9", "must be in [0.001, 1000]"),
    ("--max-side", "2.5", "a whole number expected, got '2.5'"),
    ("--workers", "0", "must be in [1, 64]"),
    ("--header-timeout", "nan", "must be a finite number"),
    ("--max-connections", "0", "must be in [1, 100000]"),
])
def test_every_numeric_option_is_checked_in_one_line(option, value, words, capsys):
    from pafpose.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["serve", option, value])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and f"argument {option}: {words}" in err, err


def test_a_nan_option_from_the_command_line_is_no_traceback():
    r = subprocess.run([EXE, "serve", "--max-upload-mb", "nan"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
    assert r.stderr == ("pafpose serve: error: argument --max-upload-mb: must be a finite number, got nan "
                        "(see pafpose serve --help)\n")


def _address(server):
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def test_slowloris_connections_are_closed_within_the_header_timeout(server):
    """Connections sending their headers a byte at a time, never finishing, are closed (408) after
    --header-timeout; so are connections that send nothing. The server answers throughout."""
    start = time.monotonic()
    slow = [socket.create_connection(_address(server), timeout=5) for _ in range(12)]
    silent = [socket.create_connection(_address(server), timeout=5) for _ in range(4)]
    for s in slow:
        s.sendall(b"POST /v1/poses HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    closed, answers = {}, {}
    try:
        while len(closed) < len(slow) + len(silent) and time.monotonic() - start < HEADER_TIMEOUT + 8:
            for s in slow:
                if s not in closed:
                    try:
                        s.sendall(b"X")  # one more byte of a header that never ends
                    except OSError:
                        closed[s] = time.monotonic() - start
            readable, _, _ = select.select([s for s in slow + silent if s not in closed], [], [], 0.25)
            for s in readable:
                try:
                    data = s.recv(4096)
                except OSError:
                    data = b""
                answers[s] = answers.get(s, b"") + data
                if not data:
                    closed[s] = time.monotonic() - start
        assert httpx.get(f"{server.url}/healthz", timeout=30).status_code == 200  # others are still served
    finally:
        for s in slow + silent:
            s.close()
    assert len(closed) == len(slow) + len(silent), f"{len(slow) + len(silent) - len(closed)} connections still open"
    assert all(HEADER_TIMEOUT * 0.8 <= t <= HEADER_TIMEOUT + 5 for t in closed.values()), sorted(closed.values())
    assert all(answers.get(s, b"").startswith(b"HTTP/1.1 408 ") for s in slow), [answers.get(s) for s in slow]
    assert all(answers.get(s, b"") == b"" for s in silent)  # nothing came, so nothing to answer


def test_a_body_still_dribbling_in_after_the_answer_is_cut_off(server):
    """A 404 (or any refusal) goes out before the body is read; the rest of it then gets
    --header-timeout, instead of being read and discarded a byte at a time for ever."""
    s = socket.create_connection(_address(server), timeout=5)
    try:
        s.sendall(b"POST /nowhere HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\nXX")
        answer = s.recv(4096)
        assert answer.startswith(b"HTTP/1.1 404 "), answer
        start, closed = time.monotonic(), None
        while closed is None and time.monotonic() - start < HEADER_TIMEOUT + 8:
            try:
                s.sendall(b"X")
                if select.select([s], [], [], 0.25)[0] and s.recv(4096) == b"":
                    closed = time.monotonic() - start
            except OSError:
                closed = time.monotonic() - start
    finally:
        s.close()
    assert closed is not None and HEADER_TIMEOUT * 0.8 <= closed <= HEADER_TIMEOUT + 5, closed


def test_connections_beyond_the_limit_get_503_at_once(server):
    idle = []
    try:
        for _ in range(MAX_CONNECTIONS):
            idle.append(socket.create_connection(_address(server), timeout=5))
        time.sleep(0.3)  # the server has accepted them all
        r = httpx.get(f"{server.url}/healthz", timeout=30)
        assert r.status_code == 503 and "too many open connections" in r.json()["detail"]
    finally:
        for s in idle:
            s.close()
    deadline = time.monotonic() + 10
    while (r := httpx.get(f"{server.url}/healthz", timeout=30)).status_code == 503 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert r.status_code == 200


def test_the_real_server_refuses_other_hosts_and_cross_origin_posts(server, images):
    """The defaults of `pafpose serve` on loopback: 127.0.0.1, localhost and [::1] only."""
    ski = (images / "ski.jpg").read_bytes()
    port = server.url.rsplit(":", 1)[1]
    r = httpx.get(f"{server.url}/v1/models", headers={"host": f"attacker.example:{port}"}, timeout=30)
    assert r.status_code == 400 and "--allowed-hosts" in r.json()["detail"]
    assert httpx.get(f"http://localhost:{port}/v1/models", timeout=30).status_code == 200
    form = {"image": ("ski.jpg", ski, "image/jpeg")}
    r = httpx.post(f"{server.url}/v1/poses", files=form, headers={"origin": "http://attacker.example"}, timeout=60)
    assert r.status_code == 403 and "cross-origin request refused" in r.json()["detail"]
    r = httpx.post(f"{server.url}/v1/poses", files=form, headers={"origin": server.url}, timeout=60)
    assert r.status_code == 200 and r.json()["people"]


def test_ctrl_c_stops_it_cleanly_after_all_that(server):
    server.proc.send_signal(signal.SIGINT)
    assert server.proc.wait(60) == 0
    log = server.err.read_text()
    assert "Traceback" not in log and "Finished server process" in log
    assert not re.search(r'" 5\d\d ', server.out.read_text())  # no request got a server error
