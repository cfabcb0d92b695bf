"""Uploads -> images for `pafpose serve`: what is decoded, what is refused before decoding, and why."""

import io
import struct
import time
import zlib

import cv2
import numpy as np
import pytest

from pafpose.images import _jpeg_complete
from pafpose.io import read_image
from pafpose.serve.images import decode_upload

Image = pytest.importorskip("PIL.Image", reason="Pillow is not installed (pafpose[serve] needs it)")


def photo(h=240, w=320, seed=0):
    """A smooth BGR test picture (compresses like a photo, unlike noise)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 16 + 1, w // 16 + 1, 3), dtype=np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def encode(img, ext, *params):
    ok, buf = cv2.imencode(ext, img, list(params))
    assert ok
    return buf.tobytes()


def png_file(w, h, idat):
    """A w x h RGB PNG with the compressed scanlines ``idat``."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def png_header(w, h):
    """A PNG that declares w x h pixels and holds almost nothing."""
    return png_file(w, h, zlib.compress(b"\x00" * 64))


@pytest.mark.parametrize("ext", [".png", ".jpg", ".webp", ".bmp", ".tiff"])
def test_decodes_as_read_image_does(ext, tmp_path):
    data = encode(photo(), ext)
    path = tmp_path / f"x{ext}"
    path.write_bytes(data)
    up = decode_upload(data)
    assert (up.width, up.height) == (320, 240) and up.scale == (1.0, 1.0)
    assert np.array_equal(up.image, read_image(path))  # the service sees what `pafpose predict` sees


def test_gray_alpha_and_16_bit_become_bgr8():
    for img in (cv2.cvtColor(photo(), cv2.COLOR_BGR2GRAY), cv2.cvtColor(photo(), cv2.COLOR_BGR2BGRA),
                photo().astype(np.uint16) * 257):
        up = decode_upload(encode(img, ".png"))
        assert up.image.shape == (240, 320, 3) and up.image.dtype == np.uint8


def test_refusals_say_why_with_their_status():
    cases = {
        b"": (400, "empty upload"),
        b"hello, this is text\n": (415, "not an image"),
        encode(photo(), ".jpg")[:-2]: (422, "truncated"),  # no end-of-image marker
        encode(photo(), ".jpg")[:3000]: (422, "truncated"),
        encode(photo(), ".png")[:2000]: (422, "corrupt"),
        png_header(100_000, 100_000): (413, "too large"),
    }
    ico = io.BytesIO()
    Image.fromarray(photo()[:, :, ::-1]).save(ico, "ICO")
    cases[ico.getvalue()] = (415, "ICO images are not supported")
    for data, (status, words) in cases.items():
        with pytest.raises(ValueError, match=words) as info:
            decode_upload(data)
        assert info.value.status == status, (data[:20], info.value)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow's, before our refusal
def test_decompression_bombs_are_refused_from_the_header():
    # 11000 x 11000 black pixels: a valid PNG of 360 KB that decodes to 363 MB; refused unread
    comp = zlib.compressobj(9)
    rows = (b"\x00" * (1 + 3 * 11_000)) * 100
    bomb = png_file(11_000, 11_000, b"".join(comp.compress(rows) for _ in range(110)) + comp.flush())
    assert len(bomb) < 400_000
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"11000 x 11000 = 121\.0 Mpixel, above the limit of 100\.0 Mpixel") as info:
        decode_upload(bomb)
    assert info.value.status == 413 and time.perf_counter() - start < 1.0
    # OpenCV's own limit, for a limit of ours above it
    with pytest.raises(ValueError, match=r"10000\.0 Mpixel, above the limit of 1073\.7 Mpixel \(OpenCV") as info:
        decode_upload(png_header(100_000, 100_000), max_pixels=10**12)
    assert info.value.status == 413


def test_large_images_are_shrunk_and_say_their_scale():
    big = cv2.resize(photo(), (5000, 3000), interpolation=cv2.INTER_CUBIC)
    for ext in (".jpg", ".png"):  # JPEG decodes at 1/4 size directly, PNG is decoded then shrunk
        up = decode_upload(encode(big, ext), max_side=1024)
        assert (up.width, up.height) == (5000, 3000)
        assert max(up.image.shape[:2]) == 1024
        assert up.scale == pytest.approx((1024 / 5000, 614 / 3000), rel=1e-3)
        small = cv2.resize(big, up.image.shape[1::-1], interpolation=cv2.INTER_AREA)
        assert np.abs(up.image.astype(int) - small).mean() < 3


def test_exif_orientation_is_applied_and_reported():
    img = photo(200, 400)
    for size, max_side in (((400, 200), 4096), ((4000, 2000), 1000)):  # as stored; the second decodes reduced
        pil = Image.fromarray(cv2.resize(img, size)[:, :, ::-1])
        exif = Image.Exif()
        exif[0x0112] = 6  # rotate 90 degrees clockwise to display
        buf = io.BytesIO()
        pil.save(buf, "JPEG", exif=exif.tobytes(), quality=90)
        up = decode_upload(buf.getvalue(), max_side=max_side)
        assert (up.width, up.height) == (size[1], size[0])  # upright: taller than wide
        assert up.image.shape[0] > up.image.shape[1]


def test_jpeg_structure_check():
    img = photo()
    assert _jpeg_complete(encode(img, ".jpg"))
    assert _jpeg_complete(encode(img, ".jpg") + b"trailing bytes after the image")
    progressive = encode(img, ".jpg", cv2.IMWRITE_JPEG_PROGRESSIVE, 1)
    restarts = encode(img, ".jpg", cv2.IMWRITE_JPEG_RST_INTERVAL, 2)
    assert b"\xff\xd0" in restarts
    for data in (progressive, restarts):
        assert _jpeg_complete(data)
        assert not any(_jpeg_complete(data[:n]) for n in range(2, len(data) - 1, 97))
