"""The README points at lines of code; those lines must still say what the README quotes."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\[`(?P<code>[^`]+)`\]\((?P<path>[\w/.]+\.py)#L(?P<line>\d+)\)")


def test_readme_code_links_point_at_the_quoted_code():
    readme = (ROOT / "README.md").read_text()
    links = list(LINK.finditer(readme))
    assert len(links) >= 10
    for link in links:
        lines = (ROOT / link["path"]).read_text().splitlines()
        line_no = int(link["line"])
        assert line_no <= len(lines), f"{link['path']} has no line {line_no}"
        code = link["code"]
        now = [i + 1 for i, line in enumerate(lines) if code in line]
        assert code in lines[line_no - 1], (
            f"README quotes {code!r} at {link['path']}:{line_no}, "
            f"which says {lines[line_no - 1].strip()!r}; the code is now at line(s) {now}"
        )


def test_readme_names_only_existing_files():
    readme = (ROOT / "README.md").read_text()
    for path in re.findall(r"\]\(((?:fastsock|bench|tests)/[\w/.-]+)\)", readme):
        assert (ROOT / path).exists(), path
