"""Declared hyper-parameters: the CLI and the workbench build options and forms from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workbench.base.errors import ConfigError

_TYPES = {"int": int, "float": float, "str": str, "bool": bool}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class HyperParam:
    """One tunable value of a model plugin.

    :param name: the key used with ``--set name=value``.
    :param type: ``"int"``, ``"float"``, ``"str"`` or ``"bool"``.
    :param default: the value used when the user gives none.
    :param help: one line shown in ``--help`` and in the workbench form.
    :param min: smallest allowed value (numbers), inclusive.
    :param max: largest allowed value (numbers), inclusive.
    :param choices: the only allowed values, if any.
    """

    name: str
    type: str
    default: Any
    help: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple = field(default=())

    def __post_init__(self):
        if self.type not in _TYPES:
            raise ValueError(f"hyper-parameter {self.name!r} has unknown type {self.type!r}")

    def parse(self, text: str) -> Any:
        """Turn the text a user typed into a checked value, or raise ConfigError."""
        text = text.strip()
        if self.type == "bool":
            if text.lower() in _TRUE:
                return self.check(True)
            if text.lower() in _FALSE:
                return self.check(False)
            raise ConfigError(f"{self.name} must be true or false, not {text!r}.")
        try:
            value = float(text) if self.type == "float" else _TYPES[self.type](text)
        except ValueError:
            kind = {"int": "a whole number", "float": "a number"}.get(self.type, "text")
            raise ConfigError(f"{self.name} must be {kind}, not {text!r}.") from None
        return self.check(value)

    def check(self, value: Any) -> Any:
        """Return ``value`` if allowed, else raise ConfigError saying what is allowed."""
        expected = _TYPES[self.type]
        if self.type == "float" and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ConfigError(f"{self.name} must be of type {self.type}, not {value!r}.")
        if self.type == "float" and value != value:
            raise ConfigError(f"{self.name} must be a number, not NaN.")
        if self.choices and value not in self.choices:
            allowed = ", ".join(str(c) for c in self.choices)
            raise ConfigError(f"{self.name} must be one of {allowed}; got {value!r}.")
        if self.min is not None and value < self.min:
            raise ConfigError(f"{self.name} must be at least {self.min:g}; got {value!r}.")
        if self.max is not None and value > self.max:
            raise ConfigError(f"{self.name} must be at most {self.max:g}; got {value!r}.")
        return value

    def describe(self) -> str:
        """A short text of the allowed values, e.g. ``32 | 64`` or ``>= 1``."""
        if self.choices:
            return " | ".join(str(c) for c in self.choices)
        if self.min is not None and self.max is not None:
            return f"{self.min:g} .. {self.max:g}"
        if self.min is not None:
            return f">= {self.min:g}"
        if self.max is not None:
            return f"<= {self.max:g}"
        return self.type


def training_params(batch_size: int, lr: float, epochs: int, b1: float = 0.5, b2: float = 0.999):
    """The hyper-parameters every model shares, with this model's defaults."""
    return (
        HyperParam("batch_size", "int", batch_size, "images per training step", min=2, max=65536),
        HyperParam("lr", "float", lr, "Adam learning rate of both networks", min=1e-8, max=1.0),
        HyperParam("b1", "float", b1, "Adam beta1", min=0.0, max=0.999999),
        HyperParam("b2", "float", b2, "Adam beta2", min=0.0, max=0.999999),
        HyperParam("epochs", "int", epochs, "passes over the dataset (unless --steps is given)", min=1),
    )
