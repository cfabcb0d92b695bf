"""README examples run as written."""

import re

from conftest import REPO, shared_dir


def test_readme_python_blocks_run(monkeypatch):
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks
    shared = shared_dir()
    for code in blocks:
        if "pretrained=True" in code or "Estimator()" in code:
            if shared is None or ("../shared" in code and not (REPO.parent / "shared").is_dir()):
                continue  # the weights (and the example photo) come from ../shared here (no network)
            monkeypatch.setenv("PAFPOSE_WEIGHTS_PATH", str(shared / "weights"))
        monkeypatch.chdir(REPO)  # examples name ../shared/... relative to the repository
        exec(compile(code, "README.md", "exec"), {})


def test_readme_opens_with_the_demo_and_test_commands():
    text = (REPO / "README.md").read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, flags=re.S).group(1)
    assert [line.split("#")[0].strip() for line in first_block.strip().splitlines()] == ["make demo", "make test"]
