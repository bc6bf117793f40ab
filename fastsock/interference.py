"""Was anything else using the machine during a trial? Outside CPU, steal and CPU pressure.

A trial's own processes (the server and the client) are known; whatever else ran on the CPUs
meanwhile competed with them. Three readings, each from the kernel:

- ``other_cores``: user + system CPU of the whole machine (``/proc/stat``) minus the trial's
  own processes' CPU, over the trial's wall time: how many cores something else used. Soft-
  and hard-IRQ time is left out on both sides (the kernel may account loopback packet
  processing there rather than to the process that sent it).
- ``steal``: the share of CPU time the hypervisor gave to another guest (``/proc/stat``).
- ``pressure``: the share of the wall time in which some task waited for a CPU
  (``/proc/pressure/cpu``, "some"); None where the kernel has no PSI.

A trial is *disturbed* when ``other_cores`` or ``steal`` pass their thresholds; the harness
runs its round again (a bounded number of times) and the report says how many.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from fastsock.pressure import cpu_pressure_us, pressure_share

# Thresholds for a disturbed trial. The harness's own Python process, idle in wait(), and the
# kernel's housekeeping stay well below a tenth of a core.
OTHER_CORES_LIMIT = 0.25
STEAL_LIMIT = 0.05
_TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Snapshot:
    """Machine-wide CPU counters at one moment (seconds of CPU time, summed over CPUs)."""

    t: float
    busy_s: float  # user + nice + system
    steal_s: float
    total_s: float
    pressure_us: int | None


def snapshot() -> Snapshot:
    t = time.monotonic()
    busy = steal = total = 0.0
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()[1:]
        ticks = [int(x) for x in fields]
        # user nice system idle iowait irq softirq steal guest guest_nice (guest is in user)
        busy = (ticks[0] + ticks[1] + ticks[2]) / _TICK
        steal = (ticks[7] if len(ticks) > 7 else 0) / _TICK
        total = sum(ticks[:8]) / _TICK
    except (OSError, ValueError, IndexError):
        pass
    return Snapshot(t, busy, steal, total, cpu_pressure_us())


def between(
    before: Snapshot,
    after: Snapshot,
    own_cpu_s: float | None,
    other_cores_limit: float = OTHER_CORES_LIMIT,
) -> dict:
    """The readings for the interval between two snapshots; ``own_cpu_s``: the CPU time of
    the trial's own processes over it (None: unknown, so no ``other_cores``)."""
    wall = max(after.t - before.t, 1e-9)
    total = after.total_s - before.total_s
    other = None
    if own_cpu_s is not None:
        other = max(0.0, (after.busy_s - before.busy_s) - own_cpu_s) / wall
    steal = (after.steal_s - before.steal_s) / total if total > 0 else 0.0
    pressure = pressure_share(before.pressure_us, after.pressure_us, wall)
    disturbed = (other is not None and other > other_cores_limit) or steal > STEAL_LIMIT
    return {
        "other_cores": None if other is None else round(other, 3),
        "steal": round(steal, 4),
        "pressure": None if pressure is None else round(pressure, 4),
        "disturbed": disturbed,
    }
