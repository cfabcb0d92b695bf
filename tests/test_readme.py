"""The README opens with the two commands (its examples, and the site's, run in test_docs.py)."""

import re

from conftest import REPO


def test_readme_opens_with_the_demo_and_test_commands():
    text = (REPO / "README.md").read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, flags=re.S).group(1)
    assert [line.split("#")[0].strip() for line in first_block.strip().splitlines()] == ["make demo", "make test"]
