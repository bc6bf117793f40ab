"""CPU pressure (Linux PSI, ``/proc/pressure/cpu``): how busy the whole machine was during a run.

The ``some`` line's ``total=`` counter is the microseconds during which at least one runnable
task waited for a CPU, since boot. Its increase over a run divided by the run's wall time is the
share of the run the machine was short of CPU -- for everything on it, not only the client and
the server; the load average lags by a minute and cannot say that about a 0.5 s trial.
"""

from __future__ import annotations

PSI_CPU = "/proc/pressure/cpu"


def cpu_pressure_us(path: str = PSI_CPU) -> int | None:
    """Microseconds during which some runnable task waited for a CPU, since boot; None where the
    kernel does not provide it (no PSI, or a container that hides it)."""
    try:
        with open(path, encoding="ascii") as f:
            first = f.readline()  # some avg10=... avg60=... avg300=... total=N
        return int(first.rsplit("total=", 1)[1])
    except (OSError, IndexError, ValueError):
        return None


def pressure_share(before: int | None, after: int | None, wall_s: float) -> float | None:
    """The share of ``wall_s`` during which some task waited for a CPU (None: not known)."""
    if before is None or after is None or wall_s <= 0:
        return None
    return round((after - before) / 1e6 / wall_s, 3)
