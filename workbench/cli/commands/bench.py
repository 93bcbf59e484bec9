"""``ganbench bench``: the classic scripts' loops against ganbench's engine, side by side, in one process."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from workbench.base.errors import GanbenchError

NAME = "bench"
HELP = "time the classic scripts' training loops against ganbench's engine, side by side"


def add_arguments(parser) -> None:
    parser.description = (
        "Train the same model on the same images with the same batch size and hyper-parameters twice in this "
        "process: once with the loop of the classic script (PyTorch-GAN gan.py and aae.py, the PyTorch DCGAN "
        "tutorial: torchvision DataLoader, NumPy noise, .item() and a print every batch) and once with "
        "ganbench's engine; print images/s of each and the ratio.")
    parser.add_argument("--model", "-m", action="append", metavar="WORKLOAD",
                        help="a workload the plugins register (the core's: mlp_gan, aae, dcgan-32, dcgan-64) or all "
                             "(default); repeatable")
    parser.add_argument("--steps", type=int, help="timed steps after the warm-up (default: per workload and device)")
    parser.add_argument("--warmup", type=int, help="untimed steps first; also the loss-curve window "
                                                   "(default: per workload)")
    parser.add_argument("--repeats", type=int, default=1, help="time each path N times, alternating which goes "
                                                               "first; report the medians (default 1)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    parser.add_argument("--batch-size", type=int, help="override the workload's batch size")
    parser.add_argument("--dataset", help="an MNIST-like dataset for mlp_gan, aae and dcgan-32 "
                                          "(default fashion-mnist-test; fashion-mnist for the 60,000)")
    parser.add_argument("--image-folder", metavar="DIR", help="for the workloads that read a folder of images "
                                                              "(dcgan-64): a folder of JPEGs such as CelebA "
                                                              "(default: generated CelebA-sized faces)")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="a model hyper-parameter (both paths, e.g. ngf=32) or an engine setting (ganbench "
                             "only, e.g. compile=on); repeatable")
    parser.add_argument("--out", metavar="DIR", help="write both loss curves and both sample grids here")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON (progress goes to stderr)")
    parser.add_argument("--whole-process", action="store_true",
                        help="also run each workload's standalone script and `ganbench run` (default settings) as "
                             "processes, alternating, on the same data: print the whole-process ratio beside the "
                             "engine's, the time to the first step and the share of a run spent outside the steps "
                             "(default dataset fashion-mnist)")
    parser.add_argument("--process-steps", type=int, default=1200,
                        help="with --whole-process: steps of the long processes; the short ones take a sixth, and "
                             "the steady-state rate is the difference (default 1200)")
    parser.add_argument("--sweep", action="store_true",
                        help="instead: what a sweep costs its trials on this CPU. Times `ganbench run` alone, a "
                             "sweep of two seeds one at a time (--parallel 1; its first trial is the same run, "
                             "under the driver) and two at a time (--parallel 2), and two runs started at once by "
                             "hand, each for --process-steps steps (--model: one workload, default mlp_gan)")
    parser.add_argument("--inception", action="store_true",
                        help="instead: the Inception detector behind fid and kid, fed as NVlabs feeds it (batches "
                             "of 64) and as ganbench feeds it on this device, alternating; images/s, the ratio and "
                             "how far the features differ (needs the detector file)")
    parser.add_argument("--images", type=int, default=64, help="with --inception: images a side (default 64)")


def main(args) -> int:
    if args.repeats < 1:
        raise GanbenchError(f"--repeats must be at least 1; got {args.repeats}.")
    if args.batch_size is not None and args.batch_size < 2:
        raise GanbenchError(f"--batch-size must be at least 2; got {args.batch_size}.")
    if args.process_steps < 12:
        raise GanbenchError(f"--process-steps must be at least 12; got {args.process_steps}.")
    for flag, value in (("--steps", args.steps), ("--warmup", args.warmup)):
        if value is not None and value < 1:
            raise GanbenchError(f"{flag} must be at least 1; got {value}.")
    if args.sweep:
        return _sweep_cost(args)
    if args.inception:
        return _inception(args)
    import torch

    from workbench.bench import report, whole_process
    from workbench.bench.runner import WorkloadBench
    from workbench.engine.devices import cpu_name, describe_device, pick_device
    from workbench.host.manager import load_plugins
    from workbench.host.workloads import choose, registered_workloads

    progress = sys.stderr if args.json else sys.stdout

    def say(line: str) -> None:
        print(line, file=progress, flush=True)

    device = pick_device(args.device)
    device_name = describe_device(device) + (f", {cpu_name()}" if device.type == "cpu" else "")
    say(f"ganbench bench on {device_name}, torch {torch.__version__}")
    plugins = load_plugins()
    registered = registered_workloads(plugins.registry)
    for error in plugins.errors:
        print(f"warning: {error}", file=sys.stderr)
    workloads = choose(registered, args.model)
    if args.whole_process:
        scripted = [w for w in workloads if w.whole_process is not None]
        if args.model and "all" not in args.model and len(scripted) < len(workloads):
            lacking = next(w.name for w in workloads if w.whole_process is None)
            runnable = ", ".join(w.name for w in registered.values() if w.whole_process is not None)
            raise GanbenchError(f"{lacking} has no standalone script to run as a process; --whole-process runs "
                                f"{runnable}.")
        workloads = scripted
    dataset = args.dataset or ("fashion-mnist" if args.whole_process else None)
    if args.image_folder and not any(w.reads_folder for w in workloads):
        folders = ", ".join(w.name for w in registered.values() if w.reads_folder)
        raise GanbenchError(f"--image-folder is for the workloads that read a folder of images ({folders}); "
                            f"add --model {folders.split(', ')[0]}.")
    if args.dataset and all(w.reads_folder for w in workloads):
        raise GanbenchError(f"{workloads[0].name} trains on a folder of images: give --image-folder DIR instead "
                            f"of --dataset.")
    results, processes = [], []
    with tempfile.TemporaryDirectory(prefix="ganbench-bench-") as workdir:
        for workload in workloads:
            name = workload.name
            warmup = args.warmup if args.warmup is not None else workload.default_warmup(device.type)
            folder = Path(args.image_folder) if args.image_folder and workload.reads_folder else None
            bench = WorkloadBench(workload, plugins, Path(workdir) / name, device=args.device, warmup=warmup,
                                  steps=args.steps, batch_size=args.batch_size,
                                  dataset=None if workload.reads_folder else dataset, image_folder=folder,
                                  seed=args.seed, sets=args.sets)
            say(f"{name}: {workload.script} vs ganbench {workload.model}, {bench.dataset}, batch "
                f"{bench.hp['batch_size']}, {bench.warmup} warm-up + {bench.steps} timed steps")
            result = bench.measure(args.repeats, report=say)
            results.append(result)
            say(report.ratio_line(result, device_name))
            say(report.quality_line(result))
            if args.out:
                written = report.write_outputs(result, Path(args.out) / name)
                say(f"  wrote {', '.join(str(p) for p in written)}")
            if args.whole_process:
                processes.append(_whole_process(args, workload, bench, result, Path(workdir) / name, device, say))
    if args.json:
        summary = {"device": device_name, "torch": torch.__version__, "results": [report.to_dict(r) for r in results]}
        if args.whole_process:
            summary["whole_process"] = [whole_process.to_dict(p, rate) for p, _, rate in processes]
        print(json.dumps(summary, indent=2))
    else:
        say("")
        say(report.table(results, device_name))
        if processes:
            say("")
            say(whole_process.table(processes, device_name))
    return 0


def _whole_process(args, workload, bench, result, workdir: Path, device, say):
    """The workload's script and `ganbench run` as processes; returns (result, engine ratio, engine rate)."""
    from workbench.bench import whole_process

    processes = whole_process.WholeProcessBench(
        workload, workdir / "whole-process", hp=bench.hp, dataset=bench.config.dataset, images=bench.images,
        labels=bench.labels, steps=args.process_steps, device=str(device), seed=args.seed, sets=args.sets)
    say(f"{workload.name}: {workload.whole_process.path.name} vs ganbench run, as processes, "
        f"{processes.short} and {processes.long} steps")
    measured = processes.measure(args.repeats, report=say)
    say(whole_process.summary_line(measured, result.ratio, result.engine_rate))
    return measured, result.ratio, result.engine_rate


def _sweep_cost(args) -> int:
    """``--sweep``: the driver's cost to a trial, and one trial at a time against two, as processes."""
    from workbench.bench import sweep_cost
    from workbench.engine.devices import cpu_name, usable_cpus
    from workbench.host.manager import load_plugins
    from workbench.host.workloads import choose, registered_workloads

    progress = sys.stderr if args.json else sys.stdout
    registered = registered_workloads(load_plugins().registry)
    chosen = choose(registered, args.model or ["mlp_gan"])
    if len(chosen) != 1:
        raise GanbenchError("--sweep times one workload; name it with one --model.")
    workload = chosen[0]
    sets = [f"{k}={v}" for k, v in workload.hyperparams.items()] + list(args.sets)
    if args.batch_size is not None:
        sets.append(f"batch_size={args.batch_size}")
    cpus = usable_cpus()
    print(f"ganbench bench --sweep: {workload.model} on {args.dataset or 'its default dataset'}, "
          f"{args.process_steps:,} steps a run, {cpus} cores ({cpu_name()})", file=progress, flush=True)
    with tempfile.TemporaryDirectory(prefix="ganbench-sweep-bench-") as workdir:
        bench = sweep_cost.SweepCostBench(workload.model, Path(workdir), dataset=args.dataset,
                                          steps=args.process_steps, seed=args.seed, sets=sets, cpus=cpus)
        measured = bench.measure(args.repeats, report=lambda line: print(line, file=progress, flush=True))
    summary = sweep_cost.summarize(measured, cpus, args.process_steps)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print("\n".join(sweep_cost.lines(summary)))
    return 0


def _inception(args) -> int:
    """``--inception``: the detector's two feedings, alternating, in this process."""
    import torch

    from workbench.bench import inception
    from workbench.engine.devices import cpu_name, describe_device, pick_device

    if args.images < 8:
        raise GanbenchError(f"--images must be at least 8; got {args.images}.")
    progress = sys.stderr if args.json else sys.stdout
    device = pick_device(args.device)
    device_name = describe_device(device) + (f", {cpu_name()}" if device.type == "cpu" else "")
    print(f"ganbench bench --inception on {device_name}, torch {torch.__version__}", file=progress, flush=True)
    result = inception.measure(device, device_name, images=args.images, repeats=max(args.repeats, 2),
                               seed=args.seed, report=lambda line: print(line, file=progress, flush=True))
    print(json.dumps(result.to_dict(), indent=2) if args.json else "\n".join(result.lines()))
    return 0
