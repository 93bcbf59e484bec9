"""Reading quality results back from a run's ``events.jsonl`` (for ``ganbench runs`` and the workbench)."""

from __future__ import annotations

import json
from pathlib import Path

_MARK = b'"type":"eval"'


def eval_events(events: Path) -> list[dict]:
    """Every ``eval`` event of a log, oldest first; torn or foreign lines are skipped."""
    try:
        data = Path(events).read_bytes()
    except OSError:
        return []
    found = []
    for line in data.splitlines():
        if _MARK not in line:  # most lines are losses: skip them without parsing
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("type") == "eval" and isinstance(event.get("metrics"), dict):
            found.append(event)
    return found


def latest_metrics(events: Path) -> dict[str, dict]:
    """For each metric, its value at the latest step evaluated: ``{name: {"value": v, "step": s}}``.

    Of two evaluations of the same step (training, then ``ganbench eval``), the later one wins.
    """
    latest: dict[str, dict] = {}
    for event in eval_events(events):
        step = event.get("step") if isinstance(event.get("step"), int) else -1
        for name, value in event["metrics"].items():
            if isinstance(value, (int, float)) and step >= latest.get(name, {}).get("step", -1):
                latest[name] = {"value": float(value), "step": step}
    return latest
