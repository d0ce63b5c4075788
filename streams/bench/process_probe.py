"""CPU time and peak memory of a process, read from ``/proc``.

CPU time is user plus system time of the process itself (``utime`` and
``stime`` of ``/proc/<pid>/stat``, in clock ticks); threads are included,
children are not, which is why every contender runs its work in the process
it was started as. Peak memory is ``VmHWM`` of ``/proc/<pid>/status``, the
highest resident set size the process has had. Linux only.
"""

from __future__ import annotations

import os
from pathlib import Path

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds the process has used so far.

    Raises:
        OSError: The process is gone (or this is not Linux).
    """
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name may hold spaces and brackets; fields follow the last ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_S


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set size (``VmHWM``) in MiB.

    Raises:
        OSError: The process is gone (or this is not Linux).
    """
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0
