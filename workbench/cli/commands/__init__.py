"""One module per headless command. Each defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``main(args)``.

``workbench.cli.main`` lists the modules in ``COMMANDS``; a new command is a new
module plus one line there. Commands import torch and the plugins inside
``main``, so ``ganbench --help`` stays instant.
"""
