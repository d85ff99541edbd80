"""The replicas case's CPU budget holds a busy process to its share and always tidies up."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from bench.cpu_budget import CpuBudget, budget_unavailable

pytestmark = pytest.mark.skipif(budget_unavailable() is not None, reason=f"{budget_unavailable()}")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_busy_process_gets_its_budget_and_no_more_and_the_group_is_removed() -> None:
    budget = CpuBudget(f"framebus-test-{os.getpid()}", 0.2)
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        budget.add(spinner.pid)
        before, started = cpu_seconds(spinner.pid), time.monotonic()
        time.sleep(1.5)
        share = (cpu_seconds(spinner.pid) - before) / (time.monotonic() - started)
        assert 0.1 < share < 0.3, f"a 0.2-core budget gave {share:.2f} cores"
        assert budget.throttled_seconds() > 0.5
    finally:
        budget.close()  # with the spinner still in it: moved out, then the group removed
        spinner.kill()
        spinner.wait()
    assert not budget.path.exists()


def test_a_budget_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        CpuBudget("framebus-test-never", 0)
