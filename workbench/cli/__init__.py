"""The command line: ``ganbench`` and its subcommands, the console output, start-up interrupts, torchrun.

``main.main`` is the entry point; each subcommand is a module of ``commands``.
"""
