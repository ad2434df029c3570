"""How many CPUs this process may really use: the container's CPU quota as well as its CPU affinity.

`os.sched_getaffinity` counts the CPUs the process may be scheduled on, and a container usually may be
scheduled on all of the host's. What limits it is the cgroup's CPU bandwidth quota: a 1-vCPU container on a
16-core host sees 16 CPUs and gets 1 CPU of time. Pre-forking one worker per visible CPU there would start 16
workers (each with the model's memory) to share one CPU. So the count is the smaller of the affinity and the
quota rounded up (a 0.5-CPU container gets one worker; 1.5 gets two, which then share the quota).

Read from the cgroup the process sees at `/sys/fs/cgroup` (a container's cgroup namespace puts its own there):
cgroup v2 `cpu.max` ("<quota> <period>", or "max <period>" for none), or cgroup v1
`cpu/cpu.cfs_quota_us` and `cpu/cpu.cfs_period_us` (quota -1 for none). See
https://docs.kernel.org/admin-guide/cgroup-v2.html#cpu-interface-files and
https://docs.kernel.org/scheduler/sched-bwc.html. Anything missing or unreadable means no quota.
"""

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _affinity_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _quota_cpus(cgroup_root: Path) -> float | None:
    """The quota in CPUs (quota / period), or None when there is none or it cannot be read."""
    try:
        v2 = cgroup_root / "cpu.max"
        if v2.exists():
            quota, period = v2.read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        quota_v1 = int((cgroup_root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_v1 = int((cgroup_root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota_v1 < 0 else quota_v1 / period_v1
    except (OSError, ValueError, ZeroDivisionError):
        return None


def usable_cpus(cgroup_root: Path = CGROUP_ROOT) -> int:
    """CPUs this process may use: its affinity, capped by its cgroup's quota rounded up; at least 1."""
    affinity = _affinity_cpus()
    quota = _quota_cpus(cgroup_root)
    if quota is None or quota <= 0:
        return max(1, affinity)
    return max(1, min(affinity, math.ceil(quota)))
