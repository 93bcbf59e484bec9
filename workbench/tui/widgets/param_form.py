"""Form fields built from declared settings, checked as the user types.

A field knows how to turn its text into a value (``HyperParam.parse`` for a
model's hyper-parameters); a value it refuses is marked at the field with the
sentence the parser raised, and ``ParamForm.errors`` tells whether the form
can be submitted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.validation import ValidationResult, Validator
from textual.widgets import Input, Label, Static

from workbench.base.errors import GanbenchError
from workbench.base.params import HyperParam


@dataclass(frozen=True)
class FieldSpec:
    """One field: ``parse(text)`` returns the value or raises a GanbenchError with one sentence."""

    name: str
    text: str
    parse: Callable[[str], Any]
    help: str = ""

    @classmethod
    def from_param(cls, param: HyperParam, value: Any = None) -> FieldSpec:
        value = param.default if value is None else value
        text = str(value).lower() if param.type == "bool" else f"{value:g}" if param.type == "float" else str(value)
        rule = "true | false" if param.type == "bool" else param.describe()
        return cls(param.name, text, param.parse, f"{param.help} ({rule})")


class _Parses(Validator):
    def __init__(self, parse: Callable[[str], Any]):
        super().__init__()
        self.parse = parse

    def validate(self, value: str) -> ValidationResult:
        try:
            self.parse(value)
        except GanbenchError as exc:
            return self.failure(str(exc))
        return self.success()


class ParamField(Vertical):
    """``name [input] help``, with the error sentence under it while the text is refused."""

    def __init__(self, spec: FieldSpec, id_prefix: str):
        super().__init__(classes="param-field")
        self.spec, self.input_id = spec, f"{id_prefix}-{spec.name}"

    def compose(self) -> ComposeResult:
        with Horizontal(classes="param-row"):
            yield Label(self.spec.name, classes="param-name", markup=False)
            yield Input(self.spec.text, id=self.input_id, validators=[_Parses(self.spec.parse)],
                        validate_on=["changed", "submitted"], select_on_focus=False, compact=True)
            yield Static(self.spec.help, classes="param-help", markup=False)
        yield Static("", classes="param-error", markup=False)

    @property
    def input(self) -> Input:
        return self.query_one(Input)

    def error(self) -> str | None:
        """The sentence refusing the current text, or None when it parses."""
        try:
            self.spec.parse(self.input.value)
        except GanbenchError as exc:
            return str(exc)
        return None

    def value(self) -> Any:
        return self.spec.parse(self.input.value)

    def on_input_changed(self, event: Input.Changed) -> None:
        error = self.error()
        self.show_error(error)
        if error is not None:
            self.call_after_refresh(self.scroll_visible)  # the sentence sits under the input

    def show_error(self, message: str | None) -> None:
        """Mark the field (or clear the mark when ``message`` is None)."""
        label = self.query_one(".param-error", Static)
        label.update(message or "")
        self.set_class(message is not None, "-invalid")


class ParamForm(Vertical):
    """A titled group of fields; ``values()`` maps names to parsed values."""

    def __init__(self, title: str, specs: list[FieldSpec], id_prefix: str, *, id: str | None = None):
        super().__init__(id=id, classes="param-form")
        self.title, self.specs, self.id_prefix = title, specs, id_prefix

    def compose(self) -> ComposeResult:
        yield Label(self.title, classes="param-form-title", markup=False)
        for spec in self.specs:
            yield ParamField(spec, self.id_prefix)

    def fields(self) -> list[ParamField]:
        return list(self.query(ParamField))

    def errors(self) -> dict[str, str]:
        """Every refused field and why."""
        return {f.spec.name: e for f in self.fields() if (e := f.error()) is not None}

    def values(self) -> dict[str, Any]:
        """The parsed value of every field; call only when ``errors()`` is empty."""
        return {f.spec.name: f.value() for f in self.fields()}
