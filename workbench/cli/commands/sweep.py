"""``ganbench sweep``: many runs over settings and seeds, searched with Optuna, one trial per device slot."""

from __future__ import annotations

import argparse
import sys

from workbench.base.errors import ConfigError

NAME = "sweep"
HELP = "run a model over lists or ranges of settings and several seeds (a grid or an Optuna search)"


def add_arguments(parser) -> None:
    parser.description = (HELP + ". Every option of `ganbench run` applies to each trial; `--set KEY=V1,V2` "
                          "varies a setting, `--set KEY=lo..hi[:log]` searches a range (with --trials).")
    parser.add_argument("--plugin", "-p", help="the model plugin, e.g. mlp_gan, dcgan, aae; several (dcgan,r3gan) "
                                               "train each on the same seeds, --set MODEL:KEY=V for one alone")
    parser.add_argument("--dataset", "-d", help="the dataset plugin (default: the model's)")
    parser.add_argument("--loss", help="the loss plugin (default: the model's)")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--epochs", help="passes over the dataset (a list or range too)")
    length.add_argument("--steps", type=int, help="training steps of each trial")
    parser.add_argument("--batch-size", help="images per step: a value, a list 32,64 or a range")
    parser.add_argument("--lr", help="learning rate: a value, a list 1e-4,2e-4 or a range 1e-5..1e-3:log")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="KEY=V, KEY=V1,V2,... (every value, a grid) or KEY=lo..hi[:log] (a range to search); "
                        "repeatable")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per setting (default 1): --seed, --seed+1, ...")
    parser.add_argument("--seed", type=int, help="the first seed (default 0)")
    parser.add_argument("--search", help="grid (default with lists only), random, or tpe (default with a range)")
    parser.add_argument("--trials", type=int, help="how many settings a random or TPE search draws")
    parser.add_argument("--objective", default="fd", help="the quality metric to rank and prune by (default fd)")
    parser.add_argument("--prune", nargs="?", const="median", help="stop hopeless trials early: median "
                        "(the default) or hyperband")
    parser.add_argument("--device", help="auto (default), cpu, cuda or mps")
    parser.add_argument("--devices", help="GPUs to use, one trial each at a time, e.g. 0,2 (default: all)")
    parser.add_argument("--parallel", type=int, help="trials at a time on a CPU, the cores split between them "
                        "(default: one per core, as many as there are trials)")
    parser.add_argument("--runs-dir", default=argparse.SUPPRESS,
                        help="where the sweep's folder goes (default: $GANBENCH_RUNS_DIR, else runs)")
    parser.add_argument("--name", help="the sweep's folder name (default: sweep-MODEL-TIME)")
    parser.add_argument("--data-root", help="folder holding the dataset's files")
    parser.add_argument("--download", action="store_true", help="download the dataset if the network allows")
    again = parser.add_mutually_exclusive_group()
    again.add_argument("--resume", metavar="SWEEP_DIR", help="continue a stopped or interrupted sweep")
    again.add_argument("--join", metavar="SWEEP_DIR", help="work on a running sweep too (another box sharing "
                       "the folder, or another GPU here with --devices)")


def main(args) -> int:
    from workbench.host.manager import load_plugins
    from workbench.sweep.driver import Driver, plan_slots, trials_left
    from workbench.sweep.manifest import Sweep, drivers_sharing_cores
    from workbench.sweep.progress import make_sweep_progress

    plugins = load_plugins()
    for error in plugins.errors:
        print(f"warning: {error}", file=sys.stderr)
    folder = args.resume or args.join
    if folder:
        flag = "--resume" if args.resume else "--join"
        own = [f for f, v in (("--plugin", args.plugin), ("--set", args.sets), ("--name", args.name),
                              ("--trials", args.trials), ("--search", args.search), ("--lr", args.lr),
                              ("--batch-size", args.batch_size), ("--steps", args.steps)) if v not in (None, [])]
        if own:
            raise ConfigError(f"{flag} continues a sweep with its own settings, so {', '.join(own)} cannot be "
                              f"given with it; only --devices, --parallel and --device can.")
        sweep = Sweep.open(folder, flag)
        manifest = sweep.read()
    else:
        sweep, manifest = _create(args, plugins.registry)
    slots = plan_slots(args.device or manifest["base"]["device"], args.devices, args.parallel,
                       trials_left=trials_left(manifest))
    if args.join and slots[0].label.startswith("cpu") and drivers_sharing_cores(manifest):
        print("warning: another driver trains this sweep on the same CPU cores, so this one's trials would share "
              "them with its trials, and torch processes sharing cores slow each other several-fold (see "
              "`ganbench bench --sweep`). Stop the sweep (Ctrl-C in each driver) and "
              f"continue it with ganbench sweep --resume {sweep.path} --parallel K instead.", file=sys.stderr,
              flush=True)
    print(f"sweep folder: {sweep.path}", flush=True)
    for note in manifest.get("notes", []) if not folder else []:
        print(f"note: {note}", flush=True)
    metric = manifest["objective"]["metric"]
    code = Driver(sweep, plugins.registry, slots, make_sweep_progress(metric)).run()
    if code:
        print(f"ganbench: sweep stopped; continue it with: ganbench sweep --resume {sweep.path}", file=sys.stderr)
        return code
    _summary(sweep)
    return 0


def _create(args, registry):
    from workbench.rundir.config import default_runs_dir
    from workbench.sweep.plan import create_sweep, plan_sweep

    if not args.plugin:
        raise ConfigError("Name the model with --plugin (see `ganbench plugins` for the choices).")
    shortcuts = [f"{key}={value}" for key, value in (("epochs", args.epochs), ("batch_size", args.batch_size),
                                                     ("lr", args.lr)) if value is not None]
    manifest = plan_sweep(registry, model=args.plugin, sets=shortcuts + list(args.sets), seeds=args.seeds,
                          search=args.search, trials=args.trials, objective=args.objective, prune=args.prune,
                          name=args.name, runs_dir=args.runs_dir or default_runs_dir(),
                          command=["ganbench", *sys.argv[1:]],
                          dataset=args.dataset, loss=args.loss, steps=args.steps, device=args.device,
                          seed=args.seed, data_root=args.data_root, download=args.download or None)
    return create_sweep(manifest), manifest


def _summary(sweep) -> None:
    from workbench.sweep.compare import compare_runs, format_table, sweep_runs, sweep_statuses

    trials = sweep.trials()
    counts: dict[str, int] = {}
    for entry in trials.values():
        counts[entry["status"]] = counts.get(entry["status"], 0) + 1
    print("trials: " + ", ".join(f"{n} {status}" for status, n in counts.items()))
    for name, entry in trials.items():
        if entry["status"] == "pruned":
            print(f"  {name}: pruned at step {entry.get('pruned_at')}")
    objective = sweep.read()["objective"]
    print(format_table(compare_runs(sweep_runs(sweep), objective["metric"], objective["lower_is_better"],
                                    sweep_statuses(sweep))))
    print(f"compare again, with plots: ganbench compare {sweep.path} --out {sweep.path}/compare")
