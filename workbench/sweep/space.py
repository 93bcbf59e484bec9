"""What a sweep varies: ``--set KEY=V1,V2,...`` (a list) and ``--set KEY=lo..hi[:log]`` (a range to search).

Every value is checked against the setting's declaration (``workbench.base.params.HyperParam``)
before anything is created, so a typo costs one sentence, not a half-made sweep.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from typing import Any, Callable

from workbench.base.errors import ConfigError
from workbench.base.params import HyperParam

Lookup = Callable[[str], HyperParam]


@dataclass(frozen=True)
class Axis:
    """One setting the sweep varies: a list of ``values``, or a numeric range ``low..high`` (``log`` scale)."""

    key: str
    type: str
    values: tuple = ()
    low: float | None = None
    high: float | None = None
    log: bool = False

    @property
    def is_range(self) -> bool:
        return self.low is not None

    def describe(self) -> str:
        if self.is_range:
            return f"{self.key}={self.low:g}..{self.high:g}" + (":log" if self.log else "")
        return f"{self.key}=" + ",".join(format_value(v) for v in self.values)

    def suggest(self, trial) -> Any:
        """This axis's value for an Optuna trial (a search's sampler picks it; a grid's trial has it fixed)."""
        if not self.is_range:
            return trial.suggest_categorical(self.key, list(self.values))
        if self.type == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, log=self.log)

    def to_dict(self) -> dict:
        return {"key": self.key, "type": self.type, "values": list(self.values), "low": self.low,
                "high": self.high, "log": self.log}

    @classmethod
    def from_dict(cls, data: dict) -> Axis:
        return cls(data["key"], data["type"], tuple(data.get("values") or ()), data.get("low"), data.get("high"),
                   bool(data.get("log")))


def format_value(value: Any) -> str:
    """A value as a user would type it: ``0.0002``, ``64``, ``hinge``."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def parse_sets(sets: list[str], lookup: Lookup) -> tuple[list[str], list[Axis]]:
    """Split ``--set`` items into plain ``key=value`` settings and the axes the sweep varies.

    :param lookup: the declaration of a setting by name; raises ConfigError for an unknown one.
    Raises ConfigError (one sentence) for an empty list, a bad range or a value the setting does not allow.
    """
    fixed: list[str] = []
    axes: dict[str, Axis] = {}
    for item in sets:
        key, sep, text = item.partition("=")
        key, text = key.strip(), text.strip()
        if not sep or not key:
            raise ConfigError(f'--set needs key=value, got "{item}".')
        if ".." not in text and "," not in text:
            fixed.append(f"{key}={text}")
            continue
        param = lookup(key)
        if key in axes:
            raise ConfigError(f"--set {key} is given twice; put every value in one list ({key}=a,b,c).")
        axes[key] = _parse_range(param, text) if ".." in text else _parse_list(param, text)
    return fixed, list(axes.values())


def _parse_list(param: HyperParam, text: str) -> Axis:
    items = [part.strip() for part in text.split(",")]
    if not any(items):
        raise ConfigError(f"--set {param.name}= has an empty list; give one or more values, e.g. "
                          f"{param.name}={format_value(param.default)}.")
    if "" in items:
        raise ConfigError(f'--set {param.name}={text} has an empty value in its list; remove the extra comma.')
    values = [_checked(param, part) for part in items]
    if len(set(values)) != len(values):
        raise ConfigError(f"--set {param.name}={text} names a value twice; each setting should appear once "
                          f"(use --seeds N to repeat it).")
    return Axis(param.name, param.type, tuple(values))


def _parse_range(param: HyperParam, text: str) -> Axis:
    low_text, _, rest = text.partition("..")
    high_text, colon, scale = rest.partition(":")
    if param.type not in ("int", "float"):
        raise ConfigError(f"--set {param.name}={text}: a range lo..hi needs a numeric setting, and {param.name} "
                          f"is {param.type}; list its values instead ({param.name}=a,b).")
    if not low_text.strip() or not high_text.strip() or ".." in rest or (colon and scale.strip() != "log"):
        raise ConfigError(f'--set {param.name}={text} is not a range; write lo..hi or lo..hi:log '
                          f"(e.g. {param.name}=1e-5..1e-3:log).")
    low, high = _checked(param, low_text), _checked(param, high_text)
    if not low < high:
        raise ConfigError(f"--set {param.name}={text}: the range must go upwards (lo < hi).")
    log = bool(colon)
    if log and low <= 0:
        raise ConfigError(f"--set {param.name}={text}: a log range must start above 0.")
    return Axis(param.name, param.type, low=low, high=high, log=log)


def _checked(param: HyperParam, text: str) -> Any:
    try:
        value = param.parse(text)
    except ConfigError as exc:
        raise ConfigError(f"--set {param.name}: {exc}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"--set {param.name}: {text} is not a finite number.")
    return value


def grid_points(axes: list[Axis]) -> list[dict[str, Any]]:
    """Every combination of the axes' lists, the first axis varying slowest."""
    return [dict(zip((a.key for a in axes), combo)) for combo in itertools.product(*(a.values for a in axes))]


def point_label(point: dict[str, Any]) -> str:
    """``lr=0.0002 batch_size=64``: how a setting is named in tables, plots and the workbench."""
    return " ".join(f"{key}={format_value(value)}" for key, value in point.items()) or "(defaults)"


def trial_name(number: int, point: dict[str, Any], seed: int) -> str:
    """A trial's folder name: ``t003-lr0.0002-batch_size64-seed1`` (only letters, digits, ``.``, ``_``, ``-``)."""
    parts = [f"t{number:03d}"] + [f"{key}{format_value(value)}" for key, value in point.items()] + [f"seed{seed}"]
    name = re.sub(r"[^A-Za-z0-9._-]", "_", "-".join(parts))
    return name if len(name) <= 100 else f"t{number:03d}-seed{seed}"
