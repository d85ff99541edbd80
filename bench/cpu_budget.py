"""A CPU budget for a process: its own cgroup with a CFS bandwidth quota (root, cgroup v1 cpu).

The replicas case gives each gateway replica the same budget, as a host (or a Kubernetes
``resources.limits.cpu``) of its own would: then a replica is what runs out, not the shared
box that also hosts the load generators, and "two replicas carry twice the subscribers" is
measurable on two cores. The quota is enforced per ``PERIOD_US``; a short period keeps a
replica that spent its budget waiting milliseconds, not the default 100 ms period's tens.

Only cgroup v1's ``cpu`` hierarchy (what this machine mounts) is handled; elsewhere
:func:`budget_unavailable` says why and the case runs without budgets.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

CPU_HIERARCHY = Path("/sys/fs/cgroup/cpu")
PERIOD_US = 10_000


def budget_unavailable() -> str | None:
    """None when budgets can be set here, else why not."""
    if os.geteuid() != 0:
        return "not root"
    if not (CPU_HIERARCHY / "cpu.cfs_quota_us").exists():
        return f"no cgroup v1 cpu hierarchy at {CPU_HIERARCHY} (cgroup v2 is not handled)"
    if not os.access(CPU_HIERARCHY, os.W_OK):
        return f"{CPU_HIERARCHY} is read-only"
    return None


class CpuBudget:
    """``cores`` of CPU time for the processes added, until :meth:`close` (which always tidies)."""

    def __init__(self, name: str, cores: float) -> None:
        if cores <= 0:
            raise ValueError(f"a CPU budget must be positive (got {cores})")
        self.cores = cores
        self.path = CPU_HIERARCHY / name
        self.path.mkdir()
        try:
            (self.path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (self.path / "cpu.cfs_quota_us").write_text(str(round(cores * PERIOD_US)))
        except OSError:
            self.path.rmdir()
            raise

    def add(self, pid: int) -> None:
        (self.path / "cgroup.procs").write_text(str(pid))

    def throttled_seconds(self) -> float:
        """How long the group's processes were held back for having spent the budget."""
        for line in (self.path / "cpu.stat").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "throttled_time":
                return int(value) / 1e9
        return 0.0

    def close(self) -> None:
        """Moves any process still in the group back to the root group, then removes it."""
        with contextlib.suppress(FileNotFoundError):
            for pid in (self.path / "cgroup.procs").read_text().split():
                with contextlib.suppress(OSError):  # exited meanwhile
                    (CPU_HIERARCHY / "cgroup.procs").write_text(pid)
            self.path.rmdir()
