"""The README and docs/ point at lines of code; those lines must still say what they quote, and
the README's headline figures are the reference run's findings."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fastsock import findings as F

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\[`(?P<code>[^`]+)`\]\((?P<path>[\w/.]+\.py)#L(?P<line>\d+)\)")
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_code_links_point_at_the_quoted_code():
    count = 0
    for page in PAGES:
        for link in LINK.finditer(page.read_text()):
            count += 1
            path = (page.parent / link["path"]).resolve()
            lines = path.read_text().splitlines()
            line_no = int(link["line"])
            assert line_no <= len(lines), f"{link['path']} has no line {line_no}"
            code = link["code"]
            now = [i + 1 for i, line in enumerate(lines) if code in line]
            assert code in lines[line_no - 1], (
                f"{page.name} quotes {code!r} at {link['path']}:{line_no}, "
                f"which says {lines[line_no - 1].strip()!r}; the code is now at line(s) {now}"
            )
    assert count >= 10


def test_readme_is_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


def _reference_run() -> dict:
    """results/bench.json as committed: ``make bench`` rewrites the working copy with the
    user's own run (README's first set-up command, before ``make test``), while the README
    quotes the committed reference run. Outside a git checkout, the working copy."""
    import subprocess

    try:
        text = subprocess.run(
            ["git", "show", "HEAD:results/bench.json"],
            cwd=ROOT, capture_output=True, text=True, timeout=30, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        text = (ROOT / "results" / "bench.json").read_text()
    return json.loads(text)


def test_readme_headlines_are_the_reference_runs_findings():
    """Each row of the README's headline table names a finding of the committed
    results/bench.json by id and quotes its ratio and CI as that run computed them."""
    readme = (ROOT / "README.md").read_text()
    found = {f["id"]: f for f in _reference_run()["findings"]}
    rows = re.findall(r"^\| (.+?) \| (.+?) \| (.+?) \| `(?P<id>[^`]+)` \|$", readme, re.M)
    assert len(rows) >= 3
    for _, _, ratio, fid in rows:
        assert fid in found, f"README cites {fid}, which results/bench.json does not have"
        assert ratio == F.ratio_text(found[fid]), (fid, ratio, F.ratio_text(found[fid]))
