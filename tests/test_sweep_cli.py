"""``ganbench sweep`` and ``ganbench compare`` through the real CLI: real trial processes, real run directories.

Trials are tiny (tens of steps, a few hundred evaluation samples) so the file stays
quick; what matters is which trials run, when, how often and how they end.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import run_cli

pytestmark = pytest.mark.slow  # end-to-end processes: `pytest -m slow` (CI runs it)

TINY = ["--set", "sample_every=0", "--set", "eval_samples=200", "--set", "log_every=10"]


def _start(*args: str, cwd: Path, cores: set[int] | None = None) -> subprocess.Popen:
    """A sweep driver; ``cores``: the processors it (and so its trials) may use."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    pin = (lambda: os.sched_setaffinity(0, cores)) if cores else None
    return subprocess.Popen([sys.executable, "-m", "workbench", "sweep", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=pin)


def _manifest(folder: Path) -> dict:
    try:
        return json.loads((folder / "sweep.json").read_text())
    except (OSError, ValueError):
        return {}


def _wait(condition, timeout: float = 900, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _run_starts(run: Path) -> list[dict]:
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines() if line.strip()]
    return [e for e in events if e["type"] == "run_start"]


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def grid_sweep(tmp_path_factory):
    """A finished grid sweep: two learning rates, two seeds, 50 steps each, evaluated every 25."""
    cwd = tmp_path_factory.mktemp("grid")
    result = run_cli("sweep", "-p", "mlp_gan", "--set", "lr=2e-4,0.1", "--seeds", "2", "--steps", "50",
                     "--set", "eval_every=25", *TINY, "--name", "grid", cwd=cwd, timeout=1800)
    assert result.returncode == 0, result.stdout + result.stderr
    return cwd, result


def test_a_grid_sweep_trains_every_setting_and_seed_as_ordinary_runs(grid_sweep):
    cwd, result = grid_sweep
    folder = cwd / "runs" / "grid"
    assert "sweep folder: runs/grid" in result.stdout
    manifest = _manifest(folder)
    assert [(t["point"]["lr"], t["seed"], t["status"]) for t in manifest["trials"].values()] == [
        (2e-4, 0, "completed"), (2e-4, 1, "completed"), (0.1, 0, "completed"), (0.1, 1, "completed")]
    for name, trial in manifest["trials"].items():
        config = json.loads((folder / name / "config.json").read_text())
        assert config["hyperparams"]["lr"] == trial["point"]["lr"] and config["seed"] == trial["seed"]
        assert config["tags"] == {"sweep": "grid", "trial": name, "point": trial["point"]}
        assert len(_run_starts(folder / name)) == 1
    listed = run_cli("runs", "--runs-dir", "runs/grid", "--json", cwd=cwd)
    assert sorted(r["name"] for r in json.loads(listed.stdout)) == sorted(manifest["trials"])


def test_compare_ranks_the_settings_with_mean_and_std_and_draws_them(grid_sweep):
    cwd, _ = grid_sweep
    result = run_cli("compare", "runs/grid", "--json", "--out", "figures", cwd=cwd)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [s["label"] for s in report["settings"]] == ["lr=0.0002", "lr=0.1"]  # 0.1 collapses: far higher fd
    best = report["settings"][0]
    values = [r["last"] for r in best["runs"]]
    assert best["mean_last"] == pytest.approx(sum(values) / 2) and best["std_last"] > 0
    assert report["common_step"] == 50 and report["best"]["command"].startswith("ganbench run --resume runs/grid/")
    for picture in ("curves.png", "contact-sheet.png"):
        assert (cwd / "figures" / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = run_cli("compare", "runs/grid", cwd=cwd).stdout
    assert "best: lr=0.0002" in table and "± " in table and "train it further: ganbench run --resume" in table


def test_compare_without_a_metric_says_why_it_cannot_rank_and_still_draws(tmp_path):
    result = run_cli("run", "-p", "mlp_gan", "--steps", "4", "--set", "sample_every=2", "--name", "a", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    shown = run_cli("compare", "runs/a", "--out", "out", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "Cannot rank by fd: none of these runs has an fd value" in shown.stdout
    assert (tmp_path / "out" / "contact-sheet.png").is_file()


def test_kill_9_of_the_driver_then_resume_finishes_without_training_anything_twice(tmp_path):
    # One trial at a time (the CPU default is one per core): the first ends before the second starts.
    driver = _start("-p", "mlp_gan", "--set", "lr=1e-4,2e-4,3e-4", "--steps", "80", "--set", "eval_every=80",
                    "--set", "checkpoint_every=10", *TINY, "--parallel", "1", "--name", "k", cwd=tmp_path)
    folder = tmp_path / "runs" / "k"
    names = []

    def second_is_training() -> bool:
        trials = list(_manifest(folder).get("trials", {}).items())
        names[:] = [n for n, _ in trials]
        if len(trials) < 3 or trials[0][1]["status"] != "completed":
            return False
        checkpoints = folder / trials[1][0] / "checkpoints"
        return checkpoints.is_dir() and any(checkpoints.glob("step-*.safetensors"))

    try:
        _wait(second_is_training, what="the second trial's first checkpoint")
        finished = _digest(folder / names[0])
        driver.kill()  # SIGKILL: no handler runs
        driver.wait()
    finally:
        driver.kill()
    second = folder / names[1]
    # The trial notices its driver is gone (PR_SET_PDEATHSIG), checkpoints and stops on its own.
    _wait(lambda: json.loads((second / "state.json").read_text())["status"] == "stopped", timeout=300,
          what="the orphaned trial to stop")
    stopped_at = json.loads((second / "state.json").read_text())["step"]
    assert 0 < stopped_at < 80
    resumed = run_cli("sweep", "--resume", "runs/k", cwd=tmp_path, timeout=1800)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert _digest(folder / names[0]) == finished  # the finished trial: byte for byte
    assert [t["status"] for t in _manifest(folder)["trials"].values()] == ["completed"] * 3
    starts = _run_starts(second)
    assert [s["resumed_from"] is not None for s in starts] == [False, True]  # continued, not retrained
    assert starts[1]["step"] == stopped_at
    assert len(_run_starts(folder / names[2])) == 1
    assert f"{names[1]}: resumed" in resumed.stdout and names[0] not in resumed.stdout.split("trials:")[0]


def test_two_joined_drivers_never_run_the_same_trial(tmp_path):
    # Each driver on processors of its own (when there are two), as on two boxes: no warning about shared cores.
    cores = sorted(os.sched_getaffinity(0))
    halves = ({cores[0]}, {cores[1]}) if len(cores) > 1 else (None, None)
    first = _start("-p", "mlp_gan", "--set", "lr=1e-4,2e-4,3e-4,4e-4", "--steps", "30", "--set", "eval_every=30",
                   *TINY, "--name", "j", cwd=tmp_path, cores=halves[0])
    _wait(lambda: len(_manifest(tmp_path / "runs" / "j").get("trials", {})) == 4, what="the sweep's manifest")
    second = _start("--join", "runs/j", cwd=tmp_path, cores=halves[1])
    outputs = [p.communicate(timeout=1800)[0] for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outputs
    assert len(cores) < 2 or "warning: another driver" not in outputs[1]
    started = [{line.split(": ")[0].split()[-1] for line in out.splitlines() if ": started (" in line}
               for out in outputs]
    assert started[0].isdisjoint(started[1]) and started[0] | started[1] == set(_manifest(tmp_path / "runs" / "j")
                                                                                ["trials"]), outputs
    assert started[1], "the joined driver took no trial"
    for name in started[0] | started[1]:
        assert len(_run_starts(tmp_path / "runs" / "j" / name)) == 1


def test_a_tpe_search_with_pruning_stops_a_learning_rate_that_cannot_work(tmp_path):
    # lr=1e-8 cannot learn (G stays as initialised) while 2e-4 does, whatever the seed. With --seed 1 the TPE
    # sampler's (seeded) draws are 2e-4, 2e-4, 1e-8: the median pruner has two finished trials to judge the third.
    # Long enough that the driver reads an evaluation while the trial still trains, even on an idle machine.
    result = run_cli("sweep", "-p", "mlp_gan", "--set", "lr=2e-4,1e-8", "--search", "tpe", "--trials", "3",
                     "--seed", "1", "--prune", "--steps", "600", "--set", "eval_every=100", *TINY, "--parallel", "1",
                     "--name", "p",
                     cwd=tmp_path, timeout=1800)
    assert result.returncode == 0, result.stdout + result.stderr
    trials = _manifest(tmp_path / "runs" / "p")["trials"]
    pruned = [t for t in trials.values() if t["status"] == "pruned"]
    assert pruned and all(t["point"]["lr"] == 1e-8 and t["pruned_at"] < 600 for t in pruned), trials
    assert any(t["status"] == "completed" and t["point"]["lr"] == 2e-4 for t in trials.values())
    for name, trial in trials.items():
        if trial["status"] == "pruned":
            assert f"{name}: pruned at step {trial['pruned_at']}" in result.stdout
            state = json.loads((tmp_path / "runs" / "p" / name / "state.json").read_text())
            assert state["status"] == "stopped" and state["step"] < 600  # checkpointed and ended early


def test_sigterm_stops_the_sweep_cleanly_and_resume_continues(tmp_path):
    driver = _start("-p", "mlp_gan", "--set", "lr=1e-4,2e-4", "--steps", "400", "--set", "eval_every=200",
                    *TINY, "--parallel", "1", "--name", "t", cwd=tmp_path)
    folder = tmp_path / "runs" / "t"
    _wait(lambda: any((folder / n / "events.jsonl").is_file() for n in _manifest(folder).get("trials", {})),
          what="the first trial")
    time.sleep(2)
    driver.send_signal(signal.SIGTERM)
    output = driver.communicate(timeout=600)[0]
    assert driver.returncode == 128 + signal.SIGTERM, output
    assert "continue it with: ganbench sweep --resume runs/t" in output
    statuses = [t["status"] for t in _manifest(folder)["trials"].values()]
    assert statuses == ["stopped", "pending"], statuses
    first = next(iter(_manifest(folder)["trials"]))
    assert json.loads((folder / first / "state.json").read_text())["status"] == "stopped"
