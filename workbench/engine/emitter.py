"""A run's events fanned out: to ``events.jsonl``, to the listeners (console, workbench, tests) and the observer hooks."""

from __future__ import annotations

import contextlib
from typing import Any, Callable

from workbench.rundir.events import Event, EventLog, make_event

Listener = Callable[[Event], None]


class EventFanOut:
    """Where a run's events go. ``log`` is None until the run starts: until then the listeners alone hear them."""

    def __init__(self, hooks, listeners: list[Listener]):
        self.hooks = hooks  # the plugin manager's ``hook`` relay
        self.listeners = list(listeners)
        self.log: EventLog | None = None

    def emit(self, type_: str, **fields: Any) -> Event:
        """Append an event to the log and show it to the listeners (even when the disk refuses it)."""
        event = make_event(type_, **fields)
        try:
            if self.log is not None:
                self.log.append(event)
        finally:
            for listener in list(self.listeners):
                try:
                    listener(event)
                except Exception as exc:  # a console whose terminal went away (SSH dropped) must not end training
                    self.listeners.remove(listener)
                    if self.log is not None:
                        with contextlib.suppress(OSError):
                            self.log.write("warning", message=f"A progress display failed and was turned off: "
                                                              f"{type(exc).__name__}: {exc}")
        return event

    def notify(self, hook: str, run, **kwargs: Any) -> None:
        """Call one observer hook in every plugin; a failing plugin is reported as a warning, never fatal."""
        for impl in getattr(self.hooks, hook).get_hookimpls():
            try:
                impl.function(run=run, **kwargs)
            except Exception as exc:
                with contextlib.suppress(OSError):  # a full disk refuses the log line; the listeners still heard it
                    self.emit("warning",
                              message=f'Plugin "{impl.plugin_name}" failed in {hook}: {type(exc).__name__}: {exc}')

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
