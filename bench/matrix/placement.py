"""CPU placement: pin the server and the client to the CPUs a placement names.

The server is pinned by :class:`fastsock.process.ServerProcess` (``cpu_affinity``); the client,
a subprocess too, by :func:`client_preexec` (``os.sched_setaffinity`` in the child before exec),
and pyperf workers by pyperf's own ``--affinity``.
"""

from __future__ import annotations

import os
from collections.abc import Callable


def usable_cpus() -> set[int]:
    """The CPUs this process may run on (what pinning can choose from)."""
    return set(os.sched_getaffinity(0))


def check(name: str, spec: dict[str, list[int]], usable: set[int] | None = None) -> str | None:
    """None when the placement can be honoured here, else the reason it cannot."""
    usable = usable_cpus() if usable is None else usable
    for who in ("server", "client"):
        missing = set(spec.get(who, [])) - usable
        if missing:
            return (
                f"placement {name} pins the {who} to CPU {sorted(missing)}, but only CPUs "
                f"{sorted(usable)} are usable here"
            )
    return None


def server_cpus(spec: dict[str, list[int]]) -> frozenset[int] | None:
    return frozenset(spec["server"]) if spec.get("server") else None


def client_cpus(spec: dict[str, list[int]]) -> frozenset[int] | None:
    return frozenset(spec["client"]) if spec.get("client") else None


def client_preexec(spec: dict[str, list[int]]) -> Callable[[], None] | None:
    """A ``preexec_fn`` pinning the child to the placement's client CPUs (None: unpinned)."""
    cpus = client_cpus(spec)
    if cpus is None:
        return None

    def pin() -> None:
        os.sched_setaffinity(0, cpus)

    return pin


def cpu_list(cpus: frozenset[int]) -> str:
    """``0,1`` as pyperf's ``--affinity`` takes it."""
    return ",".join(str(c) for c in sorted(cpus))
