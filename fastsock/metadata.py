"""Machine and run metadata for every results file, with the names pyperf uses for the same facts.

One module for both kinds of file: ``fastsock load --json`` (:func:`for_load`) and the harness's
``results/*.json`` (:func:`for_bench`). They share the machine facts (:func:`machine`) and differ
only where their schemas do: the harness also records the git commit and keeps lists where the
load JSON keeps pyperf's strings (``cpu_affinity`` "0-1", ``load_avg_1min``).
"""

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

from fastsock import __version__

# Packages whose versions a results file records (a missing one: None in the harness's files,
# left out of the load JSON).
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
_LOAD_PACKAGES = ("click", "hdrhistogram", "psutil", "numpy", "pyperf", "uvloop")
# The checkout the harness runs from (an editable install's package sits in it).
REPO = Path(__file__).resolve().parent.parent


def format_cpu_list(cpus: set[int] | list[int]) -> str:
    """``{0, 1, 2, 5}`` -> ``0-2,5``, the way pyperf and taskset write CPU lists."""
    ranges: list[str] = []
    ordered = sorted(cpus)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        ranges.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(ranges)


def cpu_model_name() -> str | None:
    """The CPU model from /proc/cpuinfo (Linux), or what platform knows elsewhere."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Processor", "cpu model"):
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or None


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each package, None where it is not installed."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit(repo: Path = REPO) -> str | None:
    """HEAD of the repository, with '+dirty' when tracked files are modified; None if no git."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def machine() -> dict:
    """The facts of this machine and interpreter that every results file records."""
    return {
        "cpu_model_name": cpu_model_name(),
        "cpu_count": os.cpu_count() or 1,
        "platform": platform.platform(),
        "kernel": platform.release(),
        "python_version": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "hostname": socket.gethostname(),
    }


def for_load(command_line: str | None = None) -> dict:
    """``fastsock load --json``'s metadata (fastsock/load/SCHEMA.md)."""
    versions = package_versions(_LOAD_PACKAGES)
    return {
        **machine(),
        "cpu_affinity": format_cpu_list(os.sched_getaffinity(0)),
        "python_executable": sys.executable,
        "fastsock_version": __version__,
        "packages": {k: v for k, v in versions.items() if v is not None},
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command_line": command_line if command_line is not None else shlex.join(sys.argv),
        "load_avg_1min": round(os.getloadavg()[0], 2),
    }


def for_bench(argv: list[str] | None = None) -> dict:
    """A harness results file's metadata (fastsock/report/schema.json); ``duration_s`` is
    filled in by the runner at the end."""
    facts = machine()
    facts["cpu_model_name"] = facts["cpu_model_name"] or "unknown"
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        **facts,
        "cpu_affinity": sorted(os.sched_getaffinity(0)),
        "packages": package_versions(),
        "command_line": shlex.join(argv if argv is not None else [sys.executable, *sys.argv]),
        "git_commit": git_commit(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "duration_s": 0.0,
    }
