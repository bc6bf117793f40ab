"""Machine and run metadata for results files, with the names pyperf uses for the same facts."""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import socket
import sys
from importlib import metadata as importlib_metadata

from fastsock import __version__

_PACKAGES = ("click", "hdrhistogram", "psutil", "numpy", "pyperf", "uvloop")


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


def _versions() -> dict[str, str]:
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    return versions


def collect(command_line: str | None = None) -> dict:
    """Metadata for one run: CPU, kernel, Python, versions, affinity, date, command line."""
    affinity = os.sched_getaffinity(0)
    load = os.getloadavg()
    return {
        "cpu_model_name": cpu_model_name(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": format_cpu_list(affinity),
        "platform": platform.platform(),
        "kernel": platform.release(),
        "python_version": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "python_executable": sys.executable,
        "fastsock_version": __version__,
        "packages": _versions(),
        "hostname": socket.gethostname(),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command_line": command_line if command_line is not None else shlex.join(sys.argv),
        "load_avg_1min": round(load[0], 2),
    }
