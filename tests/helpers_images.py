"""Real image files of every extension pafpose takes (test_images, test_io, test_predict_cli)."""

import io
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from pafpose.images import FORMAT_EXTENSIONS

# What each extension's file is written as, when it is not its format's Pillow writer:
# .dib as a BMP with its file header (Windows' and OpenCV's .dib; Pillow's DIB has none).
_WRITE_AS = {".dib": "BMP"}
_CODESTREAM = (".j2k", ".j2c", ".jpc")  # bare JPEG 2000 codestreams; the others are JP2 boxes
_SEQUENCES = (".mpo", ".apng", ".avifs")  # written with two frames (the reader takes the first)


def encode(bgr: np.ndarray, fmt: str, ext: str) -> bytes:
    """``bgr`` as a file of Pillow format ``fmt`` named ``*ext``: by Pillow, else by OpenCV.

    Raises:
        OSError, KeyError, ValueError: neither Pillow nor OpenCV can write it here (no AVIF
            or OpenJPEG plug-in, say).
    """
    rgb = Image.fromarray(np.ascontiguousarray(bgr[:, :, ::-1]))
    image = {".pbm": lambda: rgb.convert("1"), ".pgm": lambda: rgb.convert("L"),
             ".pfm": lambda: rgb.convert("L").point(lambda v: v / 255, "F")}.get(ext, lambda: rgb)()
    options: dict = {"no_jp2": True} if ext in _CODESTREAM else {}
    if ext in _SEQUENCES:
        options.update(save_all=True, append_images=[image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)])
    buf = io.BytesIO()
    try:
        image.save(buf, format=_WRITE_AS.get(ext, fmt), **options)
        return buf.getvalue()
    except (OSError, KeyError, ValueError) as pil_error:  # no Pillow writer for it here: OpenCV's
        try:
            ok, data = cv2.imencode(ext if ext not in _CODESTREAM else ".jp2", bgr)
        except cv2.error:
            ok = False
        if not ok:
            raise pil_error
        return data.tobytes()


def image_of_every_extension(folder: Path, bgr: np.ndarray) -> tuple[dict[str, str], dict[str, str]]:
    """Write ``bgr`` into ``folder`` once per image extension, as a real file of its format,
    plus a plain JPEG named ``.mpo`` (what a camera that writes MPO may leave) and a GIF named
    in upper case.

    Returns:
        ``({file name: the format Pillow should find in it}, {format: why it could not be
        written here})``; files are named ``FORMAT_EXT.EXT`` (``jpeg_jpe.jpe``), so their
        stems differ.
    """
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, str] = {}
    unwritable: dict[str, str] = {}
    extras = {"JPEG": [("jpeg_named_mpo", ".mpo")], "GIF": [("upper_case", ".GIF")]}
    for fmt, extensions in FORMAT_EXTENSIONS.items():
        for stem, ext in [(f"{fmt.lower()}_{e[1:]}", e) for e in extensions] + extras.get(fmt, []):
            try:
                data = encode(bgr, fmt, ext.lower() if stem != "jpeg_named_mpo" else ".jpg")
            except (OSError, KeyError, ValueError) as err:
                unwritable[fmt] = f"neither Pillow nor OpenCV can write {fmt} here ({type(err).__name__}: {err})"
                continue
            (folder / f"{stem}{ext}").write_bytes(data)
            written[f"{stem}{ext}"] = _WRITE_AS.get(ext, fmt)
    return written, unwritable
