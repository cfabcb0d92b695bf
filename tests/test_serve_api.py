"""The JSON API of `pafpose serve` through FastAPI's TestClient, on the real model and ../shared/images."""

import asyncio
import re
import threading
import time

import cv2
import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install 'pafpose[serve]')")
from fastapi.testclient import TestClient

from pafpose import Pose
from pafpose.formats import coco_results, openpose_json
from pafpose.serve import ServeSettings, create_app
from pafpose.serve.batching import BusyError
from pafpose.serve.schemas import CocoResultBody, OpenPoseBody, PosesBody
from pafpose.serve.service import PoseService

MODEL = "human-pose-estimation-0001"
# an 80000 x 60000 RGB PNG's header (a decompression bomb's), then an empty image and the end chunk
PNG_80000_X_60000 = bytes.fromhex("89504e470d0a1a0a0000000d49484452000138800000ea600802000000f4c4f271"
                                  "000000004944415435af061e0000000049454e44ae426082")


@pytest.fixture(scope="module")
def images():
    from conftest import shared_dir

    shared = shared_dir()
    if shared is None:
        pytest.skip("../shared not found (set PAFPOSE_SHARED): these tests run the real model on real photos")
    return shared / "images"


@pytest.fixture(scope="module")
def est(images):
    mp = pytest.MonkeyPatch()
    mp.setenv("PAFPOSE_WEIGHTS_PATH", str(images.parent / "weights"))
    from pafpose.predict import Estimator

    # torch: the tests compare the service's answers with this network run again in-process, as a network
    # object (which runs in PyTorch) or on other pixels; `pafpose serve`'s default (auto) is test_serve_server's
    yield Estimator(MODEL, device="cpu", backend="torch")
    mp.undo()


LOCAL = "http://127.0.0.1:8000"  # a Host the app answers to by default (TestClient's "testserver" is not)


@pytest.fixture(scope="module")
def client(est):
    with TestClient(create_app(est, ServeSettings(), model_name=MODEL), base_url=LOCAL) as c:
        yield c


@pytest.fixture(scope="module")
def dance(images):
    return (images / "p3_dance.png").read_bytes()


def as_array(people):
    """API people -> (N, K, 3) with NaN for missing keypoints."""
    return np.array([[k if k is not None else (np.nan, np.nan, 0.0) for k in p["keypoints"]] for p in people])


def same_people(api_people, poses, atol=0.011):
    """The API's people are ``poses`` (from Estimator.predict), up to the API's rounding."""
    got = as_array(api_people)
    ref = np.array([p.keypoints for p in poses])
    return got.shape == ref.shape and np.allclose(got, ref, atol=atol, equal_nan=True) and np.allclose(
        [p["score"] for p in api_people], [p.score for p in poses], atol=1e-4)


def post(client, data, content_type="image/png", path="/v1/poses", headers=None, **params):
    return client.post(path, content=data, headers={"content-type": content_type, **(headers or {})}, params=params)


def test_three_dancers_as_json(client, est, images, dance):
    r = client.post("/v1/poses", files={"image": ("p3_dance.png", dance, "image/png")})
    assert r.status_code == 200, r.text
    body = r.json()
    PosesBody.model_validate(body)  # the documented schema
    assert (body["width"], body["height"]) == (1280, 720)
    assert body["model"] == MODEL and body["batch_size"] == 1
    assert len(body["people"]) == 3
    assert same_people(body["people"], est.predict(images / "p3_dance.png"))
    sk = body["skeleton"]
    assert sk["name"] == "coco18" and sk["keypoints"][:2] == ["nose", "neck"] and len(sk["keypoints"]) == 18
    assert len(sk["limbs"]) == len(sk["limb_colors"]) and all(0 <= i < 18 for limb in sk["limbs"] for i in limb)
    assert set(body["timing_ms"]) == {"read", "decode", "queue", "inference", "total"}
    assert body["timing_ms"]["total"] >= body["timing_ms"]["inference"] > 0
    assert re.fullmatch(r"(\w+;dur=[\d.]+, )+total;dur=[\d.]+", r.headers["server-timing"])


def test_raw_bodies_and_the_openpose_and_coco_formats(client, est, images, dance):
    poses = est.predict(images / "p3_dance.png")
    raw = post(client, dance)
    assert raw.status_code == 200 and same_people(raw.json()["people"], poses)
    r = post(client, dance, format="openpose")
    assert r.status_code == 200 and r.json() == openpose_json(poses)  # what `pafpose predict` writes
    OpenPoseBody.model_validate(r.json())
    r = post(client, dance, format="coco", image_id=139)
    assert r.status_code == 200 and r.json() == [dict(x, keypoints=pytest.approx(x["keypoints"], abs=1e-6),
                                                      score=pytest.approx(x["score"]))
                                                 for x in coco_results(poses, 139)]
    assert all(CocoResultBody.model_validate(x) for x in r.json())
    ski = (images / "ski.jpg").read_bytes()  # a JPEG, sent as bytes of unknown type
    r = post(client, ski, "application/octet-stream")
    assert r.status_code == 200 and same_people(r.json()["people"], est.predict(images / "ski.jpg"))


def test_threshold_scales_and_flip(client, est, images, dance):
    full = post(client, dance).json()["people"]
    some = post(client, dance, threshold=0.5).json()["people"]
    kept = [k for p in some for k in p["keypoints"] if k is not None]
    assert kept and all(k[2] >= 0.5 for k in kept)
    assert len(kept) < sum(k is not None for p in full for k in p["keypoints"])
    r = post(client, dance, flip="true")
    assert r.status_code == 200
    flipped = type(est)(est.net, device="cpu", flip=True)
    assert same_people(r.json()["people"], flipped.predict(images / "p3_dance.png"))
    r = client.post("/v1/poses?scales=1&scales=0.5", content=dance, headers={"content-type": "image/png"})
    assert r.status_code == 200 and len(r.json()["people"]) == 3


def test_render_draws_the_people(client, images, dance):
    r = post(client, dance, path="/v1/poses/render")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.headers["x-people"] == "3"
    drawn = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
    original = cv2.imread(str(images / "p3_dance.png"))
    assert drawn.shape == original.shape and (drawn != original).any()
    ski = (images / "ski.jpg").read_bytes()
    r = post(client, ski, "image/jpeg", path="/v1/poses/render")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg" and r.content[:2] == b"\xff\xd8"
    r = post(client, ski, "image/jpeg", path="/v1/poses/render", image_format="png")
    assert r.headers["content-type"] == "image/png" and r.content[:4] == b"\x89PNG"


def test_controlnet_style_and_format_are_the_librarys(client, est, images, dance):
    """style=controlnet: ControlNet's pose image (tests/test_controlnet.py compares the library with the
    reference implementation); format=controlnet: its pose JSON; both exactly pafpose.controlnet.annotate's."""
    from pafpose import controlnet
    from pafpose.serve.schemas import ControlNetBody

    photo = cv2.imread(str(images / "p3_dance.png"))
    for query, detect, image in (({}, 512, 512), ({"detect_resolution": 384, "image_resolution": 640}, 384, 640)):
        result = controlnet.annotate(est, photo, detect, image)
        r = post(client, dance, path="/v1/poses/render", style="controlnet", **query)
        assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.headers["x-people"] == "3"
        assert np.array_equal(cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR), result.image)
        r = post(client, dance, format="controlnet", **{k: v for k, v in query.items() if k == "detect_resolution"})
        assert r.status_code == 200 and r.json() == result.json
        ControlNetBody.model_validate(r.json())
    ski = (images / "ski.jpg").read_bytes()  # a JPEG upload still gets a PNG pose image unless asked
    r = post(client, ski, "image/jpeg", path="/v1/poses/render", style="controlnet")
    assert r.headers["content-type"] == "image/png"
    r = post(client, ski, "image/jpeg", path="/v1/poses/render", style="controlnet", image_format="jpeg")
    assert r.headers["content-type"] == "image/jpeg"
    r = post(client, dance, format="controlnet", threshold=0.0)  # the weakest keypoints too
    assert r.status_code == 200 and len(r.json()["people"]) == 3
    for path, query, name in (("/v1/poses/render", "style=sdxl", "style"),
                              ("/v1/poses/render", "style=controlnet&detect_resolution=32", "detect_resolution"),
                              ("/v1/poses/render", "style=controlnet&image_resolution=4096", "image_resolution"),
                              ("/v1/poses", "format=controlnet&detect_resolution=nan", "detect_resolution")):
        r = client.post(f"{path}?{query}", content=dance, headers={"content-type": "image/png"})
        assert r.status_code == 400 and f"'{name}'" in r.json()["detail"], (query, r.text)
    r = post(client, dance, format="controlnet", session="cam1")
    assert r.status_code == 400 and "no person ids" in r.json()["detail"]
    wide = cv2.imencode(".png", np.zeros((64, 2048, 3), np.uint8))[1].tobytes()  # 32:1 at 2048: a 1.6 Gpixel canvas
    r = post(client, wide, path="/v1/poses/render", style="controlnet", detect_resolution=2048)
    assert r.status_code == 400 and "Mpixel" in r.json()["detail"]


def test_huge_images_are_shrunk_and_answered_in_their_own_pixels(client, est, images):
    small = cv2.imread(str(images / "p3_dance.png"))
    huge = cv2.resize(small, (6400, 3600), interpolation=cv2.INTER_CUBIC)  # 23 Mpixel, above max_side (2048)
    jpeg = cv2.imencode(".jpg", huge, [cv2.IMWRITE_JPEG_QUALITY, 80])[1]
    r = post(client, jpeg.tobytes(), "image/jpeg")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["width"], body["height"]) == (6400, 3600) and len(body["people"]) == 3
    ref = np.array([p.keypoints for p in est.predict(small)])
    ref[..., :2] = (ref[..., :2] + 0.5) * 5 - 0.5  # the small image's people in the huge image's pixels
    got = as_array(body["people"])
    assert np.allclose(got[..., :2], ref[..., :2], atol=5 * 3, equal_nan=True)  # within 3 px of the small image's


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_bad_inputs_get_clear_errors(client, est, images, dance):
    jpeg = (images / "ski.jpg").read_bytes()
    cases = [
        ({"files": {"image": ("notes.txt", b"just some text\n", "text/plain")}}, 415, "not an image"),
        ({"content": b"just some text\n", "headers": {"content-type": "text/plain"}}, 415, "multipart/form-data"),
        ({"content": jpeg[: len(jpeg) // 2], "headers": {"content-type": "image/jpeg"}}, 422, "truncated"),
        ({"content": b"", "headers": {"content-type": "image/jpeg"}}, 400, "empty upload"),
        ({"files": {"image": ("empty.png", b"", "image/png")}}, 400, "empty upload"),
        ({"files": {"a": ("a.png", dance, "image/png"), "b": ("b.png", dance, "image/png")}}, 400, "Too many files"),
        ({"files": {"image": (None, b"a text field, not a file")}}, 400, "no file"),
        ({"content": PNG_80000_X_60000, "headers": {"content-type": "image/png"}}, 413, "4800.0 Mpixel, above"),
        ({"content": b"--x\r\nbroken", "headers": {"content-type": "multipart/form-data"}}, 400, "boundary"),
    ]
    for kwargs, status, words in cases:
        r = client.post("/v1/poses", **kwargs)
        assert r.status_code == status and words in r.json()["detail"], (kwargs.keys(), r.status_code, r.text)
    for query, name in (("threshold=2", "threshold"), ("threshold=x", "threshold"), ("scales=0", "scales"),
                        ("scales=1&scales=1&scales=1&scales=1&scales=1", "scales"), ("flip=maybe", "flip"),
                        ("format=xml", "format"), ("image_id=-1", "image_id")):
        r = client.post(f"/v1/poses?{query}", content=dance, headers={"content-type": "image/png"})
        assert r.status_code == 400 and f"'{name}'" in r.json()["detail"], (query, r.text)
    r = client.post("/v1/poses/render?image_format=gif", content=dance, headers={"content-type": "image/png"})
    assert r.status_code == 400 and "image_format" in r.json()["detail"]
    assert client.get("/v1/poses").status_code == 405 and client.get("/v2/poses").status_code == 404
    small = TestClient(create_app(est, ServeSettings(max_upload_bytes=100_000)), base_url=LOCAL)
    for kwargs in ({"content": dance, "headers": {"content-type": "image/png"}},
                   {"files": {"image": ("p3_dance.png", dance, "image/png")}}):
        r = small.post("/v1/poses", **kwargs)
        assert r.status_code == 413 and "the limit is 100000 bytes" in r.json()["detail"]
    r = small.post("/v1/poses", content=iter([dance[:60_000], dance[60_000:120_000]]),
                   headers={"content-type": "image/png"})  # chunked: no length declared, cut off while reading
    assert r.status_code == 413 and "more than 100000 bytes" in r.json()["detail"]
    assert client.get("/healthz").json()["status"] == "ok"  # and the server goes on


def test_slow_requests_time_out_with_504_and_a_full_queue_is_503(est, dance):
    with TestClient(create_app(est, ServeSettings(timeout_s=0.01)), base_url=LOCAL) as slow:
        r = slow.post("/v1/poses", content=dance, headers={"content-type": "image/png"})
        assert r.status_code == 504 and "no result within 0.01 s" in r.json()["detail"]
    app = create_app(est, ServeSettings(max_queue=1))

    def busy(key, item):
        raise BusyError("server busy: 1 requests are waiting for the network; retry later")

    app.state.service.batcher.submit = busy
    r = TestClient(app, base_url=LOCAL).post("/v1/poses", content=dance, headers={"content-type": "image/png"})
    assert r.status_code == 503 and r.headers["retry-after"] == "1" and "busy" in r.json()["detail"]


def test_requests_batched_together_get_what_they_get_alone(est, images):
    """Same-size images share one network call; other sizes run apart; nothing depends on the company."""
    dance = cv2.imread(str(images / "p3_dance.png"))
    group = [dance, dance[:, ::-1].copy(), cv2.convertScaleAbs(dance, alpha=0.8, beta=10)]  # 1280 x 720 each
    others = [cv2.imread(str(images / name)) for name in ("ski.jpg", "apink1.jpg")]
    service = PoseService(est, ServeSettings(max_batch=8, batch_wait_ms=300))

    async def all_at_once():
        return await asyncio.gather(*(service.predict(img, (1.0,), False) for img in group + others))

    try:
        outcomes = asyncio.run(all_at_once())
    finally:
        service.close()
    assert [o.batch_size for o in outcomes] == [3, 3, 3, 1, 1]
    for img, outcome in zip(group + others, outcomes, strict=True):
        alone = est.predict(img)
        assert len(outcome.value) == len(alone)
        for a, b in zip(outcome.value, alone, strict=True):
            assert np.allclose(a.keypoints, b.keypoints, atol=1e-3, equal_nan=True) and abs(a.score - b.score) < 1e-5


def test_concurrent_clients_through_the_app(client, est, images, dance):
    """Threads posting different images at once each get their own image's people."""
    ski = (images / "ski.jpg").read_bytes()
    expected = {"dance": post(client, dance).json()["people"], "ski": post(client, ski, "image/jpeg").json()["people"]}
    results, errors = [], []

    def worker(name, data, kind):
        try:
            for _ in range(2):
                results.append((name, post(client, data, kind).json()["people"]))
        except Exception as err:  # reported below, with the thread's name
            errors.append(f"{name}: {err!r}")

    threads = [threading.Thread(target=worker, args=args) for args in
               [("dance", dance, "image/png"), ("ski", ski, "image/jpeg")] * 3]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and len(results) == 12, (errors, time.perf_counter() - start)
    for name, people in results:
        assert len(people) == len(expected[name])
        assert np.allclose(as_array(people), as_array(expected[name]), atol=0.011, equal_nan=True)


def test_models_health_docs_and_page(client):
    models = client.get("/v1/models").json()["models"]
    assert models[0]["name"] == MODEL and models[0]["skeleton"] == "coco18" and models[0]["license"]
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["queued"] == 0 and health["requests"] >= health["batches"] > 0
    spec = client.get("/openapi.json").json()
    assert {"/v1/poses", "/v1/poses/render", "/v1/models", "/healthz"} <= set(spec["paths"])
    assert "multipart/form-data" in spec["paths"]["/v1/poses"]["post"]["requestBody"]["content"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text
    assert "cdn." not in docs.text and client.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "getUserMedia" in html and "/v1/poses" in html and 'type="file"' in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)  # nothing from other hosts
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp and "unsafe-inline" not in csp
    assert csp.count("sha256-") == 2  # the page's one script and one style, by hash


def test_a_host_the_server_is_not_meant_for_gets_400(client, est, dance):
    """DNS rebinding: a page whose own name now points at 127.0.0.1 sends its name as Host."""
    for host in ("evil.example", "evil.example:8000", "127.0.0.1.evil.example", "[::2]:8000", "", "a b"):
        r = client.get("/v1/models", headers={"host": host})
        assert r.status_code == 400 and "not a name this server answers to" in r.json()["detail"], (host, r.text)
        r = post(client, dance, headers={"host": host})
        assert r.status_code == 400, host
    for host in ("127.0.0.1:8000", "localhost", "LOCALHOST:1234", "[::1]:8000", "127.0.0.1"):
        assert client.get("/v1/models", headers={"host": host}).status_code == 200, host
    with TestClient(create_app(est, ServeSettings(allowed_hosts=("pose.example", "*.lan"))),
                    base_url="http://pose.example") as named:
        assert named.get("/healthz").status_code == 200
        assert named.get("/healthz", headers={"host": "a.b.lan:80"}).status_code == 200
        assert named.get("/healthz", headers={"host": "127.0.0.1:8000"}).status_code == 400  # not listed
    with TestClient(create_app(est, ServeSettings(allowed_hosts=("*",))), base_url="http://anything.example") as any_:
        assert any_.get("/healthz").status_code == 200


def test_cross_origin_posts_get_403_same_origin_and_no_origin_work(client, dance):
    """A page on another site can post a multipart form without a preflight: refused before any work."""
    form = {"files": {"image": ("p3_dance.png", dance, "image/png")}}
    refused = [{"origin": "http://evil.example"}, {"origin": "null"}, {"origin": "http://127.0.0.1:9999"},
               {"origin": "http://localhost:8000"}, {"origin": "file://"},
               {"sec-fetch-site": "cross-site"}, {"sec-fetch-site": "same-site"}]
    before = client.get("/healthz").json()["requests"]
    for headers in refused:
        for path in ("/v1/poses", "/v1/poses/render"):
            r = client.post(path, headers=headers, **form)
            assert r.status_code == 403 and "cross-origin request refused" in r.json()["detail"], (headers, r.text)
    assert client.get("/healthz").json()["requests"] == before  # none of them reached the network
    for headers in ({}, {"origin": "http://127.0.0.1:8000", "sec-fetch-site": "same-origin"},
                    {"origin": "HTTP://127.0.0.1:8000"}, {"sec-fetch-site": "none"}):
        r = client.post("/v1/poses", headers=headers, **form)
        assert r.status_code == 200 and len(r.json()["people"]) == 3, (headers, r.text)
    r = client.get("/", headers={"origin": "http://evil.example", "sec-fetch-site": "cross-site"})
    assert r.status_code == 200  # reading the page is no work: only state-changing methods are checked
    r = client.post("/v1/poses", headers={"origin": "http://127.0.0.1"}, **form)  # port 80 is not 8000
    assert r.status_code == 403


def test_the_service_returns_freed_memory_and_results_stay_exactly_predicts(est, images, monkeypatch):
    """After network calls the service trims malloc's free memory (pafpose.serve.memory);
    the people are Estimator.predict's to the bit, for images of several sizes."""
    import pafpose.serve.service as service_module
    from pafpose.serve.memory import Releaser

    trims = []

    class Counting(Releaser):
        def __call__(self):
            trims.append(self.interval_s)
            return super().__call__()

    monkeypatch.setattr(service_module, "Releaser", Counting)
    service = PoseService(est, ServeSettings(max_batch=1))
    photos = [cv2.imread(str(images / name)) for name in ("ski.jpg", "apink1.jpg", "p3_dance.png")]
    photos.append(cv2.resize(photos[0], (333, 517)))
    try:
        outcomes = [asyncio.run(service.predict(img, est.scales, est.flip)) for img in photos]
    finally:
        service.close()
    assert len(trims) == len(photos)
    assert sum(len(o.value) for o in outcomes) >= 5  # people were found, so there is something to compare
    for img, outcome in zip(photos, outcomes, strict=True):
        alone = est.predict(img)
        assert len(outcome.value) == len(alone)
        for a, b in zip(outcome.value, alone, strict=True):
            assert np.array_equal(a.keypoints, b.keypoints, equal_nan=True) and a.score == b.score


def test_a_session_keeps_track_ids_across_requests(client, dance, monkeypatch):
    from pafpose.tracking import Tracker

    headers = {"content-type": "image/png"}
    given, real = [], Tracker._looks

    def spy(self, people, points, image, size=None):  # what people wear is read from the upload
        given.append((None if image is None else image.shape[:2], size))
        return real(self, people, points, image, size)

    monkeypatch.setattr(Tracker, "_looks", spy)
    seen = []
    for _ in range(3):
        r = client.post("/v1/poses?session=cam-1", content=dance, headers=headers)
        assert r.status_code == 200, r.text
        seen.append(sorted(p["track_id"] for p in r.json()["people"]))
    assert seen == [[0, 1, 2]] * 3
    assert len(given) == 3 and all(shape is not None and size is not None for shape, size in given)
    other = client.post("/v1/poses?session=cam-2&format=openpose", content=dance, headers=headers).json()
    assert sorted(p["person_id"] for p in other["people"]) == [[0], [1], [2]]  # its own ids, OpenPose's field
    plain = client.post("/v1/poses", content=dance, headers=headers).json()
    assert all(p["track_id"] is None for p in plain["people"])
    r = client.post("/v1/poses?session=no%20spaces%21", content=dance, headers=headers)
    assert r.status_code in (400, 422) and "session" in r.text


def test_sessions_are_bounded_in_number_and_time():
    from pafpose.serve.sessions import Sessions

    sessions = Sessions(max_sessions=2, ttl_s=10.0)
    person = Pose(np.ones((18, 3)) * 50, 0.9, "coco18")
    assert sessions.update("a", [person], now=0.0)[0].track_id == 0
    sessions.update("b", [], now=1.0)
    sessions.update("c", [], now=2.0)  # a, the least recently used, goes
    assert len(sessions) == 2
    other = Pose(np.ones((18, 3)) * 300, 0.9, "coco18")
    assert sessions.update("a", [person, other], now=3.0)[1].track_id == 1  # a new tracker: ids from 0 again
    sessions.update("d", [], now=20.0)  # every other session unused for over 10 s: forgotten
    assert len(sessions) == 1


def test_a_whole_body_server_answers_hands_faces_and_feet(client, images):
    """Issue 23: a server started with --parts finds hands, faces and feet for every format and ControlNet mode;
    a body-only server refuses ControlNet's hand and face modes in one line."""
    from pafpose import controlnet
    from pafpose.predict import Estimator

    handsup = (images / "handsup1.jpg").read_bytes()
    r = post(client, handsup, "image/jpeg", format="controlnet", mode="openpose_full")
    assert r.status_code == 400 and "--parts hands face" in r.json()["detail"]
    r = post(client, handsup, "image/jpeg", path="/v1/poses/render", style="controlnet", mode="openpose_hand")
    assert r.status_code == 400 and "--parts hands" in r.json()["detail"]
    est = Estimator(MODEL, device="cpu", parts=("wholebody",))
    with TestClient(create_app(est, ServeSettings(), model_name=MODEL), base_url=LOCAL) as whole:
        r = post(whole, handsup, "image/jpeg")
        assert r.status_code == 200
        people = r.json()["people"]
        assert {len(v) for p in people for v in p["parts"].values()} <= {70, 21, 6}
        assert sum(any(k is not None for k in p["parts"]["hand_left"]) for p in people) >= 1
        assert all(p["parts"]["feet"][1] is None for p in people)  # no small toe, ever
        r = post(whole, handsup, "image/jpeg", format="coco")  # COCO-WholeBody's results
        assert [len(x["lefthand_kpts"]) for x in r.json()] == [63] * len(people)
        r = post(whole, handsup, "image/jpeg", format="openpose")
        assert [len(p["hand_right_keypoints_2d"]) for p in r.json()["people"]] == [63] * len(people)
        photo = cv2.imread(str(images / "handsup1.jpg"))
        result = controlnet.annotate(est, photo, mode="openpose_full")
        r = post(whole, handsup, "image/jpeg", format="controlnet", mode="openpose_full")
        assert r.status_code == 200 and r.json() == result.json
        assert any(p["hand_left_keypoints_2d"] for p in r.json()["people"])
        r = post(whole, handsup, "image/jpeg", path="/v1/poses/render", style="controlnet", mode="openpose_full")
        assert np.array_equal(cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR), result.image)


def test_a_session_lists_the_people_a_sessionless_request_does(client, dance):
    """Everyone under the threshold: null keypoints, but the people stay, with or without a session."""
    headers = {"content-type": "image/png"}
    plain = client.post("/v1/poses?threshold=1", content=dance, headers=headers).json()["people"]
    assert plain and all(k is None for p in plain for k in p["keypoints"])
    tracked = client.post("/v1/poses?threshold=1&session=cam-empty", content=dance, headers=headers).json()["people"]
    assert [p["keypoints"] for p in tracked] == [p["keypoints"] for p in plain]
    assert [p["score"] for p in tracked] == [p["score"] for p in plain]
    assert all(p["track_id"] is None for p in tracked)  # nothing to track them by
    some = client.post("/v1/poses?threshold=0.5&session=cam-some", content=dance, headers=headers).json()["people"]
    assert len(some) == len(plain)


def test_a_session_keeps_people_without_a_keypoint_in_their_place():
    from pafpose.serve.sessions import Sessions

    seen = Pose(np.ones((18, 3)) * 50, 0.9, "coco18")
    unseen = Pose(np.c_[np.full((18, 2), np.nan), np.zeros(18)], 0.8, "coco18")
    out = Sessions().update("a", [unseen, seen, unseen], now=0.0)
    assert [p.score for p in out] == [0.8, 0.9, 0.8] and [p.track_id for p in out] == [None, 0, None]


def test_a_session_keeps_half_found_people_in_their_place_and_pieces_in_their_person():
    """A piece of a tracked person given between two people (merged into that person: it does
    not come back apart), and a person found in one coordinate only (nothing to track by, given
    back as it came): each comes back where it was given, as the tracker answered it."""
    from pafpose.serve.sessions import Sessions

    rng = np.random.default_rng(0)
    shape = rng.uniform(-60, 60, (18, 2))

    def person(x, keep=None):
        k = np.ones((18, 3))
        k[:, :2] = shape + np.array([x, 200.0])
        if keep is not None:
            k[np.setdiff1d(np.arange(18), keep)] = (np.nan, np.nan, 0.0)
        return Pose(k, 0.9, "coco18")

    sessions = Sessions()
    for t in range(3):
        sessions.update("cam", [person(100), person(400)], now=t / 30)
    piece = person(100, keep=[0, 1, 2, 3, 4, 14, 15, 16, 17])
    half = person(250)
    half.keypoints[:, 1] = np.nan
    out = sessions.update("cam", [person(100), piece, half, person(400)], now=3 / 30)
    counts = [int(np.isfinite(p.keypoints[:, 0]).sum()) for p in out]
    assert counts == [18, 18, 18] and [p.track_id for p in out] == [0, None, 1]
    assert np.isnan(out[1].keypoints[:, 1]).all()
    out = sessions.update("cam", [piece, person(400), half, person(100, keep=list(range(2, 14)))],
                          now=4 / 30)  # the person's head first, their body last: one person, in the body's place
    assert [p.track_id for p in out] == [1, None, 0]
    assert int(np.isfinite(out[2].keypoints[:, 0]).sum()) == 18
