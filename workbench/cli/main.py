"""The command line: ``ganbench`` opens the workbench; ``ganbench COMMAND`` runs headless.

The headless commands (``workbench.cli.commands``) never import textual; only a
bare ``ganbench`` loads the terminal UI.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import sys

from workbench.base.errors import GanbenchError
from workbench.cli.interrupts import Interrupted, startup_interrupts


def commands() -> list:
    """The headless command modules, each with NAME, HELP, add_arguments(parser) and main(args)."""
    from workbench.cli.commands import bench, compare, plugins, run, runs, sample, sweep
    from workbench.cli.commands import eval as eval_command  # not to shadow the builtin

    return [run, sweep, compare, plugins, sample, runs, bench, eval_command]


def build_parser() -> argparse.ArgumentParser:
    from workbench import __version__

    parser = argparse.ArgumentParser(prog="ganbench", description="Train and study GANs in the terminal; "
                                     "plugins bring the models, datasets and losses. Without a command, "
                                     "opens the workbench.")
    parser.add_argument("--version", action="version", version=f"ganbench {__version__}")
    # Given here or after the command, it is one setting: the commands' own --runs-dir default to SUPPRESS
    # so that `ganbench --runs-dir D run ...` is not overwritten by the subcommand's default.
    parser.add_argument("--runs-dir", default=None, help="the runs folder of the workbench and every command "
                        "(default: $GANBENCH_RUNS_DIR, else runs)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in commands():
        module.add_arguments(sub.add_parser(module.NAME, help=module.HELP, description=module.HELP))
    return parser


def main(argv: list[str] | None = None) -> int:
    # First of all: a Ctrl-C while the command imports torch must not leave it half-imported.
    with startup_interrupts() as interrupts:
        return _reported(_dispatch, argv, interrupts)


def _dispatch(argv: list[str] | None, interrupts) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # a command may re-run itself (under torchrun)
    if args.command is None:
        interrupts.uninstall()  # the workbench handles its keys and signals itself
        return open_workbench(args)
    args.interrupts = interrupts  # ``ganbench run`` hands over to its own handlers when training starts
    return next(m for m in commands() if m.NAME == args.command).main(args)


def _reported(function, *args) -> int:
    """Call ``function(*args)``; every way it can fail ends in one sentence on stderr and an exit code."""
    try:
        return function(*args)
    except GanbenchError as exc:
        print(f"ganbench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Interrupted as exc:
        if os.environ.get("RANK", "0") == "0":  # in a torchrun job rank 0 speaks; the agent stopping the others is no news
            print(f"ganbench: interrupted by {signal.Signals(exc.signum).name}.", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("ganbench: interrupted.", file=sys.stderr)
        return 130
    except OSError as exc:  # a file the user pointed at, or a disk that refused a write
        where = f": {exc.filename}" if exc.filename else ""
        print(f"ganbench: error: {exc.strerror or exc}{where}.", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug, ours or a plugin's: one line here, the traceback only on request
        if os.environ.get("GANBENCH_DEBUG"):
            raise
        print(f"ganbench: error: unexpected {type(exc).__name__}: {exc} "
              f"(set GANBENCH_DEBUG=1 to see the traceback).", file=sys.stderr)
        return 1


def open_workbench(args) -> int:
    """The terminal workbench (``workbench.tui``). Without textual installed, say so and show the commands."""
    if importlib.util.find_spec("textual") is None:
        build_parser().print_help()
        print("\nThe workbench needs textual (pip install textual); the commands above work without it.",
              file=sys.stderr)
        return 1
    from workbench.tui.app import run_workbench

    return run_workbench(args)
