"""The run-directory protocol, torch-free: what a run folder holds and how processes share it.

A run is a folder: ``config.json`` (``config``), ``events.jsonl`` (``events``), ``state.json`` and the
checkpoint/sample layout (``directory``), the request files a workbench or a signal sends to a running
job (``control``), the lock that says a process owns it (``lock``), and the one way to start a ganbench
process on it (``launch``). The engine writes this protocol; the workbench, sweeps, ``ganbench runs`` and
``compare`` only read it, so none of them needs torch to show a run.
"""
