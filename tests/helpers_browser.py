"""A page in headless Chromium (Debian's, driven by Playwright) for the tests that look at
what a browser shows: `pafpose serve`'s page and the documentation site."""

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]


def find_chromium() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


@contextlib.contextmanager
def chromium_page(profile: Path, problems: list[str], console: tuple[str, ...] = ("error", "warning")
                  ) -> Iterator[tuple[Any, Any]]:
    """``(playwright.sync_api, page)`` in a fresh headless Chromium (1200 x 900): the page's
    script errors and its console messages of the kinds ``console`` go to ``problems``.
    Skips the test, saying why, without Chromium or Playwright."""
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no Chromium installed: apt-get install chromium chromium-driver (.ci/run does)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install '.[test]')")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(profile), executable_path=chromium, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1200, "height": 900})
        try:
            page = browser.new_page()
            page.on("pageerror", lambda err: problems.append(f"{page.url}: page error: {err}"))
            page.on("console", lambda msg: problems.append(f"{page.url}: console {msg.type}: {msg.text}")
                    if msg.type in console else None)
            yield sync_api, page
        finally:
            browser.close()
