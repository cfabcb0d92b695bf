"""The one image reader (pafpose.images): formats, bounded memory, files that are not files,
OS errors, and a fuzzing run; every failure is one line naming the file."""

import io
import os
import resource
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from pafpose import PafposeError
from pafpose.images import ImageError, decode_image, open_image, read_image, to_bgr8
from pafpose.serve.images import decode_upload


def photo(h=120, w=160):
    y, x = np.mgrid[0:h, 0:w]
    return np.dstack([x * 255 // w, y * 255 // h, (x + y) % 256]).astype(np.uint8)


def png_bomb(w, h):
    """A valid black PNG of w x h that is small on disk (zlib of zero rows)."""
    import struct

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    comp = zlib.compressobj(9)
    row = b"\x00" * (1 + 3 * w)
    body = b"".join(comp.compress(row * 100) for _ in range(h // 100)) + comp.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", body) + chunk(b"IEND", b""))


def test_mpo_and_float_tiff_are_read_everywhere_alike(tmp_path):
    img = photo()
    # MPO: what many cameras write (a JPEG with a second picture after it)
    first = Image.fromarray(img[:, :, ::-1])
    first.save(tmp_path / "camera.mpo", format="MPO", save_all=True, append_images=[first.rotate(90)], quality=95)
    # float TIFF, 0..1
    ok, buf = cv2.imencode(".tiff", img.astype(np.float32) / 255)
    assert ok
    (tmp_path / "float.tiff").write_bytes(buf.tobytes())
    for name, fmt in (("camera.mpo", "MPO"), ("float.tiff", "TIFF")):
        data = (tmp_path / name).read_bytes()
        by_path = read_image(tmp_path / name)
        upload = decode_upload(data)  # the server reads what `pafpose predict` reads, as it reads it
        assert upload.format == fmt and np.array_equal(upload.image, by_path)
        assert by_path.shape == img.shape and np.abs(by_path.astype(int) - img).mean() < 3


def test_pixel_budget_refuses_or_reduces_before_decoding(tmp_path):
    bomb = png_bomb(12_000, 12_000)  # 144 Mpixel, 432 MB decoded; a few hundred KB on disk
    (tmp_path / "bomb.png").write_bytes(bomb)
    start = time.perf_counter()
    with pytest.raises(ImageError, match=r"bomb\.png: image too large: 12000 x 12000 = 144\.0 Mpixel") as info:
        read_image(tmp_path / "bomb.png")
    assert info.value.problem == "too-large" and time.perf_counter() - start < 1.0
    # a JPEG above the budget decodes directly at a reduced size, and says the original's
    big = cv2.resize(photo(), (1600, 1200))
    cv2.imwrite(str(tmp_path / "big.jpg"), big)
    got = open_image(tmp_path / "big.jpg", max_pixels=600_000)
    assert got.image.shape == (600, 800, 3) and (got.width, got.height) == (1600, 1200) and got.scale == (0.5, 0.5)
    with pytest.raises(ImageError, match="even at 1/8 size"):
        open_image(tmp_path / "big.jpg", max_pixels=20_000)


def test_files_that_are_not_regular_files_are_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "pipe.jpg")  # opening a FIFO for reading blocks until a writer comes: never
    (tmp_path / "folder.png").mkdir()
    for name, message in (("pipe.jpg", "not a regular file"), ("folder.png", "a folder"), ("gone.jpg", "no such file")):
        with pytest.raises(ImageError, match=message) as info:
            read_image(tmp_path / name)
        assert str(info.value).startswith(str(tmp_path / name)) and "\n" not in str(info.value)


def test_an_os_error_is_that_files_error(tmp_path, monkeypatch):
    cv2.imwrite(str(tmp_path / "locked.png"), photo())
    real_open = os.open

    def refuse(path, *args, **kwargs):
        if str(path).endswith("locked.png"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(ImageError, match=r"locked\.png: can't be read \(Permission denied\)"):
        read_image(tmp_path / "locked.png")


def test_arrays_and_pil_images_keep_their_range():
    img = photo()
    assert np.array_equal(to_bgr8(img.astype(np.float64)), img)  # floats in 0..255
    assert np.array_equal(to_bgr8(img.astype(np.float32) / 255), img)  # floats in 0..1
    assert np.array_equal(to_bgr8(img.astype(np.int64)), img)  # Python ints
    gray16 = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257
    from pafpose.images import as_bgr

    pil16 = Image.fromarray(gray16)  # mode I;16
    assert pil16.mode.startswith("I")
    assert np.array_equal(as_bgr(pil16)[:, :, 0], cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))
    with pytest.raises(PafposeError, match=r"0\.\.255 or 0\.\.65535"):
        to_bgr8(np.full((4, 4), -3))
    with pytest.raises(PafposeError, match="expected an image"):
        as_bgr(object())


def test_reader_fuzzing_in_a_bounded_child():
    """Random and damaged files of every format: an image within the budget, or an ImageError;
    never another exception, a crash or unbounded memory (the child has a 3 GB address space)."""
    code = textwrap.dedent('''
        import io, sys, cv2, numpy as np
        from hypothesis import HealthCheck, given, settings, strategies as st
        from pafpose.images import ImageError, decode_image

        rng = np.random.default_rng(0)
        img = rng.integers(0, 255, (37, 53, 3), dtype=np.uint8)
        seeds = [cv2.imencode(ext, img)[1].tobytes() for ext in (".png", ".jpg", ".bmp", ".tiff", ".webp", ".ppm")]
        seeds.append(cv2.imencode(".tiff", img.astype(np.float32) / 255)[1].tobytes())
        seeds.append(cv2.imencode(".png", (img.astype(np.uint16) * 257))[1].tobytes())

        @st.composite
        def damaged(draw):
            data = bytearray(draw(st.sampled_from(seeds)))
            for _ in range(draw(st.integers(0, 6))):
                i = draw(st.integers(0, len(data) - 1))
                data[i] = draw(st.integers(0, 255))
            if draw(st.booleans()):
                data = data[: draw(st.integers(0, len(data)))]
            if draw(st.booleans()):  # a size field made huge: the header says gigapixels
                i = draw(st.integers(0, min(40, len(data) - 4))) if len(data) > 4 else 0
                data[i : i + 4] = b"\\x7f\\xff\\xff\\xff"
            return bytes(data)

        @settings(max_examples=int(sys.argv[1]), deadline=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(st.one_of(damaged(), st.binary(max_size=2000)))
        def fuzz(data):
            try:
                got = decode_image(data, max_pixels=4_000_000)
            except ImageError as err:
                assert "\\n" not in str(err)
                return
            a = got.image
            assert a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3 and a.shape[0] * a.shape[1] <= 4_000_000

        fuzz()
        print("fuzzed")
    ''')

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    r = subprocess.run([sys.executable, "-c", code, "1500"], capture_output=True, text=True, timeout=600,
                       preexec_fn=limit)
    assert r.returncode == 0 and "fuzzed" in r.stdout, r.stderr[-3000:]


def test_jpeg_reduction_keeps_keypoints_in_the_files_pixels(tmp_path, monkeypatch, shared):
    """A JPEG too large to decode whole is read at 1/2 size; the people come back in its pixels."""
    import pafpose.predict as predict_module
    from pafpose.images import open_image as real_open_image

    monkeypatch.setenv("PAFPOSE_WEIGHTS_PATH", str(shared / "weights"))
    est = predict_module.Estimator(device="cpu", height=256)
    dance = cv2.imread(str(shared / "images" / "p3_dance.png"))
    h, w = dance.shape[:2]
    cv2.imwrite(str(tmp_path / "big.jpg"), cv2.resize(dance, (2 * w, 2 * h), interpolation=cv2.INTER_CUBIC),
                [cv2.IMWRITE_JPEG_QUALITY, 95])
    monkeypatch.setattr(predict_module, "open_image", lambda p: real_open_image(p, max_pixels=w * h))
    big = est.predict(tmp_path / "big.jpg")
    small = est.predict(dance)
    assert len(big) == len(small) == 3
    for a in big:  # each person of the reduced read, at twice the coordinates of the original photo's
        b = min(small, key=lambda p: np.nanmean(np.abs(p.keypoints[:, :2] * 2 + 0.5 - a.keypoints[:, :2])))
        both = np.isfinite(a.keypoints[:, 0]) & np.isfinite(b.keypoints[:, 0])
        assert np.median(np.abs(a.keypoints[both, :2] - (b.keypoints[both, :2] * 2 + 0.5))) < 6


def test_decode_image_refuses_empty_and_foreign_data():
    with pytest.raises(ImageError) as info:
        decode_image(b"")
    assert info.value.problem == "empty"
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="ICO")
    with pytest.raises(ImageError, match="ICO images are not supported") as info:
        decode_image(buf.getvalue())
    assert info.value.problem == "unsupported"


# The brief of issue 22: a file of each of these, in a folder, is an image.
NAMED_IN_THE_ISSUE = (".jpg", ".jpeg", ".jpe", ".jfif", ".mpo", ".png", ".webp", ".bmp", ".dib", ".tif", ".tiff",
                      ".gif", ".ppm", ".pgm", ".pbm", ".pnm", ".jp2", ".j2k", ".jpx", ".jpf", ".avif")


def test_every_image_extension_names_a_format_the_reader_takes():
    import pafpose.io
    from pafpose.images import FORMAT_EXTENSIONS, FORMATS, IMAGE_EXTENSIONS

    assert pafpose.io.IMAGE_EXTENSIONS is IMAGE_EXTENSIONS  # one list, owned by the reader
    assert tuple(FORMAT_EXTENSIONS) == FORMATS
    assert IMAGE_EXTENSIONS == tuple(e for f in FORMATS for e in FORMAT_EXTENSIONS[f])
    assert len(set(IMAGE_EXTENSIONS)) == len(IMAGE_EXTENSIONS)
    assert all(e.startswith(".") and e == e.lower() for e in IMAGE_EXTENSIONS)
    assert set(NAMED_IN_THE_ISSUE) <= set(IMAGE_EXTENSIONS)
    assert not set(IMAGE_EXTENSIONS) & set(pafpose.io.VIDEO_EXTENSIONS)
    # Pillow knows each extension as that format (.dib: Pillow's is a headerless DIB; ours is a
    # BMP with its file header, as Windows and OpenCV write it, read in test_predict_cli)...
    pillow = Image.registered_extensions()
    plugins = set(pillow.values())  # older Pillows have no AVIF plug-in: nothing to cross-check
    assert set(FORMATS) - plugins <= {"AVIF"}
    ours = {e: f for f in FORMATS for e in FORMAT_EXTENSIONS[f] if f in plugins}
    assert {e: pillow.get(e) for e in ours} == {**ours, ".dib": "DIB"}
    # ... and each extension Pillow registers for a format the reader takes is one of ours
    assert {e for e, f in pillow.items() if f in FORMATS} <= set(ours)
    # the documentation lists them (the command line's page)
    page = " ".join((Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text().split())
    assert f"`pafpose.images.IMAGE_EXTENSIONS`: `{' '.join(IMAGE_EXTENSIONS)}`" in page


def test_a_file_of_every_image_extension_is_read_as_its_format(tmp_path):
    from helpers_images import image_of_every_extension

    img = photo()
    written, unwritable = image_of_every_extension(tmp_path, img)
    for name, fmt in written.items():
        decoded = open_image(tmp_path / name)
        assert decoded.format == fmt, name
        assert decoded.image.shape == img.shape, name
        if name.endswith((".png", ".bmp", ".dib", ".tif", ".tiff", ".ppm", ".pnm")):  # lossless colour
            assert np.array_equal(decoded.image, img), name
    if unwritable:
        pytest.skip("every other extension is read; " + "; ".join(unwritable.values()))


def test_one_channel_float_tiff_is_read_as_gray_by_predict_and_serve(tmp_path):
    # OpenCV's colour read of a 1-channel float TIFF asserts; 3-channel float was always read
    gray = (np.mgrid[0:60, 0:80][1] / 80).astype(np.float32)
    assert cv2.imwrite(str(tmp_path / "gray.tiff"), gray)
    by_path = read_image(tmp_path / "gray.tiff")
    upload = decode_upload((tmp_path / "gray.tiff").read_bytes())
    assert by_path.shape == (60, 80, 3) and np.array_equal(upload.image, by_path)
    assert np.abs(by_path[:, :, 0].astype(int) - np.round(gray * 255)).max() <= 1
    assert np.array_equal(by_path[:, :, 0], by_path[:, :, 2])
