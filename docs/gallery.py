"""The gallery's pictures, made by pafpose itself from ../shared (`make docs` runs this before
MkDocs builds the site): each picture is what the command printed beside it in
docs/gallery.md writes, run here as a user runs it, only resized to the page.

    .venv/bin/python docs/gallery.py [--out docs/gallery] [--readme docs/assets/readme.jpg]

Needs ../shared (or PAFPOSE_SHARED) for the photos, the video and the weights; without it,
it says so and writes nothing (the site then builds without the gallery's pictures, and
says which are missing).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
EXE = shutil.which("pafpose") or str(Path(sys.executable).with_name("pafpose"))
WIDTH = 1000  # pixels of the widest picture on the page


def shared() -> Path | None:
    for candidate in (os.environ.get("PAFPOSE_SHARED"), REPO.parent / "shared"):
        if candidate and (Path(candidate) / "images").is_dir():
            return Path(candidate)
    return None


def run(*args: object, env: dict[str, str]) -> None:
    """One pafpose command, as a user types it; its failure stops the build with its message."""
    r = subprocess.run([EXE, *map(str, args)], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"gallery: pafpose {' '.join(map(str, args))} failed:\n{r.stderr.strip()}")


def fit(image: np.ndarray, width: int = WIDTH) -> np.ndarray:
    h, w = image.shape[:2]
    return image if w <= width else cv2.resize(image, (width, round(h * width / w)), interpolation=cv2.INTER_AREA)


def save(image: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, 85] if path.suffix == ".jpg" else []
    if not cv2.imwrite(str(path), image, params):
        raise SystemExit(f"gallery: can't write {path}")


def close_up(drawn: np.ndarray, people: list[dict]) -> np.ndarray:
    """The drawn photo cut around the hands and face of the person with the most of them found
    (of those, the nearest its middle): the one nearest the middle may have only a hand, a
    picture of a few pixels."""
    h, w = drawn.shape[:2]

    def points(person: dict) -> np.ndarray:
        flat = [person.get(k) or [] for k in ("hand_left_keypoints_2d", "hand_right_keypoints_2d",
                                             "face_keypoints_2d")]
        k = np.array([v for f in flat for v in f], dtype=float).reshape(-1, 3)
        return k[k[:, 2] > 0, :2]

    found = [(p, points(p)) for p in people]
    found = [(p, k) for p, k in found if len(k)]
    if not found:
        raise SystemExit("gallery: no hands or face found for the close-up")
    _, k = min(found, key=lambda pk: (-len(pk[1]), abs(pk[1][:, 0].mean() - w / 2)))
    (x0, y0), (x1, y1) = k.min(axis=0), k.max(axis=0)
    m = 0.25 * max(x1 - x0, y1 - y0)
    x0, y0, x1, y1 = (int(max(0, x0 - m)), int(max(0, y0 - m)), int(min(w, x1 + m)), int(min(h, y1 + m)))
    return fit(cv2.resize(drawn[y0:y1, x0:x1], None, fx=2.0, fy=2.0, interpolation=cv2.INTER_CUBIC), 800)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "gallery")
    ap.add_argument("--readme", type=Path, default=None, help="also the README's picture, here")
    args = ap.parse_args()
    data = shared()
    if data is None:
        print("gallery: ../shared not found (set PAFPOSE_SHARED): no pictures made", file=sys.stderr)
        return 0
    env = {**os.environ, "PAFPOSE_WEIGHTS_PATH": str(data / "weights")}
    dance, video = data / "images" / "p3_dance.png", data / "videos" / "street.avi"
    with tempfile.TemporaryDirectory(prefix="pafpose-gallery-") as tmp:
        t = Path(tmp)
        run("predict", dance, "--whole-body", "--save-images", "--out", t / "wb", env=env)
        drawn = cv2.imread(str(t / "wb" / "p3_dance_rendered.png"))
        people = json.loads((t / "wb" / "p3_dance_keypoints.json").read_text())["people"]
        save(fit(drawn), args.out / "whole-body.jpg")
        save(close_up(drawn, people), args.out / "close-up.jpg")
        if args.readme is not None:
            save(fit(drawn, 800), args.readme)
        run("predict", video, "--save-images", "--json", "none", "--frame-last", "190", "--out", t / "street", env=env)
        for index in (40, 100, 190):
            frame = next((t / "street").glob(f"*{index:012d}_rendered.*"), None)
            if frame is None:
                raise SystemExit(f"gallery: frame {index} of {video.name} was not drawn")
            save(fit(cv2.imread(str(frame))), args.out / f"street-{index:03d}.jpg")
        run("explain", dance, "--out", args.out / "explain.png", env=env)
        run("predict", dance, "--render", "controlnet", "--save-images", "--json", "none", "--out", t / "cn", env=env)
        run("predict", dance, "--render", "controlnet", "--controlnet-mode", "openpose_full", "--save-images",
            "--json", "none", "--out", t / "cnf", env=env)
        for name, folder in (("controlnet-body.png", "cn"), ("controlnet-full.png", "cnf")):
            picture = next((t / folder).glob("*controlnet*.png"), None) or next((t / folder).glob("*_rendered.*"))
            save(fit(cv2.imread(str(picture)), 700), args.out / name)
    print(f"gallery: {len(list(args.out.iterdir()))} pictures in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
