"""Machine and run metadata for the results file (what pyperf records, plus our packages)."""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import socket
import subprocess
import sys
from importlib import metadata as importlib_metadata
from pathlib import Path

PACKAGES = (
    "fastsock",
    "pyperf",
    "matplotlib",
    "numpy",
    "hdrhistogram",
    "psutil",
    "click",
    "uvloop",
    "rich",
)
REPO = Path(__file__).resolve().parent.parent


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit() -> str | None:
    """HEAD of the repository, with '+dirty' when tracked files are modified; None if no git."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def collect(argv: list[str] | None = None) -> dict:
    """Everything but ``duration_s``, which the runner fills in at the end."""
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "hostname": socket.gethostname(),
        "cpu_model_name": cpu_model(),
        "cpu_count": os.cpu_count() or 1,
        "cpu_affinity": sorted(os.sched_getaffinity(0)),
        "platform": platform.platform(),
        "kernel": platform.release(),
        "python_version": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "packages": package_versions(),
        "command_line": shlex.join(argv if argv is not None else [sys.executable, *sys.argv]),
        "git_commit": git_commit(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "duration_s": 0.0,
    }
