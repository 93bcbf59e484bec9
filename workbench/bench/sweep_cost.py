"""What a sweep costs its trials on this machine: the driver beside a trial, and trials beside each other.

Every side is a real process tree started as a user starts it (``ganbench run``,
``ganbench sweep``), on the same model, data and steps, with evaluations and
sample grids off so that only training is timed. A run's training rate is read
from its own ``metrics`` events: images between the first and the last of them
over the seconds between, so start-up (imports, reading the data) is left out.
The sides alternate their order from repeat to repeat and the ratios are taken
within a repeat, so a machine whose speed drifts still gives meaningful ratios.

- ``alone``: one ``ganbench run``.
- ``parallel-1``: a sweep of two seeds one at a time (every core each); its
  first trial is the same run as ``alone``, so their rates give the driver's cost
  to a trial (it reads the trial's events twice a second and must not slow it).
- ``parallel-2``: the same sweep two trials at a time (the cores split).
- ``by-hand``: two ``ganbench run`` started at once, each taking every core (what
  two torch processes with a full team of threads each do to each other).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from workbench.base.errors import GanbenchError
from workbench.engine.devices import usable_cpus
from workbench.rundir.events import iter_events
from workbench.rundir.process import start_ganbench

SIDES = ("alone", "parallel-1", "parallel-2", "by-hand")
LABELS = {
    "alone": "`ganbench run` alone",
    "parallel-1": "2 trials, --parallel 1",
    "parallel-2": "2 trials, --parallel 2",
    "by-hand": "2 runs started at once by hand",
}


@dataclass
class Timing:
    """One side of one repeat: its wall time and the training rate of each of its runs."""

    side: str
    seconds: float
    rates: list[float]


def training_rate(events: Path) -> float:
    """Images/s between a run's first and last ``metrics`` events (its start-up left out)."""
    start = next(e for e in iter_events(events) if e["type"] == "run_start")
    metrics = [e for e in iter_events(events) if e["type"] == "metrics"]
    if len(metrics) < 2 or metrics[-1]["time"] <= metrics[0]["time"]:
        raise GanbenchError(f"{events.parent.name} logged too few steps to time; give more --process-steps.")
    steps = metrics[-1]["step"] - metrics[0]["step"]
    return steps * start["batch_size"] / (metrics[-1]["time"] - metrics[0]["time"])


class SweepCostBench:
    """The four sides for ``model`` on ``dataset``, ``steps`` steps each, in ``workdir``.

    :param sets: ``--set`` items every run gets besides the ones that turn evaluation and grids off.
    """

    def __init__(self, model: str, workdir: Path, *, dataset: str | None, steps: int, seed: int = 0,
                 sets: list[str] = (), cpus: int | None = None):
        self.model, self.workdir, self.dataset, self.steps, self.seed = model, Path(workdir), dataset, steps, seed
        self.sets = ["eval_every=0", "sample_every=0", "log_seconds=0.5", *sets]
        self.cpus = cpus or usable_cpus()
        self.env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}

    def _common(self) -> list[str]:
        dataset = ["--dataset", self.dataset] if self.dataset else []
        return ["--plugin", self.model, *dataset, "--steps", str(self.steps), "--device", "cpu",
                *(item for s in self.sets for item in ("--set", s))]

    def _start(self, command: list[str], log: Path, threads: int | None = None) -> subprocess.Popen:
        env = self.env if threads is None else {**self.env, "OMP_NUM_THREADS": str(threads),
                                                "MKL_NUM_THREADS": str(threads)}
        return start_ganbench(command, log, env=env, cwd=self.workdir, append=False)

    def _wait(self, processes: list[subprocess.Popen], logs: list[Path]) -> None:
        for process, log in zip(processes, logs):
            if process.wait() != 0:
                tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-2:])
                raise GanbenchError(f"{process.args[3]} for the sweep benchmark exited with {process.returncode}: "
                                    f"{tail}")

    def _runs(self, side: str, tag: str, count: int) -> Timing:
        """``count`` ``ganbench run`` processes at once, each with every core."""
        names = [f"{tag}-{i}" for i in range(count)]
        logs = [self.workdir / f"{name}.log" for name in names]
        start = time.perf_counter()
        processes = [self._start(["run", *self._common(), "--seed", str(self.seed + i), "--runs-dir", "runs",
                                  "--name", name], log, threads=self.cpus) for i, (name, log) in
                     enumerate(zip(names, logs))]
        self._wait(processes, logs)
        seconds = time.perf_counter() - start
        return Timing(side, seconds, [training_rate(self.workdir / "runs" / n / "events.jsonl") for n in names])

    def _sweep(self, side: str, tag: str, trials: int, parallel: int) -> Timing:
        log = self.workdir / f"{tag}.log"
        start = time.perf_counter()
        process = self._start(["sweep", *self._common(), "--seed", str(self.seed), "--seeds", str(trials),
                               "--parallel", str(parallel), "--runs-dir", "runs", "--name", tag], log)
        self._wait([process], [log])
        seconds = time.perf_counter() - start
        trial_dirs = sorted(p for p in (self.workdir / "runs" / tag).iterdir() if (p / "events.jsonl").is_file())
        return Timing(side, seconds, [training_rate(d / "events.jsonl") for d in trial_dirs])

    def run_side(self, side: str, tag: str) -> Timing:
        if side in ("alone", "by-hand"):
            return self._runs(side, tag, 1 if side == "alone" else 2)
        return self._sweep(side, tag, trials=2, parallel=int(side[-1]))  # parallel-1, parallel-2: two seeds

    def measure(self, repeats: int, report=lambda line: None) -> list[dict[str, Timing]]:
        """Every side once per repeat, the order reversed every other repeat."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        measured = []
        for repeat in range(repeats):
            order = SIDES if repeat % 2 == 0 else tuple(reversed(SIDES))
            timings = {}
            for side in order:
                timings[side] = timing = self.run_side(side, f"r{repeat}-{side}")
                rates = ", ".join(f"{r:,.0f}" for r in timing.rates)
                report(f"  repeat {repeat + 1}/{repeats}: {LABELS[side]:36} {timing.seconds:6.1f} s wall, "
                       f"training at {rates} images/s")
            measured.append(timings)
        return measured


def summarize(measured: list[dict[str, Timing]], cpus: int, steps: int) -> dict:
    """Per-repeat ratios and their medians: the driver's cost, and each way of running two trials against one
    at a time (wall time of the whole pair, and the trials' own training rates)."""
    def median(values):
        return round(statistics.median(values), 3)

    driver = [t["parallel-1"].rates[0] / t["alone"].rates[0] for t in measured]  # the same run, seed and steps
    serial = [t["parallel-1"] for t in measured]
    out = {"cpus": cpus, "steps": steps, "repeats": len(measured),
           "driver_rate_ratio": median(driver), "driver_rate_ratios": [round(r, 3) for r in driver],
           "sides": {side: {"wall_s": [round(t[side].seconds, 2) for t in measured],
                            "images_per_s": [[round(r, 1) for r in t[side].rates] for t in measured]}
                     for side in SIDES}}
    for side in ("parallel-2", "by-hand"):
        out[f"{side}_speedup"] = median([s.seconds / t[side].seconds for s, t in zip(serial, measured)])
    return out


def lines(summary: dict) -> list[str]:
    """The summary as ``ganbench bench --sweep`` prints it."""
    def wall(side):
        return statistics.median(summary["sides"][side]["wall_s"])

    def rate(side):
        return statistics.median(r for rates in summary["sides"][side]["images_per_s"] for r in rates)

    def threads(count):
        return f"{count} thread{'s' if count > 1 else ''} each"

    cpus = summary["cpus"]
    trial = statistics.median(t[0] for t in summary["sides"]["parallel-1"]["images_per_s"])
    rows = (("parallel-1", f"one at a time (--parallel 1, {threads(cpus)})", 1.0),
            ("parallel-2", f"two at a time (--parallel 2, {threads(max(1, cpus // 2))})",
             summary["parallel-2_speedup"]),
            ("by-hand", f"two runs started at once by hand ({threads(cpus)})", summary["by-hand_speedup"]))
    out = [f"the driver beside a trial: {trial:,.0f} images/s as a sweep's trial, {rate('alone'):,.0f} alone, "
           f"ratio {summary['driver_rate_ratio']:.3f} (median of {summary['repeats']})",
           f"two trials of {summary['steps']:,} steps on {cpus} cores:",
           f"  {'':50} {'wall':>8}  {'images/s a trial':>16}  {'pace':>6}"]
    out += [f"  {what:50} {wall(side):6.1f} s  {rate(side):16,.0f}  {pace:5.2f}x" for side, what, pace in rows]
    return out
