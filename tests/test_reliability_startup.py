"""Ctrl-C and SIGTERM while ganbench starts (imports, plugins, data, the checkpoint): one sentence, exit 130.

Real ``python -m workbench`` subprocesses throughout. A plugin that signals its
own process while it is being imported makes the moment exact; a spread of
delays covers the moments a user's Ctrl-C really lands at.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import install_plugin
from workbench.engine.checkpoint import load_checkpoint
from workbench.rundir.events import read_events

FAST = ["--set", "image_size=8", "--set", "batch_size=8", "--set", "log_every=5", "--set", "sample_every=0",
        "--set", "checkpoint_every=5"]
ENV = {"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "COLUMNS": "120"}

# Signals its own process in the middle of its import, inside code that swallows every exception
# (numpy's and torch's imports have such places): the interrupt must neither be lost nor tear the import.
SELF_INTERRUPTING_PLUGIN = '''
import os, signal, time
from workbench import hookimpl

try:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.3)
except BaseException:
    pass
IMPORTED_TO_THE_END = True


@hookimpl
def ganbench_run_start(run):
    (run.dir.path / "trained").touch()
'''


def start(*args: str, cwd: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "workbench", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **ENV, **(env or {})})


def events_of(run_dir: Path, kind: str) -> list[dict]:
    return [e for e in read_events(run_dir / "events.jsonl")[0] if e["type"] == kind]


def fingerprint(run_dir: Path) -> dict[str, int]:
    return {str(p.relative_to(run_dir)): p.stat().st_mtime_ns for p in run_dir.rglob("*") if p.is_file()}


@pytest.fixture
def finished_run(tmp_path, tiny_mnist, cli) -> Path:
    done = cli("run", "-p", "mlp_gan", "--dataset", "mnist", "--data-root", str(tiny_mnist), "--steps", "10",
               "--name", "r", "--device", "cpu", *FAST, env=ENV)
    assert done.returncode == 0, done.stderr
    return tmp_path / "runs" / "r"


def test_a_signal_inside_an_import_that_swallows_it_still_ends_the_start_cleanly(tmp_path, tiny_mnist, finished_run):
    site = install_plugin(tmp_path / "site", "self_interrupting", SELF_INTERRUPTING_PLUGIN)
    before = fingerprint(finished_run)
    done = subprocess.run([sys.executable, "-m", "workbench", "run", "--resume", str(finished_run), "--steps", "40"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **ENV, "PYTHONPATH": str(site)})
    assert done.returncode == 130, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"ganbench: interrupted by SIGINT before training started; {finished_run} is as it was."]
    assert not (finished_run / "trained").exists()
    assert fingerprint(finished_run) == before, "a run interrupted before training is left exactly as it was"


def test_a_new_run_interrupted_while_starting_leaves_no_folder(tmp_path, tiny_mnist):
    site = install_plugin(tmp_path / "site", "self_interrupting", SELF_INTERRUPTING_PLUGIN)
    done = subprocess.run([sys.executable, "-m", "workbench", "run", "-p", "mlp_gan", "--dataset", "mnist",
                           "--data-root", str(tiny_mnist), "--steps", "40", "--name", "new", *FAST],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **ENV, "PYTHONPATH": str(site)})
    assert done.returncode == 130, done.stderr
    assert done.stderr.strip().splitlines() == [
        "ganbench: interrupted by SIGINT before training started; no run folder was left behind."]
    assert not (tmp_path / "runs" / "new").exists()


@pytest.mark.slow
def test_the_guard_defers_a_signal_until_the_import_has_returned(tmp_path):
    (tmp_path / "half.py").write_text("import os, signal, time\nos.kill(os.getpid(), signal.SIGINT)\n"
                                      "time.sleep(0.2)\nLAST = True\n")
    script = ("import sys\nfrom workbench.cli.interrupts import Interrupted, startup_interrupts\n"
              "with startup_interrupts():\n"
              "    try:\n        import half\n        import time; time.sleep(5)\n"
              "    except Interrupted as exc:\n"
              "        print('complete' if getattr(sys.modules.get('half'), 'LAST', False) else 'torn', exc.exit_code)\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["complete", "130"], done.stdout + done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("signum, delays", [(signal.SIGINT, (0.15, 0.4, 0.7, 1.2, None)),
                                            (signal.SIGTERM, (0.5, None))])
def test_a_signal_at_any_moment_of_a_resume_ends_in_one_sentence_and_a_resumable_run(tmp_path, tiny_mnist,
                                                                                        finished_run, signum, delays):
    """Delays from the first instants of the process to well into training; each outcome is either
    'interrupted before training started' with the run untouched, or a stop with a checkpoint of the stop step."""
    outcomes = []
    for delay in delays:  # None: once training runs
        proc = start("run", "--resume", str(finished_run), "--steps", "100000", cwd=tmp_path)
        try:
            if delay is None:
                starts = len(events_of(finished_run, "run_start"))
                deadline = time.monotonic() + 120
                while len(events_of(finished_run, "metrics")) == 0 or len(events_of(finished_run, "run_start")) == \
                        starts:
                    assert proc.poll() is None and time.monotonic() < deadline, "training never started"
                    time.sleep(0.05)
            else:
                time.sleep(delay)
            proc.send_signal(signum)
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 128 + signum, (delay, err)
        assert "Traceback" not in err and "Error" not in err, (delay, err)
        lines = err.strip().splitlines()
        state = json.loads((finished_run / "state.json").read_text())
        if lines == [f"ganbench: interrupted by {signum.name} before training started; {finished_run} is as it was."] \
                or lines == [f"ganbench: interrupted by {signum.name}."]:
            outcomes.append("before training")
        else:
            assert lines[0] == "stopping after this step and writing a checkpoint (Ctrl-C again to quit at once)", err
            assert state["status"] == "stopped" and state["checkpoint_step"] == state["step"]
            assert events_of(finished_run, "run_end")[-1]["reason"] == "stopped"
            outcomes.append("stopped")
        assert load_checkpoint(finished_run / "checkpoints" / "latest.safetensors").step == state["step"]
        assert state["status"] in ("completed", "stopped")
        assert not list((finished_run / "checkpoints").glob(".*")), "no temporary file is left behind"
    assert outcomes[-1] == "stopped" and "before training" in outcomes, outcomes
