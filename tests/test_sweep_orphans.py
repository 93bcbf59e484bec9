"""No orphan trains unattended, none is taken twice: claims the kernel frees, children that die with their driver."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from workbench.sweep.manifest import Sweep

pytestmark = pytest.mark.slow  # end-to-end processes: `pytest -m slow` (CI runs it)

HOLD = ("import sys, time; from workbench.sweep.manifest import Sweep; "
        "fd = Sweep(sys.argv[1]).claim('t000'); print('held' if fd is not None else 'refused', flush=True); "
        "time.sleep(60 if fd is not None else 0)")


def _holder(folder) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_claimed_trial_is_refused_to_another_driver_until_the_first_dies_even_by_kill_9(tmp_path):
    holder = _holder(tmp_path)
    try:
        assert Sweep(tmp_path).claim("t000") is None  # another process has it
        assert Sweep(tmp_path).claim("t001") is not None  # other trials are free
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        fd = Sweep(tmp_path).claim("t000")  # the kernel dropped the dead driver's lock
        assert fd is not None
        refused = subprocess.run([sys.executable, "-c", HOLD, str(tmp_path)], capture_output=True, text=True)
        assert refused.stdout.strip() == "refused"  # and now this process holds it
        os.close(fd)
    finally:
        holder.kill()


DRIVER = ("import subprocess, sys; from workbench.rundir.process import _die_with; import os; "
          "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'], "
          "preexec_fn=_die_with(os.getpid())); print(child.pid, flush=True); child.wait()")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_trial_process_gets_sigterm_when_its_driver_is_killed(tmp_path):
    driver = subprocess.Popen([sys.executable, "-c", DRIVER], stdout=subprocess.PIPE, text=True)
    child = int(driver.stdout.readline())
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return  # gone (its parent was re-set to init, which reaped it)
        with open(f"/proc/{child}/stat") as stat:
            if stat.read().split()[2] == "Z":
                return  # dead, waiting to be reaped
        time.sleep(0.1)
    os.kill(child, signal.SIGKILL)
    raise AssertionError("the trial process outlived its driver")
