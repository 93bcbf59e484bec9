"""Configuring and starting a run: model, dataset and loss pickers and a form built from the model's settings.

Every field is checked as it is typed with the same ``HyperParam.parse`` the
CLI uses; the run cannot start while a field is refused. Starting builds the
run's ``RunConfig`` as the CLI does, creates its run folder and starts
``ganbench run --config <run>/config.json`` as a detached process (``launch_run``),
then opens its run screen.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, Select, Static

from workbench.base.errors import ConfigError, GanbenchError
from workbench.base.params import HyperParam
from workbench.host.configure import build_config, validate
from workbench.rundir.config import ENGINE_PARAMS, RunConfig, check_run_name
from workbench.rundir.launch import launch_run
from workbench.sweep.space import Axis, parse_sets
from workbench.tui.widgets.param_form import FieldSpec, ParamForm

if TYPE_CHECKING:
    from workbench.host.manager import PluginSet

DEVICES = ("auto", "cpu", "cuda", "mps")
TABLES = {"model": "models", "dataset": "datasets", "loss": "losses"}  # picker -> Registry attribute
STEPS = HyperParam("steps", "int", 1, min=1)
SEED = HyperParam("seed", "int", 0, "random seed", min=0)
DOWNLOAD = HyperParam("download", "bool", False, "download the dataset if it is missing and the network allows")
SEEDS = HyperParam("seeds", "int", 1, "seeds per setting; above 1: a sweep", min=1, max=100)
TRIALS = HyperParam("trials", "int", 8, "settings a sweep draws from a range", min=1, max=1000)


def sweepable(param: HyperParam) -> FieldSpec:
    """A field that takes one value, or a list ``a,b`` or a range ``lo..hi[:log]`` (then the form starts a sweep)."""
    def parse(text: str):
        if "," in text or ".." in text:
            return parse_sets([f"{param.name}={text}"], lambda key: param)[1][0]
        return param.parse(text)

    spec = FieldSpec.from_param(param)
    return FieldSpec(spec.name, spec.text, parse, spec.help)


def _value_text(value) -> str:
    if isinstance(value, Axis):
        return value.describe().partition("=")[2]
    return str(value).lower() if isinstance(value, bool) else str(value)


class NewRunScreen(Screen):
    """The form; ``model`` preselects a model plugin."""

    BINDINGS = [
        Binding("ctrl+s", "start", "Start", priority=True),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, plugins: PluginSet, runs_dir: Path, model: str | None = None):
        super().__init__()
        self.plugins, self.runs_dir = plugins, Path(runs_dir)
        models = sorted(plugins.registry.models)
        self.model = model if model in plugins.registry.models else ("mlp_gan" if "mlp_gan" in models else
                                                                    (models[0] if models else None))

    # -- building -----------------------------------------------------------
    def compose(self) -> ComposeResult:
        registry = self.plugins.registry
        yield Static("New run", id="new-title")
        with VerticalScroll(id="new-form"):
            if self.model is None:
                yield Static("No model plugin is installed; see `ganbench plugins`.", classes="-failed")
                return
            spec = registry.model(self.model)
            for kind, table, value in (("model", registry.models, self.model), ("dataset", registry.datasets,
                                       spec.dataset), ("loss", registry.losses, spec.loss)):
                with Horizontal(classes="pick-row"):
                    yield Label(kind, classes="param-name")
                    yield Select([(name, name) for name in sorted(table)], value=value if value in table else
                                 Select.BLANK, allow_blank=value not in table, id=f"pick-{kind}",
                                 compact=True)
                    yield Static("", id=f"help-{kind}", classes="param-help", markup=False)
            with Horizontal(classes="pick-row"):
                yield Label("device", classes="param-name")
                yield Select([(d, d) for d in DEVICES], value="auto", allow_blank=False, id="pick-device",
                             compact=True)
                yield Static("auto: CUDA, then MPS, then CPU", classes="param-help")
            yield ParamForm("Run", self._run_fields(), "run", id="run-form")
            yield self._model_form(self.model)
            yield ParamForm("Engine settings", [FieldSpec.from_param(p) for p in ENGINE_PARAMS], "engine",
                            id="engine-form")
            yield Static("", id="start-error", markup=False)
            yield Button("Start (ctrl+s)", id="start", variant="primary", compact=True)
        if self.plugins.errors:
            yield Static(f"{len(self.plugins.errors)} plugin(s) failed to load; press p on the runs screen "
                         "to see why.", id="new-plugin-errors", classes="-failed", markup=False)
        yield Footer(compact=True)

    def _run_fields(self) -> list[FieldSpec]:
        def steps(text: str):
            return STEPS.parse(text) if text.strip() else None

        def name(text: str):
            text = text.strip()
            if not text:
                return None
            check_run_name(text)
            if (self.runs_dir / text).exists():
                raise ConfigError(f'A run named "{text}" already exists; choose another name.')
            return text

        def data_root(text: str):
            text = text.strip()
            if text and not Path(text).expanduser().is_dir():
                raise ConfigError(f"data_root must be an existing folder; {text} is not one.")
            return str(Path(text).expanduser().absolute()) if text else None

        return [FieldSpec("steps", "", steps, "training steps; empty: the epochs setting decides"),
                FieldSpec.from_param(SEED),
                FieldSpec.from_param(SEEDS),
                FieldSpec.from_param(TRIALS),
                FieldSpec("name", "", name, "run folder name; empty: model-dataset-time"),
                FieldSpec("data_root", "", data_root, "folder holding the dataset's files; empty: its usual places"),
                FieldSpec.from_param(DOWNLOAD)]

    def _model_form(self, model: str) -> ParamForm:
        spec = self.plugins.registry.model(model)
        return ParamForm(f"{model} settings (a list a,b or a range lo..hi starts a sweep)",
                         [sweepable(p) for p in spec.hyperparams], "param",
                         id="model-form")

    def on_mount(self) -> None:
        if self.model is None:
            return
        for kind in ("model", "dataset", "loss"):
            self._describe(kind)
        self.query_one("#pick-model", Select).focus()
        self._check()

    def _describe(self, kind: str) -> None:
        value = self.query_one(f"#pick-{kind}", Select).value
        table = getattr(self.plugins.registry, TABLES[kind])
        item = table.get(value) if isinstance(value, str) else None
        text = f"{item.spec.description} [{item.plugin} ({item.dist})]" if item else ""
        self.query_one(f"#help-{kind}", Static).update(text)

    # -- reacting -----------------------------------------------------------
    async def on_select_changed(self, event: Select.Changed) -> None:
        kind = (event.select.id or "").removeprefix("pick-")
        if kind == "model" and isinstance(event.value, str) and event.value != self.model:
            self.model = event.value
            spec = self.plugins.registry.model(self.model)
            await self.query_one("#model-form").remove()
            await self.query_one("#new-form").mount(self._model_form(self.model), after="#run-form")
            for other, value in (("dataset", spec.dataset), ("loss", spec.loss)):
                select = self.query_one(f"#pick-{other}", Select)
                if value in getattr(self.plugins.registry, TABLES[other]):
                    select.value = value
        if kind in ("model", "dataset", "loss"):
            self._describe(kind)
        self._check()

    def on_input_changed(self, event: Input.Changed) -> None:
        self._check()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_start()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "start":
            self.action_start()

    def _errors(self) -> dict[str, str]:
        errors: dict[str, str] = {}
        for form in self.query(ParamForm):
            errors.update(form.errors())
        return errors

    def _check(self) -> dict[str, str]:
        """Enable Start only while every field parses; return the refused fields."""
        errors = self._errors()
        for kind in ("dataset", "loss"):
            if self.query_one(f"#pick-{kind}", Select).value is Select.BLANK:
                errors[kind] = f"Choose a {kind}."
        self.query_one("#start", Button).disabled = bool(errors)
        return errors

    # -- starting -----------------------------------------------------------
    def action_start(self) -> None:
        if self.model is None:
            return
        errors = self._check()
        message = self.query_one("#start-error", Static)
        if errors:
            invalid = []
            for form in self.query(ParamForm):
                for field in form.fields():
                    field.show_error(errors.get(field.spec.name))
                    if field.spec.name in errors:
                        invalid.append(field)
            text = f"Fix {', '.join(errors)} first: {next(iter(errors.values()))}"
            message.update(text)
            self.notify(text, severity="error")
            if invalid:
                invalid[0].input.focus()
            return
        if self._is_sweep():
            self._start_sweep()
            return
        try:
            launched = launch_run(self._config())
        except GanbenchError as exc:
            message.update(str(exc))
            self.notify(str(exc), severity="error")
            return
        message.update("")
        self.app.track(launched)
        self.dismiss()
        self.app.open_run(launched.run_dir, launched)

    def _is_sweep(self) -> bool:
        values = self.query_one("#model-form", ParamForm).values().values()
        return any(isinstance(v, Axis) for v in values) or self.query_one("#run-form", ParamForm).values()["seeds"] > 1

    def _start_sweep(self) -> None:
        """Check the sweep as ``ganbench sweep`` would, then start it detached and open its screen."""
        from workbench.sweep.launch import launch_sweep
        from workbench.sweep.manifest import Sweep
        from workbench.sweep.plan import plan_sweep

        run = self.query_one("#run-form", ParamForm).values()
        args, sets = self._sweep_arguments()
        ranges = any(isinstance(v, Axis) and v.is_range for v in self.query_one("#model-form", ParamForm)
                     .values().values())
        extra = ["--seeds", str(run["seeds"])] + (["--trials", str(run["trials"])] if ranges else [])
        name = run["name"] or f"sweep-{self.model}-{time.strftime('%Y%m%d-%H%M%S')}"
        chosen = {kind: self.query_one(f"#pick-{kind}", Select).value for kind in ("dataset", "loss", "device")}
        try:
            plan_sweep(self.plugins.registry, model=self.model, sets=sets, seeds=run["seeds"],
                       search=None, trials=run["trials"] if ranges else None, objective="fd", prune=None,
                       name=name, runs_dir=str(self.runs_dir), command=[], dataset=chosen["dataset"],
                       loss=chosen["loss"], steps=run["steps"], device=chosen["device"], seed=run["seed"],
                       data_root=run["data_root"], download=run["download"] or None)
        except GanbenchError as exc:
            self.query_one("#start-error", Static).update(str(exc))
            self.notify(str(exc), severity="error")
            return
        launch_sweep([*args, *extra, "--name", name, "--runs-dir", str(self.runs_dir)],
                     self.runs_dir / ".launch" / f"{name}.log")
        self.dismiss()
        self.app.open_sweep(Sweep(self.runs_dir / name))

    def _sweep_arguments(self) -> tuple[list[str], list[str]]:
        """The ``ganbench sweep`` arguments of the form (lists and ranges as the fields hold them) and its sets."""
        run = self.query_one("#run-form", ParamForm).values()
        chosen = {kind: self.query_one(f"#pick-{kind}", Select).value for kind in ("dataset", "loss", "device")}
        spec = self.plugins.registry.model(self.model)
        sets = [f"{name}={_value_text(value)}" for name, value in self.query_one("#model-form", ParamForm).values()
                .items() if value != spec.param(name).default]
        sets += [f"{p.name}={_value_text(v)}" for p in ENGINE_PARAMS
                 if (v := self.query_one("#engine-form", ParamForm).values()[p.name]) != p.default]
        args = ["--plugin", self.model, "--dataset", chosen["dataset"], "--loss", chosen["loss"],
                "--device", chosen["device"], "--seed", str(run["seed"]), "--steps", str(run["steps"])]
        if run["data_root"]:
            args += ["--data-root", run["data_root"]]
        if run["download"]:
            args.append("--download")
        for item in sets:
            args += ["--set", item]
        return args, sets

    def _config(self) -> RunConfig:
        """The run's configuration from the pickers and forms, checked whole as ``ganbench run`` checks it."""
        run = self.query_one("#run-form", ParamForm).values()
        chosen = {kind: self.query_one(f"#pick-{kind}", Select).value for kind in ("dataset", "loss", "device")}
        config = build_config(self.plugins.registry, self.model, dataset=chosen["dataset"], loss=chosen["loss"],
                              steps=run["steps"], device=chosen["device"], seed=run["seed"],
                              runs_dir=str(self.runs_dir.absolute()), name=run["name"], data_root=run["data_root"],
                              download=run["download"] or None)
        config.hyperparams.update(self.query_one("#model-form", ParamForm).values())  # values the fields parsed
        config.engine.update(self.query_one("#engine-form", ParamForm).values())
        validate(config, self.plugins.registry)
        from workbench.engine.devices import pick_device

        pick_device(config.device)  # "cuda" on a machine without one fails here, in one sentence
        return config

    def action_back(self) -> None:
        self.dismiss()
