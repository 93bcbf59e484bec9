"""The shape of the house: the layer rules of pyproject.toml's import-linter contracts, and no import cycle.

Both read the import graph grimp builds from the source, lazy imports inside
functions included; imports under ``if TYPE_CHECKING:`` never run and are left out.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp
from importlinter.api import read_configuration

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("workbench", "plugins")


def import_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Every group of modules that import one another in a circle (Tarjan's strongly connected components)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []
    for start in sorted(graph.modules):
        if start in index:
            continue
        # depth-first search without recursion: (module, the modules it imports still to visit)
        index[start] = low[start] = len(index)
        stack.append(start)
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        while work:
            module, imported = work[-1]
            following = next(imported, None)
            if following is not None:
                if following not in index:
                    index[following] = low[following] = len(index)
                    stack.append(following)
                    work.append((following, iter(sorted(graph.find_modules_directly_imported_by(following)))))
                elif following in stack:
                    low[module] = min(low[module], index[following])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[module])
            if low[module] == index[module]:
                group = []
                while True:
                    member = stack.pop()
                    group.append(member)
                    if member == module:
                        break
                if len(group) > 1:
                    cycles.append(sorted(group))
    return cycles


def _describe(graph: grimp.ImportGraph, group: list[str]) -> str:
    first, second = group[0], group[1]
    there = graph.find_shortest_chain(importer=first, imported=second) or ()
    back = graph.find_shortest_chain(importer=second, imported=first) or ()
    return " -> ".join(list(there) + list(back[1:]))


def test_the_import_contracts_hold():
    """`lint-imports` with pyproject.toml: the headless side never imports textual, the core never imports plugins/."""
    code = ("import sys; from importlinter.cli import lint_imports; "
            "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True, no_logo=True))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_the_headless_contract_names_every_module_but_the_ui():
    """A new module of workbench/ is headless until it is listed: the contract must not silently skip it."""
    contracts = {c["id"]: c for c in read_configuration(str(ROOT / "pyproject.toml"))["contracts_options"]}
    listed = set(contracts["headless"]["source_modules"])
    graph = grimp.build_graph("workbench", cache_dir=None)
    top_level = {m for m in graph.find_children("workbench")} - {"workbench.tui", "workbench.__main__"}
    assert listed == top_level, f"add to or remove from the contract: {sorted(top_level ^ listed)}"


def test_no_module_imports_one_that_imports_it_back():
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True, cache_dir=None)
    cycles = import_cycles(graph)
    assert not cycles, "import cycles: " + "; ".join(_describe(graph, group) for group in cycles)


def test_a_cycle_added_to_the_graph_is_found():
    """The search itself: a lazy import from errors.py back to config.py would close a circle."""
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True, cache_dir=None)
    assert graph.chain_exists(importer="workbench.config", imported="workbench.errors")
    graph.add_import(importer="workbench.errors", imported="workbench.config")
    (group,) = import_cycles(graph)
    assert {"workbench.config", "workbench.errors"} <= set(group)
    assert _describe(graph, group).startswith("workbench.config -> ")
