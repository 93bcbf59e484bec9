"""``ganbench run``: train a model headless, with progress on the console."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from workbench.base.errors import GanbenchError

NAME = "run"
HELP = "train a model headless"
EXIT_CODES = {"completed": 0, "stopped": 0, "diverged": 3, "failed": 1}


def add_arguments(run) -> None:
    run.description = ("Train a model. Every option defaults from the model plugin; `ganbench plugins` lists "
                       "models, datasets, losses and their settings.")
    run.add_argument("--plugin", "-p", help="the model plugin, e.g. mlp_gan, dcgan, aae")
    run.add_argument("--dataset", "-d", help="the dataset plugin (default: the model's)")
    run.add_argument("--loss", help="the loss plugin: bce, lsgan, hinge, wgan-gp, rpgan (default: the model's)")
    length = run.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=int, help="passes over the dataset")
    length.add_argument("--steps", type=int, help="training steps (instead of --epochs)")
    length.add_argument("--kimg", type=float, help="thousands of training images, all processes together "
                        "(instead of --steps or --epochs)")
    run.add_argument("--batch-size", type=int, help="images per step")
    run.add_argument("--lr", type=float, help="Adam learning rate of both networks")
    run.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                     help="any model hyper-parameter or engine setting; repeatable")
    run.add_argument("--device", help="auto (default), cpu, cuda, cuda:N or mps")
    run.add_argument("--seed", type=int, help="random seed (default 0)")
    run.add_argument("--runs-dir", default=argparse.SUPPRESS,
                     help="where run directories go (default: $GANBENCH_RUNS_DIR, else runs)")
    run.add_argument("--name", help="the run's directory name (default: model-dataset-time)")
    run.add_argument("--data-root", help="folder holding the dataset's files")
    run.add_argument("--download", action="store_true", help="download the dataset if the network allows")
    run.add_argument("--resume", metavar="RUN_DIR_OR_CHECKPOINT", help="continue a run from its last checkpoint")
    run.add_argument("--nproc-per-node", metavar="N|gpu",
                     help="train on N processes of this machine under torchrun (gpu: one per GPU); --batch-size "
                          "stays the whole job's batch (see docs/distributed.md)")
    run.add_argument("--config", metavar="CONFIG_JSON",
                     help="start from a run configuration: another run's config.json repeats that run (the flags "
                          "given beside it change it); the config.json of a folder a launcher prepared trains there")


def main(args) -> int:
    from workbench.cli.console import make_progress
    from workbench.cli.interrupts import Interrupted
    from workbench.engine.distributed import join_job, leave_job

    if args.nproc_per_node is not None:
        return _launch(args)
    ranks = join_job()
    try:
        control, run = _prepare(args, ranks)
    except Interrupted as exc:  # before training began: no checkpoint to write, nothing to record
        return _interrupted_before_training(args, exc.signum)
    if run is None:  # rank 0 could not prepare the run and said why; its exit code is the job's, so this one
        leave_job(ranks)  # ends cleanly: a failing rank 1 would have the agent stop rank 0 before it reports
        return 0
    if ranks.leader:
        control.requests = run.dir.requests
        run.listeners.append(make_progress(sys.stdout))
    received, previous = _install_signal_handlers(control, ranks.distributed, announce=ranks.leader)
    early = args.interrupts.hand_over() if getattr(args, "interrupts", None) else None
    if early is not None and not ranks.distributed:  # a signal that came while starting (a library swallowed it)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _abandon(run, created=not args.resume and not getattr(args, "prepared_folder", None))
        return _interrupted_before_training(args, early)
    if early is not None:  # under torchrun every rank must reach the same step: stop at the first one
        control.request_stop()
    try:
        reason = run.train()
    except KeyboardInterrupt:
        if ranks.leader:
            _say(f"ganbench: {run.end_message} Continue with: ganbench run --resume {run.dir.path}", sys.stderr)
        return 128 + (received[-1] if received else signal.SIGINT)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    leave_job(ranks)  # the other ranks wait here for rank 0's last checkpoint
    if not ranks.leader:
        if reason == "failed":
            _say(f"ganbench: rank {ranks.rank}: {run.end_message}", sys.stderr)
        return _exit_code(reason, received)
    _say(f"run directory: {run.dir.path}", sys.stdout)
    if reason in ("failed", "diverged"):
        _say(f"ganbench: {reason}: {run.end_message}", sys.stderr)
    if run.unrecorded:  # what ganbench runs and --resume read could not be told: say it here, at least
        _say(_unrecorded_sentence(run), sys.stderr)
    return _exit_code(reason, received)


def _exit_code(reason: str, received: list[int]) -> int:
    """A run stopped by a signal exits with 128 + that signal (as the shell expects); otherwise by its end."""
    return 128 + received[-1] if reason == "stopped" and received else EXIT_CODES.get(reason, 1)


def _unrecorded_sentence(run) -> str:
    kept = " and ".join(str(path) for path in run.unrecorded)
    has_it = {run.dir.events: "events.jsonl", run.dir.state: "state.json"}
    told = [name for path, name in has_it.items() if path not in run.unrecorded]
    return (f"ganbench: the end of the run could not be recorded in {kept} (the disk refused the write)"
            f"{'; ' + told[0] + ' has it' if told else ''}.")


def _prepare(args, ranks):
    """Load the plugins and build the run; rank 0 (or the only process) from the flags, the others from rank 0.
    Returns the run's control and the run (None on a rank whose rank 0 gave up)."""
    from workbench.engine.distributed import leave_job
    from workbench.engine.run import follow_job, lead_job, refuse_job
    from workbench.host.manager import load_plugins
    from workbench.quality.periodic import PeriodicEvaluation
    from workbench.rundir.control import RunControl

    plugins = load_plugins()
    for error in plugins.errors:
        if ranks.leader:
            print(f"warning: {error}", file=sys.stderr)
    control, evaluate = RunControl(), PeriodicEvaluation()  # the run's evaluations, handed to the engine
    if not ranks.leader:
        return control, follow_job(plugins, control, ranks, evaluate)
    try:
        run = _prepare_leader(args, plugins, control, ranks, evaluate)
    except BaseException:
        refuse_job(ranks)  # the others learn that rank 0 gave up, and all leave the job together: no rank exits
        leave_job(ranks)   # with its process group alive (its threads abort the process at exit)
        raise
    lead_job(run)
    return control, run


def _launch(args) -> int:
    """``--nproc-per-node``: this same command under torchrun, without the flag."""
    import os

    from workbench.cli.torchrun import process_count, run_under_torchrun, without_flag

    if "WORLD_SIZE" in os.environ:
        raise GanbenchError("--nproc-per-node starts torchrun, but this process already runs under torchrun; "
                            "leave the flag out of the command torchrun starts.")
    nproc = process_count(args.nproc_per_node)
    return run_under_torchrun(nproc, without_flag(args.argv[args.argv.index("run") + 1:]))


def _prepare_leader(args, plugins, control, ranks, evaluate):
    """Rank 0 (or the only process): the run the flags ask for, prepared, with ``evaluate`` its evaluations."""
    from workbench.engine.run import prepare_run
    from workbench.host.configure import build_config

    if args.resume:
        own = [flag for flag, given in (("--plugin", args.plugin), ("--dataset", args.dataset), ("--loss", args.loss),
                                        ("--set", args.sets), ("--batch-size", args.batch_size), ("--lr", args.lr),
                                        ("--seed", args.seed), ("--name", args.name), ("--runs-dir", args.runs_dir))
               if given not in (None, [])]
        if own:
            raise GanbenchError(f"--resume continues a run with its own settings, so {', '.join(own)} cannot be "
                                f"given with it; only --steps, --kimg, --epochs, --device and --data-root can.")
        overrides = {"steps": args.steps, "kimg": args.kimg, "device": args.device, "epochs": args.epochs,
                     "data_root": args.data_root,
                     "download": True if args.download else None}
        return prepare_run(None, plugins, resume=Path(args.resume), control=control, ranks=ranks,
                           overrides={k: v for k, v in overrides.items() if v is not None}, evaluate=evaluate)
    if args.config:
        config, prepared = config_from_launch_file(plugins.registry, Path(args.config), args)
        args.prepared_folder = prepared  # made by a launcher: an interrupted start leaves it to the launcher
        return prepare_run(config, plugins, control=control, in_folder=prepared, ranks=ranks, evaluate=evaluate)
    if not args.plugin:
        raise GanbenchError("Name the model with --plugin (see `ganbench plugins` for the choices).")
    config = build_config(plugins.registry, args.plugin, dataset=args.dataset, loss=args.loss,
                          sets=_sets(args), **_fields(args))
    return prepare_run(config, plugins, control=control, ranks=ranks, evaluate=evaluate)


def _abandon(run, created: bool) -> None:
    """Give up a run that never started training: unlock it, and remove its folder if this process made it."""
    from workbench.rundir.directory import discard_unstarted

    if run.lock is not None:
        run.lock.release()
        run.lock = None
    if created:
        discard_unstarted(run.dir)


def _interrupted_before_training(args, signum: int) -> int:
    kept = f"{args.resume} is as it was" if args.resume else "no run folder was left behind"
    _say(f"ganbench: interrupted by {signal.Signals(signum).name} before training started; {kept}.", sys.stderr)
    return 128 + signum


def _sets(args) -> list[str]:
    """``--epochs``, ``--batch-size`` and ``--lr`` are shortcuts for ``--set``."""
    return [f"{key}={flag}" for flag, key in ((args.epochs, "epochs"), (args.batch_size, "batch_size"),
                                              (args.lr, "lr")) if flag is not None] + list(args.sets)


def _fields(args) -> dict:
    return {"steps": args.steps, "kimg": args.kimg, "device": args.device, "seed": args.seed,
            "runs_dir": args.runs_dir,
            "name": args.name, "data_root": args.data_root, "download": args.download or None}


def config_from_launch_file(registry, path: Path, args):
    """The configuration in ``path`` with the flags given beside ``--config`` applied, and the prepared run
    folder to train in (None: a new run). ``--plugin``, ``--dataset`` and ``--loss`` come from the file."""
    from workbench.engine.resume import config_from_file
    from workbench.host.configure import apply_set, validate
    from workbench.rundir.directory import RunDir

    given = [flag for flag, value in (("--plugin", args.plugin), ("--dataset", args.dataset), ("--loss", args.loss))
             if value is not None]
    if given:
        raise GanbenchError(f"--config names the model, dataset and loss, so {', '.join(given)} cannot be given "
                            f"with it; start a new run without --config to change them.")
    if not path.is_file():
        raise GanbenchError(f"The run configuration {path} does not exist.")
    folder = RunDir(path.parent)
    prepared = path.name == "config.json" and not folder.events.exists() and not folder.state.exists()
    config = config_from_file(path, folder if prepared else None)
    registry.model(config.model)
    for key, value in _fields(args).items():
        if value is not None:
            if prepared and key in ("name", "runs_dir"):
                raise GanbenchError(f"{path.parent} is a prepared run folder, so its name and place are fixed.")
            setattr(config, key, value)
    if not prepared and args.name is None:
        config.name = None  # a repeated run gets a name of its own
    for item in _sets(args):
        apply_set(config, registry, item)
    validate(config, registry)
    return config, (path.parent if prepared else None)


def _say(text: str, stream) -> None:
    """Print, unless the terminal is gone (the SSH session dropped): the run's files say it all anyway."""
    try:
        print(text, file=stream, flush=True)
    except OSError:
        pass


def _install_signal_handlers(control, in_job: bool = False, announce: bool = True) -> tuple[list[int], dict]:
    """First Ctrl-C, SIGTERM or SIGHUP (the SSH session dropped): finish the step, checkpoint, stop.
    A second one: quit at once. In a torchrun job one Ctrl-C may arrive twice, from the terminal (SIGINT) and
    from torchrun's agent passing it on (SIGTERM), so there only the same signal twice quits at once.

    Returns the signals received so far (a live list) and the handlers replaced, to put back afterwards.
    """
    received: list[int] = []

    def handle(signum, _frame):
        received.append(signum)
        if len(received) > 1 and (not in_job or received.count(signum) > 1):
            raise KeyboardInterrupt
        control.request_stop()
        if len(received) == 1 and announce:
            _say("\nstopping after this step and writing a checkpoint (Ctrl-C again to quit at once)", sys.stderr)

    handled = [signal.SIGINT, signal.SIGTERM]
    if hasattr(signal, "SIGHUP") and signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        handled.append(signal.SIGHUP)  # left alone under nohup, which asks for the run to outlive the session
    previous = {signum: signal.getsignal(signum) for signum in handled}
    for signum in previous:
        signal.signal(signum, handle)
    return received, previous
