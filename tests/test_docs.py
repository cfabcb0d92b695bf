"""The documentation site as a reader meets it: built as `make docs` builds it (the gallery
made by pafpose from ../shared, MkDocs with warnings as errors), every internal link and
picture resolving in the built pages, the Python examples of every page run as written, and
the pages opened in headless Chromium: each renders without a script error and the search
finds what it should."""

import html.parser
import http.server
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from conftest import REPO, shared_dir

DOCS = REPO / "docs"
PAGES = sorted(p for p in DOCS.glob("*.md") if p.name != "README.md")  # README.md: about the sources


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


@pytest.mark.parametrize("page", [p for p in [REPO / "README.md", *PAGES] if python_blocks(p)],
                         ids=lambda p: p.name)
def test_the_python_examples_run_as_written(page, monkeypatch):
    shared = shared_dir()
    for code in python_blocks(page):
        if "pretrained=True" in code or "Estimator()" in code or "../shared" in code:
            if shared is None or ("../shared" in code and not (REPO.parent / "shared").is_dir()):
                continue  # the weights (and the example photos) come from ../shared here (no network)
            monkeypatch.setenv("PAFPOSE_WEIGHTS_PATH", str(shared / "weights"))
        monkeypatch.chdir(REPO)  # examples name ../shared/... relative to the repository
        exec(compile(code, str(page.relative_to(REPO)), "exec"), {})


def test_every_pafpose_command_of_the_shell_examples_parses_with_todays_options(capsys):
    """The shell examples are not run (they need videos, cameras, clusters), but each
    `pafpose ...` line is parsed as the command line parses it: an option renamed or removed
    fails here. Lines with placeholders for choices (`[...]`, `a|b`, `...`) are left out."""
    from pafpose.cli import build_parser, openpose_flags

    checked, bad = 0, []
    for page in [REPO / "README.md", *PAGES]:
        for block in re.findall(r"```bash\n(.*?)```", page.read_text(), flags=re.S):
            for line in block.replace("\\\n", " ").splitlines():
                line = line.split(" #")[0].strip()
                if not line.startswith("pafpose ") or any(t in line for t in ("...", "[", "|")):
                    continue
                argv = shlex.split(line)[1:]
                if argv[:1] in (["predict"], ["batch"]):  # as pafpose.cli.main: OpenPose's spellings
                    argv = openpose_flags.prepare_argv(argv)
                checked += 1
                try:
                    build_parser().parse_args(argv)
                except SystemExit:
                    bad.append(f"{page.name}: {line}: {capsys.readouterr().err.strip()}")
    assert checked >= 30 and not bad, bad

@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site built as `make docs` builds it, from a copy of docs/ (the gallery's pictures
    made into it), with warnings as errors; its folder."""
    pytest.importorskip("mkdocs", reason="the docs extra is not installed (pip install '.[docs]')")
    shared = shared_dir()
    if shared is None:
        pytest.skip("../shared not found (set PAFPOSE_SHARED): the gallery is made from it")
    root = tmp_path_factory.mktemp("docs")
    shutil.copytree(DOCS, root / "docs", ignore=shutil.ignore_patterns("gallery"))
    r = subprocess.run([sys.executable, str(DOCS / "gallery.py"), "--out", str(root / "docs" / "gallery")],
                       capture_output=True, text=True, env={**os.environ, "PAFPOSE_SHARED": str(shared)})
    assert r.returncode == 0, r.stderr
    config = root / "mkdocs.yml"
    config.write_text(f"INHERIT: {REPO / 'mkdocs.yml'}\ndocs_dir: {root / 'docs'}\nsite_dir: {root / 'site'}\n")
    mkdocs = shutil.which("mkdocs") or str(Path(sys.executable).with_name("mkdocs"))
    r = subprocess.run([mkdocs, "build", "--strict", "-f", str(config)], capture_output=True, text=True, cwd=REPO,
                       env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "WARNING" not in r.stderr, r.stderr
    return root / "site"


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str]] = []  # (attribute, value)
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        for name in ("href", "src"):
            if a.get(name) and tag in ("a", "img", "link", "script"):
                self.refs.append((name, a[name]))


def test_every_page_link_and_picture_of_the_built_site_resolves(site):
    pages = sorted(site.rglob("*.html"))
    parsed = {}
    for page in pages:
        p = _Links()
        p.feed(page.read_text())
        parsed[page] = p
    nav = re.findall(r"^\s+- [^:]+: (\S+\.md)$", (REPO / "mkdocs.yml").read_text(), flags=re.M)
    assert sorted(nav) == sorted(p.name for p in PAGES)  # every page is in the navigation, once
    broken = []
    for page, p in parsed.items():
        if page.name == "404.html":  # served for any missing path: its links are from the site's root
            continue
        for _, ref in p.refs:
            parts = urlsplit(ref)
            if parts.scheme or ref.startswith(("mailto:", "//")) or not (parts.path or parts.fragment):
                continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(site)}: {ref}")
            elif parts.fragment and target.suffix == ".html" and parts.fragment not in parsed[target].ids:
                broken.append(f"{page.relative_to(site)}: {ref} (no such anchor)")
    assert not broken, broken
    gallery = (site / "gallery" / "index.html").read_text()
    pictures = re.findall(r'<img [^>]*src="([^"]+)"', gallery)
    assert len(pictures) == 8 and all((site / "gallery" / unquote(src)).stat().st_size > 5000 for src in pictures)
    api = parsed[site / "api" / "index.html"].ids  # the reference, generated from the docstrings
    for name in ("predict.Estimator.predict", "pose.Pose", "pose.Poses", "tracking.online.Tracker.update",
                 "tracking.offline.OfflineTracker", "batch.results.read_results", "outputs.options.OutputOptions"):
        assert f"pafpose.{name}" in api, name


@pytest.fixture(scope="module")
def served(site):
    """The built site on a free loopback port (the search index is fetched: file:// won't do)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(site), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_the_pages_render_in_headless_chromium_and_the_search_finds(served, site, tmp_path):
    from helpers_browser import chromium_page

    pages = sorted(p.parent.relative_to(site).as_posix() for p in site.rglob("index.html")
                   if p.parent.name not in ("search", "assets"))
    problems = []
    with chromium_page(tmp_path / "profile", problems, console=("error",)) as (sync_api, page):
        for path in pages:
            page.goto(f"{served}/{'' if path == '.' else path + '/'}")
            heading = page.locator("article h1").first
            assert heading.is_visible() and heading.inner_text().strip(), path
        page.goto(f"{served}/gallery/")
        sizes = page.eval_on_selector_all("article img", "els => els.map(e => e.naturalWidth)")
        assert len(sizes) == 8 and min(sizes) > 100, sizes
        for term, expected in (("tracking", "Videos and tracking"), ("Pose2Sim", "3-D with Pose2Sim"),
                               ("retry-errors", "Data sets on Ray")):
            page.goto(f"{served}/")
            page.keyboard.press("/")  # Material's shortcut to the search box
            # each page loaded builds the whole site's search index again, in a worker, which says "Type to start
            # searching" once built; Material reads the query on each key released (keyup) and when the index is
            # ready. So the test waits for the index and then types key by key, as a reader does (a filled-in value
            # with no key events was read only if the index came after it: with `make test`'s other process busy, it
            # came first and the query was never answered)
            # (the meta says "Initializing search" from the page's start: any text at all would not wait)
            sync_api.expect(page.locator(".md-search-result__meta")).to_have_text("Type to start searching",
                                                                                  timeout=180_000)
            page.locator("input.md-search__input").press_sequentially(term)
            results = page.locator(".md-search-result__list li")
            sync_api.expect(results.first).to_be_visible(timeout=60_000)
            assert expected in page.locator(".md-search-result__list").inner_text(), term
    assert not problems, problems
