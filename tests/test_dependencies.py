"""The shape of the house: the layer rules of pyproject.toml's import-linter contracts, and no import cycle.

Both read the import graph grimp builds from the source, lazy imports inside functions included, and imports
under ``if TYPE_CHECKING:`` too: a type that names a module is a dependency on it, even if it never runs.
Cycles are looked for between modules and between packages (``workbench.engine`` and ``workbench.quality``
importing each other through different modules is a cycle too).
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
    """A new package or module of workbench/ is headless until it is listed: the contract must not silently skip it."""
    contracts = {c["id"]: c for c in read_configuration(str(ROOT / "pyproject.toml"))["contracts_options"]}
    listed = set(contracts["headless"]["source_modules"])
    graph = grimp.build_graph("workbench", cache_dir=None)
    top_level = {m for m in graph.find_children("workbench")} - {"workbench.tui", "workbench.__main__"}
    assert listed == top_level, f"add to or remove from the contract: {sorted(top_level ^ listed)}"


def _graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, exclude_type_checking_imports=False, cache_dir=None)


def package_graph(graph: grimp.ImportGraph) -> grimp.ImportGraph:
    """The graph squashed to packages: ``workbench.engine.run -> workbench.data.device`` becomes
    ``workbench.engine -> workbench.data`` (the top-level modules of workbench/ stay themselves)."""
    def package(module: str) -> str:
        return ".".join(module.split(".")[:2])
    squashed = grimp.ImportGraph()
    for module in graph.modules:
        squashed.add_module(package(module))
        for imported in graph.find_modules_directly_imported_by(module):
            if package(imported) != package(module):
                squashed.add_import(importer=package(module), imported=package(imported))
    return squashed


def test_no_module_imports_one_that_imports_it_back():
    graph = _graph()
    cycles = import_cycles(graph)
    assert not cycles, "import cycles: " + "; ".join(_describe(graph, group) for group in cycles)


def test_no_package_imports_one_that_imports_it_back():
    graph = package_graph(_graph())
    cycles = import_cycles(graph)
    assert not cycles, "package cycles: " + "; ".join(_describe(graph, group) for group in cycles)


def test_a_type_checking_import_closes_a_package_cycle_too():
    """Built from the real graph: engine -> quality under TYPE_CHECKING would close a circle with quality -> engine."""
    graph = _graph()
    graph.add_import(importer="workbench.engine.training", imported="workbench.quality.periodic")
    (group,) = import_cycles(package_graph(graph))
    assert set(group) == {"workbench.engine", "workbench.quality"}


def test_every_package_has_its_place_in_the_layers():
    """A new package of workbench/ must be put in a layer (or be the plugin surface, api): the tree shows the rule."""
    contracts = {c["id"]: c for c in read_configuration(str(ROOT / "pyproject.toml"))["contracts_options"]}
    placed = {name.strip() for layer in contracts["layers"]["layers"] for name in layer.split("|")}
    packages = {p.name for p in (ROOT / "workbench").iterdir() if (p / "__init__.py").is_file()}
    assert packages - placed == set(), "put these packages in a layer of pyproject.toml's layers contract"


def test_a_cycle_added_to_the_graph_is_found():
    """The search itself: a lazy import from errors.py back to config.py would close a circle."""
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True, cache_dir=None)
    assert graph.chain_exists(importer="workbench.rundir.config", imported="workbench.base.errors")
    graph.add_import(importer="workbench.base.errors", imported="workbench.rundir.config")
    (group,) = import_cycles(graph)
    assert {"workbench.rundir.config", "workbench.base.errors"} <= set(group)
    assert _describe(graph, group).startswith("workbench.base.errors -> ")


def test_one_way_to_start_a_ganbench_process():
    """Runs the workbench launches, sweeps and their trials, the benchmark's timed runs: all through
    ``workbench.rundir.process`` (the test kit's scratch environment runs its own interpreter, not this one)."""
    starting = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "workbench").rglob("*.py")
                      if '"-m", "workbench"' in path.read_text(encoding="utf-8"))
    assert starting == ["workbench/rundir/process.py", "workbench/testkit/scratch.py"], starting
