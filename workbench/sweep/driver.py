"""The sweep driver: takes trials, starts one ``ganbench run`` per free slot, watches, prunes, stops.

The driver reads each running trial's ``events.jsonl`` from where it left off
twice a second (a few appended lines: nothing a trial would notice), reports
the objective's ``eval`` values to the Optuna study and asks a hopeless trial to
stop through its ``requests/`` folder, as the workbench's stop key does.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

from workbench.base.errors import ConfigError
from workbench.rundir.control import send_request
from workbench.rundir.directory import RunDir, create_run_dir
from workbench.rundir.lock import run_is_locked
from workbench.sweep import study as studies
from workbench.sweep.manifest import FINAL, UNFINISHED, Sweep, planned_trials
from workbench.sweep.space import Axis, trial_name
from workbench.sweep.trials import CONSOLE_LOG, TrialProcess, objective_of, outcome, start_trial, trial_config

POLL_SECONDS = 0.5


@dataclass(frozen=True)
class Slot:
    """Where one trial trains at a time: a GPU (``CUDA_VISIBLE_DEVICES``) or a share of the CPU's threads."""

    label: str
    env: tuple[tuple[str, str], ...]  # a CPU slot's: the even share; each trial's own comes from cpu_share
    cpus: int = 0  # a CPU slot: the cores the driver shares out between its trials; 0 for a GPU


def plan_slots(device: str, devices: str | None, parallel: int | None, cpus: int | None = None,
               trials_left: int | None = None) -> list[Slot]:
    """One slot per GPU (all, or ``devices`` such as ``0,2``); on a CPU ``parallel`` slots sharing its cores.

    Without ``parallel`` a CPU gets one slot per core, as many as there are trials left, the cores split evenly
    between them: measured on 2 cores, two trials of one thread each finish 1.3 to 1.8x sooner than one trial of
    two threads after the other, while two processes that each take every core train 2 to 5x slower
    (``ganbench bench --sweep``; docs/sweeps.md)."""
    import torch

    from workbench.engine.devices import usable_cpus

    cuda = device in ("auto", "cuda") and torch.cuda.is_available()
    if devices is not None:
        if not cuda:
            raise ConfigError("--devices picks GPUs, but PyTorch sees no CUDA GPU here; use --parallel K on a CPU.")
        try:
            chosen = [int(part) for part in devices.split(",")]
        except ValueError:
            raise ConfigError(f'--devices takes GPU numbers such as 0,2; got "{devices}".') from None
        count = torch.cuda.device_count()
        if not chosen or len(set(chosen)) != len(chosen) or any(not 0 <= i < count for i in chosen):
            raise ConfigError(f"--devices {devices}: this box has GPUs 0 to {count - 1}, each named once.")
        return [Slot(f"cuda:{i}", (("CUDA_VISIBLE_DEVICES", str(i)),)) for i in chosen]
    if cuda and parallel is None:
        return [Slot(f"cuda:{i}", (("CUDA_VISIBLE_DEVICES", str(i)),)) for i in range(torch.cuda.device_count())]
    cpus = cpus or usable_cpus()
    if parallel is None:
        parallel = max(1, min(cpus, trials_left if trials_left is not None else cpus))
    if parallel < 1:
        raise ConfigError(f"--parallel must be at least 1; got {parallel}.")
    threads = max(1, cpus // parallel)
    env = (("OMP_NUM_THREADS", str(threads)), ("MKL_NUM_THREADS", str(threads)))
    return [Slot(f"cpu slot {i + 1}", env, cpus) for i in range(parallel)]


def trials_left(manifest: dict) -> int:
    """How many trials the sweep may still train: its unfinished ones, and the settings a search has yet to draw."""
    trials = manifest.get("trials") or {}
    unfinished = sum(entry["status"] in UNFINISHED for entry in trials.values())
    return unfinished + max(0, planned_trials(manifest) - len(trials))  # a grid's are all listed already


def cpu_share(cpus: int, running: list[int], free_slots: int, to_start: int) -> int:
    """Threads for a CPU trial starting now: the cores the running trials (``running``: their threads) leave,
    shared with the other trials that can start beside it. Never more than is free, since two trials on one
    core slow each other several-fold; so a sweep's last trials take the cores the finished ones left."""
    starting = max(1, min(free_slots, to_start))
    return max(1, (cpus - sum(running)) // starting)


class Driver:
    """Works on a sweep until no trial is left for it (or it is told to stop)."""

    def __init__(self, sweep: Sweep, registry, slots: list[Slot], reporter):
        self.sweep, self.registry, self.slots, self.reporter = sweep, registry, slots, reporter
        self.manifest = sweep.read()
        self.axes = [Axis.from_dict(a) for a in self.manifest["axes"]]
        self.metric = self.manifest["objective"]["metric"]
        self.study = studies.load_study(sweep, self.manifest)
        self.running: dict[str, TrialProcess] = {}
        self.signals: list[int] = []
        # Trials that crashed or were stopped by hand while this driver watched: not retried until --resume,
        # so a trial that cannot start (or that a user stopped in the workbench) does not loop.
        self.let_be: set[str] = set()

    # -- the loop -------------------------------------------------------------
    def run(self) -> int:
        """Train until done; 0, or 128 + the signal that stopped the sweep."""
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
                    if signal.getsignal(s) is not signal.SIG_IGN}
        me = f"{os.uname().nodename}:{os.getpid()}"  # the workbench's stop key signals the drivers on its host
        self.sweep.update(lambda m: m.setdefault("drivers", {}).update({me: round(time.time(), 3)}))
        try:
            while True:
                nothing_left = False
                while not self.signals and len(self.running) < len(self.slots):
                    taken = self._take()
                    if taken is None:
                        nothing_left = True
                        break
                    if taken == "wait":
                        break
                for trial in list(self.running.values()):
                    self._watch(trial)
                if not self.running and (nothing_left or self.signals):
                    break
                time.sleep(POLL_SECONDS)
        finally:
            self.sweep.update(lambda m: m.setdefault("drivers", {}).pop(me, None))
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self.reporter.close()
        return 128 + self.signals[0] if self.signals else 0

    def _on_signal(self, signum, _frame) -> None:
        self.signals.append(signum)
        if len(self.signals) > 1:
            raise KeyboardInterrupt  # a second Ctrl-C: leave now; the trials get SIGTERM as this process dies
        self.reporter.line(f"stopping the sweep: {len(self.running)} running trial(s) checkpoint and stop "
                           f"(Ctrl-C again to quit at once)")
        for trial in self.running.values():
            send_request(trial.run.path, "stop")

    # -- taking a trial ----------------------------------------------------------
    def _take(self):
        """Start the next trial this driver may take: an orphaned one, a pending one, or a new setting.
        Returns the TrialProcess, "wait" (an orphan's old process is still stopping) or None (nothing left)."""
        waiting = False
        with self.sweep.locked():
            manifest = self.sweep.read()
            for name, entry in sorted(manifest["trials"].items(), key=lambda item: item[1]["number"]):
                if entry["status"] not in UNFINISHED or name in self.running or name in self.let_be:
                    continue
                claim = self.sweep.claim(name)
                if claim is None:
                    continue  # another driver watches it
                run = RunDir(self.sweep.path / name)
                if run_is_locked(run.path):  # its process outlived a dead driver and is still stopping
                    os.close(claim)
                    waiting = True
                    continue
                if run.config.is_file() and run.status() in FINAL:  # it ended while nobody watched
                    self._conclude(manifest, name, entry, run, None, None)
                    os.close(claim)
                    continue
                return self._start(manifest, name, entry, claim, run)
            name = self._new_setting(manifest)
            if name is not None:
                return self._start(manifest, name, manifest["trials"][name], self.sweep.claim(name),
                                   RunDir(self.sweep.path / name))
        return "wait" if waiting else None

    def _new_setting(self, manifest: dict) -> str | None:
        """Ask the sampler for a new setting and add its trials (one per seed); the first one's name."""
        limit = manifest.get("trials_limit")
        if manifest["search"] == "grid" or manifest.get("settings_created", 0) >= (limit or 0):
            return None
        study = studies.load_study(self.sweep, manifest)
        seeds = manifest["seeds"]
        number, point = studies.new_point(study, self.axes, seeds[0])
        names = [trial_name(number, point, seeds[0])]
        manifest["trials"][names[0]] = {"number": number, "point": point, "seed": seeds[0], "status": "pending"}
        for seed in seeds[1:]:
            other = studies.fixed_trial(study, self.axes, point, seed)
            names.append(trial_name(other, point, seed))
            manifest["trials"][names[-1]] = {"number": other, "point": point, "seed": seed, "status": "pending"}
        manifest["settings_created"] = manifest.get("settings_created", 0) + 1
        return names[0]

    def _start(self, manifest: dict, name: str, entry: dict, claim: int, run: RunDir) -> TrialProcess:
        """Launch the trial as ``ganbench run``: ``--resume`` once it has trained, else ``--config`` of its
        prepared folder (made here with ``create_run_dir``, or left by a driver that died before starting it)."""
        slot = next(s for s in self.slots if s not in {t.slot for t in self.running.values()})
        resume = run.events.is_file() or run.state.is_file()
        if not resume and not run.config.is_file():
            create_run_dir(trial_config(manifest, self.registry, name, entry["point"], entry["seed"]))
        args = ["--resume", str(run.path)] if resume else ["--config", str(run.config)]
        entry["status"] = "running"
        entry.pop("message", None)
        self.sweep.write(manifest)
        env, where, threads = dict(slot.env), slot.label, 0
        if slot.cpus:
            threads = cpu_share(slot.cpus, [t.threads for t in self.running.values()],
                                free_slots=len(self.slots) - len(self.running),
                                to_start=trials_left(manifest) - len(self.running))
            env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
            where = f"{slot.label} ({threads} thread{'s' if threads > 1 else ''})"
        process = start_trial(args, run.path / CONSOLE_LOG, env)
        trial = TrialProcess(name, entry["number"], run, process, claim, slot, where, threads=threads,
                             offset=run.events.stat().st_size if run.events.is_file() else 0)
        if resume:
            trial.reported = set(studies.reported_steps(self.study, entry["number"]))
        self.running[name] = trial
        self.reporter.started(trial, entry, resume)
        return trial

    # -- watching ------------------------------------------------------------
    def _watch(self, trial: TrialProcess) -> None:
        for event in trial.new_events():
            kind = event.get("type")
            if isinstance(event.get("step"), int):
                trial.step = event["step"]
            if kind == "run_start":
                trial.total_steps = event.get("total_steps")
            elif kind == "eval":
                self._judge(trial, event)
        code = trial.process.poll()
        if code is not None:
            trial.new_events()
            del self.running[trial.name]
            status, message = outcome(trial.run, code, trial.prune_step, trial.run.path / CONSOLE_LOG)
            if status in UNFINISHED:
                self.let_be.add(trial.name)
            entry = self.sweep.update(lambda m: self._conclude(m, trial.name, m["trials"][trial.name], trial.run,
                                                               status, message))
            os.close(trial.claim)
            self.reporter.ended(trial, entry)
        else:
            self.reporter.progress(trial)

    def _judge(self, trial: TrialProcess, event: dict) -> None:
        value = event["metrics"].get(self.metric) if isinstance(event.get("metrics"), dict) else None
        if not isinstance(value, (int, float)):
            return
        trial.objective = float(value)
        if event["step"] in trial.reported or trial.prune_step is not None:
            return
        trial.reported.add(event["step"])
        if studies.report(self.study, trial.number, event["step"], float(value)) and not self.signals:
            trial.prune_step = event["step"]
            send_request(trial.run.path, "stop")
            self.reporter.line(f"{trial.name}: pruning at step {event['step']:,} ({self.metric} {value:.4g})")

    def _conclude(self, manifest: dict, name: str, entry: dict, run: RunDir, status: str | None,
                  message: str | None) -> dict:
        """Record how a trial ended in the manifest and the study (status None: read it from the run)."""
        if status is None:
            status, message = outcome(run, None, None, run.path / CONSOLE_LOG)
        last = objective_of(run, self.metric) if run.events.is_file() else None
        entry.update(status=status, message=message or "", objective=last[1] if last else None,
                     objective_step=last[0] if last else None)
        if status == "pruned":
            entry["pruned_at"] = last[0] if last else None
        if status in FINAL:
            studies.finish(self.study, entry["number"], status, last[1] if last else None)
        return entry
