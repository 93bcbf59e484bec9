"""Time whole processes as users start them: a workload's reference script, and ``ganbench run`` with defaults.

Each side runs as a process of its own on the same images, once for a short and
once for a long step count, alternating which side goes first. The steady-state
rate of a side is the difference of the two: ``(long - short) * batch / (t_long -
t_short)``, so start-up (imports, reading the data) cancels out while everything
a run does every so many steps (sample grids, checkpoints, events, prints) stays
in. ``ganbench run`` keeps every default setting; its start-up is reported apart
as the time from launching the process to its first training step (the
``run_start`` event, written just before the loop).
"""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from workbench.base.errors import ConfigError, GanbenchError
from workbench.host.workloads import Workload
from workbench.rundir.events import iter_events
from workbench.rundir.process import ganbench_command


@dataclass
class ProcessTiming:
    """One process: which side, how many steps, its wall time and (``ganbench run``) the time to its first step."""

    side: str
    steps: int
    seconds: float
    first_step_s: float | None = None


@dataclass
class WholeProcessResult:
    """Both sides of one workload, a (short, long) pair of processes per side and repeat."""

    workload: Workload
    batch_size: int
    dataset: str
    short: int
    long: int
    script: list[tuple[ProcessTiming, ProcessTiming]] = field(default_factory=list)
    ganbench: list[tuple[ProcessTiming, ProcessTiming]] = field(default_factory=list)

    def _rates(self, pairs) -> list[float]:
        """Steady-state images/s per repeat; NaN where the long process took no longer than the short one
        (the machine's load changed between them: that repeat measured nothing)."""
        return [(self.long - self.short) * self.batch_size / (b.seconds - a.seconds) if b.seconds > a.seconds
                else math.nan for a, b in pairs]

    @property
    def script_rates(self) -> list[float]:
        return self._rates(self.script)

    @property
    def ganbench_rates(self) -> list[float]:
        return self._rates(self.ganbench)

    @property
    def ratios(self) -> list[float]:
        """ganbench's steady-state rate over the script's, per repeat (measured back to back)."""
        return [g / s for g, s in zip(self.ganbench_rates, self.script_rates)]

    @property
    def ratio(self) -> float:
        """The median of the repeats that measured something (NaN if none did)."""
        return _median(self.ratios)

    @property
    def first_step_s(self) -> float:
        """The median time from launching ``ganbench run`` to its first training step."""
        return statistics.median(t.first_step_s for pair in self.ganbench for t in pair)

    def outside_share(self, engine_rate: float) -> float:
        """The share of a default run's wall time spent outside the training steps: 1 - the whole run's
        steady-state rate over the engine's own step rate (measured in-process on the same data)."""
        return 1 - _median(self.ganbench_rates) / engine_rate


def _median(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return statistics.median(finite) if finite else math.nan


def _number(value: float, digits: int):
    """A JSON number, or null for a repeat that measured nothing."""
    return round(value, digits) if math.isfinite(value) else None


class WholeProcessBench:
    """Runs one workload's reference script and ``ganbench run`` as processes.

    :param hp: the hyper-parameters both sides use (as the in-process benchmark resolved them).
    :param images: the engine's images of ``dataset`` and their labels, written once where the script reads them.
    :param sets: ``--set`` items for ``ganbench run`` beside the workload's own (engine settings, ganbench only).
    """

    def __init__(self, workload: Workload, workdir: Path, *, hp: dict, dataset: str, images, labels,
                 steps: int = 1200, device: str = "cpu", seed: int = 0, sets: list[str] = ()):
        if workload.whole_process is None:
            raise ConfigError(f"{workload.name} has no standalone script to run as a process.")
        if steps < 12:
            raise ConfigError(f"--whole-process needs at least 12 steps (a short run of a sixth of them and a long "
                              f"one); got {steps}.")
        self.workload, self.workdir, self.hp, self.dataset = workload, Path(workdir), hp, dataset
        self.long, self.short = steps, steps // 6
        self.device, self.seed, self.sets = device, seed, list(sets)
        self.script = workload.whole_process
        self.data_root = self.script.data_root(dataset, images, labels, self.workdir)
        self.env = dict(os.environ)
        if device == "cpu":
            self.env["CUDA_VISIBLE_DEVICES"] = ""  # the scripts take a GPU whenever they see one

    def _launch(self, command: list[str], cwd: Path, log: Path) -> tuple[float, float]:
        """Run ``command`` to its end; return (wall-clock launch time, seconds it took)."""
        cwd.mkdir(parents=True, exist_ok=True)
        with open(log, "w") as out:
            launched, start = time.time(), time.perf_counter()
            code = subprocess.call(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=self.env)
            seconds = time.perf_counter() - start
        if code != 0:
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
            raise GanbenchError(f"{' '.join(command[:3])} ... exited with {code}: {' | '.join(tail)}")
        return launched, seconds

    def run_script(self, steps: int, tag: str) -> ProcessTiming:
        folder = self.workdir / f"script-{tag}"
        command = [sys.executable, str(self.script.path),
                   *self.script.arguments(self.hp, steps, self.data_root, self.dataset)]
        _, seconds = self._launch(command, folder, self.workdir / f"script-{tag}.log")
        return ProcessTiming("script", steps, seconds)

    def run_ganbench(self, steps: int, tag: str) -> ProcessTiming:
        name = f"ganbench-{tag}"
        sets = [f"{k}={v}" for k, v in self.workload.hyperparams.items()] + self.sets
        command = ganbench_command("run", "--plugin", self.workload.model, "--dataset", self.dataset,
                                   "--steps", str(steps), "--device", self.device, "--seed", str(self.seed),
                                   "--runs-dir", str(self.workdir / "runs"), "--name", name,
                                   *(item for s in sets for item in ("--set", s)))
        launched, seconds = self._launch(command, self.workdir, self.workdir / f"{name}.log")
        start = next(e for e in iter_events(self.workdir / "runs" / name / "events.jsonl")
                     if e["type"] == "run_start")
        return ProcessTiming("ganbench", steps, seconds, round(start["time"] - launched, 3))

    def measure(self, repeats: int = 1, report=lambda line: None) -> WholeProcessResult:
        """Run the four processes of each repeat, alternating which side goes first."""
        result = WholeProcessResult(self.workload, self.hp["batch_size"], self.dataset, self.short, self.long)
        for repeat in range(repeats):
            sides = ("script", "ganbench") if repeat % 2 == 0 else ("ganbench", "script")
            timings = {}
            for steps, length in ((self.short, "short"), (self.long, "long")):
                for side in sides:
                    tag = f"{repeat}-{length}"
                    timing = self.run_script(steps, tag) if side == "script" else self.run_ganbench(steps, tag)
                    timings[side, length] = timing
                    first = f", first step after {timing.first_step_s:.2f} s" if timing.first_step_s else ""
                    report(f"  {self.workload.name} repeat {repeat + 1}/{repeats}: {side:8} {steps:6,} steps "
                           f"in {timing.seconds:7.2f} s{first}")
            result.script.append((timings["script", "short"], timings["script", "long"]))
            result.ganbench.append((timings["ganbench", "short"], timings["ganbench", "long"]))
        return result


def to_dict(result: WholeProcessResult, engine_rate: float | None = None) -> dict:
    """One workload's whole-process numbers for ``--json``."""
    pairs = {side: [[round(a.seconds, 3), round(b.seconds, 3)] for a, b in getattr(result, side)]
             for side in ("script", "ganbench")}
    out = {"workload": result.workload.name, "script": str(result.workload.whole_process.path.name),
           "dataset": result.dataset, "batch_size": result.batch_size, "short_steps": result.short,
           "long_steps": result.long, "process_seconds": pairs,
           "script_images_per_s": [_number(r, 1) for r in result.script_rates],
           "ganbench_images_per_s": [_number(r, 1) for r in result.ganbench_rates],
           "ratios": [_number(r, 3) for r in result.ratios], "ratio": _number(result.ratio, 3),
           "first_step_s": [t.first_step_s for pair in result.ganbench for t in pair],
           "first_step_median_s": round(result.first_step_s, 3)}
    if engine_rate:
        out["engine_images_per_s"] = round(engine_rate, 1)
        out["outside_steps_share"] = _number(result.outside_share(engine_rate), 4)
    return out


def summary_line(result: WholeProcessResult, engine_ratio: float | None, engine_rate: float | None) -> str:
    """``NAME whole process: script 1,876 images/s, ganbench run 4,200 images/s, ratio 2.24x; engine ratio
    2.35x; first step 3.1 s after launch; outside the steps 2.1 % of the run``."""
    line = (f"{result.workload.name} whole process: {result.workload.whole_process.path.name} "
            f"{_median(result.script_rates):,.1f} images/s, ganbench run "
            f"{_median(result.ganbench_rates):,.1f} images/s, ratio {result.ratio:.2f}x")
    if engine_ratio is not None:
        line += f"; engine ratio {engine_ratio:.2f}x"
    line += f"; first step {result.first_step_s:.2f} s after launch"
    if engine_rate:
        line += f"; outside the steps {100 * result.outside_share(engine_rate):.1f} % of the run"
    return line


def table(rows: list[tuple[WholeProcessResult, float | None, float | None]], device: str) -> str:
    """The whole-process and engine ratios as a Markdown table for docs/performance.md and the README."""
    lines = ["| workload | script | steps | script images/s | `ganbench run` images/s | whole-process ratio | "
             "engine ratio | first step | outside the steps |", "|---|---|---|---|---|---|---|---|---|"]
    for result, engine_ratio, engine_rate in rows:
        engine = f"{engine_ratio:.2f}x" if engine_ratio is not None else "-"
        outside = f"{100 * result.outside_share(engine_rate):.1f} %" if engine_rate else "-"
        lines.append(f"| {result.workload.name} | {result.workload.whole_process.path.name} | {result.short} / "
                     f"{result.long} | {_median(result.script_rates):,.0f} | "
                     f"{_median(result.ganbench_rates):,.0f} | {result.ratio:.2f}x | {engine} | "
                     f"{result.first_step_s:.1f} s | {outside} |")
    return "\n".join(lines) + f"\n\ndevice: {device}"
