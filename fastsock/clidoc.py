"""docs/cli.md, generated from the click commands themselves, so ``--help`` and the docs
cannot disagree (tests/test_docs.py fails when the committed file is stale).

    python -m fastsock.clidoc > docs/cli.md
"""

from __future__ import annotations

import click

from fastsock.cli import main as fastsock_main

HEADER = """# Command-line reference

Generated from the commands' own `--help` by `python -m fastsock.clidoc > docs/cli.md`;
do not edit by hand (`make docs` regenerates it, and a test fails when it is stale).
"""


def render() -> str:
    """The whole page: the group's help, then each command's, in name order, each rendered in
    a context under the group's (so it shows the options a user sees, ``-h`` included)."""
    group_ctx = click.Context(
        fastsock_main,
        info_name="fastsock",
        terminal_width=100,
        max_content_width=100,
        **fastsock_main.context_settings,
    )
    parts = [HEADER, "## fastsock", "", "```text", fastsock_main.get_help(group_ctx), "```", ""]
    for name in fastsock_main.list_commands(group_ctx):
        command = fastsock_main.get_command(group_ctx, name)
        if command is None:
            continue
        ctx = click.Context(command, info_name=name, parent=group_ctx)
        parts += [f"## fastsock {name}", "", "```text", command.get_help(ctx), "```", ""]
    return "\n".join(parts)


if __name__ == "__main__":
    print(render(), end="")
