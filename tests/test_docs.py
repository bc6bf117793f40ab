"""The docs cannot drift: docs/cli.md is what the commands' --help says, and every relative
link in README.md, docs/ and results/REPORT.md points at a file that exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fastsock import clidoc

ROOT = Path(__file__).resolve().parent.parent
# [text](target) and ![alt](target), not inside code spans; external links are not ours.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


@pytest.mark.timeout(60)
def test_cli_reference_is_generated_from_the_commands() -> None:
    committed = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert committed == clidoc.render(), (
        "docs/cli.md is stale: regenerate it with `python -m fastsock.clidoc > docs/cli.md`"
    )


def _pages() -> list[Path]:
    return [
        ROOT / "README.md",
        ROOT / "results" / "REPORT.md",
        *sorted((ROOT / "docs").glob("*.md")),
    ]


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = (page.parent / target.split("#", 1)[0]).resolve()
        if not path.exists():
            broken.append(target)
    assert broken == [], f"{page.relative_to(ROOT)} links to missing files: {broken}"
